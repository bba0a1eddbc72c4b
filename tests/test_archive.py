"""Sent issues on the web: the archive, each article's page with OpenGraph tags, the Atom feed, the home page."""
from __future__ import annotations

import re
from xml.etree import ElementTree

import pytest
from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.models import Issue, Subscriber, utcnow
from newsletter.models.issues import DELIVERY_SENT, SENDING, SENT, Delivery
from newsletter.publishing import issues
from newsletter.sending import control
from tests.helpers import make_active, queued, text_of
from tests.support import SAMPLE_ARTICLE as SAMPLE


@pytest.fixture
def sent_and_draft(app):
    with app.app_context():
        sent = issues.create_from_source(SAMPLE.read_text(encoding="utf-8"))
        sent.status, sent.send_at, sent.sent_at = SENT, utcnow(), utcnow()
        issues.create_from_source("A draft nobody should see\nNot yet.\n")
        db.session.commit()
        return sent.slug


def test_archive_lists_sent_issues_only(client, sent_and_draft):
    page = client.get("/issues").get_data(as_text=True)
    assert "Why Small Moments of Disconnection Hurt More Than Big Fights" in page
    assert "A draft nobody should see" not in page
    assert client.get("/issues/a-draft-nobody-should-see").status_code == 404


def test_an_issue_page_is_the_article_with_signup_form_and_share_tags(client, sent_and_draft):
    response = client.get(f"/issues/{sent_and_draft}")
    page = response.get_data(as_text=True)

    assert response.status_code == 200
    assert '<meta property="og:title" content="Why Small Moments of Disconnection Hurt More Than Big Fights">' in page
    assert ('<meta property="og:description" content="Many couples are surprised by what hurts the most in '
            'their relationship.">') in page
    assert f'<meta property="og:url" content="http://newsletter.test/issues/{sent_and_draft}">' in page
    assert "The distracted “uh-huh.”" in page and "Shoshana Ort, LCSW" in page
    assert 'href="/contact"' in page and 'name="email"' in page and 'name="website"' in page


def test_feed_is_valid_atom_with_the_sent_issue(client, sent_and_draft):
    response = client.get("/feed.xml")

    assert response.content_type.startswith("application/atom+xml")
    feed = ElementTree.fromstring(response.data)
    ns = {"atom": "http://www.w3.org/2005/Atom"}
    entries = feed.findall("atom:entry", ns)
    assert [e.find("atom:title", ns).text for e in entries] == [
        "Why Small Moments of Disconnection Hurt More Than Big Fights"]
    assert entries[0].find("atom:link", ns).get("href") == f"http://newsletter.test/issues/{sent_and_draft}"
    assert "<p>Many couples are surprised" in entries[0].find("atom:content", ns).text


def test_home_page_shows_the_latest_issues(client, sent_and_draft):
    page = client.get("/").get_data(as_text=True)
    assert f'href="/issues/{sent_and_draft}"' in page and "A draft nobody should see" not in page


def test_a_test_copys_unsubscribe_link_unsubscribes_nobody(client):
    assert "Nobody was unsubscribed" in client.get("/issues/test-copy").get_data(as_text=True)
    assert client.post("/issues/test-copy", data={"List-Unsubscribe": "One-Click"}).status_code == 200


# -- a canceled issue: the links already mailed keep working; the archive and the feed leave it out

def view_in_browser_link(text: str) -> str:
    return re.search(r"http://newsletter\.test(/issues/[\w-]+(?:\?preview=[\w.-]+)?)", text).group(1)


def test_a_canceled_issue_stays_readable_by_the_link_readers_got_but_leaves_the_archive(app, client):
    make_active(app, "reader@example.org")
    with app.app_context():
        reader = db.session.scalar(select(Subscriber))
        issue = issues.create_from_source(SAMPLE.read_text(encoding="utf-8"))
        issue.status, issue.send_at, issue.dispatched_at = SENDING, utcnow(), utcnow()
        db.session.add_all([Delivery(issue_id=issue.id, subscriber_id=reader.id, status=DELIVERY_SENT),
                            Delivery(issue_id=issue.id, subscriber_id=None)])
        db.session.commit()
        issue_id, link = issue.id, view_in_browser_link(issue.email_text)
    assert client.get(link).status_code == 200

    with app.app_context():
        assert control.cancel(issue_id)
        db.session.commit()  # as the admin view does: the service leaves the commit to its caller

    response = client.get(link)
    assert response.status_code == 200 and "Why Small Moments of Disconnection" in response.get_data(as_text=True)
    assert link.removeprefix("/issues/") not in client.get("/issues").get_data(as_text=True)
    assert link.removeprefix("/issues/") not in client.get("/feed.xml").get_data(as_text=True)


def test_a_test_copys_preview_link_works_after_the_issue_is_canceled(app, client):
    with app.app_context():
        issue = issues.create_from_source(SAMPLE.read_text(encoding="utf-8"))
        db.session.commit()
        issues.send_test(issue, "practice@example.org")
        db.session.commit()
    [test_copy] = queued("issue_test", app=app)
    link = view_in_browser_link(text_of(test_copy))
    with app.app_context():
        issues.cancel(db.session.scalar(select(Issue)))
        db.session.commit()

    assert "?preview=" in link and client.get(link).status_code == 200
    assert client.get(link.split("?")[0]).status_code == 404  # it never reached a reader: no public page
    assert "Why Small Moments" not in client.get("/issues").get_data(as_text=True)
