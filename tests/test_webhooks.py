"""Provider webhooks with real signed payloads in each provider's documented format.

A verified bounce or complaint stops mail to the reader; a forged, stale or replayed call gets a
4xx and changes nothing.
"""
from __future__ import annotations

import base64
import json
import secrets
import time
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.mail import suppression
from newsletter.models import BounceEvent, ConsentEvent, Issue, Subscriber
from tests.helpers import READER, add_reader, bounce_event_count, reader_status
from tests.relays import (
    EVENT,
    JSON,
    MAILGUN_KEY,
    SENDGRID_EVENTS,
    SES_BOUNCE,
    SES_COMPLAINT,
    TOPIC,
    assert_nothing_changed,
    basic,
    mailgun_body,
    mailgun_failure,
    postmark_bounce,
    sendgrid_post,
    sns_notification,
)

# -- Mailgun





@pytest.fixture
def mailgun_app(app_factory):
    app = app_factory(MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_KEY, WTF_CSRF_ENABLED=True)  # webhooks carry no CSRF token
    with app.app_context():
        add_reader()
        yield app


def test_mailgun_permanent_failure_suppresses_the_reader_and_keeps_no_address(mailgun_app):
    issue = Issue(title="Turning toward", subject="Turning toward", slug="turning-toward", status="sent")
    db.session.add(issue)
    db.session.commit()
    event = {**mailgun_failure(), "message": {"headers": {"message-id": f"issue-{issue.id}.k3y@newsletter.test"}}}
    response = mailgun_app.test_client().post("/webhooks/mailgun", json=mailgun_body(event))
    assert response.status_code == 200
    assert reader_status() == "bounced"
    assert suppression.is_suppressed(READER)
    [(reason, issue_id)] = db.session.execute(select(BounceEvent.reason, BounceEvent.issue_id)).all()
    assert "@" not in reason and issue_id == issue.id


def test_mailgun_complaint_unsubscribes_with_a_consent_record(mailgun_app):
    event = {"event": "complained", "recipient": READER, "id": "complaint-1"}
    assert mailgun_app.test_client().post("/webhooks/mailgun", json=mailgun_body(event)).status_code == 200
    assert reader_status() == "complained"
    reader = db.session.scalar(select(Subscriber).where(Subscriber.email == READER))
    assert reader.unsubscribed_at is not None
    assert "complained" in db.session.scalars(select(ConsentEvent.action)).all()


@pytest.mark.parametrize("forgery", ["wrong key", "stale", "tampered", "not ascii"])
def test_mailgun_forged_or_stale_call_changes_nothing(mailgun_app, forgery):
    if forgery == "wrong key":
        body = mailgun_body(mailgun_failure(), key="key-" + "6" * 32)
    elif forgery == "stale":
        body = mailgun_body(mailgun_failure(), timestamp=int(time.time()) - 6 * 60)
    else:
        body = mailgun_body(mailgun_failure())
        body["signature"]["timestamp"] = str(int(body["signature"]["timestamp"]) + 1)
    if forgery == "not ascii":
        body["signature"]["signature"] = "é" * 64
    assert mailgun_app.test_client().post("/webhooks/mailgun", json=body).status_code == 403
    assert_nothing_changed()


def test_mailgun_replayed_token_is_refused(mailgun_app):
    client = mailgun_app.test_client()
    token = secrets.token_hex(25)
    first = client.post("/webhooks/mailgun", json=mailgun_body(mailgun_failure("temporary"), token=token))
    replay = client.post("/webhooks/mailgun", json=mailgun_body(mailgun_failure("temporary"), token=token))
    assert (first.status_code, replay.status_code) == (200, 403)
    assert bounce_event_count() == 1
    assert reader_status() == "active"  # one soft bounce is only counted


def test_webhook_without_its_secret_configured_is_off(app_ctx):
    add_reader()
    client = app_ctx.test_client()
    assert client.post("/webhooks/mailgun", json=mailgun_body(mailgun_failure(), key="")).status_code == 404
    assert client.post("/webhooks/postmark", json={"RecordType": "Bounce"}).status_code == 404
    assert_nothing_changed()


# -- Postmark

@pytest.fixture
def postmark_app(app_factory):
    app = app_factory(WEBHOOK_USERNAME="postmark", WEBHOOK_PASSWORD="s3cret-hook")
    with app.app_context():
        add_reader()
        yield app






def test_postmark_hard_bounce_with_the_right_credentials_suppresses(postmark_app):
    response = postmark_app.test_client().post("/webhooks/postmark", json=postmark_bounce(),
                                               headers=basic("postmark", "s3cret-hook"))
    assert response.status_code == 200
    assert reader_status() == "bounced"


def test_postmark_spam_complaint_record(postmark_app):
    body = {"RecordType": "SpamComplaint", "ID": 42, "Type": "SpamComplaint", "TypeCode": 512, "Email": READER,
            "MessageStream": "broadcast"}
    postmark_app.test_client().post("/webhooks/postmark", json=body, headers=basic("postmark", "s3cret-hook"))
    assert reader_status() == "complained"


@pytest.mark.parametrize("headers", [{}, basic("postmark", "wrong"), basic("someone", "s3cret-hook"),
                                     {"Authorization": "Bearer s3cret-hook"}])
def test_postmark_without_the_right_credentials_changes_nothing(postmark_app, headers):
    response = postmark_app.test_client().post("/webhooks/postmark", json=postmark_bounce(), headers=headers)
    assert response.status_code == 401
    assert_nothing_changed()


# -- Amazon SES through SNS





@pytest.fixture
def ses_app(app_factory, cert_server):
    app = app_factory(SES_SNS_TOPIC_ARNS=TOPIC, SNS_URL_PATTERN=r"http://127\.0\.0\.1:\d+")
    with app.app_context():
        add_reader()
        yield app






@pytest.mark.parametrize("version", ["1", "2"])
def test_ses_bounce_signed_by_sns_suppresses(ses_app, cert_server, version):
    message = cert_server.sign(sns_notification(SES_BOUNCE), version)
    assert ses_app.test_client().post("/webhooks/ses", data=json.dumps(message)).status_code == 200
    assert reader_status() == "bounced"


def test_ses_complaint_unsubscribes(ses_app, cert_server):
    message = cert_server.sign(sns_notification(SES_COMPLAINT, Subject="Amazon SES Email Event Notification"))
    assert ses_app.test_client().post("/webhooks/ses", data=json.dumps(message)).status_code == 200
    assert reader_status() == "complained"


@pytest.mark.parametrize("forgery", ["tampered", "foreign certificate host", "foreign topic", "stale"])
def test_ses_forged_stale_or_foreign_message_changes_nothing(ses_app, cert_server, forgery):
    if forgery == "stale":
        message = cert_server.sign(sns_notification(SES_BOUNCE, Timestamp="2026-01-01T00:00:00.000Z"))
    elif forgery == "foreign topic":
        message = cert_server.sign(sns_notification(SES_BOUNCE, TopicArn="arn:aws:sns:us-east-1:999:theirs"))
    else:
        message = cert_server.sign(sns_notification(SES_BOUNCE))
    if forgery == "tampered":
        message["Message"] = json.dumps(SES_COMPLAINT)
    if forgery == "foreign certificate host":
        message["SigningCertURL"] = "http://localhost:1/cert.pem"
    assert ses_app.test_client().post("/webhooks/ses", data=json.dumps(message)).status_code in (403,)
    assert_nothing_changed()


def test_ses_subscription_is_confirmed_only_on_an_sns_host(ses_app, cert_server):
    client = ses_app.test_client()
    token = secrets.token_hex(16)
    confirmation = {"Type": "SubscriptionConfirmation", "MessageId": secrets.token_hex(8), "Token": token,
                    "TopicArn": TOPIC, "Message": "You have chosen to subscribe to the topic.",
                    "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")}
    good = cert_server.sign({**confirmation, "SubscribeURL": f"{cert_server.base}/?Action=ConfirmSubscription&Token={token}"})
    elsewhere = cert_server.sign({**confirmation, "SubscribeURL": "http://localhost:9/?Action=ConfirmSubscription"})
    assert client.post("/webhooks/ses", data=json.dumps(elsewhere)).status_code == 403
    assert client.post("/webhooks/ses", data=json.dumps(good)).status_code == 200
    assert [path for path in cert_server.fetched if "Action=ConfirmSubscription" in path][-1].endswith(token)


def test_production_accepts_certificates_only_from_aws_hosts(app_ctx):
    from newsletter.deliverability.webhooks import _on_sns_host

    assert _on_sns_host("https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc.pem")
    for url in ("http://sns.eu-west-1.amazonaws.com/x.pem", "https://sns.eu-west-1.amazonaws.com.evil.org/x.pem",
                "https://sns.eu-west-1.amazonaws.com@evil.org/x.pem", "https://evil.org/sns.us-east-1.amazonaws.com.pem"):
        assert not _on_sns_host(url), url


# -- SendGrid



@pytest.fixture
def sendgrid_app(app_factory, sendgrid_key):
    public = sendgrid_key.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    app = app_factory(SENDGRID_WEBHOOK_PUBLIC_KEY=base64.b64encode(public).decode())
    with app.app_context():
        add_reader()
        add_reader("sam@example.org")
        yield app




# Event timestamps within the last few days: older events are ignored (webhooks.EVENT_MAX_AGE).


def test_sendgrid_signed_events_bounce_and_complain(sendgrid_app, sendgrid_key):
    assert sendgrid_post(sendgrid_app, sendgrid_key, SENDGRID_EVENTS).get_json() == {"recorded": 2}
    assert (reader_status(), reader_status("sam@example.org")) == ("bounced", "complained")
    # The provider retries a batch: the same bounce_event_count count once.
    assert sendgrid_post(sendgrid_app, sendgrid_key, SENDGRID_EVENTS).get_json() == {"recorded": 0}
    assert bounce_event_count() == 2


def test_sendgrid_tampered_or_unsigned_batch_changes_nothing(sendgrid_app, sendgrid_key):
    assert sendgrid_post(sendgrid_app, sendgrid_key, SENDGRID_EVENTS, tamper=True).status_code == 403
    other = ec.generate_private_key(ec.SECP256R1())
    assert sendgrid_post(sendgrid_app, other, SENDGRID_EVENTS).status_code == 403
    unsigned = sendgrid_app.test_client().post("/webhooks/sendgrid", json=SENDGRID_EVENTS)
    assert unsigned.status_code == 403
    assert_nothing_changed()


# -- hostile but verified input: never a 500, never a crash



@pytest.fixture
def every_webhook_app(app_factory, sendgrid_key):
    public = sendgrid_key.public_key().public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)
    app = app_factory(MAILGUN_WEBHOOK_SIGNING_KEY=MAILGUN_KEY, WEBHOOK_USERNAME="postmark",
                      WEBHOOK_PASSWORD="s3cret-hook", SENDGRID_WEBHOOK_PUBLIC_KEY=base64.b64encode(public).decode())
    with app.app_context():
        add_reader()
        yield app


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(event=EVENT | JSON, bounce_event_count=st.lists(EVENT | JSON, max_size=3))
def test_any_verified_payload_gets_an_answer_not_an_error(every_webhook_app, sendgrid_key, event, bounce_event_count):
    client = every_webhook_app.test_client()
    answers = [
        client.post("/webhooks/mailgun", json=mailgun_body(event)).status_code,
        client.post("/webhooks/postmark", json=event, headers=basic("postmark", "s3cret-hook")).status_code,
        sendgrid_post(every_webhook_app, sendgrid_key, bounce_event_count).status_code,
    ]
    assert all(code in (200, 400) for code in answers), answers


SES_FIELDS = st.sampled_from(["notificationType", "eventType", "bounce", "complaint", "mail", "bounceType",
                              "bouncedRecipients", "complainedRecipients", "emailAddress", "source", "commonHeaders"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(notification=st.recursive(JSON, lambda inner: st.dictionaries(SES_FIELDS, inner | st.sampled_from(
    ["Bounce", "Complaint", "Permanent", READER]), max_size=5), max_leaves=15))
def test_any_ses_notification_is_read_without_crashing(app_ctx, notification):
    from newsletter.deliverability.webhooks import _ses_reports

    for report in _ses_reports(notification, "message-1"):
        assert report.kind in ("hard", "soft", "complaint") and isinstance(report.email, str)


SNS_FIELDS = st.sampled_from(["Type", "MessageId", "TopicArn", "Message", "Timestamp", "SignatureVersion",
                              "Signature", "SigningCertURL", "SubscribeURL", "Token", "Subject"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(message=JSON | st.dictionaries(SNS_FIELDS, JSON | st.sampled_from(
    ["Notification", "SubscriptionConfirmation", "1", "2", TOPIC, "https://sns.us-east-1.amazonaws.com/x.pem"]),
    max_size=8))
def test_any_unsigned_sns_message_is_refused_without_an_error(ses_app, message):
    assert ses_app.test_client().post("/webhooks/ses", data=json.dumps(message)).status_code in (400, 403)
