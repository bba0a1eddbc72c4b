"""The people of a group practice: the owner invites someone with a role, the invitee sets a password from a
one-time link, the owner changes a role or removes a person (never the last owner).

A removed person's row stays (without a password, signed out everywhere) so the audit log and the inquiry access
log keep naming what they did. An invitation is a timed token naming the person and their session version:
setting the password raises the version, so the link works once.
"""
from __future__ import annotations

from sqlalchemy import ColumnElement, func, select

from newsletter.accounts import users
from newsletter.accounts.roles import CLINICIAN, OWNER
from newsletter.core import tokens
from newsletter.core.extensions import db
from newsletter.mail import outgoing
from newsletter.models import AdminUser, utcnow
from newsletter.models.users import ROLES

INVITATION = "invitation"
INVITATION_DAYS = 7


class PeopleError(ValueError):
    """A change the owner asked for that cannot be made; the message says why, in plain words."""


def current() -> list[AdminUser]:
    """Everyone in the practice now (invited or signed up), owners first."""
    order = {role: index for index, role in enumerate(ROLES)}
    people = db.session.scalars(select(AdminUser).where(present())).all()
    return sorted(people, key=lambda person: (order.get(person.role, len(order)), person.email))


def present() -> ColumnElement[bool]:
    """Not removed from the practice (an invitation not yet accepted included)."""
    return AdminUser.removed_at.is_(None)


def joined() -> ColumnElement[bool]:
    """Has set a password: signed up, or accepted their invitation."""
    return AdminUser.password_hash != ""


def member() -> ColumnElement[bool]:
    """The one condition for someone who is in the practice now: not removed, and (when invited) has set a
    password from the link. Only they are handed inquiries, hear of missed days, or show on the team page."""
    return present() & joined()


def count() -> int:
    """How many people are in the practice (1 for a solo practice)."""
    return db.session.scalar(select(func.count()).select_from(AdminUser).where(present())) or 0


def invite(email: str, role: str) -> AdminUser:
    """Make (or make again, for someone removed) a person with `role` and no password yet; the caller
    commits and mails `invitation_token`. Someone already in the practice is refused."""
    if role not in ROLES:
        raise PeopleError("Please choose one of the roles.")
    person = users.find_admin(email)
    if person is not None and person.removed_at is None and not person.invitation_pending:
        raise PeopleError(f"{person.email} is already in the practice.")
    if person is None:
        person = AdminUser(email=email.strip().lower(), password_hash="", session_version=0, failed_attempts=0)
        db.session.add(person)
    elif person.totp_secret_encrypted is not None:
        users.remove_second_factor(person)
    person.role, person.removed_at, person.may_write_newsletter = role, None, False
    person.password_hash = ""
    users.end_sessions(person)  # an earlier invitation's link stops working
    db.session.flush()
    return person


def invitation_token(person: AdminUser) -> str:
    return tokens.make(INVITATION, [person.id, person.session_version])


def queue_invitation(person: AdminUser, link: str, practice_name: str, invited_by: str) -> int:
    """The invitation mail with its one-time link; returns the mail's id."""
    message = outgoing.queue_template("admin_invitation", to=person.email, link=link, days=INVITATION_DAYS,
                                      role=person.role, practice_name=practice_name, invited_by=invited_by)
    db.session.flush()
    return message.id


def invitee_for(token: str) -> AdminUser:
    """The person an invitation link names while it is still unused; BadToken otherwise (expired or used: revoked)."""
    payload, _ = tokens.read_signed(INVITATION, token, INVITATION_DAYS * 86400)
    if not (isinstance(payload, list) and len(payload) == 2 and tokens.row_id(payload[0])
            and type(payload[1]) is int):
        raise tokens.BadToken()
    person = db.session.get(AdminUser, payload[0])
    if (person is None or person.removed_at is not None or not person.invitation_pending
            or person.session_version != payload[1]):
        raise tokens.BadToken(revoked=True)
    return person


def accept(person: AdminUser, password: str) -> None:
    """The invitee's own password (WeakPassword if too short); the link is used up. The caller commits."""
    if len(password) < users.MIN_PASSWORD_LENGTH:
        raise users.WeakPassword(f"The password must be at least {users.MIN_PASSWORD_LENGTH} characters long.")
    if not users.claim(person, (AdminUser.session_version == person.session_version) & (AdminUser.password_hash == ""),
                       session_version=person.session_version + 1):
        raise tokens.BadToken(revoked=True)  # the same link posted twice at once: the first one won
    users.set_admin(person.email, password)


def change(person: AdminUser, role: str, may_write_newsletter: bool) -> None:
    """A new role (and, for a clinician, whether they write the newsletter); the caller commits."""
    if role not in ROLES:
        raise PeopleError("Please choose one of the roles.")
    if person.role == OWNER and role != OWNER:
        _keep_an_owner(person)
    if person.role != role and not person.invitation_pending:  # (a pending invitation's link stays valid)
        users.end_sessions(person)  # pages open in their browser were drawn for the old role
    person.role = role
    person.may_write_newsletter = may_write_newsletter and role == CLINICIAN


def remove(person: AdminUser) -> None:
    """Take a person out of the practice: no password, no second factor, signed out everywhere."""
    if person.role == OWNER:
        _keep_an_owner(person)
    person.removed_at = utcnow()
    person.password_hash = ""
    users.remove_second_factor(person)


def _keep_an_owner(person: AdminUser) -> None:
    others = db.session.scalar(
        select(func.count()).select_from(AdminUser)
        .where(AdminUser.role == OWNER, member(), AdminUser.id != person.id)
    )
    if not others:
        raise PeopleError("The practice needs at least one owner who can sign in: make someone else an owner first.")


def active(person_id: int) -> AdminUser | None:
    person = db.session.get(AdminUser, person_id)
    return person if person is not None and person.removed_at is None else None
