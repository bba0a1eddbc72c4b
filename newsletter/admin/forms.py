from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    EmailField,
    PasswordField,
    RadioField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Regexp

from newsletter.mail.addresses import Address

# No control characters (NUL, line breaks...): the database refuses some, and no code has them.
_PRINTABLE = Regexp(r"^[^\x00-\x1f\x7f]*\Z", message="Please type this without special characters.")


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[Address()])
    password = PasswordField("Password", validators=[DataRequired("Please type your password."), Length(max=1000)])


class CodeForm(FlaskForm):
    code = StringField("Code", validators=[
        DataRequired("Please type the 6-digit code from your authenticator app, or a recovery code."),
        Length(max=40, message="That is longer than any code."), _PRINTABLE])


class InquiryNoteForm(FlaskForm):
    body = TextAreaField("Add a note", validators=[DataRequired("Please write the note first."),
                                                   Length(max=5000, message="Please keep a note under 5,000 characters.")])


class ReaderImportForm(FlaskForm):
    csv_file = FileField("CSV file (first line: email,name)", validators=[FileRequired("Please choose a CSV file.")])
    consent = RadioField("How did these readers agree to receive the newsletter?", choices=[
        SelectChoice("ask", "Ask each of them to confirm by email (recommended)"),
        SelectChoice("elsewhere", "They already consented elsewhere: add them as active readers"),
    ], validators=[DataRequired("Please choose how these readers agreed.")])
