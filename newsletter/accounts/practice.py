"""The practice profile (name, signature, address) and its timezone."""
from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from flask import g
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.models import PracticeProfile


def profile() -> PracticeProfile:
    """The single profile row, created with the defaults on first use (once per request)."""
    if "practice_profile" not in g:
        try:
            row = db.session.scalar(select(PracticeProfile).order_by(PracticeProfile.id).limit(1))
        except SQLAlchemyError:
            db.session.rollback()
            row = None  # no schema yet (before `flask db upgrade`): use the defaults in memory
        g.practice_profile = row or PracticeProfile(**_defaults())
    return g.practice_profile


def ensure_profile() -> PracticeProfile:
    """The stored profile, created with the defaults if missing; the caller commits."""
    row = db.session.scalar(select(PracticeProfile).order_by(PracticeProfile.id).limit(1))
    if row is None:
        row = PracticeProfile(**_defaults())
        db.session.add(row)
        db.session.flush()
    g.pop("practice_profile", None)
    return row


def _defaults() -> dict:
    return {column.name: column.default.arg for column in PracticeProfile.__table__.columns
            if column.default is not None and not callable(column.default.arg)}


def timezone() -> ZoneInfo:
    return ZoneInfo(settings().practice_timezone)


def local_time(value: datetime | None, fmt: str = "%b %-d, %Y %-I:%M %p") -> str:
    """Format a naive-UTC time in the practice's timezone."""
    if value is None:
        return ""
    return value.replace(tzinfo=UTC).astimezone(timezone()).strftime(fmt)


def to_utc(local: datetime) -> datetime:
    """A naive time typed in the practice's timezone, as naive UTC for storage."""
    return local.replace(tzinfo=timezone()).astimezone(UTC).replace(tzinfo=None)
