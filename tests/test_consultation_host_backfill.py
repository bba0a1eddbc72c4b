"""The migration that gives each clinician of a group practice their own calendar (f8b9c0d1e2a3), as it really runs:
a database at the revision before it, holding consultations as that release stored them (one start time
practice-wide), upgraded to head. A consultation of an inquiry assigned to a clinician becomes theirs, so it
still takes that time from them, and only from them; one nobody with a profile answers stays the practice's."""
from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from newsletter.core import crypto, tokens
from newsletter.core.config import settings as app_settings
from newsletter.core.extensions import db
from newsletter.inquiries import booking
from newsletter.models import Clinician, Consultation
from tests.helpers import ONE_SLOT_A_DAY, submit

BEFORE_HOSTS = "e7a8b9c0d1f2"
WHEN = datetime(2026, 11, 2, 15, 30)
PEOPLE = ("INSERT INTO admin_users (id, email, password_hash, role, created_at) "
          "VALUES (:id, :email, 'not-a-usable-hash', 'clinician', :when)")
PROFILE = ("INSERT INTO clinicians (id, admin_id, name, slug, consultation_hours, created_at) "
           "VALUES (:id, :admin_id, :name, :slug, :hours, :when)")
INQUIRY = ("INSERT INTO inquiries (id, name, email, preferred_contact, partner_name, heard_from, heard_from_other, "
           "voicemail_ok, text_ok, discreet, source, status, urgent, spam, spam_reason, created_at, assignee_id) "
           "VALUES (:id, :name, :email, :contact, :empty, :empty, :empty, :no, :no, :no, 'contact', "
           "'consultation_scheduled', :false, :false, '', :when, :assignee_id)")
CONSULTATION = "INSERT INTO consultations (inquiry_id, starts_at, created_at) VALUES (:inquiry_id, :starts_at, :when)"
MAYAS, THE_PRACTICES = 10, 11  # inquiry ids: one assigned to Maya, one to nobody


def tomorrow_at(hour: int, minute: int) -> datetime:
    """A start tomorrow in the practice's timezone, as stored: naive UTC."""
    tz = ZoneInfo(app_settings().practice_timezone)
    local = datetime.combine(datetime.now(tz).date() + timedelta(days=1), time(hour, minute), tzinfo=tz)
    return local.astimezone(UTC).replace(tzinfo=None)


def _old_rows() -> list[tuple[str, dict]]:
    """Maya and Leo, each with the same hours; Maya's client booked tomorrow 9:00, an unassigned inquirer 9:15."""
    common = {"when": WHEN, "empty": crypto.encrypt(""), "no": crypto.encrypt("0"), "false": False,
              "contact": crypto.encrypt("email")}
    rows = []
    for n, slug in enumerate(("maya", "leo"), start=1):
        rows.append((PEOPLE, {**common, "id": n + 1, "email": f"{slug}@newsletter.test"}))
        rows.append((PROFILE, {**common, "id": n, "admin_id": n + 1, "name": slug.title(), "slug": slug,
                               "hours": ONE_SLOT_A_DAY}))
    for inquiry_id, assignee_id, start in ((MAYAS, 2, tomorrow_at(9, 0)), (THE_PRACTICES, None, tomorrow_at(9, 15))):
        rows.append((INQUIRY, {**common, "id": inquiry_id, "assignee_id": assignee_id, "name": crypto.encrypt("Dana Reyes"),
                               "email": crypto.encrypt(f"{inquiry_id}@example.com")}))
        rows.append((CONSULTATION, {**common, "inquiry_id": inquiry_id, "starts_at": start}))
    return rows


@pytest.fixture
def upgraded(upgrade_from):
    """The app on a new database that held those rows at BEFORE_HOSTS and was then upgraded to head."""
    return upgrade_from(BEFORE_HOSTS, _old_rows)


def offered_to(app, email: str, slug: str) -> list[str]:
    """The times the booking page offers a new inquirer of this clinician."""
    with app.app_context():
        token = tokens.make(booking.TOKEN_PURPOSE, submit(email=email, clinician=slug).inquiry_id)
    page = app.test_client().get(f"/consultation/{token}").get_data(as_text=True)
    return re.findall(r'name="slot" value="([^"]+)"', page)


def test_a_booked_consultation_becomes_its_clinicians_and_takes_the_time_only_from_them(upgraded):
    with upgraded.app_context():
        hosts = dict(db.session.execute(select(Consultation.inquiry_id, Clinician.slug)
                                        .outerjoin(Clinician, Clinician.id == Consultation.host_id)).all())
        nine, quarter_past = (start.strftime("%Y-%m-%dT%H:%M") for start in (tomorrow_at(9, 0), tomorrow_at(9, 15)))
    assert hosts == {MAYAS: "maya", THE_PRACTICES: None}

    mayas = offered_to(upgraded, "kim@example.com", "maya")
    assert nine not in mayas and quarter_past in mayas, "Maya's own booking takes 9:00; the practice's is not hers"
    leos = offered_to(upgraded, "lee@example.com", "leo")
    assert nine in leos and quarter_past in leos
