"""The practice's pipeline in the admin: the inbox and spam folder, opening an inquiry (logged), its status,
notes, replies, calls and the referral close-out.

No Flask request and no Celery here; callers commit. Nothing here logs what an inquirer wrote.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from sqlalchemy import select, true

from newsletter.accounts.practice import profile
from newsletter.core.extensions import db
from newsletter.inquiries import composing, routing, states
from newsletter.models import (
    AdminUser,
    Inquiry,
    InquiryAccess,
    InquiryNote,
    InquiryResponse,
)


class NoOneToReplyTo(ValueError):
    """The inquiry's content was purged: there is no address left to write to."""


def list_inquiries(*, spam: bool = False, status: str | None = None, unassigned: bool = False,
                   scope=true()) -> list[Inquiry]:
    """Inquiries in the inbox or the spam folder, newest first; `scope` is whose (accounts.roles.inquiry_scope);
    `unassigned`: only those nobody answers yet."""
    query = select(Inquiry).where(Inquiry.spam.is_(spam), scope)
    if status:
        query = query.where(Inquiry.status == status)
    if unassigned:
        query = query.where(Inquiry.assignee_id.is_(None))
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


def open_inquiry(inquiry_id: int, admin_id: int | None, scope=true()) -> OpenedInquiry | None:
    """Decrypt an inquiry for an admin and record that they opened it; None if there is no such inquiry
    in `scope` (accounts.roles.inquiry_scope)."""
    inquiry = db.session.scalar(select(Inquiry).where(Inquiry.id == inquiry_id, scope))
    if inquiry is None:
        return None
    states.log(inquiry, admin_id, "viewed")
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
        message=inquiry.message or "",
        phone=inquiry.phone or "",
        notes=[(note, note.body) for note in inquiry.notes],
        responses=[(response, response.body or "") for response in db.session.scalars(
            select(InquiryResponse).where(InquiryResponse.inquiry_id == inquiry.id).order_by(InquiryResponse.id)
        )],
        accesses=accesses,
    )


def add_note(inquiry: Inquiry, body: str, admin_id: int | None) -> InquiryNote:
    """Keep a private note on an inquiry, encrypted like the inquiry itself."""
    note = InquiryNote(inquiry_id=inquiry.id, admin_id=admin_id, body=body.strip())
    db.session.add(note)
    states.log(inquiry, admin_id, "note added")
    return note


def reply_link(inquiry: Inquiry) -> str:
    """A mailto: link for answering from her own mail program (records nothing: we cannot know she sent it)."""
    subject = "Your message" if inquiry.discreet else f"Your inquiry to {profile().practice_name}"
    return f"mailto:{quote(inquiry.email, safe='@')}?subject={quote(subject)}"


def send_reply(inquiry: Inquiry, body: str, *, quote_inquiry: bool, admin_id: int | None,
               booking_link: str = "") -> list[int]:
    """Queue her answer to the inquirer, threaded under the acknowledgement; returns the mail ids.

    It goes out from MAIL_FROM with Reply-To the practice inbox, quoting the inquiry if she chose, signed
    with the assigned clinician's signature when they set one.
    Her words are kept encrypted, like the inquiry's. Raises NoOneToReplyTo for a purged inquiry and
    states.NotAllowed when the inquiry's status refuses a reply.
    """
    if not inquiry.email or inquiry.purged_at is not None:
        raise NoOneToReplyTo(inquiry.id)
    states.transition(inquiry, "reply", admin_id)
    body = body.strip()
    thread_headers = {"In-Reply-To": inquiry.ack_message_id, "References": inquiry.ack_message_id} \
        if inquiry.ack_message_id else None
    clinician = routing.answering(inquiry)
    row = composing.queue_to_inquirer(
        "inquiry_reply", inquiry, headers=thread_headers, body=body,
        quoted=(inquiry.message or "") if quote_inquiry else "", booking_link=booking_link,
        signature=clinician.signature if clinician else "")
    db.session.add(InquiryResponse(inquiry_id=inquiry.id, admin_id=admin_id, kind="email",
                                   body=body, quoted_inquiry=quote_inquiry,
                                   mail_id=row.id))
    return [row.id]


def referral_lists() -> dict[str, list[str]]:
    """The colleagues and low-cost options kept in the Practice settings, a line each, for the close-out reply."""
    row = profile()
    return {"colleagues": (row.referral_colleagues or "").splitlines(),
            "low_cost": (row.low_cost_options or "").splitlines()}


def record_call(inquiry: Inquiry, note: str, admin_id: int | None) -> None:
    """She called the inquirer: a first response, with an optional note kept encrypted."""
    states.transition(inquiry, "call", admin_id)
    note = note.strip()
    db.session.add(InquiryResponse(inquiry_id=inquiry.id, admin_id=admin_id, kind="call",
                                   body=note or None))


def not_spam(inquiry: Inquiry, admin_id: int | None) -> list[int]:
    """Move an inquiry back to the inbox and send the forward and acknowledgement it never got."""
    states.transition(inquiry, "not_spam", admin_id)
    if inquiry.forwarded_at is not None or inquiry.purged_at is not None:
        return []
    return routing.forward_and_ack(inquiry)
