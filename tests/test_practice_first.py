"""The practice's own mail first: a forward, a reply, a booking invite or a lockout notice never waits
behind an issue's batches or behind acknowledgements to strangers, and a surge of acknowledgements is
paced, never lost (issue #24)."""
from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.inquiries import intake
from newsletter.mail import outgoing
from newsletter.models import OutgoingMail
from newsletter.models.outbox import MAIL_PENDING
from newsletter.readers.subscriptions import Origin
from newsletter.sending import dispatcher
from newsletter.tasks import (
    enqueue,
    enqueue_batches,
    enqueue_mail,
    queue_inquiry_mails,
    sweep_outgoing_mail,
)
from tests.helpers import add_issue, add_readers
from tests.support import CELERY_WORKER, wait_for

ROOT = Path(__file__).resolve().parent.parent
PRACTICE_INBOX = "practice@newsletter.test"


def _store_inquiry(email: str) -> int:
    """An inquiry as the contact form stores it (its mail not yet written)."""
    stored = intake.submit(name="Dana Reyes", email=email, phone="", preferred_contact="email",
                           message="I would like to talk about anxiety at work.",
                           origin=Origin(source="site", ip="203.0.113.9"))
    db.session.commit()
    return stored.inquiry_id


def _write_and_hand_off_mail(inquiry_id: int) -> None:
    """What the worker's queue_inquiry_mails does, in this process (so the test's pacing applies)."""
    mail_ids = intake.queue_mails(inquiry_id)
    db.session.commit()
    enqueue_mail(mail_ids)


def _sent_before(smtp, message) -> list:
    return [other for other in smtp.messages if other.received_at < message.received_at]


def test_every_kind_of_mail_has_a_queue_and_the_practices_own_take_the_first(app):
    kinds = {path.name.split(".")[0] for path in (ROOT / "templates" / "emails").iterdir()
             if not path.name.startswith("_")} - {"issue"} | {"issue_test"}  # an issue goes on "bulk", by the ledger
    assert kinds - outgoing.LANES.keys() == set(), "a new kind of mail needs its queue in outgoing.LANES"
    queues = [queue.name for queue in app.config["CELERY"]["task_queues"]]
    assert queues[0] == outgoing.PRACTICE and set(outgoing.LANES.values()) <= set(queues)
    for kind in ("inquiry_forward", "inquiry_reply", "consultation_invite", "admin_lockout"):
        assert outgoing.LANES[kind] == outgoing.PRACTICE, kind
    assert outgoing.LANES["inquiry_ack"] != outgoing.PRACTICE and "inquiry_ack" in outgoing.PACED_KINDS


def test_a_forward_written_after_a_backlog_of_acks_and_an_issue_goes_out_first(app_ctx, smtp, session_worker,
                                                                             monkeypatch):
    app_ctx.extensions["celery"].control.purge()
    session_worker.stop()  # the backlog builds up while no worker runs, as in a surge
    try:
        monkeypatch.setattr(outgoing, "ACKS_PER_MINUTE", 10_000)  # every ack queued at once, none paced
        acks = [outgoing.queue(kind="inquiry_ack", to=f"stranger{number}@example.net", subject="We got your note",
                             text="Thank you").id for number in range(150)]
        db.session.commit()
        enqueue_mail(acks)
        add_readers(150)
        issue = add_issue()
        dispatcher.dispatch(issue.id)
        db.session.commit()
        assert enqueue_batches(issue.id) >= 1
        _write_and_hand_off_mail(_store_inquiry("dana@example.com"))  # written after the backlog
    finally:
        session_worker.start()

    smtp.wait_for_messages(1, timeout=30)
    wait_for(lambda: smtp.to(PRACTICE_INBOX), timeout=30, message="the forward never came")
    [forward] = smtp.to(PRACTICE_INBOX)
    assert _sent_before(smtp, forward) == [], "the forward waited behind strangers' acks or the issue"
    app_ctx.extensions["celery"].control.purge()  # the backlog has made its point


def test_the_forward_of_an_inquiry_the_form_stored_goes_first_too(app_ctx, smtp, session_worker):
    """The same through the contact form's hand-off: composing the forward is practice work as well."""
    app_ctx.extensions["celery"].control.purge()
    session_worker.stop()
    try:
        confirmations = [outgoing.queue(kind="confirm", to=f"signup{number}@example.net", subject="Please confirm",
                                      text="Confirm").id for number in range(100)]
        db.session.commit()
        enqueue_mail(confirmations)
        assert enqueue(queue_inquiry_mails, _store_inquiry("dana@example.com"))  # the form's hand-off
    finally:
        session_worker.start()

    wait_for(lambda: smtp.to(PRACTICE_INBOX), timeout=30, message="the forward never came")
    [forward] = smtp.to(PRACTICE_INBOX)
    assert _sent_before(smtp, forward) == []
    app_ctx.extensions["celery"].control.purge()


def _pending_acks() -> list[OutgoingMail]:
    db.session.commit()  # see the worker's commits
    return list(db.session.scalars(select(OutgoingMail).where(OutgoingMail.kind == "inquiry_ack",
                                                              OutgoingMail.status == MAIL_PENDING)))


def test_acks_beyond_the_surge_cap_wait_and_the_sweeper_sends_every_one_later(app_ctx, smtp, worker, monkeypatch):
    monkeypatch.setattr(outgoing, "ACKS_PER_MINUTE", 3)
    monkeypatch.setattr(outgoing, "PACE_WINDOW", timedelta(seconds=2))  # a short "minute", for the test
    strangers = [f"stranger{number}@example.net" for number in range(7)]
    for address in strangers:  # a bot's surge: seven inquiries within a "minute"
        _write_and_hand_off_mail(_store_inquiry(address))

    smtp.wait_for_messages(7 + 3)  # every forward, and the first minute's acks
    time.sleep(0.5)
    assert len(smtp.to(PRACTICE_INBOX)) == 7
    assert len(smtp.messages) == 7 + 3
    assert len(_pending_acks()) == 4  # kept, each scheduled for a later minute

    def sweep_until_all_sent() -> bool:
        sweep_outgoing_mail.delay()
        return not _pending_acks()

    wait_for(sweep_until_all_sent, timeout=20, interval=1.0, message="the sweeper did not send the paced acks")
    acked = sorted(rcpt for m in smtp.messages for rcpt in m.rcpt_tos if rcpt != PRACTICE_INBOX)
    assert acked == sorted(strangers)  # every stranger once: none lost, none doubled


def test_the_embedded_broker_takes_practice_mail_within_a_round(app_factory, settings, smtp, start_worker):
    """Without Redis (kombu's SQLAlchemy transport) a worker takes the queues in turn: a forward waits
    for at most one task of each other queue, never behind their backlog."""
    if not settings["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("the embedded mode runs on SQLite")
    app = app_factory(REDIS_URL="")
    with app.app_context():
        app.extensions["celery"].control.purge()
        confirmations = [outgoing.queue(kind="confirm", to=f"signup{number}@example.net", subject="Please confirm",
                                      text="Confirm").id for number in range(30)]
        db.session.commit()
        enqueue_mail(confirmations)
        _write_and_hand_off_mail(_store_inquiry("dana@example.com"))
        start_worker(env={"REDIS_URL": ""}, command=CELERY_WORKER)  # SPEC's plain `celery -A worker worker`

        wait_for(lambda: smtp.to(PRACTICE_INBOX), timeout=60, message="the forward never came")
        [forward] = smtp.to(PRACTICE_INBOX)
        assert len(_sent_before(smtp, forward)) <= 1
        smtp.wait_for_messages(30 + 2, timeout=60)  # and the rest, the ack too
