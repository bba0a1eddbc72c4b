"""Sign-in, sign-out, the admin home and the development outbox."""
from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import login_user, logout_user
from sqlalchemy import func, select

from newsletter import accounts, mail
from newsletter.admin.blueprint import bp
from newsletter.admin.forms import LoginForm
from newsletter.extensions import db, limiter
from newsletter.models import Inquiry, Issue, Subscriber
from newsletter.models.readers import ACTIVE


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


@bp.get("/")
def home():
    counts = {
        "readers": db.session.scalar(select(func.count()).select_from(Subscriber).where(Subscriber.status == ACTIVE)),
        "issues": db.session.scalar(select(func.count()).select_from(Issue)),
        "new_inquiries": db.session.scalar(
            select(func.count()).select_from(Inquiry).where(Inquiry.status == "new", Inquiry.spam.is_(False))
        ),
    }
    return render_template("admin/home.html", counts=counts)


@bp.get("/outbox")
def outbox():
    """Mail written to instance/outbox/ when no SMTP server is configured."""
    messages = [_summary(path) for path in mail.outbox_messages()]
    return render_template("admin/outbox.html", messages=messages, smtp=bool(current_app.config["SMTP_HOST"]))


@bp.get("/outbox/<name>")
def outbox_message(name: str):
    path = Path(current_app.config["OUTBOX_DIR"]) / name
    if "/" in name or not name.endswith(".eml") or not path.is_file():
        abort(404)
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    return render_template(
        "admin/outbox_message.html",
        name=name,
        message=message,
        html=html.get_content() if html else None,
        text=text.get_content() if text else "",
    )


def _summary(path: Path) -> dict:
    with path.open("rb") as handle:
        headers = BytesParser(policy=policy.default).parse(handle, headersonly=True)
    return {"name": path.name, "to": headers["To"], "subject": headers["Subject"], "date": headers["Date"]}
