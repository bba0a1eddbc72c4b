"""Who reaches what in the admin: one table of areas (each a set of admin endpoints) and the roles that reach
each, read by the admin blueprint's before_request (the one place it is enforced) and by the navigation.

An endpoint in no area is the owner's alone, so a page added later is closed to everyone else until it is
placed here. Which inquiries a clinician sees is one query scope, `inquiry_scope`, that every inquiry view
and the before_request use.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, select, true

from newsletter.core.extensions import db
from newsletter.models import AdminUser, Clinician, Inquiry
from newsletter.models.users import ROLES

OWNER, COORDINATOR, CLINICIAN, EDITOR = ROLES
EVERYONE = frozenset(ROLES)
# A clinician the owner allowed to write the newsletter (AdminUser.may_write_newsletter).
WRITER = "clinician who writes"

ROLE_LABELS = {OWNER: "Owner", COORDINATOR: "Intake coordinator", CLINICIAN: "Clinician", EDITOR: "Newsletter editor"}

# area: (who reaches it, its endpoints). The owner reaches every area and every endpoint in none.
AREAS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "own account": (EVERYONE, frozenset({
        "admin.home", "admin.logout", "admin.two_factor", "admin.two_factor_start", "admin.two_factor_confirm",
        "admin.two_factor_qr"})),
    # For a clinician only the inquiries assigned to them (inquiry_scope); another's answers 404.
    "inquiries": (frozenset({OWNER, COORDINATOR, CLINICIAN}), frozenset({
        "admin.inquiries", "admin.inquiry_detail", "admin.inquiry_status", "admin.inquiry_note",
        "admin.inquiry_reply", "admin.inquiry_call", "admin.inquiry_spam", "admin.consultation_cancel",
        "admin.inquiry_assign"})),
    "intake": (frozenset({OWNER, COORDINATOR}), frozenset({
        "admin.waitlist", "admin.waitlist_invite", "admin.inquiry_sources", "admin.clinicians_list"})),
    # A clinician's own profile, hours, signature and booking link (profile_scope: only their own).
    "own profile": (frozenset({OWNER, CLINICIAN}), frozenset({
        "admin.clinician_edit", "admin.clinician_save", "admin.clinician_photo", "admin.clinician_photo_remove"})),
    "newsletter writing": (frozenset({OWNER, EDITOR, WRITER}), frozenset({
        "admin.issues_list", "admin.issue_new", "admin.issue_new_import", "admin.issue_edit", "admin.issue_save",
        "admin.issue_autosave", "admin.issue_preview", "admin.issue_email", "admin.issue_test",
        "admin.issue_duplicate", "admin.issue_delete", "admin.blog_feed", "admin.blog_feed_check"})),
    "newsletter sending": (frozenset({OWNER, EDITOR}), frozenset({
        "admin.issue_schedule", "admin.issue_cancel", "admin.issue_sending_pause", "admin.issue_sending_resume",
        "admin.issue_sending_cancel", "admin.issue_sending_progress", "admin.reach_page", "admin.reach_reply",
        "admin.blog_feed_save"})),
    # Readers' addresses and exports, every mail sent, the audit log, settings (click counting too, in no area),
    # people: the owner's.
    "owner": (frozenset({OWNER}), frozenset({
        "admin.readers", "admin.reader_detail", "admin.reader_erase", "admin.reader_export", "admin.readers_export",
        "admin.readers_embed", "admin.readers_import", "admin.readers_import_upload", "admin.outbox",
        "admin.outbox_message", "admin.audit_log", "admin.doctor_report", "admin.sender_domain",
        "admin.sender_domain_check", "admin.practice_profile", "admin.practice_profile_save",
        "admin.practice_clients", "admin.practice_days", "admin.practice_referrals", "admin.people",
        "admin.person_invite", "admin.person_change", "admin.person_remove"})),
}

AREA_OF = {endpoint: area for area, (_, endpoints) in AREAS.items() for endpoint in endpoints}


def _kinds(user: AdminUser) -> set[str]:
    """The names a person answers to in the table: their role, and WRITER when allowed to write."""
    kinds = {user.role}
    if user.role == CLINICIAN and user.may_write_newsletter:
        kinds.add(WRITER)
    return kinds


def reaches(user: AdminUser, endpoint: str | None) -> bool:
    """Whether this person may open this admin endpoint at all (a clinician's inquiries: see inquiry_scope)."""
    if user.role == OWNER:
        return True
    area = AREA_OF.get(endpoint or "")
    return area is not None and bool(AREAS[area][0] & _kinds(user))


def sees_every_inquiry(user: AdminUser) -> bool:
    """The owner and the coordinator see (and hand out) every inquiry; a clinician only their own."""
    return user.role in (OWNER, COORDINATOR)


def inquiry_scope(user: AdminUser) -> ColumnElement[bool]:
    """The inquiries this person sees: a clinician those assigned to them, owner and coordinator all,
    anyone else none."""
    if sees_every_inquiry(user):
        return true()
    if user.role == CLINICIAN:
        return Inquiry.assignee_id == user.id
    return Inquiry.id.is_(None)


def sees_inquiry(user: AdminUser, inquiry_id: int) -> bool:
    """Whether the inquiry exists and is in this person's scope."""
    return db.session.scalar(select(Inquiry.id).where(Inquiry.id == inquiry_id, inquiry_scope(user))) is not None


def sees_profile(user: AdminUser, clinician_id: int) -> bool:
    """Whether the clinician profile exists and is this person's to edit: the owner any, a clinician their own."""
    mine = true() if user.role == OWNER else Clinician.admin_id == user.id
    return db.session.scalar(select(Clinician.id).where(Clinician.id == clinician_id, mine)) is not None


def own_profile_id(user: AdminUser) -> int | None:
    """A clinician's own profile (None for every other role, or before the owner made one)."""
    if user.role != CLINICIAN:
        return None
    return db.session.scalar(select(Clinician.id).where(Clinician.admin_id == user.id))


# The rows a URL names, each with who may see it: one outside a person's scope answers 404, as a missing one.
ROW_SCOPES = {"inquiry_id": sees_inquiry, "clinician_id": sees_profile}


def landing(user: AdminUser) -> str:
    """The page this person starts on: the owner's dashboard (readers, issues and inquiries together),
    else the inquiries, or for an editor the issues."""
    if user.role == OWNER:
        return "admin.home"
    return "admin.issues_list" if user.role == EDITOR else "admin.inquiries"
