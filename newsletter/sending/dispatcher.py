"""Starting an issue: scheduled → sending, and its delivery ledger written in steps.

The first step is in the dispatch's own transaction, small, so that the first batches go at once; each
further step (LEDGER_STEP readers) is a commit of its own, and the batches it made go out while the next is
written. Until the last step the issue cannot be sent (`ledger.finish_if_done`); a writer killed in between
is replaced by the next dispatch round (`stalled_ledgers`).

These do not commit: the caller (beat's dispatch task) commits, and until then the issue's row lock
(PostgreSQL) or the write lock (SQLite) keeps any other scheduler from starting the same issue.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from newsletter.core.extensions import db
from newsletter.deliverability import bounces
from newsletter.models import Subscriber, utcnow
from newsletter.models.issues import DELIVERY_PENDING, PAUSED, SCHEDULED, SENDING
from newsletter.readers.lists import recipients_query
from newsletter.sending import control
from newsletter.sending.ledger import IDLE_AFTER, deliveries, issue_update, issues

log = logging.getLogger(__name__)

# Reader ids the dispatch itself takes into the ledger (up to two batches at the largest size: sending starts
# within a few hundredths of a second), then how many ids each further step covers (a third of a second to write).
FIRST_STEP, LEDGER_STEP = 1_000, 20_000
# A paused issue's ledger is still written: only a cancel stops it.
WRITING = (SENDING, PAUSED)


def due_issue_ids(now: datetime | None = None) -> list[int]:
    """Scheduled issues whose send time has come."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(issues.c.id).where(issues.c.status == SCHEDULED, issues.c.send_at <= now).order_by(issues.c.send_at)
    ))


def dispatch(issue_id: int) -> int | None:
    """Start sending: scheduled → sending, and the first FIRST_STEP readers into the ledger.

    Returns the number of recipients written so far, or None when the issue was not scheduled (already
    started by another scheduler, or unscheduled meanwhile): a repeated dispatch changes nothing. The
    caller commits, hands out those readers' batches, then writes the rest (`write_ledger_step`).
    An issue started while readers complain too much pauses at once (bounces.should_pause, which
    commits its own record of that pause, and with it this dispatch).
    """
    now = utcnow()
    # Two schedulers may race here: the row lock (PostgreSQL) or the write lock (SQLite) lets one
    # UPDATE through; the other then finds the status changed and updates nothing.
    started = db.session.execute(
        issue_update(issue_id, issues.c.status == SCHEDULED)
        .values(status=SENDING, dispatched_at=now, consecutive_failures=0, pause_reason="", batch_claimed_at=now,
                recipients_count=_already_in_ledger(issue_id),
                ledger_through=select(func.coalesce(func.min(Subscriber.id), 1) - 1).scalar_subquery())
    ).rowcount
    if started != 1:
        return None
    step = write_ledger_step(issue_id, FIRST_STEP)
    log.info("issue %s dispatched to %s readers%s", issue_id, step.added, "" if step.finished else " so far")
    if complaints := bounces.should_pause(issue_id):
        control.pause(issue_id, complaints)
    return step.added


def _already_in_ledger(issue_id: int):
    """Readers a welcome step sent the article before its dispatch: recipients too, counted from the start."""
    return select(func.count()).select_from(deliveries).where(deliveries.c.issue_id == issue_id).scalar_subquery()


@dataclass
class LedgerStep:
    added: int  # readers this step put in the ledger
    finished: bool  # every reader is in it now


class LedgerStepTaken(Exception):
    """Another writer wrote this step first, or the issue was canceled meanwhile: roll the step back."""


def write_ledger_step(issue_id: int, size: int = LEDGER_STEP) -> LedgerStep | None:
    """Put the issue's readers with the next `size` ids (after `ledger_through`) in its ledger.

    None when it has no ledger left to write. One statement copies them: they are never loaded into Python.
    Whoever joins after the dispatch is not in it; whoever leaves before their turn is skipped at send
    time. Readers the ledger has already (a welcome step sent the article) are left out by its unique
    (issue, reader) constraint, one index lookup a row: linear in the list's length.
    Does not commit; raises LedgerStepTaken when the step must be rolled back.
    """
    issue = db.session.execute(
        select(issues.c.ledger_through, issues.c.dispatched_at)
        .where(issues.c.id == issue_id, issues.c.status.in_(WRITING), issues.c.ledger_through.is_not(None))
    ).first()
    if issue is None:
        return None
    # A step is a range of reader ids, not a count of recipients: finding where `size` recipients end
    # would read the step's readers twice (it made a million readers' ledger take twice as long).
    after = issue.ledger_through
    last = after + size
    finished = last >= (db.session.scalar(select(func.max(Subscriber.id))) or 0)
    readers = recipients_query(issue_id, issue.dispatched_at).where(
        Subscriber.id > after, Subscriber.id <= last, _reader_by(issue.dispatched_at))
    added = db.session.execute(
        _insert_or_skip().from_select(["issue_id", "subscriber_id", "status", "attempts", "error"],
                                      readers.add_columns(literal(DELIVERY_PENDING), literal(0), literal("")))
        .on_conflict_do_nothing(index_elements=["issue_id", "subscriber_id"]),
        execution_options={"preserve_rowcount": True},  # an INSERT's count is kept only when asked for
    ).rowcount
    # Written first, claimed after: the issue row is locked only this long, and claims never wait for a step.
    moved = db.session.execute(
        issue_update(issue_id, issues.c.status.in_(WRITING), issues.c.ledger_through == after)
        .values(ledger_through=None if finished else last, recipients_count=issues.c.recipients_count + added,
                batch_claimed_at=utcnow())
    ).rowcount
    if not moved:
        raise LedgerStepTaken(f"issue {issue_id}: the ledger after reader {after} was written or canceled meanwhile")
    return LedgerStep(added=added, finished=finished)


def _reader_by(moment: datetime):
    """Readers who were readers at `moment` (the dispatch): the later steps leave out whoever joined since."""
    return and_(Subscriber.created_at <= moment,
                or_(Subscriber.confirmed_at.is_(None), Subscriber.confirmed_at <= moment))


def stalled_ledgers(now: datetime | None = None) -> list[int]:
    """Sending issues whose ledger writer stopped (killed mid-write): nothing claimed or written for IDLE_AFTER."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(issues.c.id).where(issues.c.status == SENDING, issues.c.ledger_through.is_not(None),
                                  issues.c.batch_claimed_at < now - IDLE_AFTER)
    ))


def _insert_or_skip():
    """An INSERT into the ledger that may skip rows already there (ON CONFLICT DO NOTHING)."""
    return (postgresql if db.engine.dialect.name == "postgresql" else sqlite).insert(deliveries)


def dispatch_due(now: datetime | None = None) -> list[int]:
    """Dispatch every due issue; returns the ids this call started, and those whose ledger writer stopped:
    the caller commits, hands out their batches and writes the rest of their ledgers."""
    started = [issue_id for issue_id in due_issue_ids(now) if dispatch(issue_id) is not None]
    return started + stalled_ledgers(now)
