"""Bounces and complaints reported after the fact (webhooks, piped DSN/ARF), and webhook nonces."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.extensions import db
from newsletter.models.base import utcnow

HARD = "hard"
SOFT = "soft"
COMPLAINT = "complaint"
UNSUBSCRIBE = "unsubscribe"
BOUNCE_KINDS = (HARD, SOFT, COMPLAINT, UNSUBSCRIBE)


class BounceEvent(db.Model):
    """One bounce or complaint as a provider reported it: the address only as its hash, no payload."""

    __tablename__ = "bounce_events"
    __table_args__ = (
        # The same provider event recorded twice counts once.
        UniqueConstraint("provider", "provider_event_id", name="uq_bounce_events_provider_event"),
        # Soft bounces are counted per address within a window.
        Index("ix_bounce_events_hash_kind_created", "email_hash", "kind", "created_at"),
        # The 30-day complaint rate, and each issue's bounces.
        Index("ix_bounce_events_kind_created", "kind", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))  # mailgun, postmark, ses, sendgrid, dsn, arf
    provider_event_id: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20))  # hard, soft, complaint, unsubscribe
    email_hash: Mapped[str] = mapped_column(String(64))
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"), index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookNonce(db.Model):
    """A webhook token already accepted (Mailgun): a replayed call is refused. Kept a day."""

    __tablename__ = "webhook_nonces"
    __table_args__ = (UniqueConstraint("provider", "nonce", name="uq_webhook_nonces_provider_nonce"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    nonce: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class ComplaintPause(db.Model):
    """An issue paused for the complaint rate, and how many complaints there were then: once she
    resumes it, only complaints beyond that number pause it again."""

    __tablename__ = "complaint_pauses"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), unique=True)
    complaints: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
