"""The therapist's desk without a browser: autosave, delete, duplicate, a test copy's web link,
the outbox's paging and search, a stopped send's report, and hostile input to each."""
from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.core.extensions import db
from newsletter.models import Issue
from newsletter.publishing import issues
from newsletter.sending import control, dispatcher
from tests.helpers import ARTICLE, add_issue, add_readers, send_all

FUZZ = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def draft(app) -> int:
    with app.app_context():
        issue = issues.create_from_source(ARTICLE)
        db.session.commit()
        return issue.id


def saved(app, issue_id: int) -> tuple[str, str] | None:
    with app.app_context():
        issue = db.session.get(Issue, issue_id)
        return (issue.title, issue.source) if issue else None


def test_autosave_keeps_what_she_typed(app, admin_client):
    issue_id = draft(app)
    response = admin_client.post(f"/admin/issues/{issue_id}/autosave", data={
        "title": "A new headline", "subject": "", "preheader": "", "source": "Typed just now.", "source_format": "text"})

    assert response.status_code == 200 and response.get_json()["saved"] is True
    assert saved(app, issue_id) == ("A new headline", "Typed just now.")


@FUZZ
@given(title=st.text(max_size=400), source=st.text(max_size=300), source_format=st.sampled_from(["text", "markdown", "",
                                                                                                   "html", "\x00"]))
def test_autosave_with_any_input_saves_or_says_why_never_a_500(app, admin_client, title, source, source_format):
    issue_id = draft(app)
    before = saved(app, issue_id)
    response = admin_client.post(f"/admin/issues/{issue_id}/autosave", data={
        "title": title, "subject": "", "preheader": "", "source": source, "source_format": source_format})

    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.get_json()["error"]
        assert saved(app, issue_id) == before


def test_a_sent_issue_is_neither_autosaved_nor_deleted(app, admin_client):
    with app.app_context():
        issue_id = add_issue(status="sent").id
    before = saved(app, issue_id)

    response = admin_client.post(f"/admin/issues/{issue_id}/autosave", data={
        "title": "Changed after sending", "source": "No.", "source_format": "text"})
    assert response.status_code == 409 and "can't be changed" in response.get_json()["error"]
    response = admin_client.post(f"/admin/issues/{issue_id}/delete")
    assert response.status_code == 400 and b"Only a draft can be deleted" in response.data
    assert saved(app, issue_id) == before


def test_a_draft_is_deleted_and_a_duplicate_keeps_its_headline(app, admin_client):
    issue_id = draft(app)
    copy_url = admin_client.post(f"/admin/issues/{issue_id}/duplicate").headers["Location"]
    copy_id = int(copy_url.rsplit("/", 1)[1])

    assert saved(app, copy_id)[0] == "Repair after a rough evening"
    listing = admin_client.get("/admin/issues").get_data(as_text=True)
    assert listing.count('class="badge">copy') == 1

    assert admin_client.post(f"/admin/issues/{issue_id}/delete").status_code == 302
    assert saved(app, issue_id) is None and saved(app, copy_id) is not None
    assert admin_client.get(f"/admin/issues/{issue_id}").status_code == 404


def test_a_test_copys_web_link_works_before_sending_and_only_for_its_issue(app, admin_client):
    first, second = draft(app), draft(app)
    with app.app_context():
        link = issues.preview_url(db.session.get(Issue, first)).removeprefix(app.extensions["settings"].base_url)
        other_slug = db.session.get(Issue, second).slug

    assert admin_client.get(link.split("?")[0]).status_code == 404  # not published
    assert b"turning toward each other" in admin_client.get(link).data
    token = link.split("preview=")[1]
    assert admin_client.get(f"/issues/{other_slug}?preview={token}").status_code == 404
    assert admin_client.get(link[:-2] + "zz").status_code == 404


def test_a_canceled_send_counts_the_readers_it_left_out(app_ctx):
    add_readers(5)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    assert control.cancel(issue.id)

    report = control.progress(issue.id)
    assert (report.sent, report.canceled, report.not_sent, report.skipped) == (0, 5, 5, 0)


def test_a_finished_send_has_nobody_left_out(app_ctx):
    add_readers(3)
    issue = add_issue()
    dispatcher.dispatch(issue.id)
    send_all(issue.id)

    assert control.progress(issue.id).not_sent == 0


def write_outbox(app, count: int) -> None:
    folder = Path(app.extensions["settings"].outbox_dir)
    folder.mkdir(parents=True, exist_ok=True)
    for number in range(count):
        (folder / f"2026-11-30-{number:04d}.eml").write_bytes(
            f"To: reader{number}@example.org\r\nSubject: Letter {number}\r\nDate: Mon, 30 Nov 2026 10:00:00 +0000\r\n"
            f"\r\nHello\r\n".encode())


def test_the_outbox_is_paged_and_searchable(app, admin_client):
    write_outbox(app, 30)

    first = admin_client.get("/admin/outbox").get_data(as_text=True)
    assert first.count("<tr><td") == 25 and "page 1 of 2" in first and "Letter 29" in first
    second = admin_client.get("/admin/outbox?page=2").get_data(as_text=True)
    assert second.count("<tr><td") == 5 and "Letter 0<" in second
    found = admin_client.get("/admin/outbox?q=reader7@").get_data(as_text=True)
    assert found.count("<tr><td") == 1 and "Letter 7" in found


@FUZZ
@given(query=st.text(max_size=300), page=st.text(max_size=20))
def test_the_outbox_takes_any_search_and_page(app, admin_client, query, page):
    response = admin_client.get("/admin/outbox", query_string={"q": query, "page": page})
    assert response.status_code == 200


def test_the_dashboard_counts_readers_by_state(app, admin_client):
    with app.app_context():
        add_readers(3)
        add_readers(2, status="pending", prefix="waiting")
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert 'data-figure="confirmed">3<' in page and 'data-figure="pending">2<' in page
    assert "<script>" not in page and "onclick" not in page
