"""Bounces and complaints that arrive after the relay said 250: record them, stop mail to the address.

Every report (a provider's webhook, a DSN or ARF message piped in) becomes a `Report` and goes
through `record`:

- a hard bounce or a complaint suppresses the address at once (a complaint also unsubscribes the
  reader, with a consent record saying so);
- soft bounces are counted per address and suppress it after BOUNCE_SOFT_LIMIT within
  BOUNCE_SOFT_WINDOW_DAYS;
- an unsubscribe reported by a provider unsubscribes the reader.

Only the address's hash, the kind, a short reason with no address in it and the issue are kept.
The same provider event recorded twice counts once.

VERP: with BOUNCE_VERP on, each message leaves with its own signed return path
(`newsletter+b-d123-1f2e3d4c5b6a@example.org` for delivery 123), so a bounce names its reader even
when the bounce message itself is vague.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from newsletter import mail, suppression
from newsletter.extensions import db
from newsletter.models import BounceEvent, Delivery, OutgoingMail, Subscriber, utcnow
from newsletter.models.bounces import BOUNCE_KINDS, COMPLAINT, HARD, SOFT, UNSUBSCRIBE
from newsletter.models.issues import DELIVERY_SENT
from newsletter.models.readers import ACTIVE, PENDING, UNSUBSCRIBED

log = logging.getLogger(__name__)

HEALTH_WINDOW = timedelta(days=30)
# Gmail and Yahoo ask bulk senders to stay under 0.1 % complaints and reject above 0.3 %.
WARN_COMPLAINT_RATE = 0.001
PAUSE_COMPLAINT_RATE = 0.003
# One complaint alone never pauses sending: with a few hundred readers it would be "0.3 %".
PAUSE_MIN_COMPLAINTS = 2
PAUSE_REASON = ("Paused because more than 0.3 % of readers marked recent issues as spam in the last 30 days. "
                "Mailbox providers start refusing mail above that. Look at who complained on the issue pages, "
                "then resume when you are ready.")

VERP_MARK = "+b-"
_VERP_RE = re.compile(r"\+b-([dm])(\d{1,12})-([0-9a-f]{12})@", re.IGNORECASE)
_ADDRESS_RE = re.compile(r"\S+@\S+")


@dataclass
class Report:
    """One bounce or complaint as a provider or a DSN tells it; whatever is known of whom it concerns."""

    provider: str
    kind: str
    email: str = ""
    event_id: str | None = None
    issue_id: int | None = None
    delivery_id: int | None = None
    mail_id: int | None = None
    reason: str = ""


# -- VERP

def _verp_signature(kind: str, number: int) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, f"newsletter.verp:{kind}{number}".encode(), hashlib.sha256).hexdigest()[:12]


def verp(sender: str, *, delivery_id: int | None = None, mail_id: int | None = None) -> str:
    """The envelope sender for one message: `sender` itself unless BOUNCE_VERP is on."""
    config = current_app.config
    if not config["BOUNCE_VERP"]:
        return sender
    kind, number = ("d", delivery_id) if delivery_id is not None else ("m", mail_id)
    local, _, domain = sender.rpartition("@")
    return f"{local}{VERP_MARK}{kind}{number}-{_verp_signature(kind, number)}@{config['BOUNCE_DOMAIN'] or domain}"


def read_verp(address: str) -> tuple[str, int] | None:
    """("d", delivery id) or ("m", outgoing mail id) from a return path we signed, else None."""
    found = _VERP_RE.search(address or "")
    if not found:
        return None
    kind, number, signature = found.group(1).lower(), int(found.group(2)), found.group(3).lower()
    if not hmac.compare_digest(signature, _verp_signature(kind, number)):
        return None
    return kind, number


def from_verp(addresses: list[str]) -> dict:
    """Report fields (delivery_id or mail_id) from the first address carrying a valid VERP token."""
    for address in addresses:
        found = read_verp(address)
        if found:
            return {"delivery_id": found[1]} if found[0] == "d" else {"mail_id": found[1]}
    return {}


# -- recording

def short_reason(*parts: object) -> str:
    """A reason fit to keep: the parts joined, anything that looks like an address removed."""
    text = " ".join(str(part) for part in parts if part not in (None, ""))
    return mail.one_line(_ADDRESS_RE.sub("[address]", text), 190)


def _resolve(report: Report) -> tuple[str, int | None]:
    """The address and issue a report concerns: a signed delivery or mail id wins over the address given."""
    email, issue_id = report.email, report.issue_id
    if report.delivery_id is not None:
        row = db.session.execute(
            select(Delivery.issue_id, Subscriber.email)
            .outerjoin(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Delivery.id == report.delivery_id)
        ).first()
        if row is not None:
            issue_id = row.issue_id
            email = row.email or email
    elif report.mail_id is not None:
        recipient = db.session.scalar(select(OutgoingMail.recipient).where(OutgoingMail.id == report.mail_id))
        email = recipient or email
    return (email or "").strip(), issue_id


def record(report: Report) -> str:
    """Store the report and act on it; the caller commits. Returns what happened, in a word:
    "suppressed", "counted" (a soft bounce under the limit), "unsubscribed", "duplicate" or "unknown"."""
    if report.kind not in BOUNCE_KINDS:
        raise ValueError(f"unknown bounce kind {report.kind!r}")
    email, issue_id = _resolve(report)
    if not email or "@" not in email:
        return "unknown"
    event_id = (report.event_id or "")[:200] or None
    if event_id and db.session.scalar(select(BounceEvent.id).where(
            BounceEvent.provider == report.provider, BounceEvent.provider_event_id == event_id)):
        return "duplicate"
    digest = suppression.email_hash(email)
    event = BounceEvent(provider=report.provider, provider_event_id=event_id, kind=report.kind,
                        email_hash=digest, issue_id=issue_id, reason=short_reason(report.reason))
    try:
        with db.session.begin_nested():
            db.session.add(event)
    except IntegrityError:  # the same event, recorded meanwhile by a concurrent call
        return "duplicate"
    log.info("%s %s recorded from %s (issue %s)", report.kind, "report", report.provider, issue_id)
    return _act(report.kind, email, digest, event)


def _act(kind: str, email: str, digest: str, event: BounceEvent) -> str:
    config = current_app.config
    if kind == HARD:
        suppression.suppress(email, "bounced", f"hard bounce ({event.provider})")
        return "suppressed"
    if kind == COMPLAINT:
        suppression.suppress(email, "complained", f"marked as spam ({event.provider})")
        return "suppressed"
    if kind == UNSUBSCRIBE:
        return "unsubscribed" if _unsubscribe(email, event.provider) else "unknown"
    since = utcnow() - timedelta(days=config["BOUNCE_SOFT_WINDOW_DAYS"])
    soft = db.session.scalar(select(func.count()).select_from(BounceEvent).where(
        BounceEvent.email_hash == digest, BounceEvent.kind == SOFT, BounceEvent.created_at >= since))
    if config["BOUNCE_SOFT_LIMIT"] and soft >= config["BOUNCE_SOFT_LIMIT"]:
        suppression.suppress(email, "bounced", f"{soft} soft bounces in {config['BOUNCE_SOFT_WINDOW_DAYS']} days")
        return "suppressed"
    return "counted"


def _unsubscribe(email: str, provider: str) -> bool:
    """The reader asked their mail provider (not our link) to stop: unsubscribe them, with a record."""
    reader = db.session.scalar(select(Subscriber).where(func.lower(Subscriber.email) == email.lower()))
    if reader is None:
        return False
    if reader.status in (ACTIVE, PENDING):
        reader.status = UNSUBSCRIBED
        reader.unsubscribed_at = utcnow()
        reader.confirm_nonce = None
        reader.pending_since = None
        db.session.add(suppression.consent_event(reader, "unsubscribe", f"unsubscribed through {provider}"))
    return True


# -- what the admin sees, and when sending stops

@dataclass
class Health:
    sent: int
    complaints: int
    hard: int
    soft: int

    @property
    def complaint_rate(self) -> float:
        return self.complaints / self.sent if self.sent else 0.0

    @property
    def warn(self) -> bool:
        return self.complaints > 0 and self.complaint_rate > WARN_COMPLAINT_RATE

    @property
    def pause(self) -> bool:
        return self.complaints >= PAUSE_MIN_COMPLAINTS and self.complaint_rate > PAUSE_COMPLAINT_RATE


def _kind_counts(*conditions) -> dict[str, int]:
    rows = db.session.execute(
        select(BounceEvent.kind, func.count()).where(*conditions).group_by(BounceEvent.kind)
    ).all()
    return dict(rows)


def health(now: datetime | None = None) -> Health:
    """Issue mail sent, complaints and bounces in the last 30 days (the rate Gmail and Yahoo watch)."""
    since = (now or utcnow()) - HEALTH_WINDOW
    counts = _kind_counts(BounceEvent.created_at >= since)
    sent = db.session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.status == DELIVERY_SENT, Delivery.sent_at >= since))
    return Health(sent=sent or 0, complaints=counts.get(COMPLAINT, 0), hard=counts.get(HARD, 0),
                  soft=counts.get(SOFT, 0))


def issue_health(issue_id: int) -> Health:
    """One issue's sent count, complaints and bounces."""
    counts = _kind_counts(BounceEvent.issue_id == issue_id)
    sent = db.session.scalar(select(func.count()).select_from(Delivery).where(
        Delivery.issue_id == issue_id, Delivery.status == DELIVERY_SENT))
    return Health(sent=sent or 0, complaints=counts.get(COMPLAINT, 0), hard=counts.get(HARD, 0),
                  soft=counts.get(SOFT, 0))


def should_pause(issue_id: int) -> str:
    """Why sending `issue_id` must stop now (the 30-day complaint rate is past 0.3 %), or "".

    Cheap when nobody complained: the deliveries are counted only once there are complaints."""
    since = utcnow() - HEALTH_WINDOW
    complaints = db.session.scalar(select(func.count()).select_from(BounceEvent).where(
        BounceEvent.kind == COMPLAINT, BounceEvent.created_at >= since))
    if complaints < PAUSE_MIN_COMPLAINTS:
        db.session.commit()
        return ""
    paused = health().pause
    db.session.commit()
    if paused:
        log.warning("issue %s: complaint rate above %.1f %%, pausing", issue_id, PAUSE_COMPLAINT_RATE * 100)
    return PAUSE_REASON if paused else ""
