"""Sending one batch of an issue: claim it, send each message over one SMTP connection, mark each in the ledger.

The rooms around it: `dispatcher` starts an issue and writes its ledger, `ledger` claims, leases, marks,
releases and sweeps, `control` pauses, resumes, cancels and reports progress. A batch commits as it goes
(its claim, then each message's mark on a connection of its own): those commits are the exactly-once
protocol described in `ledger`, so `send_batch` is the one service here that commits. It knows nothing
of Celery; newsletter/tasks.py turns the "batches needed" into tasks.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

from sqlalchemy import Connection, Engine, select

from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.deliverability import bounces
from newsletter.mail import compose, transports, verp
from newsletter.models import Issue
from newsletter.models.issues import PAUSED, SENDING
from newsletter.publishing import issue_mail
from newsletter.sending import control, ledger, warmup
from newsletter.sending.ledger import Recipient, issue_update, issues
from newsletter.sending.marks import MarkFailed, sent_marker
from newsletter.sending.ratelimit import SendRateLimiter

log = logging.getLogger(__name__)

# Retries after "try later" or a dropped connection: 0.25 s, 0.5 s, 1 s... at most a minute apart.
# With 20 failures allowed in a row, an issue pauses after about 12 minutes of refusals.
RETRY_FIRST_DELAY = 0.25
RETRY_MAX_DELAY = 60.0
# How often a batch looks whether the issue was paused or canceled meanwhile.
STATUS_CHECK_EVERY = 0.5


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


def send_batch(issue_id: int) -> BatchResult:
    """Claim a batch of pending deliveries and send them over one connection. Commits per message."""
    result = BatchResult()
    issue = db.session.get(Issue, issue_id)
    if issue is None or issue.status != SENDING:
        db.session.commit()  # ends the read: a worker holds no snapshot between tasks
        return result
    recipients = ledger.claim(issue_id)
    result.claimed = len(recipients)
    if recipients:
        with ledger.Heartbeat(db.engine, recipients) as heartbeat:
            recipients, result.skipped = ledger.skip_unwanted(recipients)
            if recipients:
                _send(issue, recipients, result, heartbeat)
    ledger.finish_if_done(issue_id)
    db.session.commit()  # the batch's last step: its issue is sent once its last row is
    return result


def _send(issue: Issue, recipients: list[Recipient], result: BatchResult, heartbeat: ledger.Heartbeat) -> None:
    """Send each claimed message in order; on trouble stop and give the rest back to the ledger.

    The batch keeps one database connection, as it keeps one SMTP connection (see ledger.ledger_connection).
    """
    issue_id, message, day_cap = issue.id, issue_mail.for_issue(issue), warmup.daily_cap()
    db.session.commit()  # ends the read; nothing more is read through the session: `issue` is expired
    with (transports.open_transport() as connection, ledger.ledger_connection() as marks,
          sent_marker(marks) as sent_marks):
        batch = _Batch(issue_id, recipients, result, heartbeat, marks, sent_marks, day_cap)
        post = _Post(connection, message, sent_marks.confirm)
        for position in range(len(recipients)):
            if not batch.may_send(position) or not batch.deliver(post, position):
                return


class _Post:
    """One message out: the issue's mail for a reader, signed (or dot-stuffed), over the batch's connection."""

    def __init__(self, connection: transports.Transport, message: issue_mail.IssueMail,
                 before_end: Callable[[], None]):
        self.connection, self.message, self.config = connection, message, settings()
        self.before_end = before_end  # the last message's mark confirmed before this one's end of data goes
        self.sender = compose.envelope_sender()
        self._last_sender: tuple[int | None, str] = (None, "")
        self._ahead: tuple[int | None, bytes] = (None, b"")  # the next reader's copy, built while the server worked
        # Dot-stuffed once per issue where the transport takes it so; a DKIM signature covers the unstuffed bytes.
        self.stuffed = connection.dot_stuffed and not self.config.dkim_enabled

    def send(self, recipient: Recipient, then: Recipient | None = None) -> None:
        """Send one reader's copy; `then`, the reader sent next, has its envelope written ahead and its copy
        built while the server takes in this one (the worker's CPU and the server's then overlap)."""
        self.connection.send(self._sender(recipient), recipient.email, self._copy(recipient), stuffed=self.stuffed,
                             before_end=self.before_end, then=then and (self._sender(then), then.email),
                             while_waiting=then and (lambda: self._build_ahead(then)))

    def _copy(self, recipient: Recipient) -> bytes:
        delivery_id, data = self._ahead
        self._ahead = (None, b"")
        if delivery_id == recipient.delivery_id:
            return data
        data = self.message.for_reader(recipient, stuffed=self.stuffed)
        return data if self.stuffed else compose.dkim_sign(data, self.config)

    def _build_ahead(self, recipient: Recipient) -> None:
        """Build the next copy now; where that fails, the next `send` builds it again and meets the error."""
        try:
            copy = self._copy(recipient)
        except Exception:  # noqa: BLE001 - reported by the next send, where a failure is handled
            return
        self._ahead = (recipient.delivery_id, copy)

    def _sender(self, recipient: Recipient) -> str:
        """The reader's envelope sender, kept from when it was written ahead as `then`."""
        if self._last_sender[0] != recipient.delivery_id:
            self._last_sender = (recipient.delivery_id, verp.verp(self.sender, delivery_id=recipient.delivery_id))
        return self._last_sender[1]


class _Batch:
    """What a batch knows while it sends: the lease, the issue's status, the rate grant, failures in a row."""

    def __init__(self, issue_id: int, recipients: list[Recipient], result: BatchResult, heartbeat: ledger.Heartbeat,
                 marks: Connection, sent_marks, day_cap: int | None):
        self.issue_id, self.recipients, self.result = issue_id, recipients, result
        self.heartbeat, self._marks, self.sent_marks, self.day_cap = heartbeat, marks, sent_marks, day_cap
        self.limiter = _limiter()
        self.max_failures = settings().send_max_consecutive_failures
        self.failures_in_a_row = 0
        self.allowance = 0  # messages the rate limiter has granted and this batch has not sent yet
        self.next_status_check = time.monotonic() + STATUS_CHECK_EVERY

    @property
    def marks(self) -> Connection:
        """The batch's ledger connection, once the last mark is answered: one statement at a time on it."""
        self.sent_marks.confirm()
        return self._marks

    def may_send(self, position: int) -> bool:
        """Whether the message at `position` may go: still ours, still sending, within the rate."""
        return self._holds(position) and self._still_sending(position) and self._rate_allows(position)

    def deliver(self, post: _Post, position: int) -> bool:
        """Send one message, retrying in place while the server says "later"; False when the batch must stop."""
        recipient, then = self.recipients[position], self._next(position)
        while True:
            try:
                post.send(recipient, then)
            except transports.PermanentFailure as exc:
                ledger.mark_failed(self.marks, recipient, exc)
                self.result.failed += 1
                return not self._paused_by_failure(str(exc), unsent_from=position + 1)
            except transports.TemporaryFailure as exc:
                if exc.recipient_only:
                    ledger.defer_one(self.marks, recipient, exc)
                    self.result.deferred += 1
                    return True
                trouble = str(exc)
            except MarkFailed:
                raise  # the database is gone: stop before another message goes unrecorded
            except Exception as exc:  # noqa: BLE001 - a fault of ours (an unreadable DKIM key...): retry, then pause saying why
                log.exception("issue %s: cannot build or send a message", self.issue_id)
                trouble = f"the message could not be built or sent ({type(exc).__name__}: {exc})"
            else:
                self._sent(recipient)
                return True
            if self._paused_by_failure(trouble, unsent_from=position):
                return False
            delay = min(RETRY_FIRST_DELAY * 2 ** (self.failures_in_a_row - 1), RETRY_MAX_DELAY)
            log.info("issue %s: %s; retrying in %.2fs", self.issue_id, trouble, delay)
            time.sleep(delay)  # the heartbeat keeps the lease meanwhile

    def _next(self, position: int) -> Recipient | None:
        """The reader after `position` when it may follow at once (the rate already granted it): its envelope
        goes right behind this message's data. Where it then does not follow (the batch stops, this message is
        tried again), the transport drops the connection: the server discards what it waited for."""
        if self.allowance and position + 1 < len(self.recipients):
            return self.recipients[position + 1]
        return None

    def _holds(self, position: int) -> bool:
        if self.recipients[position].delivery_id in self.heartbeat.held:
            return True
        # This worker stalled past its lease and another batch has these readers now.
        log.warning("issue %s: a batch lost its lease; it stops and leaves the rest to others", self.issue_id)
        self.result.stopped = "lease lost"
        return False

    def _still_sending(self, position: int) -> bool:
        """Every STATUS_CHECK_EVERY: pause on complaints, and stop if the issue is no longer sending."""
        if time.monotonic() < self.next_status_check:
            return True
        self.next_status_check = time.monotonic() + STATUS_CHECK_EVERY
        if complaints := bounces.should_pause(self.issue_id):
            self.marks.execute(control.pausing(self.issue_id, complaints))
        status = ledger.issue_status(self.marks, self.issue_id)
        if status == SENDING:
            return True
        self._stop(status, position)
        return False

    def _rate_allows(self, position: int) -> bool:
        if not self.allowance:
            grant = self.limiter.reserve(len(self.recipients) - position, day_cap=self.day_cap)
            if not grant.count:
                self._stop("rate cap", position, retry_in=grant.wait)
                return False
            if grant.wait > 0:
                time.sleep(grant.wait)
            self.allowance = grant.count
        self.allowance -= 1
        return True

    def _sent(self, recipient: Recipient) -> None:
        self.sent_marks.send(recipient.delivery_id)
        self.result.sent += 1
        if self.failures_in_a_row:
            self.failures_in_a_row = 0
            self.marks.execute(issue_update(self.issue_id).values(consecutive_failures=0))

    def _paused_by_failure(self, error: str, unsent_from: int) -> bool:
        """Count a failure in a row; True (the rest given back) when the issue paused for it."""
        self.failures_in_a_row += 1
        if not _count_failure(self.marks, self.issue_id, error, self.max_failures):
            return False
        self._stop(PAUSED, unsent_from)
        return True

    def _stop(self, why: str, unsent_from: int, retry_in: float = 0.0) -> None:
        """Record why the batch stops and give its unsent rows back to the ledger."""
        self.result.stopped = why
        self.result.released = ledger.release(self.marks, self.recipients[unsent_from:], retry_in)


def _count_failure(marks: Connection, issue_id: int, error: str, max_failures: int) -> bool:
    """Count a failure on the issue, pausing it after too many in a row; True when the batch must stop."""
    count = marks.execute(
        issue_update(issue_id)
        .values(consecutive_failures=issues.c.consecutive_failures + 1)
        .returning(issues.c.consecutive_failures)
    ).scalar_one()
    if max_failures and count >= max_failures:
        reason = (f"Paused after {count} failed attempts in a row. The mail server last said: "
                  f"{compose.one_line(error, 300)}. Resume when it accepts mail again; nobody is lost or sent twice.")
        marks.execute(control.pausing(issue_id, reason))
    return marks.scalar(select(issues.c.status).where(issues.c.id == issue_id)) != SENDING


def _limiter() -> SendRateLimiter:
    config = settings()
    return _shared_limiter(config.redis_url, config.send_rate_per_second, config.send_rate_per_hour,
                           config.send_rate_per_day, db.engine)


@lru_cache(maxsize=8)
def _shared_limiter(redis_url: str, per_second: float, per_hour: int, per_day: int, engine: Engine) -> SendRateLimiter:
    """One limiter (and Redis connection) per process and setting, kept across batches."""
    return SendRateLimiter({"REDIS_URL": redis_url, "SEND_RATE_PER_SECOND": per_second,
                            "SEND_RATE_PER_HOUR": per_hour, "SEND_RATE_PER_DAY": per_day}, engine=engine)
