"""What the admin (or the CLI) does to a sending issue: pause, resume, cancel, and how far it got.

These do not commit: the caller (a view, a command, a task) commits, with its audit entry. Each takes the
issue row first, then its deliveries, as claim and dispatch do: one lock order, no deadlock.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select, update

from newsletter.core.extensions import db
from newsletter.models import utcnow
from newsletter.models.issues import (
    CANCELED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    DELIVERY_SENT,
    DELIVERY_SKIPPED,
    PAUSED,
    SENDING,
)
from newsletter.sending.ledger import deliveries, finish_if_done, issue_update, issues

# The ledger's note on deliveries skipped because the issue was canceled before they went.
CANCELED_ERROR = "issue canceled"
# The sending rate shown is over this last stretch of time.
RATE_WINDOW = timedelta(seconds=30)


def pausing(issue_id: int, reason: str):
    """The UPDATE that pauses a sending issue, for a session or a batch's own connection."""
    return issue_update(issue_id, issues.c.status == SENDING).values(status=PAUSED, pause_reason=reason)


def pause(issue_id: int, reason: str = "Paused by you.") -> bool:
    """sending → paused; batches stop within a moment and give their rest back."""
    return bool(db.session.execute(pausing(issue_id, reason)).rowcount)


def resume(issue_id: int) -> bool:
    """paused → sending, from where it stopped; the caller commits, then hands out its batches."""
    changed = db.session.execute(
        issue_update(issue_id, issues.c.status == PAUSED)
        .values(status=SENDING, pause_reason="", consecutive_failures=0, batch_claimed_at=utcnow())
    ).rowcount
    db.session.execute(
        update(deliveries).where(deliveries.c.issue_id == issue_id, deliveries.c.status == DELIVERY_PENDING)
        .values(next_attempt_at=None)
    )
    if changed:
        finish_if_done(issue_id)
    return bool(changed)


def cancel(issue_id: int) -> bool:
    """sending or paused → canceled; readers not yet mailed never will be."""
    changed = db.session.execute(
        issue_update(issue_id, issues.c.status.in_((SENDING, PAUSED))).values(status=CANCELED, canceled_at=utcnow())
    ).rowcount
    if changed:
        db.session.execute(
            update(deliveries).where(deliveries.c.issue_id == issue_id, deliveries.c.status == DELIVERY_PENDING)
            .values(status=DELIVERY_SKIPPED, lease_until=None, error=CANCELED_ERROR)
        )
    return bool(changed)


@dataclass
class Progress:
    issue_id: int
    status: str
    recipients: int
    sent: int
    failed: int
    skipped: int  # readers who left or whose address bounces
    canceled: int  # readers not sent to because the issue was canceled
    pending: int
    rate_per_second: float
    seconds_left: float | None
    pause_reason: str

    @property
    def percent_done(self) -> float:
        done = self.sent + self.failed + self.skipped
        return round(100.0 * done / self.recipients, 1) if self.recipients else 100.0

    @property
    def not_sent(self) -> int:
        """Readers who did not get it (yet): the pending ones and those a cancel left out."""
        return self.pending + self.canceled

    def as_dict(self) -> dict:
        return {**self.__dict__, "percent_done": self.percent_done, "not_sent": self.not_sent}


def progress(issue_id: int) -> Progress | None:
    """Counts from the ledger, the recent sending rate and an estimate of the time left.

    The issue is read as a row, not through the session's identity map, so a page or command that
    polls sees the workers' latest state without committing.
    """
    issue = db.session.execute(
        select(issues.c.status, issues.c.recipients_count, issues.c.dispatched_at, issues.c.pause_reason)
        .where(issues.c.id == issue_id)
    ).first()
    if issue is None:
        return None
    counts = dict(db.session.execute(
        select(deliveries.c.status, func.count()).where(deliveries.c.issue_id == issue_id)
        .group_by(deliveries.c.status)
    ).all())
    rate = _recent_rate(issue_id, issue.dispatched_at) if issue.status == SENDING else 0.0
    pending = counts.get(DELIVERY_PENDING, 0)
    canceled = _count(issue_id, deliveries.c.status == DELIVERY_SKIPPED,
                      deliveries.c.error == CANCELED_ERROR) if issue.status == CANCELED else 0
    return Progress(
        issue_id=issue_id, status=issue.status, recipients=issue.recipients_count,
        sent=counts.get(DELIVERY_SENT, 0), failed=counts.get(DELIVERY_FAILED, 0),
        skipped=counts.get(DELIVERY_SKIPPED, 0) - canceled, canceled=canceled, pending=pending, rate_per_second=rate,
        seconds_left=round(pending / rate) if rate and pending else (0.0 if not pending else None),
        pause_reason=issue.pause_reason,
    )


def _recent_rate(issue_id: int, dispatched_at) -> float:
    """Messages per second over the last RATE_WINDOW (or since dispatch, if that is shorter)."""
    now = utcnow()
    window_start = max(now - RATE_WINDOW, dispatched_at or now)
    seconds = max((now - window_start).total_seconds(), 1.0)
    recent = _count(issue_id, deliveries.c.status == DELIVERY_SENT, deliveries.c.sent_at >= window_start)
    return round(recent / seconds, 1)


def _count(issue_id: int, *conditions) -> int:
    return db.session.scalar(
        select(func.count()).select_from(deliveries).where(deliveries.c.issue_id == issue_id, *conditions)
    )
