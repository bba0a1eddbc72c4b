"""The migration that threads replies to inquiries from before ack_message_id (d3a9f4b2c7e1), as it really runs: on a
database at the revision before it, holding acknowledgements as the outbox of that release stored them, upgraded to
head (the inquirers' fields are encrypted after it). Their acknowledgement's Message-ID becomes the inquiry's, so a
reply sent from the admin carries In-Reply-To."""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from email import policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from newsletter.core import crypto
from newsletter.core.extensions import db
from newsletter.models import Inquiry
from tests.helpers import queued

BEFORE_BACKFILL = "d3a9f6c2e417"
WHEN = datetime(2026, 11, 2, 15, 30)
FORWARDED = WHEN + timedelta(minutes=1)  # the acknowledgement was queued as the inquiry was forwarded
DRAFT_MARK = b"\x00draft\n"  # how that release's outbox marked a draft (newsletter/mail/outbox.py)
DRAFTED = (1, "dana@example.com", "<ack-drafted@newsletter.test>")  # its acknowledgement still a draft
SENT = (2, "sam@example.com", "<ack-sent@newsletter.test>")  # sent: the finished message is stored
NEVER_ACKNOWLEDGED = (3, "kim@example.com", None)  # acknowledged once a day at most: no outbox row
INQUIRIES = (DRAFTED, SENT, NEVER_ACKNOWLEDGED)  # (id, address, its acknowledgement's Message-ID)

INQUIRY = ("INSERT INTO inquiries (id, name, email, preferred_contact, source, status, urgent, spam, spam_reason, "
           "created_at, forwarded_at) VALUES (:id, 'Dana Reyes', :email, 'email', 'contact', 'new', :false, :false, "
           "'', :when, :forwarded)")
ACK = ("INSERT INTO outgoing_mail (kind, recipient, message, status, attempts, next_attempt_at, created_at, sent_at, "
       "last_error) VALUES ('inquiry_ack', :email, :message, :status, :attempts, :forwarded, :forwarded, :sent_at, '')")


def _draft(email: str, message_id: str) -> bytes:
    """An acknowledgement waiting in the outbox, as that release queued it: its parts, encrypted."""
    parts = {"to": [email, "Dana Reyes"], "from": None, "reply_to": None, "subject": "We received your message",
             "text": "Thank you for reaching out.", "html": None, "inline_html": False, "headers": {},
             "message_id": message_id, "attachments": []}
    return crypto.encrypt(DRAFT_MARK + json.dumps(parts).encode())


def _finished(email: str, message_id: str) -> bytes:
    """An acknowledgement the worker sent: the finished message, encrypted."""
    message = EmailMessage()
    message["To"], message["Subject"], message["Message-ID"] = email, "We received your message", message_id
    message.set_content("Thank you for reaching out.")
    return crypto.encrypt(message.as_bytes(policy=policy.SMTP))


def _old_rows() -> list[tuple[str, dict]]:
    """Three inquiries without ack_message_id, and the acknowledgements of the first two."""
    common = {"when": WHEN, "forwarded": FORWARDED, "false": False}
    rows = [(INQUIRY, {**common, "id": inquiry_id, "email": email}) for inquiry_id, email, _ in INQUIRIES]
    rows.append((ACK, {**common, "email": DRAFTED[1], "message": _draft(*DRAFTED[1:]), "status": "pending",
                       "attempts": 0, "sent_at": None}))
    rows.append((ACK, {**common, "email": SENT[1], "message": _finished(*SENT[1:]), "status": "sent",
                       "attempts": 1, "sent_at": FORWARDED}))
    return rows


@pytest.fixture
def upgraded(upgrade_from):
    """The app on a new database that held those rows at BEFORE_BACKFILL and was then upgraded to head."""
    return upgrade_from(BEFORE_BACKFILL, _old_rows)


def test_old_inquiries_get_their_acknowledgements_message_id_and_replies_thread_under_it(upgraded, auth):
    client = upgraded.test_client()
    with upgraded.app_context():
        auth.login(client)
        assert dict(db.session.execute(select(Inquiry.id, Inquiry.ack_message_id)).all()) == \
            {inquiry_id: message_id for inquiry_id, _, message_id in INQUIRIES}

    form = {"confirmed": "yes", "body": "Glad you wrote."}
    for inquiry_id, _, _ in INQUIRIES:
        assert client.post(f"/admin/inquiries/{inquiry_id}/reply", data=form).status_code == 302

    replies = {reply["To"].addresses[0].addr_spec: reply for reply in queued("inquiry_reply", app=upgraded)}
    for _, email, message_id in INQUIRIES:
        assert (replies[email]["In-Reply-To"], replies[email]["References"]) == (message_id, message_id)
