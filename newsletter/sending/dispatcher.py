"""Starting an issue: scheduled → sending, with its delivery ledger written in the same transaction.

These do not commit: the caller (beat's dispatch task) commits, and until then the issue's row lock
(PostgreSQL) or the write lock (SQLite) keeps any other scheduler from starting the same issue.
"""
from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import func, literal, select
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.core.extensions import db
from newsletter.deliverability import bounces
from newsletter.models import utcnow
from newsletter.models.issues import DELIVERY_PENDING, SCHEDULED, SENDING
from newsletter.readers.lists import recipients_query
from newsletter.sending import control
from newsletter.sending.ledger import deliveries, issue_update, issues

log = logging.getLogger(__name__)


def due_issue_ids(now: datetime | None = None) -> list[int]:
    """Scheduled issues whose send time has come."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(issues.c.id).where(issues.c.status == SCHEDULED, issues.c.send_at <= now).order_by(issues.c.send_at)
    ))


def dispatch(issue_id: int) -> int | None:
    """Start sending: scheduled → sending, and fix the recipients in the ledger.

    Returns the number of recipients, or None when the issue was not scheduled (already started
    by another scheduler, or unscheduled meanwhile): a repeated dispatch changes nothing.
    An issue started while readers complain too much pauses at once (bounces.should_pause, which
    commits its own record of that pause, and with it this dispatch).
    """
    now = utcnow()
    # Two schedulers may race here: the row lock (PostgreSQL) or the write lock (SQLite) lets one
    # UPDATE through; the other then finds the status changed and updates nothing.
    started = db.session.execute(
        issue_update(issue_id, issues.c.status == SCHEDULED)
        .values(status=SENDING, dispatched_at=now, consecutive_failures=0, pause_reason="", batch_claimed_at=now)
    ).rowcount
    if started != 1:
        return None
    # One statement copies the active readers into the ledger: they are never loaded into Python.
    # Whoever joins later is not in it; whoever leaves before their turn is skipped at send time.
    # Readers the ledger has already (a welcome step sent the article) are left out by its unique
    # (issue, reader) constraint, one index lookup a row: linear in the list's length.
    readers = recipients_query(issue_id, now).add_columns(literal(DELIVERY_PENDING), literal(0), literal(""))
    db.session.execute(
        _insert_or_skip().from_select(["issue_id", "subscriber_id", "status", "attempts", "error"], readers)
        .on_conflict_do_nothing(index_elements=["issue_id", "subscriber_id"])
    )
    recipients = db.session.scalar(
        select(func.count()).select_from(deliveries).where(deliveries.c.issue_id == issue_id)
    )
    db.session.execute(issue_update(issue_id).values(recipients_count=recipients))
    log.info("issue %s dispatched to %s readers", issue_id, recipients)
    if complaints := bounces.should_pause(issue_id):
        control.pause(issue_id, complaints)
    return recipients


def _insert_or_skip():
    """An INSERT into the ledger that may skip rows already there (ON CONFLICT DO NOTHING)."""
    return (postgresql if db.engine.dialect.name == "postgresql" else sqlite).insert(deliveries)


def dispatch_due(now: datetime | None = None) -> list[int]:
    """Dispatch every due issue; returns the ids this call started."""
    return [issue_id for issue_id in due_issue_ids(now) if dispatch(issue_id) is not None]
