"""Forms on the inquiry page: answering the inquirer, recording a call, moving it along the pipeline."""
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, SelectField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from newsletter.inquiries.states import ACTION_LABELS, MANUAL_ACTIONS

REPLY_MAX = 10_000
CALL_NOTE_MAX = 2_000


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
