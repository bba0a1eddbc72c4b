"""Admin: the inquiry pipeline (inbox, spam folder, detail with status, notes, replies and calls). Every
opening of an inquiry is written to the access log by the service."""
from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from newsletter.accounts import practice
from newsletter.admin.blueprint import bp
from newsletter.admin.forms import InquiryNoteForm, InquiryStatusForm
from newsletter.admin.inquiry_forms import InquiryCallForm, InquiryReplyForm
from newsletter.core.extensions import db
from newsletter.inquiries import booking, composing, pipeline, reports, waitlist
from newsletter.models import Inquiry, WaitlistEntry
from newsletter.web import send_after_response


@bp.get("/inquiries", endpoint="inquiries")
def inquiries_list():
    spam = request.args.get("folder") == "spam"
    status = request.args.get("status")
    if status not in pipeline.STATUS_LABELS:
        status = None
    rows = pipeline.list_inquiries(spam=spam, status=status)
    return render_template(
        "admin/inquiries.html",
        rows=rows,
        spam=spam,
        status=status,
        counts=reports.status_counts(),
        spam_count=reports.spam_count(),
        median_wait=reports.describe_wait(reports.median_response_time(pipeline.list_inquiries())),
        labels=pipeline.STATUS_LABELS,
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
    opened = pipeline.open_inquiry(inquiry_id, current_user.id)
    if opened is None:
        abort(404)
    db.session.commit()  # the access log entry
    status_form = status_form or InquiryStatusForm(status=opened.inquiry.status)
    return render_template(
        "admin/inquiries_detail.html",
        opened=opened,
        inquiry=opened.inquiry,
        status_form=status_form,
        note_form=note_form or InquiryNoteForm(formdata=None),
        reply_form=reply_form or InquiryReplyForm(formdata=None),
        call_form=call_form or InquiryCallForm(formdata=None),
        mailto=pipeline.reply_link(opened.inquiry) if opened.inquiry.email else "",
        heard_from=composing.heard_from_label(opened.inquiry),
        consultation=booking.booked(opened.inquiry),
        offers_consultations=bool(practice.profile().consultation_hours),
        labels=pipeline.STATUS_LABELS,
        wait=reports.describe_wait(reports.response_time(opened.inquiry)),
        time_left=reports.time_left(opened.inquiry),
        retention_days=current_app.config["INQUIRY_RETENTION_DAYS"],
    ), code


def _inquiry_or_404(inquiry_id: int) -> Inquiry:
    return db.get_or_404(Inquiry, inquiry_id)


@bp.post("/inquiries/<int:inquiry_id>/status")
def inquiry_status(inquiry_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    form = InquiryStatusForm()
    if not form.validate():
        return _detail_page(inquiry_id, status_form=form, code=400)
    pipeline.change_status(inquiry, form.status.data, current_user.id)
    db.session.commit()
    flash(f"Status set to “{pipeline.STATUS_LABELS[inquiry.status]}”.")
    return redirect(url_for("admin.inquiry_detail", inquiry_id=inquiry_id))


@bp.post("/inquiries/<int:inquiry_id>/notes")
def inquiry_note(inquiry_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    form = InquiryNoteForm()
    if not form.validate():
        return _detail_page(inquiry_id, note_form=form, code=400)
    pipeline.add_note(inquiry, form.body.data, current_user.id)
    db.session.commit()
    flash("Note saved.")
    return redirect(url_for("admin.inquiry_detail", inquiry_id=inquiry_id))


@bp.post("/inquiries/<int:inquiry_id>/reply")
def inquiry_reply(inquiry_id: int):
    """Send her answer from the practice address, threaded under the acknowledgement."""
    inquiry = _inquiry_or_404(inquiry_id)
    form = InquiryReplyForm()
    if not form.validate():
        return _detail_page(inquiry_id, reply_form=form, code=400)
    try:
        mail_ids = pipeline.send_reply(
            inquiry, form.body.data, quote_inquiry=form.quote_inquiry.data, admin_id=current_user.id,
            booking_link=booking.booking_url(inquiry) if form.booking_link.data else "")
    except pipeline.NoOneToReplyTo:
        abort(404)  # purged: there is no one to reply to
    if form.close_as.data == "referred":
        pipeline.change_status(inquiry, "referred", current_user.id)
    db.session.commit()
    send_after_response(mail_ids)
    flash("Your reply is on its way." + (" The inquiry is closed as referred elsewhere." if form.close_as.data else ""))
    return redirect(url_for("admin.inquiry_detail", inquiry_id=inquiry_id))


@bp.post("/inquiries/<int:inquiry_id>/call")
def inquiry_call(inquiry_id: int):
    """Record that she called the inquirer."""
    inquiry = _inquiry_or_404(inquiry_id)
    form = InquiryCallForm()
    if not form.validate():
        return _detail_page(inquiry_id, call_form=form, code=400)
    pipeline.record_call(inquiry, form.note.data or "", current_user.id)
    db.session.commit()
    flash("Call recorded.")
    return redirect(url_for("admin.inquiry_detail", inquiry_id=inquiry_id))


@bp.post("/inquiries/<int:inquiry_id>/spam")
def inquiry_spam(inquiry_id: int):
    inquiry = _inquiry_or_404(inquiry_id)
    if request.form.get("action") == "not_spam":
        mail_ids = pipeline.not_spam(inquiry, current_user.id)
        db.session.commit()
        send_after_response(mail_ids)
        flash("Moved to the inbox." + (" Its forward and acknowledgement are on their way." if mail_ids else ""))
    else:
        pipeline.mark_spam(inquiry, current_user.id)
        db.session.commit()
        flash("Moved to the spam folder. It is kept there until the retention period ends.")
    return redirect(url_for("admin.inquiry_detail", inquiry_id=inquiry_id))


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
    try:
        mail_ids = waitlist.invite(entry, current_user.id)
    except waitlist.NotOnTheList:
        abort(404)
    db.session.commit()
    send_after_response(mail_ids)
    flash("Invitation sent. They are off the waitlist; their answer comes to the practice inbox.")
    return redirect(url_for("admin.waitlist"))


@bp.get("/inquiries/sources", endpoint="inquiry_sources")
def inquiry_sources():
    """Where inquiries come from, by month, and how many became clients."""
    return render_template("admin/inquiries_sources.html", rows=reports.source_report())


@bp.post("/inquiries/<int:inquiry_id>/consultation/cancel")
def consultation_cancel(inquiry_id: int):
    """Cancel the booked consultation; both sides get an .ics cancellation."""
    consultation = booking.booked(_inquiry_or_404(inquiry_id))
    if consultation is None:
        abort(404)
    mail_ids = booking.cancel(consultation, current_user.id)
    db.session.commit()
    send_after_response(mail_ids)
    flash("Consultation cancelled. They have been told, and the time is free again.")
    return redirect(url_for("admin.inquiry_detail", inquiry_id=inquiry_id))
