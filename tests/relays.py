"""Relays' webhook calls as each provider signs them (Mailgun, Postmark, SES through SNS, SendGrid), for the
webhook tests: real signatures over each provider's documented format."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from hypothesis import strategies as st

from newsletter.mail import suppression
from tests.helpers import READER, bounce_event_count, reader_status

MAILGUN_KEY = "key-" + "5" * 32


TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-bounces"


def assert_nothing_changed() -> None:
    assert reader_status() == "active"
    assert not suppression.is_suppressed(READER)
    assert bounce_event_count() == 0


def mailgun_body(event: dict, *, key: str = MAILGUN_KEY, timestamp: int | None = None, token: str | None = None):
    timestamp = str(timestamp if timestamp is not None else int(time.time()))
    token = token or secrets.token_hex(25)
    signature = hmac.new(key.encode(), (timestamp + token).encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event}


def mailgun_failure(severity: str = "permanent", event_id: str | None = None) -> dict:
    return {"event": "failed", "severity": severity, "recipient": READER, "id": event_id or secrets.token_hex(8),
            "reason": "bounce", "delivery-status": {"code": 550, "message": f"5.1.1 <{READER}> no such user"}}


def postmark_bounce(kind: str = "HardBounce") -> dict:
    return {"RecordType": "Bounce", "ID": 4323372036854775807, "Type": kind, "TypeCode": 1, "Name": "Hard bounce",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "Email": READER, "From": "newsletter@newsletter.test",
            "BouncedAt": datetime.now(UTC).isoformat(), "Description": "The server was unable to deliver your message",
            "Details": f"smtp;550 5.1.1 The email account that you tried to reach does not exist <{READER}>",
            "Inactive": True, "CanActivate": True, "MessageStream": "broadcast"}


def basic(username: str, password: str) -> dict:
    return {"Authorization": "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()}


class CertServer:
    """A local HTTP server standing in for sns.<region>.amazonaws.com: serves the signing
    certificate and records which subscription links were fetched."""

    def __init__(self):
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
                .not_valid_after(now + timedelta(days=30)).sign(key, hashes.SHA256()))
        self.key, self.pem, self.fetched = key, cert.public_bytes(serialization.Encoding.PEM), []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server interface
                server.fetched.append(self.path)
                body = server.pem if self.path.endswith(".pem") else b"<ConfirmSubscriptionResponse/>"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def sign(self, message: dict, version: str = "1") -> dict:
        fields = {"Notification": ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")}.get(
            message["Type"], ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"))
        text = "".join(f"{name}\n{message[name]}\n" for name in fields if name in message)
        digest = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), digest)
        return {**message, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode(),
                "SigningCertURL": f"{self.base}/SimpleNotificationService-{secrets.token_hex(4)}.pem"}


def sns_notification(ses_message: dict, **changes) -> dict:
    return {"Type": "Notification", "MessageId": secrets.token_hex(16), "TopicArn": TOPIC,
            "Message": json.dumps(ses_message), "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z",
            "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe", **changes}


SES_BOUNCE = {"notificationType": "Bounce",
              "bounce": {"bounceType": "Permanent", "bounceSubType": "General", "feedbackId": "0100-abc",
                         "bouncedRecipients": [{"emailAddress": READER, "action": "failed", "status": "5.1.1",
                                                "diagnosticCode": f"smtp; 550 5.1.1 <{READER}> user unknown"}]},
              "mail": {"source": "newsletter@newsletter.test", "destination": [READER]}}


SES_COMPLAINT = {"notificationType": "Complaint",
                 "complaint": {"complainedRecipients": [{"emailAddress": READER}], "complaintFeedbackType": "abuse",
                               "feedbackId": "0100-def"},
                 "mail": {"source": "newsletter@newsletter.test", "destination": [READER]}}


def sendgrid_post(app, key, events: list[dict], tamper: bool = False, timestamp: int | None = None):
    body = json.dumps(events).encode()
    timestamp = str(timestamp if timestamp is not None else int(time.time()))
    signature = key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    if tamper:
        body = body.replace(b"bounce", b"bounce ")
    return app.test_client().post("/webhooks/sendgrid", data=body, content_type="application/json", headers={
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp})


NOW = int(time.time())


SENDGRID_EVENTS = [
    {"email": READER, "timestamp": NOW, "event": "bounce", "type": "bounce", "status": "5.1.1",
     "reason": f"550 5.1.1 <{READER}> unknown", "sg_event_id": "ZGVsaXZlcmVkLTAtMjQ", "sg_message_id": "14c5d75ce93"},
    {"email": "sam@example.org", "timestamp": NOW, "event": "spamreport", "sg_event_id": "c3BhbXJlcG9ydC0w"},
    {"email": "sam@example.org", "timestamp": NOW, "event": "open", "sg_event_id": "b3Blbi0w"},
]


POSTMARK_LOGIN = ("postmark", "s3cret-hook")


def webhook_paths(app) -> list[str]:
    """Every route under /webhooks/ that takes a POST: the providers, today's and tomorrow's."""
    return sorted(rule.rule for rule in app.url_map.iter_rules()
                  if rule.rule.startswith("/webhooks/") and "POST" in rule.methods)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


FIELDS = st.sampled_from(["event", "severity", "recipient", "id", "email", "type", "sg_event_id", "RecordType",
                          "Type", "Email", "ID", "delivery-status", "envelope", "message", "bounce_classification"])


EVENT = st.dictionaries(FIELDS, JSON | st.sampled_from(["failed", "permanent", "bounce", "blocked", "dropped",
                                                        "spamreport", "Bounce", "HardBounce", READER]), max_size=6)
