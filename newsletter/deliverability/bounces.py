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

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_string
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from email.utils import parseaddr

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.mail import compose, suppression, verp
from newsletter.models import BounceEvent, ComplaintPause, Delivery, Issue, OutgoingMail, Subscriber, utcnow
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
                "then resume when you are ready: it pauses again only if more readers complain.")

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


def from_verp(addresses: list[str]) -> dict:
    """Report fields (delivery_id or mail_id) from the first address carrying a valid VERP token."""
    for address in addresses:
        found = verp.read_verp(address)
        if found:
            return {"delivery_id": found[1]} if found[0] == "d" else {"mail_id": found[1]}
    return {}


# -- recording

def short_reason(*parts: object) -> str:
    """A reason fit to keep: the parts joined, anything that looks like an address removed."""
    text = " ".join(str(part) for part in parts if part not in (None, ""))
    return compose.one_line(_ADDRESS_RE.sub("[address]", text), 190)


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
    if issue_id is not None and db.session.get(Issue, issue_id) is None:
        issue_id = None  # a Message-ID naming an issue deleted since, or never ours
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
    log.info("bounce report recorded: %s from %s (issue %s)", report.kind, report.provider, issue_id)
    return _act(report.kind, email, digest, event)


def _act(kind: str, email: str, digest: str, event: BounceEvent) -> str:
    config = settings()
    if kind == HARD:
        suppression.suppress(email, "bounced", f"hard bounce ({event.provider})")
        return "suppressed"
    if kind == COMPLAINT:
        suppression.suppress(email, "complained", f"marked as spam ({event.provider})")
        return "suppressed"
    if kind == UNSUBSCRIBE:
        return "unsubscribed" if _unsubscribe(email, event.provider) else "unknown"
    since = utcnow() - timedelta(days=config.bounce_soft_window_days)
    soft = db.session.scalar(select(func.count()).select_from(BounceEvent).where(
        BounceEvent.email_hash == digest, BounceEvent.kind == SOFT, BounceEvent.created_at >= since))
    if config.bounce_soft_limit and soft >= config.bounce_soft_limit:
        suppression.suppress(email, "bounced", f"{soft} soft bounces in {config.bounce_soft_window_days} days")
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
    """Why sending `issue_id` must stop now (the 30-day complaint rate is past 0.3 %), or "". Commits.

    An issue she resumed after such a pause goes on until more complaints come in. Cheap when
    nobody complained: the deliveries are counted only once there are complaints."""
    since = utcnow() - HEALTH_WINDOW
    complaints = db.session.scalar(select(func.count()).select_from(BounceEvent).where(
        BounceEvent.kind == COMPLAINT, BounceEvent.created_at >= since))
    acknowledged = db.session.scalar(select(ComplaintPause.complaints).where(ComplaintPause.issue_id == issue_id))
    if complaints < PAUSE_MIN_COMPLAINTS or complaints <= (acknowledged or 0) or not health().pause:
        db.session.commit()
        return ""
    db.session.execute(delete(ComplaintPause).where(ComplaintPause.issue_id == issue_id))
    db.session.add(ComplaintPause(issue_id=issue_id, complaints=complaints))
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent batch of the same issue got there first: it pauses too
        db.session.rollback()
    log.warning("issue %s: complaint rate above %.1f %%, pausing", issue_id, PAUSE_COMPLAINT_RATE * 100)
    return PAUSE_REASON


# -- bounce and complaint messages piped in (RFC 3464 DSN, RFC 5965 ARF)

class UnreadableReport(ValueError):
    """The message is not a delivery status or feedback report we can read."""


# A DSN or ARF report is a few KB (it quotes at most the original message): a bigger input is refused unread.
MAX_REPORT_BYTES = 10 * 1024 * 1024


_ISSUE_MESSAGE_ID = re.compile(r"^<?issue-(\d{1,12})\.")
# Headers of the report itself where an MTA leaves the address it was delivered to: our VERP return path.
_ENVELOPE_HEADERS = ("To", "X-Original-To", "Delivered-To", "Envelope-To", "Original-Recipient")
# Feedback types that are a reader saying "spam" (not "not-spam", nor an authentication failure report).
_COMPLAINT_TYPES = {"abuse", "fraud", "virus", "other"}


def read_report(raw: bytes) -> list[Report]:
    """Reports from a DSN (report-type=delivery-status) or an ARF complaint (report-type=feedback-report)."""
    if len(raw) > MAX_REPORT_BYTES:
        raise UnreadableReport(f"it is larger than {MAX_REPORT_BYTES // 2**20} MB, far more than a bounce or "
                               "complaint report")
    message = BytesParser(policy=compat32).parsebytes(raw)
    if message.get_content_type() != "multipart/report" or not message.is_multipart():
        raise UnreadableReport("this is not a bounce or complaint report (no multipart/report part)")
    report_type = (message.get_param("report-type") or "").lower()
    envelope = [str(value) for name in _ENVELOPE_HEADERS for value in message.get_all(name, [])]
    original = _original_headers(message)
    known = {"issue_id": issue_from_message_id(original.get("Message-ID") if original is not None else None)}
    if report_type == "delivery-status":
        return _dsn_reports(message, envelope, original, known)
    if report_type == "feedback-report":
        return _arf_reports(message, envelope, original, known)
    raise UnreadableReport(f"this report is {report_type or 'of no type'}, neither a bounce nor a complaint")


def _fields(part: Message) -> list[Message]:
    """A message/delivery-status or message/feedback-report part as its blocks of fields."""
    payload = part.get_payload()
    if isinstance(payload, list):
        return [block for block in payload if isinstance(block, Message)]
    text = payload if isinstance(payload, str) else ""
    return [message_from_string(block.strip() + "\n") for block in re.split(r"\n\s*\n", text.replace("\r\n", "\n"))
            if block.strip()]


def _part(message: Message, *content_types: str) -> Message | None:
    return next((part for part in message.walk() if part.get_content_type() in content_types), None)


def _original_headers(message: Message) -> Message | None:
    """The headers of the message that bounced or was complained about, when the report returns them."""
    part = _part(message, "message/rfc822", "text/rfc822-headers")
    if part is None:
        return None
    payload = part.get_payload()
    if isinstance(payload, list):
        return payload[0] if payload and isinstance(payload[0], Message) else None
    return message_from_string(payload if isinstance(payload, str) else "")


def issue_from_message_id(message_id: object) -> int | None:
    """The issue an issue's Message-ID (personalize.issue_message_id) names; None for any other."""
    found = _ISSUE_MESSAGE_ID.search(str(message_id or "").strip())
    return int(found.group(1)) if found else None


def _address(value: object) -> str:
    """The address of a field like "rfc822; dana@example.org" or "Dana <dana@example.org>"."""
    text = str(value or "").split(";", 1)[-1].strip()
    return parseaddr(text)[1]


def _dsn_reports(message: Message, envelope: list[str], original: Message | None, known: dict) -> list[Report]:
    part = _part(message, "message/delivery-status")
    if part is None:
        raise UnreadableReport("this delivery report has no message/delivery-status part")
    blocks = _fields(part)
    if len(blocks) < 2:
        raise UnreadableReport("this delivery report names no recipient")
    reports = []
    for block in blocks[1:]:
        action, status = str(block.get("Action", "")).strip().lower(), str(block.get("Status", "")).strip()
        if action == "failed" and status.startswith("5"):
            kind = HARD
        elif action == "delayed" or (action == "failed" and status.startswith("4")):
            kind = SOFT
        else:
            continue
        recipient = _address(block.get("Final-Recipient")) or _address(block.get("Original-Recipient"))
        verp_fields = from_verp(envelope + [str(block.get("Original-Recipient", ""))])
        reports.append(Report(
            "dsn", kind, email=recipient or _address(original.get("To") if original is not None else ""),
            event_id=f"{message.get('Message-ID', '')}:{recipient.lower()}" if message.get("Message-ID") else None,
            reason=short_reason("DSN", action, status), **{**known, **verp_fields}))
    return reports


def _arf_reports(message: Message, envelope: list[str], original: Message | None, known: dict) -> list[Report]:
    part = _part(message, "message/feedback-report")
    if part is None:
        raise UnreadableReport("this complaint report has no message/feedback-report part")
    reporter = _address(message.get("From"))
    if not _trusted_reporter(reporter):
        raise UnreadableReport(f"this complaint report comes from {reporter or 'no sender'}, which is not a complaint "
                               "reporter of this practice (COMPLAINT_REPORTERS)")
    fields = next(iter(_fields(part)), Message())
    feedback_type = str(fields.get("Feedback-Type", "")).strip().lower()
    if feedback_type not in _COMPLAINT_TYPES:
        return []
    candidates = [str(fields.get("Original-Mail-From", "")), *envelope]
    if original is not None:
        candidates.append(str(original.get("Return-Path", "")))
    recipient = (_address(fields.get("Original-Rcpt-To")) or _address(fields.get("Removal-Recipient"))
                 or _address(original.get("To") if original is not None else ""))
    return [Report("arf", COMPLAINT, email=recipient,
                   event_id=str(message.get("Message-ID", "")).strip() or None,
                   reason=short_reason("ARF", feedback_type), **{**known, **from_verp(candidates)})]


def complaint_reporters() -> set[str]:
    """Addresses and domains whose ARF reports count: COMPLAINT_REPORTERS, plus the relay's own domain."""
    config = settings()
    entries = {entry.strip().lower().lstrip("@") for entry in config.complaint_reporters.split(",")}
    relay = config.smtp_host.strip().lower()
    if relay.count(".") >= 2 and not relay.replace(".", "").isdigit():
        entries.add(relay.split(".", 1)[1])  # smtp.mailgun.org: reports from mailgun.org
    return {entry for entry in entries if entry}


def _trusted_reporter(address: str) -> bool:
    """Whether `address` is a configured reporter, or at one of their domains (or a subdomain of one)."""
    address = address.strip().lower()
    domain = address.rpartition("@")[2]
    return bool(domain) and any(address == entry or domain == entry or domain.endswith("." + entry)
                                for entry in complaint_reporters())


def ingest(raw: bytes) -> list[tuple[Report, str]]:
    """Read a DSN or ARF message and record each report in it; the caller commits."""
    return [(report, record(report)) for report in read_report(raw)]
