"""Free 15-minute consultations: weekly hours in the Practice settings, slots a person picks from a signed
link in her reply, an .ics invite to both, cancelling. A unique start time means a slot is never booked twice.

Times are stored as naive UTC and offered in the practice's timezone. No Flask request, no Celery; callers commit.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from newsletter.accounts import practice
from newsletter.core import tokens
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.inquiries import business_days, composing, states
from newsletter.mail import compose, outbox
from newsletter.models import Consultation, Inquiry, InquiryAccess, utcnow

LENGTH = timedelta(minutes=15)
DAYS_AHEAD = 14
MIN_NOTICE = timedelta(hours=2)
TOKEN_PURPOSE = "consultation"
TOKEN_MAX_AGE = timedelta(days=21)
# The audit trail's word for a cancelled consultation; a booking link signed before it is revoked.
CANCELLED = states.ACTION_LABELS["cancel_consultation"]  # the access log entry a cancel leaves (states.transition)
_DAY_NAMES = {name.lower(): day for day, name in business_days.WEEKDAYS.items()}
_HOURS_LINE = re.compile(r"^\s*([A-Za-z]+)\s+(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class InvalidHours(ValueError):
    """A line of the weekly hours that is not like "Tuesday 14:00-16:00"."""


class SlotTaken(Exception):
    """Someone else booked that time a moment ago, or it is no longer offered."""


class AlreadyBooked(Exception):
    """This person already has a consultation booked."""


@dataclass(frozen=True)
class Window:
    weekday: int  # ISO, Monday 1
    start: time
    end: time


def parse_hours(text: str) -> list[Window]:
    """One window a line: a weekday (or its first three letters) and a time range, "Tue 14:00-16:00"."""
    windows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        found = _HOURS_LINE.match(line)
        day = _day(found.group(1)) if found else None
        try:
            start, end = time(int(found.group(2)), int(found.group(3))), time(int(found.group(4)), int(found.group(5)))
        except (AttributeError, ValueError):
            start = end = None
        if day is None or start is None or end <= start:
            raise InvalidHours(line.strip()[:40])
        windows.append(Window(day, start, end))
    return windows


def _day(word: str) -> int | None:
    word = word.lower()
    return next((day for name, day in _DAY_NAMES.items() if name == word or name[:3] == word), None)


def open_slots(now: datetime | None = None) -> list[datetime]:
    """Free starts (naive UTC) over the next DAYS_AHEAD days in the weekly hours, holidays skipped."""
    now = now or utcnow()
    calendar = business_days.practice_calendar()
    windows = parse_hours(practice.profile().consultation_hours or "")
    taken = set(db.session.scalars(select(Consultation.starts_at).where(Consultation.starts_at >= now)))
    today = calendar.local_date(now)
    slots = []
    for offset in range(DAYS_AHEAD + 1):
        day = today + timedelta(days=offset)
        if day in calendar.holidays:
            continue
        for window in (w for w in windows if w.weekday == day.isoweekday()):
            start = datetime.combine(day, window.start, tzinfo=calendar.tz)
            end = datetime.combine(day, window.end, tzinfo=calendar.tz)
            while start + LENGTH <= end:
                utc = start.astimezone(UTC).replace(tzinfo=None)
                if utc >= now + MIN_NOTICE and utc not in taken:
                    slots.append(utc)
                start += LENGTH
    return sorted(set(slots))


def booking_url(inquiry: Inquiry) -> str:
    return f"{settings().base_url}/consultation/{tokens.make(TOKEN_PURPOSE, inquiry.id)}"


def inquiry_for(token: str) -> Inquiry:
    """The inquiry a live booking link was made for; BadToken for a forged or expired link, and a revoked one
    for a link that has booked a time, whose consultation was cancelled since, or whose inquiry is closed
    or erased."""
    inquiry_id, signed_at = tokens.read_signed(TOKEN_PURPOSE, token, max_age=int(TOKEN_MAX_AGE.total_seconds()))
    inquiry = db.session.get(Inquiry, tokens.row_id(inquiry_id)) if tokens.row_id(inquiry_id) else None
    if inquiry is None:
        raise tokens.BadToken()
    if (not inquiry.email or not states.allows(inquiry, "book") or booked(inquiry) is not None
            or _cancelled_since(inquiry, signed_at)):
        raise tokens.BadToken(revoked=True)
    return inquiry


def _cancelled_since(inquiry: Inquiry, signed_at: datetime) -> bool:
    """True when a consultation of this inquiry was cancelled after the link was signed (the audit trail says so)."""
    return db.session.scalar(select(InquiryAccess.id).where(
        InquiryAccess.inquiry_id == inquiry.id, InquiryAccess.action == CANCELLED,
        InquiryAccess.created_at >= signed_at).limit(1)) is not None


def booked(inquiry: Inquiry) -> Consultation | None:
    return db.session.scalar(select(Consultation).where(Consultation.inquiry_id == inquiry.id))


def book(inquiry: Inquiry, starts_at: datetime) -> tuple[Consultation, list[int]]:
    """Book a free slot and queue the invites; SlotTaken if it is not free, AlreadyBooked if they have one.

    The unique start time settles a race between two people: the second insert fails and rolls back.
    """
    if booked(inquiry) is not None:
        raise AlreadyBooked(inquiry.id)
    if starts_at not in open_slots():
        raise SlotTaken(starts_at)
    consultation = Consultation(inquiry_id=inquiry.id, starts_at=starts_at)
    try:
        with db.session.begin_nested():
            db.session.add(consultation)
    except IntegrityError as exc:
        raise SlotTaken(starts_at) from exc
    states.transition(inquiry, "book", None)
    return consultation, _invites(inquiry, consultation, cancelled=False)


def cancel(consultation: Consultation, admin_id: int | None) -> list[int]:
    """Cancel a consultation (the slot is free again, the inquiry back to the status the state table gives)
    and tell both sides, with an .ics cancellation; states.NotAllowed if its status refuses it."""
    inquiry = db.session.get(Inquiry, consultation.inquiry_id)
    states.transition(inquiry, "cancel_consultation", admin_id)
    mail_ids = _invites(inquiry, consultation, cancelled=True)
    db.session.delete(consultation)
    return mail_ids


def _invites(inquiry: Inquiry, consultation: Consultation, *, cancelled: bool) -> list[int]:
    when = practice.local_time(consultation.starts_at, "%A, %B %-d at %-I:%M %p")
    ics = calendar_file(consultation, inquiry, cancelled=cancelled)
    context = {"when": when, "cancelled": cancelled, "minutes": int(LENGTH.total_seconds() // 60)}
    to_person = composing.queue_to_inquirer("consultation_invite", inquiry, attachments=[("invite.ics", ics)],
                                            for_practice=False, **context)
    to_practice = outbox.queue_template("consultation_invite", to=compose.practice_inbox().address,
                                        attachments=[("invite.ics", ics)], for_practice=True, inquiry=inquiry,
                                        admin_url=composing.admin_url(inquiry), **context)
    return [to_person.id, to_practice.id]


def _ics_text(value: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon, comma and line breaks escaped."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\n", "\\n").replace("\r", "\\n")


def _fold(line: str) -> str:
    """RFC 5545 3.1: lines of at most 75 octets, continued with CRLF and a space, never inside a character."""
    out, current = [], b""
    for ch in line:
        encoded = ch.encode("utf-8")
        if len(current) + len(encoded) > (75 if not out else 74):
            out.append(current.decode("utf-8"))
            current = b""
        current += encoded
    out.append(current.decode("utf-8"))
    return "\r\n ".join(out)


def calendar_file(consultation: Consultation, inquiry: Inquiry, *, cancelled: bool) -> bytes:
    """An iCalendar (RFC 5545) request or cancellation for the consultation."""
    profile = practice.profile()
    stamp = "%Y%m%dT%H%M%SZ"
    organizer = compose.practice_inbox()
    title = "Consultation" if inquiry.discreet else f"Free consultation with {profile.therapist_name}"
    lines = [
        "BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//Inner Calm newsletter//Consultations//EN",
        f"METHOD:{'CANCEL' if cancelled else 'REQUEST'}", "CALSCALE:GREGORIAN",
        "BEGIN:VEVENT",
        f"UID:consultation-{consultation.inquiry_id}-{consultation.starts_at:%Y%m%dT%H%M}@{compose.domain_of(organizer)}",
        f"DTSTAMP:{utcnow().strftime(stamp)}",
        f"DTSTART:{consultation.starts_at.strftime(stamp)}",
        f"DTEND:{(consultation.starts_at + LENGTH).strftime(stamp)}",
        f"SUMMARY:{_ics_text(title)}",
        f"DESCRIPTION:{_ics_text('A free 15-minute phone or video conversation. Reply to the e-mail to change it.')}",
        f"ORGANIZER;CN=\"{profile.therapist_name.replace(chr(34), '')}\":mailto:{organizer.address}",
        f"ATTENDEE;ROLE=REQ-PARTICIPANT:mailto:{inquiry.email}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        f"SEQUENCE:{1 if cancelled else 0}",
        "END:VEVENT", "END:VCALENDAR",
    ]
    return ("\r\n".join(_fold(line) for line in lines) + "\r\n").encode("utf-8")
