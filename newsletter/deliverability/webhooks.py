"""Bounce and complaint webhooks from mail relays, each verified as its provider documents it.

Every body is untrusted until verified. `_guard_body` runs before any route of this blueprint (so a
provider added later inherits it): it refuses a body over MAX_BODY_BYTES (413) and JSON nested deeper
than MAX_JSON_DEPTH (400) before anything parses it. Then each route verifies as its provider
documents it, over the raw body where the provider signs the raw body, and only then acts.

A call that cannot be verified (forged, stale, replayed, or for a provider that is not configured)
changes nothing, gets a 4xx and is logged without any address. A verified call is turned into
`bounces.Report`s and recorded; events older than EVENT_MAX_AGE and events we do not act on are
acknowledged (200) so the provider does not retry them. Each event is recorded once: by the
provider's event id, or one derived from its content when it has none. See docs/deliverability.md.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import re
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from flask import Blueprint, jsonify, request
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError

from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.core.web_extensions import csrf, limiter
from newsletter.deliverability import bounces
from newsletter.deliverability.bounces import Report
from newsletter.models import WebhookNonce, utcnow
from newsletter.models.bounces import COMPLAINT, HARD, SOFT, UNSUBSCRIBE

log = logging.getLogger(__name__)

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
csrf.exempt(bp)
# Providers batch and retry; this only stops a flood.
limiter.limit("300 per minute")(bp)

MAX_BODY_BYTES = 1024 * 1024
MAX_JSON_DEPTH = 32
# A signed request (Mailgun's signature timestamp, SendGrid's timestamp header) older than this is a replay.
MAX_AGE = timedelta(minutes=5)
# Providers retry a failed delivery for up to a day (SendGrid 24 h, Mailgun 8 h); an event older is ignored.
EVENT_MAX_AGE = timedelta(days=3)
# SNS retries a notification with its original Timestamp for a while; older than this is a replay.
SNS_MAX_AGE = timedelta(hours=1)
# Only certificates and subscription links on Amazon's SNS hosts are fetched. Tests set the
# SNS_URL_PATTERN config key (never read from the environment) to their local server.
AWS_SNS_URL = r"https://sns\.[a-z0-9-]+\.amazonaws\.com(\.cn)?"
FETCH_TIMEOUT = 10


class Rejected(Exception):
    """The call is not verified: it changes nothing."""

    def __init__(self, status: int, why: str):
        super().__init__(why)
        self.status = status


@bp.errorhandler(Rejected)
def _rejected(error: Rejected):
    log.warning("webhook %s rejected from %s: %s", request.path, request.remote_addr, error)
    return jsonify(error=str(error)), error.status


@bp.before_request
def _guard_body() -> None:
    """Bound what an unverified caller can make us read and parse: the size, then the JSON nesting."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise Rejected(413, "the body is too large")
    request.max_content_length = MAX_BODY_BYTES  # also caps a body sent without a Content-Length
    if _too_deep(request.get_data()):
        raise Rejected(400, "the body is nested too deeply")


# A JSON string (to its closing quote, or to the end when there is none) or a bracket: one linear scan.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"?|[\[\]{}]')


def _too_deep(document: bytes) -> bool:
    """Whether the brackets of `document` (strings left out) nest deeper than MAX_JSON_DEPTH, unparsed."""
    depth = 0
    for token in _JSON_TOKEN.finditer(document):
        if token.group() in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif token.group() in (b"]", b"}"):
            depth -= 1
    return False


def _record_all(reports: list[Report]) -> dict:
    outcomes = [bounces.record(report) for report in reports]
    db.session.commit()
    return {"recorded": sum(outcome not in ("duplicate", "unknown") for outcome in outcomes)}


def _parse_json(document: bytes, what: str = "the body"):
    """A JSON document parsed, its nesting bounded first (the body's was, by _guard_body)."""
    if _too_deep(document):
        raise Rejected(400, f"{what} is nested too deeply")
    try:
        return json.loads(document)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Rejected(400, f"{what} is not JSON") from exc


def _json_body():
    return _parse_json(request.get_data())


def _event_id(given: object, event: object) -> str:
    """The provider's id for an event, or one derived from its content: a replay then counts once."""
    if given not in (None, ""):
        return str(given)
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def _too_old(when: datetime | None) -> bool:
    """An event older than EVENT_MAX_AGE (a replay, or a retry long overdue); an event of unknown age is kept."""
    return when is not None and datetime.now(UTC) - when > EVENT_MAX_AGE


def _unix_time(value: object) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None


def _iso_time(value: object) -> datetime | None:
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _setting(name: str) -> str:
    value = getattr(settings(), name.lower())
    if not value:
        raise Rejected(404, f"{name} is not set: this webhook is off")
    return value


# -- Mailgun: HMAC-SHA256(signing key, timestamp + token), fresh timestamp, each token once

MAILGUN_KINDS = {"complained": COMPLAINT, "unsubscribed": UNSUBSCRIBE}


@bp.post("/mailgun")
def mailgun():
    key = _setting("MAILGUN_WEBHOOK_SIGNING_KEY")
    body = _json_body()
    signature = body.get("signature") if isinstance(body, dict) else None
    event = body.get("event-data") if isinstance(body, dict) else None
    if not isinstance(signature, dict) or not isinstance(event, dict):
        raise Rejected(400, "not a Mailgun webhook")
    timestamp, token, given = (str(signature.get(name, "")) for name in ("timestamp", "token", "signature"))
    expected = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    if not token or not hmac.compare_digest(expected.encode(), given.lower().encode()):
        raise Rejected(403, "bad signature")
    _check_fresh(timestamp, MAX_AGE)
    _use_once("mailgun", token)
    return jsonify(_record_all(_mailgun_reports(event)))


def _mailgun_reports(event: dict) -> list[Report]:
    name = str(event.get("event"))
    if name == "failed":
        kind = HARD if event.get("severity") == "permanent" else SOFT
    else:
        kind = MAILGUN_KINDS.get(name)
    if kind is None or _too_old(_unix_time(event.get("timestamp"))):
        return []
    status, envelope, message = (_object(event, key) for key in ("delivery-status", "envelope", "message"))
    message_id = _object(message, "headers").get("message-id")
    return [Report("mailgun", kind, email=str(event.get("recipient", "")), event_id=_event_id(event.get("id"), event),
                   reason=bounces.short_reason(name, event.get("reason"), status.get("code")),
                   issue_id=bounces.issue_from_message_id(message_id),
                   **bounces.from_verp([str(envelope.get("sender", ""))]))]


def _object(data: dict, key: str) -> dict:
    """data[key] when it is a JSON object, else an empty one (payloads are not trusted to be well formed)."""
    value = data.get(key) if isinstance(data, dict) else None
    return value if isinstance(value, dict) else {}


def _check_fresh(timestamp: str, max_age: timedelta) -> None:
    try:
        sent = float(timestamp)
    except ValueError as exc:
        raise Rejected(400, "bad timestamp") from exc
    if not math.isfinite(sent) or abs(time.time() - sent) > max_age.total_seconds():
        raise Rejected(403, "stale timestamp")


def _use_once(provider: str, nonce: str) -> None:
    """Refuse a nonce seen before; forget those older than a day (stale by then anyway)."""
    db.session.execute(delete(WebhookNonce).where(WebhookNonce.created_at < utcnow() - timedelta(days=1)))
    try:
        with db.session.begin_nested():
            db.session.add(WebhookNonce(provider=provider, nonce=nonce[:200]))
    except IntegrityError as exc:
        db.session.rollback()
        raise Rejected(403, "replayed token") from exc


# -- Postmark: HTTP basic auth

# A DMARC policy bounce is our configuration's fault, not the reader's address: not counted.
POSTMARK_KINDS = {
    "HardBounce": HARD, "BadEmailAddress": HARD, "ManuallyDeactivated": HARD,
    "SoftBounce": SOFT, "Transient": SOFT, "DnsError": SOFT, "SpamNotification": SOFT, "VirusNotification": SOFT,
    "SpamComplaint": COMPLAINT,
    "Unsubscribe": UNSUBSCRIBE,
}


@bp.post("/postmark")
def postmark():
    username, password = _setting("WEBHOOK_USERNAME"), _setting("WEBHOOK_PASSWORD")
    auth = request.authorization
    given_user = (auth.username or "") if auth and auth.type == "basic" else ""
    given_password = (auth.password or "") if auth and auth.type == "basic" else ""
    # Both compared, always, so the time taken says nothing about which one was wrong.
    user_ok = hmac.compare_digest(given_user.encode(), username.encode())
    if not (hmac.compare_digest(given_password.encode(), password.encode()) and user_ok):
        raise Rejected(401, "bad credentials")
    body = _json_body()
    if not isinstance(body, dict):
        raise Rejected(400, "not a Postmark webhook")
    record_type = str(body.get("RecordType"))
    kind = COMPLAINT if record_type == "SpamComplaint" else POSTMARK_KINDS.get(str(body.get("Type")))
    if record_type not in ("Bounce", "SpamComplaint") or kind is None or _too_old(_iso_time(body.get("BouncedAt"))):
        return jsonify(recorded=0)
    report = Report("postmark", kind, email=str(body.get("Email", "")), event_id=_event_id(body.get("ID"), body),
                    reason=bounces.short_reason(body.get("Type")))
    return jsonify(_record_all([report]))


# -- Amazon SES through SNS: the SNS signature, with Amazon's certificate, from our topics only

SNS_SIGNED_FIELDS = {
    "Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    "SubscriptionConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
    "UnsubscribeConfirmation": ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"),
}
SNS_HASHES = {"1": hashes.SHA1, "2": hashes.SHA256}


@bp.post("/ses")
def ses():
    topics = {arn.strip() for arn in _setting("SES_SNS_TOPIC_ARNS").split(",") if arn.strip()}
    message = _json_body()
    if not isinstance(message, dict) or str(message.get("Type")) not in SNS_SIGNED_FIELDS:
        raise Rejected(400, "not an SNS message")
    _verify_sns(message)
    if str(message.get("TopicArn")) not in topics:
        raise Rejected(403, "a topic that is not ours (SES_SNS_TOPIC_ARNS)")
    if message["Type"] == "SubscriptionConfirmation":
        url = str(message.get("SubscribeURL", ""))
        if not _on_sns_host(url):
            raise Rejected(403, "SubscribeURL is not on an SNS host")
        import requests  # only here and for the certificate: its import costs each web process 8 MB

        try:
            requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False).raise_for_status()
        except requests.RequestException as exc:
            log.warning("SNS subscription could not be confirmed: %s", type(exc).__name__)
            return jsonify(error="could not confirm the subscription"), 502
        log.info("SNS subscription to %s confirmed", message["TopicArn"])
        return jsonify(confirmed=True)
    if message["Type"] == "UnsubscribeConfirmation":
        return jsonify(recorded=0)
    notification = _parse_json(str(message.get("Message") or "").encode(), "the SES notification")
    return jsonify(_record_all(_ses_reports(notification, _event_id(message.get("MessageId"), notification))))


def _verify_sns(message: dict) -> None:
    version = str(message.get("SignatureVersion", ""))
    if version not in SNS_HASHES:
        raise Rejected(400, "unknown SNS signature version")
    cert_url = str(message.get("SigningCertURL", ""))
    if not (_on_sns_host(cert_url) and urlsplit(cert_url).path.endswith(".pem")):
        raise Rejected(403, "the signing certificate is not on an SNS host")
    signed = "".join(f"{name}\n{message[name]}\n" for name in SNS_SIGNED_FIELDS[message["Type"]] if name in message)
    try:
        signature = base64.b64decode(str(message.get("Signature", "")), validate=True)
        _sns_certificate(cert_url).public_key().verify(
            signature, signed.encode(), padding.PKCS1v15(), SNS_HASHES[version]())
    except (InvalidSignature, binascii.Error, TypeError, ValueError) as exc:
        raise Rejected(403, "bad signature") from exc
    try:
        stamp = datetime.fromisoformat(str(message.get("Timestamp", "")).replace("Z", "+00:00"))
    except ValueError as exc:
        raise Rejected(400, "bad timestamp") from exc
    if stamp.tzinfo is None or datetime.now(UTC) - stamp > SNS_MAX_AGE:
        raise Rejected(403, "stale message")


def _on_sns_host(url: str) -> bool:
    parts = urlsplit(url)
    pattern = settings().sns_url_pattern or AWS_SNS_URL
    return re.fullmatch(pattern, f"{parts.scheme}://{parts.netloc}") is not None


@lru_cache(maxsize=16)
def _sns_certificate(url: str) -> x509.Certificate:
    """Amazon's signing certificate, fetched once per URL and process (raises on any trouble)."""
    import requests

    try:
        response = requests.get(url, timeout=FETCH_TIMEOUT, allow_redirects=False)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise ValueError("the signing certificate could not be fetched") from exc
    return x509.load_pem_x509_certificate(response.content)


SES_BOUNCE_KINDS = {"Permanent": HARD, "Transient": SOFT, "Undetermined": SOFT}


def _ses_reports(notification: dict, message_id: str) -> list[Report]:
    """Reports from SES's notification (notificationType) or event publishing (eventType) JSON."""
    if not isinstance(notification, dict):
        return []
    kind_name = str(notification.get("notificationType") or notification.get("eventType"))
    mail_info = _object(notification, "mail")
    known = {"issue_id": bounces.issue_from_message_id(_object(mail_info, "commonHeaders").get("messageId")),
             **bounces.from_verp([str(mail_info.get("source", ""))])}
    if kind_name == "Bounce":
        detail = _object(notification, "bounce")
        kind = SES_BOUNCE_KINDS.get(str(detail.get("bounceType")), SOFT)
        recipients = detail.get("bouncedRecipients") or []
        reason = (detail.get("bounceType"), detail.get("bounceSubType"))
    elif kind_name == "Complaint":
        detail = _object(notification, "complaint")
        kind, recipients = COMPLAINT, detail.get("complainedRecipients") or []
        reason = ("complaint", detail.get("complaintFeedbackType"))
    else:
        return []
    if _too_old(_iso_time(detail.get("timestamp") or mail_info.get("timestamp"))):
        return []
    reports = []
    for recipient in recipients if isinstance(recipients, list) else []:
        address = str(recipient.get("emailAddress", "")) if isinstance(recipient, dict) else ""
        status = recipient.get("status") if isinstance(recipient, dict) else None
        # One message has one recipient in our mail, so the VERP token names that recipient.
        reports.append(Report("ses", kind, email=address, event_id=f"{message_id}:{address.lower()}",
                              reason=bounces.short_reason(*reason, status), **known))
    return reports


# -- SendGrid: its Signed Event Webhook (ECDSA P-256 over timestamp + raw body)

SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
SENDGRID_KINDS = {"dropped": HARD, "spamreport": COMPLAINT, "unsubscribe": UNSUBSCRIBE,
                  "group_unsubscribe": UNSUBSCRIBE}
# Bounces SendGrid classifies as about the message or the sender, not the address: counted as soft.
SENDGRID_SOFT_CLASSES = {"technical", "content", "reputation", "frequency or volume"}


@bp.post("/sendgrid")
def sendgrid():
    public_key = _sendgrid_key(_setting("SENDGRID_WEBHOOK_PUBLIC_KEY"))
    timestamp = request.headers.get(TIMESTAMP_HEADER, "")
    try:
        signature = base64.b64decode(request.headers.get(SIGNATURE_HEADER, ""), validate=True)
        public_key.verify(signature, timestamp.encode() + request.get_data(), ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError) as exc:
        raise Rejected(403, "bad signature") from exc
    _check_fresh(timestamp, MAX_AGE)
    events = _json_body()
    if not isinstance(events, list):
        raise Rejected(400, "not a SendGrid event list")
    reports = []
    for event in events:
        if not isinstance(event, dict) or _too_old(_unix_time(event.get("timestamp"))):
            continue
        name = str(event.get("event"))
        if name == "bounce":
            soft = (event.get("type") == "blocked"
                    or str(event.get("bounce_classification", "")).lower() in SENDGRID_SOFT_CLASSES)
            kind = SOFT if soft else HARD
        else:
            kind = SENDGRID_KINDS.get(name)
        if kind is not None:
            reports.append(Report("sendgrid", kind, email=str(event.get("email", "")),
                                  event_id=_event_id(event.get("sg_event_id"), event),
                                  reason=bounces.short_reason(name, event.get("type"), event.get("status"))))
    return jsonify(_record_all(reports))


@lru_cache(maxsize=4)
def _sendgrid_key(encoded: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(base64.b64decode(encoded))
    except (ValueError, binascii.Error) as exc:
        raise Rejected(503, "SENDGRID_WEBHOOK_PUBLIC_KEY is not a base64 DER public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise Rejected(503, "SENDGRID_WEBHOOK_PUBLIC_KEY is not an elliptic-curve key")
    return key
