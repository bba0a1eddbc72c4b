"""The page a waitlisted person reaches from a check-in mail: keep my place, or take me off the list."""
from __future__ import annotations

from flask import render_template, request

from newsletter.core.extensions import db
from newsletter.inquiries import waitlist
from newsletter.public.blueprint import bp
from newsletter.web import token_route


@token_route(bp, "/waitlist/<token>", methods=["GET"], read=waitlist.entry_for)
def waitlist_answer(entry, token: str):
    """The two buttons; changes nothing (link scanners fetch it)."""
    return render_template("public/waitlist_answer.html", entry=entry)


@token_route(bp, "/waitlist/<token>", methods=["POST"], read=waitlist.entry_for)
def waitlist_answer_submit(entry, token: str):
    """Record the answer; the link is used up once answered."""
    keep = request.form.get("answer")
    if keep not in ("keep", "leave"):
        return render_template("public/waitlist_answer.html", entry=entry,
                               error="Please choose one of the two buttons."), 400
    waitlist.answer(entry, keep == "keep")
    db.session.commit()
    return render_template("public/waitlist_answer.html", entry=entry, answered=keep)
