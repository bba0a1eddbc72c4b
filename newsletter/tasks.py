"""Thin task wrappers around the domain services. Tasks receive ids, never ORM objects."""
from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Iterable
from weakref import WeakKeyDictionary

from celery import shared_task
from kombu.exceptions import OperationalError

from newsletter.core.extensions import commit, db
from newsletter.inquiries import intake, jobs, waitlist
from newsletter.mail import outbox
from newsletter.readers import subscriptions
from newsletter.sending import engine

log = logging.getLogger(__name__)


@shared_task
def send_outgoing_mail(mail_id: int) -> str:
    return outbox.deliver(mail_id)


@shared_task
def sweep_outgoing_mail() -> dict[str, int]:
    """Apply the signups, compose the inquiries' mail and send the mail whose hand-off was lost
    (Redis down, a worker killed)."""
    for request_id in subscriptions.signups_waiting(older_than=HAND_OFF_GRACE):
        apply_signup(request_id)
    for inquiry_id in intake.waiting_for_mail(older_than=HAND_OFF_GRACE):
        queue_inquiry_mails(inquiry_id)
    return outbox.deliver_due()


# The sweeper leaves what a form stored this long to its own hand-off before doing the work itself.
HAND_OFF_GRACE = timedelta(seconds=20)


@shared_task
def apply_signup(request_id: int) -> int:
    """A signup the form stored (subscriptions.request_signup): the reader's state changes here."""
    mail_ids = commit(lambda: subscriptions.process_signup(request_id))
    enqueue_mail(mail_ids)
    return len(mail_ids)


@shared_task
def queue_inquiry_mails(inquiry_id: int) -> int:
    """An inquiry the contact form stored (intake.submit): its forward and acknowledgement are composed here."""
    mail_ids = commit(lambda: intake.queue_mails(inquiry_id))
    enqueue_mail(mail_ids)
    return len(mail_ids)


# A hand-off gives up at once when the broker does not answer (the web's connections fail fast:
# config.HAND_OFF_FAIL_FAST), and a failed one makes this process skip the broker for
# BROKER_OUTAGE_PAUSE seconds (a circuit breaker): a web worker never waits on a broker that is down,
# and the sweepers send what was skipped.
BROKER_OUTAGE_PAUSE = 10.0
_broker_down_until: WeakKeyDictionary = WeakKeyDictionary()  # per Celery app: until when to skip its broker


def enqueue(task, *args) -> bool:
    """Hand a task to the broker; if the broker is down, say so and let the sweeper catch up.

    Only call this after the database commit that made the work durable.
    """
    if time.monotonic() < _broker_down_until.get(task.app, 0.0):
        return False
    try:
        task.apply_async(args=args, retry=False)  # over the app's pooled connection
        return True
    except (OperationalError, OSError) as exc:
        _broker_down_until[task.app] = time.monotonic() + BROKER_OUTAGE_PAUSE
        log.warning("broker unavailable for %ss, %s(%s) left to the sweeper: %s",
                    BROKER_OUTAGE_PAUSE, task.name, args, exc)
        return False


def enqueue_mail(mail_ids: Iterable[int]) -> None:
    for mail_id in mail_ids:
        if not enqueue(send_outgoing_mail, mail_id):
            break  # the broker is down: the sweeper sends this one and the rest


@shared_task
def send_inquiry_digest() -> int:
    """Daily: remind the practice of inquiries still new after INQUIRY_DIGEST_AFTER_HOURS."""
    mail_ids = jobs.queue_digest()
    db.session.commit()
    enqueue_mail(mail_ids)
    return len(mail_ids)


@shared_task
def purge_old_inquiries() -> int:
    """Daily: erase inquiry content older than INQUIRY_RETENTION_DAYS (counts are kept)."""
    purged = jobs.purge_expired()
    db.session.commit()
    return purged


@shared_task
def purge_unconfirmed_readers() -> int:
    """Hourly: forget readers who did not confirm within a week."""
    removed = subscriptions.purge_unconfirmed()
    db.session.commit()
    return removed


# -- sending an issue (newsletter/sending.py): bulk work, on the "bulk" queue

@shared_task
def dispatch_due_issues() -> list[int]:
    """Beat: start every due scheduled issue and hand its batches to the workers."""
    started = engine.dispatch_due()
    for issue_id in started:
        enqueue_batches(issue_id)
    return started


@shared_task
def send_batch(issue_id: int) -> dict:
    return engine.send_batch(issue_id).as_dict()


@shared_task
def sweep_deliveries() -> dict[int, int]:
    """Beat: requeue deliveries a dead worker held and batches a lost queue dropped."""
    needed = engine.sweep()
    for issue_id in needed:
        enqueue_batches(issue_id)
    return needed


def enqueue_batches(issue_id: int) -> int:
    """One send_batch task per batch of the issue's claimable deliveries; the sweeper covers a broker outage."""
    count = engine.batches_needed(issue_id)
    for number in range(count):
        if not enqueue(send_batch, issue_id):
            return number
    return count


@shared_task
def nudge_inquiries_due() -> int:
    """Remind the practice of inquiries reaching their reply-by day unanswered (once per inquiry)."""
    mail_ids = jobs.queue_nudges()
    db.session.commit()
    enqueue_mail(mail_ids)
    return len(mail_ids)


@shared_task
def check_in_with_waitlist() -> int:
    """Daily: ask waitlisted people due a check-in whether they still want a place; let go those who never answered."""
    mail_ids = waitlist.check_in()
    db.session.commit()
    enqueue_mail(mail_ids)
    return len(mail_ids)
