"""Clinician profiles: made and edited in the admin (the owner edits all), shown on the public team page.

No Flask request and no Celery here; callers commit.
"""
from __future__ import annotations

from sqlalchemy import select

from newsletter.accounts import people
from newsletter.core.extensions import db
from newsletter.inquiries import photos, routing
from newsletter.models import AdminUser, Clinician

# What a profile form edits, besides whose profile it is.
FIELDS = ("name", "slug", "credentials", "bio", "works_with", "languages", "fees", "accepting_clients",
          "consultation_hours", "signature", "booking_link")
# Typed one line a value: spaces squeezed. The others keep their lines.
_ONE_LINE = {"name", "slug", "credentials", "works_with", "languages", "fees", "booking_link"}


class SlugTaken(ValueError):
    """Another clinician already has this web name."""


class ProfileExists(ValueError):
    """This person already has a profile."""


def every_profile() -> list[tuple[Clinician, bool]]:
    """The owner's list: the profile of each person not removed, by name, and whether they have joined. A profile
    made for someone invited stays in reach before they accept; only those who joined are routed to or shown
    publicly (routing.team)."""
    return [(clinician, joined) for clinician, joined in db.session.execute(
        select(Clinician, people.joined()).join(AdminUser, AdminUser.id == Clinician.admin_id)
        .where(people.present()).order_by(Clinician.name, Clinician.id))]


def without_profile() -> list[AdminUser]:
    """People of the practice (not removed) who could see clients and have no profile yet (an editor never does)."""
    taken = select(Clinician.admin_id)
    return list(db.session.scalars(select(AdminUser).where(
        AdminUser.role.in_(routing.ASSIGNABLE_ROLES), people.present(), AdminUser.id.not_in(taken),
    ).order_by(AdminUser.email)))


def create(admin_id: int, values: dict) -> Clinician:
    """A new profile for this person; ProfileExists or SlugTaken."""
    if db.session.scalar(select(Clinician.id).where(Clinician.admin_id == admin_id)) is not None:
        raise ProfileExists(admin_id)
    clinician = Clinician(admin_id=admin_id)
    update(clinician, values)
    db.session.add(clinician)
    db.session.flush()
    return clinician


def update(clinician: Clinician, values: dict) -> None:
    """Set the profile's fields from the form's values; SlugTaken when another has the web name."""
    other = db.session.scalar(select(Clinician).where(Clinician.slug == values["slug"]))  # anyone's, removed too
    if other is not None and other is not clinician:
        raise SlugTaken(values["slug"])
    for name in FIELDS:
        value = values.get(name)
        if isinstance(value, str):
            value = " ".join(value.split()) if name in _ONE_LINE else "\n".join(
                line.rstrip() for line in value.strip().splitlines())
        setattr(clinician, name, value if value is not None else "")


def set_photo(clinician: Clinician, data: bytes) -> None:
    """Their photo from an uploaded file, re-encoded (photos.reencode); photos.PhotoRefused leaves the old one."""
    jpeg = photos.reencode(data)
    clinician.photo, clinician.photo_version = jpeg, photos.version(jpeg)


def remove_photo(clinician: Clinician) -> None:
    clinician.photo, clinician.photo_version = None, ""


def photo(clinician_id: int, version: str) -> bytes | None:
    """The stored photo when this is its current version (an old URL names nothing)."""
    return db.session.scalar(select(Clinician.photo).where(
        Clinician.id == clinician_id, Clinician.photo_version == version, Clinician.photo.is_not(None)))
