"""Reach without surveillance: what became of an issue in the week after it went out, from records the
product keeps anyway: the delivery ledger (delivered, refused), bounce and complaint reports, and the readers'
consent records (unsubscribes, breaks). No tracking pixel, no per-reader click; click counts per link only
where the practice turned them on (publishing/clicks.py). Reads only.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.mail.suppression import email_hash
from newsletter.models import (
    BounceEvent,
    ConsentEvent,
    Delivery,
    Issue,
    IssueList,
    LinkClick,
    NewsletterList,
    Subscriber,
)
from newsletter.models.bounces import COMPLAINT, HARD
from newsletter.models.issues import DELIVERY_FAILED, DELIVERY_SENT, PAUSED, SENDING, SENT
from newsletter.sending import replies

WINDOW = timedelta(days=7)
ISSUES_SHOWN = 20


# The figures of a week, in the order the Reach page shows them, with their column headings.
FIGURES = {"delivered": "Delivered", "bounced": "Bounced", "complaints": "Complaints",
           "unsubscribes": "Unsubscribed", "breaks": "Took a break",
           "replies": "Replies"}  # replies she forwarded to be counted (sending/replies.py), whenever they came


class Reach(Counter):
    """One issue's week (or a list's issues, added up with `update`): a count for each of FIGURES, 0 when absent."""


@dataclass
class IssueReach:
    issue: Issue
    reach: Reach
    clicks: list[tuple[int, str, int]] = field(default_factory=list)  # (link index, address, clicks)


@dataclass
class ListReach:
    newsletter: NewsletterList
    issues: int
    reach: Reach


def for_issue(issue: Issue) -> Reach:
    """Delivered and refused copies; bounces, complaints, unsubscribes and breaks within WINDOW of sending."""
    start = issue.dispatched_at or issue.send_at or issue.created_at
    end = start + WINDOW
    statuses = dict(db.session.execute(select(Delivery.status, func.count()).where(Delivery.issue_id == issue.id)
                                       .group_by(Delivery.status)).all())
    readers = select(Delivery.subscriber_id).where(Delivery.issue_id == issue.id, Delivery.status == DELIVERY_SENT)
    return Reach(
        delivered=statuses.get(DELIVERY_SENT, 0),
        bounced=statuses.get(DELIVERY_FAILED, 0) + _reported(issue, HARD, start, end),
        complaints=_reported(issue, COMPLAINT, start, end),
        unsubscribes=_consent_count(readers, "unsubscribe", start, end),
        breaks=_consent_count(readers, "break", start, end),
        replies=replies.counted_for(issue.id),
    )


def _reported(issue: Issue, kind: str, start: datetime, end: datetime) -> int:
    """Reports of `kind` naming the issue, and those naming none from one of its readers within the week."""
    named = db.session.scalar(select(func.count()).where(BounceEvent.issue_id == issue.id, BounceEvent.kind == kind))
    unnamed = db.session.scalars(select(BounceEvent.email_hash).where(
        BounceEvent.issue_id.is_(None), BounceEvent.kind == kind, BounceEvent.created_at >= start,
        BounceEvent.created_at < end)).all()
    if not unnamed:
        return named
    addresses = db.session.scalars(select(Subscriber.email).join(Delivery, Delivery.subscriber_id == Subscriber.id)
                                   .where(Delivery.issue_id == issue.id, Delivery.status == DELIVERY_SENT))
    hashes = {email_hash(address) for address in addresses}
    return named + sum(1 for digest in unnamed if digest in hashes)


def _consent_count(readers, action: str, start: datetime, end: datetime) -> int:
    return db.session.scalar(select(func.count(func.distinct(ConsentEvent.subscriber_id))).where(
        ConsentEvent.subscriber_id.in_(readers), ConsentEvent.action == action,
        ConsentEvent.created_at >= start, ConsentEvent.created_at < end))


def sent_issues(limit: int = ISSUES_SHOWN) -> list[Issue]:
    """The issues that went out to readers (not welcome-only drafts), newest first."""
    return list(db.session.scalars(select(Issue).where(Issue.status.in_((SENDING, PAUSED, SENT)),
                                                       Issue.send_at.is_not(None))
                                   .order_by(Issue.dispatched_at.desc().nulls_last(), Issue.id.desc()).limit(limit)))


def clicks(issue: Issue, links: list[str]) -> list[tuple[int, str, int]]:
    """(index, address, clicks) for each counted link of the issue that was clicked."""
    counts = dict(db.session.execute(select(LinkClick.link, func.count()).where(LinkClick.issue_id == issue.id)
                                     .group_by(LinkClick.link)).all())
    return [(index, url, counts[index]) for index, url in enumerate(links) if index in counts]


def by_issue(limit: int = ISSUES_SHOWN) -> list[IssueReach]:
    return [IssueReach(issue, for_issue(issue)) for issue in sent_issues(limit)]


def by_list(rows: list[IssueReach]) -> list[ListReach]:
    """Each list's issues among `rows`, added up (an issue sent to two lists counts in both)."""
    lists = list(db.session.scalars(select(NewsletterList).order_by(NewsletterList.is_default.desc(),
                                                                    NewsletterList.id)))
    chosen: dict[int, set[int]] = {}
    for issue_id, list_id in db.session.execute(select(IssueList.issue_id, IssueList.list_id).where(
            IssueList.issue_id.in_([row.issue.id for row in rows]))):
        chosen.setdefault(issue_id, set()).add(list_id)
    default_id = next((row.id for row in lists if row.is_default), None)
    result = []
    for newsletter in lists:
        total, count = Reach(), 0
        for row in rows:
            if newsletter.id in chosen.get(row.issue.id, {default_id}):
                total.update(row.reach)
                count += 1
        result.append(ListReach(newsletter, count, total))
    return result

