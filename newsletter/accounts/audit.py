"""The audit log of admin actions: written beside each action, read by the therapist at /admin/audit."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, case, cast, literal, select, union_all

from newsletter.core.extensions import db
from newsletter.models import AdminUser, AuditEntry, InquiryAccess

# What each action is called on the page, in plain words.
ACTIONS = {
    "sign_in": "Signed in",
    "sign_in_failed": "Sign-in refused: wrong email, password or code",
    "sign_in_refused_locked": "Sign-in refused: the account is locked",
    "lockout": "Account locked after too many failed sign-ins",
    "sign_out": "Signed out",
    "password_reset": "Password set from the command line",
    "second_factor_on": "Two-step sign-in turned on",
    "second_factor_reset": "Two-step sign-in removed",
    "recovery_code_used": "Signed in with a recovery code",
    "issue_send": "Issue sent now",
    "issue_schedule": "Issue scheduled",
    "issue_pause": "Sending paused",
    "issue_resume": "Sending resumed",
    "issue_cancel": "Issue canceled",
    "issue_delete": "Draft deleted",
    "reader_erase": "Reader erased",
    "reader_export": "Reader's data exported",
    "readers_import": "Readers imported",
    "subscribers_export": "Subscriber list exported",
    "inquiry": "Inquiry",
    "person_invited": "Person invited",
    "invitation_accepted": "Invitation accepted: password set, signed in",
    "person_changed": "Person's role changed",
    "person_removed": "Person removed from the practice",
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    action: str
    detail: str
    ip: str
    admin_email: str | None

    @property
    def label(self) -> str:
        return ACTIONS.get(self.action, self.action.replace("_", " ").capitalize())


def record(action: str, detail: str = "", admin_id: int | None = None, ip: str | None = None) -> None:
    """Add one entry to the log; it is saved with the caller's commit. A detail quotes what someone sent (an
    uploaded file's name, a title): any character that is not printable, a NUL that PostgreSQL refuses or a line
    break, is shown as "?"."""
    shown = "".join(character if character.isprintable() else "?" for character in (detail or "")[:500])
    db.session.add(AuditEntry(action=action[:40], detail=shown, admin_id=admin_id, ip=(ip or "")[:64]))


def _inquiry_name():
    return case((InquiryAccess.inquiry_id.is_(None), literal("one since deleted,")),
                else_=literal("#") + cast(InquiryAccess.inquiry_id, String))


def page(number: int, per_page: int = 50) -> tuple[list[Entry], bool]:
    """One page of the log, newest first, with the inquiry views kept in InquiryAccess; and whether more follow."""
    actions = select(AuditEntry.created_at.label("at"), AuditEntry.action.label("action"),
                     AuditEntry.detail.label("detail"), AuditEntry.ip.label("ip"),
                     AuditEntry.admin_id.label("admin_id"), AuditEntry.id.label("id"), literal(1).label("source"))
    inquiries = select(InquiryAccess.created_at, literal("inquiry"),
                       _inquiry_name() + " " + InquiryAccess.action,
                       literal(""), InquiryAccess.admin_id, InquiryAccess.id, literal(2))
    both = union_all(actions, inquiries).subquery()
    rows = db.session.execute(
        select(both.c.at, both.c.action, both.c.detail, both.c.ip, AdminUser.email)
        .outerjoin(AdminUser, AdminUser.id == both.c.admin_id)
        .order_by(both.c.at.desc(), both.c.source, both.c.id.desc())
        .offset(max(number - 1, 0) * per_page).limit(per_page + 1)
    ).all()
    return [Entry(*row) for row in rows[:per_page]], len(rows) > per_page
