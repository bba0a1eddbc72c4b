"""Transactional mail through the database: a message is stored in the same transaction as the
change that caused it, then sent by a worker at once or, if the queue lost it, by the sweeper.

This is what makes "a signup or inquiry answered with success gets its mail" true while Redis
or the SMTP server is down.
"""
from __future__ import annotations

import base64
import json
import logging
from datetime import timedelta
from email import policy
from typing import Mapping

from sqlalchemy import case, func, or_, select, update

from newsletter.core import crypto
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.mail import compose, transports, verp
from newsletter.mail.suppression import is_suppressed, suppress
from newsletter.models import OutgoingMail, utcnow
from newsletter.models.outbox import MAIL_FAILED, MAIL_PENDING, MAIL_SENT

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
MAX_ATTEMPTS = 40  # with the backoff below: about a day and a half of trying


# The queue each kind of message takes (newsletter/core/config.py: a worker takes "practice" first). The
# practice's own conversation never waits behind an issue's batches or behind acknowledgements to people
# who only filled a form in: what the practice reads (a forward, a digest, a lockout notice) and what it
# wrote or arranged (a reply, a booking invite, a waitlist place). Every kind of mail is listed here
# (tests/test_practice_first.py enumerates templates/emails); an unlisted one takes "mail".
PRACTICE, OTHERS = "practice", "mail"
LANES = {
    "inquiry_forward": PRACTICE, "inquiry_notice": PRACTICE, "inquiry_digest": PRACTICE,
    "inquiry_nudge": PRACTICE, "admin_lockout": PRACTICE, "admin_invitation": PRACTICE, "inquiry_reply": PRACTICE,
    "consultation_invite": PRACTICE, "waitlist_invite": PRACTICE, "issue_test": PRACTICE, "inquiry_handoff": PRACTICE,
    "inquiry_ack": OTHERS, "confirm": OTHERS, "already_subscribed": OTHERS, "welcome": OTHERS,
    "address_change": OTHERS, "break_over": OTHERS, "monthly_digest": OTHERS, "waitlist_check": OTHERS, "waitlist_goodbye": OTHERS,
}

# Acknowledgements to strangers are paced: a bot filling the form a thousand times a minute gets
# ACKS_PER_MINUTE of them sent each minute, the rest scheduled into the minutes after (next_attempt_at)
# and sent by the sweeper then. None is lost: each is a row until it is sent.
PACED_KINDS = frozenset({"inquiry_ack"})
ACKS_PER_MINUTE = 30
PACE_WINDOW = timedelta(minutes=1)


def _first_attempt(kind: str):
    """When a new message may first be sent: now, or for a paced kind in a surge, a later minute."""
    now = utcnow()
    if kind not in PACED_KINDS:
        return now
    scheduled = db.session.scalar(
        select(func.count()).select_from(OutgoingMail)
        .where(OutgoingMail.kind.in_(PACED_KINDS), OutgoingMail.next_attempt_at > now - PACE_WINDOW)
    )
    return now + PACE_WINDOW * (scheduled // ACKS_PER_MINUTE)


def _lane_first():
    """An ORDER BY term: the practice's own mail before the rest."""
    return case((OutgoingMail.kind.in_([kind for kind, lane in LANES.items() if lane == PRACTICE]), 0), else_=1)


def hand_off_order(mail_ids: list[int]) -> list[tuple[int, str]]:
    """The committed messages a worker should send now, as (id, queue), the practice's own first;
    a paced message scheduled for later is left to the sweeper."""
    if not mail_ids:
        return []
    rows = db.session.execute(
        select(OutgoingMail.id, OutgoingMail.kind)
        .where(OutgoingMail.id.in_(mail_ids), OutgoingMail.next_attempt_at <= utcnow())
        .order_by(_lane_first(), OutgoingMail.id)
    )
    return [(mail_id, LANES.get(kind, OTHERS)) for mail_id, kind in rows]


# A stored message is either finished (its RFC 5322 bytes) or a draft: the parts, to be built (CSS
# inlined, headers written) by the worker the first time it is sent, then stored finished so every retry
# sends the same Message-ID. Building takes tens of milliseconds; a signup or inquiry must not wait for it.
DRAFT_MARK = b"\x00draft\n"  # a finished message never starts with a NUL byte


def queue(
    *,
    kind: str,
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    to_name: str = "",
    from_: compose.Mailbox | None = None,
    reply_to: compose.Mailbox | None = None,
    headers: Mapping[str, str] | None = None,
    message_id: str | None = None,
    calendar: bytes | None = None,
    inline_html: bool = False,
) -> OutgoingMail:
    """Add the message to the session as a draft; the caller commits with its own change.

    `message_id` when the caller must know it (to thread later replies under it); `calendar` an
    iCalendar object sent as the message's text/calendar alternative (iMIP); `inline_html` inlines the
    HTML's CSS when the message is built, in the worker.
    """
    row = OutgoingMail(
        kind=kind,
        recipient=to,
        message=_draft(to=compose.Mailbox(to, to_name), subject=subject, text=text, html=html, from_=from_,
                       reply_to=reply_to, headers=headers, message_id=message_id, calendar=calendar,
                       inline_html=inline_html),
        next_attempt_at=_first_attempt(kind),
    )
    db.session.add(row)
    db.session.flush()
    return row


def _mailbox(value: list[str] | None) -> compose.Mailbox | None:
    return compose.Mailbox(*value) if value else None


def _draft(*, to: compose.Mailbox, subject: str, text: str, html: str | None, from_: compose.Mailbox | None = None,
           reply_to: compose.Mailbox | None = None, headers: Mapping[str, str] | None = None,
           message_id: str | None = None, calendar: bytes | None = None,
           inline_html: bool = False) -> bytes:
    """A message's parts as the outbox keeps a draft, encrypted. The subject, headers and Message-ID
    are checked here (addresses are Mailboxes already), so unsafe input fails in the caller's transaction."""
    compose.text_header("Subject", subject)
    for name, value in {**(headers or {}), **({"Message-ID": message_id} if message_id else {})}.items():
        compose.raw_header(compose.check_header(name), value)
    draft = {
        "to": [to.address, to.name],
        "from": [from_.address, from_.name] if from_ else None,
        "reply_to": [reply_to.address, reply_to.name] if reply_to else None,
        "subject": subject, "text": text, "html": html, "inline_html": inline_html,
        "headers": dict(headers or {}), "message_id": message_id,
        "calendar": base64.b64encode(calendar).decode("ascii") if calendar is not None else None,
    }
    return crypto.encrypt(DRAFT_MARK + json.dumps(draft).encode("utf-8"))


def queue_template(prefix: str, *, to: str, to_name: str = "", from_: compose.Mailbox | None = None,
                   reply_to: compose.Mailbox | None = None, headers: Mapping[str, str] | None = None,
                   message_id: str | None = None, calendar: bytes | None = None,
                   **context) -> OutgoingMail:
    """Render emails/PREFIX.* with `context` and queue the result; its CSS is inlined by the worker."""
    rendered = compose.render(prefix, inline=False, **context)
    return queue(kind=prefix, to=to, to_name=to_name, subject=rendered.subject, text=rendered.text,
                 html=rendered.html, from_=from_, reply_to=reply_to, headers=headers, message_id=message_id,
                 calendar=calendar, inline_html=True)


def message_bytes(row: OutgoingMail) -> bytes:
    """The message as it is sent; a draft is built now and stored finished (the caller commits)."""
    stored = crypto.decrypt(row.message)
    if not stored.startswith(DRAFT_MARK):
        return stored
    draft = json.loads(stored[len(DRAFT_MARK):])
    html = draft["html"]
    message = compose.build_message(
        to=compose.Mailbox(*draft["to"]),
        subject=draft["subject"],
        text=draft["text"],
        html=compose.inline_css(html) if html is not None and draft["inline_html"] else html,
        from_=_mailbox(draft.get("from")),
        reply_to=_mailbox(draft["reply_to"]),
        message_id=draft.get("message_id"),
        headers=draft["headers"],
        calendar=_draft_calendar(draft),
    )
    finished = message.as_bytes(policy=policy.SMTP)
    row.message = crypto.encrypt(finished)
    return finished


def _draft_calendar(draft: dict) -> bytes | None:
    # Drafts queued before iMIP carried the invite as an "invite.ics" attachment: it becomes the calendar part.
    encoded = draft.get("calendar") or next((data for name, data in draft.get("attachments") or ()
                                             if name.endswith(".ics")), None)
    return base64.b64decode(encoded) if encoded else None


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
    """Send one stored message if it is due; returns what became of it.

    Commits each step itself, unlike the rest of the services: the lease, the finished message before the
    first attempt (a retry is then the same message) and the outcome right after the server's answer."""
    row = _claim(mail_id)
    if row is None:
        return "skipped"
    if is_suppressed(row.recipient):
        row.status, row.last_error, row.lease_until = MAIL_FAILED, "suppressed address", None
        db.session.commit()
        return "suppressed"
    try:
        finished = message_bytes(row)
        db.session.commit()  # stored finished before the first attempt: a retry is the same message
        message = compose.dkim_sign(finished, settings())
        with transports.open_transport() as conn:
            conn.send(verp.verp(compose.envelope_sender(), mail_id=row.id), row.recipient, message)
    except transports.PermanentFailure as exc:
        row.status, row.last_error, row.lease_until = MAIL_FAILED, str(exc)[:500], None
        if row.recipient.lower() != compose.practice_inbox().address.lower():
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
    """Messages that should have gone and are not being sent right now, the practice's own first."""
    now = utcnow()
    return list(
        db.session.scalars(
            select(OutgoingMail.id)
            .where(
                OutgoingMail.status == MAIL_PENDING,
                OutgoingMail.next_attempt_at <= now,
                or_(OutgoingMail.lease_until.is_(None), OutgoingMail.lease_until < now),
            )
            .order_by(_lane_first(), OutgoingMail.id)
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
