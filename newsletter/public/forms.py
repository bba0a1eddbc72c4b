"""Public forms. Field names are part of the interface (SPEC.md): keep them."""
from flask_wtf import FlaskForm
from wtforms import EmailField, RadioField, StringField, TelField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional


class HoneypotMixin:
    # Hidden from people by CSS; bots fill it. A filled honeypot is answered like success and stored nowhere.
    website = StringField("Leave this field empty", validators=[Optional(), Length(max=200)])

    @property
    def is_bot(self) -> bool:
        return bool(self.website.data)


class SubscribeForm(HoneypotMixin, FlaskForm):
    email = EmailField("Email address", validators=[DataRequired("Please enter your email address."),
                                                    Length(max=254, message="That email address is too long.")])
    name = StringField("First name (optional)", validators=[Optional(), Length(max=100, message="Please keep the name under 100 characters.")])
