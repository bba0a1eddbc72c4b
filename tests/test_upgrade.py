"""Upgrading a real installation: a database built by the previous release's migrations, with data written as
that release wrote it (plain SQL), upgraded to head with today's code, must still work through the app.

PREVIOUS_RELEASE is a fixed old revision; the test upgrades to "head", so migrations added later are covered
without changing it.
"""
from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from cryptography.fernet import Fernet
from itsdangerous import URLSafeSerializer

from newsletter.accounts import users
from newsletter.core.extensions import db
from tests.helpers import upgraded_from
from tests.support import FERNET_TEST_KEY

PREVIOUS_RELEASE = "c4e8a1f27b93"  # trust_admin: readers, consent, inquiries, issues, the admin's 2FA
WHEN = datetime(2026, 11, 2, 15, 30)
INQUIRY_WORDS = "I have been anxious since the move and would like to talk. Evenings are best."
READER = {"id": 7, "email": "ada@example.org", "name": "Ada Lovelace", "token_key": "0123456789abcdef0123456789abcdef"}
CONSENT_WORDING = "Yes, send me the Inner Calm newsletter. I can unsubscribe at any time."

OLD_ROWS = [
    ("INSERT INTO subscribers (id, email, name, status, source, token_key, confirmations_sent_today, created_at, "
     "confirmed_at) VALUES (:id, :email, :name, 'active', 'form', :token_key, 0, :when, :when)", READER),
    ("INSERT INTO consent_events (subscriber_id, action, source, wording, ip, user_agent, created_at) "
     "VALUES (:id, 'subscribe', 'form', :wording, '203.0.113.9', 'Mozilla/5.0 (old release)', :when)",
     {"id": READER["id"], "wording": CONSENT_WORDING}),
    ("INSERT INTO inquiries (id, name, email, message_encrypted, preferred_contact, source, status, urgent, spam, "
     "spam_reason, created_at, forwarded_at) VALUES (3, 'Sam Rivera', 'sam@example.org', :message, 'email', "
     "'contact', 'new', :false, :false, '', :when, :when)", {}),
    ("INSERT INTO issues (id, title, subject, preheader, slug, source, source_format, signature, body_html, body_text, "
     "postscript_html, postscript_text, email_html, email_text, status, created_at, updated_at, sent_at, "
     "pause_reason, recipients_count, consecutive_failures) VALUES (5, 'Winter and the nervous system', "
     "'Winter and the nervous system', 'Short days', 'winter-and-the-nervous-system', 'Short days.', 'markdown', '', "
     "'<p>Short days, long nights: a note on rest.</p>', 'Short days, long nights: a note on rest.', '', '', '', '', "
     "'sent', :when, :when, :when, '', 1, 0)", {}),
]


@pytest.fixture
def upgraded(settings, empty_database_url, monkeypatch):
    """The previous release's schema with its rows, then `db upgrade` to head with today's code."""
    monkeypatch.setenv("INSTANCE_PATH", settings["INSTANCE_PATH"])
    message = Fernet(FERNET_TEST_KEY).encrypt(INQUIRY_WORDS.encode())
    rows = [(statement, {"when": WHEN, "message": message, "false": False, **values}) for statement, values in OLD_ROWS]
    with upgraded_from(settings, empty_database_url, PREVIOUS_RELEASE, lambda: rows,
                       SEND_RATE_PER_SECOND=0.001) as app:
        with app.app_context():
            users.set_admin("therapist@example.com", "correct horse battery")
            db.session.commit()
        yield app


def _signed_in(app):
    client = app.test_client()
    assert client.post("/admin/login", data={"email": "therapist@example.com",
                                             "password": "correct horse battery"}).status_code == 302
    return client


def test_the_database_is_at_head_after_the_upgrade(upgraded):
    output = upgraded.test_cli_runner().invoke(args=["doctor"]).output
    assert re.search(r"^OK   Migrations: at ", output, re.M), output


def test_a_reader_and_their_consent_record_survive_the_upgrade(upgraded):
    client = _signed_in(upgraded)
    data = json.loads(client.get(f"/admin/readers/{READER['id']}/export.json").get_data(as_text=True))
    assert (data["email"], data["name"], data["status"]) == (READER["email"], READER["name"], "active")
    assert data["confirmed_at"] == WHEN.isoformat() + "Z"
    assert [(e["action"], e["wording"], e["ip"], e["at"]) for e in data["consent_events"]] == \
        [("subscribe", CONSENT_WORDING, "203.0.113.9", WHEN.isoformat() + "Z")]


def test_an_inquiry_encrypted_by_the_previous_release_still_reads(upgraded):
    page = _signed_in(upgraded).get("/admin/inquiries/3").get_data(as_text=True)
    assert "Sam Rivera" in page
    assert INQUIRY_WORDS in page


def test_a_sent_issue_is_still_in_the_archive(upgraded):
    page = upgraded.test_client().get("/issues/winter-and-the-nervous-system")
    assert page.status_code == 200
    assert "Short days, long nights: a note on rest." in page.get_data(as_text=True)


def test_an_unsubscribe_link_mailed_by_the_previous_release_still_works(upgraded):
    # As the previous release wrote it into every issue: permanent, signed with SECRET_KEY.
    token = URLSafeSerializer(upgraded.config["SECRET_KEY"], salt="newsletter.unsubscribe").dumps(
        {"id": READER["id"], "k": READER["token_key"]})
    client = upgraded.test_client()
    assert client.get(f"/unsubscribe/{token}").status_code == 200
    assert client.post(f"/unsubscribe/{token}").status_code in (200, 302, 303)
    data = json.loads(_signed_in(upgraded).get(f"/admin/readers/{READER['id']}/export.json").get_data(as_text=True))
    assert data["status"] == "unsubscribed"
    assert [e["action"] for e in data["consent_events"]] == ["subscribe", "unsubscribe"]
