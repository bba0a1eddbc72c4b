"""Discreet means nothing in an inbox list tells what the mail is: every kind of mail an inquirer gets
(found by running the pipeline, checked against the inquiry templates) goes out in the quiet layout
when they asked for discretion or wrote in crisis, and her reply does not quote them by default."""
from __future__ import annotations

import re
from datetime import timedelta
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path

from sqlalchemy import select

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.inquiries import booking, intake, waitlist
from newsletter.models import Inquiry, OutgoingMail, WaitlistEntry, utcnow
from tests.helpers import CONFIRMED, EVERY_DAY, html_of, queued, submit, text_of

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "emails"
# The mails about an inquiry that go to the practice, not to the person who wrote.
TO_THE_PRACTICE = {"inquiry_forward", "inquiry_notice", "inquiry_nudge", "inquiry_digest", "inquiry_handoff"}
CRISIS_MESSAGE = "We fight every night. Some days I want to kill myself."
GIVEAWAYS = re.compile(r"counsel|therap|crisis|suicid|harm|kill|988|911|741741", re.IGNORECASE)


class _Text(HTMLParser):
    """The visible text of an HTML body in order (head, style and title left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        self._skip += tag in ("head", "style", "title")

    def handle_endtag(self, tag):
        self._skip -= tag in ("head", "style", "title")

    def handle_data(self, data):
        if not self._skip and data.strip("\u2007\ufeff\u034f \r\n\t"):
            self.chunks.append(data.strip("\u2007\ufeff\u034f \r\n\t"))


def _html_text(message: EmailMessage) -> list[str]:
    parser = _Text()
    parser.feed(html_of(message))
    return parser.chunks


def inquirer_kinds() -> set[str]:
    """Every mail template about an inquiry that does not go to the practice."""
    about_inquiries = {path.name.split(".")[0] for path in TEMPLATES.glob("*.*")
                       if not path.name.startswith("_") and "inquiry" in path.read_text()}
    return about_inquiries - TO_THE_PRACTICE


def _everything_an_inquirer_gets(client) -> tuple[str, str]:
    """Two discreet inquirers, one in crisis, taken through every step that writes to them."""
    profile = practice.ensure_profile()
    profile.accepting_clients, profile.consultation_hours = True, EVERY_DAY
    db.session.commit()
    discreet = intake.InquiryDetails(discreet=True)
    dana = db.session.get(Inquiry, submit(message=CRISIS_MESSAGE, details=discreet, waitlist=True).inquiry_id)
    sam = db.session.get(Inquiry, submit(name="Sam Ortiz", email="sam@example.com", details=discreet,
                                         waitlist=True).inquiry_id)
    assert dana.urgent and dana.discreet and sam.discreet and not sam.urgent
    dana_id, sam_id = dana.id, sam.id
    client.post(f"/admin/inquiries/{dana_id}/reply", data={"body": "Hello Dana,\nThank you.", "booking_link": "y",
                                                           **CONFIRMED})
    booking.book(db.session.get(Inquiry, dana_id), booking.open_slots()[0])
    db.session.commit()
    client.post(f"/admin/inquiries/{dana_id}/consultation/cancel", data=CONFIRMED)
    entry = db.session.scalar(select(WaitlistEntry.id).where(WaitlistEntry.inquiry_id == sam_id))
    client.post(f"/admin/waitlist/{entry}/invite", data=CONFIRMED)
    later = utcnow() + timedelta(weeks=60)
    waitlist.check_in(now=later)
    waitlist.check_in(now=later + timedelta(days=waitlist.ANSWER_DAYS + 1))
    db.session.commit()
    return "dana@example.com", "sam@example.com"


def test_every_mail_to_a_discreet_inquirer_says_nothing_in_the_inbox_list(auth, app, client):
    with app.app_context():
        auth.login(client)
        addresses = _everything_an_inquirer_gets(client)
        practice_name = practice.profile().practice_name
        kinds = {row.kind for row in db.session.scalars(select(OutgoingMail)) if row.recipient in addresses}
        assert kinds == inquirer_kinds(), "every kind of mail to an inquirer is tried here"
        mails = [mail for mail in queued() if mail["To"].addresses[0].addr_spec in addresses]

        for mail in mails:
            html_chunks = _html_text(mail)
            preview, header = html_chunks[0], html_chunks[1]  # the preview line, then the top of the mail
            first_line = next(line for line in text_of(mail).splitlines() if line.strip())
            sender_and_subject = f'{mail["From"].addresses[0].display_name} {mail["Subject"]}'
            for seen in (preview, header, first_line, sender_and_subject):
                assert practice_name not in seen and not GIVEAWAYS.search(seen), (mail["Subject"], seen)
            assert preview == "A note about your message", mail["Subject"]


def test_the_reply_form_quotes_only_those_who_did_not_ask_for_quiet(auth, app, client):
    with app.app_context():
        auth.login(client)
        plain = submit(email="plain@example.com").inquiry_id
        discreet = submit(email="discreet@example.com", details=intake.InquiryDetails(discreet=True)).inquiry_id
        urgent = submit(email="urgent@example.com", message=CRISIS_MESSAGE).inquiry_id

    def quote_box(inquiry_id: int) -> str:
        page = client.get(f"/admin/inquiries/{inquiry_id}").get_data(as_text=True)
        return re.search(r'<input[^>]*name="quote_inquiry"[^>]*>', page).group(0)

    assert "checked" in quote_box(plain)
    assert "checked" not in quote_box(discreet) and "checked" not in quote_box(urgent)
