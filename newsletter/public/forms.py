"""Public forms. Field names are part of the interface (SPEC.md): keep them."""
from flask_wtf import FlaskForm
from wtforms import EmailField, RadioField, StringField, TelField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp, ValidationError


class HoneypotMixin:
    # Hidden from people by CSS; bots fill it. A filled honeypot is answered like success: a signup is
    # stored nowhere, an inquiry goes to the spam folder (never forwarded, never silently lost).
    website = StringField("Leave this field empty", validators=[Optional(), Length(max=200)])

    @property
    def is_bot(self) -> bool:
        return bool(self.website.data)


class SubscribeForm(HoneypotMixin, FlaskForm):
    email = EmailField("Email address", validators=[DataRequired("Please enter your email address."),
                                                    Length(max=254, message="That email address is too long.")])
    name = StringField("First name (optional)", validators=[Optional(), Length(max=100, message="Please keep the name under 100 characters.")])


class ContactForm(HoneypotMixin, FlaskForm):
    name = StringField("Your name", validators=[DataRequired("Please tell us your name."),
                                                Length(max=100, message="Please keep the name under 100 characters.")])
    email = EmailField("Email address", validators=[DataRequired("Please enter your email address."),
                                                    Length(max=254, message="That email address is too long.")])
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

    def validate_preferred_contact(self, field) -> None:
        if field.data == "phone" and not (self.phone.data or "").strip():
            raise ValidationError("Please add a phone number, or choose email.")
