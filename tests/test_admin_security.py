"""Admin sign-in worth a therapist's data: second factor, lockout, server-side sessions, the audit log."""
from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from newsletter.core.extensions import db
from newsletter.models import AdminUser, InquiryAccess, OutgoingMail, RecoveryCode, Subscriber, utcnow
from tests.helpers import ADMIN_EMAIL, ADMIN_PASSWORD, audit_actions, csrf_token, make_active, next_code


def from_ip(ip: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": ip}}




# -- sessions

def test_a_cookie_from_before_sign_out_no_longer_opens_the_admin(auth, app, admin):
    thief = app.test_client()
    client = app.test_client()
    assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).status_code == 302
    thief.set_cookie("session", client.get_cookie("session").value)
    assert thief.get("/admin/").status_code == 200

    client.post("/admin/logout")

    assert thief.get("/admin/").status_code == 302


def test_resetting_the_password_signs_out_every_browser(auth, app, admin, client, runner, monkeypatch):
    assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).status_code == 302
    monkeypatch.setenv("ADMIN_PASSWORD", "a brand new passphrase")
    assert runner.invoke(args=["create-admin", admin]).exit_code == 0

    assert client.get("/admin/").status_code == 302
    assert "password_reset" in audit_actions(app)


def test_an_idle_session_ends(auth, app, admin, client):
    assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).status_code == 302
    with client.session_transaction() as session:
        session["seen_at"] -= app.extensions["settings"].admin_idle_minutes * 60 + 1

    response = client.get("/admin/readers")

    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    assert "without activity" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_a_session_ends_after_its_lifetime_even_when_busy(auth, app, admin, client):
    assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).status_code == 302
    with client.session_transaction() as session:
        session["signed_in_at"] -= app.extensions["settings"].admin_session_hours * 3600 + 1
    assert client.get("/admin/").status_code == 302


def test_sign_in_gives_a_new_csrf_token(app_factory, admin):
    app = app_factory(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    token = csrf_token(client, "/admin/login")
    with client.session_transaction() as session:
        before = session["csrf_token"]

    response = client.post("/admin/login", data={"email": admin, "password": ADMIN_PASSWORD, "csrf_token": token})

    assert response.status_code == 302
    client.get("/admin/")
    with client.session_transaction() as session:
        assert session.get("csrf_token") not in (None, before)


# -- lockout

def test_sixty_ips_then_the_right_password_does_not_sign_in(app, admin, client):
    for n in range(60):
        assert client.post("/admin/login", data={"email": admin, "password": f"guess {n}"},
                           **from_ip(f"203.0.113.{n}")).status_code == 400

    response = client.post("/admin/login", data={"email": admin, "password": ADMIN_PASSWORD}, **from_ip("198.51.100.7"))

    assert response.status_code == 400
    assert client.get("/admin/").status_code == 302
    with app.app_context():
        notices = db.session.scalars(select(OutgoingMail).where(OutgoingMail.kind == "admin_lockout")).all()
    assert [notice.recipient for notice in notices] == [app.extensions["settings"].practice_inbox]
    actions = audit_actions(app)
    assert actions.count("lockout") == 1 and "sign_in" not in actions


def test_the_account_opens_again_when_the_lockout_is_over(auth, app, admin, client):
    for n in range(app.extensions["settings"].admin_lockout_attempts):
        client.post("/admin/login", data={"email": admin, "password": f"guess {n}"})
    assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).status_code == 400
    with app.app_context():
        user = db.session.scalar(select(AdminUser))
        user.locked_until = utcnow() - timedelta(seconds=1)
        db.session.commit()

    assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).status_code == 302


def test_failures_at_an_unknown_address_lock_nobody(auth, app, admin, client):
    for n in range(app.extensions["settings"].admin_lockout_attempts + 1):
        client.post("/admin/login", data={"email": "someone@example.com", "password": f"guess {n}"})
    assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).status_code == 302


# -- the second factor

def test_two_step_sign_in_needs_the_code_after_the_password(auth, app, admin, client):
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    secret, codes = auth.turn_on_second_factor(client)
    assert len(codes) == 10 and len(set(codes)) == 10
    with app.app_context():
        assert all(code not in row.code_hash for row in db.session.scalars(select(RecoveryCode)) for code in codes)
    client.post("/admin/logout")

    response = auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    assert response.headers["Location"].startswith("/admin/login/code")
    assert client.get("/admin/").status_code == 302

    assert client.post("/admin/login/code", data={"code": "000000"}).status_code == 400
    assert client.get("/admin/").status_code == 302
    assert client.post("/admin/login/code", data={"code": next_code(secret)}).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_code_from_the_app_signs_in_once(auth, app, admin, client):
    """Someone who watched her type a code cannot sign in with it in the same half minute."""
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    secret, _ = auth.turn_on_second_factor(client)
    client.post("/admin/logout")
    code = next_code(secret)
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    assert client.post("/admin/login/code", data={"code": code}).status_code == 302
    client.post("/admin/logout")

    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    refused = client.post("/admin/login/code", data={"code": code})
    assert refused.status_code == 400 and "Codes change every 30 seconds" in refused.get_data(as_text=True)
    assert client.get("/admin/").status_code == 302


def test_a_recovery_code_works_once(auth, app, admin, client):
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    _, codes = auth.turn_on_second_factor(client)
    client.post("/admin/logout")

    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    assert client.post("/admin/login/code", data={"code": codes[3].upper()}).status_code == 302
    client.post("/admin/logout")
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    assert client.post("/admin/login/code", data={"code": codes[3]}).status_code == 400
    assert "recovery_code_used" in audit_actions(app)


def test_the_code_step_cannot_be_reached_without_the_password(auth, app, admin, client):
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    secret, _ = auth.turn_on_second_factor(client)
    client.post("/admin/logout")

    response = client.post("/admin/login/code", data={"code": next_code(secret)})

    assert response.status_code == 302 and "/admin/login/code" not in response.headers["Location"]
    assert client.get("/admin/").status_code == 302


def test_turning_on_the_second_factor_signs_out_other_browsers(auth, app, admin):
    other, client = app.test_client(), app.test_client()
    auth.sign_in(admin, ADMIN_PASSWORD, client=other)
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)

    auth.turn_on_second_factor(client)

    assert client.get("/admin/").status_code == 200
    assert other.get("/admin/").status_code == 302


def test_production_sends_the_admin_to_set_up_before_anything_else(auth, app_factory, admin):
    app = app_factory(APP_ENV="production", BASE_URL="https://newsletter.test")
    client = app.test_client()
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)

    response = client.get("/admin/readers")

    assert response.status_code == 302 and response.headers["Location"].endswith("/admin/two-factor")
    auth.turn_on_second_factor(client)
    assert client.get("/admin/readers").status_code == 200


def test_create_admin_can_reset_the_second_factor(auth, app, admin, client, runner, monkeypatch):
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    auth.turn_on_second_factor(client)
    monkeypatch.setenv("ADMIN_PASSWORD", ADMIN_PASSWORD)

    result = runner.invoke(args=["create-admin", admin, "--reset-2fa"])

    assert result.exit_code == 0 and "removed" in result.output
    assert client.get("/admin/").status_code == 302
    assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).headers["Location"] == "/admin/"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(RecoveryCode)) == 0


def test_the_qr_code_is_drawn_by_the_app(auth, app, admin, client):
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    client.post("/admin/two-factor/start")

    response = client.get("/admin/two-factor/qr.svg")

    assert response.status_code == 200 and response.mimetype == "image/svg+xml"
    assert b"<svg" in response.data and b"<script" not in response.data
    assert response.headers["Cache-Control"] == "no-store"


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(email=st.one_of(st.just(ADMIN_EMAIL), st.text(max_size=60)), password=st.text(max_size=60),
       code=st.one_of(st.text(max_size=30), st.from_regex(r"\A[0-9]{6}\Z")))
def test_no_sign_in_without_both_factors_and_never_a_server_error(admin_with_factor, email, password, code):
    app, client = admin_with_factor
    first = client.post("/admin/login", data={"email": email, "password": password})
    second = client.post("/admin/login/code", data={"code": code})

    assert first.status_code < 500 and second.status_code < 500
    assert client.get("/admin/").status_code == 302


@pytest.fixture
def admin_with_factor(auth, app, admin):
    client = app.test_client()
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    auth.turn_on_second_factor(client)
    client.post("/admin/logout")
    return app, client


# -- the audit log

def test_the_audit_log_shows_sign_ins_failures_and_actions_newest_first(auth, app, admin, client):
    client.post("/admin/login", data={"email": admin, "password": "not it at all"}, **from_ip("192.0.2.44"))
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    client.get("/admin/readers/export.csv").close()

    page = client.get("/admin/audit").get_data(as_text=True)

    assert "192.0.2.44" in page
    assert page.index("Subscriber list exported") < page.index("Signed in") < page.index("Sign-in refused")
    assert "not it at all" not in page


def test_the_audit_log_pages(auth, app, admin, client):
    from newsletter.accounts import audit

    with app.app_context():
        db.session.add(InquiryAccess(inquiry_id=None, action="viewed", created_at=utcnow() - timedelta(hours=1)))
        for n in range(55):
            audit.record("issue_pause", f"issue #{n}")
        db.session.commit()
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)

    first = client.get("/admin/audit").get_data(as_text=True)
    second = client.get("/admin/audit?page=2").get_data(as_text=True)

    assert "Signed in" in first and "Older" in first
    assert "issue #0<br>" in second and "issue #0<br>" not in first
    assert "Inquiry</strong>: one since deleted, viewed" in second
    assert client.get("/admin/audit?page=99999999999999999999").status_code == 200


def test_erasing_a_reader_is_logged_without_their_address(auth, app, admin, client):
    make_active(app, "forget.me@example.org")
    with app.app_context():
        reader_id = db.session.scalar(select(Subscriber.id))
    auth.sign_in(admin, ADMIN_PASSWORD, client=client)

    client.post(f"/admin/readers/{reader_id}/erase")

    page = client.get("/admin/audit").get_data(as_text=True)
    assert f"Reader erased</strong>: reader #{reader_id}" in page
    assert "forget.me" not in page
