"""A reader's own choices, from the link in every issue and welcome mail: which newsletters, every issue
or a monthly digest, a break
of 1 to 3 months (mail resumes by itself, with a note), a new address (confirmed at that address), or
leaving everything. Each change is a consent record. The caller commits.
"""
from __future__ import annotations

import secrets
from datetime import UTC, date, datetime

from sqlalchemy import select

from newsletter.accounts import practice
from newsletter.core import tokens
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.mail import addresses, outgoing
from newsletter.mail.suppression import is_suppressed
from newsletter.models import NewsletterList, Subscriber, utcnow
from newsletter.models.readers import ACTIVE
from newsletter.readers import lists, personalize, subscriptions

BREAK_MONTHS = (1, 2, 3)
ADDRESS_PURPOSE = "address-change"
ADDRESS_LINK_HOURS = 48
LISTS_WORDING = "Send me these newsletters: {names} (preferences page)"
BREAK_WORDING = "Pause my mail until {until}, then send it again (preferences page)"
BREAK_END_WORDING = "Break over: mail resumes, with a note saying so"
BREAK_CANCEL_WORDING = "End my break now (preferences page)"
ADDRESS_ASKED_WORDING = "Change my address (confirmation link sent to the new address)"
ADDRESS_WORDING = "Use this new address (confirmed from the new address)"
LEAVE_WORDING = "Leave everything (preferences page)"
DIGEST_WORDING = "Send me one digest a month instead of each issue (preferences page)"
EVERY_ISSUE_WORDING = "Send me each issue as it comes out (preferences page)"


class PreferenceError(ValueError):
    """The change cannot be made; the message says why, in plain words."""


def reader_for_preferences(token: str) -> Subscriber:
    """The reader a preferences token names; BadToken if forged or revoked. Never expires."""
    payload = tokens.read(personalize.PREFERENCES_PURPOSE, token)
    subscriber = db.session.get(Subscriber, payload.get("id")) if isinstance(payload, dict) else None
    if subscriber is None or not secrets.compare_digest(subscriber.token_key, str(payload.get("k"))):
        raise tokens.BadToken()
    return subscriber


def _active(subscriber: Subscriber) -> None:
    if subscriber.status != ACTIVE:
        raise PreferenceError("This address is not subscribed any more, so there is nothing to change.")


def choose_lists(subscriber: Subscriber, chosen: list[NewsletterList], origin: subscriptions.Origin) -> bool:
    """The reader gets exactly these newsletters; True when that changed something."""
    _active(subscriber)
    if {row.id for row in lists.lists_of(subscriber)} == {row.id for row in chosen}:
        return False
    try:
        lists.set_lists(subscriber, chosen)
    except lists.ListError as exc:
        raise PreferenceError(str(exc)) from exc
    subscriptions.record(subscriber, "lists", origin, LISTS_WORDING.format(names=", ".join(row.name for row in chosen)))
    return True


def add_months(day: date, months: int) -> date:
    """The same day `months` later (the month's last day when it has fewer days)."""
    month_index = day.month - 1 + months
    year, month = day.year + month_index // 12, month_index % 12 + 1
    for candidate in (day.day, 30, 29, 28):
        try:
            return day.replace(year=year, month=month, day=candidate)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def take_break(subscriber: Subscriber, months: int, origin: subscriptions.Origin,
               now: datetime | None = None) -> datetime:
    """No mail for 1, 2 or 3 months (until that day's morning, practice time); returns when it ends (UTC)."""
    _active(subscriber)
    if months not in BREAK_MONTHS:
        raise PreferenceError("Please choose a break of 1, 2 or 3 months.")
    today = (now or utcnow()).replace(tzinfo=UTC).astimezone(practice.timezone()).date()
    until = practice.to_utc(datetime.combine(add_months(today, months), datetime.min.time()))
    subscriber.break_until = until
    wording = BREAK_WORDING.format(until=practice.local_time(until, "%B %-d, %Y"))
    subscriptions.record(subscriber, "break", origin, wording)
    return until


def end_break(subscriber: Subscriber, origin: subscriptions.Origin) -> bool:
    """The reader ends their break early; True when they were on one."""
    if subscriber.break_until is None:
        return False
    subscriber.break_until = None
    subscriptions.record(subscriber, "break_end", origin, BREAK_CANCEL_WORDING)
    return True


def end_breaks(now: datetime | None = None) -> list[int]:
    """Breaks that are over end: each reader gets a note that mail resumes; returns the ids of those notes."""
    now = now or utcnow()
    over = db.session.scalars(
        select(Subscriber).where(Subscriber.break_until.is_not(None), Subscriber.break_until <= now))
    mail_ids = []
    for subscriber in over.all():
        subscriber.break_until = None
        subscriptions.record(subscriber, "break_end", subscriptions.Origin(source="system"), BREAK_END_WORDING)
        if subscriber.status == ACTIVE and not is_suppressed(subscriber.email):
            mail_ids.append(queue_to_reader("break_over", subscriber))
    return mail_ids


def queue_to_reader(prefix: str, subscriber: Subscriber, **context) -> int:
    """Queue a mail of the newsletter to one reader, with its one-click unsubscribe headers and links."""
    link = subscriptions.unsubscribe_url(subscriber)
    return outgoing.queue_template(prefix, to=subscriber.email, to_name=subscriber.name, subscriber=subscriber,
                                 headers=personalize.list_headers(link), unsubscribe_url=link,
                                 preferences_url=personalize.preferences_url(subscriber),
                                 archive_url=settings().base_url + "/issues", **context).id


def choose_digest(subscriber: Subscriber, monthly: bool, origin: subscriptions.Origin,
                  now: datetime | None = None) -> bool:
    """Every issue as it comes out, or one digest a month (readers/digests.py); True when that changed."""
    _active(subscriber)
    if monthly == (subscriber.digest_since is not None):
        return False
    subscriber.digest_since = (now or utcnow()) if monthly else None
    subscriptions.record(subscriber, "digest" if monthly else "every_issue", origin,
                         DIGEST_WORDING if monthly else EVERY_ISSUE_WORDING)
    return True


def ask_address_change(subscriber: Subscriber, new_email: str, origin: subscriptions.Origin) -> int | None:
    """Mail a confirmation link to the new address; returns its mail id (None when that address cannot
    be used, which the page does not reveal: it answers the same either way)."""
    _active(subscriber)
    address = addresses.normalize(new_email)
    if address.lower() == subscriber.email.lower():
        raise PreferenceError("That is the address we already use.")
    subscriptions.record(subscriber, "address_asked", origin, ADDRESS_ASKED_WORDING)
    if is_suppressed(address) or subscriptions.find(address) is not None:
        return None
    return outgoing.queue_template("address_change", to=address, to_name=subscriber.name, subscriber=subscriber,
                                 confirm_url=address_change_url(subscriber, address), hours=ADDRESS_LINK_HOURS).id


def address_change_url(subscriber: Subscriber, address: str) -> str:
    """The link, mailed to the new address, that makes it the reader's (ADDRESS_LINK_HOURS, spent once used)."""
    token = tokens.make(ADDRESS_PURPOSE, {"id": subscriber.id, "k": subscriber.token_key, "new": address})
    return f"{settings().base_url}/preferences/address/{token}"


def address_change_for(token: str) -> tuple[Subscriber, str]:
    """(reader, new address) a change link names; BadToken if forged, expired or already used."""
    payload = tokens.read(ADDRESS_PURPOSE, token, max_age=ADDRESS_LINK_HOURS * 3600)
    subscriber = db.session.get(Subscriber, payload.get("id")) if isinstance(payload, dict) else None
    if subscriber is None or not secrets.compare_digest(subscriber.token_key, str(payload.get("k"))):
        raise tokens.BadToken()
    return subscriber, str(payload.get("new"))


def change_address(token: str, origin: subscriptions.Origin) -> Subscriber:
    """Use the new address a change link names. Its links (and all earlier ones) stop working: the
    reader's key turns over, so the old address's mail cannot change anything any more."""
    subscriber, address = address_change_for(token)
    _active(subscriber)
    if is_suppressed(address) or subscriptions.find(address) is not None:
        raise PreferenceError("That address can't be used for the newsletter. Please choose another one.")
    subscriber.email = address
    subscriber.token_key = secrets.token_hex(16)
    subscriptions.record(subscriber, "address", origin, ADDRESS_WORDING)
    return subscriber


def leave(subscriber: Subscriber, origin: subscriptions.Origin) -> None:
    """Stop every newsletter and every welcome step: the reader is unsubscribed."""
    subscriptions.unsubscribe_reader(subscriber, origin, LEAVE_WORDING)
