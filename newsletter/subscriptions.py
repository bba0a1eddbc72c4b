"""Readers' lifecycle: signup, double opt-in, unsubscribe, with a consent record at each step.

No Flask request and no Celery here: views pass in where a request came from (`Origin`) and
commit; the functions return the ids of mail they queued so the caller can hand them to a worker.
"""
from __future__ import annotations

import secrets
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from flask import current_app, url_for
from sqlalchemy import select

from newsletter import outbox, tokens
from newsletter.extensions import db
from newsletter.models import ConsentEvent, Subscriber, utcnow
from newsletter.models.readers import ACTIVE, PENDING, UNSUBSCRIBED

SIGNUP_WORDING = (
    "Yes, send me new articles from {practice} by email. I can unsubscribe at any time "
    "with one click."
)


class InvalidEmail(ValueError):
    """The address cannot receive mail; the message says why, in plain words."""


@dataclass(frozen=True)
class Origin:
    """Where a change came from, for the consent record."""

    source: str = "site"  # site, embed, import, admin, email
    ip: str = ""
    user_agent: str = ""


def normalize_email(raw: str) -> str:
    """A syntactically valid, normalized address (no DNS lookup), or InvalidEmail."""
    raw = (raw or "").strip()
    if not raw:
        raise InvalidEmail("Please enter your email address.")
    if len(raw) > 254:
        raise InvalidEmail("That email address is too long.")
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidEmail("Please enter a valid email address, like name@example.com.") from exc
    local, _, domain = result.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"


def _record(subscriber: Subscriber, action: str, origin: Origin, wording: str = "") -> None:
    db.session.add(
        ConsentEvent(
            subscriber=subscriber,
            action=action,
            source=origin.source,
            wording=wording,
            ip=origin.ip[:64],
            user_agent=origin.user_agent[:400],
        )
    )


def confirm_url(subscriber: Subscriber) -> str:
    token = tokens.make("confirm", {"id": subscriber.id, "n": subscriber.confirm_nonce})
    return current_app.config["BASE_URL"] + url_for("public.confirm", token=token)


def unsubscribe_url(subscriber: Subscriber) -> str:
    """The reader's permanent unsubscribe link (rotating `token_key` revokes it)."""
    token = tokens.make("unsubscribe", {"id": subscriber.id, "k": subscriber.token_key})
    return current_app.config["BASE_URL"] + url_for("public.unsubscribe", token=token)


def _queue_confirmation(subscriber: Subscriber) -> int:
    subscriber.confirm_nonce = secrets.token_hex(16)
    subscriber.confirmation_sent_at = utcnow()
    subscriber.confirmations_sent_today += 1
    row = outbox.queue_template(
        "confirm",
        to=subscriber.email,
        to_name=subscriber.name,
        subscriber=subscriber,
        confirm_url=confirm_url(subscriber),
        hours=current_app.config["CONFIRM_TOKEN_MAX_AGE_HOURS"],
    )
    return row.id


def subscribe(email: str, name: str, origin: Origin, wording: str) -> list[int]:
    """Sign an address up (pending until confirmed); returns the ids of the mail queued."""
    address = normalize_email(email)
    subscriber = db.session.scalar(select(Subscriber).where(Subscriber.email == address))
    if subscriber is None:
        subscriber = Subscriber(email=address, name=name, status=PENDING, source=origin.source,
                                token_key=secrets.token_hex(16))
        db.session.add(subscriber)
        db.session.flush()
        _record(subscriber, "subscribe", origin, wording)
        return [_queue_confirmation(subscriber)]
    return []


def confirm(token: str, origin: Origin) -> Subscriber:
    """Activate the reader a confirm token names; BadToken if forged, expired or already used."""
    max_age = current_app.config["CONFIRM_TOKEN_MAX_AGE_HOURS"] * 3600
    payload = tokens.read("confirm", token, max_age=max_age)
    subscriber = db.session.get(Subscriber, payload.get("id")) if isinstance(payload, dict) else None
    if subscriber is None or not subscriber.confirm_nonce or subscriber.confirm_nonce != payload.get("n"):
        raise tokens.BadToken()
    subscriber.status = ACTIVE
    subscriber.confirm_nonce = None
    subscriber.confirmed_at = utcnow()
    _record(subscriber, "confirm", origin)
    return subscriber


def reader_for_unsubscribe(token: str) -> Subscriber:
    """The reader an unsubscribe token names; BadToken if forged or revoked. Never expires."""
    payload = tokens.read("unsubscribe", token)
    subscriber = db.session.get(Subscriber, payload.get("id")) if isinstance(payload, dict) else None
    if subscriber is None or subscriber.token_key != payload.get("k"):
        raise tokens.BadToken()
    return subscriber


def unsubscribe(token: str, origin: Origin) -> Subscriber:
    """Stop all mail to the reader the token names; repeating it changes nothing."""
    subscriber = reader_for_unsubscribe(token)
    if subscriber.status in (ACTIVE, PENDING):
        subscriber.status = UNSUBSCRIBED
        subscriber.unsubscribed_at = utcnow()
        subscriber.confirm_nonce = None
        _record(subscriber, "unsubscribe", origin)
    return subscriber
