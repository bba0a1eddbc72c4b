"""Sending an issue: dispatch, the delivery ledger, batches with leases, pause/resume/cancel, progress.

The ledger (`deliveries`, one row per issue and reader) is the record of who must get an issue and
who got it. Every step is a conditional UPDATE on it, so any number of workers, schedulers and
sweepers may run at once:

- `dispatch` moves an issue scheduled → sending and writes its ledger in the same transaction;
- `send_batch` claims up to SEND_BATCH_SIZE pending rows with a short lease (LEASE) that a
  heartbeat renews while the batch is alive, sends them over one SMTP connection, and marks each
  row sent in its own commit right after the server accepted it;
- `sweep` frees leases a killed worker left behind and says which issues need batches again.

A worker killed at any instant therefore loses nobody (its rows come back when the lease expires,
within LEASE, and beat's sweep hands them out within SWEEP_EVERY after that) and repeats at most
the one message it had in flight (accepted, not yet marked).

These functions commit: each commit is a step of the protocol above. They know nothing of Celery;
worker/tasks.py turns the "batches needed" they return into tasks.
"""
from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Callable, Iterator

from flask import current_app
from sqlalchemy import Connection, Engine, and_, any_, exists, func, insert, literal, or_, select, update
from sqlalchemy.exc import DBAPIError

from newsletter.core.extensions import db
from newsletter.deliverability import bounces
from newsletter.mail import compose, transports, verp
from newsletter.mail.suppression import email_hash, suppress
from newsletter.models import Delivery, Issue, Subscriber, Suppression, utcnow
from newsletter.models.issues import (
    CANCELED,
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    DELIVERY_SENT,
    DELIVERY_SKIPPED,
    PAUSED,
    SCHEDULED,
    SENDING,
    SENT,
)
from newsletter.models.readers import ACTIVE
from newsletter.publishing import issue_mail
from newsletter.readers.lists import recipients_query
from newsletter.sending import warmup
from newsletter.sending.ratelimit import SendRateLimiter

log = logging.getLogger(__name__)

# A claimed batch holds its deliveries this long; its heartbeat renews the lease every
# HEARTBEAT_EVERY while the worker lives, so only a dead (or frozen) worker's rows come free.
LEASE = timedelta(seconds=30)
HEARTBEAT_EVERY = 5.0
# With SEND_BATCH_SIZE=0 (the default) a batch holds this many seconds of sending, within these bounds.
BATCH_SECONDS = 30
# At most 500: a batch's readers are held in memory while it sends (1,000 took a worker past 100 MB).
MIN_AUTO_BATCH, MAX_AUTO_BATCH = 100, 500
# Beat runs the delivery sweep this often (worker/celery.py): a dead worker's readers are handed
# out again within LEASE + SWEEP_EVERY of its death.
SWEEP_EVERY = timedelta(seconds=10)
# A sending issue whose last batch was claimed longer ago than this has lost its tasks (Redis
# restarted, a worker died): the sweeper hands out its batches again.
IDLE_AFTER = timedelta(minutes=1)
# Retries after "try later" or a dropped connection: 0.25 s, 0.5 s, 1 s... at most a minute apart.
# With 20 failures allowed in a row, an issue pauses after about 12 minutes of refusals.
RETRY_FIRST_DELAY = 0.25
RETRY_MAX_DELAY = 60.0
# A "try later" for one recipient only (4xx to RCPT): that delivery waits 1, 2, 4... minutes, at
# most an hour apart, and fails (without suppressing the address) after about a day of tries.
RECIPIENT_RETRY_FIRST = timedelta(minutes=1)
RECIPIENT_RETRY_MAX = timedelta(hours=1)
RECIPIENT_MAX_ATTEMPTS = 30
# How often a batch looks whether the issue was paused or canceled meanwhile.
STATUS_CHECK_EVERY = 0.5
# The ledger's note on deliveries skipped because the issue was canceled before they went.
CANCELED_ERROR = "issue canceled"

deliveries = Delivery.__table__
issues = Issue.__table__


def _issue_update(issue_id: int, *conditions):
    """An UPDATE of one issue's sending state; updated_at (its last edit, shown in lists and the feed) stays."""
    return update(issues).where(issues.c.id == issue_id, *conditions).values(updated_at=issues.c.updated_at)


# -- dispatch

def due_issue_ids(now: datetime | None = None) -> list[int]:
    """Scheduled issues whose send time has come."""
    now = now or utcnow()
    ids = list(db.session.scalars(
        select(Issue.id).where(Issue.status == SCHEDULED, Issue.send_at <= now).order_by(Issue.send_at)
    ))
    db.session.commit()  # end the read, so the conditional update below starts from fresh data
    return ids


def dispatch(issue_id: int) -> int | None:
    """Start sending: scheduled → sending, and fix the recipients in the ledger. Commits.

    Returns the number of recipients, or None when the issue was not scheduled (already started
    by another scheduler, or unscheduled meanwhile): a repeated dispatch changes nothing.
    """
    now = utcnow()
    # Two schedulers may race here: the row lock (PostgreSQL) or the write lock (SQLite) lets one
    # UPDATE through; the other then finds the status changed and updates nothing.
    started = db.session.execute(
        _issue_update(issue_id, issues.c.status == SCHEDULED)
        .values(status=SENDING, dispatched_at=now, consecutive_failures=0, pause_reason="", batch_claimed_at=now)
    ).rowcount
    if started != 1:
        db.session.rollback()
        return None
    # One statement copies the active readers into the ledger: they are never loaded into Python.
    # Whoever joins later is not in it; whoever leaves before their turn is skipped at send time.
    readers = recipients_query(issue_id, now).add_columns(literal(DELIVERY_PENDING), literal(0), literal(""))
    db.session.execute(
        insert(deliveries).from_select(["issue_id", "subscriber_id", "status", "attempts", "error"], readers)
    )
    recipients = db.session.scalar(
        select(func.count()).select_from(deliveries).where(deliveries.c.issue_id == issue_id)
    )
    db.session.execute(_issue_update(issue_id).values(recipients_count=recipients))
    db.session.commit()
    log.info("issue %s dispatched to %s readers", issue_id, recipients)
    if complaints := bounces.should_pause(issue_id):
        pause(issue_id, complaints)
    return recipients


def dispatch_due(now: datetime | None = None) -> list[int]:
    """Dispatch every due issue; returns the ids this call started."""
    return [issue_id for issue_id in due_issue_ids(now) if dispatch(issue_id) is not None]


def batches_needed(issue_id: int) -> int:
    """How many batch tasks the issue's claimable deliveries fill (0 unless it is sending)."""
    status = db.session.scalar(select(Issue.status).where(Issue.id == issue_id))
    if status != SENDING:
        db.session.commit()
        return 0
    claimable = db.session.scalar(
        select(func.count()).select_from(deliveries).where(_claimable(issue_id, utcnow()))
    )
    db.session.commit()
    return math.ceil(claimable / _batch_size())


# -- one batch

@dataclass
class BatchResult:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    released: int = 0
    deferred: int = 0  # only this reader's server said "try later": retried on its own schedule
    stopped: str = ""  # why the batch stopped early: paused, canceled, rate cap

    def as_dict(self) -> dict:
        return self.__dict__.copy()


@dataclass
class Recipient:
    delivery_id: int
    subscriber_id: int | None
    email: str
    name: str
    token_key: str
    status: str | None
    attempts: int = 1
    lease_until: datetime | None = None

    @property
    def id(self) -> int | None:
        """The reader's id, under the name subscriptions.unsubscribe_url reads."""
        return self.subscriber_id


def send_batch(issue_id: int) -> BatchResult:
    """Claim a batch of pending deliveries and send them over one connection. Commits per message."""
    result = BatchResult()
    issue = db.session.get(Issue, issue_id)
    if issue is None or issue.status != SENDING:
        db.session.commit()
        return result
    recipients = _claim(issue_id)
    result.claimed = len(recipients)
    if recipients:
        with _Heartbeat(db.engine, recipients) as heartbeat:
            recipients = _skip_unwanted(recipients, result)
            if recipients:
                _send(issue, recipients, result, heartbeat)
    finish_if_done(issue_id)
    return result


def _batch_size() -> int:
    """SEND_BATCH_SIZE, or (0, the default) BATCH_SECONDS of sending at the configured rate, so
    a batch's fixed cost (a task, the claim, an SMTP greeting) is small beside its messages."""
    config = current_app.config
    if config["SEND_BATCH_SIZE"] > 0:
        return config["SEND_BATCH_SIZE"]
    rate = config["SEND_RATE_PER_SECOND"]
    return MAX_AUTO_BATCH if rate <= 0 else max(MIN_AUTO_BATCH, min(MAX_AUTO_BATCH, round(rate * BATCH_SECONDS)))


def _claimable(issue_id: int, now: datetime):
    return and_(
        deliveries.c.issue_id == issue_id,
        deliveries.c.status == DELIVERY_PENDING,
        or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
        or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now),
    )


def _claim(issue_id: int) -> list[Recipient]:
    """Lease the next pending deliveries (in ledger order) to this worker and read their readers."""
    now = utcnow()
    # The issue row first, as dispatch, pause, resume and cancel do: one lock order, no deadlock.
    # It also makes the claim fail once the issue is no longer sending.
    sending_still = db.session.execute(
        _issue_update(issue_id, issues.c.status == SENDING).values(batch_claimed_at=now)
    ).rowcount
    if not sending_still:
        db.session.commit()
        return []
    candidates = select(deliveries.c.id).where(_claimable(issue_id, now)).order_by(deliveries.c.id)
    candidates = candidates.limit(_batch_size())
    if db.engine.dialect.name == "postgresql":
        # Concurrent claimers skip each other's rows instead of queueing behind them. The ids are
        # collected into an array first: as `id IN (subquery)` or a joined CTE, PostgreSQL may run
        # the subquery more than once (claiming past the LIMIT) or join it row by row against the
        # whole ledger (seconds per claim at 100,000 readers). The locked rows need no recheck.
        candidates = candidates.with_for_update(skip_locked=True)
        chosen = deliveries.c.id == any_(func.array(candidates.scalar_subquery()))
    else:
        # SQLite: the UPDATE takes the database's write lock before it reads, and repeating the
        # conditions makes it claim only rows that are still free.
        chosen = and_(deliveries.c.id.in_(candidates.scalar_subquery()), _claimable(issue_id, now))
    claimed = db.session.execute(
        update(deliveries)
        .where(chosen)
        .values(lease_until=now + LEASE, attempts=deliveries.c.attempts + 1)
        .returning(deliveries.c.id)
    ).scalars().all()
    db.session.commit()
    if not claimed:
        return []
    rows = db.session.execute(
        select(deliveries.c.id, deliveries.c.subscriber_id, Subscriber.email, Subscriber.name,
               Subscriber.token_key, Subscriber.status, deliveries.c.attempts, deliveries.c.lease_until)
        .select_from(deliveries.outerjoin(Subscriber.__table__, Subscriber.id == deliveries.c.subscriber_id))
        .where(deliveries.c.id.in_(claimed))
        .order_by(deliveries.c.id)
    ).all()
    db.session.commit()
    return [Recipient(*row) for row in rows]


def _skip_unwanted(recipients: list[Recipient], result: BatchResult) -> list[Recipient]:
    """Readers who left (or were erased, or suppressed) since dispatch get nothing."""
    hashes = {r.delivery_id: email_hash(r.email) for r in recipients if r.email}
    suppressed = set(db.session.scalars(
        select(Suppression.email_hash).where(Suppression.email_hash.in_(set(hashes.values())))
    )) if hashes else set()
    keep, skip = [], []
    for recipient in recipients:
        if recipient.status != ACTIVE or hashes.get(recipient.delivery_id) in suppressed:
            skip.append(recipient.delivery_id)
        else:
            keep.append(recipient)
    if skip:
        db.session.execute(
            update(deliveries).where(deliveries.c.id.in_(skip), deliveries.c.status == DELIVERY_PENDING)
            .values(status=DELIVERY_SKIPPED, lease_until=None, error="no longer an active reader")
        )
        result.skipped = len(skip)
    db.session.commit()
    return keep


def _send(issue: Issue, recipients: list[Recipient], result: BatchResult, heartbeat: _Heartbeat) -> None:
    """Send each claimed message in order; on trouble stop and give the rest back to the ledger.

    The batch keeps one database connection, as it keeps one SMTP connection (see _ledger_connection).
    """
    config = current_app.config
    issue_id, message = issue.id, issue_mail.for_issue(issue)
    day_cap = warmup.daily_cap()
    db.session.commit()  # and no more reading through the session: `issue` is expired from here on
    limiter = _limiter()
    sender = compose.envelope_sender()
    max_failures = config["SEND_MAX_CONSECUTIVE_FAILURES"]
    failures_in_a_row = 0
    allowance = 0  # messages the rate limiter has granted and this batch has not sent yet
    next_status_check = time.monotonic() + STATUS_CHECK_EVERY
    with transports.open_transport() as connection, _ledger_connection() as ledger, _sent_marker(ledger) as mark_sent:
        # Dot-stuffed once per issue where the transport takes it so; a DKIM signature covers the unstuffed bytes.
        stuffed = connection.dot_stuffed and not compose.dkim_enabled(config)
        for position, recipient in enumerate(recipients):
            if recipient.delivery_id not in heartbeat.held:
                # This worker stalled past its lease and another batch has these readers now.
                log.warning("issue %s: a batch lost its lease; it stops and leaves the rest to others", issue_id)
                result.stopped = "lease lost"
                return
            if time.monotonic() >= next_status_check:
                next_status_check = time.monotonic() + STATUS_CHECK_EVERY
                if complaints := bounces.should_pause(issue_id):
                    pause(issue_id, complaints)
                status = _issue_status(ledger, issue_id)
                if status != SENDING:
                    result.stopped = status
                    result.released = _release(ledger, recipients[position:])
                    return
            if not allowance:
                grant = limiter.reserve(len(recipients) - position, day_cap=day_cap)
                if not grant.count:
                    result.stopped = "rate cap"
                    result.released = _release(ledger, recipients[position:], retry_in=grant.wait)
                    return
                if grant.wait > 0:
                    time.sleep(grant.wait)
                allowance = grant.count
            allowance -= 1
            while True:
                try:
                    data = message.for_reader(recipient, stuffed=stuffed)
                    connection.send(verp.verp(sender, delivery_id=recipient.delivery_id), recipient.email,
                                    data if stuffed else compose.dkim_sign(data, config), stuffed=stuffed)
                except transports.PermanentFailure as exc:
                    _mark_failed(ledger, recipient, exc)
                    result.failed += 1
                    failures_in_a_row += 1
                    if _count_failure(ledger, issue_id, str(exc), max_failures):
                        result.stopped = PAUSED
                        result.released = _release(ledger, recipients[position + 1:])
                        return
                    break
                except transports.TemporaryFailure as exc:
                    if exc.recipient_only:
                        _defer_one(ledger, recipient, exc)
                        result.deferred += 1
                        break
                    trouble = str(exc)
                except Exception as exc:  # noqa: BLE001 - a fault of ours (an unreadable DKIM key...): retry, then pause saying why
                    log.exception("issue %s: cannot build or send a message", issue_id)
                    trouble = f"the message could not be built or sent ({type(exc).__name__}: {exc})"
                else:
                    mark_sent(recipient.delivery_id)
                    result.sent += 1
                    if failures_in_a_row:
                        failures_in_a_row = 0
                        _reset_failures(ledger, issue_id)
                    break
                failures_in_a_row += 1
                if _count_failure(ledger, issue_id, trouble, max_failures):
                    result.stopped = PAUSED
                    result.released = _release(ledger, recipients[position:])
                    return
                delay = min(RETRY_FIRST_DELAY * 2 ** (failures_in_a_row - 1), RETRY_MAX_DELAY)
                log.info("issue %s: %s; retrying in %.2fs", issue_id, trouble, delay)
                time.sleep(delay)  # the heartbeat keeps the lease meanwhile


class _Heartbeat:
    """Renews a batch's lease every HEARTBEAT_EVERY seconds while the batch runs, from a thread and
    a database connection of its own, so a slow SMTP answer or a retry wait never lets it lapse.

    The lease's expiry time doubles as the batch's token: only rows still pending with exactly the
    value this batch set are renewed. `held` is the set of deliveries the last renewal kept; a row
    missing from it was taken over by another batch (this process froze past its lease) and must
    not be sent from here.
    """

    def __init__(self, engine: Engine, recipients: list[Recipient]):
        self.engine = engine
        self.ids = [r.delivery_id for r in recipients]
        self.lease_until = recipients[0].lease_until
        self.held = frozenset(self.ids)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> "_Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(HEARTBEAT_EVERY):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - a database hiccup: the lease has time for the next beat
                log.exception("could not renew a batch's lease")

    def renew(self) -> None:
        until = utcnow() + LEASE
        with self.engine.begin() as connection:
            kept = connection.execute(
                update(deliveries)
                .where(deliveries.c.id.in_(self.ids), deliveries.c.status == DELIVERY_PENDING,
                       deliveries.c.lease_until == self.lease_until)
                .values(lease_until=until)
                .returning(deliveries.c.id)
            ).scalars().all()
        self.lease_until, self.held = until, frozenset(kept)


@contextmanager
def _ledger_connection() -> Iterator[Connection]:
    """The batch's own connection, in autocommit mode: each mark is one statement and one round
    trip, where a session would add a COMMIT, a pool reset and a ping.

    On PostgreSQL its commits do not wait for the disk (synchronous_commit=off). A killed worker
    loses nothing by that: the server has the commit. Only a crash of the PostgreSQL server itself
    can forget the marks of its last fraction of a second, and those readers get a second copy.
    That trade takes a disk flush out of every message (see docs/performance.md).
    """
    with db.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        postgres = connection.dialect.name == "postgresql"
        if postgres:
            connection.exec_driver_sql("SET synchronous_commit TO off")
        try:
            yield connection
        finally:
            if postgres:
                with contextlib.suppress(DBAPIError):  # a broken connection is discarded by the pool anyway
                    connection.exec_driver_sql("RESET synchronous_commit")


def _issue_status(ledger: Connection, issue_id: int) -> str | None:
    status = ledger.scalar(select(issues.c.status).where(issues.c.id == issue_id))
    ledger.commit()
    return status


@contextmanager
def _sent_marker(ledger: Connection) -> Iterator[Callable[[int], None]]:
    """How a batch records "the server accepted this one": one autocommitted UPDATE, done before
    the next message goes, so a crash from then on cannot resend it.

    It runs once per message, so it goes straight to a DBAPI cursor of the batch's autocommit
    connection, with its SQL written once: through Connection.execute, SQLAlchemy's per-statement
    work (execution context, parameter processing, result set-up) cost more CPU than PostgreSQL's
    answer took to arrive (see docs/performance.md). psycopg prepares the statement after a few runs.
    """
    if ledger.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        raise RuntimeError("marks must commit on their own: the ledger connection is not in autocommit")
    dialect = ledger.dialect
    sql = _MARK_SENT_SQL.replace("%s", "?") if dialect.paramstyle == "qmark" else _MARK_SENT_SQL
    # The value as SQLAlchemy would bind it (SQLite stores datetimes as text in its own format).
    as_stored = deliveries.c.sent_at.type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
    with contextlib.closing(ledger.connection.cursor()) as cursor:
        def mark_sent(delivery_id: int) -> None:
            cursor.execute(sql, (as_stored(utcnow()), delivery_id))

        yield mark_sent


_MARK_SENT_SQL = (
    f"UPDATE {deliveries.name} SET status = '{DELIVERY_SENT}', sent_at = %s, lease_until = NULL, error = '' "
    "WHERE id = %s"
)


def _mark_failed(ledger: Connection, recipient: Recipient, exc: transports.PermanentFailure) -> None:
    """A permanent refusal: the delivery fails and the address is suppressed as bounced.

    Only the SMTP code is kept: the reply text usually names the address, which must not
    outlive the reader's erasure.
    """
    ledger.execute(
        update(deliveries).where(deliveries.c.id == recipient.delivery_id)
        .values(status=DELIVERY_FAILED, lease_until=None, error=f"refused for good (SMTP {exc.code})")
    )
    ledger.commit()
    suppress(recipient.email, "bounced", f"SMTP {exc.code}")
    db.session.commit()
    log.warning("issue delivery %s refused for good (SMTP %s)", recipient.delivery_id, exc.code)


def _defer_one(ledger: Connection, recipient: Recipient, exc: transports.TemporaryFailure) -> None:
    """This reader's server said "try later" (a full mailbox, greylisting): the rest of the batch
    goes on, and this delivery waits its own backoff; after RECIPIENT_MAX_ATTEMPTS it fails,
    without suppressing the address."""
    row = update(deliveries).where(deliveries.c.id == recipient.delivery_id,
                                   deliveries.c.status == DELIVERY_PENDING)
    if recipient.attempts >= RECIPIENT_MAX_ATTEMPTS:
        ledger.execute(row.values(status=DELIVERY_FAILED, lease_until=None,
                                  error=f"deferred {recipient.attempts} times (SMTP {exc.code})"))
    else:
        wait = min(RECIPIENT_RETRY_FIRST * 2 ** (recipient.attempts - 1), RECIPIENT_RETRY_MAX)
        ledger.execute(row.values(lease_until=None, next_attempt_at=utcnow() + wait,
                                  error=f"deferred (SMTP {exc.code})"))
    ledger.commit()
    log.info("issue delivery %s deferred by the recipient's server (SMTP %s)", recipient.delivery_id, exc.code)


def _count_failure(ledger: Connection, issue_id: int, error: str, max_failures: int) -> bool:
    """Count a failure on the issue, pausing it after too many in a row; True when the batch must stop."""
    count = ledger.execute(
        _issue_update(issue_id)
        .values(consecutive_failures=issues.c.consecutive_failures + 1)
        .returning(issues.c.consecutive_failures)
    ).scalar_one()
    if max_failures and count >= max_failures:
        reason = (f"Paused after {count} failed attempts in a row. The mail server last said: "
                  f"{compose.one_line(error, 300)}. Resume when it accepts mail again; nobody is lost or sent twice.")
        ledger.execute(
            _issue_update(issue_id, issues.c.status == SENDING)
            .values(status=PAUSED, pause_reason=reason)
        )
    stopped = ledger.scalar(select(issues.c.status).where(issues.c.id == issue_id)) != SENDING
    ledger.commit()
    return stopped


def _reset_failures(ledger: Connection, issue_id: int) -> None:
    ledger.execute(_issue_update(issue_id).values(consecutive_failures=0))
    ledger.commit()


def _release(ledger: Connection, recipients: list[Recipient], retry_in: float = 0.0) -> int:
    """Give unsent claimed deliveries back to the ledger (optionally not before `retry_in` seconds)."""
    ids = [r.delivery_id for r in recipients]
    if not ids:
        return 0
    values = {"lease_until": None}
    if retry_in:
        values["next_attempt_at"] = utcnow() + timedelta(seconds=retry_in)
    released = ledger.execute(
        update(deliveries).where(deliveries.c.id.in_(ids), deliveries.c.status == DELIVERY_PENDING).values(**values)
    ).rowcount
    ledger.commit()
    return released


def _limiter() -> SendRateLimiter:
    config = current_app.config
    return _shared_limiter(config["REDIS_URL"], config["SEND_RATE_PER_SECOND"], config["SEND_RATE_PER_HOUR"],
                           config["SEND_RATE_PER_DAY"], db.engine)


@lru_cache(maxsize=8)
def _shared_limiter(redis_url: str, per_second: float, per_hour: int, per_day: int, engine: Engine) -> SendRateLimiter:
    """One limiter (and Redis connection) per process and setting, kept across batches."""
    return SendRateLimiter({"REDIS_URL": redis_url, "SEND_RATE_PER_SECOND": per_second,
                            "SEND_RATE_PER_HOUR": per_hour, "SEND_RATE_PER_DAY": per_day}, engine=engine)


def finish_if_done(issue_id: int) -> bool:
    """sending → sent once no delivery is pending. Commits; True if this call finished it."""
    pending = exists().where(deliveries.c.issue_id == issue_id, deliveries.c.status == DELIVERY_PENDING)
    done = db.session.execute(
        _issue_update(issue_id, issues.c.status == SENDING, ~pending)
        .values(status=SENT, sent_at=utcnow())
    ).rowcount
    db.session.commit()
    if done:
        log.info("issue %s sent", issue_id)
    return bool(done)


# -- pause, resume, cancel, sweep

def pause(issue_id: int, reason: str = "Paused by you.") -> bool:
    """sending → paused; batches stop within a moment and give their rest back. Commits."""
    changed = db.session.execute(
        _issue_update(issue_id, issues.c.status == SENDING)
        .values(status=PAUSED, pause_reason=reason)
    ).rowcount
    db.session.commit()
    return bool(changed)


def resume(issue_id: int) -> bool:
    """paused → sending, from where it stopped; the caller then hands out its batches. Commits."""
    changed = db.session.execute(
        _issue_update(issue_id, issues.c.status == PAUSED)
        .values(status=SENDING, pause_reason="", consecutive_failures=0, batch_claimed_at=utcnow())
    ).rowcount
    db.session.execute(
        update(deliveries).where(deliveries.c.issue_id == issue_id, deliveries.c.status == DELIVERY_PENDING)
        .values(next_attempt_at=None)
    )
    db.session.commit()
    if changed:
        finish_if_done(issue_id)
    return bool(changed)


def cancel(issue_id: int) -> bool:
    """sending or paused → canceled; readers not yet mailed never will be. Commits."""
    changed = db.session.execute(
        _issue_update(issue_id, issues.c.status.in_((SENDING, PAUSED)))
        .values(status=CANCELED, canceled_at=utcnow())
    ).rowcount
    if changed:
        db.session.execute(
            update(deliveries).where(deliveries.c.issue_id == issue_id, deliveries.c.status == DELIVERY_PENDING)
            .values(status=DELIVERY_SKIPPED, lease_until=None, error=CANCELED_ERROR)
        )
    db.session.commit()
    return bool(changed)


def sweep(now: datetime | None = None) -> dict[int, int]:
    """Free expired leases, finish issues with nothing pending, and return {issue id: batches
    needed} for sending issues nobody has worked on lately (their tasks were lost). Commits."""
    now = now or utcnow()
    expired = db.session.execute(
        update(deliveries).where(deliveries.c.status == DELIVERY_PENDING, deliveries.c.lease_until < now)
        .values(lease_until=None)
    ).rowcount
    db.session.commit()
    if expired:
        log.warning("%s deliveries had an expired lease (a worker died?); they go out again", expired)
    needed = {}
    for issue_id, claimed_at in db.session.execute(
        select(Issue.id, Issue.batch_claimed_at).where(Issue.status == SENDING)
    ).all():
        if finish_if_done(issue_id):
            continue
        if expired or claimed_at is None or claimed_at < now - IDLE_AFTER:
            needed[issue_id] = batches_needed(issue_id)
    db.session.commit()
    return {issue_id: count for issue_id, count in needed.items() if count}


# -- progress

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


RATE_WINDOW = timedelta(seconds=30)


def progress(issue_id: int) -> Progress | None:
    """Counts from the ledger, the recent sending rate and an estimate of the time left."""
    issue = db.session.get(Issue, issue_id)
    if issue is None:
        return None
    counts = dict(db.session.execute(
        select(deliveries.c.status, func.count()).where(deliveries.c.issue_id == issue_id)
        .group_by(deliveries.c.status)
    ).all())
    now = utcnow()
    window_start = max(now - RATE_WINDOW, issue.dispatched_at or now)
    seconds = max((now - window_start).total_seconds(), 1.0)
    recent = db.session.scalar(
        select(func.count()).select_from(deliveries).where(
            deliveries.c.issue_id == issue_id, deliveries.c.status == DELIVERY_SENT,
            deliveries.c.sent_at >= window_start)
    ) if issue.status == SENDING else 0
    rate = round(recent / seconds, 1)
    pending = counts.get(DELIVERY_PENDING, 0)
    canceled = db.session.scalar(
        select(func.count()).select_from(deliveries).where(
            deliveries.c.issue_id == issue_id, deliveries.c.status == DELIVERY_SKIPPED,
            deliveries.c.error == CANCELED_ERROR)
    ) if issue.status == CANCELED else 0
    result = Progress(
        issue_id=issue_id, status=issue.status, recipients=issue.recipients_count,
        sent=counts.get(DELIVERY_SENT, 0), failed=counts.get(DELIVERY_FAILED, 0),
        skipped=counts.get(DELIVERY_SKIPPED, 0) - canceled, canceled=canceled, pending=pending, rate_per_second=rate,
        seconds_left=round(pending / rate) if rate and pending else (0.0 if not pending else None),
        pause_reason=issue.pause_reason,
    )
    db.session.commit()
    return result

