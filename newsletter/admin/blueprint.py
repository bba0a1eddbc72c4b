import time

from flask import Blueprint, flash, redirect, request, session, url_for
from flask_login import current_user, logout_user

from newsletter.accounts import audit
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.core.web_extensions import login_manager

bp = Blueprint("admin", __name__)

# Open without a session: the two sign-in steps.
PUBLIC_ENDPOINTS = {"admin.login", "admin.login_code"}
# Reachable before the second factor is set up, when production requires one.
SETUP_ENDPOINTS = {"admin.two_factor", "admin.two_factor_qr", "admin.logout"}
# Polled by a page left open: not the admin's activity, so it does not keep the session alive.
BACKGROUND_ENDPOINTS = {"admin.issue_sending_progress"}


@bp.before_request
def require_sign_in():
    """Everything under /admin needs a current session, except the sign-in steps themselves."""
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if _session_expired():
        logout_user()
        session.clear()
        flash("You were signed out after a while without activity. Please sign in again.")
        return redirect(url_for("admin.login", next=request.full_path if request.method == "GET" else None))
    if request.endpoint not in BACKGROUND_ENDPOINTS:
        session["seen_at"] = int(time.time())
    if (settings().app_env == "production" and not current_user.has_second_factor
            and request.endpoint not in SETUP_ENDPOINTS):
        flash("Please set up two-step sign-in before anything else: it keeps your clients' words safe.")
        return redirect(url_for("admin.two_factor"))
    return None


def _session_expired() -> bool:
    now = time.time()
    idle = settings().admin_idle_minutes * 60
    lifetime = settings().admin_session_hours * 3600
    return now - session.get("seen_at", 0) > idle or now - session.get("signed_in_at", 0) > lifetime


def audit_action(action: str, detail: str = "", *, commit: bool = False) -> None:
    """Record what the signed-in admin did, from where; saved with the view's commit, or now with commit=True."""
    admin_id = current_user.id if current_user.is_authenticated else None
    audit.record(action, detail, admin_id, request.remote_addr)
    if commit:
        db.session.commit()
