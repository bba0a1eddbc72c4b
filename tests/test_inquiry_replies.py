"""Answering an inquiry from the admin: a threaded reply from the practice address, a recorded call,
and a mailto: link that records nothing."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy import text as sql

from newsletter.core.extensions import db
from newsletter.inquiries import jobs
from newsletter.mail import outgoing
from newsletter.models import Inquiry, InquiryAccess, InquiryResponse, OutgoingMail, utcnow
from tests.helpers import MESSAGE, PRACTICE, html_of, place_in, queued, submit, text_of
from tests.support import wait_for

REPLY = "Hello Dana,\nThank you for writing. I have an opening on Tuesday at 4 pm. Would that suit you both?\nShoshana"


@pytest.fixture
def inquiry_id(auth, app, client) -> int:
    """Signed in as the therapist, with Dana's new inquiry (the shared test form); its id."""
    with app.app_context():
        auth.login(client)
        return submit().inquiry_id


def reply_count() -> int:
    db.session.remove()
    return db.session.scalar(select(func.count()).select_from(OutgoingMail).where(OutgoingMail.kind == "inquiry_reply"))


def test_reply_is_threaded_under_the_acknowledgement_from_the_practice_and_quotes_the_inquiry(app, client, inquiry_id):
    response = client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": REPLY, "quote_inquiry": "y"})

    assert response.status_code == 302
    with app.app_context():
        [ack] = queued("inquiry_ack")
        [reply] = queued("inquiry_reply")
        assert ack["Message-ID"] and reply["In-Reply-To"] == ack["Message-ID"] == reply["References"]
        assert ack["Reply-To"] == reply["Reply-To"] == PRACTICE
        assert reply["To"] == "Dana Reyes <dana@example.com>"
        assert reply["From"] == ack["From"]
        assert reply["Subject"] == "Re: " + ack["Subject"]
        text = text_of(reply)
        assert "I have an opening on Tuesday at 4 pm." in text
        assert "> " + MESSAGE in text and "you wrote:" in text
        assert MESSAGE in html_of(reply) and "opening on Tuesday" in html_of(reply)
        inquiry = db.session.get(Inquiry, inquiry_id)
        assert inquiry.status == "contacted" and inquiry.first_response_at is not None
        [stored] = db.session.scalars(select(InquiryResponse)).all()
        assert stored.kind == "email" and "Tuesday" in stored.body
        assert b"Tuesday" not in bytes(db.session.scalar(sql("SELECT body FROM inquiry_responses")))
    page = client.get(f"/admin/inquiries/{inquiry_id}").get_data(as_text=True)
    assert "You replied by e-mail" in page and "I have an opening on Tuesday" in page


def test_reply_without_the_quote_leaves_the_inquiry_out(app, client, inquiry_id):
    client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": "Glad you wrote."})

    with app.app_context():
        [reply] = queued("inquiry_reply")
        assert "Glad you wrote." in text_of(reply)
        assert MESSAGE not in text_of(reply) and MESSAGE not in html_of(reply)


def test_a_second_reply_keeps_the_first_response_time(app, client, inquiry_id):
    client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": "First."})
    with app.app_context():
        first = db.session.get(Inquiry, inquiry_id).first_response_at
        place_in(db.session.get(Inquiry, inquiry_id), "consultation_scheduled")
        db.session.commit()

    client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": "Second."})

    with app.app_context():
        inquiry = db.session.get(Inquiry, inquiry_id)
        assert inquiry.first_response_at == first and inquiry.status == "consultation_scheduled"
        assert reply_count() == 2


def test_recording_a_call_counts_as_the_first_response_with_its_note(auth, app, client):
    with app.app_context():
        auth.login(client)
        inquiry_id = submit(phone="720-555-0100", preferred_contact="phone").inquiry_id

    assert client.post(f"/admin/inquiries/{inquiry_id}/call", data={"note": "Left a <b>voicemail</b>"}).status_code == 302

    with app.app_context():
        inquiry = db.session.get(Inquiry, inquiry_id)
        assert inquiry.first_response_at is not None and inquiry.status == "contacted"
        assert reply_count() == 0
    page = client.get(f"/admin/inquiries/{inquiry_id}").get_data(as_text=True)
    assert "You called" in page and "Left a &lt;b&gt;voicemail&lt;/b&gt;" in page


def test_a_call_needs_no_note(app, client, inquiry_id):
    assert client.post(f"/admin/inquiries/{inquiry_id}/call", data={}).status_code == 302

    with app.app_context():
        assert db.session.get(Inquiry, inquiry_id).first_response_at is not None


def test_the_mailto_link_is_offered_and_opening_the_page_records_no_response(app, client, inquiry_id):
    page = client.get(f"/admin/inquiries/{inquiry_id}").get_data(as_text=True)

    assert 'href="mailto:dana@example.com?subject=Your%20inquiry%20to%20' in page
    with app.app_context():
        inquiry = db.session.get(Inquiry, inquiry_id)
        assert inquiry.first_response_at is None and inquiry.status == "new"


def test_an_empty_reply_is_refused_with_a_message_and_sends_nothing(app, client, inquiry_id):
    response = client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": "   "})

    assert response.status_code == 400 and "Please write your reply first." in response.get_data(as_text=True)
    with app.app_context():
        assert reply_count() == 0 and db.session.get(Inquiry, inquiry_id).first_response_at is None


def test_a_reply_too_long_is_refused_and_what_she_wrote_stays_in_the_box(app, client, inquiry_id):
    response = client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": "Dear Dana " + "x" * 10_000})

    assert response.status_code == 400 and "under 10,000 characters" in response.get_data(as_text=True)
    assert "Dear Dana xxx" in response.get_data(as_text=True)
    with app.app_context():
        assert reply_count() == 0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.text(max_size=300), note=st.text(max_size=100))
def test_any_reply_or_call_note_is_sent_safely_or_refused_never_an_error(auth, app, client, body, note):
    with app.app_context():
        auth.stay_signed_in(client)
        inquiry_id = submit(email=f"dana{abs(hash(body)) % 10**9}@example.com").inquiry_id
        replies_before = reply_count()

    replied = client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": body})
    called = client.post(f"/admin/inquiries/{inquiry_id}/call", data={"note": note})

    assert replied.status_code in (302, 400) and called.status_code in (302, 400)
    with app.app_context():
        assert reply_count() == replies_before + (replied.status_code == 302)
        if replied.status_code == 302:
            reply = queued("inquiry_reply")[-1]
            assert reply["To"].addresses[0].addr_spec.startswith("dana") and len(reply["To"].addresses) == 1
            assert set(reply.keys()) == {"From", "To", "Subject", "Date", "Message-ID", "Reply-To", "In-Reply-To",
                                         "References", "Content-Type", "MIME-Version"}


def test_a_purged_inquiry_cannot_be_answered_and_its_replies_are_erased(app, client, inquiry_id):
    client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": REPLY})
    with app.app_context():
        db.session.get(Inquiry, inquiry_id).created_at = utcnow() - timedelta(days=400)
        db.session.commit()
        assert jobs.purge_expired() == 1
        db.session.commit()
        assert db.session.scalar(select(func.count()).select_from(InquiryResponse)) == 0
        replies_before = reply_count()

    assert client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": "Hello?"}).status_code == 404
    with app.app_context():
        assert reply_count() == replies_before


def test_reply_reaches_the_inquirer_through_the_real_worker_threaded(app, client, smtp, worker, inquiry_id):
    with app.app_context():
        [ack] = queued("inquiry_ack")

    client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": REPLY, "quote_inquiry": "y"})

    smtp.wait_for_messages(1)
    [received] = smtp.to("dana@example.com")
    assert received.message["In-Reply-To"] == ack["Message-ID"]
    assert "opening on Tuesday" in received.message.get_body(("plain",)).get_content()
    with app.app_context():
        assert db.session.scalar(select(InquiryAccess.action).where(InquiryAccess.action == "replied by e-mail"))


def test_she_answers_an_inquiry_in_the_browser(app, live_server, admin_page, smtp, worker):
    page = admin_page
    with app.app_context():
        inquiry_id = submit(name="Sam Ortiz", email="sam@example.com").inquiry_id
    page.goto(f"{live_server}/admin/inquiries/{inquiry_id}")

    page.get_by_label("Your reply").fill("Hi Sam, thanks for writing. Could we talk on Thursday?")
    page.get_by_role("button", name="Send reply").click()
    page.get_by_text("Send this reply to sam@example.com?").wait_for()  # it asks first, and shows what goes
    assert page.get_by_text("Could we talk on Thursday?").is_visible()
    page.get_by_role("button", name="Yes, send it").click()

    page.get_by_text("Your reply is on its way.").wait_for()
    assert page.get_by_text("You replied by e-mail").is_visible()
    with app.app_context():  # what beat's sweeper does every 30 s, in case the worker's hand-off was missed
        outgoing.deliver_due()
    wait_for(lambda: any("talk on Thursday" in text_of(m.message) for m in smtp.to("sam@example.com")),
             message="her reply never reached the SMTP server")


# -- a kind close-out

def test_a_kind_referral_lists_her_colleagues_and_closes_the_inquiry_as_referred(app, client, inquiry_id):
    assert client.post("/admin/practice/referrals", data={
        "referral_colleagues": "Maya Chen, LMFT – Gottman couples work – 303-555-0142\n\n",
        "low_cost_options": "Denver Family Institute sliding scale"}).status_code == 302

    page = client.get(f"/admin/inquiries/{inquiry_id}?compose=referral").get_data(as_text=True)
    body = page[page.index('name="body"'):page.index("</textarea>")]
    assert "Maya Chen, LMFT – Gottman couples work – 303-555-0142" in body
    assert "Denver Family Institute sliding scale" in body and "741741" in body and "988" in body
    assert 'name="close_as" type="hidden" value="referred"' in page

    response = client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", 
        "body": "Hello,\nMaya Chen would be a good fit.\n", "close_as": "referred"})

    assert response.status_code == 302
    with app.app_context():
        assert db.session.get(Inquiry, inquiry_id).status == "referred"
        [reply] = queued("inquiry_reply")
        assert "Maya Chen would be a good fit." in text_of(reply)
    assert "Referred elsewhere (1)" in client.get("/admin/inquiries").get_data(as_text=True)


def test_an_unknown_way_to_close_is_refused_and_sends_nothing(app, client, inquiry_id):
    response = client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": "Hi", "close_as": "client"})

    assert response.status_code == 400 and "Unknown way to close the inquiry." in response.get_data(as_text=True)
    with app.app_context():
        assert reply_count() == 0 and db.session.get(Inquiry, inquiry_id).status == "new"
