"""The waitlist: people who wrote while the practice took no new clients.

Every `waitlist_check_weeks` (Practice settings) each person is asked by mail whether they still want
a place, with signed links to answer yes or no; someone who does not answer within ANSWER_DAYS leaves
the list with a kind note. While the practice accepts clients again she invites them in the order
they joined. No Flask request and no Celery here; callers commit.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select

from newsletter.accounts.practice import profile
from newsletter.core import tokens
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.inquiries import composing, states
from newsletter.models import Inquiry, WaitlistEntry, utcnow

ANSWER_DAYS = 14
TOKEN_PURPOSE = "waitlist"
TOKEN_MAX_AGE = timedelta(days=ANSWER_DAYS * 3)
LEFT_ASKED, LEFT_NO_ANSWER, LEFT_INVITED = "asked to leave", "no answer", "invited"


class NotOnTheList(LookupError):
    """The place has ended (they left or were invited)."""


def active() -> list[tuple[WaitlistEntry, Inquiry]]:
    """Everyone still waiting, in the order they joined."""
    return list(db.session.execute(
        select(WaitlistEntry, Inquiry).join(Inquiry, Inquiry.id == WaitlistEntry.inquiry_id)
        .where(WaitlistEntry.left_at.is_(None), Inquiry.spam.is_(False))
        .order_by(WaitlistEntry.joined_at, WaitlistEntry.id)
    ))


def answer_url(entry: WaitlistEntry) -> str:
    """The signed page where the person answers "keep me" or "take me off"."""
    token = tokens.make(TOKEN_PURPOSE, [entry.id, entry.confirmed_at.isoformat()])  # an answer changes confirmed_at
    return f"{settings().base_url}/waitlist/{token}"


def _mail(prefix: str, entry: WaitlistEntry, inquiry: Inquiry, **context) -> int:
    return composing.queue_to_inquirer(prefix, inquiry, entry=entry, **context).id


def _leave(entry: WaitlistEntry, reason: str, now: datetime) -> None:
    entry.left_at, entry.left_reason, entry.asked_at = now, reason, None


def check_in(now: datetime | None = None) -> list[int]:
    """The beat job: ask those due whether they still want a place; let go, kindly, those who
    never answered. Returns the mail ids queued."""
    now = now or utcnow()
    every = timedelta(weeks=max(profile().waitlist_check_weeks, 1))
    mail_ids = []
    for entry, inquiry in active():
        if entry.asked_at is not None and entry.asked_at <= now - timedelta(days=ANSWER_DAYS):
            _leave(entry, LEFT_NO_ANSWER, now)
            mail_ids.append(_mail("waitlist_goodbye", entry, inquiry))
        elif entry.asked_at is None and entry.confirmed_at <= now - every:
            entry.asked_at = now
            mail_ids.append(_mail("waitlist_check", entry, inquiry, answer_url=answer_url(entry),
                                  answer_days=ANSWER_DAYS))
    return mail_ids


def entry_for(token: str) -> WaitlistEntry:
    """The waiting place a live signed link names; BadToken for a forged or expired link, and a revoked one
    once the place has ended or the person has answered since the link was made."""
    payload = tokens.read(TOKEN_PURPOSE, token, max_age=int(TOKEN_MAX_AGE.total_seconds()))
    entry_id, confirmed_at = payload if isinstance(payload, list) and len(payload) == 2 else (payload, None)
    entry = db.session.get(WaitlistEntry, tokens.row_id(entry_id)) if tokens.row_id(entry_id) else None
    if entry is None:
        raise tokens.BadToken()
    answered = confirmed_at is not None and confirmed_at != entry.confirmed_at.isoformat()
    if entry.left_at is not None or answered:
        raise tokens.BadToken(revoked=True)
    return entry


def answer(entry: WaitlistEntry, keep: bool, now: datetime | None = None) -> None:
    """Their answer to a check-in: keep the place (asked again in N weeks) or leave the list."""
    now = now or utcnow()
    if keep:
        entry.confirmed_at, entry.asked_at = now, None
    else:
        _leave(entry, LEFT_ASKED, now)


def invite(entry: WaitlistEntry, admin_id: int | None) -> list[int]:
    """A place has opened: write to this person (a first response) and take them off the list;
    states.NotAllowed if the inquiry's status refuses an invitation."""
    inquiry = db.session.get(Inquiry, entry.inquiry_id)
    if entry.left_at is not None or not inquiry.email:
        raise NotOnTheList(entry.id)
    states.transition(inquiry, "invite", admin_id)
    _leave(entry, LEFT_INVITED, utcnow())
    return [_mail("waitlist_invite", entry, inquiry)]
