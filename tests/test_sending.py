"""Sending an issue through the ledger: dispatch, batches, failures, pause/resume/cancel, progress.

These call the sending service in the test process against the real SMTP server; the tests with
worker processes (crashes, races between workers) are in test_sending_workers.py.
"""
from __future__ import annotations

import base64
import secrets
import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from email import policy
from email.parser import BytesParser

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from newsletter.core import tokens
from newsletter.core.extensions import db
from newsletter.mail import compose
from newsletter.mail.suppression import email_hash
from newsletter.models import Delivery, Issue, Subscriber, Suppression, utcnow
from newsletter.publishing import issue_mail
from newsletter.readers import personalize, subscriptions
from newsletter.sending import control, dispatcher, engine, ledger
from tests.helpers import add_issue, add_readers, copies_by_reader, delivery_statuses, send_all
from tests.support import free_port, wait_for


def _dispatched_to(readers: int) -> Issue:
    """An issue dispatched to this many new active readers (reader0@example.org, ...)."""
    add_readers(readers)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    return issue


def test_each_active_reader_gets_the_issue_once_with_their_own_links(app_ctx, smtp):
    readers = add_readers(7)
    add_readers(2, status="pending", prefix="unconfirmed")
    add_readers(1, status="unsubscribed", prefix="gone")
    issue = add_issue()

    assert dispatcher.dispatch_due() == [issue.id]
    send_all(issue.id)

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})
    assert db.session.get(Issue, issue.id).status == "sent"
    received = smtp.to("reader3@example.org")[0]
    url = subscriptions.unsubscribe_url(readers[3])
    assert "Dear Reader 3," in received.text and url in received.text
    assert f'href="{url}"' in received.html and "🌿" in received.html and "“curly quotes”" in received.html
    assert received.message["List-Unsubscribe"] == f"<{url}>"
    assert received.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received.message["List-Id"].endswith("<newsletter.newsletter.test>")
    assert received.message["Subject"] == "Turning toward each other — a note 🌿"
    assert received.message["To"] == "Reader 3 <reader3@example.org>"


def test_fast_message_matches_the_personalize_contract(app_ctx):
    [reader] = add_readers(1)
    reader.name = "Zoë O’Brien <&> " + "with a very long name " * 4
    issue = add_issue()
    recipient = ledger.Recipient(1, reader.id, reader.email, reader.name, reader.token_key, "active")
    mailer = issue_mail.IssueMail(issue)

    fast = BytesParser(policy=policy.default).parsebytes(mailer.for_reader(recipient))
    url = subscriptions.unsubscribe_url(reader)
    reference = compose.build_message(  # the plain way to build one reader's copy
        to=compose.Mailbox(reader.email, reader.name),
        subject=issue.subject,
        text=personalize.fill(issue.email_text, unsubscribe_url=url, name=reader.name, as_html=False),
        html=personalize.fill(issue.email_html, unsubscribe_url=url, name=reader.name, as_html=True),
        message_id=mailer.message_id(reader.id),
        headers=personalize.list_headers(url),
    )
    reference = BytesParser(policy=policy.default).parsebytes(reference.as_bytes(policy=policy.SMTP))

    assert fast.get_content_type() == "multipart/alternative"
    for header in ("From", "To", "Subject", "Message-ID", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"):
        assert str(fast[header]) == str(reference[header]), header
    for kind in ("plain", "html"):
        assert fast.get_body((kind,)).get_content() == reference.get_body((kind,)).get_content()
    assert "Zoë O’Brien &lt;&amp;&gt;" in fast.get_body(("html",)).get_content()
    body = mailer.for_reader(recipient).split(b"\r\n\r\n", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # quoted-printable's limit
    assert mailer.message_id(reader.id) == issue_mail.IssueMail(issue).message_id(reader.id)


def test_an_issues_links_carry_the_same_tokens_the_site_signs_and_reads(app_ctx):
    purposes = (subscriptions.UNSUBSCRIBE_PURPOSE, personalize.PREFERENCES_PURPOSE)
    make = tokens.permanent_maker(*purposes)

    @given(reader_id=st.integers(1, 2**31 - 1), key=st.one_of(st.text(max_size=300), st.just("a" * 200)))
    def same_tokens(reader_id, key):
        payload = {"id": reader_id, "k": key}
        for purpose, token in zip(purposes, make(payload), strict=True):
            assert token == tokens.make_permanent(purpose, payload)
            assert tokens.read(purpose, token) == payload

    same_tokens()


@pytest.mark.parametrize("pipelining", [True, False])
def test_refusals_are_told_apart_with_and_without_smtp_pipelining(app_ctx, smtp, pipelining):
    smtp.pipelining = pipelining
    add_readers(4)
    issue = add_issue()
    smtp.reject("reader1@example.org", 550)
    smtp.reject("reader2@example.org", 452)
    smtp.fail_next(1, 451)  # the first message's DATA: retried in place
    dispatcher.dispatch(issue.id)

    result = engine.send_batch(issue.id)

    assert (result.sent, result.failed, result.deferred) == (2, 1, 1)
    assert copies_by_reader(smtp) == Counter({"reader0@example.org": 1, "reader3@example.org": 1})
    # With PIPELINING reader1's envelope went out behind reader0's refused data: refused once more on its own.
    assert smtp.answers == ([451, 550] if pipelining else [451]) + [250, 550, 452, 250]
    assert db.session.scalar(select(func.count()).select_from(Suppression)) == 1  # only the 550


def test_the_message_dot_stuffed_once_per_issue_is_what_smtp_would_send(app_ctx):
    from newsletter.mail.transports import dot_stuff

    [reader] = add_readers(1)
    reader.name = ".Dot at the start"
    issue = add_issue()
    issue.email_text = ".a line starting with a dot\n%%reader_name%%\n..two\n" + issue.email_text
    issue.email_html = ".<p>%%reader_name%%</p>\n" + issue.email_html
    recipient = ledger.Recipient(1, reader.id, reader.email, reader.name, reader.token_key, "active")
    mailer = issue_mail.IssueMail(issue)

    plain = mailer.for_reader(recipient)
    assert b"\r\n.a line" in plain and b"\r\n.Dot" in plain
    assert mailer.for_reader(recipient, stuffed=True) == dot_stuff(plain)


def test_two_dispatchers_racing_start_the_issue_once(app, smtp):
    with app.app_context():
        add_readers(30)
        issue_id = add_issue().id
    barrier = threading.Barrier(4)
    results = []

    def scheduler():
        with app.app_context():
            barrier.wait()
            results.append(dispatcher.dispatch(issue_id))
            db.session.commit()
            db.session.remove()

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results, key=str) == [30, None, None, None]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Delivery)) == 30
        assert dispatcher.dispatch(issue_id) is None
        assert dispatcher.dispatch_due() == []


def test_reader_who_joins_mid_send_is_left_out_and_one_who_leaves_gets_nothing(app_ctx, smtp):
    readers = add_readers(5)
    issue = add_issue()
    dispatcher.dispatch(issue.id)

    add_readers(1, prefix="latecomer")
    readers[2].status = "unsubscribed"
    db.session.commit()
    send_all(issue.id)

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers if r.status == "active"})
    assert delivery_statuses(issue.id) == Counter(sent=4, skipped=1)
    assert db.session.get(Issue, issue.id).status == "sent"


def test_suppressed_address_is_not_mailed(app_ctx, smtp):
    readers = add_readers(3)
    db.session.add(Suppression(email_hash=email_hash(readers[0].email), reason="complained"))
    db.session.commit()
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    send_all(issue.id)

    assert set(copies_by_reader(smtp)) == {readers[1].email, readers[2].email}


def test_try_later_answers_are_retried_and_nobody_is_lost_or_doubled(app_ctx, smtp):
    readers = add_readers(6)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    smtp.fail_next(3, 451)

    send_all(issue.id)

    assert smtp.answers.count(451) == 3
    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})
    assert delivery_statuses(issue.id) == Counter(sent=6)


def test_dropped_connection_mid_batch_resumes_at_the_same_reader(app_ctx, smtp):
    readers = add_readers(6)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    smtp.wait_for_messages(0)
    smtp.drop_next(1)

    send_all(issue.id)

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})
    assert smtp.connections == 2


def test_permanent_refusal_fails_that_reader_and_suppresses_the_address(app_ctx, smtp):
    readers = add_readers(5)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    smtp.reject("reader1@example.org", 550)

    send_all(issue.id)

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers if r.email != "reader1@example.org"})
    assert delivery_statuses(issue.id) == Counter(sent=4, failed=1)
    assert db.session.scalar(select(Subscriber.status).where(Subscriber.email == "reader1@example.org")) == "bounced"
    assert db.session.scalar(select(Suppression.reason)) == "bounced"
    assert db.session.get(Issue, issue.id).status == "sent"


def test_too_many_failures_in_a_row_pause_the_issue_with_a_reason_and_resume_continues(app_factory, smtp):
    app = app_factory(SEND_MAX_CONSECUTIVE_FAILURES=3)
    with app.app_context():
        readers = add_readers(4)
        issue = add_issue()
        dispatcher.dispatch(issue.id)
        smtp.fail_next(3, 421)

        send_all(issue.id)

        paused = db.session.get(Issue, issue.id)
        assert paused.status == "paused"
        assert "3 failed attempts in a row" in paused.pause_reason and "421" in paused.pause_reason
        assert delivery_statuses(issue.id) == Counter(pending=4)
        assert ledger.batches_needed(issue.id) == 0

        assert control.resume(issue.id)
        db.session.commit()
        send_all(issue.id)

        assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})
        assert db.session.get(Issue, issue.id).status == "sent"


def test_paused_issue_sends_nothing_until_resumed_and_cancel_skips_the_rest(app_ctx, smtp):
    issue = _dispatched_to(4)

    assert control.pause(issue.id)
    send_all(issue.id)
    assert engine.send_batch(issue.id).claimed == 0
    assert smtp.messages == []
    assert control.progress(issue.id).as_dict()["pending"] == 4

    assert control.cancel(issue.id)
    assert delivery_statuses(issue.id) == Counter(skipped=4)
    assert db.session.get(Issue, issue.id).status == "canceled"
    assert not control.resume(issue.id)


def test_pause_resume_and_cancel_change_nothing_until_their_caller_commits(app_ctx, smtp):
    """The admin's view or command commits a change together with its audit entry: a change it
    did not commit (an error before its commit) leaves the issue as it was."""
    issue = _dispatched_to(2)
    db.session.commit()
    def status() -> str:
        return db.session.scalar(select(Issue.status).where(Issue.id == issue.id))

    for change, after in ((control.pause, "paused"), (control.resume, "sending"), (control.cancel, "canceled")):
        before = status()
        assert change(issue.id) and status() == after
        db.session.rollback()
        assert status() == before
        assert change(issue.id)
        db.session.commit()
        assert status() == after
    assert delivery_statuses(issue.id) == Counter(skipped=2)


def test_progress_counts_the_ledger(app_ctx, smtp):
    issue = _dispatched_to(5)
    smtp.reject("reader0@example.org", 550)
    engine.send_batch(issue.id)

    report = control.progress(issue.id).as_dict()

    assert {k: report[k] for k in ("status", "recipients", "sent", "failed", "pending", "percent_done")} == {
        "status": "sent", "recipients": 5, "sent": 4, "failed": 1, "pending": 0, "percent_done": 100.0}


def test_sweeper_gives_a_dead_workers_deliveries_to_the_next_batch(app_ctx, smtp):
    readers = add_readers(3)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    assert len(ledger.claim(issue.id)) == 3  # a worker claims the batch, then dies
    assert engine.send_batch(issue.id).claimed == 0

    assert ledger.sweep() == {}
    assert ledger.sweep(now=utcnow() + timedelta(minutes=10)) == {issue.id: 1}
    engine.send_batch(issue.id)

    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers})


def test_a_batch_heartbeat_renews_its_lease_and_lets_go_of_rows_another_batch_took(app_ctx):
    issue = _dispatched_to(3)
    recipients = ledger.claim(issue.id)
    heartbeat = ledger.Heartbeat(db.engine, recipients)

    heartbeat.renew()

    leases = db.session.scalars(select(Delivery.lease_until)).all()
    db.session.commit()
    assert all(lease > recipients[0].lease_until for lease in leases)
    assert heartbeat.held == {r.delivery_id for r in recipients}
    # The worker froze past its lease: another batch claims the rows, and this one must not send them.
    db.session.execute(update(Delivery).values(lease_until=utcnow() - timedelta(seconds=1)))
    db.session.commit()
    assert len(ledger.claim(issue.id)) == 3
    heartbeat.renew()
    assert heartbeat.held == frozenset()


def test_embedded_mode_sends_to_the_outbox_folder_without_redis(app_factory, tmp_path):
    app = app_factory(REDIS_URL="", SMTP_HOST="", OUTBOX_DIR=str(tmp_path))
    with app.app_context():
        issue = _dispatched_to(3)
        send_all(issue.id)

        assert len(list(tmp_path.glob("*.eml"))) == 3
        assert db.session.get(Issue, issue.id).status == "sent"


def test_issue_is_dkim_signed_when_a_key_is_configured(app_factory, smtp):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    app = app_factory(DKIM_DOMAIN="newsletter.test", DKIM_SELECTOR="mail", DKIM_PRIVATE_KEY=private)
    with app.app_context():
        issue = _dispatched_to(1)
        send_all(issue.id)

    [received] = smtp.messages
    record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    assert dkim.verify(received.raw, dnsfunc=lambda name, timeout=5: record)


def test_admin_follows_progress_and_pauses_resumes_and_cancels(auth, app_ctx, client, smtp, worker):
    auth.login(client)
    issue = _dispatched_to(3)

    progress = client.get(f"/admin/issues/{issue.id}/sending/progress").json
    assert {k: progress[k] for k in ("status", "recipients", "sent", "pending")} == {
        "status": "sending", "recipients": 3, "sent": 0, "pending": 3}
    page = client.get(f"/admin/issues/{issue.id}")
    assert b'id="sending-progress"' in page.data and b"js/issue-progress.js" in page.data
    assert client.get("/static/js/issue-progress.js").status_code == 200

    assert client.post(f"/admin/issues/{issue.id}/sending/pause").status_code == 302
    assert client.get(f"/admin/issues/{issue.id}/sending/progress").json["status"] == "paused"
    assert b"Resume sending" in client.get(f"/admin/issues/{issue.id}").data

    client.post(f"/admin/issues/{issue.id}/sending/resume")  # the worker sends the rest
    smtp.wait_for_messages(3)
    wait_for(lambda: client.get(f"/admin/issues/{issue.id}/sending/progress").json["status"] == "sent")
    assert client.post(f"/admin/issues/{issue.id}/sending/cancel").status_code == 302
    assert client.get(f"/admin/issues/{issue.id}/sending/progress").json["status"] == "sent"
    assert client.get("/admin/issues/999999/sending/progress").status_code == 404


def test_cli_reports_status_and_pauses_resumes_and_cancels(app_ctx, runner, smtp):
    issue = _dispatched_to(2)

    status = runner.invoke(args=["issue", "status", str(issue.id)])
    assert "recipients: 2\nsent: 0\nfailed: 0\nskipped: 0\npending: 2" in status.output
    assert runner.invoke(args=["issue", "pause", str(issue.id)]).output == f"Issue {issue.id} paused.\n"
    refused = runner.invoke(args=["issue", "pause", str(issue.id)])
    assert refused.exit_code == 1 and "this one is paused" in refused.output
    assert runner.invoke(args=["issue", "resume", str(issue.id)]).exit_code == 0
    assert runner.invoke(args=["issue", "cancel", str(issue.id)]).exit_code == 0
    assert "pending: 0" in runner.invoke(args=["issue", "status", str(issue.id)]).output
    assert runner.invoke(args=["issue", "status", "999999"]).exit_code == 1


@pytest.mark.parametrize("storage", ["redis", "database", "database during a Redis outage"])
def test_rate_limit_is_shared_by_every_process_and_caps_stop_sending_until_the_next_window(app_ctx, storage):
    from newsletter.sending.ratelimit import SendRateLimiter

    redis_url = {"redis": app_ctx.extensions["settings"].redis_url, "database": "",
                 "database during a Redis outage": f"redis://127.0.0.1:{free_port()}"}[storage]
    config = {"REDIS_URL": redis_url, "SEND_RATE_PER_SECOND": 1, "SEND_RATE_PER_HOUR": 0, "SEND_RATE_PER_DAY": 0}
    name = f"test-rate-{secrets.token_hex(4)}"
    # Two limiters on one bucket are what two worker processes have.
    first, second = (SendRateLimiter(config, name=name, engine=db.engine) for _ in range(2))
    started = time.monotonic()
    waits = [limiter.reserve().wait for _ in range(3) for limiter in (first, second)]
    elapsed = time.monotonic() - started
    # One a second across both: the sixth message waits 5 s from the first (less the time the bookings took);
    # each on a bucket of its own would wait 2 s.
    assert waits[0] == 0 and 5 - elapsed - 0.1 <= waits[-1] <= 5

    capped = SendRateLimiter({**config, "SEND_RATE_PER_SECOND": 100, "SEND_RATE_PER_HOUR": 7},
                             name=f"test-cap-{secrets.token_hex(4)}", engine=db.engine)
    assert [capped.reserve(5).count for _ in range(3)] == [5, 2, 0]  # at most rate/20 at once, 7 an hour
    assert 0 < capped.reserve().wait <= 3600


def test_a_process_cut_off_from_every_shared_bucket_sends_only_its_share(app_ctx, tmp_path):
    from sqlalchemy import create_engine

    from newsletter.sending.ratelimit import FALLBACK_SHARE, SendRateLimiter

    unreachable = create_engine(f"sqlite:///{tmp_path}/no/such/folder/db.sqlite")
    limiter = SendRateLimiter({"REDIS_URL": f"redis://127.0.0.1:{free_port()}", "SEND_RATE_PER_SECOND": 8},
                              engine=unreachable)
    waits = [limiter.reserve().wait for _ in range(6)]
    # At the whole rate (8/s, a burst of 8) all six would go at once; at a quarter (2/s) the sixth waits 2 s.
    assert FALLBACK_SHARE == 4 and waits[1] < 0.05 and waits[-1] > 1.5


def test_hourly_cap_gives_the_rest_of_the_batch_back_for_later(app_factory, smtp):
    app = app_factory(SEND_RATE_PER_HOUR=2, REDIS_URL="")
    engine._shared_limiter.cache_clear()  # a fresh hour's count for this process
    with app.app_context():
        issue = _dispatched_to(5)

        result = engine.send_batch(issue.id)

        assert (result.sent, result.released, result.stopped) == (2, 3, "rate cap")
        assert ledger.batches_needed(issue.id) == 0  # not before the next hour
        assert control.progress(issue.id).pending == 3


def test_warm_up_plan_caps_the_day_and_the_issue_waits_for_tomorrow_saying_so(auth, app_factory, smtp, monkeypatch):
    from newsletter.sending import warmup

    assert [warmup.cap_on(day, 50, 4) for day in (1, 2, 3, 4, 5)] == [50, 100, 200, 400, None]
    app = app_factory(REDIS_URL="", SEND_WARMUP_START=3, SEND_WARMUP_DAYS=5)
    with app.app_context():
        issue = _dispatched_to(5)

        result = engine.send_batch(issue.id)

        assert (result.sent, result.released, result.stopped) == (3, 2, "rate cap")
        assert control.progress(issue.id).status == "sending" and ledger.batches_needed(issue.id) == 0
        tomorrow = datetime.combine(utcnow().date() + timedelta(days=1), datetime.min.time())
        waiting = db.session.scalars(select(Delivery.next_attempt_at).where(Delivery.status == "pending")).all()
        assert len(waiting) == 2 and all(abs((at - tomorrow).total_seconds()) < 5 for at in waiting)
        client = auth.login(app.test_client())
        page = " ".join(client.get(f"/admin/issues/{issue.id}").get_data(as_text=True).split())
    assert "day 1 of 5: up to 3 messages today, 3 used." in page
    assert "the rest goes out tomorrow, on its own." in page
    assert len(smtp.messages) == 3


def test_a_batch_claims_at_most_the_batch_size(app_factory, smtp):
    app = app_factory(SEND_BATCH_SIZE=2)
    with app.app_context():
        issue = _dispatched_to(5)

        assert ledger.batches_needed(issue.id) == 3
        assert [engine.send_batch(issue.id).sent for _ in range(4)] == [2, 2, 1, 0]


def test_sending_leaves_the_issues_last_edit_time_alone(app_ctx, smtp):
    add_readers(2)
    issue = add_issue()
    edited = issue.updated_at
    dispatcher.dispatch(issue.id)
    control.pause(issue.id)
    control.resume(issue.id)
    send_all(issue.id)

    db.session.commit()
    assert (issue.status, issue.updated_at) == ("sent", edited)


def test_one_readers_full_mailbox_defers_only_that_reader(app_ctx, smtp):
    """A 452 to RCPT delays that one delivery on its own schedule; everyone else gets the issue."""
    readers = add_readers(5)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    smtp.reject("reader2@example.org", 452)

    result = engine.send_batch(issue.id)

    assert (result.sent, result.deferred, result.failed) == (4, 1, 0)
    assert copies_by_reader(smtp) == Counter({r.email: 1 for r in readers if r.email != "reader2@example.org"})
    assert delivery_statuses(issue.id) == Counter(sent=4, pending=1)
    assert db.session.scalar(select(Subscriber.status).where(Subscriber.email == "reader2@example.org")) == "active"
    assert db.session.get(Issue, issue.id).status == "sending", "the issue waits for the deferred reader"
    assert engine.send_batch(issue.id).claimed == 0, "not retried before its backoff"


def test_a_refused_sender_pauses_the_issue_and_bounces_nobody(app_factory, smtp):
    app = app_factory(SEND_MAX_CONSECUTIVE_FAILURES=3, MAIL_FROM="Practice <blocked@newsletter.test>")
    with app.app_context():
        issue = _dispatched_to(4)
        smtp.reject_sender("blocked@newsletter.test", 550)

        result = engine.send_batch(issue.id)

        assert result.stopped == "paused" and result.failed == 0
        assert delivery_statuses(issue.id) == Counter(pending=4)
        assert db.session.scalar(select(func.count()).select_from(Suppression)) == 0
        assert "refused our sender" in db.session.get(Issue, issue.id).pause_reason


def test_list_unsubscribe_offers_the_mailto_where_configured(app_factory):
    app = app_factory(UNSUBSCRIBE_MAILTO="unsubscribe@newsletter.test")
    with app.app_context():
        [reader] = add_readers(1)
        issue = add_issue()
        recipient = ledger.Recipient(1, reader.id, reader.email, reader.name, reader.token_key, "active")

        message = BytesParser(policy=policy.default).parsebytes(issue_mail.IssueMail(issue).for_reader(recipient))

        url = subscriptions.unsubscribe_url(reader)
        assert message["List-Unsubscribe"] == f"<{url}>, <mailto:unsubscribe@newsletter.test?subject=unsubscribe>"
