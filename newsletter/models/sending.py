"""The shared sending-rate bucket, kept in the database when no Redis answers (embedded mode, a Redis outage)."""
from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.extensions import db


class SendRateBucket(db.Model):
    """One token bucket with its hourly and daily counters, shared by every worker process.

    Times are seconds since the epoch (as the Redis bucket keeps them); a window is its number
    (time // window length), and `*_used` counts the messages booked in it.
    """

    __tablename__ = "send_rate_buckets"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    tokens: Mapped[float]
    at: Mapped[float]
    hour_window: Mapped[int] = mapped_column(default=0)
    hour_used: Mapped[int] = mapped_column(default=0)
    day_window: Mapped[int] = mapped_column(default=0)
    day_used: Mapped[int] = mapped_column(default=0)
