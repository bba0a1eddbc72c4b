"""Every mail the product sends, checked as the reader's mail program will see it.

Each template in templates/emails/ is rendered with a realistic context (SAMPLES), the issue from the
therapist's sample article, all with CSS inlined as sent. Then:
- the caniemail data (@jsx-email/doiuse-email, tests/js/doiuse.mjs) for Gmail, Outlook, Apple Mail and
  Yahoo: any error fails unless KNOWN_FALLBACKS says why that feature is safe to lack;
- axe-core in Chromium, light and dark, 375 px wide: contrast and the other rules, no sideways scroll.

A new mail gets checked on its own once it has an entry in SAMPLES; without one the test says so.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest

from newsletter.mail import compose
from newsletter.models import Inquiry, Subscriber, WaitlistEntry, utcnow
from newsletter.publishing import issues
from newsletter.readers import personalize
from tests.support import ROOT, SAMPLE_ARTICLE

EMAILS = ROOT / "templates" / "emails"
NODE_MODULES = ROOT / "node_modules"
DOIUSE = ROOT / "tests" / "js" / "doiuse.mjs"
AXE = NODE_MODULES / "axe-core" / "axe.min.js"

# caniemail errors that are fine, each with the reason. A key is the feature as doiuse-email names it.
KNOWN_FALLBACKS = {
    "@media": "Only the dark-mode colours live there (one width serves phones and desktops); a client without "
              "media queries shows the light layout, which is what Outlook for Windows shows anyway.",
    "<body> element": "Every HTML document has one; clients that drop <body> lose its background only, and the "
                      "outer table carries bgcolor.",
    "role attribute": "role=presentation on the layout tables tells screen readers they are not data; a client "
                      "that drops the attribute shows the same table.",
    "word-break": "Only breaks the long link written under a button, so it cannot widen the mail on a phone; "
                  "without it the link runs past the edge and the button above still works.",
}
# Outlook's errors per transactional mail stay under this: the four fallbacks above, a few times each.
OUTLOOK_ERRORS_MAX = 9
_ERROR = re.compile(r"^`(?P<feature>.+?)` is not supported by `(?P<client>[^`]+)`$")

# axe rules about web pages, not mails: a mail has no landmarks to navigate by, and a short note
# (the acknowledgement) opens with its greeting; its subject line is its heading.
AXE_RULES_OFF = {
    "region": {"enabled": False},
    "landmark-one-main": {"enabled": False},
    "page-has-heading-one": {"enabled": False},
}


def _subscriber() -> Subscriber:
    return Subscriber(email="maya.lopez@example.com", name="Maya López")


def _inquiry(*, urgent: bool, preferred: str = "email", waitlist: bool = False) -> Inquiry:
    return Inquiry(id=42, name="Jordan Avery", email="jordan.avery@example.com", preferred_contact=preferred,
                   source="site", status="new", urgent=urgent, spam=False, waitlist=waitlist,
                   created_at=utcnow() - timedelta(hours=30))


MESSAGE = ("Hello,\n\nMy partner and I keep having the same argument and we would like to try couples "
           "therapy. Do you have evening appointments?\n\nThank you,\nJordan")


def _samples() -> dict[str, list[dict]]:
    """Contexts each mail is rendered with, as the code that queues it passes them (every variant that
    changes the layout). Add an entry here when you add a mail to templates/emails/."""
    base = "http://newsletter.test"
    unsubscribe = f"{base}/unsubscribe/eyJzIjoxMjN9.ZxYw.aBcDeFgHiJkLmNoPqRsTuV"
    preferences = f"{base}/preferences/eyJpZCI6MTIzLCJrIjoiYWJjIn0.aBcDeFgHiJkLmNoPqRsTuV"
    admin_url = f"{base}/admin/inquiries/42"
    return {
        "confirm": [{"subscriber": _subscriber(), "hours": 48,
                     "confirm_url": f"{base}/confirm/eyJzIjoxMjMsIm4iOiJhYmMifQ.ZxYw.q1w2e3r4t5y6u7i8o9p0"}],
        "welcome": [{"subscriber": _subscriber(), "unsubscribe_url": unsubscribe, "archive_url": f"{base}/issues",
                     "preferences_url": preferences}],
        "already_subscribed": [{"subscriber": Subscriber(email="a@example.com", name=""),
                                "unsubscribe_url": unsubscribe, "archive_url": f"{base}/issues",
                                "preferences_url": preferences}],
        "break_over": [{"subscriber": _subscriber(), "unsubscribe_url": unsubscribe, "archive_url": f"{base}/issues",
                        "preferences_url": preferences}],
        "address_change": [{"subscriber": _subscriber(), "hours": 48,
                            "confirm_url": f"{base}/preferences/address/eyJpZCI6MSwibmV3IjoibUBleC5vcmcifQ.ZxYw.q1w2"}],
        "inquiry_ack": [{"inquiry": _inquiry(urgent=False), "reply_days": 2, "greeting_name": "Jordan",
                         "reply_by": "Thursday, December 3"},
                        {"inquiry": _inquiry(urgent=True, preferred="phone"), "reply_days": 1, "greeting_name": ""},
                        {"inquiry": _inquiry(urgent=False, waitlist=True), "reply_days": 2, "check_weeks": 6}],
        "inquiry_forward": [
            {"inquiry": _inquiry(urgent=urgent), "first_name": "Jordan", "message": MESSAGE,
             "phone": "720-555-0142" if urgent else "", "admin_url": admin_url}
            for urgent in (False, True)
        ],
        "inquiry_notice": [{"inquiry": _inquiry(urgent=urgent), "admin_url": admin_url} for urgent in (False, True)],
        "admin_lockout": [{"email": "shoshana@example.com", "minutes": 30, "locked_until": utcnow(),
                           "admin_url": f"{base}/admin/audit"}],
        "inquiry_reply": [{"inquiry": _inquiry(urgent=False), "body": "Dear Jordan,\n\nThank you for writing. "
                           "I have evening times on Tuesdays and Thursdays.\n\nWarmly,\nShoshana",
                           "quoted": quoted, "booking_link": booking}
                          for quoted, booking in ((MESSAGE, f"{base}/consultation/eyJpIjo0Mn0.abc"), ("", None))],
        "inquiry_nudge": [{"due": [(_inquiry(urgent=True), admin_url, "Thursday, December 3", "due today"),
                                   (_inquiry(urgent=False), admin_url, "Friday, December 4", "1 business day left")],
                           "names": True, "list_url": f"{base}/admin/inquiries"}],
        "consultation_invite": [{"inquiry": _inquiry(urgent=False), "when": "Thursday, December 3 at 4:30 PM",
                                 "cancelled": cancelled, "minutes": 15, "for_practice": for_practice,
                                 "how": "Shoshana Levin calls you at 720-555-0142", "admin_url": admin_url}
                                for cancelled in (False, True) for for_practice in (False, True)],
        "waitlist_check": [{"inquiry": _inquiry(urgent=False), "entry": WaitlistEntry(joined_at=utcnow()),
                            "answer_url": f"{base}/waitlist/eyJ3IjoxfQ.abc", "answer_days": 14}],
        "waitlist_goodbye": [{"inquiry": _inquiry(urgent=False), "entry": WaitlistEntry(joined_at=utcnow())}],
        "waitlist_invite": [{"inquiry": _inquiry(urgent=False), "entry": WaitlistEntry(joined_at=utcnow())}],
        "inquiry_digest": [{
            "waiting": [(_inquiry(urgent=True), admin_url, "1 day"), (_inquiry(urgent=False), admin_url, "2 days")],
            "hours": 24, "names": True, "list_url": f"{base}/admin/inquiries",
        }],
    }


@pytest.fixture
def mail_app(app):
    """The app, once: what a mail looks like does not depend on the database behind it."""
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        pytest.skip("checked on SQLite; rendering is the same on PostgreSQL")
    with app.test_request_context():
        yield app


def sent_mails(tmp_path: Path) -> dict[str, Path]:
    """Every HTML mail as sent, written to tmp_path: {"confirm-1": path, ..., "issue-1": path}."""
    samples = _samples()
    names = sorted(path.name.removesuffix(".html") for path in EMAILS.glob("*.html")
                   if not path.name.startswith("_"))
    missing = [name for name in names if name not in samples and name != "issue"]
    assert not missing, (
        f"No sample context for templates/emails/{', '.join(missing)}.html: add one to _samples() in "
        "tests/test_mail_quality.py so its HTML is checked like every other mail's."
    )
    rendered = {}
    for name in names:
        if name == "issue":
            issue = issues.create_from_source(SAMPLE_ARTICLE.read_text(encoding="utf-8"))
            htmls = [personalize.fill(issue.email_html, unsubscribe_url="http://newsletter.test/u/abc",
                                      name="Maya", as_html=True)]
        else:
            htmls = [compose.render(name, **context).html for context in samples[name]]
        for number, html in enumerate(htmls, 1):
            path = tmp_path / f"{name}-{number}.html"
            path.write_text(html, encoding="utf-8")
            rendered[path.stem] = path
    return rendered


def caniemail_errors(paths: list[Path]) -> dict[str, list[str]]:
    """doiuse-email's errors per file (its stem), run once for all files."""
    if not (NODE_MODULES / "@jsx-email" / "doiuse-email").is_dir():
        pytest.fail("node_modules is missing: run `npm ci` (scripts/test.sh does it)")
    node = shutil.which("node")
    assert node, "node (20 or later) is needed for the mail checks"
    result = subprocess.run([node, str(DOIUSE), *map(str, paths)], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return {Path(file).stem: report["errors"] for file, report in json.loads(result.stdout).items()}


def unexplained(errors: list[str]) -> list[str]:
    """The errors no KNOWN_FALLBACKS entry explains."""
    left = []
    for error in errors:
        match = _ERROR.match(error)
        if not match or match["feature"] not in KNOWN_FALLBACKS:
            left.append(error)
    return sorted(set(left))


def test_every_mail_is_supported_by_gmail_outlook_apple_mail_and_yahoo(mail_app, tmp_path):
    mails = sent_mails(tmp_path)
    errors = caniemail_errors(list(mails.values()))

    assert set(errors) == set(mails)
    problems = {name: unexplained(found) for name, found in errors.items() if unexplained(found)}
    assert not problems, f"Features these mail programs lack (fix, or explain in KNOWN_FALLBACKS): {problems}"
    outlook = {name: sum("`outlook." in error for error in found) for name, found in errors.items()
               if not name.startswith("issue-")}
    assert max(outlook.values()) <= OUTLOOK_ERRORS_MAX, f"Outlook errors per mail: {outlook}"


def test_every_mail_is_a_whole_html_document_with_a_doctype(mail_app, tmp_path):
    starts = {name: path.read_text(encoding="utf-8")[:30] for name, path in sent_mails(tmp_path).items()}

    assert {name for name, start in starts.items() if not start.startswith("<!doctype html>\n<html")} == set()


def test_the_caniemail_check_catches_an_unsupported_feature(tmp_path):
    flex = tmp_path / "flex.html"
    flex.write_text('<html><body><div style="display: flex; background-image: url(x.png)">Hi</div></body></html>')

    left = unexplained(caniemail_errors([flex])["flex"])

    assert any("display:flex" in error and "outlook.windows" in error for error in left), left


@pytest.fixture
def phone(browser):
    """Open a 375 px wide page in a colour scheme: `phone("dark")`; all closed after the test."""
    contexts = []

    def open_page(scheme: str):
        contexts.append(browser.new_context(viewport={"width": 375, "height": 800}, color_scheme=scheme))
        return contexts[-1].new_page()

    yield open_page
    for context in contexts:
        context.close()


def axe_violations(page, html: str) -> tuple[list[dict], int]:
    """axe-core's violations for `html` shown in `page`, and the page's scroll width."""
    page.set_content(html)
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate("rules => axe.run(document, {rules}).then(r => r.violations)", AXE_RULES_OFF)
    width = page.evaluate("document.documentElement.scrollWidth")
    return [{"rule": v["id"], "help": v["help"], "where": [n["target"] for n in v["nodes"]][:3]}
            for v in violations], width


def test_every_mail_passes_axe_in_light_and_dark_mode_at_phone_width(mail_app, phone, tmp_path):
    mails = sent_mails(tmp_path)
    problems = {}
    for scheme in ("light", "dark"):
        page = phone(scheme)
        for name, path in mails.items():
            violations, width = axe_violations(page, path.read_text(encoding="utf-8"))
            if violations:
                problems[f"{name} ({scheme})"] = violations
            if width > 375:
                problems[f"{name} ({scheme}) scrolls sideways"] = width

    assert not problems, problems


def test_the_axe_check_catches_low_contrast(phone):
    pale = '<html lang="en"><head><title>x</title></head><body><p style="color:#aaaaaa;background:#ffffff">Pale words</p></body></html>'

    violations, _ = axe_violations(phone("light"), pale)

    assert [v["rule"] for v in violations] == ["color-contrast"]
