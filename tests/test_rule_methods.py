"""One rule, one place: HEAD is answered as GET, and nothing but POST changes anything.

The test walks app.url_map, so a route added later is covered without editing this file; a rule whose URL
it cannot build fails the test instead of being skipped.
"""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from newsletter.accounts import users
from newsletter.core.extensions import db
from newsletter.inquiries import booking
from newsletter.models import Issue
from newsletter.models.issues import SENT
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.routes import changes, make_rows, snapshot, url_for_rule

# Tables where a GET may add a row: the records of who looked at what (an admin opening an inquiry, an
# export). They record a read; they change nothing a reader, a client or the practice sees.
# A form that would change something on every route, were a GET or HEAD handler to read it.
HOSTILE_FORM = {
    "slot": "", "answer": "leave", "email": "someone@example.org", "name": "Someone", "message": "Please call me back.",
    "password": ADMIN_PASSWORD, "code": "123456", "List-Unsubscribe": "One-Click", "body": "A reply", "status": "client",
    "to": "someone@example.org", "accepting_clients": "y", "waitlist_check_weeks": "4", "title": "A new title",
    "source": "Changed", "practice_name": "Changed", "therapist_name": "Changed", "working_days": "1", "consent": "y",
}














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
    before = snapshot(csrf_app, smtp)
    for rule in csrf_app.url_map.iter_rules():
        url = url_for_rule(rule, rows)
        for method in ("HEAD", "GET"):
            for data in (None, form):
                response = client.open(url, method=method, data=data)
                assert response.status_code < 500, f"{method} {rule.rule}: {response.status_code}"
                after = snapshot(csrf_app, smtp)  # also the next request's before: no change falls between two
                changed = changes(before, after)
                if changed:
                    failures.append(f"{method} {rule.rule}{' with a form' if data else ''} changed {changed}")
                before = after
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
