"""An inquiry's status as one state machine: the table of (status, action) -> status, and `transition`,
which every change of an inquiry's status goes through (a reply, a call, a booking, a cancelled
consultation, a waitlist invitation, a referral, closing, reopening, the spam folder).

The status is stored once, on the inquiry; the detail page, the lists and the dashboard all read it. The model
holds the rule: once stored, an inquiry's status set anywhere but in `transition` raises
models.inquiries.StatusNotByTransition. No Flask request and no Celery here; callers commit.
"""
from __future__ import annotations

from newsletter.core.extensions import db
from newsletter.models import Inquiry, InquiryAccess, utcnow
from newsletter.models.inquiries import changing_status

STATUS_LABELS = {
    "new": "New",
    "contacted": "Contacted",
    "consultation_scheduled": "Consultation scheduled",
    "client": "Became a client",
    "not_a_fit": "Not a fit",
    "referred": "Referred elsewhere",
    "no_reply": "No reply",
}
SAME = None  # the action leaves the status as it is

# action: {status it may start from: status it ends in}. A status missing from an action's row refuses it.
RULES: dict[str, dict[str, str | None]] = {
    "reply": {"new": "contacted", "contacted": SAME, "consultation_scheduled": SAME, "no_reply": "contacted",
              "client": SAME, "not_a_fit": SAME, "referred": SAME},
    "call": {"new": "contacted", "contacted": SAME, "consultation_scheduled": SAME, "no_reply": "contacted",
             "client": SAME, "not_a_fit": SAME, "referred": SAME},
    # An ended inquiry's booking link books nothing (booking.inquiry_for_token refuses it as revoked).
    "book": {"new": "consultation_scheduled", "contacted": "consultation_scheduled", "consultation_scheduled": SAME},
    "cancel_consultation": {"consultation_scheduled": "contacted", "new": SAME, "contacted": SAME, "no_reply": SAME,
                            "client": SAME, "not_a_fit": SAME, "referred": SAME},
    "invite": {"new": "contacted", "contacted": SAME, "consultation_scheduled": SAME, "no_reply": "contacted"},
    "refer": {"new": "referred", "contacted": "referred", "consultation_scheduled": "referred",
              "no_reply": "referred", "not_a_fit": "referred"},
    "mark_contacted": {"new": "contacted"},
    "mark_scheduled": {"new": "consultation_scheduled", "contacted": "consultation_scheduled",
                       "no_reply": "consultation_scheduled"},
    "close_client": {"new": "client", "contacted": "client", "consultation_scheduled": "client", "no_reply": "client"},
    "close_not_a_fit": {"new": "not_a_fit", "contacted": "not_a_fit", "consultation_scheduled": "not_a_fit",
                        "no_reply": "not_a_fit"},
    "close_no_reply": {"contacted": "no_reply", "consultation_scheduled": "no_reply"},
    "reopen": {"client": "contacted", "not_a_fit": "contacted", "referred": "contacted", "no_reply": "contacted"},
    "spam": dict.fromkeys(STATUS_LABELS, SAME),
    "not_spam": dict.fromkeys(STATUS_LABELS, SAME),
}
TRANSITIONS = {(start, action): end or start for action, row in RULES.items() for start, end in row.items()}

ACTION_LABELS = {
    "reply": "replied by e-mail",
    "call": "called",
    "book": "consultation booked",
    "cancel_consultation": "consultation cancelled",
    "invite": "invited from the waitlist",
    "refer": "Referred elsewhere",
    "mark_contacted": "Contacted",
    "mark_scheduled": "Consultation scheduled",
    "close_client": "Became a client",
    "close_not_a_fit": "Not a fit",
    "close_no_reply": "No reply",
    "reopen": "Reopen",
    "spam": "marked as spam",
    "not_spam": "not spam",
}
# The moves she makes by hand on the inquiry page (the others happen by replying, booking, inviting...).
MANUAL_ACTIONS = ("mark_contacted", "mark_scheduled", "close_client", "close_not_a_fit", "refer", "close_no_reply",
                  "reopen")
# Actions that answer the inquirer: each counts as the first response if none came before.
RESPONSES = frozenset({"reply", "call", "invite"})


class NotAllowed(Exception):
    """The table has no such move from the inquiry's status; str() says why, for the person who tried."""


def allows(inquiry: Inquiry, action: str) -> bool:
    """Whether `action` may happen to the inquiry now (its status, and the spam folder for spam/not_spam)."""
    if action == "spam" and inquiry.spam or action == "not_spam" and not inquiry.spam:
        return False
    return (inquiry.status, action) in TRANSITIONS


def refusal(inquiry: Inquiry, action: str) -> str:
    """Why `action` cannot happen to the inquiry, in words."""
    if action in ("spam", "not_spam"):
        return "It is already in the spam folder." if inquiry.spam else "It is not in the spam folder."
    what = ACTION_LABELS.get(action, action).lower()
    return f"“{what.capitalize()}” is not possible for an inquiry that is “{STATUS_LABELS[inquiry.status]}”."


def manual_actions(inquiry: Inquiry) -> list[tuple[str, str]]:
    """The (action, label) moves the inquiry page offers for the inquiry's status."""
    return [(action, ACTION_LABELS[action]) for action in MANUAL_ACTIONS if allows(inquiry, action)]


def transition(inquiry: Inquiry, action: str, admin_id: int | None) -> str:
    """Apply `action` to the inquiry: the status the table gives, the first response, the access log.
    Returns the new status; raises NotAllowed (and changes nothing) for a move not in the table."""
    if not allows(inquiry, action):
        raise NotAllowed(refusal(inquiry, action))
    target = TRANSITIONS[(inquiry.status, action)]
    now = utcnow()
    if inquiry.first_response_at is None and (action in RESPONSES or inquiry.status == "new" != target):
        inquiry.first_response_at = now
    log(inquiry, admin_id, ACTION_LABELS[action] if action not in MANUAL_ACTIONS else f"status: {target}")
    if target != inquiry.status:
        if action not in MANUAL_ACTIONS:
            log(inquiry, admin_id, f"status: {target}")
        with changing_status(inquiry):  # the one place the app sets a stored inquiry's status
            inquiry.status = target
        inquiry.status_changed_at = now
    if action in ("spam", "not_spam"):
        inquiry.spam = action == "spam"
        inquiry.spam_reason = "marked as spam by the practice" if inquiry.spam else ""
    return target


def log(inquiry: Inquiry, admin_id: int | None, action: str) -> None:
    """Write an entry to the inquiry's access log (who did what, never what anyone wrote)."""
    db.session.add(InquiryAccess(inquiry_id=inquiry.id, admin_id=admin_id, action=action[:60]))
