"""Admin: the inquiry pipeline (inbox, spam folder, detail with status, notes, replies and calls). Every
opening of an inquiry is written to the access log by the service; every status change goes through
the state table (inquiries/states.py), a refused one is a message; every action that mails the inquirer
asks first (admin/confirm.py)."""
from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from newsletter.accounts import practice, roles
from newsletter.admin.blueprint import bp
from newsletter.admin.confirm import ask_first
from newsletter.admin.forms import (
    InquiryCallForm,
    InquiryNoteForm,
    InquiryReplyForm,
    InquiryStatusForm,
    assign_form,
)
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.inquiries import booking, composing, pipeline, reports, routing, states, waitlist
from newsletter.models import Inquiry, WaitlistEntry
from newsletter.web import send_after_response


@bp.get("/inquiries", endpoint="inquiries")
def inquiries_list():
    spam = request.args.get("folder") == "spam"
    status = request.args.get("status")
    if status not in states.STATUS_LABELS:
        status = None
    scope = roles.inquiry_scope(current_user)
    # In a group practice the owner and the coordinator see who answers each, and which nobody does yet.
    handing_out = routing.is_group() and roles.sees_every_inquiry(current_user)
    unassigned = handing_out and request.args.get("assigned") == "none"
    rows = pipeline.list_inquiries(spam=spam, status=status, unassigned=unassigned, scope=scope)
    return render_template(
        "admin/inquiries.html",
        rows=rows,
        spam=spam,
        status=status,
        unassigned=unassigned,
        assignees=routing.names() if handing_out else None,
        unassigned_count=reports.unassigned_count(scope) if handing_out else 0,
        counts=reports.status_counts(scope),
        spam_count=reports.spam_count(scope),
        median_wait=reports.describe_wait(reports.median_response_time(pipeline.list_inquiries(scope=scope))),
        labels=states.STATUS_LABELS,
        describe_wait=reports.describe_wait,
        response_time=reports.response_time,
        is_open=reports.is_open,
        waitlist_count=len(waitlist.active()),
        time_left=reports.time_left,
    )


@bp.get("/inquiries/<int:inquiry_id>")
def inquiry_detail(inquiry_id: int):
    if request.args.get("compose") == "referral":
        return _detail_page(inquiry_id, reply_form=InquiryReplyForm(
            formdata=None, body=render_template("admin/_referral_reply.txt", **pipeline.referral_lists()),
            quote_inquiry=False, close_as="referred"))
    return _detail_page(inquiry_id)


def _detail_page(inquiry_id: int, status_form: InquiryStatusForm | None = None,
                 note_form: InquiryNoteForm | None = None, reply_form: InquiryReplyForm | None = None,
                 call_form: InquiryCallForm | None = None, code: int = 200):
    opened = pipeline.open_inquiry(inquiry_id, current_user.id, roles.inquiry_scope(current_user))
    if opened is None:
        abort(404)
    db.session.commit()  # the access log entry
    inquiry = opened.inquiry
    return render_template(
        "admin/inquiries_detail.html",
        opened=opened,
        inquiry=inquiry,
        status_form=status_form or InquiryStatusForm(formdata=None),
        moves=states.manual_actions(inquiry),
        note_form=note_form or InquiryNoteForm(formdata=None),
        reply_form=reply_form or InquiryReplyForm(formdata=None, quote_inquiry=not composing.quiet(inquiry)),
        call_form=call_form or InquiryCallForm(formdata=None),
        assign_form=assign_form(inquiry) if routing.is_group() else None,
        assignee=routing.assignee_name(inquiry),
        mailto=pipeline.reply_link(inquiry) if inquiry.email else "",
        heard_from=composing.heard_from_label(inquiry),
        consultation=booking.booked(inquiry),
        offers_consultations=booking.offered(inquiry),
        labels=states.STATUS_LABELS,
        wait=reports.describe_wait(reports.response_time(inquiry)),
        time_left=reports.time_left(inquiry),
        retention_days=settings().inquiry_retention_days,
    ), code


def _inquiry_or_404(inquiry_id: int) -> Inquiry:
    """The inquiry, if it is one this person sees (a clinician: assigned to them); else 404, as if there were none."""
    inquiry = db.session.scalar(select(Inquiry).where(Inquiry.id == inquiry_id, roles.inquiry_scope(current_user)))
    if inquiry is None:
        abort(404)
    return inquiry


def _done(message: str, back_to: str, mail_ids: list[int] | None = None):
    """Commit the change, hand its mail to a worker once the response is out, say what was done, go back."""
    db.session.commit()
    send_after_response(mail_ids or [])
    flash(message)
    return redirect(back_to)


def _inquiry_url(inquiry_id: int) -> str:
    return url_for("admin.inquiry_detail", inquiry_id=inquiry_id)


def _submitted(inquiry_id: int, form_class: type[FlaskForm], slot: str) -> tuple[Inquiry, FlaskForm]:
    """The inquiry (in this person's scope) and the form posted about it, valid; else the answer is the inquiry
    page again with the form's messages in its `slot` (400), nothing changed."""
    inquiry = _inquiry_or_404(inquiry_id)
    form = form_class()
    if not form.validate():
        abort(make_response(_detail_page(inquiry_id, code=400, **{slot: form})))
    return inquiry, form


def _allowed(inquiry: Inquiry, *actions: str) -> None:
    """Go on only if the state table allows each move; else say why on the inquiry page, nothing changed."""
    for action in actions:
        if not states.allows(inquiry, action):
            flash(states.refusal(inquiry, action))
            abort(redirect(_inquiry_url(inquiry.id)))


@bp.post("/inquiries/<int:inquiry_id>/status")
def inquiry_status(inquiry_id: int):
    """A move by hand: close, reopen, mark contacted or scheduled."""
    inquiry, form = _submitted(inquiry_id, InquiryStatusForm, "status_form")
    _allowed(inquiry, form.action.data)
    states.transition(inquiry, form.action.data, current_user.id)
    return _done(f"Status set to “{states.STATUS_LABELS[inquiry.status]}”.", _inquiry_url(inquiry_id))


@bp.post("/inquiries/<int:inquiry_id>/notes")
def inquiry_note(inquiry_id: int):
    inquiry, form = _submitted(inquiry_id, InquiryNoteForm, "note_form")
    pipeline.add_note(inquiry, form.body.data, current_user.id)
    return _done("Note saved.", _inquiry_url(inquiry_id))


@bp.post("/inquiries/<int:inquiry_id>/reply")
def inquiry_reply(inquiry_id: int):
    """Send her answer from the practice address, threaded under the acknowledgement, once she confirmed."""
    inquiry, form = _submitted(inquiry_id, InquiryReplyForm, "reply_form")
    if inquiry.purged_at is not None or not inquiry.email:
        abort(404)  # purged: there is no one to reply to
    _allowed(inquiry, *(("reply", "refer") if form.close_as.data == "referred" else ("reply",)))
    closing = " and close the inquiry as referred elsewhere" if form.close_as.data else ""
    question = f"Send this reply to {inquiry.email}{closing}?"
    if (page := ask_first(question, url_for("admin.inquiry_detail", inquiry_id=inquiry_id, _anchor="reply"),
                          detail=form.body.data)) is not None:
        return page
    mail_ids = pipeline.send_reply(
        inquiry, form.body.data, quote_inquiry=form.quote_inquiry.data, admin_id=current_user.id,
        booking_link=booking.link_for(inquiry) if form.booking_link.data else "")
    if form.close_as.data == "referred":
        states.transition(inquiry, "refer", current_user.id)
    closed = " The inquiry is closed as referred elsewhere." if form.close_as.data else ""
    return _done("Your reply is on its way." + closed, _inquiry_url(inquiry_id), mail_ids)


@bp.post("/inquiries/<int:inquiry_id>/call")
def inquiry_call(inquiry_id: int):
    """Record that she called the inquirer."""
    inquiry, form = _submitted(inquiry_id, InquiryCallForm, "call_form")
    _allowed(inquiry, "call")
    pipeline.record_call(inquiry, form.note.data or "", current_user.id)
    return _done("Call recorded.", _inquiry_url(inquiry_id))


@bp.post("/inquiries/<int:inquiry_id>/spam")
def inquiry_spam(inquiry_id: int):
    """Move to the spam folder, or back to the inbox (which sends the mails it never got, so it asks first)."""
    inquiry = _inquiry_or_404(inquiry_id)
    action = "not_spam" if request.form.get("action") == "not_spam" else "spam"
    _allowed(inquiry, action)
    if action == "spam":
        states.transition(inquiry, "spam", current_user.id)
        return _done("Moved to the spam folder. It is kept there until the retention period ends.",
                     _inquiry_url(inquiry_id))
    if inquiry.forwarded_at is None and inquiry.purged_at is None and (page := ask_first(
            f"Move it to the inbox and send {inquiry.email} the acknowledgement it never got?",
            _inquiry_url(inquiry_id), button="Yes, move it and send")) is not None:
        return page
    mail_ids = pipeline.not_spam(inquiry, current_user.id)
    sent = " Its forward and acknowledgement are on their way." if mail_ids else ""
    return _done("Moved to the inbox." + sent, _inquiry_url(inquiry_id), mail_ids)


@bp.get("/waitlist", endpoint="waitlist")
def waitlist_list():
    """Everyone waiting for a place, in the order they joined."""
    return render_template("admin/inquiries_waitlist.html", rows=waitlist.active(),
                           accepting=practice.profile().accepting_clients)


@bp.post("/waitlist/<int:entry_id>/invite")
def waitlist_invite(entry_id: int):
    """Offer the opened place to this person and take them off the list."""
    entry = db.get_or_404(WaitlistEntry, entry_id)
    if not practice.profile().accepting_clients:
        flash("Turn on “I'm accepting new clients” under Practice before inviting people.")
        return redirect(url_for("admin.waitlist"))
    inquiry = db.session.get(Inquiry, entry.inquiry_id)
    if entry.left_at is not None or not inquiry.email:
        abort(404)
    if not states.allows(inquiry, "invite"):
        flash(states.refusal(inquiry, "invite"))
        return redirect(url_for("admin.waitlist"))
    if (page := ask_first(f"Offer the opened place to {inquiry.email} and take them off the waitlist?",
                          url_for("admin.waitlist"))) is not None:
        return page
    mail_ids = waitlist.invite(entry, current_user.id)
    return _done("Invitation sent. They are off the waitlist; their answer comes to the practice inbox.",
                 url_for("admin.waitlist"), mail_ids)


@bp.get("/inquiries/sources", endpoint="inquiry_sources")
def inquiry_sources():
    """Where inquiries come from, by month, and how many became clients; in a group practice, by clinician."""
    return render_template("admin/inquiries_sources.html", rows=reports.source_report(),
                           by_clinician=reports.clinician_report() if routing.is_group() else [])


@bp.post("/inquiries/<int:inquiry_id>/consultation/cancel")
def consultation_cancel(inquiry_id: int):
    """Cancel the booked consultation; both sides get an .ics cancellation."""
    inquiry = _inquiry_or_404(inquiry_id)
    consultation = booking.booked(inquiry)
    if consultation is None:
        abort(404)
    _allowed(inquiry, "cancel_consultation")
    if (page := ask_first(f"Cancel the consultation on {booking.local_start(consultation)} and tell {inquiry.email}?",
                          _inquiry_url(inquiry_id), button="Yes, cancel it")) is not None:
        return page
    mail_ids = booking.cancel(consultation, current_user.id)
    return _done("Consultation cancelled. They have been told, and the time is free again.",
                 _inquiry_url(inquiry_id), mail_ids)
