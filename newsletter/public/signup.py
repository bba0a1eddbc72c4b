"""Signup, double opt-in confirmation and unsubscribe."""
from __future__ import annotations

from flask import render_template, request

from newsletter import subscriptions, tokens
from newsletter.extensions import csrf, db
from newsletter.public.blueprint import bp
from newsletter.public.forms import SubscribeForm
from newsletter.web import origin
from worker.tasks import enqueue_mail


@bp.route("/subscribe", methods=["GET", "POST"])
def subscribe():
    form = SubscribeForm()
    if not form.validate_on_submit():
        return render_template("public/subscribe.html", form=form), 400 if request.method == "POST" else 200
    if form.is_bot:
        return render_template("public/subscribe_done.html")
    wording = subscriptions.SIGNUP_WORDING.format(practice="the practice")
    try:
        mail_ids = subscriptions.subscribe(form.email.data, form.name.data or "", origin(), wording)
    except subscriptions.InvalidEmail as exc:
        db.session.rollback()
        form.email.errors.append(str(exc))
        return render_template("public/subscribe.html", form=form), 400
    db.session.commit()
    enqueue_mail(mail_ids)
    return render_template("public/subscribe_done.html")


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str):
    """GET only shows a button: link scanners that prefetch must not confirm."""
    if request.method == "GET":
        return render_template("public/confirm.html", token=token)
    try:
        subscriber = subscriptions.confirm(token, origin("email"))
    except tokens.BadToken as exc:
        db.session.rollback()
        return render_template("public/token_invalid.html", expired=exc.expired, form=SubscribeForm()), 400
    db.session.commit()
    return render_template("public/confirmed.html", subscriber=subscriber)


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
@csrf.exempt  # RFC 8058 one-click POSTs come from mail providers with no cookie and no token
def unsubscribe(token: str):
    try:
        subscriber = subscriptions.reader_for_unsubscribe(token)
    except tokens.BadToken:
        return render_template("public/token_invalid.html", expired=False, form=SubscribeForm()), 400
    if request.method == "GET":
        return render_template("public/unsubscribe.html", token=token, subscriber=subscriber)
    subscriptions.unsubscribe(token, origin("email"))
    db.session.commit()
    return render_template("public/unsubscribed.html", subscriber=subscriber)
