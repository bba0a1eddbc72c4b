"""Accepting new clients or not: the switch, the waitlist on the contact page, the check-ins with
their signed answer links, leaving politely, and inviting people in the order they joined."""
from __future__ import annotations

import re
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.inquiries import waitlist
from newsletter.models import Inquiry, WaitlistEntry, utcnow
from tests.helpers import FORM, queued, submit, text_of
from tests.support import apply_stored_forms


def set_accepting(client, accepting: bool, weeks: int = 6) -> None:
    data = {"waitlist_check_weeks": str(weeks), **({"accepting_clients": "y"} if accepting else {})}
    assert client.post("/admin/practice/clients", data=data).status_code == 302


def join(client, name: str, email: str) -> None:
    response = client.post("/contact", data={**FORM, "name": name, "email": email})
    assert response.status_code == 200 and "you're on the waitlist" in response.get_data(as_text=True)
    apply_stored_forms(client.application)  # the worker writes the acknowledgement and the list's entry


def entries() -> list[WaitlistEntry]:
    db.session.remove()
    return list(db.session.scalars(select(WaitlistEntry).order_by(WaitlistEntry.id)))


def test_when_not_accepting_the_contact_page_offers_the_waitlist_and_the_inquiry_joins_it(auth, app, client):
    with app.app_context():
        auth.login(client)
    set_accepting(client, False, weeks=4)

    page = client.get("/contact").get_data(as_text=True)
    join(client, "Dana Reyes", "dana@example.com")

    assert "isn't able to take new clients" in page and "Join the waitlist</button>" in page
    with app.app_context():
        inquiry = db.session.scalar(select(Inquiry))
        assert inquiry.waitlist and inquiry.reply_by is None
        assert [e.inquiry_id for e in entries()] == [inquiry.id]
        [ack] = queued("inquiry_ack")
        assert "you're on the waitlist. Every 4 weeks" in text_of(ack) and "hear from us by" not in text_of(ack)
        assert "Waitlist:           yes" in text_of(queued("inquiry_forward")[0])


def test_a_check_in_asks_once_and_the_answer_link_keeps_the_place_or_ends_it(auth, app, client):
    with app.app_context():
        auth.login(client)
    set_accepting(client, False, weeks=6)
    join(client, "Dana Reyes", "dana@example.com")
    join(client, "Sam Ortiz", "sam@example.com")
    with app.app_context():
        assert waitlist.check_in() == []  # nobody is due yet
        for entry in entries():
            entry.confirmed_at = utcnow() - timedelta(weeks=6, hours=1)
        db.session.commit()
        assert len(waitlist.check_in()) == 2
        db.session.commit()
        assert waitlist.check_in() == []  # asked once, waiting for answers
        db.session.commit()
        checks = queued("waitlist_check")
    links = {m["To"].addresses[0].addr_spec: re.search(r"http://\S+/waitlist/\S+", text_of(m)).group(0) for m in checks}
    dana_path = links["dana@example.com"].removeprefix("http://newsletter.test")
    sam_path = links["sam@example.com"].removeprefix("http://newsletter.test")

    assert "Yes, keep my place" in client.get(dana_path).get_data(as_text=True)  # a GET changes nothing
    kept = client.post(dana_path, data={"answer": "keep"})
    left = client.post(sam_path, data={"answer": "leave"})

    assert "your place is kept" in kept.get_data(as_text=True)
    assert "You're off the waitlist" in left.get_data(as_text=True)
    assert client.get(sam_path).status_code == 410  # an answered link is used up
    assert client.get(dana_path).status_code == 410
    with app.app_context():
        dana, sam = entries()
        assert dana.left_at is None and dana.asked_at is None and dana.confirmed_at > utcnow() - timedelta(minutes=5)
        assert sam.left_at is not None and sam.left_reason == "asked to leave"
        assert [i for i, _ in waitlist.active()] == [dana]


def test_someone_who_never_answers_leaves_politely_after_two_weeks(app_ctx):
    inquiry_id = submit(waitlist=True).inquiry_id
    [entry] = entries()
    entry.asked_at = utcnow() - timedelta(days=waitlist.ANSWER_DAYS, minutes=1)
    db.session.commit()

    assert len(waitlist.check_in()) == 1
    db.session.commit()

    [entry] = entries()
    assert entry.left_reason == "no answer" and entry.inquiry_id == inquiry_id
    [goodbye] = queued("waitlist_goodbye")
    assert "always welcome to write" in text_of(goodbye)


def test_a_forged_or_wrong_answer_changes_nothing(auth, app, client):
    with app.app_context():
        auth.login(client)
    set_accepting(client, False)
    join(client, "Dana Reyes", "dana@example.com")
    with app.app_context():
        [entry] = entries()
        path = waitlist.answer_url(entry).removeprefix(app.extensions["settings"].base_url)

    assert client.get(path[:-2] + "xx").status_code == 404
    assert client.post(path[:-2] + "xx", data={"answer": "leave"}).status_code == 404
    assert client.post(path, data={"answer": "maybe"}).status_code == 400
    with app.app_context():
        [entry] = entries()
        assert entry.left_at is None


def test_she_invites_waitlisted_people_in_the_order_they_joined_once_accepting(auth, app, client):
    with app.app_context():
        auth.login(client)
    set_accepting(client, False)
    join(client, "Dana Reyes", "dana@example.com")
    join(client, "Sam Ortiz", "sam@example.com")
    with app.app_context():
        first, second = entries()

    refused = client.post(f"/admin/waitlist/{first.id}/invite", data={"confirmed": "yes"})
    set_accepting(client, True)
    page = client.get("/admin/waitlist").get_data(as_text=True)
    client.post(f"/admin/waitlist/{first.id}/invite", data={"confirmed": "yes"})

    assert refused.status_code == 302
    assert page.index("Dana Reyes") < page.index("Sam Ortiz")
    assert "Send message</button>" in client.get("/contact").get_data(as_text=True)
    with app.app_context():
        [invite] = queued("waitlist_invite")
        assert invite["To"].addresses[0].addr_spec == "dana@example.com"
        assert "A place has opened" in text_of(invite)
        assert [e.inquiry_id for e, _ in waitlist.active()] == [second.inquiry_id]
        dana = db.session.get(Inquiry, first.inquiry_id)
        assert dana.status == "contacted" and dana.first_response_at is not None


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(weeks=st.one_of(st.text(max_size=6), st.integers(-5, 100).map(str)), accepting=st.sampled_from(["", "y", "x"]))
def test_any_new_clients_setting_is_saved_or_refused_never_an_error(auth, app, client, weeks, accepting):
    auth.stay_signed_in(client)

    response = client.post("/admin/practice/clients", data={"waitlist_check_weeks": weeks, "accepting_clients": accepting})

    assert response.status_code in (302, 400)
    with app.app_context():
        assert 1 <= practice.profile().waitlist_check_weeks <= 52


def test_the_waitlist_switch_in_the_browser(app, live_server, admin_page, smtp, worker):
    page = admin_page
    page.goto(f"{live_server}/admin/practice")
    page.get_by_label("I'm accepting new clients").uncheck()
    page.locator("#new-clients + form button[type=submit]").click()
    page.get_by_text("The contact page now offers the waitlist").wait_for()

    visitor = page.context.browser.new_context().new_page()
    visitor.goto(f"{live_server}/contact")
    visitor.get_by_role("heading", name="Join the waitlist").wait_for()
    visitor.get_by_label("Your name").fill("Sam Ortiz")
    visitor.get_by_label("Email address").fill("sam@example.com")
    visitor.get_by_label("How can we help?").fill("We'd like to work on communication.")
    visitor.get_by_role("button", name="Join the waitlist").click()
    visitor.get_by_text("you're on the waitlist").wait_for()
    visitor.context.close()

    smtp.wait_for_messages(2)  # the worker has written the acknowledgement and the place on the list
    page.goto(f"{live_server}/admin/waitlist")
    assert page.get_by_role("link", name="Sam Ortiz").is_visible()
    assert "waitlist" in text_of(smtp.to("sam@example.com")[0].message)
