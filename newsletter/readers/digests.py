"""The monthly digest: a reader who chose it (preferences.choose_digest) gets no mail per issue; on the
1st of each month, at SERIES_SEND_HOUR in the practice's timezone, one mail lists the previous month's
issues they would have received (those sent to their lists since they chose the digest), each with its
title, a short excerpt and a link to its web page. Nothing when there were none.

Exactly once: each (reader, month) is a ReaderDigest row, written in the same transaction as the mail's
OutgoingMail row (whose sending is itself once, mail/outgoing.py); a second run, a second scheduler or a
rerun after a killed worker finds the row and skips the reader. Never to a reader who left, is suppressed or
is on a break. A digest left unsent on the 1st (the scheduler down) still goes in the first CATCH_UP_DAYS
days of the month, never later: a reader whose break ends mid-month does not get last month's list then.
The caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.exc import IntegrityError

from newsletter.accounts import practice
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.mail.suppression import is_suppressed
from newsletter.models import Delivery, Issue, IssueList, ReaderDigest, Subscriber, utcnow
from newsletter.models.issues import PAUSED, SENDING, SENT
from newsletter.readers import lists, preferences

CATCH_UP_DAYS = 7
EXCERPT_CHARS = 220


@dataclass(frozen=True)
class Item:
    """One issue in a digest, as the mail shows it."""

    title: str
    excerpt: str
    url: str


def due_month(now: datetime) -> str | None:
    """The month ("2026-11") whose digest is due at `now` (naive UTC), or None outside the sending days."""
    local = now.replace(tzinfo=UTC).astimezone(practice.timezone()).replace(tzinfo=None)
    first = datetime.combine(local.date().replace(day=1), time(hour=settings().series_send_hour))
    if local < first or local.day > CATCH_UP_DAYS:
        return None
    return f"{first.date() - timedelta(days=1):%Y-%m}"


def month_bounds(month: str) -> tuple[datetime, datetime]:
    """The month's first and next month's first instant, practice time, as naive UTC."""
    start = date.fromisoformat(f"{month}-01")
    following = (start + timedelta(days=32)).replace(day=1)
    return practice.to_utc(datetime.combine(start, time())), practice.to_utc(datetime.combine(following, time()))


def queue_due(now: datetime | None = None) -> list[int]:
    """Write the digests due at `now`; returns the ids of the mails queued (readers with nothing to read get none)."""
    now = now or utcnow()
    month = due_month(now)
    if month is None:
        return []
    start, end = month_bounds(month)
    done = exists().where(ReaderDigest.subscriber_id == Subscriber.id, ReaderDigest.month == month)
    readers = db.session.scalars(select(Subscriber).where(
        lists.receiving(now), Subscriber.digest_since.is_not(None), Subscriber.digest_since < end, ~done)
        .order_by(Subscriber.id)).all()
    mail_ids = []
    for reader in readers:
        if is_suppressed(reader.email):
            continue
        items = items_for(reader, max(start, reader.digest_since), end)
        if not _claim(reader, month, len(items)):
            continue  # another run wrote this month's digest meanwhile
        if items:
            mail_ids.append(preferences.queue_to_reader(
                "monthly_digest", reader, items=items, month_name=f"{date.fromisoformat(month + '-01'):%B %Y}"))
    return mail_ids


def items_for(reader: Subscriber, start: datetime, end: datetime) -> list[Item]:
    """The issues sent between start and end to one of the reader's lists that the reader has not had
    by mail (as an issue before choosing the digest, or as a welcome step), oldest first."""
    list_ids = [row.id for row in lists.lists_of(reader)]
    default = lists.find_default()
    to_reader = exists().where(IssueList.issue_id == Issue.id, IssueList.list_id.in_(list_ids))
    if default is not None and default.id in list_ids:  # an issue with no lists goes to the default list
        to_reader = or_(to_reader, ~exists().where(IssueList.issue_id == Issue.id))
    had = exists().where(Delivery.issue_id == Issue.id, Delivery.subscriber_id == reader.id)
    found = db.session.scalars(select(Issue).where(
        Issue.status.in_((SENDING, PAUSED, SENT)), Issue.send_at.is_not(None),  # a welcome-only draft has none
        and_(Issue.dispatched_at >= start, Issue.dispatched_at < end), to_reader, ~had)
        .order_by(Issue.dispatched_at, Issue.id))
    base = settings().base_url
    return [Item(issue.title, excerpt(issue), f"{base}/issues/{issue.slug}") for issue in found]


def excerpt(issue: Issue) -> str:
    """The issue's preheader, or its opening words, cut at a word within EXCERPT_CHARS."""
    text = " ".join((issue.preheader or issue.body_text).split())
    if len(text) <= EXCERPT_CHARS:
        return text
    return text[:EXCERPT_CHARS].rsplit(" ", 1)[0].rstrip(",;:.—-") + "…"


def _claim(reader: Subscriber, month: str, count: int) -> bool:
    """Record the reader's digest for the month; False when a row is there already."""
    try:
        with db.session.begin_nested():
            db.session.add(ReaderDigest(subscriber_id=reader.id, month=month, issues=count))
            db.session.flush()
    except IntegrityError:
        return False
    return True
