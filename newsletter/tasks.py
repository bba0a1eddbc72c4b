"""Thin task wrappers around the domain services. Tasks receive ids, never ORM objects."""
from __future__ import annotations

import logging
import math
import time
from datetime import timedelta
from typing import Any, Callable, Iterable
from weakref import WeakKeyDictionary

from celery import shared_task
from kombu.exceptions import OperationalError

from newsletter import heartbeats
from newsletter.core.extensions import commit, db
from newsletter.inquiries import intake, jobs, waitlist
from newsletter.mail import outgoing
from newsletter.publishing import feeds, series
from newsletter.readers import digests, preferences, subscriptions
from newsletter.sending import dispatcher, engine, ledger

log = logging.getLogger(__name__)


@shared_task
def send_outgoing_mail(mail_id: int) -> str:
    return outgoing.deliver(mail_id)


@shared_task
def sweep_outgoing_mail() -> dict[str, int]:
    """Apply the signups, compose the inquiries' mail and send the mail whose hand-off was lost
    (Redis down, a worker killed)."""
    for request_id in subscriptions.signups_waiting(older_than=HAND_OFF_GRACE):
        apply_signup(request_id)
    for inquiry_id in intake.waiting_for_mail(older_than=HAND_OFF_GRACE):
        queue_inquiry_mails(inquiry_id)
    return outgoing.deliver_due()


# The sweeper leaves what a form stored this long to its own hand-off before doing the work itself.
HAND_OFF_GRACE = timedelta(seconds=20)


@shared_task
def apply_signup(request_id: int) -> int:
    """A signup the form stored (subscriptions.request_signup): the reader's state changes here."""
    return commit_and_send(lambda: subscriptions.process_signup(request_id))


@shared_task
def queue_inquiry_mails(inquiry_id: int) -> int:
    """An inquiry the contact form stored (intake.submit): its forward and acknowledgement are composed here,
    and the forward sent at once: this task is on the practice queue already, and a second trip through
    it behind a bot's flood of inquiries would double the forward's wait."""
    mail_ids = commit(lambda: intake.queue_mails(inquiry_id))
    order = outgoing.hand_off_order(mail_ids)
    for mail_id, queue in order:
        if queue == outgoing.PRACTICE:
            outgoing.deliver(mail_id)
    hand_off_mail((mail_id, queue) for mail_id, queue in order if queue != outgoing.PRACTICE)
    return len(mail_ids)


# A hand-off gives up at once when the broker does not answer (the web's connections fail fast:
# config.HAND_OFF_FAIL_FAST), and a failed one makes this process skip the broker for
# BROKER_OUTAGE_PAUSE seconds (a circuit breaker): a web worker never waits on a broker that is down,
# and the sweepers send what was skipped.
BROKER_OUTAGE_PAUSE = 10.0
_broker_down_until: WeakKeyDictionary = WeakKeyDictionary()  # per Celery app: until when to skip its broker


def enqueue(task, *args, queue: str | None = None) -> bool:
    """Hand a task to the broker (to `queue`, else the task's route); if the broker is down, say so and
    let the sweeper catch up.

    Only call this after the database commit that made the work durable.
    """
    if time.monotonic() < _broker_down_until.get(task.app, 0.0):
        return False
    try:
        task.apply_async(args=args, retry=False, queue=queue)  # over the app's pooled connection
        return True
    except (OperationalError, OSError) as exc:
        _broker_down_until[task.app] = time.monotonic() + BROKER_OUTAGE_PAUSE
        log.warning("broker unavailable for %ss, %s(%s) left to the sweeper: %s",
                    BROKER_OUTAGE_PAUSE, task.name, args, exc)
        return False


def enqueue_mail(mail_ids: Iterable[int]) -> None:
    """Hand committed mail to the workers: the practice's own on the "practice" queue, first."""
    hand_off_mail(outgoing.hand_off_order(list(mail_ids)))


def hand_off_mail(order: Iterable[tuple[int, str]]) -> None:
    """Hand (mail id, queue) pairs from outgoing.hand_off_order to the broker; needs no app context."""
    for mail_id, queue in order:
        if not enqueue(send_outgoing_mail, mail_id, queue=queue):
            break  # the broker is down: the sweeper sends this one and the rest


def commit_and_send(queue_mail: Callable[[], list[int]]) -> int:
    """Run a service call that queues mail, commit, then hand the mail to the workers; how many it queued."""
    mail_ids = commit(queue_mail)
    enqueue_mail(mail_ids)
    return len(mail_ids)


@shared_task
def heartbeat() -> None:
    """Beat, every minute: beat is alive (flask doctor and the admin banner read it)."""
    heartbeats.record(heartbeats.BEAT)
    heartbeats.forget_gone_workers()
    db.session.commit()


@shared_task
def send_batch(issue_id: int) -> dict:
    """One batch of an issue (newsletter/sending/): bulk work, on the "bulk" queue."""
    return engine.send_batch(issue_id).as_dict()


def commit_and_hand_out(work: Callable[[], Iterable[int]]) -> Iterable[int]:
    """Run a sending service call that returns issue ids, commit, then hand out each issue's batches."""
    issue_ids = commit(work)
    for issue_id in issue_ids:
        enqueue_batches(issue_id)
    return issue_ids


def write_ledger(issue_id: int) -> None:
    """Write the rest of a dispatched issue's ledger, step by step, each step's batches handed out as it commits."""
    while True:
        try:
            step = commit(lambda: dispatcher.write_ledger_step(issue_id))
        except dispatcher.LedgerStepTaken:
            db.session.rollback()  # another writer goes on (or the issue was canceled)
            return
        if step is None:
            return
        hand_out(issue_id, math.ceil(step.added / ledger.batch_size()))
        if step.finished:
            return


def dispatch_and_write_ledgers() -> list[int]:
    """Beat's dispatch: start what is due (and take over a stopped ledger writer), hand out the first batches,
    then write the rest of each ledger while those go."""
    issue_ids = commit_and_hand_out(dispatcher.dispatch_due)
    for issue_id in issue_ids:
        write_ledger(issue_id)
    return issue_ids


def enqueue_batches(issue_id: int) -> int:
    """One send_batch task per batch of the issue's claimable deliveries."""
    return hand_out(issue_id, ledger.batches_needed(issue_id))


def hand_out(issue_id: int, count: int) -> int:
    """`count` send_batch tasks for the issue; how many the broker took (the sweeper covers an outage)."""
    for number in range(count):
        if not enqueue(send_batch, issue_id):
            return number
    return count


def beat_jobs(run: Callable[[Callable[[], Any]], Any], services: dict[str, Callable[[], Any]]) -> list:
    """Beat's tasks newsletter.tasks.NAME (worker/celery.py schedules them), one per service, in order:
    each is `run(service)`, which commits the service's change and hands out what it queued."""
    return [_beat_job(name, run, service) for name, service in services.items()]


def _beat_job(name: str, run: Callable[[Callable[[], Any]], Any], service: Callable[[], Any]):
    def job():
        return run(service)
    job.__name__ = job.__qualname__ = name
    job.__doc__ = f"Beat: {run.__name__}({service.__module__}.{service.__name__})."
    return shared_task(name=f"{__name__}.{name}")(job)


# Beat's jobs that queue mail for the workers (their counts are what they queued).
send_inquiry_digest, nudge_inquiries_due, check_in_with_waitlist, end_breaks, send_monthly_digests = beat_jobs(
    commit_and_send, {
    "send_inquiry_digest": jobs.queue_digest,  # daily: inquiries still new after INQUIRY_DIGEST_AFTER_HOURS
    "nudge_inquiries_due": jobs.queue_nudges,  # inquiries reaching their reply-by day unanswered, once each
    "check_in_with_waitlist": waitlist.check_in,  # daily: still want a place? Let go those who never answered
    "end_breaks": preferences.end_breaks,  # readers whose break is over get mail again, and a note saying so
    "send_monthly_digests": digests.queue_due,  # the 1st, from SERIES_SEND_HOUR: each digest reader's last month
})
# Beat's jobs that start sending: each hands out the batches of the issues it returns.
dispatch_due_issues = shared_task(name=f"{__name__}.dispatch_due_issues")(dispatch_and_write_ledgers)
send_series_steps, sweep_deliveries = beat_jobs(commit_and_hand_out, {
    "send_series_steps": series.queue_due,  # welcome series steps that came due go into the ledger
    "sweep_deliveries": ledger.sweep,  # requeue deliveries a dead worker held and batches a lost queue dropped
})
# Beat's clean-ups: they erase and hand out nothing.
purge_old_inquiries, purge_unconfirmed_readers = beat_jobs(commit, {
    "purge_old_inquiries": jobs.purge_expired,  # daily: inquiry content older than INQUIRY_RETENTION_DAYS
    "purge_unconfirmed_readers": subscriptions.purge_unconfirmed,  # hourly: readers unconfirmed after a week
})


@shared_task
def poll_blog_feed() -> int:
    """Beat: new posts of her website's feed become draft issues (a failing feed is shown on the admin page)."""
    return len(commit(feeds.poll).drafts)
