"""The home page is stored rendered (bench/web.py): every visitor still gets a working form of their
own, and what the page shows changes as soon as the practice or the issues do."""
from __future__ import annotations

import time

from sqlalchemy import update

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.models import Issue, Subscriber, utcnow
from newsletter.models.issues import SENT
from newsletter.public.pages import HOME_KEY_FOR
from newsletter.publishing import issues
from tests.helpers import csrf_token
from tests.support import apply_stored_forms


def test_each_visitor_gets_a_working_form_of_their_own(app_factory):
    app = app_factory(WTF_CSRF_ENABLED=True)
    first, second = app.test_client(), app.test_client()
    tokens = [csrf_token(c, "/") for c in (first, second)]
    assert tokens[0] != tokens[1]

    answer = first.post("/subscribe", data={"email": "first@example.org", "csrf_token": tokens[0]})
    assert answer.status_code == 200
    refused = second.post("/subscribe", data={"email": "second@example.org", "csrf_token": tokens[0]})
    assert refused.status_code == 400  # another visitor's token is no good
    apply_stored_forms(app)
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


def test_a_change_made_by_another_process_shows_within_a_second(app, client):
    """The worker marks an issue sent with a plain UPDATE, in another process: the web notices within
    pages.HOME_KEY_FOR instead of asking the database on every visit."""
    with app.app_context():
        issue = issues.create_from_source("Small repairs\nA note.\n")
        db.session.commit()
        issue_id = issue.id
    assert "Small repairs" not in client.get("/").get_data(as_text=True)
    with app.app_context():
        db.session.execute(update(Issue).where(Issue.id == issue_id).values(status=SENT, send_at=utcnow(),
                                                                            sent_at=utcnow()))
        db.session.commit()
    time.sleep(HOME_KEY_FOR + 0.1)
    assert "Small repairs" in client.get("/").get_data(as_text=True)
