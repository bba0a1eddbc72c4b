"""The page where a person picks a time for a free consultation, from the signed link in the practice's reply."""
from __future__ import annotations

from datetime import datetime
from itertools import groupby

from flask import render_template, request

from newsletter.accounts import practice
from newsletter.core import tokens
from newsletter.core.extensions import db
from newsletter.inquiries import booking
from newsletter.public.blueprint import bp
from newsletter.web import send_after_response

SLOT_FORMAT = "%Y-%m-%dT%H:%M"


@bp.route("/consultation/<token>", methods=["GET", "POST"])
def consultation(token: str):
    """GET lists the free times and changes nothing; POST books the one chosen."""
    try:
        inquiry = booking.inquiry_for(token)
    except tokens.BadToken:
        inquiry = None
    if inquiry is None:
        return render_template("public/consultation.html", inquiry=None), 404
    existing = booking.booked(inquiry)
    if request.method == "GET" or existing is not None:
        return _page(inquiry, existing)
    try:
        starts_at = datetime.strptime(request.form.get("slot", ""), SLOT_FORMAT)
        consultation, mail_ids = booking.book(inquiry, starts_at)
    except ValueError:
        return _page(inquiry, None, "Please choose one of the times below."), 400
    except booking.SlotTaken:
        db.session.rollback()
        return _page(inquiry, None, "Sorry, that time was just taken. Please choose another."), 409
    except booking.AlreadyBooked:
        db.session.rollback()
        return _page(inquiry, booking.booked(inquiry))
    db.session.commit()
    send_after_response(mail_ids)
    return _page(inquiry, consultation)


def _page(inquiry, existing, error: str = ""):
    slots = [] if existing else booking.open_slots()
    by_day = [(day, [(start.strftime(SLOT_FORMAT), practice.local_time(start, "%-I:%M %p")) for start in starts])
              for day, starts in groupby(slots, key=lambda start: practice.local_time(start, "%A, %B %-d"))]
    return render_template("public/consultation.html", inquiry=inquiry, booking=existing, slots=by_day, error=error)
