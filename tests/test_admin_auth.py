"""The admin area: create-admin, sign-in, sign-out, everything else behind sign-in."""
from __future__ import annotations

import pytest
from argon2 import extract_parameters, profiles
from sqlalchemy import select

from newsletter.core.extensions import db
from newsletter.models import AdminUser
from tests.helpers import ADMIN_PASSWORD


def test_create_admin_stores_an_argon2_hash_not_the_password(app, runner, monkeypatch, production_password_hashes):
    monkeypatch.setenv("ADMIN_PASSWORD", ADMIN_PASSWORD)
    assert runner.invoke(args=["create-admin", "Therapist@Example.com"]).exit_code == 0
    with app.app_context():
        user = db.session.scalar(select(AdminUser))
    assert user.email == "therapist@example.com"
    assert user.password_hash.startswith("$argon2id$")
    assert ADMIN_PASSWORD not in user.password_hash
    # At least RFC 9106's cost for hosts short of memory (the other tests hash at argon2's cheapest).
    stored, recommended = extract_parameters(user.password_hash), profiles.RFC_9106_LOW_MEMORY
    assert stored.memory_cost >= recommended.memory_cost and stored.time_cost >= recommended.time_cost


def test_create_admin_again_resets_the_password(auth, app, runner, admin, client, monkeypatch,
                                                production_password_hashes):
    monkeypatch.setenv("ADMIN_PASSWORD", "a brand new passphrase")
    assert runner.invoke(args=["create-admin", admin]).exit_code == 0

    assert auth.sign_in(admin, ADMIN_PASSWORD, client=client).status_code == 400
    assert auth.sign_in(admin, "a brand new passphrase", client=client).status_code == 302
    with app.app_context():
        assert db.session.query(AdminUser).count() == 1


def test_create_admin_refuses_a_short_password(runner, monkeypatch):
    monkeypatch.setenv("ADMIN_PASSWORD", "short")
    result = runner.invoke(args=["create-admin", "a@example.com"])
    assert result.exit_code != 0
    assert "at least 10 characters" in result.output


def test_admin_pages_need_sign_in(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert "/admin/login" in response.headers["Location"]


def test_sign_in_then_sign_out(auth, client, admin):
    response = auth.sign_in(admin, ADMIN_PASSWORD, client=client)
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200

    client.post("/admin/logout")
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("email,password", [
    ("therapist@example.com", "wrong password!"),
    ("nobody@example.com", ADMIN_PASSWORD),
    ("therapist@example.com\r\nBcc: x@evil.test", ADMIN_PASSWORD),
    ("x" * 10_000, "y" * 10_000),
    ("<script>alert(1)</script>", "' OR 1=1 --"),
])
def test_bad_sign_in_gets_a_clear_message_and_no_session(auth, client, admin, email, password):
    response = auth.sign_in(email, password, client=client)
    assert response.status_code == 400
    assert b"<script>alert(1)</script>" not in response.data
    assert client.get("/admin/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.test/x", "/%09/evil.test", "/%0A/evil.test", "/\\evil.test",
                                    "https://evil.test/", "javascript:alert(1)", "%2F%2Fevil.test"])
def test_sign_in_never_redirects_to_another_site(client, admin, target):
    response = client.post(f"/admin/login?next={target}", data={"email": admin, "password": ADMIN_PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"


def test_sign_in_returns_to_the_page_asked_for(client, admin):
    response = client.post("/admin/login?next=/admin/outbox", data={"email": admin, "password": ADMIN_PASSWORD})
    assert response.headers["Location"] == "/admin/outbox"


def test_sign_in_form_requires_csrf_token(app_factory, runner, admin):
    app = app_factory(WTF_CSRF_ENABLED=True)
    response = app.test_client().post("/admin/login", data={"email": admin, "password": ADMIN_PASSWORD})
    assert response.status_code == 400
