"""The practice's side of the conversation with a prospective client: replies and calls."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.extensions import db
from newsletter.models.base import utcnow

RESPONSE_KINDS = ("email", "call")


class InquiryResponse(db.Model):
    """A reply she sent from the inquiry page, or a call she recorded; the words are Fernet-encrypted."""

    __tablename__ = "inquiry_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    inquiry_id: Mapped[int] = mapped_column(ForeignKey("inquiries.id", ondelete="CASCADE"), index=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(10))
    body_encrypted: Mapped[bytes | None] = mapped_column(LargeBinary)
    quoted_inquiry: Mapped[bool] = mapped_column(default=False)
    mail_id: Mapped[int | None] = mapped_column(ForeignKey("outgoing_mail.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
