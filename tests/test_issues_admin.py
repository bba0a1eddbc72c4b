"""The therapist takes the sample article from file to scheduled issue through the admin."""
from __future__ import annotations

import io
from datetime import datetime

import pytest
from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.mail import outgoing
from newsletter.models import Issue, OutgoingMail, Subscriber
from newsletter.models.issues import SCHEDULED
from newsletter.models.readers import ACTIVE
from newsletter.publishing import issues
from tests.helpers import csrf_token, upload_sample
from tests.support import SAMPLE_ARTICLE as SAMPLE
from tests.support import wait_for


def editor_data(**changes) -> dict:
    data = {"title": "Why Small Moments Matter", "subject": "", "preheader": "", "source_format": "text",
            "source": "A first paragraph, with care.\nA second one."}
    data.update(changes)
    return data


def test_sample_goes_from_file_to_scheduled_issue_through_the_admin(app, admin_client, smtp):
    issue_id = upload_sample(admin_client)
    page = admin_client.get(f"/admin/issues/{issue_id}").get_data(as_text=True)
    assert "Why Small Moments of Disconnection Hurt More Than Big Fights" in page
    assert 'data-width="375"' in page and 'data-width="600"' in page

    saved = admin_client.get(f"/admin/issues/{issue_id}/email").get_data(as_text=True)
    assert "Many couples are surprised" in saved and "Shoshana Ort, LCSW" in saved

    response = admin_client.post(f"/admin/issues/{issue_id}/test", data={"to": "me@example.org"})
    assert response.status_code == 302
    with app.app_context():
        outgoing.deliver_due()  # what a worker does, if none is running in this session
    [received] = smtp.wait_for_messages(1)
    assert received.message["Subject"].startswith("[Test] Why Small Moments")

    response = admin_client.post(f"/admin/issues/{issue_id}/schedule",
                                 data={"send_at": "2031-03-02T08:30", "action": "schedule"})
    assert response.status_code == 302
    assert "Mar 2, 2031 8:30 AM" in admin_client.get(f"/admin/issues/{issue_id}").get_data(as_text=True)
    with app.app_context():
        issue = db.session.get(Issue, issue_id)
        assert (issue.status, issue.send_at) == (SCHEDULED, datetime(2031, 3, 2, 15, 30))
    assert "scheduled" in admin_client.get("/admin/issues").get_data(as_text=True)


def test_a_default_subject_and_preheader_follow_the_edited_text(app, admin_client):
    issue_id = upload_sample(admin_client)
    with app.app_context():
        issue = db.session.get(Issue, issue_id)
        shown = {"subject": issue.subject, "preheader": issue.preheader}

    admin_client.post(f"/admin/issues/{issue_id}", data=editor_data(**shown))

    with app.app_context():
        issue = db.session.get(Issue, issue_id)
        assert (issue.subject, issue.preheader) == ("Why Small Moments Matter", "A first paragraph, with care.")


def test_live_preview_renders_unsaved_edits_without_saving(app, admin_client):
    issue_id = upload_sample(admin_client)

    response = admin_client.post(f"/admin/issues/{issue_id}/preview", data=editor_data(title="A new title <b>x</b>"))

    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "A new title &lt;b&gt;x&lt;/b&gt;" in html and "A first paragraph, with care." in html
    with app.app_context():
        assert db.session.get(Issue, issue_id).title.startswith("Why Small Moments of Disconnection")


def test_saving_edits_re_renders_the_mail(app, admin_client):
    issue_id = upload_sample(admin_client)

    response = admin_client.post(f"/admin/issues/{issue_id}", data=editor_data(subject="A gentle subject"))

    assert response.status_code == 302
    with app.app_context():
        issue = db.session.get(Issue, issue_id)
        assert (issue.title, issue.subject, issue.preheader) == (
            "Why Small Moments Matter", "A gentle subject", "A first paragraph, with care.")
        assert "A second one." in issue.email_html and issue.slug == "why-small-moments-matter"


@pytest.mark.parametrize("path,data", [
    ("", {"title": "", "source": ""}),
    ("/schedule", {"send_at": "2001-01-01T09:00", "action": "schedule"}),
    ("/schedule", {"send_at": "not a time", "action": "schedule"}),
    ("/test", {"to": "not an address\r\nBcc: x@evil.test"}),
])
def test_bad_input_gets_a_message_and_changes_nothing(app, admin_client, path, data):
    issue_id = upload_sample(admin_client)

    response = admin_client.post(f"/admin/issues/{issue_id}{path}", data=data)

    assert response.status_code == 400
    assert b'class="errors"' in response.data
    with app.app_context():
        issue = db.session.get(Issue, issue_id)
        assert issue.status == "draft" and issue.title.startswith("Why Small Moments")
        assert db.session.scalar(select(OutgoingMail.id)) is None


def test_cancel_then_duplicate(app, admin_client):
    issue_id = upload_sample(admin_client)
    admin_client.post(f"/admin/issues/{issue_id}/schedule", data={"send_at": "2031-03-02T08:30", "action": "schedule"})

    assert admin_client.post(f"/admin/issues/{issue_id}/cancel").status_code == 302
    response = admin_client.post(f"/admin/issues/{issue_id}/duplicate")

    assert response.status_code == 302
    with app.app_context():
        statuses = dict(db.session.execute(select(Issue.id, Issue.status)).all())
    assert statuses[issue_id] == "canceled" and sorted(statuses.values()) == ["canceled", "draft"]


def test_practice_profile_edit_shows_in_unsent_issues(app, admin_client):
    issue_id = upload_sample(admin_client)
    form = admin_client.get("/admin/practice").get_data(as_text=True)
    assert "Shoshana Ort, LCSW" in form

    response = admin_client.post("/admin/practice", data={
        "practice_name": "Inner Calm Counseling", "therapist_name": "Shoshana Ort, LCSW", "credentials": "",
        "tagline": "Notes on love", "signature": "Shoshana Ort, LCSW\nCouples therapist",
        "postal_address": "5 Calm Street, Greenwood Village, CO 80111", "website": "innercalmcounseling.com",
        "email": "hello@innercalmcounseling.com", "phone": "720-772-7149"})

    assert response.status_code == 302
    with app.app_context():
        html = db.session.get(Issue, issue_id).email_html
    assert "5 Calm Street" in html and "Couples therapist" in html and "mailto:hello@innercalmcounseling.com" in html


def test_live_preview_follows_typing_at_phone_width(app, admin_client, live_server, auth, page):
    issue_id = upload_sample(admin_client)
    auth.sign_in_browser(page, live_server)
    page.goto(f"{live_server}/admin/issues/{issue_id}")

    page.click("button[data-width='375']")
    page.fill("input[name=title]", "Typed just now")

    frame = page.frame_locator("#preview")
    wait_for(lambda: "Typed just now" in (frame.locator("h1").text_content() or ""), timeout=10)
    assert page.locator("#preview").get_attribute("width") == "375"
    assert frame.locator("html").evaluate("html => html.scrollWidth <= html.clientWidth")  # no sideways scrolling


def test_send_now_reaches_an_active_reader_with_their_own_unsubscribe_link(app, admin_client, smtp, worker):
    with app.app_context():
        db.session.add(Subscriber(email="dana@example.org", name="Dana", status=ACTIVE, token_key="k" * 32))
        db.session.commit()
    issue_id = upload_sample(admin_client)

    assert admin_client.post(f"/admin/issues/{issue_id}/schedule", data={"action": "now"}).status_code == 302

    [received] = smtp.wait_for_messages(1)
    assert received.rcpt_tos == ["dana@example.org"]
    assert received.message["Subject"] == "Why Small Moments of Disconnection Hurt More Than Big Fights"
    assert received.message["List-Unsubscribe"].startswith("<http://newsletter.test/unsubscribe/")
    for part in (received.text, received.html):
        assert "http://newsletter.test/unsubscribe/" in part and "%%" not in part
        assert "📞" in part and "“uh-huh.”" in part
    with app.app_context():
        wait_for(lambda: (db.session.remove() or db.session.get(Issue, issue_id).status) == "sent")


@pytest.mark.parametrize("content,filename,message", [
    ("Titre\nÉté\n".encode("latin-1"), "latin1.txt", b"UTF-8 text. Save it"),
    (b"", "", b"Choose a file or paste the article."),
    (b"\n\n", "empty.txt", b"The article is empty"),
])
def test_a_bad_article_file_gets_a_message_and_creates_nothing(app, admin_client, content, filename, message):
    response = admin_client.post("/admin/issues/new", data={
        "file": (io.BytesIO(content), filename), "source": "", "source_format": ""}, content_type="multipart/form-data")

    assert response.status_code == 400 and message in response.data
    with app.app_context():
        assert db.session.scalar(select(Issue.id)) is None


def test_the_live_preview_works_with_csrf_protection_on(app_factory, auth):
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = auth.on(app).login()
    with app.app_context():
        issue_id = issues.create_from_source(SAMPLE.read_text(encoding="utf-8")).id
        db.session.commit()

    assert client.post(f"/admin/issues/{issue_id}/preview", data=editor_data()).status_code == 400
    # Signing in gives a new token (the one from the sign-in page no longer works): take it from the editor.
    token = csrf_token(client, f"/admin/issues/{issue_id}")
    response = client.post(f"/admin/issues/{issue_id}/preview", data=editor_data(csrf_token=token))
    assert response.status_code == 200 and b"A first paragraph, with care." in response.data
