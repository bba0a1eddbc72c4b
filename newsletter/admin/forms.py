"""The admin's forms (Flask-WTF), one module for every admin page: sign-in, issues, inquiries, readers, the practice."""
from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    AnyOf,
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    ValidationError,
)

from newsletter.inquiries import booking, business_days, photos
from newsletter.inquiries import routing as inquiry_routing
from newsletter.inquiries.states import ACTION_LABELS, MANUAL_ACTIONS
from newsletter.mail.addresses import Address
from newsletter.publishing import articles, issues
from newsletter.readers import csv_files

# No control characters (NUL, line breaks...): the database refuses some, and no code has them.
_PRINTABLE = Regexp(r"^[^\x00-\x1f\x7f]*\Z", message="Please type this without special characters.")
REPLY_MAX = 10_000
CALL_NOTE_MAX = 2_000
FORMAT_CHOICES = [SelectChoice("", "Detect automatically"), SelectChoice(articles.TEXT, "Plain text"),
                  SelectChoice(articles.MARKDOWN, "Markdown")]
MAX_SOURCE = 200_000


def _without_nul(value: str | None) -> str | None:
    """A NUL character is never meant (PostgreSQL cannot store it in text): drop it."""
    return value.replace("\x00", "") if isinstance(value, str) else value


TEXT_FILTERS = [_without_nul]


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
    csv_file = FileField("CSV file: email,name, or an export from Mailchimp, Substack, Buttondown, Kit or listmonk",
                         validators=[FileRequired("Please choose a CSV file.")])
    consent = RadioField("Consent basis: how did these readers agree to receive the newsletter?", choices=[
        SelectChoice("ask", "Ask each of them to confirm by email (recommended)"),
        SelectChoice("elsewhere", "They already subscribed to my newsletter elsewhere: add them as active readers"),
    ], validators=[DataRequired("Please choose how these readers agreed.")])
    not_a_client_list = BooleanField(csv_files.ROSTER_CONFIRMATION)


class BlogFeedForm(FlaskForm):
    url = StringField("Your website's feed (RSS or Atom)", validators=[
        Length(max=500, message="That address is longer than any feed's."), _PRINTABLE])


class InquiryReplyForm(FlaskForm):
    body = TextAreaField("Your reply", validators=[
        DataRequired("Please write your reply first."),
        Length(max=REPLY_MAX, message=f"Please keep a reply under {REPLY_MAX:,} characters."),
    ])
    # Ticked on the page unless the inquiry is discreet or urgent (composing.quiet): see admin/inquiries.py.
    quote_inquiry = BooleanField("Quote their message below my reply")
    booking_link = BooleanField("Add a link where they can book a free 15-minute consultation")
    # "referred" when the reply is the kind close-out: sending it also closes the inquiry.
    close_as = HiddenField(validators=[Optional(), AnyOf(["referred"], message="Unknown way to close the inquiry.")])


class InquiryCallForm(FlaskForm):
    note = TextAreaField("Note about the call (optional)", validators=[
        Length(max=CALL_NOTE_MAX, message=f"Please keep the note under {CALL_NOTE_MAX:,} characters."),
    ])


class InquiryStatusForm(FlaskForm):
    """A move by hand (closing, reopening...); the state table decides whether it is allowed now."""
    action = SelectField("Move to", choices=[SelectChoice(action, ACTION_LABELS[action]) for action in MANUAL_ACTIONS])


class ImportForm(FlaskForm):
    file = FileField("Article file (.txt or .md)")
    source = TextAreaField("…or paste the article", validators=[Optional(), Length(max=MAX_SOURCE)], filters=TEXT_FILTERS)
    title = StringField("Title (optional: the first line is the title)", validators=[Optional(), Length(max=300)],
                        filters=TEXT_FILTERS)
    source_format = SelectField("Format", choices=FORMAT_CHOICES, validate_choice=True)


class IssueForm(FlaskForm):
    title = StringField("Title", validators=[DataRequired("Please give the issue a title."), Length(max=300)],
                        filters=TEXT_FILTERS)
    subject = StringField("Subject line (empty: the title)", validators=[Optional(), Length(max=300)],
                          filters=TEXT_FILTERS)
    preheader = StringField("Preheader (empty: the opening sentence)", validators=[Optional(), Length(max=500)],
                            filters=TEXT_FILTERS)
    source = TextAreaField("Article", validators=[DataRequired("The article is empty."), Length(max=MAX_SOURCE)],
                           filters=TEXT_FILTERS)
    source_format = SelectField("Format", choices=FORMAT_CHOICES[1:], validate_choice=True)

    def content(self) -> issues.Content:
        return issues.Content(title=self.title.data, subject=self.subject.data or "",
                              preheader=self.preheader.data or "", source=self.source.data,
                              source_format=self.source_format.data)


class TestSendForm(FlaskForm):
    to = EmailField("Send a test copy to", validators=[Address()])


class ScheduleForm(FlaskForm):
    send_at = DateTimeLocalField("Send on", format="%Y-%m-%dT%H:%M", validators=[Optional()])
    # List slugs (offered once there are two lists); none ticked: the default list.
    lists = SelectMultipleField("Send to", choices=[], validate_choice=False)


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
    email = EmailField("Contact e-mail", validators=[Address(required=False)])
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


class ClickCountsForm(FlaskForm):
    count_clicks = BooleanField("Count clicks on the links in my issues (how many per link; never who clicked)")


class ReplyUploadForm(FlaskForm):
    message = FileField("A reader's reply, saved from your mail program (.eml)",
                        validators=[FileRequired("Please choose the saved reply (.eml).")])


ROLE_CHOICES = [SelectChoice("owner", "Owner: everything"),
                SelectChoice("coordinator", "Intake coordinator: every inquiry, bookings, waitlist"),
                SelectChoice("clinician", "Clinician: the inquiries assigned to them"),
                SelectChoice("editor", "Newsletter editor: the newsletter only")]


class PersonInviteForm(FlaskForm):
    email = EmailField("Their email", validators=[Address()])
    role = SelectField("Their role", choices=ROLE_CHOICES, default="clinician", validate_choice=False,
                       validators=[AnyOf([choice.value for choice in ROLE_CHOICES], "Please choose one of the roles.")])


class PersonChangeForm(FlaskForm):
    role = SelectField("Role", choices=ROLE_CHOICES, validate_choice=False,
                       validators=[AnyOf([choice.value for choice in ROLE_CHOICES], "Please choose one of the roles.")])
    may_write_newsletter = BooleanField("May write the newsletter (clinicians)")


class SetPasswordForm(FlaskForm):
    password = PasswordField("Choose a password", validators=[
        InputRequired("Please choose a password."),
        Length(min=10, max=1000, message="Please use at least 10 characters (a few words make a good one)."),
    ])


# -- a group practice: clinician profiles, routing, handing an inquiry on

_SLUG = Regexp(r"^[a-z0-9]+(?:-[a-z0-9]+)*\Z",
               message="Please use lowercase letters, digits and single hyphens, like “maya-lopez”.")
_WEB_LINK = Regexp(r"^https?://[^\s<>\"']+\Z", message="Please paste a full web address starting with https://.")


def _short(label: str, limit: int, *validators, area: bool = False):
    """An optional one-line (or, with `area`, multi-line) field of at most `limit` characters."""
    field = TextAreaField if area else StringField
    return field(label, validators=[Optional(), Length(max=limit, message=f"Please keep this under {limit:,} characters."),
                                    *([] if area else [_PRINTABLE]), *validators])


class ClinicianForm(FlaskForm):
    """A clinician's public profile."""

    name = StringField("Name as shown", validators=[DataRequired("Please give the name clients see."),
                                                    Length(max=100, message="Please keep the name under 100 characters."),
                                                    _PRINTABLE])
    slug = StringField("Web name (in the contact link)", validators=[DataRequired("Please choose a web name."),
                                                                     Length(max=60, message="Please keep it under 60 characters."),
                                                                     _SLUG])
    credentials = _short("Credentials", 200)
    bio = _short("A few words about their work", 2000, area=True)
    works_with = _short("Works with (comma-separated: couples, individuals, teens, EFT, trauma)", 400)
    languages = _short("Languages", 200)
    fees = _short("Fees and insurance", 400)
    accepting_clients = BooleanField("Accepting new clients (off: their contact form offers their waitlist)")
    consultation_hours = _short("Hours for free 15-minute consultations (a window a line, like Tuesday 14:00-16:00)",
                                2000, area=True)
    signature = _short("Reply signature (the lines their replies end with)", 500, area=True)
    booking_link = _short("Booking link (their own scheduler; empty: the practice's consultation page)", 300, _WEB_LINK)

    validate_consultation_hours = OfficeDaysForm.validate_consultation_hours


class PhotoForm(FlaskForm):
    """A clinician's photo for the team page: a JPEG or PNG, re-encoded before it is kept."""

    photo = FileField(f"Photo (JPEG or PNG, at most {photos.MAX_BYTES // (1024 * 1024)} MB)",
                      validators=[FileRequired("Please choose a photo.")])


class NewClinicianForm(ClinicianForm):
    admin_id = SelectField("Whose profile", coerce=int, choices=[], validate_choice=True)


class RoutingForm(FlaskForm):
    routing = RadioField("Inquiries for whoever fits go to", validators=[InputRequired("Please choose one.")],
                         choices=[SelectChoice(*item) for item in inquiry_routing.ROUTING_CHOICES.items()])
    assignee_mail = RadioField("A clinician's inquiries reach them as", validators=[InputRequired("Please choose one.")],
                               choices=[SelectChoice(*item) for item in inquiry_routing.ASSIGNEE_MAIL_CHOICES.items()])


class AssignForm(FlaskForm):
    assignee = SelectField("Hand it to", coerce=int, choices=[], validate_choice=True,
                           validators=[InputRequired("Please choose who answers it.")])
    note = TextAreaField("Handoff note (what they should know)", validators=[
        Optional(), Length(max=2000, message="Please keep the note under 2,000 characters.")])


def assign_form(inquiry, formdata=None) -> AssignForm:
    """The handoff form of an inquiry's page, its choices the people who may answer it."""
    form = AssignForm(formdata=formdata, assignee=inquiry.assignee_id)
    form.assignee.choices = [SelectChoice(person.id, inquiry_routing.display_name(person))
                             for person in inquiry_routing.assignable()]
    return form
