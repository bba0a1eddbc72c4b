"""Admin: the practice profile (name, signature, address, contact details) shown in every issue, and the
office days and holidays the reply-by clock counts."""
from __future__ import annotations

from flask import abort, flash, make_response, redirect, render_template, url_for

from newsletter.accounts import practice
from newsletter.admin.blueprint import bp
from newsletter.admin.forms import NewClientsForm, OfficeDaysForm, PracticeProfileForm, ReferralsForm
from newsletter.core.extensions import db
from newsletter.inquiries import business_days
from newsletter.publishing import issues

FIELDS = ("practice_name", "therapist_name", "credentials", "tagline", "signature", "postal_address", "website",
          "email", "phone")


@bp.get("/practice")
def practice_profile():
    return _page()


@bp.post("/practice")
def practice_profile_save():
    form, stored = _submitted(PracticeProfileForm, "form", obj=practice.profile())
    for name in FIELDS:
        value = (getattr(form, name).data or "").strip()
        setattr(stored, name, value if name == "signature" else " ".join(value.split()))
    db.session.flush()
    count = issues.rerender_unsent()
    return _saved(f"Saved. {count} unsent issue{'s' if count != 1 else ''} now show the new details." if count
                  else "Saved.")


def _submitted(form_class: type, slot: str, **kwargs):
    """The posted form, validated, and the stored profile to change; a form with errors is answered
    here: the page again with its messages (400), nothing changed."""
    form = form_class(**kwargs)
    if not form.validate():
        abort(make_response(_page(**{slot: form}), 400))
    return form, practice.ensure_profile()


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
    form, stored = _submitted(OfficeDaysForm, "days_form")
    stored.working_days = business_days.format_working_days(set(form.working_days.data))
    stored.holidays = _lines(form.holidays.data)
    stored.consultation_hours = _lines(form.consultation_hours.data)
    return _saved("Saved. New inquiries are promised a reply by a day counted on these days.")


@bp.post("/practice/clients")
def practice_clients():
    """The switch between taking new clients and offering the waitlist."""
    form, stored = _submitted(NewClientsForm, "clients_form")
    stored.accepting_clients, stored.waitlist_check_weeks = form.accepting_clients.data, form.waitlist_check_weeks.data
    return _saved("Saved. The contact page now invites new clients." if stored.accepting_clients
                  else "Saved. The contact page now offers the waitlist.")


@bp.post("/practice/referrals")
def practice_referrals():
    """The colleagues and low-cost options offered in a kind close-out."""
    form, stored = _submitted(ReferralsForm, "referrals_form")
    stored.referral_colleagues = _lines(form.referral_colleagues.data)
    stored.low_cost_options = _lines(form.low_cost_options.data)
    return _saved("Saved. The referral reply on each inquiry's page now lists these.")


def _saved(message: str):
    """Commit what the form changed and go back to the practice page, saying what it changes."""
    db.session.commit()
    flash(message)
    return redirect(url_for("admin.practice_profile"))


def _lines(text: str | None) -> str:
    return "\n".join(" ".join(line.split()) for line in (text or "").splitlines() if line.strip())
