"""Prospective clients' inquiries: taking one in, the practice's pipeline, and forgetting it in time.

No Flask request and no Celery here. `submit` only stores the inquiry (message and phone encrypted):
the view commits and hands its id to a worker, which composes the forward and the acknowledgement
(`queue_mails`); the sweeper composes what a lost hand-off left (`waiting_for_mail`). Functions that
change data leave the commit to their caller. Nothing here logs what an inquirer wrote.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from email.utils import make_msgid
from statistics import median
from urllib.parse import quote

from flask import current_app
from sqlalchemy import delete, func, select, update

from newsletter.accounts.practice import profile
from newsletter.core.extensions import db
from newsletter.inquiries import business_days, safety
from newsletter.mail import compose, outbox
from newsletter.mail.addresses import normalize as normalize_email
from newsletter.models import (
    AdminUser,
    Inquiry,
    InquiryAccess,
    InquiryNote,
    InquiryResponse,
    OutgoingMail,
    WaitlistEntry,
    utcnow,
)
from newsletter.models.inquiries import HEARD_FROM, INQUIRY_STATUSES
from newsletter.models.outbox import MAIL_PENDING
from newsletter.readers.subscriptions import Origin

STATUS_LABELS = {
    "new": "New",
    "contacted": "Contacted",
    "consultation_scheduled": "Consultation scheduled",
    "client": "Became a client",
    "not_a_fit": "Not a fit",
    "referred": "Referred elsewhere",
    "no_reply": "No reply",
}
MAIL_KINDS = ("inquiry_forward", "inquiry_notice", "inquiry_ack", "inquiry_reply", "waitlist_check",
              "waitlist_goodbye", "waitlist_invite")
DIGEST_KIND = "inquiry_digest"
NUDGE_KIND = "inquiry_nudge"

_LINK = re.compile(r"https?://|www\.|\[url|<a\s", re.IGNORECASE)
# Words that real inquiries to a couples therapist do not use and advertising does.
_SPAM_WORDS = re.compile(
    r"\b(seo|backlinks?|casino|viagra|cialis|crypto(currency)?|bitcoin|forex|porn|loans?|guest post|"
    r"web design services|rank (your|on) google|increase (your )?traffic)\b",
    re.IGNORECASE,
)
MAX_LINKS = 2
DUPLICATE_WINDOW = timedelta(minutes=30)


class InvalidStatus(ValueError):
    """Not one of the pipeline's statuses."""


class NoOneToReplyTo(ValueError):
    """The inquiry's content was purged: there is no address left to write to."""


@dataclass(frozen=True)
class InquiryDetails:
    """The contact form's optional answers: a partner, how they found the practice, safe-contact wishes."""

    partner_name: str = ""
    heard_from: str = ""  # a key of HEARD_FROM, or ""
    heard_from_other: str = ""
    voicemail_ok: bool = False
    text_ok: bool = False
    discreet: bool = False  # mail to them gets a neutral subject and sender name


@dataclass(frozen=True)
class Submitted:
    """What became of a submitted inquiry, for the thank-you page and the worker."""

    inquiry_id: int
    urgent: bool
    spam: bool
    needs_mail: bool  # new and not spam: a worker must compose its forward and acknowledgement
    reply_by: date | None = None  # the day the practice promised to answer by


def spam_reason(name: str, message: str) -> str:
    """Why this looks like advertising rather than a person reaching out, or "" if it does not."""
    links = len(_LINK.findall(message))
    if links > MAX_LINKS:
        return f"{links} links in the message"
    if _LINK.search(name):
        return "a link in the name"
    if "<a " in message.lower() or "[url" in message.lower():
        return "link markup in the message"
    found = _SPAM_WORDS.search(f"{name} {message}")
    if found:
        return f"advertising words ({found.group(0).lower()})"
    return ""


def submit(*, name: str, email: str, phone: str, preferred_contact: str, message: str, origin: Origin,
           honeypot_filled: bool = False, details: InquiryDetails | None = None, waitlist: bool = False) -> Submitted:
    """Store an inquiry; raises InvalidAddress. Its forward and acknowledgement are composed later, by
    `queue_mails`, so that the request does no more than one encryption and one INSERT.

    Suspected spam (a filled hidden field, too many links, advertising words) is kept in the spam
    folder and nothing is sent. A message that speaks of a crisis is never treated as spam. With
    `waitlist` (the practice takes no new clients) the person joins the waitlist instead of being
    promised a reply by a day.
    """
    address = normalize_email(email)
    name = compose.one_line(name, 100)
    repeat = _recent_duplicate(address, message.strip())  # and `fingerprint` when sent at the same moment
    if repeat is not None:  # a double click or a resent page: one inquiry, one forward
        return Submitted(inquiry_id=repeat.id, urgent=repeat.urgent, spam=repeat.spam, needs_mail=False,
                         reply_by=repeat.reply_by)
    urgent = safety.is_urgent(message)
    reason = "" if urgent else ("the hidden field was filled in" if honeypot_filled else spam_reason(name, message))
    inquiry = Inquiry(
        name=name,
        email=address,
        phone=phone.strip() if phone and phone.strip() else None,
        message=message.strip(),
        preferred_contact="phone" if preferred_contact == "phone" else "email",
        source=origin.source,
        urgent=urgent,
        spam=bool(reason),
        spam_reason=reason,
        fingerprint=_fingerprint(address, message.strip()),
    )
    _apply_details(inquiry, details or InquiryDetails())
    inquiry.waitlist = waitlist
    if not waitlist:
        inquiry.reply_by = business_days.practice_calendar().reply_by(utcnow(), current_app.config["INQUIRY_REPLY_BUSINESS_DAYS"])
    db.session.add(inquiry)
    db.session.flush()
    return Submitted(inquiry_id=inquiry.id, urgent=urgent, spam=inquiry.spam, needs_mail=not inquiry.spam,
                     reply_by=inquiry.reply_by)


def queue_mails(inquiry_id: int) -> list[int]:
    """Queue the forward and acknowledgement of an inquiry the form stored; returns the mail ids.

    Marking it forwarded is the claim: a second worker (or the sweeper) finds nothing left to do, and
    an inquiry moved to spam or purged meanwhile gets no mail.
    """
    claimed = db.session.execute(
        update(Inquiry)
        .where(Inquiry.id == inquiry_id, Inquiry.forwarded_at.is_(None), Inquiry.spam.is_(False),
               Inquiry.purged_at.is_(None))
        .values(forwarded_at=utcnow())
    ).rowcount
    return _queue_mails(db.session.get(Inquiry, inquiry_id)) if claimed else []


def waiting_for_mail(older_than: timedelta) -> list[int]:
    """Inquiries stored more than `older_than` ago whose mails were never composed (a lost hand-off)."""
    return list(db.session.scalars(
        select(Inquiry.id)
        .where(Inquiry.forwarded_at.is_(None), Inquiry.spam.is_(False), Inquiry.purged_at.is_(None),
               Inquiry.created_at <= utcnow() - older_than)
        .order_by(Inquiry.id)
    ))


def _apply_details(inquiry: Inquiry, details: InquiryDetails) -> None:
    inquiry.partner_name = compose.one_line(details.partner_name, 100)
    inquiry.heard_from = details.heard_from if details.heard_from in HEARD_FROM else ""
    inquiry.heard_from_other = compose.one_line(details.heard_from_other, 100) if inquiry.heard_from == "other" else ""
    inquiry.voicemail_ok, inquiry.text_ok, inquiry.discreet = details.voicemail_ok, details.text_ok, details.discreet


def _recent_duplicate(address: str, message: str) -> Inquiry | None:
    """The same message from the same address in the last DUPLICATE_WINDOW, if any.

    Such an inquiry carries the fingerprint of this window's bucket or the one before: one lookup on
    the unique index, whatever the number of inquiries, and nothing decrypted."""
    now = time.time()
    fingerprints = [_fingerprint(address, message, at=now - back) for back in (0, DUPLICATE_WINDOW.total_seconds())]
    return db.session.scalar(
        select(Inquiry).where(Inquiry.fingerprint.in_(fingerprints), Inquiry.created_at > utcnow() - DUPLICATE_WINDOW)
        .order_by(Inquiry.id).limit(1)
    )


def _fingerprint(address: str, message: str, at: float | None = None) -> str:
    """Unique per address, message and DUPLICATE_WINDOW bucket (of the time `at`, default now): a
    simultaneous copy fails to insert (the caller retries, and `_recent_duplicate` then finds the
    first). Keyed, so it reveals nothing without SECRET_KEY."""
    bucket = int((time.time() if at is None else at) // DUPLICATE_WINDOW.total_seconds())
    text = f"{address.lower()}\0{message}\0{bucket}".encode()
    return hmac.new(current_app.config["SECRET_KEY"].encode(), text, hashlib.sha256).hexdigest()


# A first name as people write one: letters, with inner ' or - (Anne-Marie, O'Neil).
_FIRST_NAME = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*\Z")
# What a name never holds and advertising does: digits, money, links, addresses.
_NOT_A_NAME = re.compile(r"[\d$€£@/:]|www|\.[a-z]{2,}", re.IGNORECASE)
ACK_PER_ADDRESS = timedelta(days=1)


def greeting_name(name: str) -> str:
    """The first name to greet an inquirer by in the acknowledgement, or "" ("Hello,").

    The acknowledgement goes to whatever address was typed, so it must not carry a stranger's free
    text from the practice's address: only a first word that looks like a name, from a name that
    holds no digits, money, links or addresses.
    """
    first = compose.one_line(name, 100).split(" ")[0]
    if _NOT_A_NAME.search(name) or not _FIRST_NAME.match(first) or len(first) > 30:
        return ""
    return first


def _acknowledged_recently(address: str) -> bool:
    """An acknowledgement went to this address in the last ACK_PER_ADDRESS (one a day, whatever is sent)."""
    return db.session.scalar(
        select(func.count()).select_from(OutgoingMail).where(
            OutgoingMail.kind == "inquiry_ack", OutgoingMail.addressed_to(address),
            OutgoingMail.created_at > utcnow() - ACK_PER_ADDRESS)
    ) > 0


def _practice_inbox() -> str:
    return compose.practice_inbox().address


def heard_from_label(inquiry: Inquiry) -> str:
    """How the inquirer heard of the practice, in words ("Somewhere else: a podcast"), or ""."""
    label = HEARD_FROM.get(inquiry.heard_from, "")
    return f"{label}: {inquiry.heard_from_other}" if inquiry.heard_from == "other" and inquiry.heard_from_other else label


def sender_for(inquiry: Inquiry) -> compose.Mailbox:
    """MAIL_FROM, or for a discreet inquiry the same address under the therapist's plain name
    (no practice name, no credentials), so nothing in an inbox list says "therapy"."""
    sender = compose.sender()
    if not inquiry.discreet:
        return sender
    return compose.Mailbox(sender.address, profile().therapist_name.split(",")[0].strip())


def admin_url(inquiry: Inquiry) -> str:
    """The inquiry's page in the admin, absolute (also built by beat tasks, outside any request)."""
    return f"{current_app.config['BASE_URL']}/admin/inquiries/{inquiry.id}"


def _queue_mails(inquiry: Inquiry) -> list[int]:
    """The forward (or notice) to the practice and the acknowledgement to the inquirer (and, for a
    waitlist inquiry, its place on the list)."""
    if inquiry.waitlist:  # in the order they wrote, whenever a worker gets here
        db.session.add(WaitlistEntry(inquiry_id=inquiry.id, joined_at=inquiry.created_at))
    notice_only = current_app.config["INQUIRY_FORWARD_MODE"] == "notice"
    inquiry.forwarded_at = utcnow()
    forward = outbox.queue_template(
        "inquiry_notice" if notice_only else "inquiry_forward",
        to=_practice_inbox(),
        reply_to=compose.Mailbox(inquiry.email, inquiry.name),
        inquiry=inquiry,
        first_name=compose.one_line(inquiry.name, 100).split(" ")[0],
        message=inquiry.message or "",
        phone=inquiry.phone or "",
        heard_from=heard_from_label(inquiry),
        admin_url=admin_url(inquiry),
    )
    if _acknowledged_recently(inquiry.email):
        return [forward.id]
    greeting = greeting_name(inquiry.name)
    inquiry.ack_message_id = make_msgid(domain=compose.domain_of(compose.sender()))
    ack = outbox.queue_template(
        "inquiry_ack",
        to=inquiry.email,
        to_name=greeting,
        from_=sender_for(inquiry),
        reply_to=compose.practice_inbox(),
        message_id=inquiry.ack_message_id,
        inquiry=inquiry,
        greeting_name=greeting,
        reply_days=current_app.config["INQUIRY_REPLY_BUSINESS_DAYS"],
        reply_by=business_days.long_date(inquiry.reply_by) if inquiry.reply_by else "",
        check_weeks=profile().waitlist_check_weeks,
    )
    return [forward.id, ack.id]


# -- the pipeline in the admin

def list_inquiries(*, spam: bool = False, status: str | None = None) -> list[Inquiry]:
    """Inquiries in the inbox or the spam folder, newest first."""
    query = select(Inquiry).where(Inquiry.spam.is_(spam))
    if status:
        query = query.where(Inquiry.status == status)
    return list(db.session.scalars(query.order_by(Inquiry.created_at.desc(), Inquiry.id.desc())))


def status_counts() -> dict[str, int]:
    """How many inquiries (spam aside, purged ones included) are in each status."""
    rows = db.session.execute(
        select(Inquiry.status, func.count()).where(Inquiry.spam.is_(False)).group_by(Inquiry.status)
    )
    counts = dict.fromkeys(INQUIRY_STATUSES, 0)
    counts.update({status: count for status, count in rows})
    return counts


def spam_count() -> int:
    return db.session.scalar(select(func.count()).select_from(Inquiry).where(Inquiry.spam.is_(True))) or 0


@dataclass(frozen=True)
class OpenedInquiry:
    """An inquiry with its words decrypted, for one admin page view."""

    inquiry: Inquiry
    message: str
    phone: str
    notes: list[tuple[InquiryNote, str]]
    responses: list[tuple[InquiryResponse, str]]  # oldest first, with the words she wrote
    accesses: list[tuple[InquiryAccess, str | None]]  # newest first, with the admin's address


def _log(inquiry: Inquiry, admin_id: int | None, action: str) -> None:
    db.session.add(InquiryAccess(inquiry_id=inquiry.id, admin_id=admin_id, action=action[:60]))


log_action = _log  # for the other services that change an inquiry (booking)


def open_inquiry(inquiry_id: int, admin_id: int | None) -> OpenedInquiry | None:
    """Decrypt an inquiry for an admin and record that they opened it; None if there is no such inquiry."""
    inquiry = db.session.get(Inquiry, inquiry_id)
    if inquiry is None:
        return None
    _log(inquiry, admin_id, "viewed")
    db.session.flush()
    accesses = list(db.session.execute(
        select(InquiryAccess, AdminUser.email)
        .outerjoin(AdminUser, AdminUser.id == InquiryAccess.admin_id)
        .where(InquiryAccess.inquiry_id == inquiry.id)
        .order_by(InquiryAccess.id.desc())
        .limit(50)
    ))
    return OpenedInquiry(
        inquiry=inquiry,
        message=inquiry.message or "",
        phone=inquiry.phone or "",
        notes=[(note, note.body) for note in inquiry.notes],
        responses=[(response, response.body or "") for response in db.session.scalars(
            select(InquiryResponse).where(InquiryResponse.inquiry_id == inquiry.id).order_by(InquiryResponse.id)
        )],
        accesses=accesses,
    )


def _first_response(inquiry: Inquiry, when: datetime) -> None:
    if inquiry.first_response_at is None:
        inquiry.first_response_at = when


def change_status(inquiry: Inquiry, status: str, admin_id: int | None) -> None:
    """Move an inquiry along the pipeline; leaving 'new' the first time counts as the first response."""
    if status not in INQUIRY_STATUSES:
        raise InvalidStatus(status)
    if status == inquiry.status:
        return
    now = utcnow()
    if inquiry.status == "new":
        _first_response(inquiry, now)
    inquiry.status, inquiry.status_changed_at = status, now
    _log(inquiry, admin_id, f"status: {status}")


def add_note(inquiry: Inquiry, body: str, admin_id: int | None) -> InquiryNote:
    """Keep a private note on an inquiry, encrypted like the inquiry itself."""
    note = InquiryNote(inquiry_id=inquiry.id, admin_id=admin_id, body=body.strip())
    db.session.add(note)
    _log(inquiry, admin_id, "note added")
    return note


def reply_link(inquiry: Inquiry) -> str:
    """A mailto: link for answering from her own mail program (records nothing: we cannot know she sent it)."""
    subject = "Your message" if inquiry.discreet else f"Your inquiry to {profile().practice_name}"
    return f"mailto:{quote(inquiry.email, safe='@')}?subject={quote(subject)}"


def _responded(inquiry: Inquiry, admin_id: int | None, action: str) -> None:
    """A reply or call is the first response if none came before, and moves a new inquiry to 'contacted'."""
    now = utcnow()
    _first_response(inquiry, now)
    if inquiry.status == "new":
        inquiry.status, inquiry.status_changed_at = "contacted", now
    _log(inquiry, admin_id, action)


def send_reply(inquiry: Inquiry, body: str, *, quote_inquiry: bool, admin_id: int | None,
               booking_link: str = "") -> list[int]:
    """Queue her answer to the inquirer, threaded under the acknowledgement; returns the mail ids.

    It goes out from MAIL_FROM with Reply-To the practice inbox, quoting the inquiry if she chose.
    Her words are kept encrypted, like the inquiry's. Raises NoOneToReplyTo for a purged inquiry.
    """
    if not inquiry.email or inquiry.purged_at is not None:
        raise NoOneToReplyTo(inquiry.id)
    body = body.strip()
    thread_headers = {"In-Reply-To": inquiry.ack_message_id, "References": inquiry.ack_message_id} \
        if inquiry.ack_message_id else None
    row = outbox.queue_template(
        "inquiry_reply",
        to=inquiry.email,
        to_name=inquiry.name,
        from_=sender_for(inquiry),
        reply_to=compose.practice_inbox(),
        headers=thread_headers,
        inquiry=inquiry,
        body=body,
        quoted=(inquiry.message or "") if quote_inquiry else "",
        booking_link=booking_link,
    )
    db.session.add(InquiryResponse(inquiry_id=inquiry.id, admin_id=admin_id, kind="email",
                                   body=body, quoted_inquiry=quote_inquiry,
                                   mail_id=row.id))
    _responded(inquiry, admin_id, "replied by e-mail")
    return [row.id]


def referral_lists() -> dict[str, list[str]]:
    """The colleagues and low-cost options kept in the Practice settings, a line each, for the close-out reply."""
    row = profile()
    return {"colleagues": (row.referral_colleagues or "").splitlines(),
            "low_cost": (row.low_cost_options or "").splitlines()}


def record_invitation(inquiry: Inquiry, admin_id: int | None) -> None:
    """She invited a waitlisted person to take a place: a response like a reply."""
    _responded(inquiry, admin_id, "invited from the waitlist")


def record_call(inquiry: Inquiry, note: str, admin_id: int | None) -> None:
    """She called the inquirer: a first response, with an optional note kept encrypted."""
    note = note.strip()
    db.session.add(InquiryResponse(inquiry_id=inquiry.id, admin_id=admin_id, kind="call",
                                   body=note or None))
    _responded(inquiry, admin_id, "called")


def mark_spam(inquiry: Inquiry, admin_id: int | None) -> None:
    """Move an inquiry to the spam folder (it stays there until purged with the others)."""
    if not inquiry.spam:
        inquiry.spam, inquiry.spam_reason = True, "marked as spam by the practice"
        _log(inquiry, admin_id, "marked as spam")


def not_spam(inquiry: Inquiry, admin_id: int | None) -> list[int]:
    """Move an inquiry back to the inbox and send the forward and acknowledgement it never got."""
    if not inquiry.spam:
        return []
    inquiry.spam, inquiry.spam_reason = False, ""
    _log(inquiry, admin_id, "not spam")
    if inquiry.forwarded_at is not None or inquiry.purged_at is not None:
        return []
    return _queue_mails(inquiry)


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


# -- the beat jobs

def queue_nudges(now: datetime | None = None) -> list[int]:
    """Remind the practice, once per inquiry, of inquiries still unanswered on their reply-by day.

    One mail lists every inquiry that reached its day since the last run; returns the mail ids.
    """
    now = now or utcnow()
    today = business_days.practice_calendar().local_date(now)
    due = list(db.session.scalars(
        select(Inquiry)
        .where(Inquiry.status == "new", Inquiry.first_response_at.is_(None), Inquiry.spam.is_(False),
               Inquiry.purged_at.is_(None), Inquiry.nudged_at.is_(None), Inquiry.reply_by <= today)
        .order_by(Inquiry.urgent.desc(), Inquiry.reply_by, Inquiry.created_at)
    ))
    if not due:
        return []
    for inquiry in due:
        inquiry.nudged_at = now
    row = outbox.queue_template(
        NUDGE_KIND,
        to=_practice_inbox(),
        due=[(inquiry, admin_url(inquiry), business_days.long_date(inquiry.reply_by), time_left(inquiry, now))
             for inquiry in due],
        names=current_app.config["INQUIRY_FORWARD_MODE"] == "full",
        list_url=f"{current_app.config['BASE_URL']}/admin/inquiries",
    )
    return [row.id]


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
    cutoff = now - timedelta(hours=current_app.config["INQUIRY_DIGEST_AFTER_HOURS"])
    waiting = list(db.session.scalars(
        select(Inquiry)
        .where(Inquiry.status == "new", Inquiry.spam.is_(False), Inquiry.purged_at.is_(None),
               Inquiry.created_at <= cutoff)
        .order_by(Inquiry.urgent.desc(), Inquiry.created_at)
    ))
    if not waiting:
        return []
    for inquiry in waiting:
        inquiry.digest_sent_at = now
    row = outbox.queue_template(
        DIGEST_KIND,
        to=_practice_inbox(),
        waiting=[(inquiry, admin_url(inquiry), describe_wait(now - inquiry.created_at)) for inquiry in waiting],
        hours=current_app.config["INQUIRY_DIGEST_AFTER_HOURS"],
        names=current_app.config["INQUIRY_FORWARD_MODE"] == "full",
        list_url=f"{current_app.config['BASE_URL']}/admin/inquiries",
    )
    return [row.id]


def purge_expired(now: datetime | None = None) -> int:
    """Erase what inquirers wrote (name, address, phone, message, notes, sent mail) after
    INQUIRY_RETENTION_DAYS; the rows stay, so counts by status and response times survive.
    Returns how many inquiries were purged."""
    now = now or utcnow()
    cutoff = now - timedelta(days=current_app.config["INQUIRY_RETENTION_DAYS"])
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
