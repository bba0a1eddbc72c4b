"""Readers' lifecycle: signup, double opt-in, unsubscribe, import, export and erasure, with a
consent record at each change of state.

No Flask request and no Celery here: views pass in where a request came from (`Origin`) and
commit; the functions return the ids of mail they queued so the caller can hand them to a worker.
Links in mail are built from BASE_URL, never from a request, so the CLI and workers can build them.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update

from newsletter.accounts import practice
from newsletter.core import tokens
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.mail import addresses, outgoing
from newsletter.mail.suppression import is_suppressed, suppress
from newsletter.models import (
    ConsentEvent,
    OutgoingMail,
    SignupRequest,
    Subscriber,
    utcnow,
)
from newsletter.models.readers import ACTIVE, PENDING, UNSUBSCRIBED
from newsletter.readers import lists, personalize

SIGNUP_WORDING = (
    "Yes, send me new articles from {practice} by email. I can unsubscribe at any time "
    "with one click."
)
CONFIRM_WORDING = "Yes, subscribe me (confirmation link sent to this address)"
UNSUBSCRIBE_WORDING = "Unsubscribe me (button on the unsubscribe page)"
ONE_CLICK_WORDING = "List-Unsubscribe=One-Click (the mail program's unsubscribe button)"

# How the therapist vouches for imported readers; the wording goes on each reader's record.

UNSUBSCRIBE_PURPOSE = "unsubscribe"  # the unsubscribe token's salt (publishing.issue_mail signs them too)
RESEND_AFTER = timedelta(hours=1)
RESENDS_PER_DAY = 3
NOTE_AFTER = timedelta(days=1)
PURGE_PENDING_AFTER = timedelta(days=7)
NAME_MAX = 100


class AlreadyConfirmed(Exception):
    """A confirm link used again: the reader is already active, nothing changes."""


@dataclass(frozen=True)
class Origin:
    """Where a change came from, for the consent record."""

    source: str = "site"  # site, embed, import, admin, email
    ip: str = ""
    user_agent: str = ""


def clean_name(raw: str | None) -> str:
    """A name on one line, without control characters, at most NAME_MAX characters."""
    printable = "".join(ch if ch.isprintable() else " " for ch in (raw or ""))
    return " ".join(printable.split())[:NAME_MAX]


def signup_wording() -> str:
    """The exact sentence the signup form shows and the consent record keeps."""
    return SIGNUP_WORDING.format(practice=practice.profile().practice_name)


def find(email: str) -> Subscriber | None:
    """The reader with this address, whatever its case."""
    return db.session.scalar(select(Subscriber).where(func.lower(Subscriber.email) == email.lower()))


def record(subscriber: Subscriber | None, action: str, origin: Origin, wording: str = "",
           at: datetime | None = None) -> None:
    """A consent record: what the reader (or the practice, for an import) did, from where, in which words."""
    db.session.add(
        ConsentEvent(
            subscriber=subscriber,
            action=action,
            source=origin.source[:20],
            wording=wording,
            ip=origin.ip[:64],
            user_agent=origin.user_agent[:400],
            created_at=at or utcnow(),
        )
    )


def _link(path: str) -> str:
    return f"{settings().base_url}{path}"


def confirm_url(subscriber: Subscriber) -> str:
    """The reader's current confirmation link (single-use, expires)."""
    return _link("/confirm/" + tokens.make("confirm", {"id": subscriber.id, "n": subscriber.confirm_nonce}))


def unsubscribe_url(subscriber: Subscriber) -> str:
    """The reader's permanent unsubscribe link (rotating `token_key` revokes it); no query."""
    return _link("/unsubscribe/" + tokens.make_permanent(UNSUBSCRIBE_PURPOSE, {"id": subscriber.id, "k": subscriber.token_key}))


def _may_send_confirmation(subscriber: Subscriber, now: datetime) -> bool:
    """At most one confirmation an hour and RESENDS_PER_DAY a day, whoever asks."""
    last = subscriber.confirmation_sent_at
    if last is not None and now - last < RESEND_AFTER:
        return False
    if last is None or now - last >= timedelta(days=1):
        subscriber.confirmations_sent_today = 0
    return subscriber.confirmations_sent_today < RESENDS_PER_DAY


def queue_confirmation(subscriber: Subscriber, now: datetime) -> int:
    # Earlier links stay valid until one of them is used: the nonce changes only once used.
    subscriber.confirm_nonce = subscriber.confirm_nonce or secrets.token_hex(16)
    subscriber.confirmation_sent_at = now
    subscriber.confirmations_sent_today += 1
    return outgoing.queue_template("confirm", **_confirmation(subscriber)).id


def _confirmation(subscriber: Subscriber) -> dict:
    return {"to": subscriber.email, "to_name": subscriber.name, "subscriber": subscriber,
            "confirm_url": confirm_url(subscriber), "hours": settings().confirm_token_max_age_hours}


def _queue_with_unsubscribe(prefix: str, subscriber: Subscriber) -> int:
    link = unsubscribe_url(subscriber)
    row = outgoing.queue_template(
        prefix,
        to=subscriber.email,
        to_name=subscriber.name,
        headers=personalize.list_headers(link),
        subscriber=subscriber,
        unsubscribe_url=link,
        preferences_url=personalize.preferences_url(subscriber),
        archive_url=_link("/issues"),
    )
    return row.id


def new_reader(address: str, name: str, status: str, source: str, now: datetime) -> Subscriber:
    subscriber = Subscriber(email=address, name=name, status=status, source=source[:20],
                            token_key=secrets.token_hex(16), created_at=now,
                            pending_since=now if status == PENDING else None,
                            confirmed_at=now if status == ACTIVE else None)
    db.session.add(subscriber)
    db.session.flush()
    return subscriber


def request_signup(email: str, name: str, origin: Origin, wording: str, list_slugs: list[str] | None = None,
                   over_limit: bool = False) -> int:
    """Store a signup from the form for a worker to apply (process_signup); returns its id.

    The form's answer must not tell whether an address is known or past its signup limit, and its
    time would: so the request does the same one INSERT whatever the address's state and whatever
    the limit says (`over_limit`), and everything that depends on them (a new reader, a confirmation,
    a note, nothing) happens in the worker.
    """
    row = SignupRequest(email=addresses.normalize(email), name=clean_name(name), source=origin.source[:20],
                        wording=wording, ip=origin.ip[:64], user_agent=origin.user_agent[:400], created_at=utcnow(),
                        lists=",".join(list_slugs or []), over_limit=over_limit)
    db.session.add(row)
    db.session.flush()
    return row.id


def process_signup(request_id: int) -> list[int]:
    """Apply a stored signup (subscribe) and forget it; returns the ids of the mail queued.
    Deleting the row is the claim: of two workers given the same one, only one applies it.
    A signup past its address's limit is only forgotten."""
    row = db.session.get(SignupRequest, request_id)
    if row is None:
        return []
    claimed = db.session.execute(delete(SignupRequest).where(SignupRequest.id == request_id)).rowcount
    if claimed != 1:
        db.session.rollback()
        return []
    if row.over_limit:
        return []
    origin = Origin(source=row.source, ip=row.ip, user_agent=row.user_agent)
    return subscribe(row.email, row.name, origin, row.wording, at=row.created_at,
                     list_slugs=[slug for slug in row.lists.split(",") if slug])


def signups_waiting(older_than: timedelta) -> list[int]:
    """Stored signups no worker has applied (the hand-off was lost): for the sweeper."""
    cutoff = utcnow() - older_than
    return list(db.session.scalars(
        select(SignupRequest.id).where(SignupRequest.created_at <= cutoff).order_by(SignupRequest.id).limit(500)))


def subscribe(email: str, name: str, origin: Origin, wording: str, at: datetime | None = None,
              list_slugs: list[str] | None = None) -> list[int]:
    """Sign an address up (pending until confirmed); returns the ids of the mail queued.

    New and unsubscribed addresses start double opt-in, pending ones get the confirmation again
    (within limits), active ones at most one "already subscribed" note a day, suppressed ones
    nothing. `at` is when the reader asked (the consent record's time), by default now. The reader
    joins `list_slugs` (the default list when none) once asked to confirm.
    """
    address = addresses.normalize(email)
    name = clean_name(name)
    if is_suppressed(address):
        return []
    now = utcnow()
    subscriber = find(address)
    if subscriber is None:
        subscriber = new_reader(address, name, PENDING, origin.source, now)
    elif subscriber.status == ACTIVE:
        last_note = subscriber.already_subscribed_note_at
        if last_note is not None and now - last_note < NOTE_AFTER:
            return []
        subscriber.already_subscribed_note_at = now
        return [_queue_with_unsubscribe("already_subscribed", subscriber)]
    elif subscriber.status == UNSUBSCRIBED:
        subscriber.status, subscriber.pending_since = PENDING, now
        subscriber.name = name or subscriber.name
    elif subscriber.status != PENDING:  # bounced or complained: never mailed again
        return []
    if not _may_send_confirmation(subscriber, now):
        return []
    record(subscriber, "subscribe", origin, wording, at=at)
    lists.join(subscriber, lists.known_or_default(list_slugs), at=now)
    return [queue_confirmation(subscriber, now)]


def reader_for_confirm(token: str) -> Subscriber:
    """The pending reader a confirm token names; BadToken if forged, expired or spent, AlreadyConfirmed if used."""
    max_age = settings().confirm_token_max_age_hours * 3600
    payload = tokens.read("confirm", token, max_age=max_age)
    subscriber = db.session.get(Subscriber, payload.get("id")) if isinstance(payload, dict) else None
    if subscriber is not None and subscriber.status == ACTIVE:
        raise AlreadyConfirmed()
    if (subscriber is None or subscriber.status != PENDING or not subscriber.confirm_nonce
            or not secrets.compare_digest(subscriber.confirm_nonce, str(payload.get("n")))):
        raise tokens.BadToken()
    return subscriber


def confirm(token: str, origin: Origin, welcome_mail: bool = True) -> tuple[Subscriber, list[int]]:
    """Activate the reader a confirm token names and queue the welcome mail (unless told not to)."""
    subscriber = reader_for_confirm(token)
    if is_suppressed(subscriber.email):
        raise tokens.BadToken()
    # A conditional update, so that of two clicks at once only one confirms (and one welcome goes out).
    # Only the reader can end this state (with the unsubscribe link), so a later return starts afresh.
    confirmed = db.session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber.id, Subscriber.status == PENDING,
               Subscriber.confirm_nonce == subscriber.confirm_nonce)
        .values(status=ACTIVE, confirm_nonce=None, pending_since=None, confirmed_at=utcnow(),
                confirmation_sent_at=None, confirmations_sent_today=0)
        .execution_options(synchronize_session=False)
    ).rowcount
    if confirmed != 1:
        raise AlreadyConfirmed()
    db.session.refresh(subscriber)
    record(subscriber, "confirm", origin, CONFIRM_WORDING)
    return subscriber, [queue_welcome(subscriber)] if welcome_mail else []


def queue_welcome(subscriber: Subscriber) -> int:
    """The welcome mail (when no welcome series step goes right after confirming)."""
    return _queue_with_unsubscribe("welcome", subscriber)


def reader_for_unsubscribe(token: str) -> Subscriber:
    """The reader an unsubscribe token names; BadToken if forged or revoked. Never expires."""
    payload = tokens.read(UNSUBSCRIBE_PURPOSE, token)
    subscriber = db.session.get(Subscriber, payload.get("id")) if isinstance(payload, dict) else None
    if subscriber is None or not secrets.compare_digest(subscriber.token_key, str(payload.get("k"))):
        raise tokens.BadToken()
    return subscriber


def unsubscribe(token: str, origin: Origin, wording: str = UNSUBSCRIBE_WORDING) -> Subscriber:
    """Stop all mail to the reader the token names; repeating it changes nothing."""
    return unsubscribe_reader(reader_for_unsubscribe(token), origin, wording)


def unsubscribe_reader(subscriber: Subscriber, origin: Origin, wording: str) -> Subscriber:
    """Stop all mail to this reader, with a consent record; repeating it changes nothing."""
    if subscriber.status in (ACTIVE, PENDING):
        subscriber.status = UNSUBSCRIBED
        subscriber.unsubscribed_at = utcnow()
        subscriber.confirm_nonce = None
        subscriber.pending_since = None
        record(subscriber, "unsubscribe", origin, wording)
    return subscriber


def resubscribe(token: str, origin: Origin) -> list[int]:
    """From the goodbye page: start double opt-in again for the reader the token names."""
    subscriber = reader_for_unsubscribe(token)
    return subscribe(subscriber.email, subscriber.name, origin, signup_wording())


def purge_unconfirmed(now: datetime | None = None) -> int:
    """Forget readers who never confirmed within a week; returns how many were removed.

    A former reader who asked to come back but did not confirm stays unsubscribed instead.
    """
    cutoff = (now or utcnow()) - PURGE_PENDING_AFTER
    stale = (Subscriber.status == PENDING, Subscriber.pending_since < cutoff)
    returning = db.session.scalars(select(Subscriber).where(*stale, Subscriber.confirmed_at.is_not(None))).all()
    for subscriber in returning:
        subscriber.status, subscriber.confirm_nonce, subscriber.pending_since = UNSUBSCRIBED, None, None
    removed = db.session.execute(
        delete(Subscriber).where(*stale, Subscriber.confirmed_at.is_(None)).execution_options(synchronize_session=False)
    ).rowcount
    return removed


def reader_data(subscriber: Subscriber) -> dict:
    """Everything kept about one reader, for a data-access request (times in UTC, ISO 8601)."""
    def when(value: datetime | None) -> str | None:
        return value.isoformat() + "Z" if value else None

    return {
        "email": subscriber.email,
        "name": subscriber.name,
        "status": subscriber.status,
        "source": subscriber.source,
        "created_at": when(subscriber.created_at),
        "confirmed_at": when(subscriber.confirmed_at),
        "unsubscribed_at": when(subscriber.unsubscribed_at),
        "consent_events": [
            {"action": event.action, "source": event.source, "wording": event.wording, "ip": event.ip,
             "user_agent": event.user_agent, "at": when(event.created_at)}
            for event in subscriber.consent_events
        ],
    }


def erase(subscriber: Subscriber, origin: Origin) -> None:
    """Remove the reader and their mail; only a hash stays, so the address is never mailed again.

    The erasure itself is recorded without any of the reader's data. The caller commits.
    """
    suppress(subscriber.email, "erased")
    db.session.execute(delete(OutgoingMail).where(OutgoingMail.addressed_to(subscriber.email)))
    db.session.delete(subscriber)
    record(None, "erase", origin, "Personal data erased at the reader's request; address kept only as a hash.")


def search(query: str = "", status: str = "", after: int | None = None, before: int | None = None,
           per_page: int = 50) -> tuple[list[Subscriber], bool, bool]:
    """One page of readers, newest first, paged by id (keyset): (rows, has_newer, has_older).

    `after` pages towards older readers (ids below it), `before` towards newer ones.
    """
    conditions = []
    if status:
        conditions.append(Subscriber.status == status)
    if query:
        pattern = "%" + query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        conditions.append(or_(func.lower(Subscriber.email).like(pattern, escape="\\"),
                              func.lower(Subscriber.name).like(pattern, escape="\\")))
    statement = select(Subscriber).where(*conditions)
    if before is not None:
        rows = list(db.session.scalars(statement.where(Subscriber.id > before)
                                       .order_by(Subscriber.id.asc()).limit(per_page + 1)))
        has_newer = len(rows) > per_page
        rows = rows[:per_page][::-1]
        has_older = True
    else:
        if after is not None:
            statement = statement.where(Subscriber.id < after)
        rows = list(db.session.scalars(statement.order_by(Subscriber.id.desc()).limit(per_page + 1)))
        has_older = len(rows) > per_page
        rows = rows[:per_page]
        has_newer = after is not None
    return rows, has_newer, has_older


def status_counts() -> dict[str, int]:
    """How many readers in each state (one indexed pass)."""
    return dict(db.session.execute(select(Subscriber.status, func.count()).group_by(Subscriber.status)).all())

