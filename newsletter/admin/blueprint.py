import time

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, logout_user

from newsletter.accounts import audit, people, roles
from newsletter.core.config import settings
from newsletter.core.web_extensions import login_manager
from newsletter.deliverability import bounces
from newsletter.sending import control, warmup

bp = Blueprint("admin", __name__)

# Open without a session: the two sign-in steps, and the invitation link that gives a new person their password.
PUBLIC_ENDPOINTS = {"admin.login", "admin.login_submit", "admin.login_code", "admin.login_code_submit",
                    "admin.invitation", "admin.invitation_accept"}
# Reachable before the second factor is set up, when production requires one.
SETUP_ENDPOINTS = {"admin.two_factor", "admin.two_factor_start", "admin.two_factor_confirm", "admin.two_factor_qr",
                   "admin.logout"}
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
    return _refuse_what_the_role_does_not_reach()


def _refuse_what_the_role_does_not_reach():
    """The one place roles are enforced (accounts/roles.py): a page outside the person's areas is a 403; an
    inquiry or profile outside their scope a 404, so its existence does not leak."""
    if not roles.reaches(current_user, request.endpoint):
        return render_template("admin/forbidden.html"), 403
    for argument, sees in roles.ROW_SCOPES.items():
        row_id = (request.view_args or {}).get(argument)
        if row_id is not None and not sees(current_user, row_id):
            abort(404)
    return None


def _session_expired() -> bool:
    now = time.time()
    idle = settings().admin_idle_minutes * 60
    lifetime = settings().admin_session_hours * 3600
    return now - session.get("seen_at", 0) > idle or now - session.get("signed_in_at", 0) > lifetime


def audit_action(action: str, detail: str = "") -> None:
    """Record what the signed-in admin did, from where; saved with the view's commit."""
    admin_id = current_user.id if current_user.is_authenticated else None
    audit.record(action, detail, admin_id, request.remote_addr)


# -- what the admin's templates read: their globals, registered with the blueprint they serve

@bp.app_template_global()
def can(endpoint: str) -> bool:
    """Whether the signed-in person's role reaches this admin page (navigation shows only those)."""
    return current_user.is_authenticated and roles.reaches(current_user, endpoint)


@bp.app_template_global()
def own_profile_id() -> int | None:
    """The signed-in clinician's own profile, for their "My profile" link (the owner edits all from Team)."""
    return roles.own_profile_id(current_user) if current_user.is_authenticated else None


@bp.app_template_global()
def is_team() -> bool:
    """More than one person in the practice: only then do roles and people show."""
    return people.count() > 1


@bp.app_template_global()
def issue_bounces(issue_id: int) -> bounces.Health:
    """An issue's bounces and complaints (templates/admin/_issue_bounces.html)."""
    return bounces.issue_health(issue_id)


@bp.app_template_global()
def deliverability() -> bounces.Health:
    """Complaints and bounces across recent issues (templates/admin/_deliverability_warning.html)."""
    return bounces.health()


@bp.app_template_global()
def sending_progress(issue_id: int) -> control.Progress | None:
    """The progress of an issue, for templates/admin/_issue_progress.html's first paint."""
    return control.progress(issue_id)


@bp.app_template_global()
def sending_warmup() -> warmup.WarmupDay | None:
    """Where the practice is on its warm-up plan today (None without a plan), for the progress card."""
    return warmup.today()
