"""A warm-up plan for a new sender domain: a daily cap that doubles from SEND_WARMUP_START
messages on day 1 until, after SEND_WARMUP_DAYS days, there is no cap at all.

Mail providers trust a new sender that starts small and grows steadily. Day 1 is SEND_WARMUP_FROM,
or else the day the first issue was sent (today, before any was). Days are UTC days, as the rate
limiter's daily window is; the rate limiter enforces the cap (sending.py passes `daily_cap()`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import func, select

from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.models import Delivery, Issue, utcnow
from newsletter.models.issues import DELIVERY_SENT


@dataclass
class WarmupDay:
    day: int
    days: int
    cap: int
    used: int

    @property
    def used_up(self) -> bool:
        return self.used >= self.cap


def cap_on(day: int, start: int, days: int) -> int | None:
    """The day's cap: start, then doubling each day; None (no cap) once the plan is over."""
    if start <= 0 or day > days:
        return None
    return start * 2 ** (day - 1)


def today(now: datetime | None = None) -> WarmupDay | None:
    """Where the practice is on its plan today, or None when there is no plan (or it is over)."""
    now = now or utcnow()
    planned = _day_and_cap(now)
    if planned is None:
        return None
    day, cap = planned
    midnight = datetime.combine(now.date(), time())
    used = db.session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.status == DELIVERY_SENT, Delivery.sent_at >= midnight, Delivery.sent_at < midnight + timedelta(days=1)))
    return WarmupDay(day=day, days=settings().send_warmup_days, cap=cap, used=used)


def daily_cap(now: datetime | None = None) -> int:
    """Today's cap for the rate limiter; 0 means none."""
    planned = _day_and_cap(now or utcnow())
    return planned[1] if planned else 0


def _day_and_cap(now: datetime) -> tuple[int, int] | None:
    config = settings()
    start, days = config.send_warmup_start, config.send_warmup_days
    if start <= 0:
        return None
    first_day = config.send_warmup_from or _first_sending_day() or now.date()
    day = max(1, (now.date() - first_day).days + 1)
    cap = cap_on(day, start, days)
    return None if cap is None else (day, cap)


def _first_sending_day() -> date | None:
    first = db.session.scalar(select(func.min(Issue.dispatched_at)))
    return first.date() if first else None
