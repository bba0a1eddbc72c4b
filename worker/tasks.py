"""Thin task wrappers around the domain services. Tasks receive ids, never ORM objects."""
from __future__ import annotations

import logging
from typing import Iterable

from celery import shared_task
from kombu.exceptions import OperationalError

from newsletter import inquiries, outbox, subscriptions
from newsletter.extensions import db

log = logging.getLogger(__name__)


@shared_task
def send_outgoing_mail(mail_id: int) -> str:
    return outbox.deliver(mail_id)


@shared_task
def sweep_outgoing_mail() -> dict[str, int]:
    return outbox.deliver_due()


def enqueue(task, *args) -> bool:
    """Hand a task to the broker; if the broker is down, say so and let the sweeper catch up.

    Only call this after the database commit that made the work durable.
    """
    try:
        task.apply_async(args=args, retry=False)
        return True
    except (OperationalError, OSError) as exc:
        log.warning("broker unavailable, %s(%s) left to the sweeper: %s", task.name, args, exc)
        return False


def enqueue_mail(mail_ids: Iterable[int]) -> None:
    for mail_id in mail_ids:
        enqueue(send_outgoing_mail, mail_id)


@shared_task
def send_inquiry_digest() -> int:
    """Daily: remind the practice of inquiries still new after INQUIRY_DIGEST_AFTER_HOURS."""
    mail_ids = inquiries.queue_digest()
    db.session.commit()
    enqueue_mail(mail_ids)
    return len(mail_ids)


@shared_task
def purge_old_inquiries() -> int:
    """Daily: erase inquiry content older than INQUIRY_RETENTION_DAYS (counts are kept)."""
    purged = inquiries.purge_expired()
    db.session.commit()
    return purged


@shared_task
def purge_unconfirmed_readers() -> int:
    """Hourly: forget readers who did not confirm within a week."""
    removed = subscriptions.purge_unconfirmed()
    db.session.commit()
    return removed
