"""The reader's preferences page, from the link in every issue and welcome mail: newsletters, a break
that ends by itself, a new address confirmed there, leaving. Each change is a consent record; GET
changes nothing. Through the real pages, CLI, worker, SMTP server and a phone-sized browser."""
from __future__ import annotations

import secrets
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.models import ConsentEvent, ListMembership, Subscriber, utcnow
from newsletter.readers import personalize
from tests.helpers import cli, consent_events, copies, import_issue, join, link_in, local_day, queued, reader, run_due
from tests.support import wait_for

PHONE = {"width": 375, "height": 740}


def preferences_path(app, email: str) -> str:
    """The preferences link of the welcome mail sent to `email`."""
    [welcome] = [m for m in queued("welcome", app=app) if m["To"].addresses[0].addr_spec == email]
    return link_in(welcome, "preferences")


def active_reader(app, email: str) -> str:
    """The preferences path of the active reader with this address (added as the import would, when missing)."""
    with app.app_context():
        row = db.session.scalar(select(Subscriber).where(Subscriber.email == email))
        if row is None:
            row = Subscriber(email=email, status="active", token_key=secrets.token_hex(16), confirmed_at=utcnow())
            db.session.add(row)
            db.session.commit()
        return personalize.preferences_url(row).split("newsletter.test", 1)[1]


def state(app) -> tuple:
    """Everything a preferences change could touch, to prove a request changed nothing."""
    with app.app_context():
        db.session.remove()
        return (db.session.execute(select(Subscriber.email, Subscriber.status, Subscriber.break_until,
                                          Subscriber.token_key)).all(),
                db.session.execute(select(ListMembership.subscriber_id, ListMembership.list_id)).all(),
                db.session.scalar(select(func.count()).select_from(ConsentEvent)))


def test_every_change_is_a_consent_record_and_looking_changes_nothing(app, client, runner, smtp, worker):
    cli(runner, "lists", "add", "couples", "--name", "Couples")
    join(app, client, "maya@example.org")
    path = preferences_path(app, "maya@example.org")

    before = state(app)
    for _ in range(2):
        page = client.get(path).get_data(as_text=True)
        assert "For maya@example.org" in page and 'value="couples"' in page
        assert client.head(path).status_code == 200
    assert state(app) == before

    saved = client.post(path, data={"action": "save", "lists": ["newsletter", "couples"]})
    assert "Saved." in saved.get_data(as_text=True)
    assert "No mail until" in client.post(path, data={"action": "save", "lists": ["newsletter", "couples"],
                                                      "break_months": "2"}).get_data(as_text=True)
    assert "Your break is over" in client.post(path, data={"action": "end_break"}).get_data(as_text=True)
    refused = client.post(path, data={"action": "save", "lists": []})
    assert refused.status_code == 400 and "keep at least one newsletter" in refused.get_data(as_text=True)
    assert "We sent a link to the new address" in client.post(
        path, data={"action": "address", "new_email": "Maya.New@Example.org"}).get_data(as_text=True)

    [change] = queued("address_change", app=app)
    assert change["To"].addresses[0].addr_spec == "Maya.New@example.org"
    change_path = link_in(change, "preferences/address")
    assert "Use Maya.New@example.org" in client.get(change_path).get_data(as_text=True)
    assert reader(app, "maya@example.org") is not None  # the GET changed nothing
    assert "Your address is changed" in client.post(change_path).get_data(as_text=True)
    assert reader(app, "Maya.New@example.org").status == "active"
    assert client.get(path).status_code == 404  # links mailed to the old address stop working

    new_path = link_in(queued("address_change", app=app)[0], "preferences/address")  # spent: the key turned over
    assert client.post(new_path).status_code == 404
    fresh = active_reader(app, "Maya.New@example.org")
    assert "You're unsubscribed" in client.post(fresh, data={"action": "leave"}).get_data(as_text=True)
    assert reader(app, "Maya.New@example.org").status == "unsubscribed"

    record = consent_events(app, "Maya.New@example.org")
    assert [e.action for e in record] == ["subscribe", "confirm", "lists", "break", "break_end", "address_asked",
                                          "address", "unsubscribe"]
    assert record[2].wording == "Send me these newsletters: Newsletter, Couples (preferences page)"
    assert record[-1].wording == "Leave everything (preferences page)"
    assert all(e.source in ("site", "email") and e.created_at for e in record)


def test_a_break_stops_mail_and_ends_by_itself_with_a_note(app, client, runner, smtp, worker, tmp_path):
    join(app, client, "resting@example.org")
    join(app, client, "reading@example.org")
    client.post(preferences_path(app, "resting@example.org"), data={"action": "save", "break_months": "1"})

    cli(runner, "issue", "send", import_issue(runner, tmp_path, "During the break"))
    cli(runner, "run-due")
    wait_for(lambda: copies(smtp, "During the break") == Counter({"reading@example.org": 1}), timeout=60)
    issue_copy = next(m for m in smtp.messages if m.message["Subject"] == "During the break")
    assert "For reading@example.org" in client.get(link_in(issue_copy.message, "preferences")).get_data(as_text=True)

    assert "breaks ended: 0" in run_due(runner, local_day(app, 20))
    assert "breaks ended: 1" in run_due(runner, local_day(app, 32))
    assert "breaks ended: 0" in run_due(runner, local_day(app, 33))
    wait_for(lambda: copies(smtp, "Your break is over: articles from Inner Calm Counseling resume")
             == Counter({"resting@example.org": 1}), timeout=30)
    assert reader(app, "resting@example.org").break_until is None
    assert [e.action for e in consent_events(app, "resting@example.org")][-2:] == ["break", "break_end"]

    cli(runner, "issue", "send", import_issue(runner, tmp_path, "After the break"))
    cli(runner, "run-due")
    wait_for(lambda: copies(smtp, "After the break") == Counter({"resting@example.org": 1,
                                                                 "reading@example.org": 1}), timeout=60)


def test_without_its_csrf_token_or_with_a_bad_link_nothing_changes(app_factory, settings):
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    path = active_reader(app, "guarded@example.org")
    before = state(app)

    assert client.post(path, data={"action": "leave"}).status_code == 400
    assert client.post(path[:-4] + "abcd", data={"action": "leave"}).status_code == 400
    assert client.get("/preferences/not-a-token").status_code == 404
    assert client.get("/preferences/address/not-a-token").status_code == 404
    assert state(app) == before


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.fixed_dictionaries({
    "action": st.sampled_from(["save", "address", "end_break", "other", ""]),
    "lists": st.lists(st.text(max_size=70), max_size=5),
    "break_months": st.one_of(st.sampled_from(["1", "2", "3", "", "4", "0", "-1", "²"]), st.text(max_size=10)),
    "new_email": st.one_of(st.text(max_size=300), st.emails()),
    "frequency": st.one_of(st.sampled_from(["each", "monthly", "", "weekly"]), st.text(max_size=10)),
}))
def test_hostile_preference_changes_get_a_clear_answer_never_a_500(app, client, data):
    path = active_reader(app, "fuzzed@example.org")

    response = client.post(path, data=data)

    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert 'class="errors"' in response.get_data(as_text=True)


def test_the_preferences_page_works_on_a_phone(app, client, live_server, page):
    join(app, client, "phone@example.org")
    page.set_viewport_size(PHONE)
    page.goto(live_server + preferences_path(app, "phone@example.org"))

    widths = page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert widths[0] <= widths[1], "the page scrolls sideways at 375 px"
    page.check("input[name=break_months][value='3']")
    page.click("button[value=save]")
    page.wait_for_selector("text=No mail until")
    assert reader(app, "phone@example.org").break_until is not None
    assert [e.action for e in consent_events(app, "phone@example.org")][-1] == "break"
