"""The admin dashboard's figures: readers over time, the last issues, inquiries and response times.

Each figure is one query (readers over time is one pass with a column per week), so the page
stays quick with many readers. Times are naive UTC, as stored.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select

from newsletter.core.extensions import db
from newsletter.inquiries import reports
from newsletter.inquiries.states import STATUS_LABELS
from newsletter.models import Inquiry, Issue, Subscriber, utcnow
from newsletter.models.issues import (
    CANCELED,
    DELIVERY_FAILED,
    DELIVERY_SENT,
    PAUSED,
    SENDING,
    SENT,
    Delivery,
)
from newsletter.models.readers import ACTIVE, BOUNCED, COMPLAINED, PENDING, UNSUBSCRIBED

WEEKS_SHOWN = 12
ISSUES_SHOWN = 5
URGENT_SHOWN = 5
RESPONSE_WINDOWS = (30, 90)


@dataclass(frozen=True)
class Point:
    """One week on the readers chart: its last day and the readers on that day."""

    day: datetime
    readers: int


@dataclass(frozen=True)
class IssueOutcome:
    issue: Issue
    delivered: int
    failed: int
    bounced: int  # delivered, then the reader's address bounced or complained


@dataclass(frozen=True)
class Dashboard:
    readers_over_time: list[Point]
    readers_by_status: dict[str, int]  # confirmed, pending, left, bounced
    last_issues: list[IssueOutcome]
    inquiries_by_status: list[tuple[str, int]]  # (label, count), in the pipeline's order
    urgent_inquiries: list[Inquiry]  # urgent and still new, oldest first
    new_inquiries: int
    median_response: dict[int, timedelta | None]  # days → median time to first response


def build(now: datetime | None = None) -> Dashboard:
    """Every figure on the dashboard."""
    now = now or utcnow()
    by_status = inquiries_by_status()
    return Dashboard(
        readers_over_time=readers_over_time(now),
        readers_by_status=readers_by_status(),
        last_issues=last_issues(),
        inquiries_by_status=by_status,
        urgent_inquiries=urgent_inquiries(),
        new_inquiries=dict(by_status)[STATUS_LABELS["new"]],
        median_response={days: median_response(days, now) for days in RESPONSE_WINDOWS},
    )


def readers_over_time(now: datetime, weeks: int = WEEKS_SHOWN) -> list[Point]:
    """Readers who had confirmed and not yet left, at the end of each of the last `weeks` weeks."""
    days = [now - timedelta(weeks=weeks - 1 - index) for index in range(weeks)]
    columns = [
        func.coalesce(func.sum(case((and_(
            Subscriber.confirmed_at <= day,
            or_(Subscriber.unsubscribed_at.is_(None), Subscriber.unsubscribed_at > day),
        ), 1), else_=0)), 0)
        for day in days
    ]
    counts = db.session.execute(select(*columns)).one()
    # When an address bounced is not kept, so earlier weeks still count it; today's figure is exact.
    counts = [*counts[:-1], readers_by_status()["confirmed"]]
    return [Point(day=day, readers=int(count)) for day, count in zip(days, counts)]


def readers_by_status() -> dict[str, int]:
    """Confirmed, pending (not yet confirmed), left (unsubscribed) and bounced (or complained)."""
    counts = dict(db.session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status)).all())
    return {
        "confirmed": counts.get(ACTIVE, 0),
        "pending": counts.get(PENDING, 0),
        "left": counts.get(UNSUBSCRIBED, 0),
        "bounced": counts.get(BOUNCED, 0) + counts.get(COMPLAINED, 0),
    }


def last_issues(limit: int = ISSUES_SHOWN) -> list[IssueOutcome]:
    """The issues that went to readers most recently, with what became of their mail."""
    went_out = Issue.status.in_((SENDING, PAUSED, SENT)) | (
        (Issue.status == CANCELED) & Issue.dispatched_at.is_not(None))
    rows = db.session.scalars(
        select(Issue).where(went_out).order_by(Issue.dispatched_at.desc().nulls_last(), Issue.id.desc()).limit(limit)
    ).all()
    if not rows:
        return []
    bounced_reader = Subscriber.status.in_((BOUNCED, COMPLAINED))
    counts = {
        issue_id: (delivered, failed, bounced)
        for issue_id, delivered, failed, bounced in db.session.execute(
            select(
                Delivery.issue_id,
                func.sum(case((Delivery.status == DELIVERY_SENT, 1), else_=0)),
                func.sum(case((Delivery.status == DELIVERY_FAILED, 1), else_=0)),
                func.sum(case((and_(Delivery.status == DELIVERY_SENT, bounced_reader), 1), else_=0)),
            )
            .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.issue_id.in_([issue.id for issue in rows]))
            .group_by(Delivery.issue_id)
        ).all()
    }
    return [IssueOutcome(issue, *(int(n or 0) for n in counts.get(issue.id, (0, 0, 0)))) for issue in rows]


def _real_inquiry():
    return and_(Inquiry.spam.is_(False), Inquiry.purged_at.is_(None))


def inquiries_by_status() -> list[tuple[str, int]]:
    """How many inquiries are at each step of the pipeline (spam left out), as the inquiry list counts them."""
    counts = reports.status_counts()
    return [(label, counts[status]) for status, label in STATUS_LABELS.items()]


def urgent_inquiries(limit: int = URGENT_SHOWN) -> list[Inquiry]:
    """Urgent inquiries nobody has answered yet, oldest first: they come before everything else."""
    return list(db.session.scalars(
        select(Inquiry).where(_real_inquiry(), Inquiry.urgent.is_(True), Inquiry.status == "new")
        .order_by(Inquiry.created_at, Inquiry.id).limit(limit)
    ))


def median_response(days: int, now: datetime) -> timedelta | None:
    """The median time from an inquiry to its first response, over inquiries of the last `days` days."""
    return reports.median_response_time(list(db.session.scalars(
        select(Inquiry).where(Inquiry.spam.is_(False), Inquiry.first_response_at.is_not(None),
                              Inquiry.created_at >= now - timedelta(days=days))
    )))


def line_chart(values: list[int], *, width: int = 600, height: int = 180, pad: int = 24) -> dict:
    """Coordinates for an SVG line chart of `values` (left to right) in a width × height box."""
    top = max(max(values, default=0), 1)
    step = (width - 2 * pad) / max(len(values) - 1, 1)
    points = [(round(pad + index * step, 1), round(height - pad - (height - 2 * pad) * value / top, 1))
              for index, value in enumerate(values)]
    line = " ".join(f"{x},{y}" for x, y in points)
    area = f"{pad},{height - pad} {line} {points[-1][0] if points else pad},{height - pad}"
    return {"width": width, "height": height, "pad": pad, "top": top, "points": points, "line": line, "area": area}
