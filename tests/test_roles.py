"""People and roles in a group practice: every admin page allowed or refused as accounts/roles.py says, a
clinician sees only the inquiries assigned to them, the owner invites by mail with a one-time link."""
from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from newsletter.accounts import roles
from newsletter.core.extensions import db
from newsletter.models import AdminUser, Clinician, Inquiry
from tests.helpers import (
    ADMIN_EMAIL,
    EMAILS,
    assert_answered,
    audit_actions,
    cli,
    examples,
    hostile_text,
    queued,
    submit,
    text_of,
)
from tests.routes import make_rows, url_for_rule

CLINICIAN = "clinician@example.org"
OTHER = "other.clinician@example.org"
ROLE_OF = {"owner": ADMIN_EMAIL, "coordinator": "coordinator@example.org", "clinician": CLINICIAN,
           "editor": "editor@example.org"}
# Pages that need a token or no session, not a role.
OPEN = {"admin.login", "admin.login_submit", "admin.login_code", "admin.login_code_submit", "admin.invitation",
        "admin.invitation_accept"}
INQUIRY_PAGES = {"admin.inquiries", "admin.inquiry_detail", "admin.inquiry_sources", "admin.waitlist"}
OWNER_ONLY = {"admin.audit_log", "admin.readers_export", "admin.reader_export", "admin.readers", "admin.people"}


def _ids(app) -> dict[str, int]:
    """Everyone's id by address. Requests are made outside the test's app context: inside it, every client's
    request would share one `g`, and with it Flask-Login's current user."""
    with app.app_context():
        return dict(db.session.execute(select(AdminUser.email, AdminUser.id)).all())


def _admin_rules(app):
    return sorted((rule for rule in app.url_map.iter_rules()
                   if rule.endpoint.startswith("admin.") and rule.endpoint not in OPEN),
                  key=lambda rule: (rule.endpoint, sorted(rule.methods)))


def _request(client, rule, url):
    method = "get" if "GET" in rule.methods else "post"
    return getattr(client, method)(url, data={} if method == "post" else None)


@pytest.mark.parametrize("role", ["owner", "coordinator", "clinician", "editor"])
def test_every_admin_page_is_allowed_or_refused_as_the_table_says(app, auth, client, role):
    rows = make_rows(app)
    auth.login(client, role=role, email=ROLE_OF[role])
    with app.app_context():
        # The route rows' inquiry is this person's, so a clinician reaches its pages (another's: the test below).
        person = db.session.get(AdminUser, _ids(app)[ROLE_OF[role]])
        db.session.get(Inquiry, rows.values["inquiry_id"]).assignee_id = person.id
        db.session.commit()
        allowed = {rule.endpoint: roles.reaches(person, rule.endpoint) for rule in _admin_rules(app)}
    checked = 0
    for rule in _admin_rules(app):
        if rule.endpoint == "admin.logout":
            continue
        response = _request(client, rule, url_for_rule(rule, rows))
        if allowed[rule.endpoint]:
            assert response.status_code != 403, f"{role} refused {rule.rule} ({rule.endpoint})"
        else:
            assert response.status_code == 403, f"{role} reached {rule.rule} ({rule.endpoint})"
            assert "Not part of your role" in response.get_data(as_text=True)
        assert response.status_code < 500, rule.rule
        assert client.get("/admin/two-factor").status_code == 200, f"{rule.rule} signed {role} out"
        checked += 1
    assert checked > 50
    assert sum(allowed.values()) < len(allowed) or role == "owner"


@pytest.mark.parametrize("role, refused", [
    ("editor", INQUIRY_PAGES | OWNER_ONLY),
    ("clinician", OWNER_ONLY | {"admin.issues_list", "admin.waitlist", "admin.inquiry_sources"}),
    ("coordinator", OWNER_ONLY | {"admin.issues_list", "admin.practice_profile", "admin.issue_schedule"}),
])
def test_what_the_issue_names_is_refused(app, auth, client, role, refused):
    """The promises of issue #22 in words, so a change of the table that breaks one fails here too."""
    auth.login(client, role=role, email=ROLE_OF[role])
    assert not [endpoint for endpoint in refused if roles.reaches(AdminUser(role=role), endpoint)]
    assert client.get("/admin/audit").status_code == 403
    assert client.get("/admin/readers/export.csv").status_code == 403


def test_a_page_missing_from_the_table_is_the_owners_alone(app):
    with app.app_context():
        for role in ("coordinator", "clinician", "editor"):
            assert not roles.reaches(AdminUser(role=role, may_write_newsletter=True), "admin.some_future_page")
        assert roles.reaches(AdminUser(role="owner"), "admin.some_future_page")


def test_every_endpoint_in_the_table_exists(app):
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert set(roles.AREA_OF) <= endpoints


def _assigned_inquiries(app, auth):
    """Two clinicians with one inquiry each; the ids (theirs, the other's)."""
    with app.app_context():
        auth.create(CLINICIAN, role="clinician")
        auth.create(OTHER, role="clinician")
        mine = submit(name="Mine Person", email="mine@example.com").inquiry_id
        theirs = submit(name="Theirs Person", email="theirs@example.com").inquiry_id
        ids = dict(db.session.execute(select(AdminUser.email, AdminUser.id)).all())
        db.session.get(Inquiry, mine).assignee_id = ids[CLINICIAN]
        db.session.get(Inquiry, theirs).assignee_id = ids[OTHER]
        db.session.commit()
        return mine, theirs


def test_a_clinician_never_sees_another_clinicians_inquiry(app, auth, client):
    mine, theirs = _assigned_inquiries(app, auth)
    assert auth.sign_in(CLINICIAN).status_code == 302
    listing = client.get("/admin/inquiries").get_data(as_text=True)
    assert "Mine Person" in listing and "Theirs Person" not in listing
    assert client.get(f"/admin/inquiries/{mine}").status_code == 200
    assert client.get(f"/admin/inquiries/{theirs}").status_code == 404
    for action in ("status", "notes", "reply", "call", "spam", "consultation/cancel"):
        response = client.post(f"/admin/inquiries/{theirs}/{action}",
                               data={"body": "x", "action": "close", "confirmed": "yes"})
        assert response.status_code == 404, action
    # Nothing leaks: the same answer as for an inquiry that does not exist.
    assert client.get("/admin/inquiries/999999").status_code == 404
    assert "Theirs Person" not in client.get("/admin/inquiries?folder=spam").get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Inquiry, theirs).status == "new"  # and nothing changed


def test_a_clinician_edits_their_own_profile_and_no_one_elses(app, auth, client):
    for email in (CLINICIAN, OTHER):
        auth.create(email, role="clinician")
    ids = {email: admin_id for email, admin_id in _ids(app).items() if email in (CLINICIAN, OTHER)}
    with app.app_context():
        profiles = {email: Clinician(admin_id=admin_id, name=email.split("@")[0],
                                     slug=email.split("@")[0].replace(".", "-")) for email, admin_id in ids.items()}
        db.session.add_all(profiles.values())
        db.session.commit()
        mine, theirs = profiles[CLINICIAN].id, profiles[OTHER].id
    assert auth.sign_in(CLINICIAN).status_code == 302
    assert f'href="/admin/team/{mine}">My profile</a>' in client.get("/admin/inquiries").get_data(as_text=True)
    assert client.get(f"/admin/team/{mine}").status_code == 200
    saved = client.post(f"/admin/team/{mine}", data={"name": "Maya López", "slug": "clinician", "languages": "Spanish"})
    assert saved.status_code == 302
    assert client.get(f"/admin/team/{theirs}").status_code == 404
    assert client.post(f"/admin/team/{theirs}", data={"name": "Taken over", "slug": "taken"}).status_code == 404
    assert client.get("/admin/team").status_code == 403  # the team list and routing are the owner's
    with app.app_context():
        assert (db.session.get(Clinician, mine).languages, db.session.get(Clinician, theirs).name) == \
            ("Spanish", "other.clinician")


def test_an_editor_sees_no_inquiry_and_no_address_list(app, auth, client):
    mine, _ = _assigned_inquiries(app, auth)
    auth.login(client, role="editor", email=ROLE_OF["editor"])
    home = client.get("/admin/", follow_redirects=True)
    page = home.get_data(as_text=True)
    assert home.request.path == "/admin/issues"
    assert "Inquiries" not in page and "Readers" not in page and "Activity" not in page
    for path in ("/admin/inquiries", f"/admin/inquiries/{mine}", "/admin/readers/export.csv", "/admin/audit",
                 "/admin/waitlist"):
        assert client.get(path).status_code == 403, path


def test_a_clinician_writes_the_newsletter_only_when_the_owner_allowed_it(app, auth, client):
    auth.login(client, role="clinician", email=CLINICIAN)
    assert client.get("/admin/issues").status_code == 403
    owner = auth.login(app.test_client())
    response = owner.post(f"/admin/people/{_ids(app)[CLINICIAN]}",
                          data={"role": "clinician", "may_write_newsletter": "y"}, follow_redirects=True)
    assert "now clinician, writes the newsletter" in response.get_data(as_text=True)
    assert client.get("/admin/issues").status_code == 200
    assert client.get("/admin/issues/1/sending/progress").status_code == 403  # writing, not sending


def test_a_solo_practice_shows_nothing_about_teams(app, admin_client):
    page = admin_client.get("/admin/").get_data(as_text=True)
    assert 'href="/admin/people"' not in page
    assert not [word for word in ("Owner", "Clinician", "coordinator", "Your role") if word in page]
    practice = admin_client.get("/admin/practice").get_data(as_text=True)
    assert 'href="/admin/people"' in practice  # the quiet way in


# -- invitations, end to end through the pages and the real SMTP server

def _invite(owner, email: str, role: str):
    return owner.post("/admin/people/invite", data={"email": email, "role": role, "confirmed": "yes"},
                      follow_redirects=True)


def test_an_invitation_arrives_works_once_and_the_log_names_who(app, auth, client, smtp, worker):
    owner = auth.login(app.test_client())
    asked = owner.post("/admin/people/invite", data={"email": "new.one@example.org", "role": "coordinator"})
    assert "Invite new.one@example.org as intake coordinator?" in asked.get_data(as_text=True)
    assert len(_ids(app)) == 1  # asked first: nothing yet
    assert "Invitation sent to new.one@example.org" in _invite(owner, "new.one@example.org",
                                                               "coordinator").get_data(as_text=True)

    smtp.wait_for_messages(1)
    [received] = smtp.to("new.one@example.org")
    link = re.search(r"http://newsletter\.test(/admin/invitation/\S+)", text_of(received.message)).group(1)
    assert client.get(link).status_code == 200
    assert client.get(link).headers["Cache-Control"].startswith("no-store")
    short = client.post(link, data={"password": "short"})
    assert short.status_code == 400 and "at least 10 characters" in short.get_data(as_text=True)
    accepted = client.post(link, data={"password": "a long new password"})
    assert accepted.status_code == 302 and accepted.headers["Location"].endswith("/admin/two-factor")
    assert client.get("/admin/inquiries").status_code == 200  # signed in, as a coordinator
    assert client.get("/admin/readers").status_code == 403
    assert auth.turn_on_second_factor(client)[1]  # the existing flow

    assert app.test_client().get(link).status_code == 410
    assert app.test_client().post(link, data={"password": "another long password"}).status_code == 410
    assert app.test_client().get(link[:-3] + "xyz").status_code == 404
    assert auth.sign_in("new.one@example.org", "a long new password", client=app.test_client()).status_code == 302
    log = owner.get("/admin/audit").get_data(as_text=True)
    assert "Person invited" in log and "new.one@example.org as coordinator" in log
    assert "Invitation accepted" in log
    assert {"person_invited", "invitation_accepted", "second_factor_on"} <= set(audit_actions(app))


def test_the_owner_changes_a_role_and_removes_a_person_but_never_the_last_owner(app, auth, client):
    owner = auth.login(app.test_client())
    auth.login(client, role="clinician", email=CLINICIAN)
    ids = _ids(app)
    page = owner.get("/admin/people").get_data(as_text=True)
    assert CLINICIAN in page and "People" in owner.get("/admin/").get_data(as_text=True)

    refused = owner.post(f"/admin/people/{ids[ADMIN_EMAIL]}", data={"role": "editor"}, follow_redirects=True)
    assert "at least one owner" in refused.get_data(as_text=True)
    refused = owner.post(f"/admin/people/{ids[ADMIN_EMAIL]}/remove", follow_redirects=True)
    assert "at least one owner" in refused.get_data(as_text=True)
    with app.app_context():
        assert db.session.get(AdminUser, ids[ADMIN_EMAIL]).role == "owner"

    owner.post(f"/admin/people/{ids[CLINICIAN]}", data={"role": "editor"})
    assert client.get("/admin/inquiries").status_code == 302  # a new role signs their browsers out
    assert auth.sign_in(CLINICIAN).status_code == 302
    assert client.get("/admin/inquiries").status_code == 403

    removed = owner.post(f"/admin/people/{ids[CLINICIAN]}/remove", follow_redirects=True)
    assert f"{CLINICIAN} was removed" in removed.get_data(as_text=True)
    assert client.get("/admin/issues").status_code == 302  # signed out
    assert auth.sign_in(CLINICIAN).status_code == 400
    assert CLINICIAN not in owner.get("/admin/people").get_data(as_text=True).split("Invite someone")[0]
    log = owner.get("/admin/audit").get_data(as_text=True)
    assert "Person removed from the practice" in log and f"{CLINICIAN} now editor" in log


def test_invite_form_takes_hostile_input_without_a_server_error(app, auth):
    owner = auth.login(app.test_client())

    @examples(30)
    @given(email=st.one_of(EMAILS, hostile_text(80)),
           role=st.one_of(st.sampled_from(["owner", "coordinator", "clinician", "editor"]), hostile_text(20)),
           confirmed=st.sampled_from(["yes", "", "no"]))
    def invite(email, role, confirmed):
        before = len(_ids(app))
        response = owner.post("/admin/people/invite", data={"email": email, "role": role, "confirmed": confirmed})
        assert_answered(response)
        if response.status_code != 302:
            assert len(_ids(app)) == before  # refused or asked first: nothing changed
        if role not in roles.ROLE_LABELS:
            assert response.status_code == 400 and "choose one of the roles" in response.get_data(as_text=True)
        assert owner.get("/admin/people").status_code == 200  # still signed in as the owner

    invite()


def test_create_admin_takes_a_role(app, runner, monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "a long enough password")
    assert "(editor) can now sign in" in cli(runner, "create-admin", "ed@example.org", "--role", "editor")
    assert "(owner) can now sign in" in cli(runner, "create-admin", "boss@example.org")
    assert "(editor)" in cli(runner, "create-admin", "ed@example.org")  # a reset keeps the role
    bad = runner.invoke(args=["create-admin", "x@example.org", "--role", "boss"])
    assert bad.exit_code != 0 and "'boss' is not one of" in bad.output
    with app.app_context():
        assert db.session.scalar(select(AdminUser.role).where(AdminUser.email == "ed@example.org")) == "editor"
        assert db.session.scalar(select(AdminUser).where(AdminUser.email == "x@example.org")) is None


PHONE = {"width": 375, "height": 740}


def _fits(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_a_colleague_is_invited_and_joins_on_a_phone(app, browser, live_server, admin_page):
    page = admin_page
    page.set_viewport_size(PHONE)
    page.goto(f"{live_server}/admin/practice")
    page.get_by_role("link", name="People").click()  # the quiet way in for a solo practice
    page.get_by_label("Their email").fill("sam.lee@example.org")
    page.get_by_label("Their role").select_option("clinician")
    assert _fits(page)
    page.get_by_role("button", name="Send the invitation").click()
    page.get_by_text("Invite sam.lee@example.org as clinician?").wait_for()  # asked first
    page.get_by_role("button", name="Yes, send the invitation").click()
    page.get_by_text("Invitation sent to sam.lee@example.org").wait_for()
    [invitation] = queued("admin_invitation", app=app)
    link = re.search(r"http://newsletter\.test(/admin/invitation/\S+)", text_of(invitation)).group(1)

    phone = browser.new_context(viewport=PHONE).new_page()
    phone.goto(f"{live_server}{link}")
    assert phone.get_by_text("You were invited as clinician").is_visible()
    assert _fits(phone)
    phone.get_by_label("Choose a password").fill("a long new password")
    phone.get_by_role("button", name="Set my password").click()
    phone.wait_for_url(f"{live_server}/admin/two-factor")
    assert phone.get_by_text("set up two-step sign-in now").is_visible()
    assert _fits(phone)
    assert phone.get_by_role("link", name="Inquiries").is_visible()
    assert phone.get_by_role("link", name="Readers").count() == 0  # only what a clinician reaches
    phone.goto(f"{live_server}{link}")
    assert phone.get_by_text("This invitation link has already done its job").is_visible()
    phone.context.close()


def test_a_new_invitation_replaces_the_old_link_and_a_role_change_keeps_it(app, auth):
    owner = auth.login(app.test_client())
    _invite(owner, "twice@example.org", "clinician")
    _invite(owner, "twice@example.org", "clinician")
    first, second = [re.search(r"(/admin/invitation/\S+)", text_of(mail)).group(1)
                     for mail in queued("admin_invitation", app=app)]
    assert owner.get(first).status_code == 410  # (signed in or not, the link answers alike)
    owner.post(f"/admin/people/{_ids(app)['twice@example.org']}", data={"role": "editor"})
    visitor = app.test_client()
    assert "as <strong>newsletter editor</strong>" in visitor.get(second).get_data(as_text=True)
    assert visitor.post(second, data={"password": "a long new password"}).status_code == 302
    refused = _invite(owner, "twice@example.org", "editor")
    assert refused.status_code == 400 and "twice@example.org is already in the practice" in refused.get_data(as_text=True)
