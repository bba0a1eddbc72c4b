"""Figures about the pipeline: response times and how long is left to answer, counts by status, and where
inquiries come from. Read-only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from statistics import median

from sqlalchemy import func, select, true

from newsletter.core.extensions import db
from newsletter.inquiries import business_days, routing
from newsletter.inquiries.states import STATUS_LABELS
from newsletter.models import AdminUser, Consultation, Inquiry, WaitlistEntry, utcnow
from newsletter.models.inquiries import HEARD_FROM


def status_counts(scope=true()) -> dict[str, int]:
    """How many inquiries (spam aside, purged ones included) are in each status, of those in `scope`."""
    rows = db.session.execute(
        select(Inquiry.status, func.count()).where(Inquiry.spam.is_(False), scope).group_by(Inquiry.status)
    )
    counts = dict.fromkeys(STATUS_LABELS, 0)
    counts.update({status: count for status, count in rows})
    return counts


def spam_count(scope=true()) -> int:
    """How many inquiries (of those in `scope`) are in the spam folder."""
    return db.session.scalar(select(func.count()).select_from(Inquiry).where(Inquiry.spam.is_(True), scope)) or 0


def unassigned_count(scope=true()) -> int:
    """How many inquiries (spam aside, of those in `scope`) nobody is assigned to answer."""
    return db.session.scalar(select(func.count()).select_from(Inquiry).where(
        Inquiry.spam.is_(False), Inquiry.assignee_id.is_(None), scope)) or 0


def response_time(inquiry: Inquiry) -> timedelta | None:
    """How long the inquirer waited for a first response, if there has been one."""
    if inquiry.first_response_at is None:
        return None
    return inquiry.first_response_at - inquiry.created_at


def median_response_time(inquiries: list[Inquiry]) -> timedelta | None:
    """The median time to first response over the inquiries that have one."""
    waits = [wait for wait in map(response_time, inquiries) if wait is not None]
    return timedelta(seconds=median(w.total_seconds() for w in waits)) if waits else None


def describe_wait(wait: timedelta | None) -> str:
    """'3 h 20 min', '2 days 4 h' or '' for a time to first response."""
    if wait is None:
        return ""
    minutes = int(wait.total_seconds() // 60)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''} {hours} h"
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min"


def is_open(inquiry: Inquiry) -> bool:
    """Still waiting for a first response from the practice."""
    return (inquiry.first_response_at is None and not inquiry.spam and inquiry.purged_at is None
            and inquiry.status == "new")


def time_left(inquiry: Inquiry, now: datetime | None = None) -> str:
    """'1 day 4 h left' or 'overdue by 2 h' until the end of the inquiry's reply-by day; '' when answered."""
    if not is_open(inquiry) or inquiry.reply_by is None:
        return ""
    left = business_days.practice_calendar().end_of_day(inquiry.reply_by) - (now or utcnow())
    amount = describe_wait(abs(left))
    return f"{amount} left" if left >= timedelta(0) else f"overdue by {amount}"


@dataclass(frozen=True)
class SourceCount:
    """One line of the report: a month, a source, how many wrote and how many of them became clients."""

    month: str  # "November 2026", in the practice's timezone
    source: str
    inquiries: int
    clients: int


def source_report() -> list[SourceCount]:
    """Inquiries (spam aside, purged ones included) by month and by how they heard of the practice,
    newest month first, most inquiries first within a month."""
    calendar = business_days.practice_calendar()
    counts: dict[tuple[date, str], list[int]] = {}
    rows = db.session.execute(select(Inquiry.created_at, Inquiry.heard_from, Inquiry.status)
                              .where(Inquiry.spam.is_(False)))
    for created_at, heard_from, status in rows:
        month = calendar.local_date(created_at).replace(day=1)
        tally = counts.setdefault((month, HEARD_FROM.get(heard_from, "Not said")), [0, 0])
        tally[0] += 1
        tally[1] += status == "client"
    ordered = sorted(counts.items(), key=lambda item: (-item[0][0].toordinal(), -item[1][0], item[0][1]))
    return [SourceCount(month=f"{month:%B %Y}", source=source, inquiries=total, clients=clients)
            for (month, source), (total, clients) in ordered]


@dataclass(frozen=True)
class ClinicianCount:
    """One line of the report by clinician: what was assigned to them and what became of it."""

    name: str
    inquiries: int
    first_reply: str  # the median time to a first reply or call, in words; "" before any
    consultations: int  # booked and not cancelled
    clients: int
    referred: int
    waitlist: int  # on their waitlist now


def clinician_report() -> list[ClinicianCount]:
    """Inquiries (spam aside, purged ones included) by the person who answers them, by name; the
    unassigned ones (answered from the practice inbox) last."""
    rows = db.session.execute(select(Inquiry.assignee_id, Inquiry.status, Inquiry.created_at, Inquiry.first_response_at,
                                     Consultation.id.is_not(None), WaitlistEntry.id.is_not(None))
                              .outerjoin(Consultation, Consultation.inquiry_id == Inquiry.id)
                              .outerjoin(WaitlistEntry, (WaitlistEntry.inquiry_id == Inquiry.id)
                                         & WaitlistEntry.left_at.is_(None))
                              .where(Inquiry.spam.is_(False)))
    by_person: dict[int | None, list] = {}
    for assignee_id, status, created_at, first_response_at, booked, waiting in rows:
        by_person.setdefault(assignee_id, []).append((status, created_at, first_response_at, booked, waiting))
    report = [_clinician_line(_name(assignee_id), lines) for assignee_id, lines in by_person.items()]
    return sorted(report, key=lambda line: (line.name == UNASSIGNED, line.name))


UNASSIGNED = "Not assigned (the practice inbox)"


def _name(assignee_id: int | None) -> str:
    person = db.session.get(AdminUser, assignee_id) if assignee_id else None
    return routing.display_name(person) if person else UNASSIGNED


def _clinician_line(name: str, lines: list) -> ClinicianCount:
    waits = [first - created for _, created, first, _, _ in lines if first is not None]
    wait = timedelta(seconds=median(w.total_seconds() for w in waits)) if waits else None
    return ClinicianCount(name=name, inquiries=len(lines), first_reply=describe_wait(wait),
                          consultations=sum(booked for *_, booked, _ in lines),
                          clients=sum(status == "client" for status, *_ in lines),
                          referred=sum(status == "referred" for status, *_ in lines),
                          waitlist=sum(waiting for *_, waiting in lines))
