"""Taking an inquiry in: the contact form's submit, its spam checks and duplicates, and the worker's claim
on composing its mails.

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
from datetime import date, timedelta

from sqlalchemy import select, update

from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.inquiries import business_days, routing, safety
from newsletter.mail import compose
from newsletter.mail.addresses import normalize as normalize_email
from newsletter.models import Inquiry, utcnow
from newsletter.models.inquiries import HEARD_FROM
from newsletter.readers.subscriptions import Origin

_LINK = re.compile(r"https?://|www\.|\[url|<a\s", re.IGNORECASE)
# Words that real inquiries to a couples therapist do not use and advertising does.
_SPAM_WORDS = re.compile(
    r"\b(seo|backlinks?|casino|viagra|cialis|crypto(currency)?|bitcoin|forex|porn|loans?|guest post|"
    r"web design services|rank (your|on) google|increase (your )?traffic)\b",
    re.IGNORECASE,
)
MAX_LINKS = 2
DUPLICATE_WINDOW = timedelta(minutes=30)


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
           honeypot_filled: bool = False, details: InquiryDetails | None = None, waitlist: bool = False,
           clinician: str = "") -> Submitted:
    """Store an inquiry; raises InvalidAddress. Its forward and acknowledgement are composed later, by
    `queue_mails`, so that the request does no more than one encryption and one INSERT.

    Suspected spam (a filled hidden field, too many links, advertising words) is kept in the spam
    folder and nothing is sent. A message that speaks of a crisis is never treated as spam. With
    `waitlist` (the practice takes no new clients) the person joins the waitlist instead of being
    promised a reply by a day. `clinician` (a slug, or "" for whoever fits) decides who answers it
    (`routing.route`); an unknown one raises routing.UnknownClinician and stores nothing.
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
        inquiry.reply_by = business_days.practice_calendar().reply_by(utcnow(), settings().inquiry_reply_business_days)
    routing.route(inquiry, clinician)
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
    if not claimed:
        return []
    inquiry = db.session.get(Inquiry, inquiry_id)
    return routing.forward_and_ack(inquiry)


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
    return hmac.new(settings().secret_key.encode(), text, hashlib.sha256).hexdigest()

