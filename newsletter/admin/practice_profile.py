"""Admin: the practice profile (name, signature, address, contact details) shown in every issue, and the
office days and holidays the reply-by clock counts."""
from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, IntegerField, SelectMultipleField, StringField, TextAreaField, widgets
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from newsletter.accounts import practice
from newsletter.admin.blueprint import bp
from newsletter.core.extensions import db
from newsletter.inquiries import booking, business_days
from newsletter.publishing import issues
from newsletter.readers.subscriptions import InvalidEmail, normalize_email


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


class OfficeDaysForm(FlaskForm):
    working_days = SelectMultipleField(
        "Days you answer inquiries", coerce=int,
        choices=[SelectChoice(day, name) for day, name in business_days.WEEKDAYS.items()],
        option_widget=widgets.CheckboxInput(), widget=widgets.ListWidget(prefix_label=False),
        validators=[DataRequired("Please choose at least one day.")],
    )
    holidays = TextAreaField("Holidays and days off (one date a line, like 2026-12-25 Christmas)",
                             validators=[Optional(), Length(max=5000, message="Please keep the list under 5,000 characters.")])

    consultation_hours = TextAreaField(
        "Hours for free 15-minute consultations (a window a line, like Tuesday 14:00-16:00)",
        validators=[Optional(), Length(max=2000, message="Please keep the hours under 2,000 characters.")])

    def validate_consultation_hours(self, field) -> None:
        try:
            booking.parse_hours(field.data or "")
        except booking.InvalidHours as exc:
            raise ValidationError(f"“{exc}” isn't like “Tuesday 14:00-16:00”: a weekday, then a start and end time.") from exc

    def validate_holidays(self, field) -> None:
        try:
            business_days.parse_holidays(field.data or "")
        except business_days.InvalidHoliday as exc:
            raise ValidationError(f"“{exc}” is not a date: please write it as YYYY-MM-DD, like 2026-12-25.") from exc


class NewClientsForm(FlaskForm):
    accepting_clients = BooleanField("I'm accepting new clients")
    waitlist_check_weeks = IntegerField(
        "While I'm not, ask waitlisted people every … weeks whether they still want a place",
        validators=[InputRequired("Please enter a number of weeks."),
                    NumberRange(min=1, max=52, message="Please choose between 1 and 52 weeks.")])


class ReferralsForm(FlaskForm):
    referral_colleagues = TextAreaField("Colleagues you refer to (one a line: name, what they do, phone or website)",
                                        validators=[Optional(), Length(max=5000, message="Please keep the list under 5,000 characters.")])
    low_cost_options = TextAreaField("Low-cost options (one a line)",
                                     validators=[Optional(), Length(max=5000, message="Please keep the list under 5,000 characters.")])


FIELDS = ("practice_name", "therapist_name", "credentials", "tagline", "signature", "postal_address", "website",
          "email", "phone")


@bp.get("/practice")
def practice_profile():
    return _page()


@bp.post("/practice")
def practice_profile_save():
    form = PracticeProfileForm(obj=practice.profile())
    if form.validate() and _valid_contact(form):
        stored = practice.ensure_profile()
        for name in FIELDS:
            value = (getattr(form, name).data or "").strip()
            setattr(stored, name, value if name == "signature" else " ".join(value.split()))
        db.session.flush()
        count = issues.rerender_unsent()
        db.session.commit()
        flash(f"Saved. {count} unsent issue{'s' if count != 1 else ''} now show the new details." if count else "Saved.")
        return redirect(url_for("admin.practice_profile"))
    return _page(form=form), 400


def _page(form: PracticeProfileForm | None = None, days_form: OfficeDaysForm | None = None,
          clients_form: NewClientsForm | None = None, referrals_form: ReferralsForm | None = None) -> str:
    profile = practice.profile()
    days_form = days_form or OfficeDaysForm(
        formdata=None, working_days=sorted(business_days.parse_working_days(profile.working_days)),
        holidays=profile.holidays, consultation_hours=profile.consultation_hours)
    return render_template("admin/practice_profile.html", form=form or PracticeProfileForm(formdata=None, obj=profile),
                           days_form=days_form, clients_form=clients_form or NewClientsForm(formdata=None, obj=profile),
                           referrals_form=referrals_form or ReferralsForm(formdata=None, obj=profile))


@bp.post("/practice/days")
def practice_days():
    """The working days and holidays that the reply-by day is counted in."""
    form = OfficeDaysForm()
    if not form.validate():
        return _page(days_form=form), 400
    stored = practice.ensure_profile()
    stored.working_days = business_days.format_working_days(set(form.working_days.data))
    stored.holidays = _lines(form.holidays.data)
    stored.consultation_hours = _lines(form.consultation_hours.data)
    db.session.commit()
    flash("Saved. New inquiries are promised a reply by a day counted on these days.")
    return redirect(url_for("admin.practice_profile"))


def _valid_contact(form: PracticeProfileForm) -> bool:
    if form.email.data:
        try:
            form.email.data = normalize_email(form.email.data)
        except InvalidEmail as exc:
            form.email.errors.append(str(exc))
            return False
    return True


@bp.post("/practice/clients")
def practice_clients():
    """The switch between taking new clients and offering the waitlist."""
    form = NewClientsForm()
    if not form.validate():
        return _page(clients_form=form), 400
    stored = practice.ensure_profile()
    stored.accepting_clients, stored.waitlist_check_weeks = form.accepting_clients.data, form.waitlist_check_weeks.data
    db.session.commit()
    flash("Saved. The contact page now invites new clients." if stored.accepting_clients
          else "Saved. The contact page now offers the waitlist.")
    return redirect(url_for("admin.practice_profile"))


@bp.post("/practice/referrals")
def practice_referrals():
    """The colleagues and low-cost options offered in a kind close-out."""
    form = ReferralsForm()
    if not form.validate():
        return _page(referrals_form=form), 400
    stored = practice.ensure_profile()
    stored.referral_colleagues = _lines(form.referral_colleagues.data)
    stored.low_cost_options = _lines(form.low_cost_options.data)
    db.session.commit()
    flash("Saved. The referral reply on each inquiry's page now lists these.")
    return redirect(url_for("admin.practice_profile"))


def _lines(text: str | None) -> str:
    return "\n".join(" ".join(line.split()) for line in (text or "").splitlines() if line.strip())
