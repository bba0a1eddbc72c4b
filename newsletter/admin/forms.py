from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from newsletter.inquiries import STATUS_LABELS


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class InquiryStatusForm(FlaskForm):
    status = SelectField("Status", choices=[SelectChoice(value, label) for value, label in STATUS_LABELS.items()])


class InquiryNoteForm(FlaskForm):
    body = TextAreaField("Add a note", validators=[DataRequired("Please write the note first."),
                                                   Length(max=5000, message="Please keep a note under 5,000 characters.")])
