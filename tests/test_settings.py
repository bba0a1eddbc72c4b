"""One typed settings object, built once when the app starts and checked there (newsletter/core/config.py).

A setting that is wrong stops the start with one line naming it, instead of the first mail finding it; every
module reads settings through `settings()`, never through app.config, so a test or a later module cannot read
a value the start-up check did not see.
"""
import ast
from pathlib import Path

import pytest

from newsletter import create_app
from newsletter.core.config import SETTING_NAMES, ConfigError, settings

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "newsletter"
PRODUCTION = {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "BASE_URL": "https://news.example.org",
              "SMTP_HOST": "smtp.example.org", "INQUIRY_ENCRYPTION_KEY": "x" * 43 + "="}


def _setting_reads_through_config(source: str) -> list[str]:
    """`<anything>.config["NAME"]` or `.config.get("NAME")` for a product setting, and `x = app.config` or
    `x = current_app.config` (an alias would hide the reads), each as "line: what"."""
    found = []
    for node in ast.walk(ast.parse(source)):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute) and node.value.attr == "config":
            key = node.slice
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
              and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "config" and node.args):
            key = node.args[0]
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute) and node.value.attr == "config"
              and isinstance(node.value.value, ast.Name) and node.value.value.id in {"app", "current_app"}):
            found.append((node.lineno, f"aliases {node.value.value.id}.config"))
        if isinstance(key, ast.Constant) and key.value in SETTING_NAMES:
            found.append((node.lineno, f"reads {key.value} from app.config"))
    return [f"{line}: {what}" for line, what in sorted(found)]


def test_no_module_reads_a_setting_from_app_config():
    """app.config holds only what Flask and its extensions read; a product setting comes from settings()."""
    offenders = [f"{path.relative_to(ROOT)}:{line}" for path in sorted(PACKAGE.rglob("*.py"))
                 if path != PACKAGE / "core" / "config.py"
                 for line in _setting_reads_through_config(path.read_text())]
    assert offenders == []


def test_the_scan_finds_a_read_an_alias_and_a_get():
    found = _setting_reads_through_config(
        "from flask import current_app\n\n"
        "def f():\n    return current_app.config['BASE_URL']\n\n"
        "def g():\n    config = current_app.config\n    return config.get('SMTP_HOST')\n\n"
        "def h(app):\n    return app.config.get('RATELIMIT_KEY_PREFIX'), app.config.get('SMTP_HOST')\n")
    assert found == ["4: reads BASE_URL from app.config", "7: aliases current_app.config",
                     "11: reads SMTP_HOST from app.config"]


@pytest.mark.parametrize("overrides, says", [
    ({"SMTP_PORT": "twenty-five"}, "SMTP_PORT must be a whole number, got 'twenty-five'"),
    ({"SEND_RATE_PER_SECOND": "fast"}, "SEND_RATE_PER_SECOND must be a number"),
    ({"SEND_WARMUP_FROM": "next monday"}, "SEND_WARMUP_FROM must be a date like 2026-12-01"),
    ({"MAIL_FROM": "Inner Calm <newsletter@>"}, "MAIL_FROM must be exactly one e-mail address"),
    ({"PRACTICE_INBOX": "a@example.org, b@example.org"}, "PRACTICE_INBOX must be exactly one e-mail address"),
    ({"UNSUBSCRIBE_MAILTO": "unsubscribe"}, "UNSUBSCRIBE_MAILTO must be exactly one e-mail address"),
    ({"SMTP_SECURITY": "tls"}, "SMTP_SECURITY must be none, starttls or ssl"),
    ({"DNS_RESOLVER": "dns.example.org"}, "DNS_RESOLVER must be a DNS server's IP address"),
    ({"DKIM_DOMAIN": "example.org", "DKIM_SELECTOR": "news", "DKIM_PRIVATE_KEY": "/nonexistent/dkim.pem"},
     "DKIM_PRIVATE_KEY names a file that cannot be read"),
    ({**PRODUCTION, "SMTP_HOST": ""}, "SMTP_HOST is not set"),
    ({**PRODUCTION, "BASE_URL": "http://news.example.org"}, "BASE_URL must be https in production"),
    ({**PRODUCTION, "INQUIRY_ENCRYPTION_KEY": ""}, "INQUIRY_ENCRYPTION_KEY is not set"),
])
def test_a_bad_setting_stops_the_start_with_one_line_naming_it(tmp_path, monkeypatch, overrides, says):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ConfigError) as refused:
        create_app(overrides)
    assert says in str(refused.value) and "\n" not in str(refused.value)


def test_a_dkim_key_pasted_with_backslash_n_stops_the_start_not_the_first_mail(tmp_path, monkeypatch, dkim_key):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    signing = {"DKIM_DOMAIN": "example.org", "DKIM_SELECTOR": "news"}
    with pytest.raises(ConfigError, match="DKIM_PRIVATE_KEY is not a private key in PEM form"):
        create_app({**signing, "DKIM_PRIVATE_KEY": dkim_key[0].replace("\n", "\\n")})
    (tmp_path / "dkim.pem").write_text(dkim_key[0])
    with create_app({**signing, "DKIM_PRIVATE_KEY": str(tmp_path / "dkim.pem")}).app_context():
        assert settings().dkim_enabled


def test_the_environment_and_overrides_reach_the_typed_settings(app_factory, monkeypatch):
    monkeypatch.setenv("SEND_WARMUP_FROM", "2026-11-02")
    monkeypatch.setenv("BOUNCE_VERP", "yes")
    monkeypatch.setenv("SMTP_SECURITY", "STARTTLS")
    monkeypatch.delenv("SMTP_PORT", raising=False)
    app = app_factory(SEND_BATCH_SIZE=7, SMTP_PORT=0, BASE_URL="https://news.example.org/", WTF_CSRF_ENABLED=True)
    with app.app_context():
        current = settings()
    assert (current.send_batch_size, current.bounce_verp, str(current.send_warmup_from)) == (7, True, "2026-11-02")
    assert (current.smtp_security, current.smtp_port, current.base_url) == ("starttls", 587, "https://news.example.org")
    assert current.list_id == "newsletter.news.example.org"
    assert "SEND_BATCH_SIZE" not in app.config and app.config["WTF_CSRF_ENABLED"] is True
    assert current.secret_key not in repr(current), "secrets stay out of logs and tracebacks"
