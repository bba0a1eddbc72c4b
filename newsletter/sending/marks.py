"""How a batch records "the server accepted this one": one autocommitted UPDATE per message on the batch's
ledger connection (`ledger.ledger_connection`), confirmed before the next message's end of data goes, so a worker
killed at any instant doubles at most the message in flight (the protocol is described in `ledger`).
"""
from __future__ import annotations

import contextlib
import select as socket_select
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import Connection

from newsletter.models import Delivery, utcnow
from newsletter.models.issues import DELIVERY_SENT

deliveries = Delivery.__table__


class MarkFailed(Exception):
    """A mark could not be written: the batch stops at once (the message in flight goes again later)."""


@contextmanager
def sent_marker(ledger: Connection) -> Iterator["CursorMarks | PipelinedMarks"]:
    """How a batch records "the server accepted this one": `send(delivery_id)` writes the mark in its
    own autocommitted UPDATE; `confirm()` returns once the database has answered the last one.

    The rule that keeps a worker's death from doubling more than one message: a message's mark is
    confirmed before the next message's end of data goes (`confirm` runs once the next message's
    envelope is answered and its data written, before the final "." that makes the server deliver
    it: transports.SMTPTransport's `before_end`), so its round trip overlaps the server reading that
    data. On PostgreSQL the mark is sent without waiting (PipelinedMarks); elsewhere it
    is run at once and `confirm` has nothing left to do.
    """
    if ledger.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
        raise RuntimeError("marks must commit on their own: the ledger connection is not in autocommit")
    marks = PipelinedMarks(ledger) if ledger.dialect.driver == "psycopg" else CursorMarks(ledger)
    try:
        yield marks
    finally:
        marks.close()


class CursorMarks:
    """Each mark run at once on a DBAPI cursor, its SQL written once: through Connection.execute,
    SQLAlchemy's per-statement work cost more CPU than the database's answer took to arrive."""

    def __init__(self, ledger: Connection):
        dialect = ledger.dialect
        self.sql = _MARK_SENT_SQL.replace("%s", "?") if dialect.paramstyle == "qmark" else _MARK_SENT_SQL
        # The value as SQLAlchemy would bind it (SQLite stores datetimes as text in its own format).
        self.as_stored = deliveries.c.sent_at.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
        self.cursor = ledger.connection.cursor()

    def send(self, delivery_id: int) -> None:
        self.cursor.execute(self.sql, (self.as_stored(utcnow()), delivery_id))

    def confirm(self) -> None:
        pass

    def close(self) -> None:
        self.cursor.close()


class PipelinedMarks:
    """PostgreSQL (psycopg): a prepared mark sent through libpq without waiting for its answer,
    which `confirm` reads. Once sent, a mark commits even if the worker dies the next instant:
    the server has the whole statement. At most one mark is ever unanswered."""

    NAME = b"newsletter_mark_sent"
    WAIT = 60.0  # seconds for an answer before the batch gives up on the database

    def __init__(self, ledger: Connection):
        from psycopg import pq

        self.pq, self.pgconn, self.pending = pq, ledger.connection.dbapi_connection.pgconn, False
        self._check(self.pgconn.prepare(self.NAME, (_MARK_SENT_SQL % ("$1", "$2")).encode(), None))

    def send(self, delivery_id: int) -> None:
        self.confirm()
        try:
            self.pgconn.send_query_prepared(self.NAME, [utcnow().isoformat(" ").encode(), b"%d" % delivery_id])
            while self.pgconn.flush():
                socket_select.select([], [self.pgconn.socket], [], self.WAIT)
        except Exception as exc:  # psycopg.OperationalError: the connection is gone
            raise MarkFailed(f"could not send a mark: {exc}") from exc
        self.pending = True

    def confirm(self) -> None:
        if not self.pending:
            return
        self.pending = False
        for result in self._results():
            self._check(result)

    def _results(self) -> list:
        results = []
        try:
            while True:
                while self.pgconn.is_busy():
                    if not socket_select.select([self.pgconn.socket], [], [], self.WAIT)[0]:
                        raise MarkFailed(f"no answer from the database within {self.WAIT:.0f}s")
                    self.pgconn.consume_input()
                if (result := self.pgconn.get_result()) is None:
                    return results
                results.append(result)
        except MarkFailed:
            raise
        except Exception as exc:  # psycopg.OperationalError: the connection is gone
            raise MarkFailed(f"no answer to a mark: {exc}") from exc

    def _check(self, result) -> None:
        if result.status != self.pq.ExecStatus.COMMAND_OK:
            raise MarkFailed((result.error_message or b"").decode("utf-8", "replace").strip() or "mark failed")

    def close(self) -> None:
        """Read the last answer and drop the statement, so the pool gets the connection back idle."""
        with contextlib.suppress(Exception):  # a broken connection is discarded by the pool anyway
            self.confirm()
            self.pgconn.exec_(b"DEALLOCATE " + self.NAME)


_MARK_SENT_SQL = (
    f"UPDATE {deliveries.name} SET status = '{DELIVERY_SENT}', sent_at = %s, lease_until = NULL, error = '' "
    "WHERE id = %s"
)
