"""`flask doctor`, /admin/doctor and the silence banner, against the real SMTP server, Redis, DNS and database.

Each test starts from an installation where every check passes (the test DNS zone of test_domain_check
publishes SPF, DKIM and DMARC for example.org), seeds one misconfiguration, and expects exactly the lines
it breaks to fail, with a non-zero exit.
"""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from newsletter import heartbeats
from newsletter.core.extensions import db
from newsletter.mail import outgoing
from newsletter.models import Heartbeat, OutgoingMail, utcnow
from tests.support import change_settings, free_port, wait_for

ALL_CHECKS = ["Addresses", "Base URL", "DKIM key", "DKIM record", "SPF", "DMARC", "SMTP", "Database", "Redis",
              "Migrations", "Disk", "Beat", "Workers", "Mail queue", "Backup"]


@pytest.fixture
def healthy(app_factory, zone, dkim_key):  # noqa: F811
    """The app sending as example.org with a DKIM key whose record is published, migrations stamped at
    head, and fresh heartbeats from beat, a worker and a backup."""
    app = app_factory(MAIL_FROM="Inner Calm Counseling <newsletter@example.org>", PRACTICE_INBOX="hello@example.org",
                      DKIM_DOMAIN="example.org", DKIM_SELECTOR="news", DKIM_PRIVATE_KEY=dkim_key[0],
                      DNS_RESOLVER=zone.address)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["db", "stamp", "head"]).exit_code == 0
    with app.app_context():
        for name in (heartbeats.BEAT, heartbeats.worker_name("celery@host"), heartbeats.BACKUP):
            heartbeats.record(name)
        db.session.commit()
    yield app
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def doctor(app) -> tuple[int, dict[str, str], str]:
    """Run `flask doctor`: its exit code, each line's status by check name, and what it printed."""
    result = app.test_cli_runner().invoke(args=["doctor"])
    lines = {}
    for line in result.output.splitlines():
        status, _, rest = line.partition(" ")
        name = rest.strip().partition(": ")[0]
        lines[name] = status.lower()
    assert list(lines) == ALL_CHECKS, result.output
    return result.exit_code, lines, result.output


def _age_heartbeat(app, name, by):
    """Make `name` (or, for the worker prefix, every worker: the session's real worker may be beating) old."""
    with app.app_context():
        matching = Heartbeat.name.startswith(name) if name == heartbeats.WORKER_PREFIX else Heartbeat.name == name
        db.session.execute(db.update(Heartbeat).where(matching).values(beat_at=utcnow() - by))
        db.session.commit()


def _forget(app, name):
    with app.app_context():
        db.session.delete(db.session.get(Heartbeat, name))
        db.session.commit()


def _queue_old_mail(app):
    with app.app_context():
        outgoing.queue(kind="test", to="reader@example.org", subject="Hello", text="Hello there.")
        db.session.commit()
        db.session.execute(db.update(OutgoingMail).values(next_attempt_at=utcnow() - timedelta(hours=1)))
        db.session.commit()


SEEDED = {
    # name: (what the deployer got wrong, the lines it must fail)
    "DKIM key pasted into .env with \\n": (
        lambda app, key: change_settings(app, DKIM_PRIVATE_KEY=key.replace("\n", "\\n")), {"DKIM key", "DKIM record"}),
    "MAIL_FROM without a domain": (
        lambda app, key: change_settings(app, MAIL_FROM="Inner Calm <newsletter@>"),
        {"Addresses", "DKIM record", "SPF", "DMARC"}),
    "http BASE_URL in production": (
        lambda app, key: change_settings(app, APP_ENV="production", BASE_URL="http://localhost:5000"), {"Base URL"}),
    "SMTP server not answering": (lambda app, key: change_settings(app, SMTP_PORT=free_port()), {"SMTP"}),
    "Redis not answering": (
        lambda app, key: change_settings(app, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"), {"Redis"}),
    "migrations not at head": (
        lambda app, key: app.test_cli_runner().invoke(args=["db", "stamp", "c4e8a1f27b93"]), {"Migrations"}),
    "beat silent": (lambda app, key: _age_heartbeat(app, heartbeats.BEAT, timedelta(minutes=10)), {"Beat"}),
    "every worker silent": (
        lambda app, key: _age_heartbeat(app, heartbeats.WORKER_PREFIX, timedelta(hours=1)),
        {"Workers"}),
    "no backup ever": (lambda app, key: _forget(app, heartbeats.BACKUP), {"Backup"}),
    "mail waiting an hour": (lambda app, key: _queue_old_mail(app), {"Mail queue"}),
}


def test_doctor_passes_a_healthy_installation(healthy):
    code, lines, output = doctor(healthy)
    assert code == 0, output
    assert set(lines.values()) == {"ok"}, output


@pytest.mark.parametrize("seeded", list(SEEDED))
def test_doctor_names_each_misconfiguration_and_exits_non_zero(healthy, dkim_key, seeded):  # noqa: F811
    seed, expected = SEEDED[seeded]
    seed(healthy, dkim_key[0])
    code, lines, output = doctor(healthy)
    assert code == 1, output
    assert {name for name, status in lines.items() if status == "fail"} == expected, output


def test_a_backup_records_its_time_for_the_doctor(healthy, tmp_path):
    _forget(healthy, heartbeats.BACKUP)
    assert doctor(healthy)[1]["Backup"] == "fail"
    result = healthy.test_cli_runner().invoke(args=["backup", str(tmp_path / "nightly.dump")])
    assert result.exit_code == 0, result.output
    code, lines, output = doctor(healthy)
    assert lines["Backup"] == "ok" and "last backup 0 min ago" in output and code == 0, output


def test_doctor_says_what_to_do(healthy):
    change_settings(healthy, SMTP_PORT=free_port())
    _age_heartbeat(healthy, heartbeats.BEAT, timedelta(minutes=10))
    _, _, output = doctor(healthy)
    assert "Check SMTP_HOST, SMTP_PORT" in output
    assert "docker compose up -d beat" in output


def test_admin_health_page_shows_one_line_per_check(healthy, admin_client):
    _forget(healthy, heartbeats.BACKUP)
    page = admin_client.get("/admin/doctor").get_data(as_text=True)
    for name in ALL_CHECKS:
        assert f'<th scope="row">{name}</th>' in page
    assert '<tr class="doctor-fail"><th scope="row">Backup</th>' in page
    assert "Some checks failed" in page
    assert 'href="/admin/doctor"' in admin_client.get("/admin/").get_data(as_text=True), "linked from the dashboard"


def test_admin_health_page_needs_sign_in(client, healthy):
    assert client.get("/admin/doctor").status_code == 302


def _admin_pages(app) -> list[str]:
    """Every admin page a GET without arguments reaches, besides sign-in and sign-out."""
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if rule.endpoint.startswith("admin.") and "GET" in rule.methods and not rule.arguments
                  and rule.endpoint not in {"admin.login", "admin.login_code", "admin.logout"})


BANNER = 'class="notice silence-banner"'


def test_banner_on_every_admin_page_when_beat_is_silent(healthy, admin_client):
    _age_heartbeat(healthy, heartbeats.BEAT, heartbeats.SILENT_AFTER + timedelta(minutes=1))
    shown = 0
    for path in _admin_pages(healthy):
        response = admin_client.get(path)
        if response.status_code == 200 and response.mimetype == "text/html":
            assert BANNER in response.get_data(as_text=True), path
            assert "Nothing has been heard from beat (the scheduler) since" in response.get_data(as_text=True)
            shown += 1
    assert shown >= 8, "the admin pages were reached"


def test_banner_when_every_worker_is_silent(healthy, admin_client):
    # The session's real worker beats once a minute into this database; should its beat land between the aging
    # and the page, the page rightly shows no banner: age again (two beats cannot both land in that moment).
    for _ in range(2):
        _age_heartbeat(healthy, heartbeats.WORKER_PREFIX, heartbeats.SILENT_AFTER + timedelta(minutes=1))
        page = admin_client.get("/admin/").get_data(as_text=True)
        with healthy.app_context():
            if not heartbeats.last_worker_seen() > utcnow() - heartbeats.SILENT_AFTER:
                break
    assert "Nothing has been heard from every worker since" in page and "no mail is sent at all" in page


def test_no_banner_while_heartbeats_are_fresh(healthy, admin_client):
    for path in _admin_pages(healthy):
        assert BANNER not in admin_client.get(path).get_data(as_text=True), path


def test_a_real_worker_writes_its_heartbeat_and_runs_beats_task(app, start_worker):
    from newsletter.tasks import heartbeat

    process = start_worker(queues="doctor-test")
    own_row = select(Heartbeat.beat_at).where(Heartbeat.name.startswith(heartbeats.worker_name(process.name + "@")))
    with app.app_context():
        wait_for(lambda: (db.session.rollback(), db.session.scalar(own_row))[1],
                 message="the worker wrote no heartbeat")
        assert heartbeats.last_seen(heartbeats.BEAT) is None
        heartbeat.apply_async(queue="doctor-test")
        wait_for(lambda: (db.session.rollback(), heartbeats.last_seen(heartbeats.BEAT))[1],
                 message="the heartbeat task did not record beat")
        assert not heartbeats.silences()


def test_beat_schedules_the_heartbeat_every_minute():
    import worker.celery

    entry = worker.celery.app.conf.beat_schedule["heartbeat"]
    assert entry["task"] == "newsletter.tasks.heartbeat" and entry["schedule"] == heartbeats.EVERY


def test_every_beat_entry_names_the_task_of_that_name():
    """newsletter/tasks.py makes most beat tasks from a table: each name reaches the task that says it."""
    import worker.celery
    from newsletter import tasks

    for entry in worker.celery.app.conf.beat_schedule.values():
        module, _, name = entry["task"].rpartition(".")
        assert module == "newsletter.tasks" and getattr(tasks, name).name == entry["task"]
        assert entry["task"] in worker.celery.app.tasks


# -- secrets as files (Docker secrets) and production refusing defaults: newsletter/core/config.py

def _production(**overrides) -> dict:
    from cryptography.fernet import Fernet

    return {"APP_ENV": "production", "SECRET_KEY": "s" * 40, "INQUIRY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "BASE_URL": "https://news.example.org", "SMTP_HOST": "smtp.example.org", **overrides}


def test_secrets_are_read_from_the_files_their_FILE_variables_name(tmp_path, dkim_key):  # noqa: F811
    from newsletter.core import config

    (tmp_path / "secret_key").write_text("k" * 40 + "\n")
    (tmp_path / "dkim.pem").write_text(dkim_key[0])
    (tmp_path / "postgres_password").write_text("a long/random:p@ssword\n")
    env = {"SECRET_KEY_FILE": str(tmp_path / "secret_key"), "DKIM_PRIVATE_KEY_FILE": str(tmp_path / "dkim.pem"),
           "POSTGRES_PASSWORD_FILE": str(tmp_path / "postgres_password"),
           "DATABASE_URL": "postgresql://newsletter@postgres:5432/newsletter"}
    settings = config.load(env, str(tmp_path))
    assert settings.secret_key == "k" * 40
    assert settings.dkim_private_key == dkim_key[0].strip()
    url = make_url(settings.database_url)
    assert (url.username, url.password, url.host, url.database) == ("newsletter", "a long/random:p@ssword",
                                                                    "postgres", "newsletter")


@pytest.mark.parametrize("env, says", [
    ({"SECRET_KEY_FILE": "/nonexistent/secret_key"}, "SECRET_KEY_FILE is '/nonexistent/secret_key', which cannot be read"),
    ({"SECRET_KEY_FILE": "/etc/hostname", "SECRET_KEY": "x" * 40}, "Both SECRET_KEY and SECRET_KEY_FILE are set"),
])
def test_an_unreadable_or_doubled_secret_file_is_a_clear_start_up_error(tmp_path, env, says):
    from newsletter.core import config

    with pytest.raises(config.ConfigError, match=says):
        config.load(env, str(tmp_path))


@pytest.mark.parametrize("overrides, says", [
    ({"DATABASE_URL": "postgresql://newsletter:newsletter@postgres:5432/newsletter"}, "database password is a default"),
    ({"SECRET_KEY": "change-me"}, "SECRET_KEY is a default"),
    ({"SECRET_KEY": "short"}, "shorter than 16"),
])
def test_production_refuses_default_passwords(tmp_path, overrides, says):
    from newsletter.core import config

    with pytest.raises(config.ConfigError, match=says):
        config.load({}, str(tmp_path), _production(**overrides))
    config.load({}, str(tmp_path), _production(**overrides, APP_ENV="development"))  # development takes them


# -- the production compose file

def _compose_services() -> dict[str, str]:
    """`docker-compose config` (every profile), each service's block of YAML by name."""
    import os
    import re
    import shutil
    import subprocess

    if not shutil.which("docker-compose"):
        pytest.skip("Debian's docker-compose is not installed (scripts/test.sh installs it)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "BASE_URL": "https://news.example.org", "SITE_HOST": "news.example.org"}
    result = subprocess.run(["docker-compose", "-f", os.path.join(root, "docker-compose.yml"), "--profile", "dev",
                             "config"], capture_output=True, text=True, env=env, timeout=60, cwd="/")
    assert result.returncode == 0, result.stderr
    services = result.stdout.split("\nservices:\n", 1)[1].split("\nvolumes:\n", 1)[0]
    return dict(re.findall(r"^  (\w+):\n((?:    .*\n)*)", services + "\n", re.M))


def test_compose_services_are_pinned_healthchecked_rotated_and_keep_secrets_in_files():
    services = _compose_services()
    assert {"caddy", "web", "worker", "beat", "postgres", "redis", "backup", "mailpit"} <= set(services)
    for name, block in services.items():
        if name != "migrate":  # a one-off that exits
            assert "    healthcheck:\n" in block, f"{name} has no healthcheck"
        assert "      driver: json-file\n" in block and "max-size: 10m" in block, f"{name}'s log is not rotated"
        image = block.split("    image: ", 1)[1].split("\n", 1)[0]
        assert image == "therapy-newsletter:latest" or re.fullmatch(r"[\w./-]+:v?\d+\.\d+(\.\d+)?", image), \
            f"{name} floats on {image}"
    for name in ("web", "worker", "beat", "migrate"):
        for secret in ("SECRET_KEY", "INQUIRY_ENCRYPTION_KEY", "POSTGRES_PASSWORD", "DKIM_PRIVATE_KEY"):
            assert f"      {secret}_FILE: /run/secrets/" in services[name], f"{name} reads {secret} from a file"
        assert "newsletter:newsletter@" not in services[name] and "SECRET_KEY:" not in services[name]
    assert "POSTGRES_PASSWORD_FILE: /run/secrets/postgres_password" in services["postgres"]


def test_the_image_never_holds_keys_tests_or_local_state():
    import os

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, ".dockerignore")) as handle:
        ignored = set(handle.read().split())
    assert {".env", "secrets", "*.pem", "*.key", "instance", "tests", "bench", "node_modules", "backups"} <= ignored
