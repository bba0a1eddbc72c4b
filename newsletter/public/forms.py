"""Public forms. Field names are part of the interface (SPEC.md): keep them."""
from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError

from newsletter.mail import addresses
from newsletter.mail.addresses import Address
from newsletter.models.inquiries import HEARD_FROM


class HoneypotMixin:
    # Hidden from people by CSS; bots fill it. A filled honeypot is answered like success: a signup is
    # stored nowhere, an inquiry goes to the spam folder (never forwarded, never silently lost).
    website = StringField("Leave this field empty", validators=[Optional(), Length(max=200)])

    @property
    def is_bot(self) -> bool:
        return bool(self.website.data)


class SubscribeForm(HoneypotMixin, FlaskForm):
    email = EmailField("Email address", validators=[Address()])
    name = StringField("First name (optional)", validators=[Optional(), Length(max=100, message="Please keep the name under 100 characters.")])
    # Slugs of the lists ticked (shown only when there is more than one); checked by readers.lists in the view.
    lists = SelectMultipleField("Newsletters", choices=[], validate_choice=False)


class ContactForm(HoneypotMixin, FlaskForm):
    name = StringField("Your name", validators=[DataRequired("Please tell us your name."),
                                                Length(max=100, message="Please keep the name under 100 characters.")])
    # Optional fields (README lists them): partner_name, heard_from, heard_from_other, voicemail_ok, text_ok, discreet.
    partner_name = StringField("Your partner's first name (optional)", validators=[
        Optional(), Length(max=60, message="Please keep your partner's name under 60 characters.")])
    email = EmailField("Email address", validators=[Address()])
    phone = TelField("Phone (optional)", validators=[
        Optional(), Length(max=40, message="Please keep the phone number under 40 characters."),
        Regexp(r"^[0-9+().\- ]+\Z", message="Please use only digits, spaces and + ( ) - in the phone number."),
    ])
    preferred_contact = RadioField("How would you like us to reach you?", default="email",
                                   choices=[SelectChoice("email", "Email"), SelectChoice("phone", "Phone")],
                                   validators=[DataRequired("Please choose email or phone.")])
    message = TextAreaField("How can we help?", validators=[
        DataRequired("Please write a short message."),
        Length(max=4000, message="Please keep the message under 4,000 characters."),
    ])
    # An unknown "heard_from" (only a bot sends one) is stored as "not said" by the service.
    heard_from = SelectField("How did you hear about us? (optional)", default="", validate_choice=False,
                             choices=[SelectChoice("", "Choose one")]
                             + [SelectChoice(key, label) for key, label in HEARD_FROM.items()])
    heard_from_other = StringField("Where did you hear about us? (optional)", validators=[
        Optional(), Length(max=100, message="Please keep this under 100 characters.")])
    voicemail_ok = BooleanField("It's fine to leave me a voicemail")
    text_ok = BooleanField("It's fine to send me a text message")
    discreet = BooleanField("Please keep e-mail subject lines and the sender's name discreet")
    # A group practice's clinician (a slug; "" for whoever fits). Choices and the check of an unknown slug
    # come from the view (contact.py), which leaves the field out in a solo practice.
    clinician = SelectField("Who would you like to see? (optional)", default="", validate_choice=False,
                            choices=[SelectChoice("", "Whoever fits best")],
                            validators=[Optional(), Length(max=60, message="Please choose from the list.")])

    def validate_preferred_contact(self, field) -> None:
        if field.data == "phone" and not (self.phone.data or "").strip():
            raise ValidationError("Please add a phone number, or choose email.")


EVERY_ISSUE, MONTHLY = "each", "monthly"


class PreferencesForm(FlaskForm):
    lists = SelectMultipleField("Newsletters", choices=[], validate_choice=False)
    # Absent (an older page, the address form): left as it is.
    frequency = RadioField("How often", default="", validate_choice=False,
                           choices=[SelectChoice(EVERY_ISSUE, "Each article as it comes out"),
                                    SelectChoice(MONTHLY, "One digest a month (on the 1st: the month's articles, "
                                                          "each with a short excerpt and a link)")])
    break_months = RadioField("Take a break", default="", validate_choice=False,
                              choices=[SelectChoice("", "No break"), SelectChoice("1", "1 month"),
                                       SelectChoice("2", "2 months"), SelectChoice("3", "3 months")])
    new_email = EmailField("New email address", validators=[addresses.Address(required=False)])

    def validate_frequency(self, field) -> None:
        if field.data not in ("", EVERY_ISSUE, MONTHLY):
            raise ValidationError("Please choose each article or a monthly digest.")
