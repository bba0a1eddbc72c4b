"""Who answers an inquiry in a group practice: the clinician it names, or "whoever fits" (the coordinator,
or in turn an accepting clinician who works with what was asked, as the practice chooses), and handing it
on to someone else. A practice with fewer than two clinician profiles is solo: nothing here applies and
the owner answers everything through the practice inbox, as before.

Only people in the practice now (`people.member`: not removed, invitation accepted) are routed to, handed an
inquiry, told of a missed day or shown on the team page; an inquiry left with someone removed is reminded to
whoever hears of missed days.

No Flask request and no Celery here; callers commit.
"""
from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import func, select

from newsletter.accounts import people
from newsletter.accounts.practice import profile
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.inquiries import business_days, composing, states
from newsletter.mail import compose, outgoing
from newsletter.models import AdminUser, Clinician, Inquiry, InquiryNote, utcnow

ROUTING_CHOICES = {"coordinator": "The intake coordinator",
                   "round_robin": "Each accepting clinician in turn, among those who work with what was asked"}
ASSIGNEE_MAIL_CHOICES = {"full": "The whole inquiry, to their own inbox",
                         "notice": "Only a notice that links to the admin"}
# Who may be handed an inquiry (an editor never sees one).
ASSIGNABLE_ROLES = ("owner", "coordinator", "clinician")
HANDOFF_KIND = "inquiry_handoff"


class UnknownClinician(ValueError):
    """The contact form named a clinician the practice does not have."""


class NotAssignable(ValueError):
    """That person cannot be handed an inquiry (no such person, or an editor)."""


def team() -> list[Clinician]:
    """Every clinician profile of someone in the practice now, by name."""
    return list(db.session.scalars(_profiles().order_by(Clinician.name, Clinician.id)))


def _profiles():
    """The clinician profiles of people in the practice now (people.member)."""
    return select(Clinician).join(AdminUser, AdminUser.id == Clinician.admin_id).where(people.member())


def is_group() -> bool:
    """Two clinicians or more: the team page, the contact form's clinician choice and routing show."""
    return (db.session.scalar(select(func.count()).select_from(_profiles().subquery())) or 0) >= 2


def by_slug(slug: str) -> Clinician | None:
    """The clinician the contact form can name by this web name (someone removed or not yet joined: None)."""
    return db.session.scalar(_profiles().where(Clinician.slug == slug)) if slug else None


def clinician_of(admin_id: int | None) -> Clinician | None:
    """This person's profile, if they have one (still there once they have left: their name in the history)."""
    return db.session.scalar(select(Clinician).where(Clinician.admin_id == admin_id)) if admin_id else None


def answering(inquiry: Inquiry | None) -> Clinician | None:
    """The profile of whoever answers the inquiry now: its assignee's, while they are in the practice. Their
    hours, calendar, booking link and signature apply to it; once they have left, the practice's do."""
    if inquiry is None or inquiry.assignee_id is None:
        return None
    return db.session.scalar(_profiles().where(Clinician.admin_id == inquiry.assignee_id))


def offers_waitlist(slug: str = "") -> bool:
    """Whether the contact form (for this clinician, or for the practice) offers the waitlist instead."""
    clinician = by_slug(slug) if is_group() else None
    return not (clinician.accepting_clients if clinician else profile().accepting_clients)


def route(inquiry: Inquiry, slug: str = "", now: datetime | None = None) -> None:
    """Assign a new inquiry: to the clinician it names, else as the practice chose for "whoever fits".

    Raises UnknownClinician for a slug the practice does not have (in a group practice; a solo practice
    ignores the field). Spam is left unassigned and takes nobody's turn."""
    if not is_group():
        return
    named = by_slug(slug)
    if slug and named is None:
        raise UnknownClinician(slug[:60])
    if inquiry.spam:
        return
    if named is not None:
        inquiry.assignee_id = named.admin_id
        return
    chosen = _next_in_turn(inquiry) if profile().routing == "round_robin" and not inquiry.waitlist else None
    if chosen is not None:
        chosen.last_assigned_at = now or utcnow()
        inquiry.assignee_id = chosen.admin_id
    else:
        inquiry.assignee_id = _first_with_role("coordinator")


def _next_in_turn(inquiry: Inquiry) -> Clinician | None:
    """The accepting clinician who works with what was asked and got an inquiry longest ago (any accepting
    one when nobody's tags match the message). On PostgreSQL the rows are locked until the commit, so two
    inquiries arriving together take turns rather than both going to the same person."""
    accepting = list(db.session.scalars(_profiles().where(Clinician.accepting_clients.is_(True))
                                        .order_by(Clinician.id).with_for_update(of=Clinician)))
    words = f"{inquiry.message or ''} {'couples' if inquiry.partner_name else ''}"
    matching = [c for c in accepting if any(_asks_for(tag, words) for tag in c.tags)] or accepting
    return min(matching, key=lambda c: (c.last_assigned_at or datetime.min, c.id), default=None)


def _asks_for(tag: str, text: str) -> bool:
    """"couples" matches "couple" and "couples"; "EFT" matches "eft"; a whole word at its start."""
    stem = tag.lower().removesuffix("s")
    return bool(stem) and re.search(rf"\b{re.escape(stem)}", text, re.IGNORECASE) is not None


def _first_with_role(role: str, besides: int | None = None) -> int | None:
    """The first person in the practice now with this role (other than `besides`), by id."""
    return db.session.scalar(select(AdminUser.id).where(AdminUser.role == role, people.member(),
                                                        AdminUser.id != besides)  # None: IS NOT NULL, anyone
                             .order_by(AdminUser.id).limit(1))


def _member(admin_id: int | None) -> AdminUser | None:
    """This person, if they are in the practice now."""
    return db.session.scalar(select(AdminUser).where(AdminUser.id == admin_id, people.member())) if admin_id else None


def forward_to(inquiry: Inquiry) -> tuple[str, bool]:
    """Where an inquiry's forward and reminders go and whether it is only a notice: the assignee's own inbox (in
    full or as a notice, as the practice chose; once they have left the practice, whoever hears of a missed day),
    else the practice inbox (INQUIRY_FORWARD_MODE)."""
    if inquiry.assignee_id is None:
        return composing.practice_inbox(), settings().inquiry_forward_mode == "notice"
    assignee = _member(inquiry.assignee_id)
    return (assignee.email if assignee else escalation_to(inquiry)), profile().assignee_mail == "notice"


def forward_and_ack(inquiry: Inquiry) -> list[int]:
    """Queue an inquiry's forward (to whoever answers it) and acknowledgement, which names the clinician it
    went to (the one the inquirer chose, or the one whose turn it was); the mail ids."""
    to, notice_only = forward_to(inquiry)
    clinician = answering(inquiry)
    return composing.queue_forward_and_ack(inquiry, to, notice_only=notice_only,
                                           replier=clinician.name if clinician else "")


def practice_copy_to(inquiry: Inquiry) -> str:
    """Where the practice's copy of mail about an inquiry goes: its assignee, else the practice inbox."""
    return forward_to(inquiry)[0]


def organizer(inquiry: Inquiry) -> compose.Mailbox:
    """Who a consultation is with: the assigned clinician (their address and name), else the practice."""
    clinician = answering(inquiry)
    if clinician is None:
        return compose.Mailbox(compose.practice_inbox().address, profile().therapist_name)
    return compose.Mailbox(forward_to(inquiry)[0], clinician.name)


def assignable() -> list[AdminUser]:
    """The people an inquiry can be handed to (in the practice now, not an editor), by address."""
    return list(db.session.scalars(select(AdminUser).where(AdminUser.role.in_(ASSIGNABLE_ROLES), people.member())
                                   .order_by(AdminUser.email)))


def display_name(admin: AdminUser) -> str:
    """A person's clinician name, else their address."""
    clinician = clinician_of(admin.id)
    return clinician.name if clinician else admin.email


def names() -> dict[int, str]:
    """Every person's clinician name, else their address, by id: who answers each row of the inquiry list."""
    rows = db.session.execute(select(AdminUser.id, AdminUser.email, Clinician.name)
                              .outerjoin(Clinician, Clinician.admin_id == AdminUser.id))
    return {admin_id: name or email for admin_id, email, name in rows}


def assignee_name(inquiry: Inquiry) -> str:
    """Who answers the inquiry, by name, or "" while nobody is assigned."""
    person = db.session.get(AdminUser, inquiry.assignee_id) if inquiry.assignee_id else None
    return display_name(person) if person else ""


def reassign(inquiry: Inquiry, admin_id: int, note: str, by_admin_id: int | None) -> list[int]:
    """Hand an inquiry to someone else: a handoff note on it, a mail telling them, and the reply-by clock
    with its reminders starting over for them (the day promised to the inquirer stays). Returns the mail ids;
    NotAssignable for an editor, someone not (or no longer) in the practice, or nobody."""
    new = _member(admin_id)
    if new is None or new.role not in ASSIGNABLE_ROLES:
        raise NotAssignable(admin_id)
    old = db.session.get(AdminUser, inquiry.assignee_id) if inquiry.assignee_id else None
    inquiry.assignee_id, inquiry.nudged_at, inquiry.escalated_at = new.id, None, None
    handoff = f"Handed from {display_name(old) if old else 'the practice'} to {display_name(new)}."
    note = note.strip()
    db.session.add(InquiryNote(inquiry_id=inquiry.id, admin_id=by_admin_id,
                               body=f"{handoff}\n{note}" if note else handoff))
    states.log(inquiry, by_admin_id, "handed off")
    row = outgoing.queue_template(HANDOFF_KIND, to=new.email, inquiry=inquiry, note=note,
                                  admin_url=composing.admin_url(inquiry), handoff=handoff,
                                  reply_by=_long_date(inquiry))
    return [row.id]


def _long_date(inquiry: Inquiry) -> str:
    return business_days.long_date(inquiry.reply_by) if inquiry.reply_by else ""


def escalation_to(inquiry: Inquiry) -> str:
    """Who hears of an inquiry whose assignee let the reply-by day pass: always someone other than the assignee,
    or a coordinator's own inquiry would be told only to her. The coordinator, else an owner (the first by id
    who is not the assignee), else the practice inbox: that is left only when the assignee is the practice's
    one owner and there is no coordinator, and the practice's address is hers. Only people in the practice now
    count, so an inquiry left with someone removed reaches the coordinator or an owner."""
    for role in ("coordinator", "owner"):
        person_id = _first_with_role(role, besides=inquiry.assignee_id)
        if person_id is not None:
            return db.session.get(AdminUser, person_id).email
    return composing.practice_inbox()
