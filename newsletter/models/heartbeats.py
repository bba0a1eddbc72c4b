"""When each background part last showed it was alive: beat, each worker, the last backup."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.extensions import db
from newsletter.models.base import utcnow


class Heartbeat(db.Model):
    """One row per part ("beat", "worker:<hostname>", "backup"), its time renewed while it lives."""

    __tablename__ = "heartbeats"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    beat_at: Mapped[datetime] = mapped_column(default=utcnow)
