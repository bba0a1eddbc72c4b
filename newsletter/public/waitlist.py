"""The page a waitlisted person reaches from a check-in mail: keep my place, or take me off the list."""
from __future__ import annotations

from flask import render_template, request

from newsletter.core import tokens
from newsletter.core.extensions import db
from newsletter.inquiries import waitlist
from newsletter.public.blueprint import bp


@bp.route("/waitlist/<token>", methods=["GET", "POST"])
def waitlist_answer(token: str):
    """GET shows the two buttons and changes nothing (link scanners fetch it); POST records the answer."""
    try:
        entry = waitlist.entry_for(token)
    except (tokens.BadToken, waitlist.NotOnTheList):
        return render_template("public/waitlist_answer.html", entry=None), 404
    if request.method == "GET":
        return render_template("public/waitlist_answer.html", entry=entry)
    keep = request.form.get("answer")
    if keep not in ("keep", "leave"):
        return render_template("public/waitlist_answer.html", entry=entry,
                               error="Please choose one of the two buttons."), 400
    waitlist.answer(entry, keep == "keep")
    db.session.commit()
    return render_template("public/waitlist_answer.html", entry=entry, answered=keep)
