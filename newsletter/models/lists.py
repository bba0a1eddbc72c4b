"""Newsletters readers choose (lists), who is on which, which lists an issue goes to, and each list's welcome series."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.extensions import db
from newsletter.models.base import utcnow


class NewsletterList(db.Model):
    """A newsletter readers can choose; exactly one is the default (signups that choose none)."""

    __tablename__ = "newsletter_lists"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The welcome series: readers who join from this moment on get its steps; None = stopped.
    series_started_at: Mapped[datetime | None]
    series_paused: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ListMembership(db.Model):
    """A reader on a list, since when (a welcome series counts its days from then or from confirming)."""

    __tablename__ = "list_memberships"
    __table_args__ = (UniqueConstraint("subscriber_id", "list_id", name="uq_list_memberships_reader_list"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("newsletter_lists.id", ondelete="CASCADE"), index=True)
    joined_at: Mapped[datetime] = mapped_column(default=utcnow)


class IssueList(db.Model):
    """A list an issue goes to; an issue with none goes to the default list."""

    __tablename__ = "issue_lists"

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("newsletter_lists.id", ondelete="CASCADE"), primary_key=True)


class SeriesStep(db.Model):
    """One article of a list's welcome series, sent `days` after a reader joins (0: right after confirming)."""

    __tablename__ = "series_steps"
    __table_args__ = (UniqueConstraint("list_id", "position", name="uq_series_steps_list_position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    list_id: Mapped[int] = mapped_column(ForeignKey("newsletter_lists.id", ondelete="CASCADE"))
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    position: Mapped[int]
    days: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
