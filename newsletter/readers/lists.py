"""Newsletters readers choose (lists): who is on which, and which readers an issue goes to.

A reader who never chose a list (imported, or added before there were lists) is on the default list.
The caller commits.
"""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import and_, delete, exists, literal, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from newsletter.core.extensions import db
from newsletter.models import IssueList, ListMembership, NewsletterList, Subscriber, utcnow
from newsletter.models.readers import ACTIVE

DEFAULT_SLUG = "newsletter"
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,59}\Z")
MAX_CHOSEN = 50


class ListError(ValueError):
    """The lists asked for cannot be used; the message says why, in plain words."""


def find_default() -> NewsletterList | None:
    """The default list if it exists yet (reads only)."""
    return db.session.scalar(select(NewsletterList).where(NewsletterList.is_default.is_(True)))


def default_list() -> NewsletterList:
    """The list signups go to when they choose none (made on first use, as the migration makes it)."""
    found = find_default()
    if found is not None:
        return found
    # Two first signups at once (a request and a worker) may both make it: the database keeps one, and both read it.
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" else sqlite.insert
    db.session.execute(insert(NewsletterList.__table__).values(
        slug=DEFAULT_SLUG, name="Newsletter", description="", is_default=True, series_paused=False,
    ).on_conflict_do_nothing(index_elements=["slug"]))
    return find_default()


def all_lists() -> list[NewsletterList]:
    """Every list, the default first (reads only: pages call it on GET)."""
    return list(db.session.scalars(
        select(NewsletterList).order_by(NewsletterList.is_default.desc(), NewsletterList.id)))


def add(slug: str, name: str, description: str = "") -> NewsletterList:
    """A new list readers can choose."""
    slug, name = (slug or "").strip().lower(), " ".join((name or "").split())
    if not SLUG_PATTERN.match(slug):
        raise ListError("A list's short name uses lowercase letters, digits and dashes (at most 60), like 'couples'.")
    if not name or len(name) > 120:
        raise ListError("Please give the list a name of at most 120 characters.")
    default_list()
    if db.session.scalar(select(NewsletterList.id).where(NewsletterList.slug == slug)) is not None:
        raise ListError(f"There is already a list '{slug}'.")
    row = NewsletterList(slug=slug, name=name, description=description.strip())
    db.session.add(row)
    db.session.flush()
    return row


def by_slugs(slugs: list[str] | None) -> list[NewsletterList]:
    """The lists these slugs name (the default list when none); ListError names any unknown one."""
    wanted = sorted({slug.strip().lower() for slug in slugs or [] if slug.strip()})
    default = default_list()
    if not wanted:
        return [default]
    if len(wanted) > MAX_CHOSEN or not all(SLUG_PATTERN.match(slug) for slug in wanted):
        raise ListError("Please choose from the newsletters shown.")
    found = list(db.session.scalars(select(NewsletterList).where(NewsletterList.slug.in_(wanted))
                                    .order_by(NewsletterList.id)))
    unknown = set(wanted) - {row.slug for row in found}
    if unknown:
        raise ListError("There is no list " + ", ".join(f"'{slug}'" for slug in sorted(unknown)) + ".")
    return found


def known_or_default(slugs: list[str] | None) -> list[NewsletterList]:
    """The lists these slugs name, leaving out any since removed; the default list when none is left."""
    try:
        return by_slugs(slugs)
    except ListError:
        found = list(db.session.scalars(select(NewsletterList).where(NewsletterList.slug.in_(slugs or []))))
        return found or [default_list()]


def lists_of(subscriber: Subscriber) -> list[NewsletterList]:
    """The lists the reader is on (the default list for one who never chose). Reads only."""
    rows = list(db.session.scalars(select(NewsletterList).join(ListMembership)
                                   .where(ListMembership.subscriber_id == subscriber.id).order_by(NewsletterList.id)))
    return rows or [row for row in [find_default()] if row is not None]


def join(subscriber: Subscriber, chosen: list[NewsletterList], at: datetime | None = None) -> list[NewsletterList]:
    """Put the reader on the chosen lists they are not on yet; returns those newly joined."""
    current = {row.list_id for row in db.session.scalars(
        select(ListMembership).where(ListMembership.subscriber_id == subscriber.id))}
    added = [row for row in chosen if row.id not in current]
    for row in added:
        db.session.add(ListMembership(subscriber_id=subscriber.id, list_id=row.id, joined_at=at or utcnow()))
    db.session.flush()
    return added


def set_lists(subscriber: Subscriber, chosen: list[NewsletterList]) -> None:
    """The reader is on exactly the chosen lists (at least one)."""
    if not chosen:
        raise ListError("Please keep at least one newsletter, or choose to leave them all.")
    keep = {row.id for row in chosen}
    if not db.session.scalar(select(exists().where(ListMembership.subscriber_id == subscriber.id))):
        join(subscriber, [default_list()])  # one who never chose was on the default list: make it explicit
    db.session.execute(delete(ListMembership).where(ListMembership.subscriber_id == subscriber.id,
                                                    ListMembership.list_id.not_in(keep)))
    join(subscriber, chosen)


def choose_for_issue(issue_id: int, chosen: list[NewsletterList]) -> None:
    """The lists an issue goes to (replacing any earlier choice)."""
    db.session.execute(delete(IssueList).where(IssueList.issue_id == issue_id))
    db.session.add_all(IssueList(issue_id=issue_id, list_id=row.id) for row in chosen)
    db.session.flush()


def lists_for_issue(issue_id: int) -> list[NewsletterList]:
    """The lists an issue goes to (the default list when none was chosen). Reads only."""
    rows = list(db.session.scalars(select(NewsletterList).join(IssueList).where(IssueList.issue_id == issue_id)
                                   .order_by(NewsletterList.id)))
    return rows or [row for row in [find_default()] if row is not None]


def receiving(now: datetime):
    """The condition on Subscriber for "mail goes to this reader now": active and not taking a break."""
    return and_(Subscriber.status == ACTIVE, or_(Subscriber.break_until.is_(None), Subscriber.break_until <= now))


def on_any_of(list_ids: list[int], include_unchosen: bool):
    """The condition on Subscriber for "on one of these lists" (readers who never chose count as on the default)."""
    membership = aliased(ListMembership)  # callers may join ListMembership themselves
    member = exists().where(membership.subscriber_id == Subscriber.id, membership.list_id.in_(list_ids))
    if not include_unchosen:
        return member
    return or_(member, ~exists().where(membership.subscriber_id == Subscriber.id))


def recipients_query(issue_id: int, now: datetime | None = None):
    """SELECT (issue id, reader id) of every reader an issue goes to: the union of its lists' members
    who receive mail now and each issue (not a monthly digest), each reader once however many of the lists they
    are on. Readers the ledger already has (an article sent as a welcome step first) are the dispatcher's to leave
    out: as a NOT EXISTS here, PostgreSQL probed the ledger rows the same INSERT was writing, once per reader."""
    chosen = lists_for_issue(issue_id)
    include_unchosen = not chosen or any(row.is_default for row in chosen)  # no lists yet: everyone
    return select(literal(issue_id), Subscriber.id).where(
        receiving(now or utcnow()), Subscriber.digest_since.is_(None),  # a digest reader gets it in the month's digest
        on_any_of([row.id for row in chosen], include_unchosen))
