"""Security headers on every response, and the admin's pages in a real browser under the Content-Security-Policy."""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import pyotp
import pytest
from cryptography.fernet import Fernet

from newsletter import create_app
from newsletter.core.config import ConfigError
from tests.helpers import ADMIN_PASSWORD, next_code

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TITLE = "Why Small Moments of Disconnection Hurt More Than Big Fights"


def csp(response) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))


@pytest.mark.parametrize("path", ["/", "/contact", "/issues", "/admin/login", "/no-such-page"])
def test_every_page_forbids_inline_scripts_and_framing(client, path):
    response = client.get(path)
    policy = csp(response)

    assert policy["script-src"] == "'self'" and "unsafe-inline" not in policy["script-src"]
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in response.headers


def test_embed_pages_may_be_framed_by_the_configured_sites_only(app_factory):
    client = app_factory(EMBED_ALLOWED_ORIGINS="https://www.practice.example").test_client()

    response = client.get("/embed/subscribe")

    assert csp(response)["frame-ancestors"] == "'self' https://www.practice.example"
    assert csp(response)["script-src"] == "'self'"
    assert "X-Frame-Options" not in response.headers


@pytest.mark.parametrize("path", ["/confirm/some-token", "/unsubscribe/some-token"])
def test_token_pages_are_never_cached_nor_leak_the_token(client, path):
    response = client.get(path)

    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_admin_pages_are_never_cached(auth, client, admin):
    assert client.get("/admin/login").headers["Cache-Control"] == "no-store"
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    assert client.get("/admin/").headers["Cache-Control"] == "no-store"
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")


def test_production_adds_hsts(app_factory):
    client = app_factory(APP_ENV="production", BASE_URL="https://newsletter.test").test_client()
    assert client.get("/").headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_production_without_smtp_host_refuses_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="SMTP_HOST"):
        create_app({"APP_ENV": "production", "SECRET_KEY": "x" * 40, "INQUIRY_ENCRYPTION_KEY": Fernet.generate_key().decode(),
                    "BASE_URL": "https://example.org", "SMTP_HOST": ""})


def test_no_template_has_an_inline_script_or_handler():
    found = []
    for folder, _, names in os.walk(os.path.join(ROOT, "templates")):
        for name in names:
            text = open(os.path.join(folder, name), encoding="utf-8").read()
            if re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text) or re.search(r"\son[a-z]+\s*=", text):
                found.append(name)
    assert found == []


@pytest.mark.skipif(not shutil.which("docker-compose"), reason="Debian's docker-compose is not installed")
@pytest.mark.parametrize("profile", [[], ["--profile", "dev"]])
def test_docker_compose_file_validates(profile, tmp_path):
    env = {**os.environ, "BASE_URL": "https://news.example.org", "SITE_HOST": "news.example.org"}
    result = subprocess.run(["docker-compose", "-f", os.path.join(ROOT, "docker-compose.yml"), *profile, "config"],
                            capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert set(re.findall(r"published: (\d+)", result.stdout)) == {"80", "443"}, "only Caddy is reachable"
    assert re.search(r"  mailpit:\n(    .*\n)*    profiles:\n    - dev\n", result.stdout), "Mailpit only for dev"


def test_two_step_set_up_and_sign_in_in_a_browser_with_no_csp_violation(app, admin, runner, live_server, page):
    issue_id = runner.invoke(args=["issue", "import", os.path.join(ROOT, "seeds", "sample-article.txt")]).output.strip()
    violations = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)

    page.goto(f"{live_server}/admin/login")
    page.get_by_label("Email").fill(admin)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Two-step sign-in").click()
    page.get_by_role("button", name="Set up two-step sign-in").click()
    shown = page.locator("img.qr").evaluate("image => image.decode().then(() => image.naturalWidth, () => 0)")
    assert shown > 0, "the QR code is shown"
    secret = page.locator("#totp-secret").inner_text()
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-step sign-in").click()
    assert page.locator("ul.recovery-codes li").count() == 10

    page.get_by_role("button", name="Sign out").click()
    page.get_by_label("Email").fill(admin)
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="One more step").wait_for()
    page.get_by_label("Code").fill(next_code(secret))  # the current code was used up turning it on
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Activity").wait_for()

    page.goto(f"{live_server}/admin/issues/{issue_id}")
    preview = page.frame_locator("#preview")
    preview.get_by_text(TITLE).first.wait_for()
    page.get_by_label("Title", exact=True).fill("A calmer title for the preview")
    page.get_by_text("Preview up to date").wait_for()
    preview.get_by_text("A calmer title for the preview").first.wait_for()
    page.set_viewport_size({"width": 375, "height": 800})
    for path in ("/admin/audit", "/admin/two-factor", "/admin/readers", "/", "/contact"):
        page.goto(f"{live_server}{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, path
    assert violations == []
