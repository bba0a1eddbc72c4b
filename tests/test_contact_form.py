"""The contact form's optional answers (partner, how they heard of us, safe contact), every error at
once, and phone numbers that are links and never wrap, on the pages and in the mail."""
from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.models import Inquiry
from tests.helpers import FORM, PRACTICE, html_of, inquiry_count, queued, text_of


def stored(app) -> int:
    with app.app_context():
        return inquiry_count()


NEW_FIELDS = ("partner_name", "heard_from", "heard_from_other", "voicemail_ok", "text_ok", "discreet")


def test_contact_page_offers_the_optional_fields_and_links_the_crisis_numbers(client):
    page = client.get("/contact").get_data(as_text=True)

    for name in NEW_FIELDS:
        assert f'name="{name}"' in page, name
    assert '<option value="friend">A friend or family member</option>' in page
    assert 'href="tel:988"' in page and 'href="tel:911"' in page


def test_every_mistake_is_listed_at_once_and_the_first_field_has_focus(app, client):
    response = client.post("/contact", data={**FORM, "name": "", "email": "dana@", "preferred_contact": "phone",
                                             "message": ""})

    page = response.get_data(as_text=True)
    assert response.status_code == 400
    summary = page[page.index('class="error-summary"'):page.index('<div class="card">')]
    assert "Please check these 4 things" in summary
    for message in ("Please tell us your name.", "Please enter a valid email address, like name@example.com.",
                    "Please add a phone number, or choose email.", "Please write a short message."):
        assert message in summary
    assert '<a href="#name">' in summary and '<a href="#preferred_contact-0">' in summary
    [focused] = re.findall(r"<(?:input|textarea|select)[^>]*\bautofocus\b[^>]*>", page)
    assert 'name="name"' in focused and 'aria-invalid="true"' in focused
    assert stored(app) == 0


def test_the_answers_reach_the_forward_and_the_acknowledgement_honours_them(app, client):
    response = client.post("/contact", data={
        **FORM, "phone": "720-555-0100", "preferred_contact": "phone", "partner_name": "Alex",
        "heard_from": "other", "heard_from_other": "a podcast", "text_ok": "y"})

    assert response.status_code == 200
    with app.app_context():
        [forward] = queued("inquiry_forward")
        [ack] = queued("inquiry_ack")
    forward_text = text_of(forward)
    assert "Partner:            Alex" in forward_text
    assert "Heard of you:       Somewhere else: a podcast" in forward_text
    assert "Voicemail:          please don't leave one" in forward_text and "Texts:              OK to text" in forward_text
    forward_html = html_of(forward)
    assert 'href="mailto:dana@example.com"' in forward_html and 'href="tel:+17205550100"' in forward_html
    assert "we won't leave a voicemail and may send a text message" in text_of(ack)
    assert ack["Subject"] == "Your message to Inner Calm Counseling has arrived"
    assert ack["Reply-To"] == PRACTICE


def test_a_discreet_inquirer_gets_a_neutral_subject_and_sender_also_on_replies(auth, app, client):
    client.post("/contact", data={**FORM, "discreet": "y"})

    with app.app_context():
        [ack] = queued("inquiry_ack")
        inquiry_id = db.session.scalar(select(Inquiry.id))
        auth.login(client)
    assert ack["Subject"] == "Your message has been received"
    assert ack["From"].addresses[0].display_name == "Shoshana Ort"
    assert "Counseling" not in str(ack["From"]) and "LCSW" not in str(ack["From"])

    client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": "Hello Dana."})

    with app.app_context():
        [reply] = queued("inquiry_reply")
    assert reply["Subject"] == "Re: Your message has been received" and reply["From"] == ack["From"]


def test_unknown_or_unused_answers_are_not_kept(app, client):
    client.post("/contact", data={**FORM, "heard_from": "<script>", "heard_from_other": "ignored"})
    client.post("/contact", data={**FORM, "email": "sam@example.com", "heard_from": "friend",
                                  "heard_from_other": "not asked for"})

    with app.app_context():
        rows = db.session.execute(select(Inquiry.heard_from, Inquiry.heard_from_other).order_by(Inquiry.id)).all()
    assert [tuple(row) for row in rows] == [("", ""), ("friend", "")]


def test_phone_numbers_are_links_on_the_thank_you_page_and_in_the_acknowledgement(app, client):
    page = client.post("/contact", data={**FORM, "message": "I want to die"}).get_data(as_text=True)

    assert '<a href="tel:+17207727149" class="phone">720\u2011772\u20117149</a>' in page  # non-breaking hyphens
    assert 'href="sms:741741?body=HOME"' in page and 'href="tel:988"' in page and 'href="tel:911"' in page
    with app.app_context():
        ack = html_of(queued("inquiry_ack")[0])
    for href in ("tel:988", "tel:911", "sms:741741?body=HOME", "tel:+17207727149"):
        assert f'href="{href}"' in ack, href
    assert '>720\u2011772\u20117149</a>' in ack


text_or_none = st.one_of(st.none(), st.text(max_size=120), st.sampled_from(["", "y", "other", "friend", "phone", "dana@example.com", "Dana"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.fixed_dictionaries({name: text_or_none for name in
                                     ("name", "email", "phone", "preferred_contact", "message", *NEW_FIELDS)}))
def test_any_input_is_taken_or_refused_with_a_message_never_an_error(app, client, fields):
    before = stored(app)
    data = {name: value for name, value in fields.items() if value is not None}

    response = client.post("/contact", data=data)

    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert 'class="error-summary"' in response.get_data(as_text=True)
        assert stored(app) == before
    else:
        assert stored(app) in (before, before + 1)  # the same message twice is one inquiry


@pytest.mark.parametrize("width", [375])
def test_errors_move_focus_to_the_first_and_nothing_scrolls_sideways(app, live_server, page, width):
    page.set_viewport_size({"width": width, "height": 800})
    page.goto(f"{live_server}/contact")
    page.get_by_label("Email address").fill("dana@")
    page.get_by_role("button", name="Send message").click()

    page.locator(".error-summary").wait_for()
    # autofocus applies once the page has loaded, which under load can come after the summary shows
    page.wait_for_function("document.activeElement && document.activeElement.name === 'name'", timeout=5000)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    number = page.locator("main a.phone").first
    assert number.evaluate("a => a.getClientRects().length") == 1 and not re.search(r"[ -]", number.inner_text())
