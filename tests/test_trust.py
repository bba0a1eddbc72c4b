"""Trust, the public side: what a hostile or careless visitor can do changes nothing it should not,
never answers 500, and leaves no personal data in the logs."""
from __future__ import annotations

import logging

from sqlalchemy import text

from newsletter.extensions import db
from tests.test_subscribe import events, link_in, queued, reader, signup


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
