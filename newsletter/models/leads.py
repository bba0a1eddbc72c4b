"""The practice's side of the conversation with a prospective client: replies and calls, and the waitlist."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.crypto import Encrypted
from newsletter.core.extensions import db
from newsletter.models.base import utcnow

RESPONSE_KINDS = ("email", "call")


class InquiryResponse(db.Model):
    """A reply she sent from the inquiry page, or a call she recorded; the words are encrypted."""

    __tablename__ = "inquiry_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id", ondelete="CASCADE"), index=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(10))
    body: Mapped[str | None] = mapped_column(Encrypted())
    quoted_inquiry: Mapped[bool] = mapped_column(default=False)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("outgoing_mail.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WaitlistEntry(db.Model):
    """A person waiting for a place while the practice takes no new clients, in the order they joined."""

    __tablename__ = "waitlist_entries"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id", ondelete="CASCADE"), unique=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)
    confirmed_at: Mapped[datetime] = mapped_column(default=utcnow)  # joined, or last said "yes, keep me"
    asked_at: Mapped[datetime | None]  # a check-in is waiting for an answer since then
    left_at: Mapped[datetime | None]
    left_reason: Mapped[str] = mapped_column(String(30), default="")  # asked to leave, no answer, invited


class Consultation(db.Model):
    """A booked free 15-minute consultation, in its host's calendar: the clinician it is with in a group
    practice, else (host NULL) the practice's. One per host and start time (never double-booked; the partial
    index covers the practice, as NULLs never clash in a UNIQUE) and one per inquiry; cancelling deletes the
    row, so the slot is free again."""

    __tablename__ = "consultations"
    __table_args__ = (
        UniqueConstraint("host_id", "starts_at", name="uq_consultations_host_starts_at"),
        Index("uq_consultations_practice_starts_at", "starts_at", unique=True,
              sqlite_where=text("host_id IS NULL"), postgresql_where=text("host_id IS NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id", ondelete="CASCADE"), unique=True)
    host_id: Mapped[int | None] = mapped_column(ForeignKey("clinicians.id", ondelete="SET NULL"))
    starts_at: Mapped[datetime]  # naive UTC
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
