"""Readers join, confirm, leave and come back through the public pages; nothing hostile gets through."""
from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import event, select

from newsletter.core.extensions import db
from newsletter.mail.suppression import suppress
from newsletter.models import Subscriber
from newsletter.readers import subscriptions
from tests.helpers import BROWSER, consent_events, csrf_token, link_in, make_active, queued, reader, signup
from tests.support import apply_stored_forms

# -- helpers shared with test_readers.py

# -- the whole lifecycle, through real pages, the real worker and the real SMTP server

def test_reader_goes_pending_active_unsubscribed_and_active_again_with_consent_on_record(app, client, smtp, worker):
    assert signup(client, "Ruth.Reader@Example.org", "Ruth").status_code == 200
    assert reader(app, "Ruth.Reader@example.org").status == "pending"
    [confirmation] = smtp.wait_for_messages(1)
    confirm_path = link_in(confirmation.message, "confirm")

    assert b"Yes, subscribe me" in client.get(confirm_path).data
    assert reader(app, "Ruth.Reader@example.org").status == "pending"  # a prefetching scanner confirms nothing
    assert b"You're subscribed" in client.post(confirm_path, headers={"User-Agent": BROWSER}).data
    assert reader(app, "Ruth.Reader@example.org").status == "active"

    welcome = smtp.wait_for_messages(2)[1]
    assert welcome.message["Subject"] == "Welcome to Inner Calm Counseling"
    assert "http://newsletter.test/issues" in welcome.text
    assert welcome.message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_path = link_in(welcome.message, "unsubscribe")
    assert f"<http://newsletter.test{unsubscribe_path}>" in welcome.message["List-Unsubscribe"]

    assert b"Unsubscribe me" in client.get(unsubscribe_path).data
    goodbye = client.post(unsubscribe_path)
    assert b"You're unsubscribed" in goodbye.data and b"Subscribe me again" in goodbye.data
    assert reader(app, "Ruth.Reader@example.org").status == "unsubscribed"

    client.post(unsubscribe_path + "/resubscribe")
    assert reader(app, "Ruth.Reader@example.org").status == "pending"
    again = smtp.wait_for_messages(3)[2]
    client.post(link_in(again.message, "confirm"))
    assert reader(app, "Ruth.Reader@example.org").status == "active"
    smtp.wait_for_messages(4)

    record = consent_events(app, "Ruth.Reader@example.org")
    assert [e.action for e in record] == ["subscribe", "confirm", "unsubscribe", "subscribe", "confirm"]
    assert record[0].wording == ("Yes, send me new articles from Inner Calm Counseling by email. "
                                 "I can unsubscribe at any time with one click.")
    assert (record[0].ip, record[0].user_agent, record[0].source) == ("203.0.113.7", BROWSER, "site")
    assert all(e.wording and e.created_at for e in record)


# -- tokens

def test_confirm_link_works_once_and_a_second_click_just_says_so(app, client):
    signup(client, "once@example.org")
    path = link_in(queued("confirm", app=app)[0], "confirm")

    assert client.post(path).status_code == 200
    for again in (client.get(path), client.post(path)):
        assert again.status_code == 200 and b"You're subscribed" in again.data

    assert [e.action for e in consent_events(app, "once@example.org")] == ["subscribe", "confirm"]
    assert len(queued("welcome", app=app)) == 1


def test_a_spent_confirm_link_does_not_bring_back_a_reader_who_left(app, client):
    signup(client, "left@example.org")
    path = link_in(queued("confirm", app=app)[0], "confirm")
    client.post(path)
    with app.app_context():
        row = db.session.scalar(select(Subscriber))
        subscriptions.unsubscribe(subscriptions.unsubscribe_url(row).rsplit("/", 1)[1], subscriptions.Origin())
        db.session.commit()

    response = client.post(path)

    assert response.status_code == 400 and b"isn't valid" in response.data
    assert reader(app, "left@example.org").status == "unsubscribed"


def test_tampered_or_cross_purpose_tokens_get_a_friendly_page_and_change_nothing(app, client):
    signup(client, "tamper@example.org")
    confirm_token = link_in(queued("confirm", app=app)[0], "confirm").rsplit("/", 1)[1]
    with app.app_context():
        unsubscribe_token = subscriptions.unsubscribe_url(db.session.scalar(select(Subscriber))).rsplit("/", 1)[1]

    for path in (f"/confirm/{confirm_token[:-2]}xx", f"/confirm/{unsubscribe_token}", f"/unsubscribe/{confirm_token}",
                 "/unsubscribe/" + "A" * 5000, "/confirm/%00%0d%0a"):
        for method in (client.get, client.post):
            response = method(path)
            assert response.status_code == 400, path
            assert b"isn't valid" in response.data and b'name="email"' in response.data
    assert reader(app, "tamper@example.org").status == "pending"


def test_expired_confirm_link_offers_to_ask_again(app, client, monkeypatch):
    signup(client, "late@example.org")
    path = link_in(queued("confirm", app=app)[0], "confirm")
    forty_nine_hours_later = time.time() + 49 * 3600
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: forty_nine_hours_later)

    response = client.post(path)

    assert response.status_code == 400
    assert b"This link has expired" in response.data and b"Subscribe" in response.data
    assert reader(app, "late@example.org").status == "pending"


def test_confirm_link_lifetime_is_configurable(app_factory, settings, monkeypatch):
    # A Redis database no worker reads: the session worker, with its 48 hours, must not apply this signup.
    app = app_factory(CONFIRM_TOKEN_MAX_AGE_HOURS=1, REDIS_URL=settings["REDIS_URL"].rsplit("/", 1)[0] + "/15")
    client = app.test_client()
    signup(client, "hour@example.org")
    path = link_in(queued("confirm", app=app)[0], "confirm")
    assert "works for 1 hours" in queued("confirm", app=app)[0].get_body(("plain",)).get_content()
    two_hours_later = time.time() + 2 * 3600
    monkeypatch.setattr("itsdangerous.timed.time.time", lambda: two_hours_later)

    assert b"This link has expired" in client.post(path).data


def test_confirm_token_is_not_accepted_by_another_secret(app):
    with app.app_context():
        forged = URLSafeTimedSerializer("someone-elses-key", salt="newsletter.unsubscribe").dumps({"id": 1, "k": "x"})
    assert app.test_client().post(f"/unsubscribe/{forged}").status_code == 400


# -- repeats and the same answer

def test_same_answer_whether_the_address_is_new_pending_active_unsubscribed_or_suppressed(app, client):
    new = signup(client, "new@example.org").data
    signup(client, "pending@example.org")
    make_active(app, "active@example.org")
    make_active(app, "gone@example.org", then_unsubscribe=True)
    with app.app_context():
        suppress("bounced@example.org", "bounced")
        db.session.commit()

    for address in ("pending@example.org", "active@example.org", "gone@example.org", "bounced@example.org",
                    "NEW@example.org"):
        response = signup(client, address)
        assert response.status_code == 200
        assert response.data == new, address


def _age_last_confirmation(app, email: str, by: timedelta) -> None:
    with app.app_context():
        row = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
        row.confirmation_sent_at -= by
        db.session.commit()


def test_pending_reader_gets_the_confirmation_again_at_most_hourly_and_three_times_a_day(app, client):
    address = "waiting@example.org"
    signup(client, address)
    signup(client, address)
    assert len(queued("confirm", app=app)) == 1
    for expected in (2, 3, 3):
        _age_last_confirmation(app, address, timedelta(minutes=61))
        signup(client, address)
        assert len(queued("confirm", app=app)) == expected
    _age_last_confirmation(app, address, timedelta(hours=24))
    signup(client, address)
    assert len(queued("confirm", app=app)) == 4
    # every confirmation carries a link that works until one of them is used
    links = {link_in(m, "confirm") for m in queued("confirm", app=app)}
    assert all(client.get(link).status_code == 200 for link in links)


def test_active_reader_gets_at_most_one_already_subscribed_note_a_day(app, client):
    make_active(app, "here@example.org")
    for _ in range(3):
        signup(client, "here@example.org")

    [note] = queued("already_subscribed", app=app)
    assert note["To"] == "here@example.org"
    assert "/unsubscribe/" in note.get_body(("plain",)).get_content()
    assert reader(app, "here@example.org").status == "active"
    assert len(queued("confirm", app=app)) == 1  # only the original signup's


def test_unsubscribed_reader_must_confirm_again_before_receiving_anything(app, client):
    make_active(app, "back@example.org", then_unsubscribe=True)

    signup(client, "back@example.org")

    assert reader(app, "back@example.org").status == "pending"
    assert len(queued("confirm", app=app)) == 2


def test_suppressed_addresses_are_never_mailed_whatever_happens(app, client):
    make_active(app, "complains@example.org")
    with app.app_context():
        for address, reason in (("complains@example.org", "complained"), ("bounced@example.org", "bounced")):
            suppress(address, reason)
        db.session.commit()
    before = len(queued(app=app))

    for address in ("complains@example.org", "Bounced@Example.org"):
        assert signup(client, address).status_code == 200

    assert len(queued(app=app)) == before
    assert reader(app, "complains@example.org").status == "complained"
    assert reader(app, "bounced@example.org") is None


# -- unsubscribe

def test_one_click_unsubscribe_needs_no_cookie_and_no_csrf_token_and_is_harmless_to_repeat(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    row = make_active(app, "oneclick@example.org")
    with app.app_context():
        path = subscriptions.unsubscribe_url(db.session.merge(row)).removeprefix("http://newsletter.test")
    client = app.test_client(use_cookies=False)

    for _ in range(2):
        response = client.post(path, data="List-Unsubscribe=One-Click",
                               content_type="application/x-www-form-urlencoded")
        assert response.status_code == 200

    assert reader(app, "oneclick@example.org").status == "unsubscribed"
    [event] = [e for e in consent_events(app, "oneclick@example.org") if e.action == "unsubscribe"]
    assert event.wording == subscriptions.ONE_CLICK_WORDING


@pytest.mark.parametrize("body", ["", "List-Unsubscribe=Two-Click", "csrf_token=forged"])
def test_unsubscribe_post_that_is_neither_one_click_nor_the_button_changes_nothing(app_factory, body):
    app = app_factory(WTF_CSRF_ENABLED=True)
    row = make_active(app, "stays@example.org")
    with app.app_context():
        path = subscriptions.unsubscribe_url(db.session.merge(row)).removeprefix("http://newsletter.test")
    client = app.test_client()

    refused = client.post(path, data=body, content_type="application/x-www-form-urlencoded")

    assert refused.status_code == 400
    assert b"You are still subscribed" in refused.data and b"Unsubscribe me" in refused.data
    assert reader(app, "stays@example.org").status == "active"
    # The page's own button (its CSRF token) still works.
    assert b"You're unsubscribed" in client.post(path, data={"csrf_token": csrf_token(client, path)}).data
    assert reader(app, "stays@example.org").status == "unsubscribed"


def test_confirm_button_requires_csrf(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    with app.app_context():
        subscriptions.subscribe("csrf@example.org", "", subscriptions.Origin(), "wording")
        db.session.commit()
    path = link_in(queued("confirm", app=app)[0], "confirm")

    assert app.test_client().post(path).status_code == 400
    assert reader(app, "csrf@example.org").status == "pending"


# -- hostile input

HOSTILE = [
    {"email": "eve@example.org", "name": "Eve\r\nBcc: victim@example.net"},
    {"email": "eve@example.org", "name": "Eve\nX-Injected: yes\n\nbody"},
    {"email": "eve@example.org\r\nBcc: victim@example.net"},
    {"email": "eve@example.org, victim@example.net"},
    {"email": "eve@example.org\nvictim@example.net"},
    {"email": "x" * 10_000 + "@example.org"},
    {"email": "eve@example.org", "name": "n" * 10_000},
    {"email": "eve@example.org", "website": "w" * 10_000},
    {"email": "ëve@example.org"},
    {"email": "eve@bücher.example"},
    {"email": "<script>alert(1)</script>@example.org"},
    {"email": "eve@example.org", "name": "<b onmouseover=alert(1)>Eve</b>"},
    {"email": "eve@example.org", "name": "\u2028Eve\u2029\x00\x1b[31m"},
    {"email": "\x00"},
    {"email": ""},
    {"email": "eve@example.org", "name": ["a", "b"]},
]


@pytest.mark.parametrize("fields", HOSTILE, ids=range(len(HOSTILE)))
@pytest.mark.parametrize("path", ["/subscribe", "/embed/subscribe"])
def test_hostile_input_never_gives_a_500_an_extra_recipient_or_an_extra_header(app, client, fields, path):
    response = client.post(path, data=fields)
    apply_stored_forms(app)

    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert b'class="errors"' in response.data
    for message in queued(app=app):
        assert [a.addr_spec for a in message["To"].addresses] in (["eve@example.org"], ["eve@xn--bcher-kva.example"])
        assert "Bcc" not in message and "X-Injected" not in message and len(message.get_all("To")) == 1
        html = message.get_body(("html",)).get_content()
        assert "<script>" not in html and "<b onmouseover" not in html


def test_markup_and_line_breaks_in_a_name_arrive_as_plain_text(app, client):
    signup(client, "mallory@example.org", "<b>Mal</b>\r\nlory")

    [message] = queued("confirm", app=app)
    assert reader(app, "mallory@example.org").name == "<b>Mal</b> lory"
    assert "&lt;b&gt;Mal&lt;/b&gt; lory" in message.get_body(("html",)).get_content()
    assert message["To"].addresses[0].addr_spec == "mallory@example.org"


def test_international_domain_is_stored_in_ascii_and_non_ascii_mailbox_gets_a_clear_message(app, client):
    assert signup(client, "eve@bücher.example").status_code == 200
    assert reader(app, "eve@xn--bcher-kva.example") is not None

    response = signup(client, "ëve@example.org")
    assert response.status_code == 400 and b"valid email address" in response.data


# -- abuse

def test_signups_from_one_ip_are_rate_limited(app_factory):
    client = app_factory(RATELIMIT_ENABLED=True).test_client()
    ip = f"198.51.100.{uuid.uuid4().int % 250}"
    codes = [signup(client, f"r{n}-{uuid.uuid4().hex[:6]}@example.org", ip=ip).status_code for n in range(6)]

    assert codes == [200] * 5 + [429]


def test_nobody_can_flood_a_victims_inbox_from_many_ips(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True)
    client = app.test_client()
    victim = f"victim-{uuid.uuid4().hex[:8]}@example.org"

    pages = {signup(client, victim, ip=f"192.0.2.{n}").data for n in range(1, 21)}

    assert len(pages) == 1  # the same answer every time
    assert [m["To"] for m in queued(app=app)] == [victim]


def test_the_limit_per_address_holds_silently_even_when_the_hourly_resend_would_allow_a_mail(app_factory):
    app = app_factory(RATELIMIT_ENABLED=True)
    client = app.test_client()
    address = f"limited-{uuid.uuid4().hex[:8]}@example.org"
    first = signup(client, address, ip="192.0.2.101").data
    for n in range(4):
        signup(client, address, ip=f"192.0.2.{110 + n}")
    _age_last_confirmation(app, address, timedelta(hours=2))

    sixth = signup(client, address, ip="192.0.2.120")

    assert sixth.status_code == 200 and sixth.data == first
    assert len(queued("confirm", app=app)) == 1


def test_a_filled_honeypot_is_answered_like_success_and_stores_nothing(app, client):
    response = signup(client, "bot@example.org", website="http://spam.example")

    assert response.status_code == 200 and b"check your inbox" in response.data
    assert reader(app, "bot@example.org") is None and queued(app=app) == []


# -- embedding

def test_embed_form_may_be_framed_only_by_configured_origins_and_works_without_a_session(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True,
                      EMBED_ALLOWED_ORIGINS="https://www.innercalm.example, javascript:alert(1) https://x.example\r\n")
    client = app.test_client(use_cookies=False)

    page = client.get("/embed/subscribe")
    assert page.status_code == 200 and b'action="/embed/subscribe"' in page.data
    policy = dict(part.strip().split(" ", 1) for part in page.headers["Content-Security-Policy"].split(";"))
    assert policy["frame-ancestors"] == "'self' https://www.innercalm.example https://x.example"
    assert b'class="site-header"' not in page.data

    done = signup(client, "framed@example.org", path="/embed/subscribe")
    assert done.status_code == 200 and b"check your inbox" in done.data
    assert "frame-ancestors" in done.headers["Content-Security-Policy"]
    [event] = consent_events(app, "framed@example.org")
    assert (event.action, event.source) == ("subscribe", "embed")


def test_signup_page_is_the_form_on_the_home_page_too(client):
    for path in ("/", "/subscribe"):
        page = client.get(path).data
        assert b'name="email"' in page and b'name="name"' in page and b'name="website"' in page
        assert b"Yes, send me new articles from Inner Calm Counseling by email." in page


def test_unsubscribe_link_is_built_without_a_request_or_a_query(app):
    """Each copy of an issue carries one: building it must cost no database round trip (no request context here)."""
    row = Subscriber(id=7, email="x@example.org", token_key="k" * 32)
    statements: list[str] = []
    with app.app_context():
        event.listen(db.engine, "before_cursor_execute", lambda _c, _k, statement, *_: statements.append(statement))
        links = [subscriptions.unsubscribe_url(row) for _ in range(3)]

    assert links[0].startswith("http://newsletter.test/unsubscribe/") and len(set(links)) == 1
    assert statements == []


def test_signup_succeeds_while_redis_is_down_and_the_confirmation_waits_in_the_database(app_factory, redis_outage):
    app = app_factory(RATELIMIT_ENABLED=True)

    response = signup(app.test_client(), "outage@example.org", ip="192.0.2.250")

    assert response.status_code == 200 and b"check your inbox" in response.data
    assert reader(app, "outage@example.org").status == "pending"
    assert [m["To"] for m in queued("confirm", app=app)] == ["outage@example.org"]
