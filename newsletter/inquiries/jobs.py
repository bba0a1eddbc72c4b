"""The inquiries' scheduled jobs: the reply-by nudge, the daily digest of waiting inquiries, and purging
what inquirers wrote after the retention period. Called by the beat tasks; callers commit.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select

from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.inquiries import business_days, routing
from newsletter.inquiries.composing import MAIL_KINDS, admin_url, practice_inbox
from newsletter.inquiries.reports import describe_wait, time_left
from newsletter.mail import outgoing
from newsletter.models import (
    Inquiry,
    InquiryNote,
    InquiryResponse,
    OutgoingMail,
    WaitlistEntry,
    utcnow,
)
from newsletter.models.outbox import MAIL_PENDING

DIGEST_KIND = "inquiry_digest"
NUDGE_KIND = "inquiry_nudge"


def queue_nudges(now: datetime | None = None) -> list[int]:
    """Remind whoever answers each inquiry, once, that it is still unanswered on its reply-by day (the
    assignee, else the practice inbox), and tell someone other than the assignee (the coordinator or an
    owner: `routing.escalation_to`) of an assigned inquiry whose day has passed. One mail per person;
    returns the mail ids."""
    now = now or utcnow()
    today = business_days.practice_calendar().local_date(now)
    unanswered = (Inquiry.status == "new", Inquiry.first_response_at.is_(None), Inquiry.spam.is_(False),
                  Inquiry.purged_at.is_(None))
    order = (Inquiry.urgent.desc(), Inquiry.reply_by, Inquiry.created_at)
    due = list(db.session.scalars(
        select(Inquiry).where(*unanswered, Inquiry.nudged_at.is_(None), Inquiry.reply_by <= today).order_by(*order)))
    missed = list(db.session.scalars(
        select(Inquiry).where(*unanswered, Inquiry.assignee_id.is_not(None), Inquiry.escalated_at.is_(None),
                              Inquiry.reply_by < today).order_by(*order)))
    by_person: dict[tuple[str, bool], list[Inquiry]] = {}
    for inquiry in due:
        inquiry.nudged_at = now
        by_person.setdefault((routing.practice_copy_to(inquiry), False), []).append(inquiry)
    for inquiry in missed:
        inquiry.escalated_at = now
        by_person.setdefault((routing.escalation_to(inquiry), True), []).append(inquiry)
    return [mail_id for (to, overdue), inquiries in by_person.items() for mail_id in _remind_practice(
        NUDGE_KIND, to=to, overdue=overdue,
        due=[(inquiry, admin_url(inquiry), business_days.long_date(inquiry.reply_by), time_left(inquiry, now))
             for inquiry in inquiries],
    )]


def queue_digest(now: datetime | None = None) -> list[int]:
    """Queue one reminder to the practice listing inquiries still new after INQUIRY_DIGEST_AFTER_HOURS.

    Returns the mail ids queued: none when nothing is waiting or a digest already went out in the
    last 20 hours (a second beat run the same day sends nothing).
    """
    now = now or utcnow()
    recent = db.session.scalar(
        select(func.count()).select_from(OutgoingMail)
        .where(OutgoingMail.kind == DIGEST_KIND, OutgoingMail.created_at > now - timedelta(hours=20))
    )
    if recent:
        return []
    cutoff = now - timedelta(hours=settings().inquiry_digest_after_hours)
    waiting = list(db.session.scalars(
        select(Inquiry)
        .where(Inquiry.status == "new", Inquiry.spam.is_(False), Inquiry.purged_at.is_(None),
               Inquiry.assignee_id.is_(None), Inquiry.created_at <= cutoff)  # the assignee's own are nudged
        .order_by(Inquiry.urgent.desc(), Inquiry.created_at)
    ))
    if not waiting:
        return []
    for inquiry in waiting:
        inquiry.digest_sent_at = now
    return _remind_practice(
        DIGEST_KIND,
        waiting=[(inquiry, admin_url(inquiry), describe_wait(now - inquiry.created_at)) for inquiry in waiting],
        hours=settings().inquiry_digest_after_hours,
    )


def _remind_practice(kind: str, to: str | None = None, **context) -> list[int]:
    """Queue one reminder mail of this kind to `to` (default the practice inbox), linking the inquiry list; its id."""
    row = outgoing.queue_template(
        kind,
        to=to or practice_inbox(),
        names=settings().inquiry_forward_mode == "full",
        list_url=f"{settings().base_url}/admin/inquiries",
        **context,
    )
    return [row.id]


def purge_expired(now: datetime | None = None) -> int:
    """Erase what inquirers wrote (name, address, phone, message, notes, sent mail) after
    INQUIRY_RETENTION_DAYS; the rows stay, so counts by status and response times survive.
    Returns how many inquiries were purged."""
    now = now or utcnow()
    cutoff = now - timedelta(days=settings().inquiry_retention_days)
    expired = list(db.session.scalars(
        select(Inquiry).where(Inquiry.created_at < cutoff, Inquiry.purged_at.is_(None))
    ))
    for inquiry in expired:
        inquiry.name, inquiry.email, inquiry.fingerprint = "", "", None
        inquiry.partner_name, inquiry.heard_from_other = "", ""
        inquiry.phone = inquiry.message = None
        inquiry.purged_at = now
    if expired:
        expired_ids = [i.id for i in expired]
        db.session.execute(delete(InquiryNote).where(InquiryNote.inquiry_id.in_(expired_ids)))
        db.session.execute(delete(InquiryResponse).where(InquiryResponse.inquiry_id.in_(expired_ids)))
        for entry in db.session.scalars(select(WaitlistEntry).where(WaitlistEntry.inquiry_id.in_(expired_ids),
                                                                    WaitlistEntry.left_at.is_(None))):
            entry.left_at, entry.left_reason = now, "purged"
    # The forwards and acknowledgements carry the same words, encrypted; sent ones go too.
    db.session.execute(
        delete(OutgoingMail).where(OutgoingMail.kind.in_(MAIL_KINDS), OutgoingMail.status != MAIL_PENDING,
                                   OutgoingMail.created_at < cutoff)
    )
    return len(expired)
