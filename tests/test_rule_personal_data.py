"""One rule, one place: what people tell the practice about themselves is encrypted at rest.

Everything goes through the `Encrypted` column type (newsletter/core/crypto.py). These tests look at
the database as an intruder with a dump would, enumerate every text column so a new clear one fails,
rotate the key, and check what a wrong key and a backup file look like. Every column counts as one that may
hold typed text (JSON, arrays, pickles, binaries, our own types too) unless its type is encrypted or plainly not
text (numbers, booleans, times), so a new column of any kind fails until it is encrypted or allowed with a reason.
"""
from __future__ import annotations

import os
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, select, text
from sqlalchemy.dialects import postgresql

import newsletter.models  # noqa: F401 - every table in the metadata
from newsletter import backup
from newsletter.core import crypto
from newsletter.core.config import ConfigError
from newsletter.core.crypto import Encrypted, FernetToken
from newsletter.core.extensions import db
from newsletter.inquiries import intake, pipeline
from newsletter.mail import outgoing
from newsletter.models import AdminUser, Inquiry, InquiryNote, OutgoingMail, WaitlistEntry
from newsletter.readers.subscriptions import Origin
from tests.helpers import CONFIRMED, FORM
from tests.support import FERNET_TEST_KEY, ROOT, make_app, wait_for

# Strings no template, seed or other test holds: if a dump shows one, it came from what was typed.
TYPED = {
    "name": "Quillon Vantablack",
    "email": "quillon.vantablack@example.org",
    "phone": "303-555-0119",
    "partner_name": "Ottoline",
    "heard_from_other": "the Zorblax podcast",
    "message": "We argue about marmalade every single Sunday.",
}
WAITLISTED = {"name": "Persimmon Okonkwo", "email": "persimmon.okonkwo@example.net",
              "message": "Could we wait for a place with the quince orchard behind us?"}
NOTE = "Prefers Wednesday mornings near the aviary"
REPLY = "I have a Thursday opening beside the lighthouse."
CALL_NOTE = "Left a voicemail about the zeppelin"


def post_ok(client, path: str, data: dict) -> None:
    response = client.post(path, data=data)
    assert response.status_code in (200, 302), (path, response.status_code)


def database_dump(settings) -> bytes:
    """The whole database as someone holding a dump or the file would see it."""
    url = settings["DATABASE_URL"]
    if url.startswith("postgresql"):
        done = subprocess.run(["pg_dump", "--dbname", url.replace("postgresql+psycopg://", "postgresql://")],
                              capture_output=True, check=True)
        return done.stdout
    path = Path(url.removeprefix("sqlite:///"))
    wal = path.with_name(path.name + "-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def test_a_dump_shows_nothing_an_inquirer_or_the_practice_typed_about_them(auth, app, client, worker, smtp, settings):
    with app.app_context():
        auth.login(client)
    post_ok(client, "/contact", {**FORM, **TYPED, "preferred_contact": "phone", "heard_from": "other",
                                 "voicemail_ok": "y", "discreet": "y"})
    smtp.wait_for_messages(2)  # the worker wrote and sent the forward and the acknowledgement
    post_ok(client, "/admin/inquiries/1/notes", {"body": NOTE})
    post_ok(client, "/admin/inquiries/1/call", {"note": CALL_NOTE})
    post_ok(client, "/admin/inquiries/1/reply", {"body": REPLY, "quote_inquiry": "y", **CONFIRMED})
    post_ok(client, "/admin/practice/clients", {"waitlist_check_weeks": "6"})  # no new clients: the waitlist
    post_ok(client, "/contact", {**FORM, **WAITLISTED})
    smtp.wait_for_messages(5)
    with app.app_context():
        wait_for(lambda: db.session.scalar(select(WaitlistEntry.id)) and not db.session.scalar(
            select(OutgoingMail.id).where(OutgoingMail.status != "sent")), message="the worker's mail is not all sent")
        db.session.remove()

    page = client.get("/admin/inquiries/1").get_data(as_text=True)
    dump = database_dump(settings)

    for value in (TYPED["name"], TYPED["partner_name"], TYPED["heard_from_other"], TYPED["message"], NOTE, REPLY,
                  CALL_NOTE):
        assert value in page, value  # the practice reads them decrypted
    for value in (*TYPED.values(), *WAITLISTED.values(), NOTE, REPLY, CALL_NOTE):
        for form in {value, value.lower(), value.upper()}:
            assert form.encode() not in dump, f"{value!r} is readable in the database"
    assert b"inquiry_reply" in dump and b"inquiry_ack" in dump  # the dump does hold those rows


# -- every text column is encrypted or allowed in clear, with the reason

def columns(table: str, **reasons: str) -> dict[tuple[str, str], str]:
    """{(table, column): why it may be stored in clear} for several columns of one table."""
    return {(table, column): reason for column, reason in reasons.items()}


CLEAR_ALLOWED = {
    # The practice's own people and details, not inquirers: the admins' sign-in and the public profile.
    ("admin_users", "email"): "an admin's own sign-in address",
    ("admin_users", "password_hash"): "argon2 hash",
    ("admin_users", "role"): "one of the fixed roles (owner, coordinator, clinician, editor), never typed",
    ("admin_recovery_codes", "code_hash"): "argon2 hash",
    ("practice_profile", "practice_name"): "public", ("practice_profile", "therapist_name"): "public",
    ("practice_profile", "credentials"): "public", ("practice_profile", "signature"): "public",
    ("practice_profile", "postal_address"): "public", ("practice_profile", "website"): "public",
    ("practice_profile", "email"): "public", ("practice_profile", "phone"): "public",
    ("practice_profile", "tagline"): "public", ("practice_profile", "working_days"): "public",
    ("practice_profile", "holidays"): "public", ("practice_profile", "referral_colleagues"): "public",
    ("practice_profile", "low_cost_options"): "public", ("practice_profile", "consultation_hours"): "public",
    ("practice_profile", "routing"): "fixed words", ("practice_profile", "assignee_mail"): "fixed words",
    # A clinician's profile: published on the team page (the reply signature and booking link go out in replies).
    **{("clinicians", column): "public" for column in (
        "name", "slug", "credentials", "bio", "works_with", "languages", "fees", "consultation_hours", "signature",
        "booking_link", "photo_version")},
    ("clinicians", "photo"): "public: the team page's photo, re-encoded without metadata",
    # The audit log: admins' actions; details name issues, readers by number, or an admin's address.
    ("audit_log", "action"): "fixed words", ("audit_log", "detail"): "admin actions", ("audit_log", "ip"): "admin's IP",
    # Newsletter issues: published articles.
    **{("issues", column): "published article" for column in (
        "title", "subject", "preheader", "slug", "source", "source_format", "signature", "body_html", "body_text",
        "postscript_html", "postscript_text", "email_html", "email_text", "status", "pause_reason")},
    # Readers (subscribers, their consent and signups, deliveries, bounces): out of scope. The sending
    # engine streams thousands of addresses and SPEC asks encryption for inquirers' words only (docs/security.md).
    **{("subscribers", column): "reader" for column in (
        "email", "name", "status", "source", "token_key", "confirm_nonce")},
    **{("signup_requests", column): "reader" for column in (
        "email", "name", "source", "wording", "ip", "user_agent", "lists")},
    # The practice's newsletters (public names) and the background processes' heartbeats (process names).
    **{("newsletter_lists", column): "public" for column in ("slug", "name", "description")},
    ("heartbeats", "name"): "a process's name",
    ("reader_digests", "month"): "a month, like 2026-11: which month's digest a reader was sent",
    # Her website's feed: its public address, the site's cache validators and our error words; the posts'
    # public links and a hash of their ids.
    **{("blog_feeds", column): "public feed" for column in ("url", "etag", "last_modified", "error")},
    ("feed_posts", "entry_key"): "hash", ("feed_posts", "link"): "a public post's address",
    ("issue_replies", "fingerprint"): "hash of a counted reply's Message-ID (never who wrote it)",
    **{("consent_events", column): "reader" for column in ("action", "source", "wording", "ip", "user_agent")},
    ("deliveries", "status"): "fixed words", ("deliveries", "error"): "SMTP answer for a reader's issue",
    ("suppressions", "email_hash"): "hash", ("suppressions", "reason"): "fixed words",
    ("suppressions", "detail"): "SMTP code",
    ("bounce_events", "provider"): "fixed words", ("bounce_events", "kind"): "fixed words",
    ("bounce_events", "email_hash"): "hash", ("bounce_events", "reason"): "provider's words",
    # A DSN's event id is its Message-ID and the bounced address (deliverability/bounces.py): mostly
    # readers'; docs/security.md names it among what a dump holds.
    ("bounce_events", "provider_event_id"): "provider's id",
    ("webhook_nonces", "provider"): "fixed words", ("webhook_nonces", "nonce"): "provider's random token",
    ("send_rate_buckets", "name"): "fixed words",
    # Inquiries: what the system decided, never what the person wrote.
    **columns("inquiries", source="site or embed", status="pipeline status",
              spam_reason="our words; at most one word of the fixed advertising list",
              ack_message_id="random Message-ID", fingerprint="HMAC (SECRET_KEY) of address, message and a half hour"),
    ("inquiry_access", "action"): "our words (viewed, status: client...)",
    ("inquiry_responses", "kind"): "email or call",
    ("waitlist_entries", "left_reason"): "fixed words",
    **columns("outgoing_mail", kind="which template", status="pending, sent, failed",
              recipient_hash="HMAC (SECRET_KEY) of the address, for lookups"),
}


def stored_columns() -> list[tuple[str, str, object]]:
    return [(table.name, column.name, column.type) for table in db.metadata.sorted_tables for column in table.columns]


# Types that cannot hold what someone typed: numbers, yes/no, times, ids. Every other type (String, Text, JSON,
# ARRAY, PickleType, LargeBinary, Enum (a String), a type of our own...) may: it is encrypted or allowed above.
NOT_TEXT = (sa.Integer, sa.Numeric, sa.Float, sa.Boolean, sa.DateTime, sa.Date, sa.Time, sa.Interval, sa.Uuid)


def may_hold_text(kind) -> bool:
    """Whether a column of this type may hold typed words in clear (an encrypted type holds none)."""
    if isinstance(kind, (Encrypted, FernetToken)):
        return False
    if isinstance(kind, sa.TypeDecorator):
        kind = kind.impl_instance
    return not isinstance(kind, NOT_TEXT)


def test_every_text_column_is_encrypted_or_allowed_in_clear_for_a_stated_reason():
    clear = {(table, column) for table, column, kind in stored_columns() if may_hold_text(kind)}

    assert clear - CLEAR_ALLOWED.keys() == set(), "clear columns: encrypt them (Encrypted) or allow them, saying why"
    assert CLEAR_ALLOWED.keys() - clear == set(), "allowed columns that no longer exist or are now encrypted"


@pytest.mark.parametrize("kind", [sa.String(30), sa.Text(), sa.JSON(), postgresql.JSONB(), sa.ARRAY(sa.String()),
                                  sa.PickleType(), sa.LargeBinary(), sa.Enum("a", "b"), sa.Unicode(10)], ids=repr)
def test_a_column_of_any_type_that_can_hold_words_counts_as_text(kind):
    assert may_hold_text(kind)


@pytest.mark.parametrize("kind", [sa.Integer(), sa.BigInteger(), sa.SmallInteger(), sa.Boolean(), sa.DateTime(),
                                  sa.Date(), sa.Double(), sa.Float(), sa.Numeric(), sa.Uuid(), Encrypted(),
                                  FernetToken()], ids=repr)
def test_only_encrypted_and_plainly_wordless_types_do_not(kind):
    assert not may_hold_text(kind)


def test_what_an_inquirer_fills_in_and_the_mail_to_them_is_declared_encrypted():
    encrypted = {(table, column) for table, column, kind in stored_columns() if isinstance(kind, Encrypted)}

    for field in ("name", "email", "phone", "message", "preferred_contact", "partner_name", "heard_from",
                  "heard_from_other", "voicemail_ok", "text_ok", "discreet"):
        assert ("inquiries", field) in encrypted, field
    assert {("inquiry_notes", "body"), ("inquiry_responses", "body"), ("outgoing_mail", "recipient"),
            ("outgoing_mail", "last_error")} <= encrypted


@pytest.mark.parametrize("condition", [lambda: Inquiry.email == TYPED["email"], lambda: Inquiry.name.like("Q%"),
                                       lambda: Inquiry.name.desc(), lambda: OutgoingMail.recipient.in_(["a@b.c"])])
def test_sql_refuses_to_compare_or_sort_an_encrypted_column_rather_than_find_nothing(condition):
    with pytest.raises(TypeError, match="is encrypted"):
        condition()


# -- keys: rotation, a wrong key, a malformed key

def store_inquiry_with_everything() -> int:
    """An inquiry, its mail, a note and a call; and an admin's TOTP secret: every kind of encrypted value."""
    submitted = intake.submit(**{key: TYPED[key] for key in ("name", "email", "phone", "message")},
                              preferred_contact="phone", origin=Origin(source="site", ip="203.0.113.9"),
                              details=intake.InquiryDetails(partner_name=TYPED["partner_name"], heard_from="other",
                                                            heard_from_other=TYPED["heard_from_other"], text_ok=True))
    db.session.commit()
    intake.queue_mails(submitted.inquiry_id)
    inquiry = db.session.get(Inquiry, submitted.inquiry_id)
    pipeline.add_note(inquiry, NOTE, None)
    pipeline.record_call(inquiry, CALL_NOTE, None)
    db.session.add(AdminUser(email="therapist@example.com", password_hash="x",
                             totp_secret_encrypted=crypto.encrypt("JBSWY3DPEHPK3PXP")))
    db.session.commit()
    return submitted.inquiry_id


def read_back(app, inquiry_id: int) -> dict:
    with app.app_context():
        db.session.remove()
        inquiry = db.session.get(Inquiry, inquiry_id)
        mails = [BytesParser(policy=policy.default).parsebytes(outgoing.message_bytes(row))
                 for row in db.session.scalars(select(OutgoingMail).order_by(OutgoingMail.id))]
        db.session.rollback()  # message_bytes stores the finished message: not wanted here
        return {**{key: getattr(inquiry, key) for key in TYPED}, "text_ok": inquiry.text_ok,
                "note": db.session.scalar(select(InquiryNote.body)),
                "recipients": sorted(db.session.scalars(select(OutgoingMail.recipient))),
                "subjects": sorted(str(mail["Subject"]) for mail in mails),
                "totp": crypto.decrypt_text(db.session.scalar(select(AdminUser.totp_secret_encrypted)))}


def test_rotate_key_leaves_every_value_readable_under_the_new_key_alone(app_factory):
    old_app = app_factory()
    with old_app.app_context():
        inquiry_id = store_inquiry_with_everything()
    before = read_back(old_app, inquiry_id)
    new_key = Fernet.generate_key().decode()

    result = app_factory(INQUIRY_ENCRYPTION_KEY=f"{new_key},{FERNET_TEST_KEY}").test_cli_runner().invoke(
        args=["rotate-key", "--batch-size", "1"])

    assert result.exit_code == 0, result.output
    assert "inquiries: 11 values re-encrypted" in result.output and "inquiry_notes: 1 values" in result.output
    assert "outgoing_mail: " in result.output and "admin_users: 1 values" in result.output
    assert read_back(app_factory(INQUIRY_ENCRYPTION_KEY=new_key), inquiry_id) == before
    assert before["name"] == TYPED["name"] and before["note"] == NOTE and before["text_ok"] is True
    with app_factory(INQUIRY_ENCRYPTION_KEY=FERNET_TEST_KEY).app_context():  # the old key reads nothing now
        assert db.session.get(Inquiry, inquiry_id).name == crypto.UNREADABLE


def test_rotate_key_says_what_no_configured_key_can_read_and_leaves_it(app_factory):
    with app_factory().app_context():
        store_inquiry_with_everything()

    result = app_factory(INQUIRY_ENCRYPTION_KEY=Fernet.generate_key().decode()).test_cli_runner().invoke(
        args=["rotate-key"])

    assert result.exit_code == 1
    assert "inquiries: 0 values re-encrypted, 11 unreadable" in result.output
    assert "could not be decrypted with any key in INQUIRY_ENCRYPTION_KEY" in result.output


def test_a_key_that_cannot_read_the_data_gives_a_clear_page_never_an_error(auth, app_factory):
    with app_factory().app_context():
        inquiry_id = store_inquiry_with_everything()
    other = app_factory(INQUIRY_ENCRYPTION_KEY=Fernet.generate_key().decode())
    client = other.test_client()
    with other.app_context():
        db.session.query(AdminUser).delete()  # its TOTP secret is unreadable too: sign in without it
        db.session.commit()
        auth.login(client)

    listing = client.get("/admin/inquiries")
    detail = client.get(f"/admin/inquiries/{inquiry_id}")

    for response in (listing, detail):
        assert response.status_code == 200
        assert "cannot be read: stored under an encryption key no longer in INQUIRY_ENCRYPTION_KEY" in \
            response.get_data(as_text=True)
    assert TYPED["name"] not in detail.get_data(as_text=True)


@pytest.mark.parametrize("setting, words", [
    ("not-a-fernet-key", "key 1 of 1 is not a Fernet key"),
    (f"{FERNET_TEST_KEY},{FERNET_TEST_KEY[:-2]}", "key 2 of 2 is not a Fernet key"),
    (" , ", "INQUIRY_ENCRYPTION_KEY holds no key"),
])
def test_a_malformed_key_stops_the_start_with_one_clear_line(settings, monkeypatch, setting, words):
    monkeypatch.setenv("INSTANCE_PATH", settings["INSTANCE_PATH"])
    with pytest.raises(ConfigError) as refused:
        make_app(settings, INQUIRY_ENCRYPTION_KEY=setting)

    assert words in str(refused.value) and "\n" not in str(refused.value)
    assert "Fernet.generate_key()" in str(refused.value)  # and how to make a good one


def test_several_keys_newest_first_are_accepted_as_before(app_factory):
    app = app_factory(INQUIRY_ENCRYPTION_KEY=f"{Fernet.generate_key().decode()}, {FERNET_TEST_KEY}")
    with app.app_context():
        assert crypto.decrypt_text(crypto.encrypt("kept")) == "kept"


# -- backups

def test_a_backup_is_readable_by_its_owner_only_from_its_first_byte(app_ctx, tmp_path, monkeypatch):
    target = tmp_path / "newsletter.backup"
    partial = tmp_path / "newsletter.backup.partial"
    modes = []
    write_pg, write_sqlite = backup._run, backup._sqlite_copy

    def seen_then(write):
        def spy(*args, **kwargs):
            modes.append(partial.stat().st_mode & 0o777)  # the moment the database starts writing into it
            return write(*args, **kwargs)
        return spy

    monkeypatch.setattr(backup, "_run", seen_then(write_pg))
    monkeypatch.setattr(backup, "_sqlite_copy", seen_then(write_sqlite))
    old_umask = os.umask(0o022)  # a usual umask would give 0644
    try:
        result = app_ctx.test_cli_runner().invoke(args=["backup", str(target)])
    finally:
        os.umask(old_umask)

    assert result.exit_code == 0, result.output
    assert modes == [0o600]
    assert target.stat().st_mode & 0o777 == 0o600 and not partial.exists()


# -- the migration carries clear rows into encrypted ones, and back

OLD_INQUIRY = ("INSERT INTO inquiries (id, name, email, phone_encrypted, message_encrypted, preferred_contact, source,"
               " status, urgent, spam, spam_reason, created_at, partner_name, heard_from, heard_from_other,"
               " voicemail_ok, text_ok, discreet, waitlist) VALUES (1, :name, :email, :phone, :message, 'phone',"
               " 'site', 'new', false, false, '', '2026-01-01', :partner_name, 'other', :heard_from_other, true,"
               " false, true, false)")
OLD_NOTE = "INSERT INTO inquiry_notes (id, inquiry_id, body_encrypted, created_at) VALUES (1, 1, :body, '2026-01-01')"
OLD_MAIL = ("INSERT INTO outgoing_mail (id, kind, recipient, message, status, attempts, next_attempt_at, created_at,"
            " last_error) VALUES (1, 'inquiry_ack', :email, :message, 'pending', 0, '2026-01-01', '2026-01-01',"
            " '550 no such user quillon.vantablack@example.org')")


def test_the_migration_encrypts_clear_rows_in_place_and_the_downgrade_decrypts_them(empty_database_url, tmp_path,
                                                                                     settings, monkeypatch):
    env = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": empty_database_url, "PATH": "/usr/bin:/bin",
           "SECRET_KEY": "test-secret-key-not-for-production", "INQUIRY_ENCRYPTION_KEY": FERNET_TEST_KEY}

    def flask_db(*args: str) -> None:
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr

    def clear_rows() -> list:
        with engine.connect() as conn:
            return conn.execute(text("SELECT name, email, partner_name, heard_from_other, voicemail_ok, discreet"
                                     " FROM inquiries")).all() + conn.execute(
                text("SELECT recipient, last_error FROM outgoing_mail")).all()

    fernet = Fernet(FERNET_TEST_KEY)
    engine = create_engine(empty_database_url.replace("postgresql://", "postgresql+psycopg://"))
    flask_db("upgrade", "8b4e2d7f1a63")
    with engine.begin() as conn:
        conn.execute(text(OLD_INQUIRY), {**TYPED, "phone": fernet.encrypt(TYPED["phone"].encode()),
                                         "message": fernet.encrypt(TYPED["message"].encode())})
        conn.execute(text(OLD_NOTE), {"body": fernet.encrypt(NOTE.encode())})
        conn.execute(text(OLD_MAIL), {"email": TYPED["email"], "message": fernet.encrypt(b"a whole message")})
    before = clear_rows()

    flask_db("upgrade")
    with engine.connect() as conn:
        raw = repr(conn.execute(text("SELECT * FROM inquiries")).all() + conn.execute(
            text("SELECT * FROM outgoing_mail")).all())
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    app = make_app({**settings, "DATABASE_URL": empty_database_url})
    with app.app_context():
        inquiry = db.session.get(Inquiry, 1)
        read = {key: getattr(inquiry, key) for key in TYPED} | {"note": inquiry.notes[0].body}
        found = db.session.scalar(select(OutgoingMail).where(OutgoingMail.addressed_to(TYPED["email"].upper())))
        assert (found.recipient, found.last_error) == (TYPED["email"], "550 no such user " + TYPED["email"])
        assert (inquiry.voicemail_ok, inquiry.text_ok, inquiry.discreet) == (True, False, True)
        db.session.remove()
        db.engine.dispose()
    flask_db("downgrade", "8b4e2d7f1a63")
    after = clear_rows()
    engine.dispose()

    assert not any(value in raw for value in TYPED.values())
    assert read == {**TYPED, "note": NOTE}
    assert after == before and before[0][0] == TYPED["name"]

