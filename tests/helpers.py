"""Factories and helpers shared by the tests: one helper per job, imported from here (never from a test file).

Readers, issues and inquiries are made here; what was queued or sent is read back here. Fixtures (app, client,
auth, admin_client, signed-in browser page) live in conftest.py; real servers and processes in support.py.
"""
from __future__ import annotations

import io
import os
import re
import secrets
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

import pyotp
from flask import current_app
from hypothesis import settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from sqlalchemy import func, select, text

from newsletter.accounts import practice
from newsletter.admin.confirm import CONFIRM_FIELD
from newsletter.core.extensions import db
from newsletter.inquiries import intake
from newsletter.mail import compose, outgoing
from newsletter.models import (
    AdminUser,
    AuditEntry,
    BounceEvent,
    Clinician,
    ConsentEvent,
    Delivery,
    Inquiry,
    Issue,
    OutgoingMail,
    Subscriber,
    WaitlistEntry,
    utcnow,
)
from newsletter.publishing import issues
from newsletter.readers import personalize, subscriptions
from newsletter.readers.subscriptions import Origin
from newsletter.sending import engine, ledger
from tests.support import ROOT, SAMPLE_ARTICLE, apply_stored_forms, make_app

ADMIN_EMAIL, ADMIN_PASSWORD = "therapist@example.com", "correct horse battery"
PRACTICE = "practice@newsletter.test"
READER = "dana@example.org"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) TestBrowser/1.0"
MESSAGE = "We keep having the same fight about my mother-in-law and would like to try EFT."
FORM = {"name": "Dana Reyes", "email": "dana@example.com", "phone": "", "preferred_contact": "email",
        "message": "We would like to learn how couples therapy works.", "website": ""}

# Names a visitor could type into a form, as the attacker in issue 9 did.
HOSTILE_NAMES = [
    "Jo=?utf-8?q?=0D=0AReply-To:_attacker@evil.example?= Smith",
    "Jo=?utf-8?q?=0D=0AFrom:_attacker@evil.example?=",
    "Jo=?utf-8?q?=0D=0A=0D=0A?= body",
    "=?utf-8?q?attacker=40evil=2Eexample=2C?=",
    "A" * 70 + ",attacker@evil.example,",
    '"Dana" <attacker@evil.example>, Sam',
    "Dana\r\nBcc: victim@example.com ☀️",
    "Zoë O’Brien <&> " + "with a very long name " * 4,
]

EMAIL_HTML = (
    "<html><body><p style=\"color:#333\">Dear %%reader_name%%, a long line of article text with “curly quotes”, "
    "an em dash — and an emoji 🌿 that must survive encoding. " + "More words to make the line long. " * 8 +
    "</p><p><a href=\"%%unsubscribe_url%%\">Unsubscribe</a></p></body></html>"
)
EMAIL_TEXT = "Dear %%reader_name%%,\n\nArticle text — with “quotes” and 🌿.\n\nUnsubscribe: %%unsubscribe_url%%\n"


# -- mail as it was queued

def queued(kind: str | None = None, *, app=None) -> list[EmailMessage]:
    """The transactional mail stored so far, parsed as the SMTP server would receive it, oldest first,
    once a worker has written the mail of the signups and inquiries the forms stored. Without `app`,
    runs in the current app context."""
    if app is not None:
        with app.app_context():
            return queued(kind)
    apply_stored_forms(current_app._get_current_object())
    db.session.remove()
    rows = db.session.scalars(select(OutgoingMail).order_by(OutgoingMail.id)).all()
    return [BytesParser(policy=policy.default).parsebytes(outgoing.message_bytes(row))
            for row in rows if kind is None or row.kind == kind]


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()


def html_of(message: EmailMessage) -> str:
    return message.get_body(("html",)).get_content()


def link_in(message, path: str) -> str:
    """The path of the first link to `path` in the plain-text part of a message."""
    return re.search(rf"http://newsletter\.test(/{path}/[A-Za-z0-9_.\-]+)", text_of(message)).group(1)


# -- readers

def photo_file(fmt: str = "PNG", size: tuple[int, int] = (900, 1200), secret: str = "") -> bytes:
    """A photo as a camera or an editor writes it; with `secret`, EXIF (camera, GPS-like text) and a PNG
    comment carry it, so a test can look for it in what is stored."""
    image = Image.new("RGB", size, (180, 120, 90))
    out = io.BytesIO()
    extra = {}
    if secret:
        exif = image.getexif()
        exif[0x010F] = f"Camera {secret}"  # Make
        exif[0x010E] = f"Taken at {secret}"  # ImageDescription
        extra["exif"] = exif
        if fmt == "PNG":
            extra["pnginfo"] = PngImagePlugin.PngInfo()
            extra["pnginfo"].add_text("Comment", secret)
    image.save(out, fmt, **extra)
    return out.getvalue()


def add_reader(email: str = READER, name: str = "Dana", status: str = "active") -> Subscriber:
    reader = Subscriber(email=email, name=name, status=status, token_key=secrets.token_hex(16))
    db.session.add(reader)
    db.session.commit()
    return reader


def add_readers(count: int, status: str = "active", prefix: str = "reader") -> list[Subscriber]:
    readers = [Subscriber(email=f"{prefix}{i}@example.org", name=f"Reader {i}", status=status,
                          token_key=secrets.token_hex(16)) for i in range(count)]
    db.session.add_all(readers)
    db.session.commit()
    return readers


def make_active(app, email: str, then_unsubscribe: bool = False) -> Subscriber:
    """A reader who signed up and confirmed through the service (and left, if asked)."""
    with app.app_context():
        subscriptions.subscribe(email, "", Origin(), "wording")
        row = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
        token = subscriptions.confirm_url(row).rsplit("/", 1)[1]
        subscriptions.confirm(token, Origin())
        if then_unsubscribe:
            subscriptions.unsubscribe(subscriptions.unsubscribe_url(row).rsplit("/", 1)[1], Origin())
        db.session.commit()
        return row


def signup(client, email: str, name: str = "", ip: str = "203.0.113.7", path: str = "/subscribe", **extra):
    """Post the signup form, then apply it as the worker would."""
    response = client.post(path, data={"email": email, "name": name, **extra},
                           environ_base={"REMOTE_ADDR": ip}, headers={"User-Agent": BROWSER})
    apply_stored_forms(client.application)
    return response


def reader(app, email: str) -> Subscriber | None:
    with app.app_context():
        db.session.remove()
        row = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
        if row is not None:
            db.session.expunge(row)
        return row


def reader_status(email: str = READER) -> str:
    db.session.commit()
    return db.session.scalar(select(Subscriber.status).where(Subscriber.email == email))


def consent_events(app, email: str) -> list[ConsentEvent]:
    with app.app_context():
        db.session.remove()
        rows = db.session.scalars(select(ConsentEvent).join(Subscriber).where(Subscriber.email == email)
                                  .order_by(ConsentEvent.id)).all()
        db.session.expunge_all()
        return rows


def bounce_event_count() -> int:
    db.session.commit()
    return db.session.scalar(select(func.count()).select_from(BounceEvent))


# -- issues and their ledger

def add_issue(status: str = "scheduled", send_at=None) -> Issue:
    issue = Issue(title="Turning toward", subject="Turning toward each other — a note 🌿",
                  slug=f"turning-toward-{secrets.token_hex(4)}", email_html=EMAIL_HTML, email_text=EMAIL_TEXT,
                  status=status, send_at=send_at or utcnow() - timedelta(minutes=1))
    db.session.add(issue)
    db.session.commit()
    return issue


def send_all(issue_id: int) -> None:
    for _ in range(ledger.batches_needed(issue_id)):
        engine.send_batch(issue_id)


def copies_by_reader(smtp) -> Counter:
    return Counter(rcpt for message in smtp.messages for rcpt in message.rcpt_tos)


def delivery_statuses(issue_id: int) -> Counter:
    db.session.commit()  # a fresh transaction sees what the sender committed
    return Counter(db.session.scalars(select(Delivery.status).where(Delivery.issue_id == issue_id)))


def issue_status(issue_id: int) -> str:
    db.session.commit()  # see the worker's commits
    return db.session.scalar(select(Issue.status).where(Issue.id == issue_id))


def hand_out_batches(issue_id: int, queue: str, count: int) -> None:
    from newsletter.tasks import send_batch

    for _ in range(count):
        send_batch.apply_async(args=[issue_id], queue=queue)


# -- inquiries

def submit(**fields) -> intake.Submitted:
    """Submit an inquiry through the service and commit, as the view does; then compose its mail, as
    the worker does."""
    values = {"name": "Dana Reyes", "email": "dana@example.com", "phone": "", "preferred_contact": "email",
              "message": MESSAGE, "origin": Origin(source="site", ip="203.0.113.9")}
    values.update(fields)
    result = intake.submit(**values)
    db.session.commit()
    intake.queue_mails(result.inquiry_id)
    db.session.commit()
    return result


def clinician(slug: str, hours: str = "") -> int:
    """A clinician with a profile (and their own consultation hours, when given), made directly; two make a
    group practice. The profile's id."""
    person = AdminUser(email=f"{slug}@newsletter.test", password_hash="not-a-usable-hash", role="clinician")
    db.session.add(person)
    db.session.flush()
    profile = Clinician(admin_id=person.id, name=slug.title(), slug=slug, consultation_hours=hours)
    db.session.add(profile)
    db.session.commit()
    return profile.id


def inquiry_count() -> int:
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(Inquiry))


# -- upgrading an installation

@contextmanager
def upgraded_from(settings: dict, url: str, revision: str, old_rows: Callable[[], list[tuple[str, dict]]],
                  **overrides) -> Iterator:
    """An app on the empty database at `url`, migrated to `revision` by the app's own migrations, given the
    rows `old_rows()` returns (SQL and values, written as that release wrote them; run in the app context),
    then upgraded to head with `flask db upgrade`, as an installation is."""
    app = make_app(settings, DATABASE_URL=url, **overrides)
    migrated = app.test_cli_runner().invoke(args=["db", "upgrade", revision])
    assert migrated.exit_code == 0, migrated.output
    with app.app_context():
        with db.engine.begin() as conn:
            for statement, values in old_rows():
                conn.execute(text(statement), values)
    upgrade = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert upgrade.exit_code == 0, upgrade.output
    try:
        yield app
    finally:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()


# -- concurrency and the second factor

def at_once(calls: list[Callable[[], object]]) -> list[object]:
    """Run every call in its own thread, all released at the same moment; their results in order."""
    start = threading.Barrier(len(calls))

    def run(call):
        start.wait(timeout=60)
        return call()

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls, timeout=300))


def next_code(secret: str) -> str:
    """The code of the next 30-second step (accepted: clocks drift): the current one turned two-step sign-in
    on, and a code is accepted only once."""
    return pyotp.TOTP(secret).at(time.time() + 30)


DATA = Path(__file__).parent / "data"


def audit_actions(app) -> list[str]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry.action).order_by(AuditEntry.id)))


def cli(runner, *args: str) -> str:
    """Run a `flask` command; fail the test with its output unless it succeeded."""
    result = runner.invoke(args=list(args))
    assert result.exit_code == 0, result.output
    return result.output.strip()


def join(app, client, email: str, lists: list[str] | None = None) -> None:
    """Sign up through the form (ticking `lists`) and confirm with the link mailed to the address."""
    assert signup(client, email, **({"lists": lists} if lists else {})).status_code == 200
    [confirmation] = [message for message in queued("confirm", app=app) if message["To"].addresses[0].addr_spec == email]
    assert client.post(link_in(confirmation, "confirm")).status_code == 200


def import_issue(runner, tmp_path, title: str) -> str:
    """An article (the sample's body under its own title) imported as a draft issue; its id."""
    body = SAMPLE_ARTICLE.read_text(encoding="utf-8").split("\n", 1)[1]
    path = tmp_path / f"{title.replace(' ', '-')}.txt"
    path.write_text(f"{title}\n{body}", encoding="utf-8")
    return cli(runner, "issue", "import", str(path))


def copies(smtp, subject: str) -> Counter:
    """How many copies of the mail with this subject each address got."""
    return Counter(rcpt for message in smtp.messages if message.message["Subject"] == subject
                   for rcpt in message.rcpt_tos)


def local_day(app, days_from_today: int, hour: int = 10) -> str:
    """An ISO time `days_from_today` days on, at `hour` in the practice's timezone (what run-due --now reads)."""
    with app.app_context():
        today = datetime.now(UTC).astimezone(practice.timezone()).date()
    return f"{today + timedelta(days=days_from_today)}T{hour:02d}:00"


def run_due(runner, when: str) -> str:
    return cli(runner, "run-due", "--now", when)


def upload_sample(client) -> int:
    response = client.post("/admin/issues/new", data={
        "file": (io.BytesIO(SAMPLE_ARTICLE.read_bytes()), "sample-article.txt"), "source": "", "title": "", "source_format": "",
    }, content_type="multipart/form-data")
    assert response.status_code == 302, response.data
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


HOSTILE = st.sampled_from(HOSTILE_NAMES + [
    "\x00", "\r\n", "\r\n\r\n", "\n.\n", "\u2028", "\u2029", "=?", "=?utf-8?b?PT0=?=", "?=", "<", ">", ",", ";", '"',
    "\\", "@", "<attacker@evil.example>", "a@b.example, c@d.example", "%0d%0a", "\t", "\x7f", "\ufeff", "🌿" * 30,
    "WINNER! Claim your $500 gift card at gift-claims.example/abc", "x" * 300,
])


def hostile_text(max_size: int = 120) -> st.SearchStrategy[str]:
    """Any text, hostile fragments, and the two mixed."""
    return st.one_of(
        st.text(max_size=max_size),
        HOSTILE,
        st.builds(lambda a, b, c: a + b + c, st.text(max_size=20), HOSTILE, st.text(max_size=20)),
    )


LOCAL_PART = st.from_regex(r"[a-z0-9][a-z0-9._+'-]{0,30}", fullmatch=True)


EMAILS = st.one_of(
    st.emails(),
    st.builds("{}@example.org".format, LOCAL_PART),
    st.builds(lambda local, junk: f"{local}{junk}@example.org", LOCAL_PART, HOSTILE),
    hostile_text(80),
)


EVERY_DAY = "\n".join(f"{day} 08:00-20:00" for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))


CONFIRMED = {CONFIRM_FIELD: "yes"}


ONE_SLOT_A_DAY = "\n".join(f"{day} 09:00-09:30" for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))


ARTICLE = "Repair after a rough evening\n\nA first paragraph about turning toward each other.\n"


def examples(ci: int) -> settings:
    """`ci` examples in the CI profile (a slow form: password hashing), the profile's count otherwise."""
    return settings(max_examples=ci if os.environ.get("HYPOTHESIS_PROFILE", "ci") == "ci" else settings().max_examples)


def assert_answered(response) -> None:
    """No 5xx; on long runs (-s), a progress line every 500 requests."""
    assert response.status_code < 500, response.status_code
    ANSWERED["requests"] += 1
    if ANSWERED["requests"] % 500 == 0:
        print(f"fuzz: {ANSWERED['requests']} requests answered, none 5xx", flush=True)


ANSWERED = {"requests": 0}


# -- every mail, rendered from sample contexts (tests/test_mail_quality.py, tests/test_mail_filters.py)

def _sample_reader() -> Subscriber:
    return Subscriber(email="maya.lopez@example.com", name="Maya López")


def _sample_inquiry(*, urgent: bool, preferred: str = "email", waitlist: bool = False) -> Inquiry:
    return Inquiry(id=42, name="Jordan Avery", email="jordan.avery@example.com", preferred_contact=preferred,
                   source="site", status="new", urgent=urgent, spam=False, waitlist=waitlist,
                   created_at=utcnow() - timedelta(hours=30))


SAMPLE_MESSAGE = ("Hello,\n\nMy partner and I keep having the same argument and we would like to try couples "
           "therapy. Do you have evening appointments?\n\nThank you,\nJordan")


def mail_samples() -> dict[str, list[dict]]:
    """Contexts each mail is rendered with, as the code that queues it passes them (every variant that
    changes the layout). Add an entry here when you add a mail to templates/emails/: tests/test_mail_quality.py and
    tests/test_mail_filters.py check every mail that has one."""
    base = current_app.extensions["settings"].base_url
    unsubscribe = f"{base}/unsubscribe/eyJzIjoxMjN9.ZxYw.aBcDeFgHiJkLmNoPqRsTuV"
    preferences = f"{base}/preferences/eyJpZCI6MTIzLCJrIjoiYWJjIn0.aBcDeFgHiJkLmNoPqRsTuV"
    admin_url = f"{base}/admin/inquiries/42"
    return {
        "confirm": [{"subscriber": _sample_reader(), "hours": 48,
                     "confirm_url": f"{base}/confirm/eyJzIjoxMjMsIm4iOiJhYmMifQ.ZxYw.q1w2e3r4t5y6u7i8o9p0"}],
        "welcome": [{"subscriber": _sample_reader(), "unsubscribe_url": unsubscribe, "archive_url": f"{base}/issues",
                     "preferences_url": preferences}],
        "already_subscribed": [{"subscriber": Subscriber(email="a@example.com", name=""),
                                "unsubscribe_url": unsubscribe, "archive_url": f"{base}/issues",
                                "preferences_url": preferences}],
        "break_over": [{"subscriber": _sample_reader(), "unsubscribe_url": unsubscribe, "archive_url": f"{base}/issues",
                        "preferences_url": preferences}],
        "monthly_digest": [{"subscriber": _sample_reader(), "unsubscribe_url": unsubscribe, "archive_url": f"{base}/issues",
                            "preferences_url": preferences, "month_name": "November 2026", "items": [
                                SimpleNamespace(title="Turning toward each other", url=f"{base}/issues/turning-toward",
                                                excerpt="Small moments of connection matter more than grand gestures."),
                                SimpleNamespace(title="When the same argument comes back", url=f"{base}/issues/same-argument",
                                                excerpt="Most couples have one argument they keep having. Here is why…")]}],
        "address_change": [{"subscriber": _sample_reader(), "hours": 48,
                            "confirm_url": f"{base}/preferences/address/eyJpZCI6MSwibmV3IjoibUBleC5vcmcifQ.ZxYw.q1w2"}],
        "inquiry_ack": [{"inquiry": _sample_inquiry(urgent=False), "reply_days": 2, "greeting_name": "Jordan",
                         "reply_by": "Thursday, December 3", "replier": "Maya López"},
                        {"inquiry": _sample_inquiry(urgent=True, preferred="phone"), "reply_days": 1, "greeting_name": "",
                         "replier": "Shoshana Adler"},
                        {"inquiry": _sample_inquiry(urgent=False, waitlist=True), "reply_days": 2, "check_weeks": 6,
                         "replier": "Shoshana Adler"}],
        "inquiry_forward": [
            {"inquiry": _sample_inquiry(urgent=urgent), "first_name": "Jordan", "message": SAMPLE_MESSAGE,
             "phone": "720-555-0142" if urgent else "", "admin_url": admin_url}
            for urgent in (False, True)
        ],
        "inquiry_notice": [{"inquiry": _sample_inquiry(urgent=urgent), "admin_url": admin_url} for urgent in (False, True)],
        "admin_lockout": [{"email": "shoshana@example.com", "minutes": 30, "locked_until": utcnow(),
                           "admin_url": f"{base}/admin/audit"}],
        "admin_invitation": [{"link": f"{base}/admin/invitation/abc.def", "days": 7, "role": "clinician",
                              "practice_name": "Inner Calm Counseling", "invited_by": "shoshana@example.com"}],
        "inquiry_reply": [{"inquiry": _sample_inquiry(urgent=False), "body": "Dear Jordan,\n\nThank you for writing. "
                           "I have evening times on Tuesdays and Thursdays.\n\nWarmly,\nShoshana",
                           "quoted": quoted, "booking_link": booking}
                          for quoted, booking in ((SAMPLE_MESSAGE, f"{base}/consultation/eyJpIjo0Mn0.abc"), ("", None))],
        "inquiry_nudge": [{"due": [(_sample_inquiry(urgent=True), admin_url, "Thursday, December 3", "due today"),
                                   (_sample_inquiry(urgent=False), admin_url, "Friday, December 4", "1 business day left")],
                           "names": True, "list_url": f"{base}/admin/inquiries", "overdue": overdue}
                          for overdue in (False, True)],
        "inquiry_handoff": [{"inquiry": _sample_inquiry(urgent=urgent), "admin_url": admin_url,
                             "handoff": "Handed from Maya López, LMFT to Leo Park, LPC.",
                             "note": "Maya is away this week; they asked for evening times." if urgent else "",
                             "reply_by": "Thursday, December 3"} for urgent in (False, True)],
        "consultation_invite": [{"inquiry": _sample_inquiry(urgent=False), "when": "Thursday, December 3 at 4:30 PM",
                                 "cancelled": cancelled, "minutes": 15, "for_practice": for_practice,
                                 "how": "Shoshana Levin calls you at 720-555-0142", "admin_url": admin_url}
                                for cancelled in (False, True) for for_practice in (False, True)],
        "waitlist_check": [{"inquiry": _sample_inquiry(urgent=False), "entry": WaitlistEntry(joined_at=utcnow()),
                            "answer_url": f"{base}/waitlist/eyJ3IjoxfQ.abc", "answer_days": 14}],
        "waitlist_goodbye": [{"inquiry": _sample_inquiry(urgent=False), "entry": WaitlistEntry(joined_at=utcnow())}],
        "waitlist_invite": [{"inquiry": _sample_inquiry(urgent=False), "entry": WaitlistEntry(joined_at=utcnow())}],
        "inquiry_digest": [{
            "waiting": [(_sample_inquiry(urgent=True), admin_url, "1 day"), (_sample_inquiry(urgent=False), admin_url, "2 days")],
            "hours": 24, "names": True, "list_url": f"{base}/admin/inquiries",
        }],
    }


def sample_mails() -> dict[str, tuple[dict, compose.RenderedMail]]:
    """Every mail rendered as sent (CSS inlined), with its context: {"confirm-1": (context, mail), ..., "issue-1": ...}.
    Needs an app and request context."""
    samples = mail_samples()
    names = sorted(path.name.removesuffix(".html") for path in (ROOT / "templates" / "emails").glob("*.html")
                   if not path.name.startswith("_"))
    missing = [name for name in names if name not in samples and name != "issue"]
    assert not missing, (
        f"No sample context for templates/emails/{', '.join(missing)}.html: add one to mail_samples() in "
        "tests/helpers.py so its HTML is checked like every other mail's."
    )
    rendered = {}
    for name in names:
        if name == "issue":
            rendered["issue-1"] = ({"unsubscribe_url": f"{current_app.extensions['settings'].base_url}/u/abc"}, _sample_issue())
            continue
        for number, context in enumerate(samples[name], 1):
            rendered[f"{name}-{number}"] = (context, compose.render(name, **context))
    return rendered


def _sample_issue() -> compose.RenderedMail:
    issue = issues.create_from_source(SAMPLE_ARTICLE.read_text(encoding="utf-8"))
    fill = {"unsubscribe_url": f"{current_app.extensions['settings'].base_url}/u/abc", "name": "Maya"}
    return compose.RenderedMail(subject=issue.subject, text=personalize.fill(issue.email_text, as_html=False, **fill),
                                html=personalize.fill(issue.email_html, as_html=True, **fill))


CSRF_TOKEN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_token(client, path: str) -> str:
    """The CSRF token of the form on `path`, as a browser would send it back (apps made with WTF_CSRF_ENABLED)."""
    return CSRF_TOKEN.search(client.get(path).get_data(as_text=True)).group(1)


# -- a group practice, each person signed in on their own client (tests/test_group_week.py)

def group_practice(app, auth, owner, people: dict[str, str], profiles: dict[str, tuple[str, str]]) -> dict:
    """Everyone of `people` (address: role) signed in on a client of their own; the owner gives each of
    `profiles` (address: (name, web name)) a profile on the Team page and sends whoever fits to the coordinator.
    Requests run outside any app context, so each client keeps its own signed-in user. The clients by address,
    the owner's (already signed in, as ADMIN_EMAIL) too."""
    clients = {email: auth.login(app.test_client(), role=role, email=email) for email, role in people.items()}
    for email, (name, slug) in profiles.items():
        with app.app_context():
            admin_id = db.session.scalar(select(AdminUser.id).where(AdminUser.email == email))
        response = owner.post("/admin/team", data={"admin_id": str(admin_id), "name": name, "slug": slug,
                                                   "accepting_clients": "y"})
        assert response.status_code == 302, response.get_data(as_text=True)
    assert owner.post("/admin/team/routing", data={"routing": "coordinator", "assignee_mail": "full"}).status_code == 302
    return {ADMIN_EMAIL: owner, **clients}


def place_in(inquiry, status: str) -> None:
    """Arrange a stored inquiry in `status`, as a test's starting point, without an action of the table (the app
    itself changes a status through states.transition alone: the model refuses any other write)."""
    from newsletter.models.inquiries import changing_status

    with changing_status(inquiry):
        inquiry.status = status
