"""Trust, the public side: what a hostile or careless visitor can do changes nothing it should not,
never answers 500, and leaves no personal data in the logs."""
from __future__ import annotations

import logging

import pytest
import requests
from sqlalchemy import func, select, text

from newsletter.extensions import db
from newsletter.models import OutgoingMail, Subscriber
from tests.support import wait_for
from tests.test_subscribe import events, link_in, queued, reader, signup
from tests.webserver import GunicornServer


@pytest.fixture
def gunicorn(app, settings, tmp_path):
    """Start a real gunicorn (one sync worker by default) on this test's database; stopped after the test."""
    started: list[GunicornServer] = []

    def start(**env: str) -> GunicornServer:
        server = GunicornServer({**settings, **env}, tmp_path / f"gunicorn{len(started)}.log")
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop()


def count(app, model, *where) -> int:
    with app.app_context():
        db.session.remove()
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


# -- only POST changes state (mail scanners send HEAD)

def test_head_on_a_confirm_link_confirms_nobody(app, client):
    signup(client, "scanned@example.org")
    path = link_in(queued(app, "confirm")[0], "confirm")

    assert client.head(path).status_code == 200

    assert reader(app, "scanned@example.org").status == "pending"
    assert queued(app, "welcome") == []
    assert [e.action for e in events(app, "scanned@example.org")] == ["subscribe"]


def test_head_on_an_unsubscribe_link_keeps_the_reader(app, client):
    signup(client, "kept@example.org")
    client.post(link_in(queued(app, "confirm")[0], "confirm"))
    path = link_in(queued(app, "welcome")[0], "unsubscribe")

    assert client.head(path).status_code == 200
    assert client.head(path, data={"List-Unsubscribe": "One-Click"}).status_code == 200

    assert reader(app, "kept@example.org").status == "active"


def test_head_on_the_signup_forms_signs_nobody_up(app, client):
    for path in ("/subscribe", "/embed/subscribe"):
        assert client.head(path, data={"email": "head@example.org"}).status_code == 200
    assert reader(app, "head@example.org") is None


# -- no personal data in logs

def test_sql_errors_do_not_log_the_addresses_they_were_about(app, caplog):
    with app.app_context(), caplog.at_level(logging.DEBUG):
        try:
            db.session.execute(text("SELECT no_such_column FROM subscribers WHERE email = :email"),
                               {"email": "private.person@example.org"})
        except Exception as exc:  # noqa: BLE001 - the error text is what gets logged
            message = str(exc)
        db.session.rollback()
    assert "no_such_column" in message
    assert "private.person" not in message and "private.person" not in caplog.text


def test_gunicorn_access_log_never_holds_a_confirm_or_unsubscribe_token(app, gunicorn):
    server = gunicorn()
    requests.post(f"{server.url}/embed/subscribe", data={"email": "logged@example.org"}, timeout=30)
    path = link_in(queued(app, "confirm")[0], "confirm")
    token = path.rsplit("/", 1)[1]

    assert requests.get(server.url + path, timeout=30).status_code == 200
    requests.head(server.url + path + "?again=1", timeout=30)
    requests.get(f"{server.url}/unsubscribe/{token}", headers={"Referer": server.url + path}, timeout=30)
    requests.post(f"{server.url}/unsubscribe/{token}/resubscribe", timeout=30)

    log = wait_for(lambda: server.log_text().count("[token]") >= 5 and server.log_text(), timeout=30)
    assert token not in log and token[:20] not in log
    assert "GET /confirm/[token] HTTP/1.1" in log and "/unsubscribe/[token]/resubscribe" in log


def test_development_server_log_never_holds_a_token(app, live_server, caplog):
    with caplog.at_level(logging.INFO, logger="werkzeug"):
        requests.get(f"{live_server}/confirm/SECRET-token.abc", timeout=30)
        requests.get(f"{live_server}/unsubscribe/OTHER-token.abc", timeout=30)
        wait_for(lambda: caplog.text.count("[token]") >= 2, timeout=10)
    assert "SECRET" not in caplog.text and "OTHER" not in caplog.text


# -- Redis down does not stall the web

def test_a_redis_outage_does_not_hold_up_the_site(app, gunicorn, redis_outage):
    """One sync worker: a hand-off that waited on the dead broker after each response held up every
    next request (6 s each); now the first fails fast and the rest skip the broker."""
    server = gunicorn()
    for number in range(4):
        response = requests.post(f"{server.url}/embed/subscribe", data={"email": f"outage{number}@example.org"},
                                 timeout=2)
        assert response.status_code == 200
    assert requests.get(server.url + "/", timeout=2).status_code == 200
    assert requests.get(server.url + "/contact", timeout=2).status_code == 200

    assert count(app, Subscriber) == 4
    assert count(app, OutgoingMail, OutgoingMail.kind == "confirm", OutgoingMail.status == "pending") == 4
