"""A worker killed with SIGKILL three times in one send, each time at an exact point of the SMTP
exchange, timed by the SMTP test server's hooks:

1. mid-exchange, before the message was accepted (at RCPT TO): nothing in flight, no double;
2. after the server stored the message, before its 250 reached the worker (so before the mark):
   that one message goes twice, with the same Message-ID;
3. after the previous message was marked sent (at the next MAIL FROM): no double.

The next message's MAIL FROM and RCPT TO travel with the previous message's data (PIPELINING), so
the server reads them a moment after it stored that message, maybe before the worker has its 250:
cases 1 and 3 kill once the ledger shows that message marked (the worker then waits for the next
envelope's answers, and the next data cannot go before them). A kill before the mark is case 2.

Leases: a batch's lease (ledger.LEASE, 30 s) lapses once its worker's heartbeat stops. Each case runs
beat's sweep with its clock just past the lease, which is what the sweep does once the dead worker's
lease has expired; test_sending_workers.py waits for that in real time (under a minute).
"""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import timedelta

from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.models import Delivery, utcnow
from newsletter.sending import dispatcher, ledger
from tests.helpers import add_issue, add_readers, copies_by_reader, delivery_statuses, hand_out_batches, issue_status
from tests.support import wait_for

READERS = 40
# One batch holds every reader; 50 messages a second keeps the exchange order predictable.
ONE_BATCH = {"SEND_RATE_PER_SECOND": "50", "SEND_BATCH_SIZE": "50"}


def kill_at(smtp, event: str, accepted: int, worker, once_marked: tuple[int, int] | None = None) -> None:
    """SIGKILL `worker` from the SMTP server's thread at `event` once `accepted` messages are stored,
    and, with `once_marked` (issue id, deliveries), once the ledger has that many marked sent."""
    engine = db.engine

    def marked() -> bool:
        issue_id, count = once_marked
        with engine.connect() as connection:
            return connection.scalar(select(func.count()).where(
                Delivery.issue_id == issue_id, Delivery.status == "sent")) == count

    def hook(count: int) -> None:
        if count == accepted:
            smtp.on(event, None)
            if once_marked:
                wait_for(marked, timeout=20, message="the accepted message was never marked")
            worker.kill()
    smtp.on(event, hook)


def resume_after_lease_expiry(issue_id: int, queue: str) -> None:
    needed = ledger.sweep(now=utcnow() + ledger.LEASE + timedelta(seconds=1))  # the lease has lapsed by then
    assert needed.get(issue_id, 0) >= 1
    hand_out_batches(issue_id, queue, needed[issue_id])


def test_three_sigkills_in_one_send_lose_nobody_and_double_only_the_message_in_flight(
        production_database, app_ctx, smtp, start_worker):
    readers = add_readers(READERS)
    issue = add_issue()
    queue = f"kills-{uuid.uuid4().hex[:8]}"
    dispatcher.dispatch(issue.id)
    db.session.commit()

    # 1. Before the message is accepted.
    first = start_worker(env=ONE_BATCH, queues=queue)
    kill_at(smtp, "RCPT", 5, first, once_marked=(issue.id, 5))
    hand_out_batches(issue.id, queue, ledger.batches_needed(issue.id))
    wait_for(lambda: first.process.poll() is not None, timeout=30, message="worker 1 was not killed")
    assert len(smtp.messages) == 5 and delivery_statuses(issue.id)["sent"] == 5

    # 2. After the server stored message 15, before the worker saw the 250.
    second = start_worker(env=ONE_BATCH, queues=queue)
    kill_at(smtp, "ACCEPTED", 15, second)
    resume_after_lease_expiry(issue.id, queue)
    wait_for(lambda: second.process.poll() is not None, timeout=30, message="worker 2 was not killed")
    assert len(smtp.messages) == 15 and delivery_statuses(issue.id)["sent"] == 14

    # 3. After message 25 was marked sent, before the next exchange.
    third = start_worker(env=ONE_BATCH, queues=queue)
    kill_at(smtp, "MAIL", 25, third, once_marked=(issue.id, 24))
    resume_after_lease_expiry(issue.id, queue)
    wait_for(lambda: third.process.poll() is not None, timeout=30, message="worker 3 was not killed")
    assert len(smtp.messages) == 25 and delivery_statuses(issue.id)["sent"] == 24  # 25 minus the double

    start_worker(env=ONE_BATCH, queues=queue)
    resume_after_lease_expiry(issue.id, queue)
    wait_for(lambda: issue_status(issue.id) == "sent", timeout=60, message="the send did not finish")

    copies = copies_by_reader(smtp)
    assert set(copies) == {r.email for r in readers}
    doubled = [address for address, count in copies.items() if count > 1]
    assert len(doubled) == 1 and copies[doubled[0]] == 2 and sum(copies.values()) == READERS + 1
    assert len({m.message["Message-ID"] for m in smtp.to(doubled[0])}) == 1
    assert delivery_statuses(issue.id) == Counter(sent=READERS)
