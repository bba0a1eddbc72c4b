"""Sign-in and sign-out (the dashboard is in dashboard.py, the outbox folder's viewer in outbox.py)."""
from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from newsletter.accounts import audit, users
from newsletter.admin.blueprint import audit_action, bp
from newsletter.admin.forms import CodeForm, LoginForm
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.core.web_extensions import limiter
from newsletter.models import AdminUser
from newsletter.web import DATABASE_UNAVAILABLE, rollback_quietly, send_after_response


@bp.get("/login")
def login():
    return render_template("admin/login.html", form=LoginForm(formdata=None))


@bp.post("/login")
@limiter.limit("10 per minute; 50 per hour")
def login_submit():
    """First step: email and password. With a second factor set up, the code comes next."""
    form = LoginForm()
    if form.validate():
        try:
            result = users.authenticate(form.email.data, form.password.data, _lockout())
            if result.ok and result.user.has_second_factor:
                session[PENDING] = {"id": result.user.id, "version": result.user.session_version,
                                    "at": int(time.time())}
                db.session.commit()
                return redirect(url_for("admin.login_code", next=_safe_next(request.args.get("next"))))
            if result.ok:
                return finish_sign_in(result.user, "sign_in")
            _refused(result)
        except DATABASE_UNAVAILABLE:
            rollback_quietly()
            return render_template("admin/login.html", form=form, unreachable=True), 503
        form.password.errors.append(REFUSED)
    return render_template("admin/login.html", form=form), 400


@bp.get("/login/code")
def login_code():
    if _pending_user() is None:
        return _sign_in_first()
    return render_template("admin/login_code.html", form=CodeForm(formdata=None))


@bp.post("/login/code")
@limiter.limit("10 per minute; 50 per hour")
def login_code_submit():
    """Second step: a code from the authenticator app, or a recovery code."""
    user = _pending_user()
    if user is None:
        return _sign_in_first()
    form = CodeForm()
    if form.validate():
        result = users.check_second_factor(user, form.code.data, _lockout())
        if result.ok:
            return finish_sign_in(user, "recovery_code_used" if result.recovery_code else "sign_in")
        _refused(result)
        if result.locked:
            session.pop(PENDING, None)
        form.code.errors.append("That code didn't work. Codes change every 30 seconds: please try the newest one.")
    return render_template("admin/login_code.html", form=form), 400


def _sign_in_first():
    session.pop(PENDING, None)
    flash("Please sign in with your email and password first.")
    return redirect(url_for("admin.login"))


REFUSED = "That email and password don't match an account. After several failed tries, sign-in pauses for a while."
PENDING = "password_checked"
PENDING_SECONDS = 300


def _lockout() -> users.Lockout:
    return users.Lockout(settings().admin_lockout_attempts, settings().admin_lockout_minutes)


def _pending_user():
    """The admin whose password was right a moment ago in this browser, if still valid."""
    pending = session.get(PENDING)
    if not isinstance(pending, dict) or time.time() - pending.get("at", 0) > PENDING_SECONDS:
        return None
    if not isinstance(pending.get("id"), int):
        return None
    user = db.session.get(AdminUser, pending.get("id"))
    if user is None or user.session_version != pending.get("version") or users.is_locked(user):
        return None
    return user


def _refused(result: users.SignIn) -> None:
    """Log a refused attempt (the account's address, never what was typed) and tell the practice of a lockout."""
    account = result.account
    who = account.email if account else "an address that has no account"
    audit.record("sign_in_refused_locked" if result.locked and not result.just_locked else "sign_in_failed",
                 who, account.id if account else None, request.remote_addr)
    mail_ids = []
    if result.just_locked:
        audit.record("lockout", f"{who}, for {_lockout().minutes} minutes", account.id, request.remote_addr)
        audit_url = settings().base_url + url_for("admin.audit_log")
        mail_ids.append(users.queue_lockout_notice(account, settings().practice_inbox,
                                                      _lockout().minutes, audit_url))
    db.session.commit()
    send_after_response(mail_ids)


def finish_sign_in(user: AdminUser, action: str, target: str | None = None):
    """Both factors passed (or a new person set their password from an invitation): a fresh session (new CSRF
    token) bound to the account's session version."""
    users.signed_in(user)
    audit.record(action, user.email, user.id, request.remote_addr)
    db.session.commit()
    target = target or _safe_next(request.args.get("next"))
    session.clear()
    login_user(user)
    session["signed_in_at"] = session["seen_at"] = int(time.time())
    if not user.has_second_factor and settings().app_env != "production":
        flash("Tip: turn on two-step sign-in (in the menu) so that a password alone can't open your clients' data.")
    return redirect(target or url_for("admin.home"))


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never redirect a signed-in admin elsewhere, never a bad header."""
    if not target or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in target):
        return None
    parts = urlsplit(target.replace("\\", "/"))
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return None
    return target


@bp.post("/logout")
def logout():
    """Sign out here and everywhere: every cookie issued so far stops working."""
    audit_action("sign_out")
    users.end_sessions(current_user)
    db.session.commit()
    logout_user()
    session.clear()
    flash("You are signed out.")
    return redirect(url_for("admin.login"))
