"""The owner's People page (invite someone with a role, change a role, remove a person) and the invitation link
where a new person sets their password. Who reaches which page is accounts/roles.py."""
from __future__ import annotations

from flask import abort, flash, redirect, render_template, url_for
from flask_login import current_user

from newsletter.accounts import people, practice, users
from newsletter.accounts.roles import ROLE_LABELS
from newsletter.admin.auth import finish_sign_in
from newsletter.admin.blueprint import audit_action, bp
from newsletter.admin.confirm import ask_first
from newsletter.admin.forms import PersonChangeForm, PersonInviteForm, SetPasswordForm
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.core.tokens import BadToken
from newsletter.web import refused_status, send_after_response, token_route


@bp.get("/people", endpoint="people")
def people_page():
    return _people_page(PersonInviteForm(formdata=None))


def _people_page(invite_form: PersonInviteForm, code: int = 200):
    rows = [(person, PersonChangeForm(formdata=None, role=person.role,
                                      may_write_newsletter=person.may_write_newsletter))
            for person in people.current()]
    return render_template("admin/people.html", rows=rows, invite_form=invite_form, labels=ROLE_LABELS,
                           days=people.INVITATION_DAYS), code


@bp.post("/people/invite", endpoint="person_invite")
def person_invite():
    """Invite someone by mail, once the owner confirmed the address (a typo would let a stranger in)."""
    form = PersonInviteForm()
    if not form.validate():
        return _people_page(form, 400)
    label = ROLE_LABELS[form.role.data]
    if (page := ask_first(f"Invite {form.email.data} as {label.lower()}? They get a link to set a password.",
                          url_for("admin.people"), button="Yes, send the invitation")) is not None:
        return page
    try:
        person = people.invite(form.email.data, form.role.data)
    except people.PeopleError as exc:
        db.session.rollback()
        form.email.errors.append(str(exc))
        return _people_page(form, 400)
    audit_action("person_invited", f"{person.email} as {person.role}")
    link = settings().base_url + url_for("admin.invitation", token=people.invitation_token(person))
    mail_id = people.queue_invitation(person, link, practice.profile().practice_name, current_user.email)
    db.session.commit()
    send_after_response([mail_id])
    flash(f"Invitation sent to {person.email}. The link works once, for {people.INVITATION_DAYS} days.")
    return redirect(url_for("admin.people"))


def _person_or_404(person_id: int):
    person = people.active(person_id)
    if person is None:
        abort(404)
    return person


@bp.post("/people/<int:person_id>", endpoint="person_change")
def person_change(person_id: int):
    person = _person_or_404(person_id)
    form = PersonChangeForm()
    if not form.validate():
        flash("Please choose one of the roles.")
        return redirect(url_for("admin.people"))
    try:
        people.change(person, form.role.data, form.may_write_newsletter.data)
    except people.PeopleError as exc:
        db.session.rollback()
        flash(str(exc))
        return redirect(url_for("admin.people"))
    writes = ", writes the newsletter" if person.may_write_newsletter else ""
    audit_action("person_changed", f"{person.email} now {person.role}{writes}")
    db.session.commit()
    flash(f"{person.email} is now {ROLE_LABELS[person.role].lower()}{writes}.")
    return redirect(url_for("admin.people"))


@bp.post("/people/<int:person_id>/remove", endpoint="person_remove")
def person_remove(person_id: int):
    person = _person_or_404(person_id)
    try:
        people.remove(person)
    except people.PeopleError as exc:
        db.session.rollback()
        flash(str(exc))
        return redirect(url_for("admin.people"))
    audit_action("person_removed", person.email)
    db.session.commit()
    flash(f"{person.email} was removed from the practice and signed out everywhere.")
    return redirect(url_for("admin.people"))


# -- the invitation link (open without a session: blueprint.PUBLIC_ENDPOINTS)

def _invitation_refused(error: BadToken):
    """410 for a link used or expired, 404 for one that never was; either way, who can send a new one."""
    return render_template("admin/invitation_refused.html", error=error), refused_status(error)


@token_route(bp, "/invitation/<token>", methods=["GET"], read=people.invitee_for, refused=_invitation_refused)
def invitation(person, token: str):
    return render_template("admin/invitation.html", person=person, form=SetPasswordForm(formdata=None),
                           label=ROLE_LABELS[person.role])


@token_route(bp, "/invitation/<token>", methods=["POST"], read=people.invitee_for, refused=_invitation_refused)
def invitation_accept(person, token: str):
    """The new person's own password; then they are signed in and set up their second factor."""
    form = SetPasswordForm()
    if not form.validate():
        return render_template("admin/invitation.html", person=person, form=form,
                               label=ROLE_LABELS[person.role]), 400
    try:
        people.accept(person, form.password.data)
    except users.WeakPassword as exc:
        form.password.errors.append(str(exc))
        return render_template("admin/invitation.html", person=person, form=form,
                               label=ROLE_LABELS[person.role]), 400
    signed_in = finish_sign_in(person, "invitation_accepted", url_for("admin.two_factor"))
    flash("Welcome. One more step keeps your clients' words safe: set up two-step sign-in now.")
    return signed_in
