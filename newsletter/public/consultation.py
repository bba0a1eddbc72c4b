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
from newsletter.web import refused_status, send_after_response, token_route

SLOT_FORMAT = "%Y-%m-%dT%H:%M"


def _refused(error: tokens.BadToken):
    page = render_template("public/consultation.html", inquiry=None, expired=error.expired, revoked=error.revoked)
    return page, refused_status(error)


@token_route(bp, "/consultation/<token>", methods=["GET"], read=booking.inquiry_for, refused=_refused)
def consultation(inquiry, token: str):
    """The free times; changes nothing (link scanners fetch it)."""
    return _page(inquiry, None)


@token_route(bp, "/consultation/<token>", methods=["POST"], read=booking.inquiry_for, refused=_refused)
def consultation_book(inquiry, token: str):
    """Book the time chosen; the link is used up once it has booked one."""
    try:
        starts_at = datetime.strptime(request.form.get("slot", ""), SLOT_FORMAT)
        consultation, mail_ids = booking.book(inquiry, starts_at)
    except ValueError:
        return _page(inquiry, None, "Please choose one of the times below."), 400
    except booking.SlotTaken:
        db.session.rollback()
        return _page(inquiry, None, "Sorry, that time was just taken. Please choose another."), 409
    except booking.AlreadyBooked:  # the same link, a moment ago, in another tab
        db.session.rollback()
        return _refused(tokens.BadToken(revoked=True))
    db.session.commit()
    send_after_response(mail_ids)
    return _page(inquiry, consultation)


def _page(inquiry, existing, error: str = ""):
    slots = [] if existing else booking.open_slots(inquiry=inquiry)
    by_day = [(day, [(start.strftime(SLOT_FORMAT), practice.local_time(start, "%-I:%M %p")) for start in starts])
              for day, starts in groupby(slots, key=lambda start: practice.local_time(start, "%A, %B %-d"))]
    return render_template("public/consultation.html", inquiry=inquiry, booking=existing, slots=by_day, error=error)
