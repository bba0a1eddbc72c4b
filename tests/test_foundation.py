"""The plumbing end to end: web → database → real worker → real SMTP server; health; config."""
from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from celery import Celery
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError

from newsletter import create_app
from newsletter.core.config import ConfigError
from newsletter.core.extensions import db
from newsletter.models import OutgoingMail, Subscriber
from tests.support import CELERY_WORKER, ROOT, WorkerProcess, wait_for


def test_signup_is_stored_pending_and_the_worker_delivers_the_confirmation(app, client, smtp, worker):
    response = client.post("/subscribe", data={"email": "Dana.Reader@Example.COM", "name": "Dana"})

    assert response.status_code == 200
    assert b"check your inbox" in response.data
    with app.app_context():  # the form stored the signup; the worker applies it
        reader = wait_for(lambda: db.session.remove() or db.session.scalar(select(Subscriber)),
                          message="the worker did not apply the signup")
        assert (reader.email, reader.status) == ("Dana.Reader@example.com", "pending")
    [received] = smtp.wait_for_messages(1)
    assert received.rcpt_tos == ["Dana.Reader@example.com"]
    assert received.message["Subject"] == "Please confirm your subscription to Inner Calm Counseling"
    assert "/confirm/" in received.text and "/confirm/" in received.html
    with app.app_context():
        wait_for(lambda: _outgoing_statuses() == ["sent"], message="the outgoing mail row was not marked sent")


def test_the_spec_command_celery_a_worker_worker_runs_the_same_worker(settings, tmp_path):
    """Deployments start `python -m worker`; SPEC's `celery -A worker worker` must work just the same."""
    process = WorkerProcess(settings, tmp_path / "celery-cli.log", name=f"cli-{uuid.uuid4().hex[:6]}",
                            queues=f"cli-{uuid.uuid4().hex[:6]}", command=CELERY_WORKER).start()
    try:
        with Celery(broker=settings["REDIS_URL"]) as client_app:
            reply = client_app.control.ping(destination=[process.hostname], timeout=5)
        assert reply, "the worker started by `celery -A worker worker` did not answer a ping"
    finally:
        process.stop()


def _outgoing_statuses() -> list[str]:
    db.session.remove()  # a fresh transaction sees the worker's commits
    return list(db.session.scalars(select(OutgoingMail.status)))


def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json == {"status": "ok", "database": "ok", "broker": "ok"}


def test_healthz_says_when_the_broker_is_unreachable(app_factory):
    app = app_factory(REDIS_URL="redis://127.0.0.1:1/0")

    response = app.test_client().get("/healthz")

    assert response.status_code == 503
    assert response.json["database"] == "ok"
    assert response.json["broker"].startswith("error")


def test_production_refuses_to_start_without_a_secret_key(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"APP_ENV": "production", "SECRET_KEY": "", "BASE_URL": "https://example.org"})


def test_development_generates_a_secret_key_once_into_instance(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = create_app({"SECRET_KEY": ""}).config["SECRET_KEY"]
    second = create_app({"SECRET_KEY": ""}).config["SECRET_KEY"]

    assert first == second and len(first) > 40
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600




def test_migrations_build_the_schema_the_models_describe(empty_database_url, tmp_path):
    """`flask db upgrade` on an empty database, then Alembic finds nothing left to migrate."""
    env = {"INSTANCE_PATH": str(tmp_path), "DATABASE_URL": empty_database_url, "PATH": "/usr/bin:/bin"}

    def flask_db(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "db", *args], cwd=ROOT, env=env,
                              capture_output=True, text=True)

    upgrade = flask_db("upgrade")
    assert upgrade.returncode == 0, upgrade.stderr
    check = flask_db("check")
    assert check.returncode == 0, check.stdout + check.stderr
    engine = create_engine(empty_database_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.connect() as conn:
        conn.execute(text("INSERT INTO subscribers (email, name, status, source, token_key, confirmations_sent_today,"
                          " created_at) VALUES ('Dana@example.com', '', 'pending', 'site', 'k', 0, '2026-01-01')"))
        with pytest.raises(IntegrityError):
            conn.execute(text("INSERT INTO subscribers (email, name, status, source, token_key,"
                              " confirmations_sent_today, created_at)"
                              " VALUES ('dana@EXAMPLE.com', '', 'pending', 'site', 'k', 0, '2026-01-01')"))
    engine.dispose()
