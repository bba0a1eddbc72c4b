"""One rule, one place: HEAD is answered as GET, and nothing but POST changes anything.

The test walks app.url_map, so a route added later is covered without editing this file; a rule whose URL
it cannot build fails the test instead of being skipped.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import select

from newsletter.accounts import practice, users
from newsletter.core.extensions import db
from newsletter.inquiries import booking, waitlist
from newsletter.models import Inquiry, Issue, Subscriber, WaitlistEntry
from newsletter.models.issues import SENT
from newsletter.publishing import issues
from newsletter.readers import subscriptions
from tests.test_booking import EVERY_DAY
from tests.test_desk import ARTICLE
from tests.test_inquiries import ADMIN_EMAIL, ADMIN_PASSWORD, submit

# Tables where a GET may add a row: the records of who looked at what (an admin opening an inquiry, an
# export). They record a read; they change nothing a reader, a client or the practice sees.
READ_RECORDS = {"audit_log", "inquiry_access"}
# A form that would change something on every route, were a GET or HEAD handler to read it.
HOSTILE_FORM = {
    "slot": "", "answer": "leave", "email": "someone@example.org", "name": "Someone", "message": "Please call me back.",
    "password": ADMIN_PASSWORD, "code": "123456", "List-Unsubscribe": "One-Click", "body": "A reply", "status": "client",
    "to": "someone@example.org", "accepting_clients": "y", "waitlist_check_weeks": "4", "title": "A new title",
    "source": "Changed", "practice_name": "Changed", "therapist_name": "Changed", "working_days": "1", "consent": "y",
}


@dataclass
class Rows:
    """What the URLs are built from: a row of every kind a route names, and a live token for every token route."""

    values: dict[str, object]
    tokens: dict[str, str]  # by the URL's first segment: "consultation" for /consultation/<token>


def make_rows(app) -> Rows:
    """A pending and an active reader, a sent and a draft issue, an inquiry with a booking, one with a live
    booking link, a waitlist entry, and an outbox file; committed."""
    with app.app_context():
        practice.ensure_profile().consultation_hours = EVERY_DAY
        subscriptions.subscribe("pending@example.org", "", subscriptions.Origin(), "wording")
        subscriptions.subscribe("active@example.org", "", subscriptions.Origin(), "wording")
        active = db.session.scalar(select(Subscriber).where(Subscriber.email == "active@example.org"))
        subscriptions.confirm(token_of(subscriptions.confirm_url(active)), subscriptions.Origin())
        pending = db.session.scalar(select(Subscriber).where(Subscriber.email == "pending@example.org"))
        sent = issues.create_from_source(ARTICLE)
        sent.status = SENT
        draft = issues.create_from_source(ARTICLE.replace("Turning", "Leaning", 1))
        db.session.commit()
        booked = db.session.get(Inquiry, submit(email="booked@example.org").inquiry_id)
        booking.book(booked, booking.open_slots()[0])
        offered = db.session.get(Inquiry, submit(email="offered@example.org").inquiry_id)
        entry_inquiry = submit(email="waiting@example.org", waitlist=True).inquiry_id
        entry = db.session.scalar(select(WaitlistEntry).where(WaitlistEntry.inquiry_id == entry_inquiry))
        db.session.commit()
        outbox_file = Path(app.config["OUTBOX_DIR"]) / "sample.eml"
        outbox_file.parent.mkdir(parents=True, exist_ok=True)
        outbox_file.write_bytes(b"From: a@example.org\r\nTo: b@example.org\r\nSubject: Hi\r\n\r\nHello\r\n")
        return Rows(
            values={"issue_id": draft.id, "inquiry_id": booked.id, "entry_id": entry.id, "reader_id": active.id,
                    "slug": sent.slug, "name": outbox_file.name, "filename": "css/site.css"},
            tokens={"confirm": token_of(subscriptions.confirm_url(pending)),
                    "unsubscribe": token_of(subscriptions.unsubscribe_url(active)),
                    "consultation": token_of(booking.booking_url(offered)),
                    "waitlist": token_of(waitlist.answer_url(entry))},
        )


def token_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def url_for_rule(rule, rows: Rows) -> str:
    """The rule's URL with real ids and a live token; fails for an argument it does not know."""
    values = {}
    for argument in rule.arguments:
        if "token" in argument:
            kind = rule.rule.strip("/").split("/")[0]
            assert kind in rows.tokens, f"{rule.rule}: make_rows makes no {kind!r} token; add one so the rule is tested"
            values[argument] = rows.tokens[kind]
        else:
            assert argument in rows.values, f"{rule.rule}: no row for <{argument}>; add one to make_rows"
            values[argument] = rows.values[argument]
    return rule.build(values, append_unknown=False)[1]


def snapshot(app, smtp) -> dict:
    """Every row of every table, the files in the outbox and the mail the SMTP server took."""
    with app.app_context():
        db.session.remove()
        state = {table.name: sorted(map(repr, db.session.execute(select(table)).all()))
                 for table in db.metadata.sorted_tables}
        state["(outbox files)"] = sorted(p.name for p in Path(app.config["OUTBOX_DIR"]).glob("*"))
    state["(smtp)"] = len(smtp.messages)
    return state


def changes(before: dict, after: dict) -> list[str]:
    """What differs, leaving out rows added to the read records."""
    changed = []
    for name, rows in before.items():
        if name in READ_RECORDS and set(rows) <= set(after[name]):
            continue
        if rows != after[name]:
            changed.append(name)
    return changed


def signed_in(app) -> tuple:
    """A client signed in as the therapist with CSRF on; and a valid CSRF token of its session."""
    client = app.test_client()
    with app.app_context():
        users.set_admin(ADMIN_EMAIL, ADMIN_PASSWORD)
        db.session.commit()
    response = client.post("/admin/login", data={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD,
                                                 "csrf_token": csrf_token(client, "/admin/login")})
    assert response.status_code == 302, "the test admin could not sign in"
    return client, csrf_token(client, "/admin/practice")


def csrf_token(client, path: str) -> str:
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)


@pytest.fixture
def csrf_app(app_factory):
    return app_factory(WTF_CSRF_ENABLED=True)


def test_head_and_get_change_nothing_on_any_route(csrf_app, smtp):
    rows = make_rows(csrf_app)
    client, token = signed_in(csrf_app)
    with csrf_app.app_context():
        slot = booking.open_slots()[0].strftime("%Y-%m-%dT%H:%M")
    form = {**HOSTILE_FORM, "slot": slot, "csrf_token": token}
    failures = []
    for rule in csrf_app.url_map.iter_rules():
        url = url_for_rule(rule, rows)
        for method in ("HEAD", "GET"):
            for data in (None, form):
                before = snapshot(csrf_app, smtp)
                response = client.open(url, method=method, data=data)
                assert response.status_code < 500, f"{method} {rule.rule}: {response.status_code}"
                changed = changes(before, snapshot(csrf_app, smtp))
                if changed:
                    failures.append(f"{method} {rule.rule}{' with a form' if data else ''} changed {changed}")
    assert failures == []


def test_head_is_answered_as_get(csrf_app, smtp):
    rows = make_rows(csrf_app)
    client, _ = signed_in(csrf_app)
    for rule in csrf_app.url_map.iter_rules():
        if "GET" not in rule.methods:
            continue
        url = url_for_rule(rule, rows)
        head, get = client.head(url), client.get(url)
        assert (rule.rule, head.status_code) == (rule.rule, get.status_code)
        assert head.data == b""


def test_no_view_serves_both_get_and_post(csrf_app):
    """Handlers are split by method: a view that answers GET never also answers POST (no method branch)."""
    mixed = [rule.rule for rule in csrf_app.url_map.iter_rules() if {"GET", "POST"} <= rule.methods]
    assert mixed == []


def test_the_rows_give_every_token_route_a_live_token(csrf_app):
    rows = make_rows(csrf_app)
    client = csrf_app.test_client()
    for kind, token in rows.tokens.items():
        response = client.get(f"/{kind}/{token}")
        assert response.status_code == 200 and "no longer works" not in response.get_data(as_text=True), kind
    with csrf_app.app_context():
        assert db.session.scalar(select(Issue).where(Issue.slug == rows.values["slug"])).status == SENT
