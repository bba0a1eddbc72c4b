"""Heartbeats: beat, every worker and the backup write down when they last ran, so a silent one shows.

Beat's row is written by a task that beat schedules every minute (`newsletter.tasks.heartbeat`): when it goes
stale, nothing scheduled happens (issues due, sweeps, reply-by nudges). Each worker process writes its own row
("worker:<hostname>") from a thread started when it is ready, whether beat runs or not, so "every worker is
silent" and "beat is silent" tell apart. A finished backup writes the "backup" row.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import create_engine, delete, select
from sqlalchemy.pool import NullPool

from newsletter.core.extensions import db
from newsletter.models import Heartbeat, utcnow

log = logging.getLogger(__name__)

BEAT = "beat"
BACKUP = "backup"
WORKER_PREFIX = "worker:"
EVERY = timedelta(minutes=1)
# Past this, a part counts as silent (a few missed beats, not one slow minute).
SILENT_AFTER = timedelta(minutes=5)
# A worker row this old belongs to a container or host that is gone: beat forgets it.
FORGET_AFTER = timedelta(days=2)


def worker_name(hostname: str) -> str:
    return WORKER_PREFIX + hostname


def _upsert(dialect: str, name: str, at: datetime):
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    statement = insert(Heartbeat.__table__).values(name=name, beat_at=at)
    return statement.on_conflict_do_update(index_elements=["name"], set_={"beat_at": at})


def record(name: str, at: datetime | None = None) -> None:
    """Write that `name` is alive now (in the caller's transaction)."""
    db.session.execute(_upsert(db.engine.dialect.name, name, at or utcnow()))


def forget_gone_workers(now: datetime | None = None) -> int:
    """Drop worker rows nobody renewed for FORGET_AFTER (a replaced container's hostname)."""
    cutoff = (now or utcnow()) - FORGET_AFTER
    result = db.session.execute(delete(Heartbeat).where(Heartbeat.name.startswith(WORKER_PREFIX),
                                                        Heartbeat.beat_at < cutoff))
    return result.rowcount or 0


def last_seen(name: str) -> datetime | None:
    """When `name` last beat; None if it never did."""
    return db.session.scalar(select(Heartbeat.beat_at).where(Heartbeat.name == name))


def last_worker_seen() -> datetime | None:
    """The freshest heartbeat of any worker; None if no worker ever wrote one."""
    return db.session.scalar(select(Heartbeat.beat_at).where(Heartbeat.name.startswith(WORKER_PREFIX))
                             .order_by(Heartbeat.beat_at.desc()).limit(1))


@dataclass(frozen=True)
class Silence:
    """A background part that stopped: what it is, since when (None: never seen), and what stops with it."""
    part: str
    since: datetime | None
    consequence: str


def silences(now: datetime | None = None) -> list[Silence]:
    """Beat and the workers, when silent for longer than SILENT_AFTER."""
    now = now or utcnow()
    found = []
    for part, seen, consequence in (
        ("beat (the scheduler)", last_seen(BEAT),
         "scheduled issues are not sent, and no reply-by reminders or lost mail sweeps happen"),
        ("every worker", last_worker_seen(), "no mail is sent at all"),
    ):
        if seen is None or now - seen > SILENT_AFTER:
            found.append(Silence(part, seen, consequence))
    return found


class Pulse:
    """A daemon thread that records `name` every EVERY on its own short connections (NullPool), so a
    process that forks children later leaves them no open database socket."""

    def __init__(self, database_uri: str, name: str, every: timedelta = EVERY) -> None:
        self.engine = create_engine(database_uri, poolclass=NullPool)
        self.name = name
        self.every = every
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"heartbeat {name}", daemon=True)

    def start(self) -> "Pulse":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()

    def beat_once(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(_upsert(self.engine.dialect.name, self.name, utcnow()))

    def _run(self) -> None:
        while not self.stopped.is_set():
            try:
                self.beat_once()
            except Exception:  # the database is down: the next beat tries again, the process lives on
                log.warning("heartbeat %s not written", self.name, exc_info=True)
            self.stopped.wait(self.every.total_seconds())
