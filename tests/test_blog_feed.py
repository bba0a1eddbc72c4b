"""Her blog's feed: new posts on her website become draft issues once (through the admin page, beat's task
and `flask run-due`), never sent; a broken feed shows on the admin page, never as a 500. The feed is
served by a local HTTP server: no outside network."""
from __future__ import annotations

import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter import tasks
from newsletter.core.extensions import db
from newsletter.models import Delivery, FeedPost, Issue
from newsletter.publishing import feeds
from tests.helpers import assert_answered, examples, hostile_text, queued

POST = """<item><title>{title}</title><link>https://blog.example/{slug}</link><guid>https://blog.example/?p={slug}</guid>
<description><![CDATA[<p>{text} <a href="/more">Read more</a> <a href="javascript:alert(1)">trap</a></p>
<ul><li>Turn toward</li><li>Repair</li></ul><script>alert('x')</script>]]></description></item>"""


def _rss(*posts: tuple[str, str, str]) -> bytes:
    items = "".join(POST.format(title=t, slug=s, text=x) for t, s, x in posts)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Inner Calm</title>'
            f"<link>https://blog.example/</link><description>Articles</description>{items}</channel></rss>").encode()


FIRST = ("When you fight about the dishes", "dishes", "It is rarely about the dishes.")
SECOND = ("Repair after a rough evening", "repair", "A first paragraph about turning toward each other.")
THIRD = ("Small rituals of connection", "rituals", "Five minutes at the end of the day.")


class FeedServer:
    """Serves `body` with an ETag and Last-Modified, answering 304 to a matching conditional GET."""

    def __init__(self) -> None:
        self.body, self.status, self.delay, self.version = _rss(SECOND, FIRST), 200, 0.0, 1
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (the standard library's name)
                server.requests.append(dict(self.headers))
                time.sleep(server.delay)
                etag = f'"v{server.version}"'
                if self.headers.get("If-None-Match") == etag and server.status == 200:
                    self.send_response(304)
                    self.end_headers()
                    return
                self.send_response(server.status)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("ETag", etag)
                self.send_header("Last-Modified", formatdate(usegmt=True))
                self.send_header("Content-Length", str(len(server.body)))
                self.end_headers()
                self.wfile.write(server.body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/feed.xml"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def publish(self, body: bytes) -> None:
        self.body, self.version = body, self.version + 1


@pytest.fixture
def blog():
    server = FeedServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


def _drafts(app) -> list[Issue]:
    with app.app_context():
        db.session.remove()
        rows = db.session.scalars(select(Issue).order_by(Issue.id)).all()
        db.session.expunge_all()
        return rows


def _set_feed(admin_client, url: str):
    return admin_client.post("/admin/blog-feed", data={"url": url}, follow_redirects=True)


def test_new_posts_become_drafts_once_and_are_never_sent(app, admin_client, runner, blog):
    page = _set_feed(admin_client, blog.url).get_data(as_text=True)

    assert "Feed read: 1 new draft." in page
    [latest] = _drafts(app)
    assert (latest.title, latest.status) == (SECOND[0], "draft")
    assert "A first paragraph about turning toward each other." in latest.email_html
    assert 'href="https://blog.example/more"' in latest.email_html and "javascript" not in latest.email_html
    assert "alert" not in latest.email_html and "Turn toward" in latest.email_text
    assert "https://blog.example/repair" in latest.email_text

    blog.publish(_rss(THIRD, SECOND, FIRST))
    first_run = runner.invoke(args=["run-due"])
    again = runner.invoke(args=["run-due"])

    assert first_run.exit_code == 0 and "blog feed: draft" in first_run.output, first_run.output
    assert "blog feed: no new post" in again.output
    assert [(d.title, d.status) for d in _drafts(app)] == [(SECOND[0], "draft"), (THIRD[0], "draft")]
    assert blog.requests[-1].get("If-None-Match") == f'"v{blog.version}"' and blog.requests[-1].get("If-Modified-Since")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Delivery)) == 0
    assert queued(app=app) == []


def test_a_post_is_not_drafted_again_after_its_draft_is_deleted_or_the_feed_changes(app, admin_client, blog):
    _set_feed(admin_client, blog.url)
    [draft] = _drafts(app)
    admin_client.post(f"/admin/issues/{draft.id}/delete")
    blog.publish(_rss(SECOND, FIRST).replace(b"Articles", b"Articles, renamed"))

    with app.app_context():
        assert tasks.poll_blog_feed() == 0
        assert db.session.scalar(select(func.count()).select_from(FeedPost)) == 2


def test_two_polls_at_once_make_one_draft_per_post(app, admin_client, blog):
    _set_feed(admin_client, blog.url)
    blog.publish(_rss(THIRD, SECOND, FIRST))
    blog.delay = 0.3

    def poll_once():
        with app.app_context():
            return tasks.poll_blog_feed()

    threads = [threading.Thread(target=poll_once) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert [d.title for d in _drafts(app)].count(THIRD[0]) == 1


@pytest.mark.parametrize("breakage, message", [
    ({"status": 500}, "The website answered 500"),
    ({"body": b"<html><body>Welcome to my site</body></html>"}, "does not give an RSS or Atom feed"),
    ({"body": b"x" * 5000}, "larger than"),
    ({"delay": 2.0}, "could not be fetched"),
])
def test_a_broken_feed_shows_on_the_admin_page_and_then_recovers(app, admin_client, runner, blog, monkeypatch,
                                                                 breakage, message):
    _set_feed(admin_client, blog.url)
    monkeypatch.setattr(feeds, "FEED_MAX_BYTES", 4000)
    monkeypatch.setattr(feeds, "FEED_TIMEOUT", 0.5)
    for name, value in breakage.items():
        setattr(blog, name, value)
    blog.version += 1

    checked = admin_client.post("/admin/blog-feed/check", follow_redirects=True)
    ran = runner.invoke(args=["run-due"])

    assert checked.status_code == 200 and message in checked.get_data(as_text=True)
    assert ran.exit_code == 0 and message in ran.output
    assert message in admin_client.get("/admin/blog-feed").get_data(as_text=True)
    assert "Your blog's feed could not be read" in admin_client.get("/admin/issues").get_data(as_text=True)
    assert len(_drafts(app)) == 1

    blog.status, blog.delay, blog.body = 200, 0.0, _rss(THIRD, SECOND, FIRST)
    blog.version += 1
    admin_client.post("/admin/blog-feed/check")

    assert message not in admin_client.get("/admin/blog-feed").get_data(as_text=True)
    assert [d.title for d in _drafts(app)] == [SECOND[0], THIRD[0]]


def test_a_feed_nobody_answers_is_an_error_on_the_page(app, admin_client):
    page = _set_feed(admin_client, "http://127.0.0.1:9/feed.xml").get_data(as_text=True)

    assert "The feed could not be read" in page and _drafts(app) == []


@pytest.mark.parametrize("url", ["ftp://blog.example/feed", "javascript:alert(1)", "blog.example/feed",
                                 "https://" + "a" * 600 + ".example/"])
def test_a_feed_address_that_is_not_one_is_refused_and_changes_nothing(app, admin_client, url):
    response = _set_feed(admin_client, url)

    assert response.status_code == 400
    with app.app_context():
        assert feeds.current() is None


@examples(30)
@given(url=st.one_of(hostile_text(200), st.builds("http://127.0.0.1:9/{}".format, hostile_text(60))))
def test_hostile_feed_addresses_never_give_a_500(app, admin_client, url):
    assert_answered(admin_client.post("/admin/blog-feed", data={"url": url}))
    with app.app_context():
        row = feeds.current()
        if row is not None and row.url:
            feeds.set_url("")  # never read a generated address in the next example
            db.session.commit()


def test_feed_page_needs_sign_in(client):
    assert client.get("/admin/blog-feed").status_code == 302
    assert client.post("/admin/blog-feed/check").status_code in (302, 400)


def test_a_flood_of_posts_is_drafted_a_few_at_a_time_and_none_is_lost(app, admin_client, runner, blog, monkeypatch):
    _set_feed(admin_client, blog.url)
    monkeypatch.setattr(feeds, "DRAFTS_PER_POLL", 2)
    blog.publish(_rss(*[(f"Post {n}", f"post-{n}", f"Text {n}.") for n in range(5, 0, -1)], SECOND, FIRST))

    for _ in range(3):
        runner.invoke(args=["run-due"])

    assert [d.title for d in _drafts(app)] == [SECOND[0]] + [f"Post {n}" for n in range(1, 6)]
