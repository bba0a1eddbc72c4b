"""The reader's preferences page, from the link in every issue and welcome mail: newsletters, each issue
or a monthly digest, a break,
a new address, leaving everything. GET shows; only POST (with its CSRF token) changes anything.

Both URLs carry a token and go through web.token_route: a preferences token (permanent, like the unsubscribe
link) and an address-change token (timed, spent once used).
"""
from __future__ import annotations

from flask import render_template, request

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.core.web_extensions import limiter
from newsletter.mail import addresses
from newsletter.public.blueprint import bp
from newsletter.public.forms import EVERY_ISSUE, MONTHLY, PreferencesForm
from newsletter.readers import lists, preferences, subscriptions
from newsletter.web import origin, send_after_response, token_route

SAVE, ADDRESS, END_BREAK, LEAVE = "save", "address", "end_break", "leave"


def _page(subscriber, form: PreferencesForm, status: int = 200, done: str = ""):
    if not form.is_submitted():
        form.lists.data = [row.slug for row in lists.lists_of(subscriber)]
        form.frequency.data = MONTHLY if subscriber.digest_since else EVERY_ISSUE
    break_until = practice.local_time(subscriber.break_until, "%B %-d, %Y")
    return render_template("public/preferences.html", form=form, subscriber=subscriber, done=done,
                           choices=lists.all_lists(), break_until=break_until), status


@token_route(bp, "/preferences/<token>", methods=["GET"], read=preferences.reader_for_preferences)
def preferences_page(subscriber, token: str):
    """The reader's choices, as they stand."""
    return _page(subscriber, PreferencesForm())


@token_route(bp, "/preferences/<token>", methods=["POST"], read=preferences.reader_for_preferences)
@limiter.limit("20 per minute")
def preferences_save(subscriber, token: str):
    """Change the reader's choices: one consent record per change."""
    form = PreferencesForm()
    if not form.validate_on_submit():
        return _page(subscriber, form, 400)
    try:
        done, mail_ids = _change(subscriber, form, request.form.get("action", SAVE))
    except (preferences.PreferenceError, lists.ListError, addresses.InvalidAddress) as exc:
        db.session.rollback()
        field = form.new_email if request.form.get("action") == ADDRESS else form.lists
        field.errors = [*field.errors, str(exc)]
        return _page(preferences.reader_for_preferences(token), form, 400)
    db.session.commit()
    send_after_response(mail_ids)
    if request.form.get("action") == LEAVE:
        token = subscriptions.unsubscribe_url(subscriber).rsplit("/", 1)[1]
        return render_template("public/unsubscribed.html", token=token)
    return _page(subscriber, form, done=done)


def _change(subscriber, form: PreferencesForm, action: str) -> tuple[str, list[int]]:
    """Apply the button pressed; returns what to tell the reader and the mail to send."""
    where = origin("site")
    if action == LEAVE:
        preferences.leave(subscriber, where)
        return "", []
    if action == ADDRESS:
        mail_id = preferences.ask_address_change(subscriber, form.new_email.data or "", where)
        return ("We sent a link to the new address. Your address changes once you open it there.",
                [mail_id] if mail_id else [])
    if action == END_BREAK:
        preferences.end_break(subscriber, where)
        return "Your break is over: new articles will arrive again.", []
    if len(lists.all_lists()) > 1:
        preferences.choose_lists(subscriber, lists.by_slugs(form.lists.data) if form.lists.data else [], where)
    if form.frequency.data:
        preferences.choose_digest(subscriber, form.frequency.data == MONTHLY, where)
    if form.break_months.data:
        months = {str(months): months for months in preferences.BREAK_MONTHS}.get(form.break_months.data, 0)
        until = preferences.take_break(subscriber, months, where)
        return f"Saved. No mail until {practice.local_time(until, '%B %-d, %Y')}; then it resumes by itself.", []
    return "Saved.", []


@token_route(bp, "/preferences/address/<token>", methods=["GET"], read=preferences.address_change_for)
def preferences_address(change, token: str):
    """From the mail sent to a new address: a button only (link scanners that prefetch must not change it)."""
    _, address = change
    return render_template("public/address_change.html", address=address)


@token_route(bp, "/preferences/address/<token>", methods=["POST"], read=preferences.address_change_for)
@limiter.limit("20 per minute")
def preferences_address_confirm(change, token: str):
    """Make the new address the reader's."""
    _, address = change
    try:
        preferences.change_address(token, origin("email"))
    except preferences.PreferenceError as exc:
        db.session.rollback()
        return render_template("public/address_change.html", address=address, error=str(exc)), 400
    db.session.commit()
    return render_template("public/address_change.html", address=address, done=True)
