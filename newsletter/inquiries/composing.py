"""The mails an inquiry sets off: the forward (or notice) to the practice and the acknowledgement to the
inquirer, and what every mail to an inquirer shares (the sender, the greeting, the admin link).

No Flask request and no Celery here; callers commit.
"""
from __future__ import annotations

import re
from datetime import timedelta
from email.utils import make_msgid

from sqlalchemy import func, select

from newsletter.accounts.practice import profile
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.inquiries import business_days
from newsletter.mail import compose, outgoing
from newsletter.models import Inquiry, OutgoingMail, WaitlistEntry, utcnow
from newsletter.models.inquiries import HEARD_FROM

# Every mail about an inquiry that carries the inquirer's words or address (purged with the inquiry).
MAIL_KINDS = ("inquiry_forward", "inquiry_notice", "inquiry_ack", "inquiry_reply", "waitlist_check",
              "waitlist_goodbye", "waitlist_invite", "inquiry_handoff")

# A first name as people write one: letters, with inner ' or - (Anne-Marie, O'Neil).
_FIRST_NAME = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*\Z")
# What a name never holds and advertising does: digits, money, links, addresses.
_NOT_A_NAME = re.compile(r"[\d$€£@/:]|www|\.[a-z]{2,}", re.IGNORECASE)
ACK_PER_ADDRESS = timedelta(days=1)


def greeting_name(name: str) -> str:
    """The first name to greet an inquirer by in the acknowledgement, or "" ("Hello,").

    The acknowledgement goes to whatever address was typed, so it must not carry a stranger's free
    text from the practice's address: only a first word that looks like a name, from a name that
    holds no digits, money, links or addresses.
    """
    first = compose.one_line(name, 100).split(" ")[0]
    if _NOT_A_NAME.search(name) or not _FIRST_NAME.match(first) or len(first) > 30:
        return ""
    return first


def _acknowledged_recently(address: str) -> bool:
    """An acknowledgement went to this address in the last ACK_PER_ADDRESS (one a day, whatever is sent)."""
    return db.session.scalar(
        select(func.count()).select_from(OutgoingMail).where(
            OutgoingMail.kind == "inquiry_ack", OutgoingMail.addressed_to(address),
            OutgoingMail.created_at > utcnow() - ACK_PER_ADDRESS)
    ) > 0


def practice_inbox() -> str:
    """The practice's own address, where forwards, notices and reminders go."""
    return compose.practice_inbox().address


def heard_from_label(inquiry: Inquiry) -> str:
    """How the inquirer heard of the practice, in words ("Somewhere else: a podcast"), or ""."""
    label = HEARD_FROM.get(inquiry.heard_from, "")
    return f"{label}: {inquiry.heard_from_other}" if inquiry.heard_from == "other" and inquiry.heard_from_other else label


def sender_for(inquiry: Inquiry) -> compose.Mailbox:
    """MAIL_FROM, or for a discreet inquiry the same address under the therapist's plain name
    (no practice name, no credentials), so nothing in an inbox list says "therapy"."""
    sender = compose.sender()
    if not inquiry.discreet:
        return sender
    return compose.Mailbox(sender.address, profile().therapist_name.split(",")[0].strip())


def forward_sender(to: str | None = None) -> compose.Mailbox:
    """The forward's From: its recipient (`to`, default the practice inbox; an assignee's own address in a
    group practice) when it is on the sending domain, else MAIL_FROM.

    The forward's Reply-To is the inquirer, on another domain. rspamd's SPOOF_REPLYTO (+6) fires when the
    recipient shares the From's domain and Reply-To does not, except when From equals To, a contact form
    writing to itself: so From is the inbox. On another domain the rule cannot fire, and MAIL_FROM keeps
    DKIM and SPF aligned with a domain the app signs for (docs/deliverability.md)."""
    sender = compose.sender()
    inbox = compose.Mailbox(to, sender.name) if to else compose.practice_inbox()
    if compose.domain_of(inbox).lower() != compose.domain_of(sender).lower():
        return sender
    return compose.Mailbox(inbox.address, sender.name)


def admin_url(inquiry: Inquiry) -> str:
    """The inquiry's page in the admin, absolute (also built by beat tasks, outside any request)."""
    return f"{settings().base_url}/admin/inquiries/{inquiry.id}"


def queue_forward_and_ack(inquiry: Inquiry, to: str, *, notice_only: bool, replier: str = "") -> list[int]:
    """The forward (or notice) to `to` (the practice inbox, or the inquiry's assignee: routing.forward_to)
    and the acknowledgement to the inquirer (and, for a waitlist inquiry, its place on the list), which names
    `replier` as who will answer (the assigned clinician), else the practice's therapist."""
    if inquiry.waitlist:  # in the order they wrote, whenever a worker gets here
        db.session.add(WaitlistEntry(inquiry_id=inquiry.id, joined_at=inquiry.created_at))
    inquiry.forwarded_at = utcnow()
    forward = outgoing.queue_template(
        "inquiry_notice" if notice_only else "inquiry_forward",
        to=to,
        from_=forward_sender(to),
        reply_to=compose.Mailbox(inquiry.email, inquiry.name),
        inquiry=inquiry,
        first_name=compose.one_line(inquiry.name, 100).split(" ")[0],
        message=inquiry.message or "",
        phone=inquiry.phone or "",
        heard_from=heard_from_label(inquiry),
        admin_url=admin_url(inquiry),
    )
    if _acknowledged_recently(inquiry.email):
        return [forward.id]
    greeting = greeting_name(inquiry.name)
    inquiry.ack_message_id = make_msgid(domain=compose.domain_of(compose.sender()))
    ack = queue_to_inquirer(
        "inquiry_ack", inquiry,
        to_name=greeting,
        message_id=inquiry.ack_message_id,
        greeting_name=greeting,
        replier=replier or profile().therapist_name,
        reply_days=settings().inquiry_reply_business_days,
        reply_by=business_days.long_date(inquiry.reply_by) if inquiry.reply_by else "",
        check_weeks=profile().waitlist_check_weeks,
    )
    return [forward.id, ack.id]


def quiet(inquiry: Inquiry) -> bool:
    """Whether mail to this inquirer takes the quiet layout: nothing in an inbox list (preview line,
    header, first line) says therapy or crisis, and her reply does not quote them unless she chooses."""
    return inquiry.discreet or inquiry.urgent


def queue_to_inquirer(prefix: str, inquiry: Inquiry, *, to_name: str | None = None, **context) -> OutgoingMail:
    """Queue emails/PREFIX.* to the inquirer, as every mail to them goes: from `sender_for`, Reply-To the
    practice inbox, and the layout switch `quiet` that the mail templates read."""
    return outgoing.queue_template(prefix, to=inquiry.email, to_name=inquiry.name if to_name is None else to_name,
                                 from_=sender_for(inquiry), reply_to=compose.practice_inbox(), inquiry=inquiry,
                                 quiet=quiet(inquiry), **context)
