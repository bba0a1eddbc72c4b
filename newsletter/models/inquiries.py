from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
from typing import Iterator

from sqlalchemy import ForeignKey, Index, String, false, inspect
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from newsletter.core.crypto import Encrypted
from newsletter.core.extensions import db
from newsletter.models.base import utcnow

INQUIRY_STATUSES = ("new", "contacted", "consultation_scheduled", "client", "not_a_fit", "referred", "no_reply")
# "How did you hear about us?": a short fixed list; "other" comes with a few words of the inquirer's own.
HEARD_FROM = {
    "search": "An internet search",
    "directory": "A therapist directory",
    "friend": "A friend or family member",
    "professional": "A doctor or another therapist",
    "newsletter": "The newsletter or an article",
    "social": "Social media",
    "other": "Somewhere else",
}


# The inquiry whose status states.transition is setting now: the one way the app changes a stored inquiry's status.
_changing: ContextVar[object | None] = ContextVar("inquiry_status_change", default=None)


class StatusNotByTransition(RuntimeError):
    """Code set a stored inquiry's status itself, not through states.transition."""


@contextmanager
def changing_status(inquiry: Inquiry) -> Iterator[None]:
    """For states.transition alone (and the tests' `place_in`, which arranges rows): inside, the inquiry's status
    may be set. tests/test_rule_inquiry_states.py fails on any other use in the app."""
    token = _changing.set(inquiry)
    try:
        yield
    finally:
        _changing.reset(token)


# Decrypting costs about 0.05 ms a value: the lists show only the name, so the other fields an inquirer
# filled in are read (all at once, with one query) when a page or a mail first needs one of them.
DETAIL = {"deferred": True, "deferred_group": "details"}


class Inquiry(db.Model):
    """A prospective client's message. Everything they filled in is stored encrypted (`Encrypted`)."""

    __tablename__ = "inquiries"
    __table_args__ = (Index("ix_inquiries_spam_status_created", "spam", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(Encrypted())
    email: Mapped[str] = mapped_column(Encrypted(), **DETAIL)
    phone: Mapped[str | None] = mapped_column(Encrypted(), **DETAIL)
    message: Mapped[str | None] = mapped_column(Encrypted(), **DETAIL)
    preferred_contact: Mapped[str] = mapped_column(Encrypted(), default="email", **DETAIL)
    source: Mapped[str] = mapped_column(String(20), default="site")
    status: Mapped[str] = mapped_column(String(30), default="new")
    # Who answers it (a clinician, or the coordinator); None in a solo practice, where the owner answers all.
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id", ondelete="SET NULL"), index=True)
    urgent: Mapped[bool] = mapped_column(default=False)
    spam: Mapped[bool] = mapped_column(default=False)
    spam_reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    forwarded_at: Mapped[datetime | None]  # when its forward and acknowledgement were queued
    reply_by: Mapped[date | None]  # the day promised in the acknowledgement, in the practice's timezone
    nudged_at: Mapped[datetime | None]  # when the practice (or the assignee) was reminded of that day
    escalated_at: Mapped[datetime | None]  # when the coordinator or owner was told the assignee let the day pass
    ack_message_id: Mapped[str | None] = mapped_column(String(250))  # replies thread under the acknowledgement
    partner_name: Mapped[str] = mapped_column(Encrypted(), default="", **DETAIL)
    heard_from: Mapped[str] = mapped_column(Encrypted(), default="", **DETAIL)  # a key of HEARD_FROM
    heard_from_other: Mapped[str] = mapped_column(Encrypted(), default="", **DETAIL)
    # Safe contact: what the practice may do without risking the inquirer's privacy at home.
    voicemail_ok: Mapped[bool] = mapped_column(Encrypted(flag=True), default=False, **DETAIL)
    text_ok: Mapped[bool] = mapped_column(Encrypted(flag=True), default=False, **DETAIL)
    discreet: Mapped[bool] = mapped_column(Encrypted(flag=True), default=False, **DETAIL)  # neutral subject and sender
    waitlist: Mapped[bool] = mapped_column(default=False, server_default=false())  # sent while not accepting clients
    first_response_at: Mapped[datetime | None]
    status_changed_at: Mapped[datetime | None]
    digest_sent_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]
    # HMAC of address, message and DUPLICATE_WINDOW bucket: the same inquiry sent at once is one row.
    fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)

    notes: Mapped[list[InquiryNote]] = relationship(order_by="InquiryNote.id", passive_deletes=True)

    @validates("status")
    def _status_only_by_transition(self, _key: str, status: str) -> str:
        """A new inquiry is made with its status; after that it changes through states.transition alone
        (StatusNotByTransition otherwise), so every change follows the table and leaves its trail."""
        if _changing.get() is not self and not inspect(self).transient:
            raise StatusNotByTransition(f"inquiry {self.id}: a status changes through states.transition alone")
        return status


class InquiryNote(db.Model):
    """The therapist's own notes on an inquiry, encrypted like the inquiry itself."""

    __tablename__ = "inquiry_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id", ondelete="CASCADE"), index=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(Encrypted())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InquiryAccess(db.Model):
    """Audit log: every time an admin opened or changed an inquiry."""

    __tablename__ = "inquiry_access"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int | None] = mapped_column(ForeignKey("inquiries.id", ondelete="SET NULL"), index=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
