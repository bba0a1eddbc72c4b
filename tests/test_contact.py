"""The contact form as a prospective client meets it: the page, the embed, bad input, spam guards,
and an inquiry that reaches the practice and the inquirer through the real worker and SMTP server,
also when Redis was down at the moment of submitting."""
from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.inquiries import intake, states
from newsletter.models import Inquiry, OutgoingMail
from newsletter.readers.subscriptions import Origin
from tests.helpers import FORM, PRACTICE, at_once, csrf_token, inquiry_count, queued, submit, text_of
from tests.support import apply_stored_forms, free_port, wait_for


def test_contact_page_has_the_fields_and_the_care_notice_near_the_message_box(app_factory):
    page = app_factory(WTF_CSRF_ENABLED=True).test_client().get("/contact").get_data(as_text=True)

    for name in ("name", "email", "phone", "preferred_contact", "message", "csrf_token", "website"):
        assert f'name="{name}"' in page, name
    notice = page[page.index('id="message-care"'):page.index('name="message"')]
    assert "don't include clinical or private health details" in notice
    assert "not for emergencies" in notice and "988" in notice and "911" in notice
    assert 'class="hp"' in page


def test_embed_page_can_be_framed_only_by_configured_origins(app_factory):
    app = app_factory(EMBED_ALLOWED_ORIGINS="https://www.innercalmcounseling.com, javascript:alert(1) https://x.test;evil")
    client = app.test_client()

    response = client.get("/embed/contact")

    assert response.status_code == 200
    policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["frame-ancestors"] == "'self' https://www.innercalmcounseling.com"
    page = response.get_data(as_text=True)
    assert 'class="embed"' in page and 'action="/embed/contact"' in page and "site-header" not in page


def test_embed_form_submits_without_a_session_and_thanks_inside_the_frame(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()

    response = client.post("/embed/contact", data=FORM)

    assert response.status_code == 200 and "Thank you for reaching out" in response.get_data(as_text=True)
    assert "frame-ancestors" in response.headers["Content-Security-Policy"]
    with app.app_context():
        assert db.session.scalar(select(Inquiry.source)) == "embed"


def test_the_site_form_needs_its_csrf_token(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()

    assert client.post("/contact", data=FORM).status_code == 400
    assert client.post("/contact", data={**FORM, "csrf_token": csrf_token(client, "/contact")}).status_code == 200
    with app.app_context():
        assert inquiry_count() == 1


def test_bad_input_gets_a_clear_message_a_400_and_stores_nothing(app, client):
    cases = [
        ({"email": "not-an-address"}, "valid email address"),
        ({"email": "dana@example.com\r\nBcc: victim@evil.test"}, "valid email address"),
        ({"name": ""}, "Please tell us your name."),
        ({"message": ""}, "Please write a short message."),
        ({"message": "x" * 4001}, "under 4,000 characters"),
        ({"preferred_contact": "phone"}, "Please add a phone number, or choose email."),
        ({"preferred_contact": "fax"}, "Not a valid choice"),
        ({"phone": "720\r\nBcc: x"}, "only digits"),
    ]
    for change, message in cases:
        response = client.post("/contact", data={**FORM, **change})
        assert response.status_code == 400, change
        assert message in response.get_data(as_text=True), change
        assert FORM["message"] in response.get_data(as_text=True) or "message" in change, "their words stay in the form"
    with app.app_context():
        assert inquiry_count() == 0
        assert db.session.scalar(select(func.count()).select_from(OutgoingMail)) == 0


def test_urgent_message_thank_you_page_leads_with_crisis_resources(client):
    response = client.post("/contact", data={**FORM, "message": "I keep thinking about suicide."})

    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "741741" in page and "988" in page
    assert page.index("988") < page.index("Thank you for reaching out")


def test_ordinary_thank_you_page_is_calm_and_does_not_claim_anyone_read_it(client):
    page = client.post("/contact", data=FORM).get_data(as_text=True)

    assert "Thank you for reaching out" in page and "typically replies within 2 business days" in page
    assert "crisis-heading" not in page
    assert "read your message" not in page.lower()


def test_honeypot_submission_looks_like_success_and_lands_in_the_spam_folder(app, client):
    response = client.post("/contact", data={**FORM, "website": "http://spam.example"})

    assert response.status_code == 200 and "Thank you" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(Inquiry.spam)) is True
        assert queued() == []


def test_rate_limit_per_address_keeps_the_words_and_says_what_to_do(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True)
    client = app.test_client()

    for number in range(5):
        assert client.post("/contact", data={**FORM, "message": f"Message {number}"}).status_code == 200
    assert client.post("/contact", data={**FORM, "name": ""}).status_code == 400, "form errors are not held up"
    response = client.post("/contact", data={**FORM, "message": "One more, please keep me."})

    assert response.status_code == 429
    page = response.get_data(as_text=True)
    assert "try again in a few minutes" in page and "One more, please keep me." in page
    other = app.test_client().post("/contact", data=FORM, environ_base={"REMOTE_ADDR": "198.51.100.7"})
    assert other.status_code == 200, "another address is not limited"
    with app.app_context():
        assert inquiry_count() == 6


def test_inquiry_reaches_practice_and_inquirer_through_the_real_worker(app, client, smtp, worker):
    response = client.post("/contact", data={**FORM, "phone": "720-555-0100", "preferred_contact": "phone"})

    assert response.status_code == 200
    messages = smtp.wait_for_messages(2)
    [forward] = smtp.to(PRACTICE)
    [ack] = smtp.to("dana@example.com")
    assert forward.rcpt_tos == [PRACTICE] and ack.rcpt_tos == ["dana@example.com"]
    assert forward.message["Subject"] == "New inquiry from Dana via the website"
    assert forward.message["Reply-To"] == "Dana Reyes <dana@example.com>"
    assert forward.message["From"].addresses[0].addr_spec == PRACTICE, "From equals To: rspamd's SPOOF_REPLYTO spares it"
    assert "720-555-0100" in forward.text and FORM["message"] in forward.text
    assert ack.message["Subject"] == "Your message to Inner Calm Counseling has arrived"
    assert "by phone as you asked" in ack.text
    assert len(messages) == 2


def test_inquiry_sent_through_the_real_page_while_redis_is_down_goes_out_once_it_is_back(
        app, live_server, page, smtp, worker, redis_outage):
    from newsletter.tasks import HAND_OFF_GRACE, enqueue, sweep_outgoing_mail

    fill_in_the_form(page, live_server, "Dana Reyes", "dana@example.com")
    page.get_by_role("button", name="Send message").click()
    page.get_by_role("heading", name="Thank you for reaching out").wait_for()

    with app.app_context():
        assert inquiry_count() == 1
        assert _statuses() == []  # stored; its hand-off to a worker was lost
        _age_inquiries(HAND_OFF_GRACE)  # the sweeper leaves a fresh inquiry to its hand-off this long
    assert smtp.messages == []

    redis_outage.start()
    wait_for(lambda: enqueue(sweep_outgoing_mail), timeout=30, message="the broker did not come back")
    smtp.wait_for_messages(2, timeout=60)
    with app.app_context():
        wait_for(lambda: _statuses() == ["sent", "sent"], timeout=30)
    enqueue(sweep_outgoing_mail)  # the next sweep (beat, every 30 s) finds nothing left to send
    time.sleep(1)
    assert sorted(r for m in smtp.messages for r in m.rcpt_tos) == ["dana@example.com", PRACTICE]
    assert len(smtp.messages) == 2, "each mail went out exactly once"


def test_a_forward_to_an_inbox_on_another_domain_comes_from_the_sending_address(app_factory):
    app = app_factory(PRACTICE_INBOX="Shoshana <shoshana@gmail.example>")
    with app.app_context():
        submit()
        [forward] = queued("inquiry_forward")

    # SPOOF_REPLYTO needs the recipient on the From's domain: here it cannot fire, and From stays the
    # address whose domain the app signs for, never a Gmail address it cannot sign for.
    assert forward["From"].addresses[0].addr_spec == "newsletter@newsletter.test"
    assert forward["To"].addresses[0].addr_spec == "shoshana@gmail.example"
    assert forward["Reply-To"] == "Dana Reyes <dana@example.com>"


def test_the_form_only_stores_the_inquiry_and_a_worker_writes_its_two_mails(app_factory):
    # A broker nobody answers on: the session worker (alive for the session, consuming every queue) cannot
    # take this hand-off and write the mails between the answer and the check below.
    app = app_factory(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    response = app.test_client().post("/contact", data=FORM)

    assert response.status_code == 200
    with app.app_context():
        assert inquiry_count() == 1 and _statuses() == [], "no mail is composed in the request"
    apply_stored_forms(app)  # the worker's task
    apply_stored_forms(app)  # and a sweep after it
    with app.app_context():
        assert [m["To"] for m in queued()] == [PRACTICE, "Dana <dana@example.com>"]
        assert db.session.scalar(select(Inquiry.forwarded_at)) is not None


def store_inquiry(app, **changes) -> int:
    """An inquiry as the form stores it, with no hand-off to a worker (as when Redis was down)."""
    with app.app_context():
        fields = {**FORM, **changes}
        stored = intake.submit(name=fields["name"], email=fields["email"], phone="", preferred_contact="email",
                                  message=fields["message"], origin=Origin())
        db.session.commit()
        return stored.inquiry_id


def test_workers_racing_for_one_inquiry_write_one_forward_and_one_acknowledgement(app):
    from newsletter.tasks import queue_inquiry_mails

    inquiry_id = store_inquiry(app)

    def compose() -> int:
        with app.app_context():
            return queue_inquiry_mails(inquiry_id)

    assert sorted(at_once([compose] * 4)) == [0, 0, 0, 2]
    with app.app_context():
        assert sorted(m["To"] for m in queued()) == ["Dana <dana@example.com>", PRACTICE]


def test_the_sweeper_writes_and_sends_the_mail_of_an_inquiry_whose_hand_off_was_lost(app, smtp):
    from newsletter.tasks import HAND_OFF_GRACE, sweep_outgoing_mail

    store_inquiry(app, email="lost@example.com")
    spam_id = store_inquiry(app, email="spam@example.com", message="Do you see couples on Fridays?")
    with app.app_context():
        states.transition(db.session.get(Inquiry, spam_id), "spam", None)  # moved to spam before any worker got to it: it never gets mail
        db.session.commit()
        sweep_outgoing_mail()
        assert _statuses() == [], "a fresh inquiry is left to its own hand-off"
        _age_inquiries(HAND_OFF_GRACE)

        sweep_outgoing_mail()
        sweep_outgoing_mail()

    # Addresses of this test's own: an earlier test's mail may still be on its way from the session worker,
    # which may also be the one sending these (the sweep handed them to it as well).
    def forwards_for(address: str) -> int:
        return sum(address in str(m.message["Reply-To"]) for m in smtp.to(PRACTICE))

    wait_for(lambda: smtp.to("lost@example.com") and forwards_for("lost@example.com"), timeout=30,
             message="the lost inquiry's mail was not sent")
    time.sleep(0.5)  # a second copy would arrive now
    assert len(smtp.to("lost@example.com")) == 1 and forwards_for("lost@example.com") == 1
    assert smtp.to("spam@example.com") == [] and forwards_for("spam@example.com") == 0


def _age_inquiries(by: timedelta) -> None:
    """As if the inquiries had been stored `by` ago."""
    for inquiry in db.session.scalars(select(Inquiry)):
        inquiry.created_at -= by + timedelta(seconds=1)
    db.session.commit()


def _statuses() -> list[str]:
    db.session.remove()  # a fresh transaction sees the worker's commits
    return sorted(db.session.scalars(select(OutgoingMail.status)))


def fill_in_the_form(page, live_server: str, name: str, email: str) -> None:
    page.goto(f"{live_server}/contact")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("How can we help?").fill("We'd like to book a first consultation.")


def test_a_person_sends_an_inquiry_through_the_real_page(app, live_server, page, smtp, worker):
    fill_in_the_form(page, live_server, "Sam Ortiz", "sam@example.com")
    page.get_by_role("button", name="Send message").click()

    page.get_by_role("heading", name="Thank you for reaching out").wait_for()
    smtp.wait_for_messages(2)
    assert smtp.to(PRACTICE)[0].message["Reply-To"] == "Sam Ortiz <sam@example.com>"
    assert "automatic note" in text_of(smtp.to("sam@example.com")[0].message)
