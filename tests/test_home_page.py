"""The home page is stored rendered (bench/web.py): every visitor still gets a working form of their
own, and what the page shows changes as soon as the practice or the issues do."""
from __future__ import annotations

import re

from newsletter import issues, practice
from newsletter.extensions import db
from newsletter.models import Subscriber, utcnow
from newsletter.models.issues import SENT
from tests.support import apply_signups

TOKEN = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def test_each_visitor_gets_a_working_form_of_their_own(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    first, second = app.test_client(), app.test_client()
    tokens = [TOKEN.search(c.get("/").get_data(as_text=True)).group(1) for c in (first, second)]
    assert tokens[0] != tokens[1]

    answer = first.post("/subscribe", data={"email": "first@example.org", "csrf_token": tokens[0]})
    assert answer.status_code == 200
    refused = second.post("/subscribe", data={"email": "second@example.org", "csrf_token": tokens[0]})
    assert refused.status_code == 400  # another visitor's token is no good
    apply_signups(app)
    with app.app_context():
        assert [s.email for s in db.session.query(Subscriber)] == ["first@example.org"]


def test_the_page_shows_a_new_issue_and_a_new_practice_name_at_once(app, client):
    assert "Latest articles" not in client.get("/").get_data(as_text=True)
    with app.app_context():
        issue = issues.create_from_source("Turning toward each other\nA first note.\n")
        issue.status, issue.send_at, issue.sent_at = SENT, utcnow(), utcnow()
        practice.ensure_profile().practice_name = "Quiet Harbor Counseling"
        db.session.commit()
    page = client.get("/").get_data(as_text=True)
    assert "Turning toward each other" in page and "Quiet Harbor Counseling" in page
    with app.app_context():
        issue = db.session.merge(issue)
        issue.title = "Turning toward, revised"
        db.session.commit()
    assert "Turning toward, revised" in client.get("/").get_data(as_text=True)
