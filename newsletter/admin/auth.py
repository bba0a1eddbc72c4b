"""Sign-in and sign-out (the dashboard is in dashboard.py, the outbox in outbox.py)."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user

from newsletter import accounts
from newsletter.admin.blueprint import bp
from newsletter.admin.forms import LoginForm
from newsletter.extensions import db, limiter


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit("10 per minute; 50 per hour", methods=["POST"])
def login():
    form = LoginForm()
    if form.validate_on_submit():
        user = accounts.authenticate(form.email.data, form.password.data)
        if user is not None:
            db.session.commit()
            login_user(user)
            return redirect(_safe_next(request.args.get("next")) or url_for("admin.home"))
        form.password.errors.append("That email and password don't match an account.")
    status = 400 if request.method == "POST" else 200
    return render_template("admin/login.html", form=form), status


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
    logout_user()
    flash("You are signed out.")
    return redirect(url_for("admin.login"))
