"""The newsletter home page and the health check."""
from __future__ import annotations

from flask import current_app, render_template
from sqlalchemy import text

from newsletter.extensions import db
from newsletter.public.blueprint import bp
from newsletter.public.forms import SubscribeForm


@bp.get("/")
def home():
    return render_template("public/home.html", form=SubscribeForm())


@bp.get("/healthz")
def healthz():
    """JSON: is the database reachable, is the broker reachable."""
    checks = {"database": _check_database(), "broker": _check_broker()}
    healthy = all(value == "ok" for value in checks.values())
    return {"status": "ok" if healthy else "degraded", **checks}, 200 if healthy else 503


def _check_database() -> str:
    try:
        db.session.execute(text("SELECT 1"))
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure is "unreachable" to a health check
        db.session.rollback()
        return f"error: {type(exc).__name__}"


def _check_broker() -> str:
    celery_app = current_app.extensions["celery"]
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
        return "ok"
    except Exception as exc:  # noqa: BLE001
        return f"error: {type(exc).__name__}"
