"""Screenshots of the sample article as a mail (phone, desktop, dark mode), on the web archive
and in the admin editor, written to docs/screenshots/. Needs Debian's chromium and Playwright.

    .venv/bin/python scripts/screenshots.py

It builds the app on a throw-away SQLite database, imports seeds/sample-article.txt (or the
file given as the first argument) and fails if any page scrolls sideways at phone width.
"""
from __future__ import annotations

import os
import sys
import tempfile
import logging
import threading
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
OUT = ROOT / "docs" / "screenshots"
SAMPLE = ROOT / "seeds" / "sample-article.txt"
ADMIN_EMAIL, ADMIN_PASSWORD = "therapist@example.com", "screenshots only"


def build_app(folder: str):
    os.environ["INSTANCE_PATH"] = folder
    from newsletter import create_app
    from newsletter.extensions import db

    app = create_app({"DATABASE_URL": f"sqlite:///{folder}/shots.sqlite", "SECRET_KEY": "screenshots",
                      "BASE_URL": "https://news.innercalmcounseling.com", "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False, "OUTBOX_DIR": f"{folder}/outbox"})
    with app.app_context():
        db.create_all()
    return app


def prepare(app, source_path: Path) -> tuple[int, str, str]:
    """Import the article, publish it for the archive page; returns (id, slug, the reader's mail HTML)."""
    from newsletter import accounts, issues, personalize
    from newsletter.extensions import db
    from newsletter.models.issues import SENT

    with app.app_context():
        accounts.set_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        issue = issues.create_from_source(source_path.read_text(encoding="utf-8"), filename=source_path.name)
        draft = issues.duplicate(issue)  # stays a draft, for the editor screenshot
        issue.status, issue.send_at, issue.sent_at = SENT, datetime(2026, 11, 24, 15), datetime(2026, 11, 24, 15, 2)
        db.session.commit()
        mail_html = personalize.fill(issue.email_html, unsubscribe_url="https://news.innercalmcounseling.com/unsubscribe/x",
                                     name="Dana", as_html=True)
        return draft.id, issue.slug, mail_html


def serve(app) -> str:
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_port}"


def no_sideways_scroll(page, what: str) -> None:
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if overflow > 0:
        raise SystemExit(f"{what} scrolls sideways by {overflow}px")


def main() -> None:
    from playwright.sync_api import sync_playwright

    logging.disable(logging.INFO)
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else SAMPLE
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        app = build_app(folder)
        draft_id, slug, mail_html = prepare(app, source)
        base = serve(app)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=os.environ.get("CHROMIUM", "/usr/bin/chromium"),
                                                 args=["--no-sandbox", "--disable-gpu"])
            for width, scheme, name in ((375, "light", "email-375"), (600, "light", "email-600"),
                                        (320, "light", "email-320"), (375, "dark", "email-375-dark")):
                page = browser.new_page(viewport={"width": width, "height": 800}, color_scheme=scheme)
                page.set_content(mail_html)
                no_sideways_scroll(page, f"the mail at {width}px")
                page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                page.close()
            page = browser.new_page(viewport={"width": 375, "height": 800})
            page.goto(f"{base}/issues/{slug}")
            no_sideways_scroll(page, "the archive page at 375px")
            page.screenshot(path=str(OUT / "archive-375.png"), full_page=True)
            page.close()
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"{base}/admin/login")
            page.fill("input[name=email]", ADMIN_EMAIL)
            page.fill("input[name=password]", ADMIN_PASSWORD)
            page.click("button[type=submit]")
            page.goto(f"{base}/admin/issues/{draft_id}")
            page.wait_for_timeout(500)
            page.screenshot(path=str(OUT / "admin-editor.png"), full_page=False)
            page.close()
            browser.close()
    print(f"screenshots written to {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
