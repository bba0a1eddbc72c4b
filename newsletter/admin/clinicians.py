"""Admin: the practice's clinicians (their public profiles), how inquiries are routed among them, and
handing an inquiry to someone else. The owner edits every profile; a clinician should reach only their
own (`admin.clinician_edit` / `admin.clinician_save` for their id; the roles table decides)."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from wtforms.fields.choices import SelectChoice

from newsletter.accounts import practice
from newsletter.admin.blueprint import audit_action, bp
from newsletter.admin.confirm import ask_first
from newsletter.admin.forms import ClinicianForm, NewClinicianForm, PhotoForm, RoutingForm, assign_form
from newsletter.core.extensions import db
from newsletter.inquiries import booking, clinicians, photos, routing
from newsletter.models import AdminUser, Clinician, Inquiry
from newsletter.web import send_after_response


@bp.get("/team")
def clinicians_list():
    return _list_page()


def _new_form(**kwargs) -> NewClinicianForm:
    form = NewClinicianForm(**kwargs)
    form.admin_id.choices = [SelectChoice(person.id, person.email) for person in clinicians.without_profile()]
    return form


def _list_page(form: NewClinicianForm | None = None, routing_form: RoutingForm | None = None, code: int = 200):
    form = form or _new_form(formdata=None, accepting_clients=True)
    return render_template("admin/clinicians.html", team=clinicians.every_profile(), form=form,
                           group=routing.is_group(),
                           routing_form=routing_form or RoutingForm(formdata=None, obj=practice.profile())), code


@bp.post("/team")
def clinician_create():
    form = _new_form()
    if not form.validate():
        return _list_page(form=form, code=400)
    try:
        clinician = clinicians.create(form.admin_id.data, form.data)
    except clinicians.SlugTaken:
        db.session.rollback()
        form.slug.errors.append("Another clinician has this web name: please choose another.")
        return _list_page(form=form, code=400)
    audit_action("clinician profile added", clinician.slug)
    db.session.commit()
    flash(f"{clinician.name}'s profile is saved.")
    return redirect(url_for("admin.clinicians_list"))


@bp.get("/team/<int:clinician_id>")
def clinician_edit(clinician_id: int):
    clinician = db.get_or_404(Clinician, clinician_id)
    return _edit_page(clinician, ClinicianForm(formdata=None, obj=clinician))


def _edit_page(clinician: Clinician, form: ClinicianForm, code: int = 200, photo_form: PhotoForm | None = None):
    return render_template("admin/clinician_edit.html", clinician=clinician, form=form,
                           photo_form=photo_form or PhotoForm(formdata=None)), code


@bp.post("/team/<int:clinician_id>")
def clinician_save(clinician_id: int):
    clinician = db.get_or_404(Clinician, clinician_id)
    form = ClinicianForm()
    if not form.validate():
        return _edit_page(clinician, form, 400)
    try:
        clinicians.update(clinician, form.data)
    except clinicians.SlugTaken:
        db.session.rollback()
        form.slug.errors.append("Another clinician has this web name: please choose another.")
        return _edit_page(db.get_or_404(Clinician, clinician_id), form, 400)
    return _saved(clinician, "clinician profile changed", "Saved. The team page shows the new details.")


def _saved(clinician: Clinician, action: str, message: str):
    """Audit and commit a change to the profile, say so, and show the profile page again."""
    audit_action(action, clinician.slug)
    db.session.commit()
    flash(message)
    return redirect(url_for("admin.clinician_edit", clinician_id=clinician.id))


@bp.post("/team/<int:clinician_id>/photo")
def clinician_photo(clinician_id: int):
    """Their photo for the team page: re-encoded without metadata, or refused with a message and nothing kept."""
    clinician = db.get_or_404(Clinician, clinician_id)
    form = PhotoForm()
    if form.validate():
        try:
            clinicians.set_photo(clinician, form.photo.data.read(photos.MAX_BYTES + 1))
        except photos.PhotoRefused as refused:
            form.photo.errors.append(str(refused))
    if form.errors:
        db.session.rollback()
        return _edit_page(clinician, ClinicianForm(formdata=None, obj=clinician), 400, photo_form=form)
    return _saved(clinician, "clinician photo changed", "Saved. The team page shows the new photo.")


@bp.post("/team/<int:clinician_id>/photo/remove")
def clinician_photo_remove(clinician_id: int):
    clinician = db.get_or_404(Clinician, clinician_id)
    clinicians.remove_photo(clinician)
    return _saved(clinician, "clinician photo removed", "The photo is removed from the team page.")


@bp.post("/team/routing")
def team_routing():
    """How "whoever fits" inquiries are routed, and how a clinician's inquiries reach them."""
    form = RoutingForm()
    if not form.validate():
        return _list_page(routing_form=form, code=400)
    stored = practice.ensure_profile()
    stored.routing, stored.assignee_mail = form.routing.data, form.assignee_mail.data
    audit_action("routing changed", f"{stored.routing}, {stored.assignee_mail}")
    db.session.commit()
    flash("Saved. New inquiries are routed this way.")
    return redirect(url_for("admin.clinicians_list"))


@bp.post("/inquiries/<int:inquiry_id>/assign")
def inquiry_assign(inquiry_id: int):
    """Hand the inquiry to someone else: a handoff note, a mail to them, the reply-by reminders theirs."""
    inquiry = db.get_or_404(Inquiry, inquiry_id)
    form = assign_form(inquiry, formdata=request.form)
    back = url_for("admin.inquiry_detail", inquiry_id=inquiry_id)
    if not form.validate():
        flash(" ".join(error for errors in form.errors.values() for error in errors))
        return redirect(back)
    if form.assignee.data == inquiry.assignee_id:
        flash("It is already theirs.")
        return redirect(back)
    person = db.session.get(AdminUser, form.assignee.data)
    question = f"Hand this inquiry to {routing.display_name(person)} and tell them by e-mail? "
    if (page := ask_first(question + booking.stays_with_host(inquiry), back,
                          detail=form.note.data or "", button="Yes, hand it on")) is not None:
        return page
    audit_action("inquiry handed off", f"inquiry {inquiry_id} to {person.email}")
    mail_ids = routing.reassign(inquiry, person.id, form.note.data or "", current_user.id)
    db.session.commit()
    send_after_response(mail_ids)
    flash(f"Handed to {routing.display_name(person)}. They have been told, and the reminders now go to them.")
    return redirect(back)
