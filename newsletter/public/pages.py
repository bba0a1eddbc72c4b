"""The newsletter home page and the health check."""
from __future__ import annotations

import time

from flask import current_app, has_app_context, render_template, request, session
from flask_wtf.csrf import generate_csrf
from sqlalchemy import event, select, text
from sqlalchemy.orm import Session

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.inquiries import routing
from newsletter.models import Clinician, Issue, NewsletterList, PracticeProfile
from newsletter.public.blueprint import bp
from newsletter.public.forms import SubscribeForm
from newsletter.publishing import issues

CSRF_SLOT = "\x00csrf\x00"
# Built once: the versions of the issues the home page lists (issues.published's order).
LATEST_VERSIONS = (select(Issue.id, Issue.updated_at).where(Issue.status.in_(issues.PUBLISHED))
                   .order_by(Issue.send_at.desc().nulls_last(), Issue.id.desc()).limit(5))
LISTS_SHOWN = select(NewsletterList.slug, NewsletterList.name, NewsletterList.description).order_by(NewsletterList.id)


@bp.get("/")
def home():
    """The most visited page, rendered again only when what it shows changed: per visitor only the
    form's CSRF token differs, put into the stored page (a page with a flashed message is rendered whole)."""
    if session.get("_flashes"):
        return render_template("public/home.html", form=SubscribeForm())
    key = _home_key()
    page = current_app.extensions.get("home_page", {}).get(key)
    if page is None:
        page = render_template("public/home.html", form=SubscribeForm()).replace(generate_csrf(), CSRF_SLOT)
        current_app.extensions["home_page"] = {key: page}  # one version kept; replaced whole, so threads are safe
    return page.replace(CSRF_SLOT, generate_csrf())


# How long a process trusts its last look at what the home page shows before asking the database again:
# another process's change (the worker marking an issue sent) shows within this; this process's own at
# once (_forget_home_key). Under load GET / then asks the database about once a second, not per visit.
HOME_KEY_FOR = 1.0


def _home_key() -> tuple:
    checked_at, key = current_app.extensions.get("home_key", (-HOME_KEY_FOR, None))
    now = time.monotonic()
    if now - checked_at >= HOME_KEY_FOR:
        key = _home_fingerprint()
        current_app.extensions["home_key"] = (now, key)
    return key


@event.listens_for(Session, "after_flush")
def _note_home_changes(db_session: Session, _flush_context) -> None:
    changed = (*db_session.new, *db_session.dirty, *db_session.deleted)
    if any(isinstance(row, (Issue, PracticeProfile, NewsletterList, Clinician)) for row in changed):
        db_session.info["home_changed"] = True


@event.listens_for(Session, "after_commit")
def _forget_home_key(db_session: Session) -> None:
    if db_session.info.pop("home_changed", False) and has_app_context():
        current_app.extensions.pop("home_key", None)


def _home_fingerprint() -> tuple:
    """What the home page shows, cheaply: the practice's details, the latest issues' versions, the lists and
    whether the team link shows."""
    profile = practice.profile()
    latest = db.session.execute(LATEST_VERSIONS).all()
    details = tuple(getattr(profile, column.key) for column in PracticeProfile.__table__.columns)
    return (request.script_root, details, tuple(latest), tuple(db.session.execute(LISTS_SHOWN).all()),
            routing.is_group())


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
