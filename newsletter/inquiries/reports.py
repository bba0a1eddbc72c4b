"""Figures about the pipeline: response times and how long is left to answer, counts by status, and where
inquiries come from. Read-only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median

from sqlalchemy import func, select, true

from newsletter.core.extensions import db
from newsletter.inquiries import business_days
from newsletter.inquiries.states import STATUS_LABELS
from newsletter.models import Inquiry, utcnow
from newsletter.models.inquiries import HEARD_FROM


def status_counts(scope=true()) -> dict[str, int]:
    """How many inquiries (spam aside, purged ones included) are in each status, of those in `scope`."""
    rows = db.session.execute(
        select(Inquiry.status, func.count()).where(Inquiry.spam.is_(False), scope).group_by(Inquiry.status)
    )
    counts = dict.fromkeys(STATUS_LABELS, 0)
    counts.update({status: count for status, count in rows})
    return counts


def spam_count(scope=true()) -> int:
    """How many inquiries (of those in `scope`) are in the spam folder."""
    return db.session.scalar(select(func.count()).select_from(Inquiry).where(Inquiry.spam.is_(True), scope)) or 0


def response_time(inquiry: Inquiry) -> timedelta | None:
    """How long the inquirer waited for a first response, if there has been one."""
    if inquiry.first_response_at is None:
        return None
    return inquiry.first_response_at - inquiry.created_at


def median_response_time(inquiries: list[Inquiry]) -> timedelta | None:
    """The median time to first response over the inquiries that have one."""
    waits = [wait for wait in map(response_time, inquiries) if wait is not None]
    return timedelta(seconds=median(w.total_seconds() for w in waits)) if waits else None


def describe_wait(wait: timedelta | None) -> str:
    """'3 h 20 min', '2 days 4 h' or '' for a time to first response."""
    if wait is None:
        return ""
    minutes = int(wait.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def is_open(inquiry: Inquiry) -> bool:
    """Still waiting for a first response from the practice."""
    return (inquiry.first_response_at is None and not inquiry.spam and inquiry.purged_at is None
            and inquiry.status == "new")


def time_left(inquiry: Inquiry, now: datetime | None = None) -> str:
    """'1 day 4 h left' or 'overdue by 2 h' until the end of the inquiry's reply-by day; '' when answered."""
    if not is_open(inquiry) or inquiry.reply_by is None:
        return ""
    left = business_days.practice_calendar().end_of_day(inquiry.reply_by) - (now or utcnow())
    amount = describe_wait(abs(left))
    return f"{amount} left" if left >= timedelta(0) else f"overdue by {amount}"


@dataclass(frozen=True)
class SourceCount:
    """One line of the report: a month, a source, how many wrote and how many of them became clients."""

    month: str  # "November 2026", in the practice's timezone
    source: str
    inquiries: int
    clients: int


def source_report() -> list[SourceCount]:
    """Inquiries (spam aside, purged ones included) by month and by how they heard of the practice,
    newest month first, most inquiries first within a month."""
    calendar = business_days.practice_calendar()
    counts: dict[tuple[date, str], list[int]] = {}
    rows = db.session.execute(select(Inquiry.created_at, Inquiry.heard_from, Inquiry.status)
                              .where(Inquiry.spam.is_(False)))
    for created_at, heard_from, status in rows:
        month = calendar.local_date(created_at).replace(day=1)
        tally = counts.setdefault((month, HEARD_FROM.get(heard_from, "Not said")), [0, 0])
        tally[0] += 1
        tally[1] += status == "client"
    ordered = sorted(counts.items(), key=lambda item: (-item[0][0].toordinal(), -item[1][0], item[0][1]))
    return [SourceCount(month=f"{month:%B %Y}", source=source, inquiries=total, clients=clients)
            for (month, source), (total, clients) in ordered]
