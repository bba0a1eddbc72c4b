"""Moving in from another newsletter service: each service's export imports with its consent history,
readers who left there never come in active, and a file that looks like her client list is refused until
she says it is not one (through the admin page and `flask subscribers import`)."""
from __future__ import annotations

import csv
import io
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.mail.suppression import is_suppressed
from newsletter.models import ConsentEvent, Subscriber
from newsletter.readers import csv_files
from tests.helpers import assert_answered, consent_events, examples, hostile_text, queued, reader

EXPORTS = Path(__file__).parent / "data" / "exports"


def _upload(client, body: bytes, filename: str, consent: str | None = "elsewhere", confirmed: bool = False):
    data = {"csv_file": (io.BytesIO(body), filename)}
    if consent:
        data["consent"] = consent
    if confirmed:
        data["not_a_client_list"] = "y"
    return client.post("/admin/readers/import", data=data, content_type="multipart/form-data")


def _upload_export(client, name: str, consent: str = "elsewhere", **kwargs):
    return _upload(client, (EXPORTS / name).read_bytes(), name, consent, **kwargs)


def _history(app, email: str) -> list[tuple[str, datetime, str]]:
    return [(e.action, e.created_at, e.ip) for e in consent_events(app, email) if e.action in ("subscribe", "confirm")]


def _counts(app) -> tuple[int, int]:
    with app.app_context():
        return (db.session.scalar(select(func.count()).select_from(Subscriber)),
                db.session.scalar(select(func.count()).select_from(ConsentEvent)))


# -- each service's export

def test_mailchimp_export_keeps_opt_in_and_confirmation_times_and_ips(app, admin_client):
    page = _upload_export(admin_client, "mailchimp_subscribed.csv").get_data(as_text=True)

    assert "Read as a Mailchimp export." in page and "2 added" in page
    assert "2 came with their opt-in time or IP" in page
    assert "Columns not imported (dropped):" in page and "MEMBER_RATING" in page and "TAGS" in page
    maya = reader(app, "maya@example.com")
    assert (maya.status, maya.name) == ("active", "Maya López")
    assert _history(app, "maya@example.com") == [
        ("subscribe", datetime(2021, 3, 4, 17, 2, 33), "203.0.113.10"),
        ("confirm", datetime(2021, 3, 4, 17, 5, 1), "203.0.113.11")]
    assert _history(app, "ben@example.com") == [("subscribe", datetime(2022, 11, 20, 8), "2001:db8::7")]
    [imported] = [e for e in consent_events(app, "maya@example.com") if e.action == "import"]
    assert imported.wording == csv_files.IMPORT_WORDING["elsewhere"] + " From a Mailchimp export."
    assert queued(app=app) == []


def test_mailchimp_unsubscribed_and_cleaned_exports_never_come_in_active(app, admin_client):
    _upload_export(admin_client, "mailchimp_unsubscribed.csv")
    page = _upload_export(admin_client, "mailchimp_cleaned.csv").get_data(as_text=True)

    left = reader(app, "left@example.com")
    assert (left.status, left.unsubscribed_at) == ("unsubscribed", datetime(2023, 5, 6, 7, 8, 9))
    assert [e.action for e in consent_events(app, "left@example.com")] == ["subscribe", "confirm", "import",
                                                                           "unsubscribe"]
    assert "1 on the suppression list" in page and reader(app, "gone@example.com") is None
    with app.app_context():
        assert is_suppressed("gone@example.com")
    assert queued(app=app) == []


@pytest.mark.parametrize("export, service, expected", [
    ("substack.csv", "Substack", {"reader.one@example.com": ("active", datetime(2023, 4, 5, 6, 7, 8)),
                                  "reader.two@example.com": ("unsubscribed", datetime(2022, 1, 1))}),
    ("buttondown.csv", "Buttondown", {"bd.regular@example.com": ("active", datetime(2024, 1, 15, 9, 30, 0, 123456)),
                                      "bd.unsub@example.com": ("unsubscribed", datetime(2023, 1, 15, 9, 30)),
                                      "bd.new@example.com": ("pending", datetime(2024, 3, 1, 9, 30))}),
    ("kit.csv", "Kit", {"kit.one@example.com": ("active", datetime(2024, 5, 6, 7, 8, 9)),
                        "kit.two@example.com": ("unsubscribed", datetime(2023, 5, 6, 7, 8, 9))}),
    ("listmonk.csv", "listmonk", {"lm.one@example.com": ("active", datetime(2024, 7, 8, 9, 10, 11, 123456)),
                                  "lm.two@example.com": ("unsubscribed", datetime(2024, 7, 8, 9, 10, 11))}),
])
def test_each_services_export_imports_with_its_opt_in_times(app, admin_client, export, service, expected):
    page = _upload_export(admin_client, export).get_data(as_text=True)

    assert f"Read as a {service} export." in page
    for email, (status, opted_in) in expected.items():
        assert reader(app, email).status == status, email
        assert _history(app, email)[0][:2] == ("subscribe", opted_in), email
    unconfirmed = [email for email, (status, _) in expected.items() if status == "pending"]
    assert [m["To"] for m in queued("confirm", app=app)] == unconfirmed


def test_bounced_and_complained_rows_are_suppressed_not_imported(app, admin_client):
    _upload_export(admin_client, "buttondown.csv")
    _upload_export(admin_client, "kit.csv")

    with app.app_context():
        assert is_suppressed("bd.bounce@example.com") and is_suppressed("kit.three@example.com")
    assert reader(app, "bd.bounce@example.com") is None and reader(app, "kit.three@example.com") is None


def test_a_row_with_a_status_word_nobody_knows_is_left_out(app, admin_client):
    page = _upload(admin_client, b"email,status\nodd@example.org,maybe-later\n", "r.csv").get_data(as_text=True)

    assert "Line 2: unknown status" in page and reader(app, "odd@example.org") is None


def test_command_imports_an_export_asking_each_reader_to_confirm(app, runner):
    result = runner.invoke(args=["subscribers", "import", str(EXPORTS / "mailchimp_subscribed.csv")])

    assert result.exit_code == 0, result.output
    assert "Read as a Mailchimp export." in result.output and "2 added," in result.output
    assert "2 with their opt-in time or IP from the file." in result.output
    assert reader(app, "maya@example.com").status == "pending"
    assert _history(app, "maya@example.com")[0] == ("subscribe", datetime(2021, 3, 4, 17, 2, 33), "203.0.113.10")
    assert len(queued("confirm", app=app)) == 2


# -- the roster guard

def test_a_client_list_is_refused_until_she_says_it_is_not_one(app, admin_client):
    refused = _upload_export(admin_client, "clients.csv")

    page = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "looks like a list of your clients" in page
    assert "date of birth" in page and "diagnosis" in page and "its name sounds like a client list" in page
    assert "these are dropped: date of birth, diagnosis, insurance, next appointment, is_client" in page
    assert reader(app, "pat@example.com") is None and _counts(app) == (0, 0)

    page = _upload_export(admin_client, "clients.csv", confirmed=True).get_data(as_text=True)

    assert "1 added" in page
    assert "Columns not imported (dropped): date of birth, diagnosis, insurance, next appointment, is_client" in page
    kept = reader(app, "pat@example.com")
    assert (kept.name, kept.status) == ("Pat Doe", "active")
    with app.app_context():
        stored = repr(db.session.execute(select(Subscriber.__table__)).all()) + repr(
            db.session.execute(select(ConsentEvent.__table__)).all())
    assert "F41.1" not in stored and "Aetna" not in stored and "1980" not in stored


@pytest.mark.parametrize("filename", ["clients.csv", "Client Roster 2024.csv", "patients-export.csv",
                                      "SimplePractice.csv"])
def test_a_file_named_like_a_roster_is_refused_with_the_reason(app, admin_client, filename):
    response = _upload(admin_client, b"email,name\nsomeone@example.org,Some One\n", filename)

    assert response.status_code == 400 and b"its name sounds like a client list" in response.data
    assert reader(app, "someone@example.org") is None


def test_command_refuses_a_client_list_unless_told_it_is_not_one(app, runner):
    path = str(EXPORTS / "clients.csv")

    refused = runner.invoke(args=["subscribers", "import", path, "--consent", "elsewhere"])
    assert refused.exit_code != 0 and "looks like a list of your clients" in refused.output
    assert reader(app, "pat@example.com") is None

    done = runner.invoke(args=["subscribers", "import", path, "--consent", "elsewhere", "--not-a-client-list"])
    assert done.exit_code == 0, done.output
    assert "Columns not imported: date of birth" in done.output and reader(app, "pat@example.com").status == "active"


# -- whatever the file

CELLS = st.one_of(hostile_text(40), st.sampled_from(["Email Address", "OPTIN_TIME", "status", "unsubscribed",
                                                     "2021-03-04 17:02:33", "999.1.1.1", "a@example.org", ""]))
ROWS = st.lists(st.lists(CELLS, max_size=5), max_size=5)
FILENAMES = st.one_of(hostile_text(60), st.sampled_from(["clients.csv", "../../etc/passwd", "r.csv", ""]))


def _as_csv(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue()


@examples(40)
@example(rows=[], raw=None, filename="clients\x00.csv", consent="ask", confirmed=True)  # a NUL in the audit entry
@given(rows=ROWS, raw=st.one_of(st.none(), st.binary(max_size=200)), filename=FILENAMES,
       consent=st.sampled_from(["ask", "elsewhere", None, "<script>"]), confirmed=st.booleans())
def test_hostile_files_never_give_a_500_and_a_refusal_changes_nothing(app, admin_client, rows, raw, filename,
                                                                       consent, confirmed):
    body = raw if raw is not None else ("email,name\n" + _as_csv(rows)).encode("utf-8", "surrogatepass")
    before = _counts(app)

    response = _upload(admin_client, body, filename or "x", consent, confirmed)

    assert_answered(response)
    if response.status_code == 400:
        assert _counts(app) == before
    assert b"<script>" not in response.data


def test_preview_says_what_the_file_would_do_and_imports_nothing(app, admin_client):
    body = (EXPORTS / "mailchimp_subscribed.csv").read_bytes()
    response = admin_client.post("/admin/readers/import", content_type="multipart/form-data", data={
        "csv_file": (io.BytesIO(body), "export.csv"), "consent": "ask", "preview": "yes"})

    page = response.get_data(as_text=True)
    assert "Preview: nothing is imported yet." in page and "2 would be added" in page and "MEMBER_RATING" in page
    assert reader(app, "maya@example.com") is None and _counts(app) == (0, 0) and queued(app=app) == []
