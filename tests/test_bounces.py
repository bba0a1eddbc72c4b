"""Bounces and complaints that arrive later: recording, soft-bounce counting, `flask bounces ingest`
with DSN and ARF samples (tests/data/), VERP return paths, and the complaint-rate pause."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.deliverability import bounces
from newsletter.deliverability.bounces import Report
from newsletter.mail import suppression, verp
from newsletter.models import BounceEvent, Issue, OutgoingMail, Subscriber
from newsletter.models.issues import PAUSED, SENDING
from newsletter.sending import control, dispatcher, engine
from tests.helpers import DATA, READER, add_issue, add_reader, add_readers, bounce_event_count, reader_status, send_all
from tests.support import change_settings


def test_same_provider_event_counts_once(app_ctx):
    add_reader()
    report = Report("mailgun", "soft", email=READER, event_id="evt-1")
    assert [bounces.record(report) for _ in range(3)] == ["counted", "duplicate", "duplicate"]
    db.session.commit()
    assert bounce_event_count() == 1


def test_soft_bounces_suppress_only_after_the_limit_within_the_window(app_factory):
    app = app_factory(BOUNCE_SOFT_LIMIT=3, BOUNCE_SOFT_WINDOW_DAYS=30)
    with app.app_context():
        add_reader()
        old = bounces.record(Report("ses", "soft", email=READER, event_id="old"))
        db.session.execute(BounceEvent.__table__.update().values(created_at=BounceEvent.created_at - timedelta(days=31)))
        outcomes = [old] + [bounces.record(Report("ses", "soft", email=READER, event_id=f"e{i}")) for i in range(3)]
        db.session.commit()
        assert outcomes == ["counted", "counted", "counted", "suppressed"]
        assert reader_status() == "bounced"
        assert suppression.is_suppressed(READER)


def test_provider_unsubscribe_unsubscribes_with_a_consent_record(app_ctx):
    reader = add_reader()
    assert bounces.record(Report("sendgrid", "unsubscribe", email=READER.upper())) == "unsubscribed"
    db.session.commit()
    assert reader_status() == "unsubscribed"
    assert [event.action for event in reader.consent_events] == ["unsubscribe"]
    assert not suppression.is_suppressed(READER)  # they may sign up again


# -- flask bounces ingest

def test_ingest_hard_bounce_dsn_file_suppresses_the_reader(app_ctx, runner):
    add_reader()
    result = runner.invoke(args=["bounces", "ingest", str(DATA / "dsn_hard.eml")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "hard bounce: the address will not be mailed again."
    assert reader_status() == "bounced"
    # Piped in twice (an MTA retrying): recorded once.
    again = runner.invoke(args=["bounces", "ingest", str(DATA / "dsn_hard.eml")])
    assert again.output.strip() == "hard bounce: already recorded before."
    assert bounce_event_count() == 1
    assert READER not in db.session.scalar(select(BounceEvent.reason))


def test_ingest_delayed_dsn_from_stdin_only_counts(app_ctx, runner):
    add_reader()
    result = runner.invoke(args=["bounces", "ingest"], input=(DATA / "dsn_delayed.eml").read_bytes())
    assert result.exit_code == 0, result.output
    assert "soft bounce: counted" in result.output
    assert reader_status() == "active"


def test_ingest_arf_complaint_unsubscribes_and_names_the_issue(app_ctx, runner):
    change_settings(app_ctx, COMPLAINT_REPORTERS="postmaster@elsewhere.example, example.com")  # a subdomain sent it
    add_reader()
    db.session.add(Issue(id=7, title="Turning toward", subject="Turning toward", slug="turning-toward", status="sent"))
    db.session.commit()
    result = runner.invoke(args=["bounces", "ingest", str(DATA / "arf_abuse.eml")])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "spam complaint: the address will not be mailed again."
    assert reader_status() == "complained"
    assert db.session.scalar(select(BounceEvent.issue_id)) == 7


@pytest.mark.parametrize("content", [b"Hello, this is just a note.\n", b"\x00\xff\xfe garbage",
                                     b"Content-Type: multipart/report; report-type=disposition-notification\n\n"])
def test_ingest_unreadable_message_fails_clearly_and_changes_nothing(app_ctx, runner, tmp_path, content):
    add_reader()
    path = tmp_path / "note.eml"
    path.write_bytes(content)
    result = runner.invoke(args=["bounces", "ingest", str(path)])
    assert result.exit_code != 0
    assert f"Cannot read {path}:" in result.output
    assert reader_status() == "active" and bounce_event_count() == 0


def test_ingest_missing_file_fails_clearly(app_ctx, runner, tmp_path):
    result = runner.invoke(args=["bounces", "ingest", str(tmp_path / "nope.eml")])
    assert result.exit_code != 0 and "No such file or directory" in result.output


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(
    st.binary(max_size=400),
    st.text(max_size=400).map(lambda body: (
        "Content-Type: multipart/report; report-type=delivery-status; boundary=b\n\n--b\n"
        "Content-Type: message/delivery-status\n\n" + body + "\n--b--\n").encode("utf-8", "surrogateescape")),
))
def test_any_input_is_read_or_refused_clearly_never_crashes(app_ctx, raw):
    try:
        reports = bounces.read_report(raw)
    except bounces.UnreadableReport:
        return
    assert all(report.kind in ("hard", "soft") for report in reports)


# -- VERP

def test_verp_return_path_names_the_reader_of_a_vague_bounce(app_factory, smtp):
    app = app_factory(BOUNCE_VERP=True)
    with app.app_context():
        reader = add_reader()
        issue = add_issue()
        dispatcher.dispatch(issue.id)
        send_all(issue.id)
        [received] = smtp.messages
        assert received.mail_from.startswith("newsletter+b-d") and received.mail_from.endswith("@newsletter.test")
        # The bounce names a forwarding address, not the reader's: the signed return path says who it was.
        dsn = (DATA / "dsn_vague.eml").read_bytes().replace(b"RETURN_PATH", received.mail_from.encode())
        result = app.test_cli_runner().invoke(args=["bounces", "ingest"], input=dsn)
        assert result.exit_code == 0, result.output
        assert reader_status(reader.email) == "bounced"
        assert db.session.scalar(select(BounceEvent.issue_id)) == issue.id


def test_a_forged_verp_token_names_nobody(app_factory):
    app = app_factory(BOUNCE_VERP=True)
    with app.app_context():
        add_reader()
        real = verp.verp("newsletter@newsletter.test", delivery_id=1)
        forged = real[:-len("@newsletter.test") - 1] + ("0" if real[-len("@newsletter.test") - 1] != "0" else "1")
        assert verp.read_verp(real) == ("d", 1)
        assert verp.read_verp(forged + "@newsletter.test") is None
        dsn = (DATA / "dsn_vague.eml").read_bytes().replace(b"RETURN_PATH", (forged + "@newsletter.test").encode())
        result = app.test_cli_runner().invoke(args=["bounces", "ingest"], input=dsn)
        assert result.exit_code == 0
        assert reader_status() == "active"


def test_transactional_mail_leaves_with_its_own_return_path_on_the_bounce_domain(app_factory, smtp):
    from newsletter.mail import outgoing

    app = app_factory(BOUNCE_VERP=True, BOUNCE_DOMAIN="bounces.newsletter.test")
    with app.app_context():
        add_reader()
        row = outgoing.queue(kind="welcome", to=READER, subject="Welcome", text="Glad you are here.")
        db.session.commit()
        assert outgoing.deliver(row.id) == "sent"
        [received] = smtp.messages
        assert received.mail_from.startswith(f"newsletter+b-m{row.id}-")
        assert received.mail_from.endswith("@bounces.newsletter.test")
        assert bounces.from_verp([received.mail_from]) == {"mail_id": row.id}
        assert bounces.record(Report("dsn", "hard", **bounces.from_verp([received.mail_from]))) == "suppressed"
        db.session.commit()
        assert db.session.get(OutgoingMail, row.id) is not None and reader_status() == "bounced"


def test_without_verp_the_envelope_sender_is_mail_from(app_ctx, smtp):
    add_reader()
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    send_all(issue.id)
    assert [message.mail_from for message in smtp.messages] == ["newsletter@newsletter.test"]


# -- complaint rate: the admin sees it, sending pauses above 0.3 %

def complain(readers: list[Subscriber], issue_id: int) -> None:
    for reader in readers:
        bounces.record(Report("ses", "complaint", email=reader.email, issue_id=issue_id))
    db.session.commit()


def test_complaints_above_the_limit_pause_the_next_issue_and_the_admin_sees_why(auth, app_ctx, client, smtp):
    readers = add_readers(20)
    first = add_issue()
    dispatcher.dispatch(first.id)
    send_all(first.id)
    complain(readers[:1], first.id)
    assert bounces.health().warn and not bounces.should_pause(first.id)  # one complaint alone never pauses
    complain(readers[1:2], first.id)
    second = add_issue()
    dispatcher.dispatch(second.id)
    db.session.commit()
    assert db.session.get(Issue, second.id).status == PAUSED
    assert "marked recent issues as spam" in db.session.get(Issue, second.id).pause_reason
    send_all(second.id)
    assert len(smtp.messages) == 20  # only the first issue's copies

    auth.login(client)
    page = client.get(f"/admin/issues/{first.id}").get_data(as_text=True)
    assert "Bounces and complaints" in page and "<strong>2</strong> marked as spam" in page
    assert "10.00 % of 20 delivered" in page
    assert "New issues pause as they start" in client.get("/admin/").get_data(as_text=True)


def test_complaints_arriving_while_an_issue_sends_stop_it(app_ctx, smtp, monkeypatch):
    readers = add_readers(20)
    first = add_issue()
    dispatcher.dispatch(first.id)
    send_all(first.id)
    second = add_issue()
    dispatcher.dispatch(second.id)
    complain(readers[:2], first.id)  # reported after the second issue started
    monkeypatch.setattr(engine, "STATUS_CHECK_EVERY", 0.0)  # the batch looks before its first message
    result = engine.send_batch(second.id)
    assert (result.stopped, result.sent) == (PAUSED, 0)
    assert db.session.get(Issue, second.id).pause_reason == bounces.PAUSE_REASON
    assert len(smtp.messages) == 20

    # She resumes, knowing: the issue goes on, until one more reader complains.
    control.resume(second.id)
    db.session.commit()
    change_settings(app_ctx, SEND_BATCH_SIZE=10)
    assert engine.send_batch(second.id).sent == 10
    complain(readers[2:3], first.id)
    assert engine.send_batch(second.id).stopped == PAUSED
    db.session.commit()
    assert db.session.get(Issue, second.id).status == PAUSED and len(smtp.messages) == 30


def test_a_sending_issue_without_complaints_is_not_paused(app_ctx, smtp):
    add_readers(3)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    db.session.commit()
    assert db.session.get(Issue, issue.id).status == SENDING
    assert "deliverability-warning" not in app_ctx.jinja_env.get_template(
        "admin/_deliverability_warning.html").render()


def test_the_warning_and_an_issues_bounces_read_well_on_a_phone(app_ctx, admin_page, live_server, smtp):
    page = admin_page
    readers = add_readers(20)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    send_all(issue.id)
    complain(readers[:2], issue.id)
    bounces.record(Report("postmark", "hard", email=readers[2].email, issue_id=issue.id))
    db.session.commit()  # the live server reads it from its own session

    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{live_server}/admin/")
    assert "marked 2 of the 20 issues they got as spam" in page.locator("#deliverability-warning").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    page.goto(f"{live_server}/admin/issues/{issue.id}")
    section = page.locator("#issue-bounces")
    assert "1 address no longer exists" in section.inner_text().replace("\n", " ")
    assert section.evaluate("element => element.scrollWidth <= element.clientWidth")
