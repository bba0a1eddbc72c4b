from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, false, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.core.extensions import db
from newsletter.models.base import utcnow

PENDING = "pending"
ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
BOUNCED = "bounced"
COMPLAINED = "complained"
SUBSCRIBER_STATUSES = (PENDING, ACTIVE, UNSUBSCRIBED, BOUNCED, COMPLAINED)


class Subscriber(db.Model):
    """A reader: one row per normalized address, whatever its state."""

    __tablename__ = "subscribers"
    # Sending streams active readers in id order; the admin list pages by status and id.
    __table_args__ = (Index("ix_subscribers_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(20), default=PENDING)
    source: Mapped[str] = mapped_column(String(20), default="site")
    # Random per-reader secret mixed into unsubscribe tokens: rotating it revokes old links.
    token_key: Mapped[str] = mapped_column(String(32))
    # Set when a confirmation is sent, cleared when used: confirm links are single-use.
    confirm_nonce: Mapped[str | None] = mapped_column(String(32))
    confirmation_sent_at: Mapped[datetime | None]
    # Confirmations sent since the count last restarted (a day after the previous one).
    confirmations_sent_today: Mapped[int] = mapped_column(default=0)
    already_subscribed_note_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # When the reader last became pending: unconfirmed readers are purged a week later.
    pending_since: Mapped[datetime | None]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    # A break the reader took (readers/preferences.py): no mail until then; then a note, and mail again.
    break_until: Mapped[datetime | None]
    # Chose a monthly digest instead of every issue (readers/digests.py): since when; None = every issue.
    digest_since: Mapped[datetime | None]

    consent_events: Mapped[list[ConsentEvent]] = relationship(
        back_populates="subscriber", order_by="ConsentEvent.id", passive_deletes=True
    )


# Dana@Example.com and dana@example.com are one reader: lookups go by the lowercased address.
Index("ix_subscribers_email_lower", func.lower(Subscriber.email), unique=True)


class ConsentEvent(db.Model):
    """Proof of each change of state: when, from where, and the exact words agreed to."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), index=True
    )
    action: Mapped[str] = mapped_column(String(30))  # subscribe, confirm, unsubscribe, import, bounced, erase...
    source: Mapped[str] = mapped_column(String(20))  # site, embed, import, admin, email, system
    wording: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    subscriber: Mapped[Subscriber | None] = relationship(back_populates="consent_events")


class SignupRequest(db.Model):
    """A signup as the form received it, until a worker applies it (subscriptions.request_signup):
    the request itself only ever inserts this row, so its answer time says nothing about the address."""

    __tablename__ = "signup_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200), default="")
    source: Mapped[str] = mapped_column(String(20))
    wording: Mapped[str] = mapped_column(Text, default="")
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    # The list slugs the reader ticked, comma-separated; empty: the default list.
    lists: Mapped[str] = mapped_column(String(500), default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    # Past the address's signup limit when it came: stored all the same (the answer costs the same), dropped by the worker.
    over_limit: Mapped[bool] = mapped_column(default=False, server_default=false())


class ReaderDigest(db.Model):
    """A monthly digest a reader was sent: one row per reader and month, written with its mail, so a
    rerun (two schedulers, a killed worker) never sends a month twice."""

    __tablename__ = "reader_digests"
    __table_args__ = (UniqueConstraint("subscriber_id", "month", name="uq_reader_digests_reader_month"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    month: Mapped[str] = mapped_column(String(7))  # the month it covers, "2026-11"
    issues: Mapped[int] = mapped_column(default=0)  # how many issues it listed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Suppression(db.Model):
    """Addresses never to be mailed again, kept as a hash so erasure leaves no address behind."""

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[str] = mapped_column(String(20))  # bounced, complained, erased, manual
    detail: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
