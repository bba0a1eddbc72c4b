from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, LargeBinary, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.extensions import db
from newsletter.models.base import utcnow


class Clinician(db.Model):
    """The public profile of a person of the practice who sees clients (one per AdminUser): shown on /team,
    named by the contact form's `clinician` field, and used for their replies and consultation invites.
    What is here is published on purpose, so nothing is encrypted."""

    __tablename__ = "clinicians"

    id: Mapped[int] = mapped_column(primary_key=True)
    admin_id: Mapped[int] = mapped_column(ForeignKey("admin_users.id", ondelete="CASCADE"), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    credentials: Mapped[str] = mapped_column(String(200), default="", server_default="")
    bio: Mapped[str] = mapped_column(Text, default="", server_default="")
    # What they work with, comma-separated tags as shown ("couples, EFT, trauma"); round-robin matches on them.
    works_with: Mapped[str] = mapped_column(String(400), default="", server_default="")
    languages: Mapped[str] = mapped_column(String(200), default="", server_default="")
    fees: Mapped[str] = mapped_column(String(400), default="", server_default="")  # fees and insurance note
    # Off: the contact form for them offers their own waitlist.
    accepting_clients: Mapped[bool] = mapped_column(default=True, server_default=true())
    consultation_hours: Mapped[str] = mapped_column(Text, default="", server_default="")  # "Tue 14:00-16:00" a line
    signature: Mapped[str] = mapped_column(Text, default="", server_default="")  # the lines their replies end with
    booking_link: Mapped[str] = mapped_column(String(300), default="", server_default="")
    # Their photo, re-encoded as a bounded JPEG without metadata (inquiries/photos.py); kept in the database so a
    # backup carries it. Deferred: only the photo route reads the bytes. The version (a content hash) is in its URL.
    photo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    photo_version: Mapped[str] = mapped_column(String(16), default="", server_default="")
    # Round-robin hands the next "whoever fits" inquiry to the matching clinician who got one longest ago.
    last_assigned_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    @property
    def tags(self) -> list[str]:
        return [tag.strip() for tag in self.works_with.split(",") if tag.strip()]
