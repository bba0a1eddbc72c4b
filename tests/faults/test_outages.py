"""Outages of the parts around the app: Redis while signups and inquiries arrive, the SMTP server in
the middle of a send, and two beat schedulers at once. Real gunicorn, Celery worker and beat processes.
"""
from __future__ import annotations

import time
import uuid
from collections import Counter

import requests
from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.mail import outgoing
from newsletter.models import Delivery, Inquiry, Issue, OutgoingMail, Subscriber
from newsletter.readers import subscriptions
from newsletter.readers.subscriptions import Origin
from newsletter.sending import dispatcher, ledger
from tests.helpers import add_issue, add_readers, copies_by_reader, delivery_statuses, hand_out_batches, issue_status
from tests.support import CELERY_BEAT, redis_answers, wait_for

PRACTICE = "practice@newsletter.test"


def post(url: str, data: dict) -> requests.Response:
    return requests.post(url, data=data, timeout=60)


def test_redis_down_while_signups_and_inquiries_arrive_every_success_is_stored_and_mailed_once(
        production_database, app_ctx, smtp, worker, redis_server, start_gunicorn, start_beat):
    web = start_gunicorn({"RATELIMIT_ENABLED": "false"})
    start_beat()
    signups = [f"signup{i}@example.org" for i in range(4)]
    inquirers = [f"inquirer{i}@example.org" for i in range(3)]

    redis_server.stop()
    try:
        for address in signups:
            answer = post(f"{web.url}/embed/subscribe", {"email": address, "name": "Sam"})
            assert answer.status_code == 200 and "inbox" in answer.text
        for number, address in enumerate(inquirers):
            answer = post(f"{web.url}/embed/contact", {"name": "Alex Doe", "email": address,
                                                       "preferred_contact": "email",
                                                       "message": f"We would like to start couples sessions ({number})."})
            assert answer.status_code == 200 and "arrived" in answer.text
        assert smtp.messages == []  # nothing could be handed to a worker
    finally:
        redis_server.start()
    assert redis_answers(redis_server.url)

    # Beat's sweeper (every 30 s) finds the stored mail and the worker sends it.
    smtp.wait_for_messages(len(signups) + 2 * len(inquirers), timeout=120)
    db.session.commit()
    assert outgoing.deliver_due() == {}  # nothing left to send, nothing to send twice
    copies = copies_by_reader(smtp)
    assert copies == Counter({**{a: 1 for a in signups + inquirers}, PRACTICE: len(inquirers)})
    assert db.session.scalar(select(func.count()).select_from(Subscriber).where(Subscriber.email.in_(signups))) == 4
    assert db.session.scalar(select(func.count()).select_from(Inquiry)) == len(inquirers)
    assert set(db.session.scalars(select(OutgoingMail.status))) == {"sent"}


def test_smtp_server_gone_mid_send_the_send_finishes_once_it_is_back(
        production_database, app_ctx, smtp, own_smtp_server, start_worker):
    readers = add_readers(40)
    issue = add_issue()
    queue = f"smtp-outage-{uuid.uuid4().hex[:8]}"
    start_worker(env={"SMTP_PORT": str(own_smtp_server.port), "SEND_RATE_PER_SECOND": "20",
                      "SEND_BATCH_SIZE": "50"}, queues=queue)
    dispatcher.dispatch(issue.id)
    db.session.commit()
    hand_out_batches(issue.id, queue, ledger.batches_needed(issue.id))
    received = own_smtp_server.recorder

    received.wait_for_messages(10)
    own_smtp_server.stop()
    # "Several minutes" compressed to 15 s: the worker retries with backoff (0.25 s doubling) in place,
    # far below the 20 failures in a row that would pause the issue.
    time.sleep(15)
    assert issue_status(issue.id) == "sending"
    own_smtp_server.start_again()
    wait_for(lambda: issue_status(issue.id) == "sent", timeout=90, message="the send did not finish")

    copies = copies_by_reader(received)
    assert set(copies) == {r.email for r in readers}
    doubled = [address for address, count in copies.items() if count > 1]
    assert len(doubled) <= 1  # at most the message in flight when the server went away
    for address in doubled:
        assert copies[address] == 2 and len({m.message["Message-ID"] for m in received.to(address)}) == 1
    assert delivery_statuses(issue.id) == Counter(sent=40)


def test_two_beat_schedulers_dispatch_once_and_sweep_without_doubles(
        production_database, app_ctx, smtp, worker, start_beat):
    readers = add_readers(20)
    issue = add_issue()  # due a minute ago
    # Transactional mail whose hand-off to a worker was lost: only the sweepers can send it.
    lost = [subscriptions.subscribe(f"lost{i}@example.org", "", Origin(), subscriptions.signup_wording())[0]
            for i in range(3)]
    db.session.commit()

    start_beat()
    start_beat(command=CELERY_BEAT)  # SPEC's `celery -A worker beat` beside the deployed `python -m worker.beat`
    wait_for(lambda: issue_status(issue.id) == "sent", timeout=90, message="the issue was not sent")
    smtp.wait_for_messages(len(readers) + len(lost), timeout=60)
    time.sleep(1)  # a second scheduler's late duplicate would arrive now

    copies = copies_by_reader(smtp)
    assert copies == Counter({**{r.email: 1 for r in readers}, **{f"lost{i}@example.org": 1 for i in range(3)}})
    db.session.commit()
    assert db.session.get(Issue, issue.id).recipients_count == len(readers)
    assert db.session.scalar(select(func.count()).select_from(Delivery).where(Delivery.issue_id == issue.id)) == 20
