from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.extensions import db
from newsletter.models.base import utcnow


class BlogFeed(db.Model):
    """The practice website's RSS or Atom feed (one row): where it is, what the last poll said."""

    __tablename__ = "blog_feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(500), default="")
    # The validators the site last sent, for a conditional GET (304: nothing new, nothing downloaded).
    etag: Mapped[str] = mapped_column(String(300), default="")
    last_modified: Mapped[str] = mapped_column(String(100), default="")
    checked_at: Mapped[datetime | None]
    # Why the last poll failed, shown on the admin page; empty after a poll that worked.
    error: Mapped[str] = mapped_column(Text, default="")
    error_at: Mapped[datetime | None]


class FeedPost(db.Model):
    """A post of the feed already made into a draft: never imported twice, even after the draft is deleted."""

    __tablename__ = "feed_posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    # SHA-256 of the post's id (its guid, else its link, else its title), unique: the claim.
    entry_key: Mapped[str] = mapped_column(String(64), unique=True)
    link: Mapped[str] = mapped_column(String(1000), default="")
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
