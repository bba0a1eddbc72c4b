"""The practice's pipeline in the admin: the inbox and spam folder, opening an inquiry (logged), its status,
notes, replies, calls and the referral close-out.

No Flask request and no Celery here; callers commit. Nothing here logs what an inquirer wrote.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from sqlalchemy import select

from newsletter.accounts.practice import profile
from newsletter.core import crypto
from newsletter.core.extensions import db
from newsletter.inquiries import composing
from newsletter.mail import compose, outbox
from newsletter.models import (
    AdminUser,
    Inquiry,
    InquiryAccess,
    InquiryNote,
    InquiryResponse,
    utcnow,
)
from newsletter.models.inquiries import INQUIRY_STATUSES

STATUS_LABELS = {
    "new": "New",
    "contacted": "Contacted",
    "consultation_scheduled": "Consultation scheduled",
    "client": "Became a client",
    "not_a_fit": "Not a fit",
    "referred": "Referred elsewhere",
    "no_reply": "No reply",
}


class InvalidStatus(ValueError):
    """Not one of the pipeline's statuses."""


class NoOneToReplyTo(ValueError):
    """The inquiry's content was purged: there is no address left to write to."""




def list_inquiries(*, spam: bool = False, status: str | None = None) -> list[Inquiry]:
    """Inquiries in the inbox or the spam folder, newest first."""
    query = select(Inquiry).where(Inquiry.spam.is_(spam))
    if status:
        query = query.where(Inquiry.status == status)
    return list(db.session.scalars(query.order_by(Inquiry.created_at.desc(), Inquiry.id.desc())))



@dataclass(frozen=True)
class OpenedInquiry:
    """An inquiry with its words decrypted, for one admin page view."""

    inquiry: Inquiry
    message: str
    phone: str
    notes: list[tuple[InquiryNote, str]]
    responses: list[tuple[InquiryResponse, str]]  # oldest first, with the words she wrote
    accesses: list[tuple[InquiryAccess, str | None]]  # newest first, with the admin's address


def _log(inquiry: Inquiry, admin_id: int | None, action: str) -> None:
    db.session.add(InquiryAccess(inquiry_id=inquiry.id, admin_id=admin_id, action=action[:60]))


log_action = _log  # for the other services that change an inquiry (booking)


def open_inquiry(inquiry_id: int, admin_id: int | None) -> OpenedInquiry | None:
    """Decrypt an inquiry for an admin and record that they opened it; None if there is no such inquiry."""
    inquiry = db.session.get(Inquiry, inquiry_id)
    if inquiry is None:
        return None
    _log(inquiry, admin_id, "viewed")
    db.session.flush()
    accesses = list(db.session.execute(
        select(InquiryAccess, AdminUser.email)
        .outerjoin(AdminUser, AdminUser.id == InquiryAccess.admin_id)
        .where(InquiryAccess.inquiry_id == inquiry.id)
        .order_by(InquiryAccess.id.desc())
        .limit(50)
    ))
    return OpenedInquiry(
        inquiry=inquiry,
        message=crypto.decrypt_text(inquiry.message_encrypted),
        phone=crypto.decrypt_text(inquiry.phone_encrypted),
        notes=[(note, crypto.decrypt_text(note.body_encrypted)) for note in inquiry.notes],
        responses=[(response, crypto.decrypt_text(response.body_encrypted)) for response in db.session.scalars(
            select(InquiryResponse).where(InquiryResponse.inquiry_id == inquiry.id).order_by(InquiryResponse.id)
        )],
        accesses=accesses,
    )


def _first_response(inquiry: Inquiry, when: datetime) -> None:
    if inquiry.first_response_at is None:
        inquiry.first_response_at = when


def change_status(inquiry: Inquiry, status: str, admin_id: int | None) -> None:
    """Move an inquiry along the pipeline; leaving 'new' the first time counts as the first response."""
    if status not in INQUIRY_STATUSES:
        raise InvalidStatus(status)
    if status == inquiry.status:
        return
    now = utcnow()
    if inquiry.status == "new":
        _first_response(inquiry, now)
    inquiry.status, inquiry.status_changed_at = status, now
    _log(inquiry, admin_id, f"status: {status}")


def add_note(inquiry: Inquiry, body: str, admin_id: int | None) -> InquiryNote:
    """Keep a private note on an inquiry, encrypted like the inquiry itself."""
    note = InquiryNote(inquiry_id=inquiry.id, admin_id=admin_id, body_encrypted=crypto.encrypt(body.strip()))
    db.session.add(note)
    _log(inquiry, admin_id, "note added")
    return note


def reply_link(inquiry: Inquiry) -> str:
    """A mailto: link for answering from her own mail program (records nothing: we cannot know she sent it)."""
    subject = "Your message" if inquiry.discreet else f"Your inquiry to {profile().practice_name}"
    return f"mailto:{quote(inquiry.email, safe='@')}?subject={quote(subject)}"


def _responded(inquiry: Inquiry, admin_id: int | None, action: str) -> None:
    """A reply or call is the first response if none came before, and moves a new inquiry to 'contacted'."""
    now = utcnow()
    _first_response(inquiry, now)
    if inquiry.status == "new":
        inquiry.status, inquiry.status_changed_at = "contacted", now
    _log(inquiry, admin_id, action)


def send_reply(inquiry: Inquiry, body: str, *, quote_inquiry: bool, admin_id: int | None,
               booking_link: str = "") -> list[int]:
    """Queue her answer to the inquirer, threaded under the acknowledgement; returns the mail ids.

    It goes out from MAIL_FROM with Reply-To the practice inbox, quoting the inquiry if she chose.
    Her words are kept encrypted, like the inquiry's. Raises NoOneToReplyTo for a purged inquiry.
    """
    if not inquiry.email or inquiry.purged_at is not None:
        raise NoOneToReplyTo(inquiry.id)
    body = body.strip()
    thread_headers = {"In-Reply-To": inquiry.ack_message_id, "References": inquiry.ack_message_id} \
        if inquiry.ack_message_id else None
    row = outbox.queue_template(
        "inquiry_reply",
        to=inquiry.email,
        to_name=inquiry.name,
        from_=composing.sender_for(inquiry),
        reply_to=compose.practice_inbox(),
        headers=thread_headers,
        inquiry=inquiry,
        body=body,
        quoted=crypto.decrypt_text(inquiry.message_encrypted) if quote_inquiry else "",
        booking_link=booking_link,
    )
    db.session.add(InquiryResponse(inquiry_id=inquiry.id, admin_id=admin_id, kind="email",
                                   body_encrypted=crypto.encrypt(body), quoted_inquiry=quote_inquiry,
                                   mail_id=row.id))
    _responded(inquiry, admin_id, "replied by e-mail")
    return [row.id]


def referral_lists() -> dict[str, list[str]]:
    """The colleagues and low-cost options kept in the Practice settings, a line each, for the close-out reply."""
    row = profile()
    return {"colleagues": (row.referral_colleagues or "").splitlines(),
            "low_cost": (row.low_cost_options or "").splitlines()}


def record_invitation(inquiry: Inquiry, admin_id: int | None) -> None:
    """She invited a waitlisted person to take a place: a response like a reply."""
    _responded(inquiry, admin_id, "invited from the waitlist")


def record_call(inquiry: Inquiry, note: str, admin_id: int | None) -> None:
    """She called the inquirer: a first response, with an optional note kept encrypted."""
    note = note.strip()
    db.session.add(InquiryResponse(inquiry_id=inquiry.id, admin_id=admin_id, kind="call",
                                   body_encrypted=crypto.encrypt(note) if note else None))
    _responded(inquiry, admin_id, "called")


def mark_spam(inquiry: Inquiry, admin_id: int | None) -> None:
    """Move an inquiry to the spam folder (it stays there until purged with the others)."""
    if not inquiry.spam:
        inquiry.spam, inquiry.spam_reason = True, "marked as spam by the practice"
        _log(inquiry, admin_id, "marked as spam")


def not_spam(inquiry: Inquiry, admin_id: int | None) -> list[int]:
    """Move an inquiry back to the inbox and send the forward and acknowledgement it never got."""
    if not inquiry.spam:
        return []
    inquiry.spam, inquiry.spam_reason = False, ""
    _log(inquiry, admin_id, "not spam")
    if inquiry.forwarded_at is not None or inquiry.purged_at is not None:
        return []
    return composing.queue_forward_and_ack(inquiry)

