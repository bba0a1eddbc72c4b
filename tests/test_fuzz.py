"""Property-based tests (hypothesis) over every public form, the sign-in form and every function that
builds a header: whatever a visitor sends, no 5xx, and every mail that results has an intact header
block with exactly one address in each From, To and Reply-To.

CI runs the "ci" profile (a few hundred examples per form over both databases); a long run:

    HYPOTHESIS_PROFILE=fuzz .venv/bin/python -m pytest tests/test_fuzz.py -p no:cacheprovider
"""
from __future__ import annotations

import re
import secrets
from email import policy
from email.parser import BytesParser
from email.utils import getaddresses

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.mail import compose, outgoing
from newsletter.models import OutgoingMail, Subscriber
from newsletter.models.outbox import MAIL_PENDING, MAIL_SENT
from newsletter.publishing import issue_mail
from newsletter.readers import subscriptions
from newsletter.sending import ledger
from tests.helpers import EMAILS, LOCAL_PART, add_issue, assert_answered, examples, hostile_text
from tests.support import apply_stored_forms, wait_for

# -- what every mail must look like, on the bytes written

SINGLE_ADDRESS = ("from", "to", "reply-to")
EXPECTED_HEADERS = {
    "confirm": ["from", "to", "subject", "date", "message-id", "mime-version", "content-type"],
    "welcome": ["from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post",
                "list-id", "mime-version", "content-type"],
    "inquiry_forward": ["from", "to", "subject", "date", "message-id", "reply-to", "mime-version", "content-type"],
    "inquiry_ack": ["from", "to", "subject", "date", "message-id", "reply-to", "mime-version", "content-type"],
    "issue": ["from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post", "list-id",
              "mime-version", "content-type"],
}
EXPECTED_HEADERS["already_subscribed"] = EXPECTED_HEADERS["welcome"]


def assert_well_formed(raw: bytes, kind: str, recipient: str | None = None) -> None:
    """The header block is intact: 7-bit, CRLF only, the expected names once each, one address per
    From/To/Reply-To (on the raw bytes, and as a mail program parses them)."""
    head, blank, _ = raw.partition(b"\r\n\r\n")
    assert blank, "no blank line ends the header block"
    assert all(byte < 128 for byte in head), "header block not 7-bit"
    assert b"\r" not in head.replace(b"\r\n", b"") and b"\n" not in head.replace(b"\r\n", b""), "bare CR or LF"
    lines = re.split(rb"\r\n(?![ \t])", head)
    assert all(re.match(rb"[A-Za-z][A-Za-z0-9-]*: ", line) for line in lines), lines
    names = [line.split(b":", 1)[0].decode().lower() for line in lines]
    assert names == EXPECTED_HEADERS[kind], names
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    for name, line in zip(names, lines):
        if name in SINGLE_ADDRESS:
            value = re.sub(rb"\r\n[ \t]", b" ", line.split(b":", 1)[1])
            without_words = re.sub(rb"=\?utf-8\?b\?[A-Za-z0-9+/=]*\?=", b"", value)
            assert without_words.count(b"@") == 1 and b"," not in without_words, value
            [header] = parsed.get_all(name)
            assert len(header.addresses) == 1, str(header)
            assert len(getaddresses([str(header)])) == 1, str(header)
    if recipient is not None:
        assert parsed["To"].addresses[0].addr_spec == recipient


class MailChecker:
    """Checks every message the outbox stored since the last look."""

    def __init__(self, app):
        self.app, self.last_id, self.checked = app, 0, 0

    def check_new(self) -> None:
        with self.app.app_context():
            rows = db.session.scalars(select(OutgoingMail).where(OutgoingMail.id > self.last_id)
                                      .order_by(OutgoingMail.id)).all()
            for row in rows:
                assert_well_formed(outgoing.message_bytes(row), row.kind, row.recipient)
                self.last_id, self.checked = row.id, self.checked + 1
                if self.checked % 500 == 0:
                    print(f"fuzz: {self.checked} mails checked, all well formed", flush=True)
            db.session.remove()

    def deliver_and_check(self, smtp) -> None:
        """Send what was stored through the real outbox path (here, or a worker that took the hand-off)
        and SMTP server; check everything that arrived."""
        with self.app.app_context():
            while outgoing.deliver_due():  # sweeps of at most 200, until none is due (a long run stores thousands)
                pass
            wait_for(self._all_tried, timeout=120, message="stored mail was not sent")
            sent = db.session.scalar(select(func.count()).select_from(OutgoingMail)
                                     .where(OutgoingMail.status == MAIL_SENT))
            db.session.remove()
        assert sent == len(smtp.messages)
        for received in smtp.messages:
            assert_well_formed(received.raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"),
                               _kind_of(received.message), received.rcpt_tos[0])


    @staticmethod
    def _all_tried() -> bool:
        """Every stored message sent, failed, or deferred with a reason (nothing in flight)."""
        db.session.remove()
        return not any(error == "" for error in db.session.scalars(  # last_error is encrypted: compared here
            select(OutgoingMail.last_error).where(OutgoingMail.status == MAIL_PENDING)))


def _kind_of(message) -> str:
    subject = str(message["Subject"])
    if message["Reply-To"] is not None:
        return "inquiry_forward"
    if message["List-Id"] is not None:
        return "welcome" if subject.startswith("Welcome") else "already_subscribed"
    return "confirm" if "onfirm" in subject else "inquiry_ack"






# -- the public forms

SIGNUP = st.fixed_dictionaries({"email": EMAILS, "name": hostile_text(150)},
                               optional={"website": hostile_text(30)})
CONTACT = st.fixed_dictionaries(
    {"name": hostile_text(150), "email": EMAILS, "message": hostile_text(500)},
    optional={"phone": st.one_of(st.from_regex(r"[0-9+() -]{0,40}", fullmatch=True), hostile_text(50)),
              "preferred_contact": st.one_of(st.sampled_from(["email", "phone"]), hostile_text(20)),
              "website": hostile_text(30)},
)


# Most generated forms are refused (a blank field, a bad address, a filled honeypot): so that every run checks
# mail, each form is also sent once as a valid form whose name tries header injection.
INJECTING_NAME = "Jo =?utf-8?q?=0D=0AReply-To:_attacker@evil.example?= Reyes"
SIGNUP_ALWAYS = {"email": "jo@example.org", "name": INJECTING_NAME}
CONTACT_ALWAYS = {"name": INJECTING_NAME, "email": "jo@example.org", "message": "Hello\r\nBcc: attacker@evil.example"}


@pytest.mark.parametrize("form_strategy, paths, always", [
    pytest.param(SIGNUP, ["/subscribe", "/embed/subscribe"], SIGNUP_ALWAYS, id="signup"),
    pytest.param(CONTACT, ["/contact", "/embed/contact"], CONTACT_ALWAYS, id="contact"),
])
def test_public_forms_never_fail_and_every_mail_is_well_formed(app, smtp, form_strategy, paths, always, monkeypatch):
    # Thousands of inquiries in minutes: acknowledgements would be paced into later minutes (tested in
    # test_practice_first.py); here every mail is to be sent and checked now.
    monkeypatch.setattr(outgoing, "ACKS_PER_MINUTE", 1_000_000)
    client, checker = app.test_client(), MailChecker(app)

    @given(form=form_strategy, path=st.sampled_from(paths))
    @example(form=always, path=paths[0])
    def post(form, path):
        assert_answered(client.post(path, data=form))
        apply_stored_forms(app)  # what the worker does with the stored signup or inquiry
        checker.check_new()

    post()
    checker.deliver_and_check(smtp)
    assert checker.checked, "no example made a mail: the test checked nothing"
    print(f"{checker.checked} mails checked, all well formed", flush=True)


def _reader(app, name: str) -> tuple[str, str]:
    """A pending reader with this name: (confirm token, unsubscribe token)."""
    with app.app_context():
        address = f"r{secrets.token_hex(6)}@example.org"
        subscriptions.subscribe(address, name, subscriptions.Origin(), "fuzz")
        row = db.session.scalar(select(Subscriber).where(Subscriber.email == address))
        tokens = (subscriptions.confirm_url(row).rsplit("/", 1)[1], subscriptions.unsubscribe_url(row).rsplit("/", 1)[1])
        db.session.commit()
        return tokens


def test_confirm_and_unsubscribe_links_never_fail_whatever_the_token_or_name(app, smtp):
    client, checker = app.test_client(), MailChecker(app)

    @examples(30)
    @given(name=hostile_text(150), mangle=st.one_of(st.none(), hostile_text(40)),
           method=st.sampled_from(["get", "head", "post"]), one_click=st.booleans(),
           extra=st.dictionaries(hostile_text(20), hostile_text(40), max_size=2))
    def links(name, mangle, method, one_click, extra):
        confirm_token, unsubscribe_token = _reader(app, name)
        if mangle is not None:  # a token cut, extended or replaced
            confirm_token, unsubscribe_token = confirm_token[:len(mangle)] + mangle, mangle or "x"
        send = getattr(client, method)
        data = {**extra, **({"List-Unsubscribe": "One-Click"} if one_click else {})}
        assert_answered(send(f"/confirm/{confirm_token}", data=data))
        assert_answered(send(f"/unsubscribe/{unsubscribe_token}", data=data))
        checker.check_new()

    links()
    checker.deliver_and_check(smtp)
    assert checker.checked, "no example made a mail: the test checked nothing"
    print(f"{checker.checked} mails checked, all well formed", flush=True)


def test_sign_in_form_never_fails(app):
    client = app.test_client()

    @examples(15)
    @given(email=EMAILS, password=hostile_text(100), next_page=hostile_text(60))
    def sign_in(email, password, next_page):
        response = client.post("/admin/login", data={"email": email, "password": password},
                               query_string={"next": next_page})
        assert_answered(response)
        assert response.status_code == 400

    sign_in()


# -- the functions that build headers

NAMES = hostile_text(200)


@examples(100)
@given(name=NAMES, reply_name=NAMES, subject=hostile_text(300), local=LOCAL_PART)
def test_build_message_keeps_the_header_block_intact_whatever_the_names(app_ctx, name, reply_name, subject, local):
    message = compose.build_message(to=compose.Mailbox(f"{local}@example.com", name), subject=subject, text="hi",
                                 html="<p>hi</p>", reply_to=compose.Mailbox("dana@example.org", reply_name))
    assert_well_formed(message.as_bytes(policy=policy.SMTP), "inquiry_forward", f"{local}@example.com")


@examples(300)
@given(name=NAMES, header=st.sampled_from(["From", "To", "Reply-To"]))
def test_address_header_names_exactly_one_mailbox(name, header):
    value = compose.address_header(header, compose.Mailbox("one@example.org", name))
    folded = value.fold(policy=policy.SMTP)
    assert folded.startswith(f"{header}: ") and folded.endswith("\r\n") and folded.isascii()
    assert "\r\n" not in folded[:-2].replace("\r\n ", "")
    parsed = BytesParser(policy=policy.default).parsebytes(folded.encode() + b"\r\nbody")
    assert [a.addr_spec for a in parsed[header].addresses] == ["one@example.org"]


@examples(300)
@given(text=hostile_text(400))
def test_text_and_raw_headers_stay_one_header(text):
    folded = compose.text_header("Subject", text).fold(policy=policy.SMTP)
    assert folded.isascii() and re.fullmatch(r"Subject: [^\r\n]*(\r\n [^\r\n]+)*\r\n", folded), folded
    try:
        raw = compose.raw_header("List-Id", text).fold(policy=policy.SMTP)
    except compose.UnsafeHeader:
        return
    assert raw.isascii() and re.fullmatch(r"List-Id: [^\r\n]*(\r\n [^\r\n]+)*\r\n", raw), raw


def test_issue_copy_for_each_reader_keeps_the_header_block_intact(app_ctx):
    issue = add_issue()
    mailer = issue_mail.IssueMail(issue)

    @given(name=NAMES, local=LOCAL_PART)
    def copy(name, local):
        recipient = ledger.Recipient(1, 7, f"{local}@example.org", name, secrets.token_hex(16), "active")
        assert_well_formed(mailer.for_reader(recipient), "issue", f"{local}@example.org")

    copy()
