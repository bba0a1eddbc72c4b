from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, false, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from newsletter.core.extensions import db
from newsletter.models.base import utcnow

DRAFT = "draft"
SCHEDULED = "scheduled"
SENDING = "sending"
PAUSED = "paused"
SENT = "sent"
CANCELED = "canceled"
ISSUE_STATUSES = (DRAFT, SCHEDULED, SENDING, PAUSED, SENT, CANCELED)

DELIVERY_PENDING = "pending"
DELIVERY_SENT = "sent"
DELIVERY_FAILED = "failed"
DELIVERY_SKIPPED = "skipped"


class Issue(db.Model):
    """An article as an email issue: its source, its rendering once per issue, and its schedule."""

    __tablename__ = "issues"
    __table_args__ = (Index("ix_issues_status_send_at", "status", "send_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    subject: Mapped[str] = mapped_column(String(300))
    preheader: Mapped[str] = mapped_column(String(500), default="")
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[str] = mapped_column(Text, default="")
    source_format: Mapped[str] = mapped_column(String(10), default="text")  # text, markdown
    signature: Mapped[str] = mapped_column(Text, default="")
    # The article alone, as an HTML fragment and as wrapped text (for the web archive and feed).
    body_html: Mapped[str] = mapped_column(Text, default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    # Lines she wrote after her signature (a closing thought), shown after the signature.
    postscript_html: Mapped[str] = mapped_column(Text, default="")
    postscript_text: Mapped[str] = mapped_column(Text, default="")
    # The whole mail, CSS inlined, rendered once per issue with placeholders for each reader.
    email_html: Mapped[str] = mapped_column(Text, default="")
    email_text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(20), default=DRAFT)
    # Made with "Duplicate": the admin list says so; the title (the mail's headline) does not.
    is_copy: Mapped[bool] = mapped_column(default=False, server_default=false())
    send_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    dispatched_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    canceled_at: Mapped[datetime | None]
    pause_reason: Mapped[str] = mapped_column(Text, default="")
    recipients_count: Mapped[int] = mapped_column(default=0)
    # Sending state (newsletter/sending.py): failures in a row pause the issue; the last batch
    # claimed tells the sweeper whether anyone is still working on it.
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    batch_claimed_at: Mapped[datetime | None]
    # While the dispatcher still writes the ledger (in steps, the first batches going meanwhile): the last
    # reader id it holds. None once every reader is in it: only then can the issue be sent.
    ledger_through: Mapped[int | None]

    deliveries: Mapped[list[Delivery]] = relationship(back_populates="issue", lazy="dynamic", passive_deletes=True)


class Delivery(db.Model):
    """The delivery ledger: one row per (issue, reader), fixed when the issue is dispatched."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id", name="uq_deliveries_issue_subscriber"),
        # Batches are claimed in id order among the pending rows of one issue.
        Index("ix_deliveries_issue_status_id", "issue_id", "status", "id"),
        # Beat's sweep looks for expired leases: only rows claimed and not yet marked have one, a few
        # batches' worth, so it reads those instead of every delivery of every issue ever sent.
        Index("ix_deliveries_leased", "lease_until", sqlite_where=text("lease_until IS NOT NULL"),
              postgresql_where=text("lease_until IS NOT NULL")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"))
    status: Mapped[str] = mapped_column(String(20), default=DELIVERY_PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    lease_until: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    error: Mapped[str] = mapped_column(String(500), default="")

    issue: Mapped[Issue] = relationship(back_populates="deliveries")


class LinkClick(db.Model):
    """One click on a link of an issue, counted only when the practice turned click counts on: the issue
    and the link's place in it, and when; never who clicked."""

    __tablename__ = "link_clicks"
    __table_args__ = (Index("ix_link_clicks_issue_link", "issue_id", "link"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    link: Mapped[int]  # the link's index among the issue's counted links (publishing/clicks.py)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class IssueReply(db.Model):
    """A reader's reply to an issue that the practice forwarded to be counted: which issue, and when; never
    who wrote or what they said. `fingerprint` (a hash of the reply's own Message-ID, else of its bytes)
    makes the same reply forwarded twice one count."""

    __tablename__ = "issue_replies"

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), index=True)
    fingerprint: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
