"""Free 15-minute consultations: weekly hours in the Practice settings, slots a person picks from a signed
link in her reply, an .ics invite to both, cancelling. Each consultation is in its host's calendar (the
inquiry's clinician in a group practice, else the practice's), and a start time unique per host means a slot
is never booked twice: one clinician's booking leaves the others' free.

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
from newsletter.inquiries import business_days, composing, routing, states
from newsletter.mail import compose, outgoing
from newsletter.models import AdminUser, Clinician, Consultation, Inquiry, InquiryAccess, utcnow

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


def open_slots(now: datetime | None = None, inquiry: Inquiry | None = None) -> list[datetime]:
    """Free starts (naive UTC) over the next DAYS_AHEAD days in the weekly hours (the assigned clinician's
    when they set their own), holidays skipped; a start is taken only by a consultation of the same host."""
    now = now or utcnow()
    calendar = business_days.practice_calendar()
    windows = parse_hours(hours_for(inquiry))
    host = host_of(inquiry)
    taken = set(db.session.scalars(select(Consultation.starts_at).where(
        Consultation.starts_at >= now,
        Consultation.host_id.is_(None) if host is None else Consultation.host_id == host.id)))
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


def hours_for(inquiry: Inquiry | None) -> str:
    """The weekly consultation hours that apply to an inquiry: its clinician's own, else the practice's."""
    clinician = routing.answering(inquiry)
    return (clinician.consultation_hours if clinician and clinician.consultation_hours
            else practice.profile().consultation_hours or "")


def host_of(inquiry: Inquiry | None) -> Clinician | None:
    """Whose calendar a consultation for this inquiry is in: its clinician's in a group practice; None, the
    practice's, in a solo practice or when nobody with a profile answers it."""
    return routing.answering(inquiry) if routing.is_group() else None


def booking_url(inquiry: Inquiry) -> str:
    return f"{settings().base_url}/consultation/{tokens.make(TOKEN_PURPOSE, inquiry.id)}"


def offered(inquiry: Inquiry) -> bool:
    """Whether a reply to this inquiry can offer a consultation (weekly hours, or the clinician's own link)."""
    clinician = routing.answering(inquiry)
    return bool(hours_for(inquiry) or (clinician and clinician.booking_link))


def link_for(inquiry: Inquiry) -> str:
    """The booking link a reply offers: the assigned clinician's own (their scheduler), else ours."""
    clinician = routing.answering(inquiry)
    return clinician.booking_link if clinician and clinician.booking_link else booking_url(inquiry)


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

    The start time unique per host settles a race between two people: the second insert fails and rolls back.
    """
    if booked(inquiry) is not None:
        raise AlreadyBooked(inquiry.id)
    if starts_at not in open_slots(inquiry=inquiry):
        raise SlotTaken(starts_at)
    host = host_of(inquiry)
    consultation = Consultation(inquiry_id=inquiry.id, host_id=host.id if host else None, starts_at=starts_at)
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
    """The invite (or cancellation) to the person, and a notice of it to the practice; see calendar_file."""
    when = local_start(consultation)
    host = organizer(consultation, inquiry)
    context = {"when": when, "cancelled": cancelled, "minutes": int(LENGTH.total_seconds() // 60),
               "how": _how(inquiry, host, for_practice=False)}
    to_person = composing.queue_to_inquirer(
        "consultation_invite", inquiry, for_practice=False, **context,
        calendar=calendar_file(consultation, inquiry, cancelled=cancelled, for_practice=False))
    to_practice = outgoing.queue_template(
        "consultation_invite", to=host.address if consultation.host_id else routing.practice_copy_to(inquiry),
        for_practice=True, inquiry=inquiry, admin_url=composing.admin_url(inquiry),
        **{**context, "how": _how(inquiry, host, for_practice=True)},
        calendar=calendar_file(consultation, inquiry, cancelled=cancelled, for_practice=True))
    return [to_person.id, to_practice.id]


def local_start(consultation: Consultation) -> str:
    """When it starts, as the practice and the person read it: "Tuesday, December 8 at 10:00 AM"."""
    return practice.local_time(consultation.starts_at, "%A, %B %-d at %-I:%M %p")


def stays_with_host(inquiry: Inquiry) -> str:
    """What handing the inquiry on does not move: a booked consultation stays in its host's calendar."""
    consultation = booked(inquiry)
    if consultation is None or consultation.host_id is None:
        return ""
    return f"The consultation on {local_start(consultation)} stays with {organizer(consultation, inquiry).name}."


def organizer(consultation: Consultation, inquiry: Inquiry) -> compose.Mailbox:
    """Who the consultation is with: the clinician whose calendar holds it, even after the inquiry was handed
    on (the invitation and its cancellation name one organizer); else whoever the inquiry's mail is from."""
    host = db.session.get(Clinician, consultation.host_id) if consultation.host_id else None
    if host is None:
        return routing.organizer(inquiry)
    return compose.Mailbox(db.session.get(AdminUser, host.admin_id).email, host.name)


def _how(inquiry: Inquiry, host: compose.Mailbox, *, for_practice: bool) -> str:
    """Who calls whom, and how: the therapist phones the number the person gave, or sends a video link."""
    caller = "we" if inquiry.discreet and not for_practice else host.name
    calls, emails = ("call", "e-mail") if caller == "we" else ("calls", "e-mails")
    whom = inquiry.name if for_practice else "you"
    if inquiry.phone:
        return f"{caller} {calls} {whom} at {inquiry.phone}"
    return f"video call: {caller} {emails} {whom} the link beforehand"


def calendar_file(consultation: Consultation, inquiry: Inquiry, *, cancelled: bool, for_practice: bool) -> bytes:
    """The consultation as iCalendar (RFC 5545), for iMIP (RFC 6047).

    The person gets a REQUEST (or CANCEL) from the organizer: the assigned clinician (their address and
    name), else the practice inbox under the therapist's name. The practice's own copy
    is a PUBLISH, a notice its calendar can add: a REQUEST to the organizer itself would ask it to answer
    its own invitation. Both carry one UID; a cancellation is SEQUENCE 1 and STATUS:CANCELLED.
    """
    from icalendar import Calendar, Event, vCalAddress  # only here: 2 MB a web process need not hold

    profile = practice.profile()
    host = organizer(consultation, inquiry)
    title = "Call" if inquiry.discreet else f"Free consultation with {profile.practice_name}"
    how = _how(inquiry, host, for_practice=for_practice)
    minutes = int(LENGTH.total_seconds() // 60)
    calendar = Calendar()
    calendar.add("prodid", "-//Inner Calm newsletter//Consultations//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH" if for_practice else "CANCEL" if cancelled else "REQUEST")
    event = Event()
    event.add("uid", f"consultation-{consultation.inquiry_id}-{consultation.starts_at:%Y%m%dT%H%M}"
                     f"@{compose.domain_of(host)}")
    event.add("dtstamp", utcnow().replace(tzinfo=UTC))
    event.add("dtstart", consultation.starts_at.replace(tzinfo=UTC))
    event.add("dtend", (consultation.starts_at + LENGTH).replace(tzinfo=UTC))
    event.add("summary", f"{title} — {how}")
    event.add("description", f"A free {minutes}-minute conversation: {how}. "
                             "To change or cancel it, reply to the e-mail.")
    event.add("organizer", vCalAddress(f"mailto:{host.address}"), parameters={"CN": host.name})
    if not for_practice:
        event.add("attendee", vCalAddress(f"mailto:{inquiry.email}"),
                  parameters={"ROLE": "REQ-PARTICIPANT", "PARTSTAT": "NEEDS-ACTION", "RSVP": "FALSE"})
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("sequence", 1 if cancelled else 0)
    calendar.add_component(event)
    return calendar.to_ical()
