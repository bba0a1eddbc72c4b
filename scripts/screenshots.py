"""Screenshots of the sample article as a mail (phone, desktop, dark mode), on the web archive,
and of the admin's dashboard, editor and inquiry page at 375 and 1280 px, written to
docs/screenshots/. Needs Debian's chromium and Playwright.

    .venv/bin/python scripts/screenshots.py

It builds the app on a throw-away SQLite database, imports seeds/sample-article.txt (or the
file given as the first argument), adds made-up readers and inquiries for the dashboard, and
fails if any page scrolls sideways at phone width.
"""
from __future__ import annotations

import logging
import os
import sys
import tempfile
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
    from newsletter.core.extensions import db

    app = create_app({"DATABASE_URL": f"sqlite:///{folder}/shots.sqlite", "SECRET_KEY": "screenshots",
                      "BASE_URL": "https://news.innercalmcounseling.com", "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False, "OUTBOX_DIR": f"{folder}/outbox"})
    with app.app_context():
        db.create_all()
    return app


def prepare(app, source_path: Path) -> tuple[int, str, str, int]:
    """Import the article, publish it for the archive page, add readers and inquiries; returns
    (the draft's id, the sent issue's slug, the reader's mail HTML, the urgent inquiry's id)."""
    from newsletter.accounts import users
    from newsletter.core.extensions import db
    from newsletter.models.issues import SENT
    from newsletter.publishing import issues
    from newsletter.readers import personalize

    with app.app_context():
        users.set_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        issue = issues.create_from_source(source_path.read_text(encoding="utf-8"), filename=source_path.name)
        draft = issues.duplicate(issue)  # stays a draft, for the editor screenshot
        issue.status, issue.send_at, issue.sent_at = SENT, datetime(2026, 11, 24, 15), datetime(2026, 11, 24, 15, 2)
        issue.dispatched_at = issue.send_at
        db.session.commit()
        inquiry_id = add_practice_life(issue.id)
        mail_html = personalize.fill(issue.email_html, unsubscribe_url="https://news.innercalmcounseling.com/unsubscribe/x",
                                     name="Dana", as_html=True)
        return draft.id, issue.slug, mail_html, inquiry_id


def add_practice_life(issue_id: int) -> int:
    """Made-up readers over twelve weeks, the sent issue's deliveries and a few inquiries; returns
    the id of the urgent inquiry (for the inquiry page's screenshot)."""
    import random
    import secrets
    from datetime import timedelta

    from newsletter.core.extensions import db
    from newsletter.inquiries import intake, states
    from newsletter.models import Delivery, Subscriber, utcnow
    from newsletter.readers.subscriptions import Origin

    rng, now = random.Random(7), utcnow()
    readers = []
    for number in range(140):
        joined = now - timedelta(days=84 * (1 - (number / 140) ** 0.7), hours=rng.randint(0, 20))
        status = rng.choices(["active", "pending", "unsubscribed", "bounced"], [85, 6, 7, 2])[0]
        readers.append(Subscriber(
            email=f"reader{number}@example.org", name="", status=status, token_key=secrets.token_hex(16),
            created_at=joined, confirmed_at=joined if status != "pending" else None,
            unsubscribed_at=joined + timedelta(days=rng.randint(3, 40)) if status == "unsubscribed" else None))
    db.session.add_all(readers)
    db.session.flush()
    db.session.add_all([Delivery(issue_id=issue_id, subscriber_id=reader.id,
                                 status="failed" if number % 45 == 44 else "sent")
                        for number, reader in enumerate(readers) if reader.status in ("active", "bounced")])
    origin = Origin(source="site", ip="203.0.113.9")
    for name, message in [("Dana Reyes", "My partner and I keep having the same argument. Could we book a first session?"),
                          ("Sam Lee", "Do you see couples on Saturday mornings?"),
                          ("Alex Moore", "Things are bad. Some nights I don’t want to live anymore.")]:
        intake.submit(name=name, email=f"{name.split()[0].lower()}@example.com", phone="", preferred_contact="email",
                         message=message, origin=origin)
    db.session.flush()
    from newsletter.models import Inquiry
    first = db.session.query(Inquiry).order_by(Inquiry.id).first()
    states.transition(first, "reply", None)  # the one way a status changes
    first.first_response_at = first.created_at + timedelta(hours=5, minutes=20)
    urgent = db.session.query(Inquiry).filter_by(urgent=True).one()
    db.session.commit()
    return urgent.id


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
        draft_id, slug, mail_html, inquiry_id = prepare(app, source)
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
            admin_pages = (("admin-dashboard", "/admin/"), ("admin-editor", f"/admin/issues/{draft_id}"),
                           ("admin-inquiry", f"/admin/inquiries/{inquiry_id}"))
            for width, height in ((375, 800), (1280, 1000)):
                context = browser.new_context(viewport={"width": width, "height": height})
                page = context.new_page()
                page.goto(f"{base}/admin/login")
                page.fill("input[name=email]", ADMIN_EMAIL)
                page.fill("input[name=password]", ADMIN_PASSWORD)
                page.click("button[type=submit]")
                for name, path in admin_pages:
                    page.goto(f"{base}{path}")
                    page.wait_for_load_state("networkidle")
                    no_sideways_scroll(page, f"{path} at {width}px")
                    if width == 375:  # the whole page: a window as tall as it, so the preview frame is painted
                        page.set_viewport_size({"width": width, "height": page.evaluate("document.body.scrollHeight")})
                    page.wait_for_timeout(300)
                    page.screenshot(path=str(OUT / f"{name}-{width}.png"))
                    page.set_viewport_size({"width": width, "height": height})
                context.close()
            browser.close()
    print(f"screenshots written to {OUT.relative_to(ROOT)}/")


if __name__ == "__main__":
    main()
