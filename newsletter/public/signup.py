"""Signup (on the site and in an iframe), double opt-in confirmation and unsubscribe.

Every signup gets the same answer, in the same time, whatever the address's state: nobody learns
from this form who is subscribed. Limits per IP answer 429; the limit per address is silent: a
signup past it is stored like any other, and the worker drops it.
"""
from __future__ import annotations

import logging

from flask import current_app, render_template, request
from flask_wtf.csrf import CSRFError
from limits import parse

from newsletter.core import tokens
from newsletter.core.config import settings
from newsletter.core.extensions import commit, db
from newsletter.core.web_extensions import csrf, limiter
from newsletter.mail.suppression import email_hash
from newsletter.public.blueprint import bp
from newsletter.public.forms import SubscribeForm
from newsletter.publishing import series
from newsletter.readers import lists, subscriptions
from newsletter.tasks import apply_signup, send_batch
from newsletter.web import (
    DATABASE_UNAVAILABLE,
    allow_embedding,
    hand_off_after_response,
    origin,
    rollback_quietly,
    send_after_response,
    token_route,
)

log = logging.getLogger(__name__)

SIGNUP_LIMIT_PER_IP = "5 per minute; 30 per hour"
# Signup attempts for one address, from anywhere; past it the form answers as usual, and the worker does nothing.
SIGNUP_LIMIT_PER_ADDRESS = parse("5 per hour")


@bp.app_context_processor
def inject_signup_wording():
    return {"signup_wording": subscriptions.signup_wording, "newsletter_lists": _lists_to_offer}


def _lists_to_offer() -> list:
    """The lists a signup form offers; none while the database is down, so the form still shows what was typed."""
    try:
        return lists.all_lists()
    except DATABASE_UNAVAILABLE:
        rollback_quietly()
        return []


def _address_within_limit(address: str) -> bool:
    if not settings().ratelimit_enabled:
        return True
    keys = [current_app.config.get("RATELIMIT_KEY_PREFIX", ""), "signup-address", email_hash(address)]
    try:
        return limiter.limiter.hit(SIGNUP_LIMIT_PER_ADDRESS, *filter(None, keys))
    except Exception as exc:  # noqa: BLE001 - storage down: the per-address mail caps in the database still hold
        log.warning("rate limit storage unreachable for the per-address signup limit: %s", exc)
        return True


def _signup(form: SubscribeForm, source: str, template: str, done_template: str):
    """The signup flow shared by /subscribe and /embed/subscribe (POST)."""
    if form.is_bot:  # whatever else it sent: a bot learns nothing
        return render_template(done_template)
    if not form.validate():
        return render_template(template, form=form), 400
    address = form.email.data  # normalized by the form
    try:
        chosen = [row.slug for row in lists.by_slugs(form.lists.data)] if form.lists.data else []
    except lists.ListError as exc:
        form.lists.errors.append(str(exc))
        return render_template(template, form=form), 400
    over_limit = not _address_within_limit(address)
    try:
        request_id = commit(lambda: subscriptions.request_signup(address, form.name.data or "", origin(source),
                                                                 subscriptions.signup_wording(), chosen,
                                                                 over_limit=over_limit))
    except DATABASE_UNAVAILABLE:
        rollback_quietly()
        return render_template(template, form=form, unsaved=True), 503
    hand_off_after_response(apply_signup, request_id)
    return render_template(done_template)


@bp.get("/subscribe")
def subscribe():
    return render_template("public/subscribe.html", form=SubscribeForm())


@bp.post("/subscribe")
@limiter.limit(SIGNUP_LIMIT_PER_IP)
def subscribe_submit():
    return _signup(SubscribeForm(), "site", "public/subscribe.html", "public/subscribe_done.html")


def _embed_form() -> SubscribeForm:
    # In a cross-site iframe the session cookie (SameSite=Lax) is not sent: no CSRF token; double opt-in protects.
    return SubscribeForm(meta={"csrf": False})


@bp.get("/embed/subscribe")
def embed_subscribe():
    return allow_embedding(current_app.make_response(
        render_template("public/embed_subscribe.html", form=_embed_form())))


@bp.post("/embed/subscribe")
@limiter.limit(SIGNUP_LIMIT_PER_IP)
@csrf.exempt
def embed_subscribe_submit():
    return allow_embedding(current_app.make_response(
        _signup(_embed_form(), "embed", "public/embed_subscribe.html", "public/embed_subscribe_done.html")
    ))


def _invalid_link(error: tokens.BadToken):
    return render_template("public/token_invalid.html", expired=error.expired, form=SubscribeForm()), 400


def _pending_reader(token: str):
    """The reader a confirm link names, or None when it was confirmed already (a second click: said kindly)."""
    try:
        return subscriptions.reader_for_confirm(token)
    except subscriptions.AlreadyConfirmed:
        return None


@token_route(bp, "/confirm/<token>", methods=["GET"], read=_pending_reader, refused=_invalid_link)
def confirm(reader, token: str):
    """Only a button: link scanners that prefetch must not confirm."""
    if reader is None:
        return render_template("public/confirmed.html")
    return render_template("public/confirm.html", token=token)


@token_route(bp, "/confirm/<token>", methods=["POST"], read=_pending_reader, refused=_invalid_link)
@limiter.limit("20 per minute")
def confirm_submit(reader, token: str):
    if reader is None:
        return render_template("public/confirmed.html")
    try:
        subscriber, _ = subscriptions.confirm(token, origin("email"), welcome_mail=False)
        # The welcome series' first step, when it goes right away, is the welcome; else the welcome mail.
        step_issue_ids = series.queue_due(reader_ids=[subscriber.id])
        mail_ids = [] if step_issue_ids else [subscriptions.queue_welcome(subscriber)]
    except subscriptions.AlreadyConfirmed:  # two clicks at once: the other one confirmed
        db.session.rollback()
        return render_template("public/confirmed.html")
    db.session.commit()
    send_after_response(mail_ids)
    for issue_id in step_issue_ids:
        hand_off_after_response(send_batch, issue_id)
    return render_template("public/confirmed.html")


def _is_one_click() -> bool:
    return request.form.get("List-Unsubscribe") == "One-Click"


def _has_valid_csrf_token() -> bool:
    if not current_app.config.get("WTF_CSRF_ENABLED", True):
        return True
    try:
        csrf.protect()
    except CSRFError:
        return False
    return True


@token_route(bp, "/unsubscribe/<token>", methods=["GET"], read=subscriptions.reader_for_unsubscribe,
             refused=_invalid_link)
def unsubscribe(reader, token: str):
    """Only a button; only a POST unsubscribes."""
    return render_template("public/unsubscribe.html", token=token)


@token_route(bp, "/unsubscribe/<token>", methods=["POST"], read=subscriptions.reader_for_unsubscribe,
             refused=_invalid_link)
@csrf.exempt  # RFC 8058 one-click POSTs come from mail providers with no cookie and no token: checked here
def unsubscribe_submit(reader, token: str):
    """RFC 8058's one-click POST, or the page's button (with its CSRF token); any other POST changes nothing."""
    if not _is_one_click() and not _has_valid_csrf_token():
        return render_template("public/unsubscribe.html", token=token, not_sent=True), 400
    wording = subscriptions.ONE_CLICK_WORDING if _is_one_click() else subscriptions.UNSUBSCRIBE_WORDING
    subscriptions.unsubscribe(token, origin("email"), wording)
    db.session.commit()
    if _is_one_click():
        return "You are unsubscribed.\n", 200, {"Content-Type": "text/plain; charset=utf-8"}
    return render_template("public/unsubscribed.html", token=token)


@token_route(bp, "/unsubscribe/<token>/resubscribe", methods=["POST"], read=subscriptions.reader_for_unsubscribe,
             refused=_invalid_link)
@limiter.limit("5 per minute")
def resubscribe(reader, token: str):
    """The goodbye page's "I changed my mind": double opt-in again, by mail."""
    mail_ids = subscriptions.resubscribe(token, origin("site"))
    db.session.commit()
    send_after_response(mail_ids)
    return render_template("public/subscribe_done.html")
