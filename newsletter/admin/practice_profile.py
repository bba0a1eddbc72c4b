"""Admin: the practice profile (name, signature, address, contact details) shown in every issue."""
from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from newsletter import issues, practice
from newsletter.admin.blueprint import bp
from newsletter.extensions import db
from newsletter.subscriptions import InvalidEmail, normalize_email


class PracticeProfileForm(FlaskForm):
    practice_name = StringField("Practice name", validators=[DataRequired("Please enter the practice's name."), Length(max=200)])
    therapist_name = StringField("Your name as readers see it", validators=[DataRequired("Please enter your name."), Length(max=200)])
    credentials = StringField("Credentials (one line)", validators=[Optional(), Length(max=300)])
    tagline = StringField("Tagline", validators=[Optional(), Length(max=300)])
    signature = TextAreaField("Signature (the lines under each article; the first one is your name)",
                              validators=[DataRequired("Please enter at least your name."), Length(max=1000)])
    postal_address = StringField("Postal address (shown in every mail's footer)",
                                 validators=[DataRequired("Mail to readers must show a postal address."), Length(max=300)])
    website = StringField("Website", validators=[Optional(), Length(max=300)])
    email = EmailField("Contact e-mail", validators=[Optional(), Length(max=320)])
    phone = StringField("Phone", validators=[Optional(), Length(max=40)])


FIELDS = ("practice_name", "therapist_name", "credentials", "tagline", "signature", "postal_address", "website",
          "email", "phone")


@bp.route("/practice", methods=["GET", "POST"])
def practice_profile():
    profile = practice.profile()
    form = PracticeProfileForm(obj=profile)
    if request.method == "POST" and form.validate() and _valid_contact(form):
        stored = practice.ensure_profile()
        for name in FIELDS:
            value = (getattr(form, name).data or "").strip()
            setattr(stored, name, value if name == "signature" else " ".join(value.split()))
        db.session.flush()
        count = issues.rerender_unsent()
        db.session.commit()
        flash(f"Saved. {count} unsent issue{'s' if count != 1 else ''} now show the new details." if count else "Saved.")
        return redirect(url_for("admin.practice_profile"))
    status = 400 if request.method == "POST" else 200
    return render_template("admin/practice_profile.html", form=form), status


def _valid_contact(form: PracticeProfileForm) -> bool:
    if form.email.data:
        try:
            form.email.data = normalize_email(form.email.data)
        except InvalidEmail as exc:
            form.email.errors.append(str(exc))
            return False
    return True
