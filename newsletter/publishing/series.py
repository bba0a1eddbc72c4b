"""Welcome series: per list, articles sent one by one after a reader joins (the first right after
confirming when its delay is 0 days, later ones at SERIES_SEND_HOUR in the practice's timezone).

Each step a reader is due becomes a row in the issues' delivery ledger (Delivery, with the step's
issue), and the step's issue goes (back) to "sending": the sending engine then mails it exactly once,
through worker kills, as it mails any issue. A reader gets at most one mail a day, never while on a
break or after leaving; readers who joined before the series started are not back-filled.
The caller commits.
"""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from newsletter.accounts import practice
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.models import Delivery, Issue, ListMembership, NewsletterList, SeriesStep, Subscriber, utcnow
from newsletter.models.issues import DELIVERY_PENDING, DRAFT, SENDING, SENT
from newsletter.publishing.issues import IssueError
from newsletter.readers import lists

# A step's issue may be sent to readers one by one while it is in one of these states.
STEP_STATES = (DRAFT, SENDING, SENT)


def add_step(issue: Issue, days: int, newsletter: NewsletterList) -> SeriesStep:
    """The issue becomes the list's next welcome step, `days` after a reader joins; starts the series."""
    if days < 0 or days > 3650:
        raise IssueError("The delay is a number of days from 0 (right after confirming) to 3650.")
    if issue.status not in STEP_STATES:
        raise IssueError(f"This issue is {issue.status}: only a draft or a sent issue can be a welcome step.")
    steps = steps_of(newsletter)
    if steps and days < steps[-1].days:
        raise IssueError(f"A step comes after the last one ({steps[-1].days} days): choose at least that many days.")
    step = SeriesStep(list_id=newsletter.id, issue_id=issue.id, days=days, position=len(steps) + 1)
    db.session.add(step)
    if newsletter.series_started_at is None:
        newsletter.series_started_at = utcnow()
    db.session.flush()
    return step


def steps_of(newsletter: NewsletterList) -> list[SeriesStep]:
    return list(db.session.scalars(select(SeriesStep).where(SeriesStep.list_id == newsletter.id)
                                   .order_by(SeriesStep.position)))


def pause(newsletter: NewsletterList) -> None:
    """No steps go out until resumed; then the ones that came due go (one a day per reader)."""
    newsletter.series_paused = True


def resume(newsletter: NewsletterList) -> None:
    newsletter.series_paused = False


def stop(newsletter: NewsletterList) -> None:
    """No more steps for anyone; restarting it (resume) welcomes only readers who join from then on."""
    newsletter.series_started_at = None
    newsletter.series_paused = False


def restart(newsletter: NewsletterList) -> None:
    """Start a stopped series again, for readers who join from now on."""
    newsletter.series_started_at = newsletter.series_started_at or utcnow()
    newsletter.series_paused = False


def queue_due(now: datetime | None = None, reader_ids: list[int] | None = None) -> list[int]:
    """Put every due step in the ledger (for these readers only, if given); returns the ids of the
    step issues that have new deliveries, now "sending"."""
    now = now or utcnow()
    started = set()
    running = db.session.scalars(select(NewsletterList).where(NewsletterList.series_started_at.is_not(None),
                                                              NewsletterList.series_paused.is_(False)))
    for newsletter in running.all():
        steps = steps_of(newsletter)
        for reader_id, joined in _readers_in_series(newsletter, now, reader_ids):
            step = _next_step(steps, reader_id)
            if step is not None and _due_at(joined, step.days) <= now and not _mailed_today(reader_id, now):
                if _add_delivery(step.issue_id, reader_id):
                    started.add(step.issue_id)
    return sorted(started)


def _readers_in_series(newsletter: NewsletterList, now: datetime, reader_ids: list[int] | None):
    """(reader id, when they joined) of the list's readers who receive mail and joined since the series started."""
    joined = func.coalesce(ListMembership.joined_at, Subscriber.confirmed_at)
    query = (select(Subscriber.id, Subscriber.confirmed_at, joined)
             .outerjoin(ListMembership, (ListMembership.subscriber_id == Subscriber.id)
                        & (ListMembership.list_id == newsletter.id))
             .where(lists.receiving(now), lists.on_any_of([newsletter.id], newsletter.is_default),
                    or_(ListMembership.joined_at >= newsletter.series_started_at,
                        Subscriber.confirmed_at >= newsletter.series_started_at)))
    if reader_ids is not None:
        query = query.where(Subscriber.id.in_(reader_ids))
    # A reader who joins a list before confirming starts the series when they confirm.
    return [(reader_id, max(confirmed, since)) for reader_id, confirmed, since in db.session.execute(query).all()
            if confirmed is not None and max(confirmed, since) >= newsletter.series_started_at]


def _next_step(steps: list[SeriesStep], reader_id: int) -> SeriesStep | None:
    """The first step the reader has no delivery of (sent, failed or skipped), in order."""
    had = set(db.session.scalars(select(Delivery.issue_id).where(
        Delivery.subscriber_id == reader_id, Delivery.issue_id.in_([step.issue_id for step in steps]))))
    return next((step for step in steps if step.issue_id not in had), None)


def _due_at(joined: datetime, days: int) -> datetime:
    """Right away for a 0-day step; else SERIES_SEND_HOUR (practice time) `days` after the day they joined."""
    if days == 0:
        return joined
    local_day = joined.replace(tzinfo=UTC).astimezone(practice.timezone()).date() + timedelta(days=days)
    return practice.to_utc(datetime.combine(local_day, time(hour=settings().series_send_hour)))


def _mailed_today(reader_id: int, now: datetime) -> bool:
    """True when the reader got a ledger mail today (practice time) or has one on its way."""
    local_midnight = datetime.combine(now.replace(tzinfo=UTC).astimezone(practice.timezone()).date(), time())
    return db.session.scalar(select(Delivery.id).where(
        Delivery.subscriber_id == reader_id,
        or_(Delivery.status == DELIVERY_PENDING, Delivery.sent_at >= practice.to_utc(local_midnight))
    ).limit(1)) is not None


def _add_delivery(issue_id: int, reader_id: int) -> bool:
    """One ledger row for the step and reader, and the step's issue sending; False if another run added it."""
    try:
        with db.session.begin_nested():
            db.session.add(Delivery(issue_id=issue_id, subscriber_id=reader_id, status=DELIVERY_PENDING))
            db.session.flush()
    except IntegrityError:
        return False
    db.session.execute(
        update(Issue).where(Issue.id == issue_id, Issue.status.in_((DRAFT, SENT)))
        .values(status=SENDING, dispatched_at=func.coalesce(Issue.dispatched_at, utcnow()), batch_claimed_at=utcnow(),
                updated_at=Issue.updated_at)
        .execution_options(synchronize_session=False))
    return True
