"""Inquiries: what the practice and the inquirer receive, privacy at rest, the admin pipeline,
the daily digest, the purge after retention, and the spam folder."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, text

from newsletter.core.extensions import db
from newsletter.inquiries import jobs, pipeline, reports, states
from newsletter.mail import outgoing
from newsletter.mail.addresses import InvalidAddress
from newsletter.models import Inquiry, InquiryAccess, InquiryNote, OutgoingMail, utcnow
from tests.helpers import ADMIN_EMAIL, MESSAGE, PRACTICE, html_of, queued, submit, text_of

# -- what goes out

def test_forward_goes_to_the_practice_inbox_with_reply_to_the_inquirer_and_every_field(app_ctx):
    submit(phone="720-555-0100", preferred_contact="phone")

    [forward] = queued("inquiry_forward")
    assert forward["To"] == PRACTICE
    assert forward["Reply-To"] == "Dana Reyes <dana@example.com>"
    assert forward["Subject"] == "New inquiry from Dana via the website"
    assert MESSAGE not in forward["Subject"]
    for part in (text_of(forward), html_of(forward).replace("\u2011", "-")):  # the number's hyphens don't break
        assert "Dana Reyes" in part and "dana@example.com" in part and "720-555-0100" in part
        assert "phone" in part and "/admin/inquiries/" in part
    assert MESSAGE in text_of(forward)
    assert "mother-in-law" in html_of(forward)


def test_acknowledgement_is_warm_says_when_to_expect_a_reply_and_never_claims_it_was_read(app_ctx):
    submit()

    [ack] = queued("inquiry_ack")
    assert ack["To"] == "Dana <dana@example.com>"  # the first name only: nothing else typed is echoed
    assert ack["Subject"] == "Your message to Inner Calm Counseling has arrived"
    body = text_of(ack)
    assert "Hello Dana," in body and "automatic note" in body
    assert "typically replies within 2 business days" in body
    assert "988" in body and "911" in body
    for claim in ("has read", "have read", "read your message", "reviewed your"):
        assert claim not in body.lower() and claim not in html_of(ack).lower()
    assert MESSAGE not in body, "the acknowledgement does not repeat what they wrote"


def test_reply_days_come_from_configuration(app_factory):
    app = app_factory(INQUIRY_REPLY_BUSINESS_DAYS=1)
    with app.app_context():
        submit()
        assert "typically replies within 1 business day, so you'll hear from us by " in text_of(queued("inquiry_ack")[0])


def test_urgent_message_flags_the_forward_and_leads_the_acknowledgement_with_crisis_resources(app_ctx):
    result = submit(message="Things are bad. Some nights I don’t want to live anymore.")

    assert result.urgent
    [forward] = queued("inquiry_forward")
    assert forward["Subject"] == "[URGENT] New inquiry from Dana via the website"
    ack = text_of(queued("inquiry_ack")[0])
    # A neutral first line (what an inbox list shows), then the crisis resources before anything else.
    assert ack.lstrip().splitlines()[:3] == [
        "Hello Dana,", "", "If you are in crisis or thinking about harming yourself, please don't wait for our reply:"]
    assert ack.index("988") < ack.index("Thank you for reaching out")
    assert "Text HOME to 741741" in ack and "call 911" in ack
    html = html_of(queued("inquiry_ack")[0])
    assert html.index("Hello Dana") < html.index("741741") < html.index("Thank you for reaching out")


def test_ordinary_message_is_not_urgent(app_ctx):
    result = submit(message="We've been killing it at work but our marriage is dead tired.")

    assert not result.urgent
    assert not queued("inquiry_forward")[0]["Subject"].startswith("[URGENT]")


def test_notice_mode_keeps_the_inquirers_words_out_of_mail(app_factory):
    app = app_factory(INQUIRY_FORWARD_MODE="notice")
    with app.app_context():
        submit(phone="720-555-0100")
        assert queued("inquiry_forward") == []
        [notice] = queued("inquiry_notice")
        assert notice["To"] == PRACTICE
        assert notice["Subject"] == "New inquiry via the website"
        whole = notice.as_string()
        assert "mother-in-law" not in whole and "720-555-0100" not in whole.replace("\u2011", "-")
        assert "http://newsletter.test/admin/inquiries/" in text_of(notice)


INJECTION = "x\r\nBcc: victim@evil.test\r\nSubject: hijacked\n"


@pytest.mark.parametrize("field", ["name", "phone", "message"])
def test_line_breaks_in_any_field_never_add_a_header_or_recipient(app_ctx, field):
    submit(**{field: "Dana" + INJECTION})

    messages = queued()
    assert len(messages) == 2
    for message in messages:
        assert message["Bcc"] is None
        assert len(message.get_all("Subject")) == 1 and "hijacked" not in message["Subject"]
        for header in ("To", "Reply-To", "Cc"):
            if message[header] is not None:
                assert [a.addr_spec for a in message[header].addresses] in (["dana@example.com"], [PRACTICE])
    recipients = db.session.scalars(select(OutgoingMail.recipient)).all()
    assert sorted(recipients) == ["dana@example.com", PRACTICE]


def test_line_breaks_in_the_email_address_are_refused_and_nothing_is_stored(app_ctx):
    with pytest.raises(InvalidAddress):
        submit(email="dana@example.com" + INJECTION)

    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Inquiry)) == 0
    assert queued() == []


def test_markup_in_the_message_is_escaped_in_the_forward(app_ctx):
    submit(name="<b>Dana</b>", message='<script>alert("hi")</script> <img src=x onerror=alert(1)>')

    html = html_of(queued("inquiry_forward")[0])
    assert "<script>" not in html and "<img src=x" not in html and "<b>Dana</b>" not in html
    assert "&lt;script&gt;" in html and "&lt;b&gt;Dana&lt;/b&gt;" in html
    assert '<script>alert("hi")</script>' in text_of(queued("inquiry_forward")[0])


def test_the_raw_database_row_does_not_contain_the_message_or_phone(app_ctx):
    submit(phone="720-555-0188", message="A very particular sentence about our anniversary trip.")

    db.session.remove()
    for table in ("inquiries", "outgoing_mail"):
        for row in db.session.execute(text(f"SELECT * FROM {table}")):
            raw = repr(tuple(bytes(v) if isinstance(v, memoryview) else v for v in row))
            assert "anniversary" not in raw and "720-555-0188" not in raw
    inquiry = db.session.scalar(select(Inquiry))
    assert inquiry.message == "A very particular sentence about our anniversary trip."


def test_the_same_message_sent_twice_is_one_inquiry_with_one_forward(app_ctx):
    first = submit()
    again = submit(name="Dana R.")

    assert again.inquiry_id == first.inquiry_id and not again.needs_mail
    assert len(queued()) == 2
    assert submit(message="One more thing: evenings work best.").inquiry_id != first.inquiry_id


# -- spam

@pytest.mark.parametrize("message, reason", [
    ("Cheap SEO services! http://a.example http://b.example http://c.example", "3 links"),
    ('Visit <a href="http://x.example">my site</a>', "link markup"),
    ("Best online casino bonuses this week", "advertising words"),
])
def test_suspected_spam_is_kept_in_the_spam_folder_and_not_forwarded(app_ctx, message, reason):
    result = submit(message=message)

    assert result.spam and not result.needs_mail
    inquiry = db.session.get(Inquiry, result.inquiry_id)
    assert inquiry.spam and reason in inquiry.spam_reason
    assert queued() == []
    assert [i.id for i in pipeline.list_inquiries(spam=True)] == [inquiry.id]
    assert pipeline.list_inquiries() == []


def test_a_filled_honeypot_is_kept_as_spam_not_dropped(app_ctx):
    result = submit(honeypot_filled=True)

    assert result.spam and queued() == []
    assert db.session.get(Inquiry, result.inquiry_id).spam_reason == "the hidden field was filled in"


def test_an_urgent_message_is_never_treated_as_spam(app_ctx):
    result = submit(message="I want to die. http://a.example http://b.example http://c.example", honeypot_filled=True)

    assert result.urgent and not result.spam
    assert len(queued()) == 2


def test_one_or_two_links_are_fine(app_ctx):
    assert not submit(message="I found you on https://www.psychologytoday.com, is this still current?").spam


def test_not_spam_sends_the_forward_and_acknowledgement_it_never_got_once(app_ctx):
    result = submit(message="Best online casino near our house? Kidding, we need help.")
    inquiry = db.session.get(Inquiry, result.inquiry_id)

    assert len(pipeline.not_spam(inquiry, None)) == 2
    db.session.commit()
    states.transition(inquiry, "spam", None)
    assert pipeline.not_spam(inquiry, None) == []
    db.session.commit()
    assert len(queued()) == 2


# -- the admin pipeline

def test_admin_detail_view_shows_the_message_escaped_and_logs_the_access(auth, app, client):
    with app.app_context():
        auth.login(client)
        inquiry_id = submit(message="<script>alert(1)</script> we argue a lot").inquiry_id

    response = client.get(f"/admin/inquiries/{inquiry_id}")

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt; we argue a lot" in page and "<script>alert(1)" not in page
    client.get(f"/admin/inquiries/{inquiry_id}")
    with app.app_context():
        actions = db.session.scalars(select(InquiryAccess.action).where(InquiryAccess.inquiry_id == inquiry_id)).all()
        assert actions == ["viewed", "viewed"]
        assert ADMIN_EMAIL in client.get(f"/admin/inquiries/{inquiry_id}").get_data(as_text=True)


def test_admin_list_shows_inbox_and_spam_folder_separately(auth, app, client):
    with app.app_context():
        auth.login(client)
        submit(name="Real Person")
        submit(name="Spammy", message="casino casino")

    inbox = client.get("/admin/inquiries").get_data(as_text=True)
    spam = client.get("/admin/inquiries?folder=spam").get_data(as_text=True)

    assert "Real Person" in inbox and "Spammy" not in inbox
    assert "Spammy" in spam and "Real Person" not in spam and "advertising words" in spam
    assert 'href="/admin/inquiries"' in client.get("/admin/").get_data(as_text=True)


def test_status_changes_move_along_the_pipeline_and_the_first_one_is_the_response_time(auth, app, client):
    with app.app_context():
        auth.login(client)
        inquiry_id = submit().inquiry_id
        db.session.get(Inquiry, inquiry_id).created_at = utcnow() - timedelta(hours=3, minutes=5)
        db.session.commit()

    for action in ("mark_contacted", "mark_scheduled", "close_client"):
        assert client.post(f"/admin/inquiries/{inquiry_id}/status", data={"action": action}).status_code == 302

    with app.app_context():
        inquiry = db.session.get(Inquiry, inquiry_id)
        assert inquiry.status == "client"
        assert reports.describe_wait(reports.response_time(inquiry)) == "3 h 5 min"
    assert "after 3 h 5 min" in client.get(f"/admin/inquiries/{inquiry_id}").get_data(as_text=True)
    assert "3 h 5 min" in client.get("/admin/inquiries").get_data(as_text=True)


def test_an_unknown_status_is_refused_with_a_message_and_changes_nothing(auth, app, client):
    with app.app_context():
        auth.login(client)
        inquiry_id = submit().inquiry_id

    response = client.post(f"/admin/inquiries/{inquiry_id}/status", data={"action": "deleted"})

    assert response.status_code == 400 and "Not a valid choice" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Inquiry, inquiry_id).status == "new"


def test_notes_are_stored_encrypted_and_shown_escaped(auth, app, client):
    with app.app_context():
        auth.login(client)
        inquiry_id = submit().inquiry_id

    assert client.post(f"/admin/inquiries/{inquiry_id}/notes", data={"body": "Called back <i>Tuesday</i>"}).status_code == 302
    assert client.post(f"/admin/inquiries/{inquiry_id}/notes", data={"body": "  "}).status_code == 400

    page = client.get(f"/admin/inquiries/{inquiry_id}").get_data(as_text=True)
    assert "Called back &lt;i&gt;Tuesday&lt;/i&gt;" in page
    with app.app_context():
        [note] = db.session.scalars(select(InquiryNote)).all()
        assert note.body == "Called back <i>Tuesday</i>"
        assert b"Tuesday" not in bytes(db.session.scalar(text("SELECT body FROM inquiry_notes")))


def test_spam_and_not_spam_buttons(auth, app, client):
    with app.app_context():
        auth.login(client)
        inquiry_id = submit(message="casino").inquiry_id

    client.post(f"/admin/inquiries/{inquiry_id}/spam", data={"action": "not_spam", "confirmed": "yes"})

    with app.app_context():
        assert not db.session.get(Inquiry, inquiry_id).spam
        assert len(queued()) == 2


# -- digest and purge

def test_digest_lists_inquiries_still_new_after_24_hours_once_a_day(app_ctx):
    old = submit(name="Waiting Wanda", email="wanda@example.com").inquiry_id
    answered = submit(name="Answered Ann", email="ann@example.com").inquiry_id
    submit(name="Fresh Fran", email="fran@example.com")
    submit(name="Spam Sam", message="casino")
    for inquiry_id in (old, answered):
        db.session.get(Inquiry, inquiry_id).created_at = utcnow() - timedelta(hours=25)
    states.transition(db.session.get(Inquiry, answered), "mark_contacted", None)
    db.session.commit()

    mail_ids = jobs.queue_digest()
    db.session.commit()

    assert len(mail_ids) == 1
    [digest] = queued("inquiry_digest")
    assert digest["To"] == PRACTICE
    assert digest["Subject"] == "1 inquiry still waiting for a first reply"
    body = text_of(digest)
    assert "Waiting Wanda" in body and f"/admin/inquiries/{old}" in body
    assert "Answered Ann" not in body and "Fresh Fran" not in body and "Spam Sam" not in body
    assert MESSAGE not in body
    assert jobs.queue_digest() == [], "a second run the same day sends nothing"


def test_digest_is_not_sent_when_nothing_waits(app_ctx):
    submit()
    assert jobs.queue_digest() == []


def test_digest_task_runs_through_celery(app_ctx):
    from newsletter.tasks import send_inquiry_digest

    inquiry_id = submit().inquiry_id
    db.session.get(Inquiry, inquiry_id).created_at = utcnow() - timedelta(hours=30)
    db.session.commit()

    assert send_inquiry_digest.apply().get() == 1
    assert len(queued("inquiry_digest")) == 1


def test_purge_erases_content_after_retention_and_keeps_counts(app_ctx):
    from newsletter.tasks import purge_old_inquiries

    old_id = submit(name="Old Olive", email="olive@example.com", phone="720-555-0100").inquiry_id
    recent_id = submit(name="Recent Rita", email="rita@example.com").inquiry_id
    old = db.session.get(Inquiry, old_id)
    pipeline.add_note(old, "private note", None)
    states.transition(old, "close_client", None)
    old.created_at = utcnow() - timedelta(days=366)
    db.session.execute(text("UPDATE outgoing_mail SET status = 'sent', created_at = :t WHERE id IN (1, 2)"),
                       {"t": utcnow() - timedelta(days=366)})
    db.session.commit()

    assert purge_old_inquiries.apply().get() == 1

    db.session.remove()
    old = db.session.get(Inquiry, old_id)
    assert (old.name, old.email, old.phone, old.message) == ("", "", None, None)
    assert old.purged_at is not None and old.status == "client"
    assert db.session.scalar(select(func.count()).select_from(InquiryNote)) == 0
    assert db.session.get(Inquiry, recent_id).name == "Recent Rita"
    assert reports.status_counts()["client"] == 1 and reports.status_counts()["new"] == 1
    assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == 2, "only the old sent mail went"
    assert jobs.purge_expired() == 0


def test_retention_is_configurable(app_factory):
    app = app_factory(INQUIRY_RETENTION_DAYS=30)
    with app.app_context():
        inquiry_id = submit().inquiry_id
        db.session.get(Inquiry, inquiry_id).created_at = utcnow() - timedelta(days=31)
        db.session.commit()
        assert jobs.purge_expired() == 1


def test_outbox_delivers_both_mails_to_the_real_smtp_server(app_ctx, smtp):
    submit()

    assert outgoing.deliver_due() == {"sent": 2}
    messages = smtp.wait_for_messages(2)
    assert sorted(r for m in messages for r in m.rcpt_tos) == ["dana@example.com", PRACTICE]
    assert smtp.to(PRACTICE)[0].message["Reply-To"] == "Dana Reyes <dana@example.com>"
