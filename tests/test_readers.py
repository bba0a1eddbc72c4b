"""The therapist's side of readers: list, import, export, data requests, suppression and purge."""
from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from sqlalchemy import insert, select

from newsletter.core.extensions import db
from newsletter.mail import outgoing
from newsletter.mail.suppression import email_hash, is_suppressed
from newsletter.models import ConsentEvent, OutgoingMail, Subscriber, Suppression, utcnow
from newsletter.readers import csv_files, subscriptions
from tests.helpers import consent_events, make_active, queued, reader, signup


def _add_readers(app, count: int, status: str = "active", prefix: str = "reader") -> None:
    now = utcnow()
    with app.app_context():
        db.session.execute(insert(Subscriber), [
            {"email": f"{prefix}{n:05d}@example.org", "name": f"Name {n}", "status": status, "source": "site",
             "token_key": "k" * 32, "created_at": now} for n in range(count)
        ])
        db.session.commit()


def _upload(client, body: str, consent: str | None = "ask", filename: str = "readers.csv"):
    data = {"csv_file": (io.BytesIO(body.encode("utf-8")), filename)}
    if consent:
        data["consent"] = consent
    return client.post("/admin/readers/import", data=data, content_type="multipart/form-data")


# -- the list

def test_readers_list_pages_newest_first_and_back(app, admin_client):
    _add_readers(app, 120)

    first = admin_client.get("/admin/readers").get_data(as_text=True)
    assert "reader00119@example.org" in first and "reader00070@example.org" in first
    assert "reader00069@example.org" not in first and "Newer" not in first
    with app.app_context():
        oldest_shown = db.session.scalar(select(Subscriber.id).where(Subscriber.email == "reader00070@example.org"))

    second = admin_client.get(f"/admin/readers?after={oldest_shown}").get_data(as_text=True)
    assert "reader00069@example.org" in second and "reader00020@example.org" in second
    assert "Newer" in second and "Older" in second

    third = admin_client.get(f"/admin/readers?after={oldest_shown - 50}").get_data(as_text=True)
    assert "reader00000@example.org" in third and "Older" not in third

    back = admin_client.get(f"/admin/readers?before={oldest_shown - 1}").get_data(as_text=True)
    assert "reader00070@example.org" in back and "reader00119@example.org" in back


def test_readers_list_searches_and_filters_by_status(app, admin_client):
    _add_readers(app, 5)
    _add_readers(app, 3, status="unsubscribed", prefix="gone")

    page = admin_client.get("/admin/readers?status=unsubscribed").get_data(as_text=True)
    assert page.count("@example.org</a>") == 3 and "3 unsubscribed" in page and "5 active" in page

    page = admin_client.get("/admin/readers?q=READER00003").get_data(as_text=True)
    assert page.count("@example.org</a>") == 1 and "reader00003@example.org" in page

    page = admin_client.get("/admin/readers?q=name%204&status=active").get_data(as_text=True)
    assert page.count("@example.org</a>") == 1


@pytest.mark.parametrize("query", ["q=%25", "q=_", "q=" + "x" * 10_000, "status=<script>", "after=-1",
                                   "after=99999999999999999999999", "before=abc", "q=%00%0d%0a"])
def test_readers_list_survives_odd_parameters(app, admin_client, query):
    _add_readers(app, 2)

    response = admin_client.get(f"/admin/readers?{query}")

    assert response.status_code == 200
    assert b"<script>" not in response.data


def test_reader_pages_need_sign_in(client):
    for path in ("/admin/readers", "/admin/readers/export.csv", "/admin/readers/1/export.json",
                 "/admin/readers/import", "/admin/readers/embed"):
        assert client.get(path).status_code == 302


# -- import

def test_import_asking_each_reader_to_confirm(app, admin_client):
    make_active(app, "gone@example.org", then_unsubscribe=True)
    with app.app_context():
        subscriptions.suppress("erased@example.org", "erased")
        db.session.commit()
    body = ("email,name\nNew.One@Example.org,New One\nnot-an-address,Bad\ngone@example.org,Gone\n"
            "erased@example.org,\nnew.one@example.org,Duplicate\n")

    page = _upload(admin_client, body, "ask").get_data(as_text=True)

    assert "1 added, 2 already known (left as they were), 1 on the suppression list, 1 not valid" in page
    assert "Line 3" in page
    assert reader(app, "New.One@example.org").status == "pending"
    assert reader(app, "gone@example.org").status == "unsubscribed"
    assert [m["To"] for m in queued("confirm", app=app)] == ["gone@example.org", "New One <New.One@example.org>"]
    [event] = consent_events(app, "New.One@example.org")
    assert (event.action, event.source) == ("import", "import")
    assert event.wording == csv_files.IMPORT_WORDING["ask"]


def test_import_of_readers_who_consented_elsewhere_makes_them_active_and_says_so(app, admin_client):
    _upload(admin_client, "email\nalready@example.org\n", "elsewhere")

    assert reader(app, "already@example.org").status == "active"
    assert queued(app=app) == []
    assert consent_events(app, "already@example.org")[0].wording == csv_files.IMPORT_WORDING["elsewhere"]


@pytest.mark.parametrize("body, consent, message", [
    ("address,name\na@example.org,A\n", "ask", "No column of email addresses"),
    ("email,name\na@example.org,A\n", None, "Please choose how these readers agreed."),
    ("email,name\na@example.org,A\n", "everyone", "Not a valid choice"),
])
def test_import_refuses_a_bad_file_with_a_clear_message_and_changes_nothing(app, admin_client, body, consent, message):
    response = _upload(admin_client, body, consent)

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert reader(app, "a@example.org") is None


def test_import_page_refuses_a_file_too_big_for_one_request_and_points_to_the_command(app, admin_client, monkeypatch):
    monkeypatch.setattr("newsletter.admin.readers.IMPORT_MAX_ROWS", 2)

    response = _upload(admin_client, "email\na@example.org\nb@example.org\nc@example.org\n", "ask")

    assert response.status_code == 400 and b"flask subscribers import" in response.data
    assert reader(app, "a@example.org") is None


def test_import_refuses_a_file_that_is_not_utf8(app, admin_client):
    response = admin_client.post("/admin/readers/import", content_type="multipart/form-data", data={
        "csv_file": (io.BytesIO(b"email,name\n\xff\xfe@example.org,\xe9\n"), "r.csv"), "consent": "ask"})

    assert response.status_code == 400 and b"readable CSV" in response.data


# -- export

def test_csv_export_lists_every_reader_and_defuses_spreadsheet_formulas(app, admin_client):
    _add_readers(app, 3)
    make_active(app, "formula@example.org")
    with app.app_context():
        db.session.scalar(select(Subscriber).where(Subscriber.email == "formula@example.org")).name = "=HYPERLINK(1)"
        db.session.commit()

    response = admin_client.get("/admin/readers/export.csv")

    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert response.mimetype == "text/csv" and len(rows) == 4
    assert rows[-1]["name"] == "'=HYPERLINK(1)" and rows[-1]["status"] == "active"


# -- data requests

def test_reader_data_export_has_their_details_and_consent_record(app, admin_client, client):
    signup(client, "asks@example.org", "Asker")
    with app.app_context():
        reader_id = db.session.scalar(select(Subscriber.id))

    data = json.loads(admin_client.get(f"/admin/readers/{reader_id}/export.json").data)

    assert (data["email"], data["name"], data["status"]) == ("asks@example.org", "Asker", "pending")
    assert data["consent_events"][0]["ip"] == "203.0.113.7"
    assert data["consent_events"][0]["wording"].startswith("Yes, send me new articles")


def test_erasing_a_reader_removes_their_data_and_keeps_the_address_suppressed(app, admin_client, client):
    make_active(app, "Forget.Me@example.org")
    signup(client, "Forget.Me@example.org")  # an "already subscribed" note waits in the outbox
    with app.app_context():
        reader_id = db.session.scalar(select(Subscriber.id))

    page = admin_client.post(f"/admin/readers/{reader_id}/erase", follow_redirects=True)

    assert b"erased" in page.data
    with app.app_context():
        assert db.session.scalar(select(Subscriber)) is None
        assert db.session.scalars(select(OutgoingMail)).all() == []
        assert db.session.scalar(select(Suppression.reason)) == "erased"
        assert db.session.scalar(select(Suppression.email_hash)) == email_hash("forget.me@example.org")
        remaining = db.session.scalars(select(ConsentEvent)).all()
        assert [(e.action, e.subscriber_id) for e in remaining] == [("erase", None)]
        assert "forget" not in json.dumps([e.wording for e in remaining]).lower()
    signup(client, "forget.me@example.org")
    assert reader(app, "forget.me@example.org") is None and queued(app=app) == []


def test_reader_detail_shows_the_consent_record(app, admin_client, client):
    signup(client, "shown@example.org", "<i>Shown</i>")
    with app.app_context():
        reader_id = db.session.scalar(select(Subscriber.id))

    page = admin_client.get(f"/admin/readers/{reader_id}").get_data(as_text=True)

    assert "Yes, send me new articles" in page and "203.0.113.7" in page
    assert "&lt;i&gt;Shown&lt;/i&gt;" in page
    assert admin_client.get("/admin/readers/999999").status_code == 404


def test_embed_snippet_page_shows_the_iframe_and_the_allowed_origins(auth, app_factory):
    app = app_factory(EMBED_ALLOWED_ORIGINS="https://www.innercalm.example")
    client = auth.login(app.test_client())

    page = client.get("/admin/readers/embed").get_data(as_text=True)

    assert '&lt;iframe src="http://newsletter.test/embed/subscribe"' in page
    assert "https://www.innercalm.example" in page


# -- suppression and purge

def test_a_permanent_refusal_suppresses_the_address_and_marks_the_reader(app, smtp):
    make_active(app, "gone-away@example.org")
    smtp.reject("gone-away@example.org", 550)
    with app.app_context():
        row = db.session.scalar(select(Subscriber).where(Subscriber.email == "gone-away@example.org"))
        mail_id = outgoing.queue_template("already_subscribed", to=row.email, subscriber=row,
                                        unsubscribe_url="u", archive_url="a").id
        db.session.commit()

        assert outgoing.deliver(mail_id) == "failed"
        assert is_suppressed("Gone-Away@example.org")
    assert reader(app, "gone-away@example.org").status == "bounced"
    assert [e.action for e in consent_events(app, "gone-away@example.org")][-1] == "bounced"


def test_unconfirmed_readers_are_purged_after_a_week_and_returning_ones_fall_back_to_unsubscribed(app, client):
    signup(client, "never@example.org")
    signup(client, "recent@example.org")
    make_active(app, "returning@example.org", then_unsubscribe=True)
    signup(client, "returning@example.org")
    with app.app_context():
        for row in db.session.scalars(select(Subscriber).where(Subscriber.email != "recent@example.org")):
            row.pending_since -= timedelta(days=8)
        db.session.commit()

        assert subscriptions.purge_unconfirmed() == 1
        db.session.commit()

    assert reader(app, "never@example.org") is None
    assert reader(app, "recent@example.org").status == "pending"
    assert reader(app, "returning@example.org").status == "unsubscribed"
    assert len(consent_events(app, "returning@example.org")) == 4


# -- the command line

def test_cli_imports_exports_and_suppresses(app, runner, tmp_path):
    path = tmp_path / "readers.csv"
    path.write_text("email,name\ncli.one@example.org,Cli One\ncli.two@example.org,\n", encoding="utf-8")

    imported = runner.invoke(args=["subscribers", "import", str(path), "--consent", "elsewhere"])
    assert imported.exit_code == 0, imported.output
    assert "2 added" in imported.output

    suppressed = runner.invoke(args=["subscribers", "suppress", "CLI.two@example.org", "--reason", "complained"])
    assert suppressed.exit_code == 0, suppressed.output

    exported = runner.invoke(args=["subscribers", "export"])
    rows = list(csv.DictReader(io.StringIO(exported.output)))
    assert [(r["email"], r["status"]) for r in rows] == [("cli.one@example.org", "active"),
                                                         ("cli.two@example.org", "complained")]


def test_cli_import_needs_a_consent_mode_and_a_proper_header(app, runner, tmp_path):
    path = tmp_path / "readers.csv"
    path.write_text("mail\nx@example.org\n", encoding="utf-8")

    assert runner.invoke(args=["subscribers", "import", str(path)]).exit_code != 0
    refused = runner.invoke(args=["subscribers", "import", str(path), "--consent", "ask"])
    assert refused.exit_code != 0 and "No column of email addresses" in refused.output
