"""One rule, one place: a body from outside is bounded before it is read, verified before it acts, and
counted once.

The webhooks' guard (webhooks._guard_body, run before every route of the blueprint) bounds size and
JSON nesting; each provider's route verifies, ignores stale events and de-duplicates by event id.
`bounces ingest` reads at most bounces.MAX_REPORT_BYTES and trusts ARF only from COMPLAINT_REPORTERS.
The webhook routes are enumerated from the app's url_map, so a provider added later is covered too.
"""
from __future__ import annotations

import io
import json
import os
import secrets
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest

from newsletter.deliverability import bounces, webhooks
from tests.helpers import DATA, READER, add_reader, bounce_event_count, reader_status
from tests.relays import (
    POSTMARK_LOGIN,
    assert_nothing_changed,
    basic,
    mailgun_body,
    sendgrid_post,
    sns_notification,
    webhook_paths,
)
from tests.support import ROOT


def test_the_webhook_routes_are_the_four_providers(every_provider):
    assert webhook_paths(every_provider) == ["/webhooks/mailgun", "/webhooks/postmark", "/webhooks/sendgrid",
                                             "/webhooks/ses"]


# -- bounded before anything parses

def test_deeply_nested_brackets_get_a_4xx_on_every_webhook(every_provider):
    client = every_provider.test_client()
    for body in (b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        for path in webhook_paths(every_provider):
            status = client.post(path, data=body, content_type="application/json",
                                 headers=basic(*POSTMARK_LOGIN)).status_code
            assert 400 <= status < 500, (path, status)
    assert_nothing_changed()


def test_a_deeply_nested_ses_notification_inside_a_signed_message_gets_a_4xx(every_provider, cert_server):
    message = cert_server.sign(sns_notification({}, Message="[" * 100_000))
    assert every_provider.test_client().post("/webhooks/ses", data=json.dumps(message)).status_code == 400


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "no-content-length"])
def test_an_oversize_body_is_refused_before_it_is_parsed(every_provider, declared):
    # Not JSON at all: had it been parsed, the answer would be 400 "not JSON".
    body = b"x" * (webhooks.MAX_BODY_BYTES + 1)
    client = every_provider.test_client()
    for path in webhook_paths(every_provider):
        if declared:
            response = client.post(path, data=body, headers=basic(*POSTMARK_LOGIN))
        else:
            response = client.post(path, input_stream=io.BytesIO(body), headers=basic(*POSTMARK_LOGIN),
                                   environ_overrides={"wsgi.input_terminated": True})
        assert response.status_code == 413, (path, response.status_code)
    assert_nothing_changed()


# -- stale, replayed and id-less events

def soft_bounce(provider: str, *, age: timedelta = timedelta(0), with_id: bool = True) -> dict:
    """A soft bounce for READER as `provider` describes it, `age` old."""
    when, event_id = datetime.now(UTC) - age, secrets.token_hex(8)
    if provider == "mailgun":
        event = {"event": "failed", "severity": "temporary", "recipient": READER, "timestamp": when.timestamp()}
        return {**event, **({"id": event_id} if with_id else {})}
    if provider == "postmark":
        return {"RecordType": "Bounce", "Type": "SoftBounce", "Email": READER, "BouncedAt": when.isoformat(),
                **({"ID": event_id} if with_id else {})}
    if provider == "sendgrid":
        return {"email": READER, "event": "bounce", "type": "blocked", "timestamp": int(when.timestamp()),
                **({"sg_event_id": event_id} if with_id else {})}
    message = sns_notification({"notificationType": "Bounce", "mail": {"timestamp": when.isoformat()},
                                "bounce": {"bounceType": "Transient", "timestamp": when.isoformat(),
                                           "bouncedRecipients": [{"emailAddress": READER}]}})
    return message if with_id else {name: value for name, value in message.items() if name != "MessageId"}


def deliver(app, provider: str, keys: dict, event: dict):
    """Post `event`, freshly signed as its provider does it; returns the response and a function that sends
    the very same request again (a replay)."""
    client = app.test_client()
    if provider == "mailgun":
        body = mailgun_body(event)
        send = lambda: client.post("/webhooks/mailgun", json=body)  # noqa: E731
    elif provider == "postmark":
        send = lambda: client.post("/webhooks/postmark", json=event, headers=basic(*POSTMARK_LOGIN))  # noqa: E731
    elif provider == "sendgrid":
        stamp = int(time.time())
        send = lambda: sendgrid_post(app, keys["sendgrid"], [event], timestamp=stamp)  # noqa: E731
    else:
        signed = keys["ses"].sign(event)
        send = lambda: client.post("/webhooks/ses", data=json.dumps(signed))  # noqa: E731
    return send(), send


PROVIDERS = ["mailgun", "postmark", "sendgrid", "ses"]


@pytest.fixture
def keys(sendgrid_key, cert_server):
    return {"sendgrid": sendgrid_key, "ses": cert_server}


def test_every_provider_is_exercised_here(every_provider):
    assert sorted(path.rsplit("/", 1)[1] for path in webhook_paths(every_provider)) == PROVIDERS


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_event_thirty_days_old_changes_nothing(every_provider, keys, provider):
    response, _ = deliver(every_provider, provider, keys, soft_bounce(provider, age=timedelta(days=30)))
    assert response.status_code == 200 and response.get_json() == {"recorded": 0}
    assert_nothing_changed()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_recent_event_counts(every_provider, keys, provider):
    """The other side of the window: a retry from yesterday is still an event."""
    response, _ = deliver(every_provider, provider, keys, soft_bounce(provider, age=timedelta(days=1)))
    assert response.get_json() == {"recorded": 1} and bounce_event_count() == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_replayed_request_changes_nothing(every_provider, keys, provider):
    first, replay = deliver(every_provider, provider, keys, soft_bounce(provider))
    assert first.get_json() == {"recorded": 1}
    again = replay()
    assert again.status_code in (200, 403) and (again.get_json() or {}).get("recorded", 0) == 0
    assert bounce_event_count() == 1


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_event_without_an_id_sent_twice_counts_once(every_provider, keys, provider):
    event = soft_bounce(provider, with_id=False)
    first, _ = deliver(every_provider, provider, keys, event)
    second, _ = deliver(every_provider, provider, keys, event)  # signed afresh: not a replay of the request
    assert first.get_json() == {"recorded": 1} and second.get_json() == {"recorded": 0}
    assert bounce_event_count() == 1


def test_a_sendgrid_batch_signed_ten_minutes_ago_is_refused(every_provider, sendgrid_key):
    event = {"email": READER, "event": "bounce", "type": "bounce", "timestamp": int(time.time()), "sg_event_id": "e1"}
    response = sendgrid_post(every_provider, sendgrid_key, [event], timestamp=int(time.time()) - 600)
    assert response.status_code == 403
    assert_nothing_changed()


# -- ARF complaints: only from the reporters the practice trusts

def ingest_arf_sample(app_factory, **config) -> tuple[object, str, int]:
    """tests/data/arf_abuse.eml (from abuse@feedback.example.com, about READER) piped in; the result, the
    reader's status after it and the bounce events recorded."""
    app = app_factory(**config)
    with app.app_context():
        add_reader()
        result = app.test_cli_runner().invoke(args=["bounces", "ingest", str(DATA / "arf_abuse.eml")])
        return result, reader_status(), bounce_event_count()


def test_an_arf_report_from_an_unknown_sender_suppresses_nobody(app_factory):
    result, status, recorded = ingest_arf_sample(app_factory,
                                                 COMPLAINT_REPORTERS="feedback.example.net, abuse@example.org")
    assert result.exit_code != 0
    assert "abuse@feedback.example.com" in result.output and "COMPLAINT_REPORTERS" in result.output
    assert (status, recorded) == ("active", 0)


@pytest.mark.parametrize("config", [{"COMPLAINT_REPORTERS": "abuse@feedback.example.com"},
                                    {"COMPLAINT_REPORTERS": "postmaster@example.net, example.com"},
                                    {"SMTP_HOST": "smtp.example.com"}],
                         ids=["the address", "a parent domain", "the relay's own domain"])
def test_an_arf_report_from_a_trusted_reporter_counts(app_factory, config):
    result, status, recorded = ingest_arf_sample(app_factory, **config)
    assert result.exit_code == 0, result.output
    assert (status, recorded) == ("complained", 1)


# -- bounces ingest: a stream with a cap

INPUT_BYTES = 50 * 2**20
MEASURE = """
import resource, subprocess, sys
with open(sys.argv[1], "rb") as source:
    run = subprocess.run(sys.argv[3:], stdin=source if sys.argv[2] == "stdin" else None, capture_output=True)
print(run.stdout.decode() + run.stderr.decode())
print(run.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def ingest_in_a_process(settings: dict, path, source: str) -> tuple[int, str, int]:
    """`flask bounces ingest` run on its own, the message from a file or stdin: exit code, output and
    peak memory (RSS, bytes), measured by a small parent process that runs nothing else."""
    command = [sys.executable, "-m", "flask", "--app", "wsgi", "bounces", "ingest"]
    command += [str(path)] if source == "file" else []
    run = subprocess.run([sys.executable, "-c", MEASURE, str(path), source, *command], cwd=ROOT,
                         env={**os.environ, **settings}, capture_output=True, text=True, timeout=120, check=True)
    output, _, last_line = run.stdout.rstrip().rpartition("\n")
    exit_code, maxrss_kb = (int(number) for number in last_line.split())
    return exit_code, output, maxrss_kb * 1024


@pytest.mark.parametrize("source", ["file", "stdin"])
def test_ingest_of_a_huge_input_refuses_clearly_in_little_memory(app, settings, tmp_path, source):
    huge = tmp_path / "huge.eml"
    with huge.open("wb") as out:
        out.write(b"Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n")
        for _ in range(INPUT_BYTES // 2**20):
            out.write(b"x" * 2**20)
    small_exit, _, small_rss = ingest_in_a_process(settings, DATA / "dsn_delayed.eml", source)

    exit_code, output, rss = ingest_in_a_process(settings, huge, source)

    assert small_exit == 0 and exit_code != 0
    assert f"larger than {bounces.MAX_REPORT_BYTES // 2**20} MB" in output
    assert rss < INPUT_BYTES * 4, f"peak RSS {rss // 2**20} MB"
    assert rss - small_rss < 3 * bounces.MAX_REPORT_BYTES, f"{small_rss // 2**20} MB -> {rss // 2**20} MB"
