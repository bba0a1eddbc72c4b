"""Two-step sign-in: set up the authenticator app, confirm with a code, show the recovery codes once."""
from __future__ import annotations

import time

from flask import Response, redirect, render_template, session, url_for
from flask_login import current_user, login_user

from newsletter.accounts import users
from newsletter.admin.blueprint import audit_action, bp
from newsletter.admin.forms import CodeForm
from newsletter.core.extensions import db


@bp.get("/two-factor")
def two_factor():
    """On: how many recovery codes are left. Off: a button to start, then the QR code and the code to confirm."""
    user = current_user._get_current_object()
    if user.has_second_factor:
        return render_template("admin/two_factor.html", user=user, codes_left=users.recovery_codes_left(user))
    return _set_up_page(user, CodeForm(formdata=None))


@bp.post("/two-factor/start")
def two_factor_start():
    """A new secret to scan (one already on its way is replaced)."""
    user = current_user._get_current_object()
    if not user.has_second_factor:
        users.start_second_factor(user)
        db.session.commit()
    return redirect(url_for("admin.two_factor"))


@bp.post("/two-factor")
def two_factor_confirm():
    """The first code from the app turns two-step sign-in on and shows the recovery codes, once."""
    user = current_user._get_current_object()
    if user.has_second_factor or users.pending_secret(user) is None:
        return redirect(url_for("admin.two_factor"))
    form = CodeForm()
    if form.validate():
        codes = users.confirm_second_factor(user, form.code.data)
        if codes is not None:
            audit_action("second_factor_on", user.email)
            db.session.commit()
            # Other browsers are signed out by the change; this one carries on with the new version.
            signed_in_at = session.get("signed_in_at")
            login_user(user)
            session["signed_in_at"], session["seen_at"] = signed_in_at, int(time.time())
            return render_template("admin/two_factor_codes.html", codes=codes)
        form.code.errors.append("That code didn't match. Please type the newest code your app shows.")
    return _set_up_page(user, form), 400


def _set_up_page(user, form: CodeForm) -> str:
    return render_template("admin/two_factor.html", user=user, form=form, secret=users.pending_secret(user))


@bp.get("/two-factor/qr.svg")
def two_factor_qr():
    """The set-up QR code, drawn here so that the secret never leaves the server."""
    user = current_user._get_current_object()
    if user.has_second_factor or users.pending_secret(user) is None:
        return Response("No set-up in progress.", status=404, mimetype="text/plain")
    return Response(users.provisioning_qr_svg(user), mimetype="image/svg+xml")
