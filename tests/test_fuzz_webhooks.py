"""Property-based tests (hypothesis) over every webhook route: whatever body and headers arrive, no 5xx,
and without a valid signature nothing changes (no event recorded, nobody suppressed or unsubscribed,
no replay token stored).

The routes come from the app's url_map (tests.test_rule_untrusted_bodies.webhook_paths), so a provider
added later is fuzzed too. CI runs the "ci" profile of tests/test_fuzz.py; a long run:

    HYPOTHESIS_PROFILE=fuzz .venv/bin/python -m pytest tests/test_fuzz_webhooks.py -p no:cacheprovider
"""
from __future__ import annotations

import base64
import json
import time

from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.deliverability.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from newsletter.models import WebhookNonce
from tests.helpers import READER
from tests.relays import EVENT, JSON, TOPIC, assert_nothing_changed, webhook_paths

PRINTABLE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
NOW = str(int(time.time()))

HEADERS = st.dictionaries(
    st.sampled_from(["Authorization", "Content-Type", SIGNATURE_HEADER, TIMESTAMP_HEADER, "Content-Encoding",
                     "X-Forwarded-For", "Transfer-Encoding"]),
    PRINTABLE | st.sampled_from([
        "Basic " + base64.b64encode(b"postmark:s3cret-hoo").decode(), "Basic " + base64.b64encode(b":").decode(),
        "Bearer x", "application/json", "text/plain; charset=utf-8", NOW, "-1", "1e308", "NaN", "gzip",
        base64.b64encode(b"\x30\x44" + b"\x00" * 68).decode(),
    ]),
    max_size=4,
)


def _mailgun_shaped(parts) -> dict:
    event, token, signature, stamp = parts
    return {"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": event}


def _sns_shaped(parts) -> dict:
    message_type, message, signature, url = parts
    return {"Type": message_type, "MessageId": "m-1", "TopicArn": TOPIC, "Message": message,
            "Timestamp": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "SignatureVersion": "1",
            "Signature": signature, "SigningCertURL": url, "SubscribeURL": url}


# Forgeries shaped like each provider's call (a wrong signature), plain garbage, JSON of any shape,
# and nesting far past the bound.
FORGED = st.one_of(
    st.tuples(EVENT, PRINTABLE, PRINTABLE | st.just("0" * 64), st.sampled_from([NOW, "0", "1e400", "x"])
              ).map(_mailgun_shaped),
    st.tuples(st.sampled_from(["Notification", "SubscriptionConfirmation", "UnsubscribeConfirmation"]),
              JSON.map(json.dumps), PRINTABLE.map(lambda text: base64.b64encode(text.encode()).decode()),
              st.sampled_from(["CERT", "https://sns.us-east-1.amazonaws.com/x.pem", "http://127.0.0.1:1/x.pem"])
              ).map(_sns_shaped),
    st.lists(EVENT, max_size=3),
    EVENT.map(lambda event: {**event, "RecordType": "Bounce", "Type": "HardBounce", "Email": READER}),
)
BODIES = st.one_of(
    st.binary(max_size=600),
    JSON.map(lambda value: json.dumps(value).encode()),
    FORGED.map(lambda value: json.dumps(value).encode()),
    st.integers(30, 200_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(30, 5_000).map(lambda depth: (b'{"a":' * depth) + b"1" + b"}" * depth),
)


def nothing_stored() -> None:
    assert_nothing_changed()
    assert db.session.scalar(select(func.count()).select_from(WebhookNonce)) == 0


@given(body=BODIES, headers=HEADERS)
def test_any_unsigned_call_to_any_webhook_gets_a_4xx_and_changes_nothing(every_provider, cert_server, body, headers):
    client = every_provider.test_client()
    body = body.replace(b"CERT", cert_server.base.encode() + b"/SimpleNotificationService-x.pem")
    for path in webhook_paths(every_provider):
        status = client.post(path, data=body, headers=headers).status_code
        assert 400 <= status < 500, (path, status)
    nothing_stored()
