"""Transactional mail through the database: a message is stored in the same transaction as the
change that caused it, then sent by a worker at once or, if the queue lost it, by the sweeper.

This is what makes "a signup or inquiry answered with success gets its mail" true while Redis
or the SMTP server is down.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from email import policy
from typing import Mapping

from flask import current_app
from sqlalchemy import or_, select, update

from newsletter import crypto, mail, transports
from newsletter.extensions import db
from newsletter.models import OutgoingMail, utcnow
from newsletter.models.outbox import MAIL_FAILED, MAIL_PENDING, MAIL_SENT
from newsletter.suppression import is_suppressed, suppress

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 40  # with the backoff below: about a day and a half of trying


def queue(
    *,
    kind: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    to_name: str = "",
    reply_to: mail.Mailbox | None = None,
    headers: Mapping[str, str] | None = None,
) -> OutgoingMail:
    """Build the message and add it to the session; the caller commits with its own change."""
    message = mail.build_message(
        to=mail.Mailbox(to, to_name),
        subject=subject,
        text=text,
        html=html,
        reply_to=reply_to,
        headers=headers,
    )
    row = OutgoingMail(
        kind=kind,
        recipient=to,
        message=crypto.encrypt(message.as_bytes(policy=policy.SMTP)),
        next_attempt_at=utcnow(),
    )
    db.session.add(row)
    db.session.flush()
    return row


def queue_template(prefix: str, *, to: str, to_name: str = "", reply_to: mail.Mailbox | None = None,
                   headers: Mapping[str, str] | None = None, **context) -> OutgoingMail:
    """Render emails/PREFIX.* with `context` and queue the result."""
    rendered = mail.render(prefix, **context)
    return queue(kind=prefix, to=to, to_name=to_name, subject=rendered.subject, text=rendered.text,
                 html=rendered.html, reply_to=reply_to, headers=headers)


def _claim(mail_id: int) -> OutgoingMail | None:
    """Take a lease on a due message; None when another worker has it or it is done."""
    now = utcnow()
    claimed = db.session.execute(
        update(OutgoingMail)
        .where(
            OutgoingMail.id == mail_id,
            OutgoingMail.status == MAIL_PENDING,
            OutgoingMail.next_attempt_at <= now,
            or_(OutgoingMail.lease_until.is_(None), OutgoingMail.lease_until < now),
        )
        .values(lease_until=now + LEASE, attempts=OutgoingMail.attempts + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return db.session.get(OutgoingMail, mail_id) if claimed == 1 else None


def _backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(30 * 2 ** max(attempts - 1, 0), 3600))


def deliver(mail_id: int) -> str:
    """Send one stored message if it is due; returns what became of it."""
    row = _claim(mail_id)
    if row is None:
        return "skipped"
    if is_suppressed(row.recipient):
        row.status, row.last_error, row.lease_until = MAIL_FAILED, "suppressed address", None
        db.session.commit()
        return "suppressed"
    try:
        message = mail.dkim_sign(crypto.decrypt(row.message), current_app.config)
        with transports.open_transport() as conn:
            conn.send(mail.envelope_sender(), row.recipient, message)
    except transports.PermanentFailure as exc:
        row.status, row.last_error, row.lease_until = MAIL_FAILED, str(exc)[:500], None
        if row.recipient.lower() != mail.practice_inbox().address.lower():
            suppress(row.recipient, "bounced", f"SMTP {exc.code}")
        db.session.commit()
        log.warning("outgoing mail %s refused for good (SMTP %s)", mail_id, exc.code)
        return "failed"
    except transports.TemporaryFailure as exc:
        _defer(row, str(exc))
        log.info("outgoing mail %s deferred (SMTP %s)", mail_id, exc.code)
        return "deferred"
    except Exception as exc:  # noqa: BLE001 - a bad key or DKIM file: say why, retry a while, let the sweep go on
        _defer(row, f"cannot send: {type(exc).__name__}")
        log.exception("outgoing mail %s could not be sent", mail_id)
        return "deferred"
    row.status, row.sent_at, row.lease_until, row.last_error = MAIL_SENT, utcnow(), None, ""
    db.session.commit()
    return "sent"


def _defer(row: OutgoingMail, reason: str) -> None:
    """Try again after a backoff; give up (status failed, visible in the admin) after MAX_ATTEMPTS."""
    row.last_error, row.lease_until = reason[:500], None
    if row.attempts >= MAX_ATTEMPTS:
        row.status = MAIL_FAILED
    else:
        row.next_attempt_at = utcnow() + _backoff(row.attempts)
    db.session.commit()


def due_ids(limit: int = 200) -> list[int]:
    """Messages that should have gone and are not being sent right now."""
    now = utcnow()
    return list(
        db.session.scalars(
            select(OutgoingMail.id)
            .where(
                OutgoingMail.status == MAIL_PENDING,
                OutgoingMail.next_attempt_at <= now,
                or_(OutgoingMail.lease_until.is_(None), OutgoingMail.lease_until < now),
            )
            .order_by(OutgoingMail.id)
            .limit(limit)
        )
    )


def deliver_due() -> dict[str, int]:
    """The sweeper: send every due message; returns counts by outcome."""
    outcomes: dict[str, int] = {}
    for mail_id in due_ids():
        outcome = deliver(mail_id)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes
