"""One rule, one place: HEAD is answered as GET, and nothing but POST changes anything.

The test walks app.url_map, so a route added later is covered without editing this file; a rule whose URL
it cannot build fails the test instead of being skipped.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.inquiries import booking
from newsletter.models import Issue
from newsletter.models.issues import SENT
from tests.helpers import ADMIN_PASSWORD, csrf_token
from tests.routes import changes, make_rows, snapshot, url_for_rule

# A form that would change something on every route, were a GET or HEAD handler to read it.
HOSTILE_FORM = {
    "slot": "", "answer": "leave", "email": "someone@example.org", "name": "Someone", "message": "Please call me back.",
    "password": ADMIN_PASSWORD, "code": "123456", "List-Unsubscribe": "One-Click", "body": "A reply", "status": "client",
    "to": "someone@example.org", "accepting_clients": "y", "waitlist_check_weeks": "4", "title": "A new title",
    "source": "Changed", "practice_name": "Changed", "therapist_name": "Changed", "working_days": "1", "consent": "y",
}


def signed_in(auth, app) -> tuple:
    """A client of `app` (CSRF on) signed in as the therapist; and a valid CSRF token of its session."""
    client = auth.on(app).login()
    return client, csrf_token(client, "/admin/practice")


@pytest.fixture
def csrf_app(app_factory):
    return app_factory(WTF_CSRF_ENABLED=True)


def test_head_and_get_change_nothing_on_any_route(auth, csrf_app, smtp):
    rows = make_rows(csrf_app)
    client, token = signed_in(auth, csrf_app)
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


def test_head_is_answered_as_get(auth, csrf_app, smtp):
    rows = make_rows(csrf_app)
    client, _ = signed_in(auth, csrf_app)
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
