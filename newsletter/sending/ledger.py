"""The delivery ledger (`deliveries`, one row per issue and reader): who must get an issue and who got it.

Every step is a conditional UPDATE on it, so any number of workers, schedulers and sweepers may run at once:

- `claim` leases up to a batch of pending rows (LEASE); a `Heartbeat` renews the lease while the batch is alive;
- the batch marks each row sent on a connection of its own (`ledger_connection`; `marks.sent_marker`), in its
  own commit, right after the SMTP server accepted it, and has the mark's answer before the next message's end of
  data goes (the "." that makes the server deliver it); `mark_failed`, `defer_one` and `release` close the others;
- `sweep` frees leases a killed worker left behind and says which issues need batches again.

A worker killed at any instant therefore loses nobody (its rows come back when the lease expires, within LEASE,
and beat's sweep hands them out within SWEEP_EVERY after that) and repeats at most the one message it had in
flight (accepted, not yet marked). The commits in this module are those steps: each says so where it stands.
"""
from __future__ import annotations

import contextlib
import logging
import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

from sqlalchemy import ColumnElement, Connection, Engine, and_, any_, exists, func, literal, or_, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.mail import transports
from newsletter.mail.suppression import email_hash, suppress
from newsletter.models import Delivery, Issue, Subscriber, Suppression, utcnow
from newsletter.models.issues import (
    DELIVERY_FAILED,
    DELIVERY_PENDING,
    DELIVERY_SKIPPED,
    SENDING,
    SENT,
)
from newsletter.models.readers import ACTIVE

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
# A "try later" for one recipient only (4xx to RCPT): that delivery waits 1, 2, 4... minutes, at
# most an hour apart, and fails (without suppressing the address) after about a day of tries.
RECIPIENT_RETRY_FIRST = timedelta(minutes=1)
RECIPIENT_RETRY_MAX = timedelta(hours=1)
RECIPIENT_MAX_ATTEMPTS = 30

deliveries = Delivery.__table__
issues = Issue.__table__


def issue_update(issue_id: int, *conditions):
    """An UPDATE of one issue's sending state; updated_at (its last edit, shown in lists and the feed) stays."""
    return update(issues).where(issues.c.id == issue_id, *conditions).values(updated_at=issues.c.updated_at)


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


def one_of(column, values) -> ColumnElement[bool]:
    """`column IN values` for a batch's worth of values. On PostgreSQL one array parameter (`= ANY`): the
    statement's text, and the work SQLAlchemy and psycopg do on it for every batch, stays the same size."""
    if db.engine.dialect.name == "postgresql":
        return column == any_(literal(list(values), postgresql.ARRAY(column.type)))
    return column.in_(values)


def batch_size() -> int:
    """SEND_BATCH_SIZE, or (0, the default) BATCH_SECONDS of sending at the configured rate, so
    a batch's fixed cost (a task, the claim, an SMTP greeting) is small beside its messages."""
    config = settings()
    if config.send_batch_size > 0:
        return config.send_batch_size
    rate = config.send_rate_per_second
    return MAX_AUTO_BATCH if rate <= 0 else max(MIN_AUTO_BATCH, min(MAX_AUTO_BATCH, round(rate * BATCH_SECONDS)))


def _claimable(issue_id: int, now: datetime):
    return and_(
        deliveries.c.issue_id == issue_id,
        deliveries.c.status == DELIVERY_PENDING,
        or_(deliveries.c.lease_until.is_(None), deliveries.c.lease_until < now),
        or_(deliveries.c.next_attempt_at.is_(None), deliveries.c.next_attempt_at <= now),
    )


def batches_needed(issue_id: int) -> int:
    """How many batch tasks the issue's claimable deliveries fill (0 unless it is sending)."""
    status = db.session.scalar(select(issues.c.status).where(issues.c.id == issue_id))
    if status != SENDING:
        return 0
    claimable = db.session.scalar(select(func.count()).select_from(deliveries).where(_claimable(issue_id, utcnow())))
    return math.ceil(claimable / batch_size())


# -- claiming a batch

def claim(issue_id: int) -> list[Recipient]:
    """Lease the next pending deliveries (in ledger order) to this worker and read their readers.

    Commits: the lease must be visible to every other claimer before a message goes.
    """
    now = utcnow()
    # The issue row first, as dispatch, pause, resume and cancel do: one lock order, no deadlock.
    # It also makes the claim fail once the issue is no longer sending.
    if not db.session.execute(issue_update(issue_id, issues.c.status == SENDING).values(batch_claimed_at=now)).rowcount:
        db.session.commit()
        return []
    claimed = db.session.execute(
        update(deliveries)
        .where(_chosen(issue_id, now))
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
        .where(one_of(deliveries.c.id, claimed))
        .order_by(deliveries.c.id)
    ).all()
    db.session.commit()  # ends the read: the batch sends for a while and must hold no snapshot meanwhile
    return [Recipient(*row) for row in rows]


def _chosen(issue_id: int, now: datetime):
    """The condition that picks the next batch of free deliveries, safely under concurrent claimers."""
    candidates = select(deliveries.c.id).where(_claimable(issue_id, now)).order_by(deliveries.c.id).limit(batch_size())
    if db.engine.dialect.name == "postgresql":
        # Concurrent claimers skip each other's rows instead of queueing behind them. The ids are
        # collected into an array first: as `id IN (subquery)` or a joined CTE, PostgreSQL may run
        # the subquery more than once (claiming past the LIMIT) or join it row by row against the
        # whole ledger (seconds per claim at 100,000 readers). The locked rows need no recheck.
        candidates = candidates.with_for_update(skip_locked=True)
        return deliveries.c.id == any_(func.array(candidates.scalar_subquery()))
    # SQLite: the UPDATE takes the database's write lock before it reads, and repeating the
    # conditions makes it claim only rows that are still free.
    return and_(deliveries.c.id.in_(candidates.scalar_subquery()), _claimable(issue_id, now))


def skip_unwanted(recipients: list[Recipient]) -> tuple[list[Recipient], int]:
    """Readers who left (or were erased, or suppressed) since dispatch get nothing: (those who remain, skipped).

    Commits: the skipped rows leave the batch for good before it sends.
    """
    hashes = {r.delivery_id: email_hash(r.email) for r in recipients if r.email}
    suppressed = set(db.session.scalars(
        select(Suppression.email_hash).where(one_of(Suppression.email_hash, set(hashes.values())))
    )) if hashes else set()
    keep, skip = [], []
    for recipient in recipients:
        if recipient.status != ACTIVE or hashes.get(recipient.delivery_id) in suppressed:
            skip.append(recipient.delivery_id)
        else:
            keep.append(recipient)
    if skip:
        db.session.execute(
            update(deliveries).where(one_of(deliveries.c.id, skip), deliveries.c.status == DELIVERY_PENDING)
            .values(status=DELIVERY_SKIPPED, lease_until=None, error="no longer an active reader")
        )
    db.session.commit()
    return keep, len(skip)


class Heartbeat:
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

    def __enter__(self) -> "Heartbeat":
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
        """Extend the lease of the rows this batch still holds (its own connection and commit)."""
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


# -- the batch's own connection: each mark (marks.py) on it is durable before the next message goes

@contextmanager
def ledger_connection() -> Iterator[Connection]:
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


def issue_status(ledger: Connection, issue_id: int) -> str | None:
    """The issue's status as committed now (a pause or cancel from elsewhere shows here)."""
    return ledger.scalar(select(issues.c.status).where(issues.c.id == issue_id))


def mark_failed(ledger: Connection, recipient: Recipient, exc: transports.PermanentFailure) -> None:
    """A permanent refusal: the delivery fails and the address is suppressed as bounced.

    Only the SMTP code is kept: the reply text usually names the address, which must not
    outlive the reader's erasure.
    """
    ledger.execute(
        update(deliveries).where(deliveries.c.id == recipient.delivery_id)
        .values(status=DELIVERY_FAILED, lease_until=None, error=f"refused for good (SMTP {exc.code})")
    )
    suppress(recipient.email, "bounced", f"SMTP {exc.code}")
    db.session.commit()  # mid-batch: the suppression holds before the next message (the address may recur)
    log.warning("issue delivery %s refused for good (SMTP %s)", recipient.delivery_id, exc.code)


def defer_one(ledger: Connection, recipient: Recipient, exc: transports.TemporaryFailure) -> None:
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
    log.info("issue delivery %s deferred by the recipient's server (SMTP %s)", recipient.delivery_id, exc.code)


def release(ledger: Connection, recipients: list[Recipient], retry_in: float = 0.0) -> int:
    """Give unsent claimed deliveries back to the ledger (optionally not before `retry_in` seconds)."""
    ids = [r.delivery_id for r in recipients]
    if not ids:
        return 0
    values = {"lease_until": None}
    if retry_in:
        values["next_attempt_at"] = utcnow() + timedelta(seconds=retry_in)
    return ledger.execute(
        update(deliveries).where(one_of(deliveries.c.id, ids), deliveries.c.status == DELIVERY_PENDING).values(**values)
    ).rowcount


# -- the end of an issue, and the sweeper

def finish_if_done(issue_id: int) -> bool:
    """sending → sent once its whole ledger is written and no delivery is pending; True if this call finished it."""
    pending = exists().where(deliveries.c.issue_id == issue_id, deliveries.c.status == DELIVERY_PENDING)
    done = db.session.execute(
        issue_update(issue_id, issues.c.status == SENDING, issues.c.ledger_through.is_(None), ~pending)
        .values(status=SENT, sent_at=utcnow())
    ).rowcount
    if done:
        log.info("issue %s sent", issue_id)
    return bool(done)


def sweep(now: datetime | None = None) -> dict[int, int]:
    """Free expired leases, finish issues with nothing pending, and return {issue id: batches
    needed} for sending issues nobody has worked on lately (their tasks were lost)."""
    now = now or utcnow()
    expired = db.session.execute(
        update(deliveries).where(deliveries.c.status == DELIVERY_PENDING, deliveries.c.lease_until < now)
        .values(lease_until=None)
    ).rowcount
    # Commits the freed leases before any issue row is touched: the deliveries' row locks must not
    # be held while waiting for an issue's (cancel and resume lock the issue first, then deliveries).
    db.session.commit()
    if expired:
        log.warning("%s deliveries had an expired lease (a worker died?); they go out again", expired)
    needed = {}
    for issue_id, claimed_at in db.session.execute(
        select(issues.c.id, issues.c.batch_claimed_at).where(issues.c.status == SENDING)
    ).all():
        if finish_if_done(issue_id):
            continue
        if expired or claimed_at is None or claimed_at < now - IDLE_AFTER:
            needed[issue_id] = batches_needed(issue_id)
    return {issue_id: count for issue_id, count in needed.items() if count}
