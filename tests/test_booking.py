"""Free 15-minute consultations: weekly hours, the signed booking page, .ics invites to both sides,
cancelling, and a slot that is never booked twice, even by two people at the same moment; in a group
practice, each clinician's own calendar."""
from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from icalendar import Calendar
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.inquiries import booking
from newsletter.models import AdminUser, Consultation, Inquiry
from tests.helpers import ONE_SLOT_A_DAY, PRACTICE, clinician, queued, submit, text_of


def test_weekly_hours_are_read_and_mistakes_named():
    windows = booking.parse_hours("Tuesday 14:00-16:00\n\nthu 9:30 - 10:00")
    assert [(w.weekday, w.start.isoformat("minutes"), w.end.isoformat("minutes")) for w in windows] == [
        (2, "14:00", "16:00"), (4, "09:30", "10:00")]
    for bad in ("Someday 10:00-11:00", "Tuesday 16:00-14:00", "Tuesday 25:00-26:00", "Tuesday"):
        with pytest.raises(booking.InvalidHours):
            booking.parse_hours(bad)


def set_hours(client, hours: str, holidays: str = "") -> None:
    response = client.post("/admin/practice/days", data={"working_days": ["1", "2", "3", "4", "5"],
                                                         "holidays": holidays, "consultation_hours": hours})
    assert response.status_code == 302, response.get_data(as_text=True)


def local_now(app) -> datetime:
    return datetime.now(ZoneInfo(app.extensions["settings"].practice_timezone))


def test_slots_are_in_local_hours_skip_holidays_and_leave_two_hours_notice(auth, app, client):
    with app.app_context():
        auth.login(client)
    tomorrow = local_now(app).date() + timedelta(days=1)
    set_hours(client, ONE_SLOT_A_DAY, holidays=f"{tomorrow} Day off")

    with app.app_context():
        slots = booking.open_slots()
        local = [slot.replace(tzinfo=ZoneInfo("UTC")).astimezone(practice.timezone()) for slot in slots]
    assert {(s.hour, s.minute) for s in local} == {(9, 0), (9, 15)}
    assert tomorrow not in {s.date() for s in local}
    assert len({s.date() for s in local}) >= booking.DAYS_AHEAD - 1
    assert all(slot >= datetime.utcnow() + booking.MIN_NOTICE for slot in slots)


def test_bad_hours_are_refused_with_a_message(auth, app, client):
    with app.app_context():
        auth.login(client)

    response = client.post("/admin/practice/days", data={"working_days": ["1"], "consultation_hours": "Tues 2pm"})

    assert response.status_code == 400 and "“Tues 2pm” isn&#39;t like “Tuesday 14:00-16:00”" in response.get_data(as_text=True)


def offer(app, client, **inquiry) -> str:
    """Her reply carries a booking link; returns the link's path."""
    with app.app_context():
        inquiry_id = submit(**inquiry).inquiry_id
    client.post(f"/admin/inquiries/{inquiry_id}/reply", data={"confirmed": "yes", "body": "Let's talk.", "booking_link": "y"})
    with app.app_context():
        reply = queued("inquiry_reply")[-1]
    return re.search(r"http://newsletter.test(/consultation/\S+)", text_of(reply)).group(1)


def calendar_part(message):
    """The iMIP part: the last alternative of the message, text/calendar."""
    [part] = [p for p in message.walk() if p.get_content_type() == "text/calendar"]
    return part


def ics_of(message) -> str:
    return calendar_part(message).get_payload(decode=True).decode("utf-8")


def event_of(message):
    calendar = Calendar.from_ical(calendar_part(message).get_payload(decode=True))
    [event] = calendar.walk("VEVENT")
    return calendar, event


def test_a_person_books_from_the_link_both_get_an_invite_and_she_can_cancel(auth, app, client):
    with app.app_context():
        auth.login(client)
    set_hours(client, ONE_SLOT_A_DAY)
    path = offer(app, client, phone="720-555-0142")

    page = client.get(path).get_data(as_text=True)
    first_slot = re.search(r'name="slot" value="([^"]+)"', page).group(1)
    booked = client.post(path, data={"slot": first_slot}).get_data(as_text=True)

    assert "You're booked" in booked
    starts = datetime.strptime(first_slot, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC)
    with app.app_context():
        inquiry = db.session.scalar(select(Inquiry))
        assert inquiry.status == "consultation_scheduled"
        assert starts.replace(tzinfo=None) not in booking.open_slots()
        to_person, to_practice = queued("consultation_invite")
    assert to_person["To"].addresses[0].addr_spec == "dana@example.com" and to_practice["To"] == PRACTICE
    calendar, event = event_of(to_person)
    assert calendar["METHOD"] == "REQUEST" and event["STATUS"] == "CONFIRMED" and event["SEQUENCE"] == 0
    assert event.decoded("DTSTART") == starts and event.decoded("DTEND") == starts + timedelta(minutes=15)
    assert str(event["ATTENDEE"]) == "mailto:dana@example.com" and str(event["ORGANIZER"]) == f"mailto:{PRACTICE}"
    assert "calls you at 720-555-0142" in event["SUMMARY"] and "calls you at 720-555-0142" in event["DESCRIPTION"]
    assert "calls you at 720-555-0142" in text_of(to_person)
    # The practice's copy is a notice of the same event, not an invitation to answer its own meeting.
    practice_calendar, practice_event = event_of(to_practice)
    assert practice_calendar["METHOD"] == "PUBLISH" and "ATTENDEE" not in practice_event
    assert practice_event["UID"] == event["UID"] and "calls Dana Reyes at 720-555-0142" in practice_event["SUMMARY"]
    assert all(len(line.encode()) <= 75 for line in ics_of(to_person).split("\r\n"))
    again = client.post(path, data={"slot": first_slot})  # the link is used up: nothing booked twice
    assert again.status_code == 410 and "done its job" in again.get_data(as_text=True)

    detail = client.get(f"/admin/inquiries/{inquiry.id}").get_data(as_text=True)
    assert "Free consultation:" in detail
    assert client.post(f"/admin/inquiries/{inquiry.id}/consultation/cancel", data={"confirmed": "yes"}).status_code == 302

    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Consultation)) == 0
        assert starts.replace(tzinfo=None) in booking.open_slots()
        cancel_person, cancel_practice = queued("consultation_invite")[2:]
    calendar, cancelled = event_of(cancel_person)
    assert calendar["METHOD"] == "CANCEL" and cancelled["STATUS"] == "CANCELLED"
    assert cancelled["UID"] == event["UID"] and (event["SEQUENCE"], cancelled["SEQUENCE"]) == (0, 1)
    calendar, cancelled = event_of(cancel_practice)
    assert calendar["METHOD"] == "PUBLISH" and cancelled["STATUS"] == "CANCELLED" and cancelled["SEQUENCE"] == 1
    assert client.get(path).status_code == 410  # cancelled: the old link does not book again


def test_the_invite_is_an_imip_alternative_with_its_method_and_charset(auth, app, client):
    with app.app_context():
        auth.login(client)
    set_hours(client, ONE_SLOT_A_DAY)
    path = offer(app, client)
    client.post(path, data={"slot": re.search(r'name="slot" value="([^"]+)"', client.get(path).get_data(as_text=True)).group(1)})

    with app.app_context():
        to_person, to_practice = queued("consultation_invite")
    for message, method in ((to_person, "REQUEST"), (to_practice, "PUBLISH")):
        assert message.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html", "text/calendar"]
        part = calendar_part(message)
        assert part.get_param("method") == method and part.get_content_charset() == "utf-8"
        assert part.get_content_disposition() is None and part.get_filename() is None
    # Without a phone number, the event says the call is by video and the link comes by mail.
    assert "e-mails you the link" in event_of(to_person)[1]["SUMMARY"]


@pytest.mark.parametrize("host", ["the practice", "a clinician"])
def test_the_database_refuses_a_second_booking_of_the_same_start_by_the_same_host(app_ctx, host):
    host_id = clinician("maya") if host == "a clinician" else None
    first, second = submit().inquiry_id, submit(email="sam@example.com").inquiry_id
    start = datetime(2026, 12, 8, 16, 0)
    db.session.add(Consultation(inquiry_id=first, host_id=host_id, starts_at=start))
    db.session.commit()

    db.session.add(Consultation(inquiry_id=second, host_id=host_id, starts_at=start))
    with pytest.raises(IntegrityError):
        db.session.commit()
    db.session.rollback()


def test_the_database_lets_each_host_book_the_same_start(app_ctx):
    hosts = [clinician("maya"), clinician("leo"), None]
    start = datetime(2026, 12, 8, 16, 0)
    for n, host_id in enumerate(hosts):
        db.session.add(Consultation(inquiry_id=submit(email=f"person{n}@example.com").inquiry_id, host_id=host_id,
                                    starts_at=start))
    db.session.commit()

    assert db.session.scalar(select(func.count()).select_from(Consultation).where(Consultation.starts_at == start)) == 3


def slots_on(client, path: str) -> list[str]:
    """The times the booking page offers, as its form sends them."""
    return re.findall(r'name="slot" value="([^"]+)"', client.get(path).get_data(as_text=True))


def test_in_a_group_practice_a_booking_takes_the_time_only_from_its_clinician(auth, app, client):
    with app.app_context():
        auth.login(client)
        maya, leo = clinician("maya"), clinician("leo")
    set_hours(client, "Tuesday 10:00-10:30")
    mayas_client = offer(app, client, clinician="maya")
    mayas_next = offer(app, client, clinician="maya", email="sam@example.com", name="Sam Ortiz")
    leos_client = offer(app, client, clinician="leo", email="kim@example.com", name="Kim Lee")
    tuesday_ten = slots_on(client, mayas_client)[0]
    assert datetime.strptime(tuesday_ten, "%Y-%m-%dT%H:%M").replace(tzinfo=UTC).astimezone(
        ZoneInfo(app.extensions["settings"].practice_timezone)).strftime("%A %H:%M") == "Tuesday 10:00"

    assert "You're booked" in client.post(mayas_client, data={"slot": tuesday_ten}).get_data(as_text=True)

    assert tuesday_ten not in slots_on(client, mayas_next), "Maya is busy then"
    taken = client.post(mayas_next, data={"slot": tuesday_ten})
    assert taken.status_code == 409 and "that time was just taken" in taken.get_data(as_text=True)
    assert tuesday_ten in slots_on(client, leos_client), "Leo is free then"
    assert "You're booked" in client.post(leos_client, data={"slot": tuesday_ten}).get_data(as_text=True)
    with app.app_context():
        assert sorted(db.session.scalars(select(Consultation.host_id))) == sorted([maya, leo])


def test_a_booked_consultation_stays_with_its_clinician_when_the_inquiry_is_handed_on(auth, app, client):
    with app.app_context():
        auth.login(client)
        clinician("maya"), clinician("leo")
        leo_id = db.session.scalar(select(AdminUser.id).where(AdminUser.email == "leo@newsletter.test"))
    set_hours(client, "Tuesday 10:00-10:30")
    path = offer(app, client, clinician="maya")
    client.post(path, data={"slot": slots_on(client, path)[0]})
    with app.app_context():
        inquiry_id = db.session.scalar(select(Consultation.inquiry_id))
    hand_on = {"assignee": str(leo_id), "note": "Maya is away."}
    asked = client.post(f"/admin/inquiries/{inquiry_id}/assign", data=hand_on).get_data(as_text=True)
    assert re.search(r"The consultation on Tuesday, \w+ \d+ at 10:00 AM stays with Maya\.", asked)
    client.post(f"/admin/inquiries/{inquiry_id}/assign", data={**hand_on, "confirmed": "yes"})

    assert client.post(f"/admin/inquiries/{inquiry_id}/consultation/cancel", data={"confirmed": "yes"}).status_code == 302

    with app.app_context():
        invite, to_maya, cancel_person, cancel_practice = queued("consultation_invite")
    assert [m["To"].addresses[0].addr_spec for m in (to_maya, cancel_practice)] == ["maya@newsletter.test"] * 2
    (_, booked), (_, cancelled) = event_of(invite), event_of(cancel_person)
    assert str(cancelled["ORGANIZER"]) == str(booked["ORGANIZER"]) == "mailto:maya@newsletter.test"
    assert cancelled["UID"] == booked["UID"]


def test_in_a_solo_practice_a_booking_takes_the_time_from_everyone(auth, app, client):
    with app.app_context():
        auth.login(client)
        clinician("maya")  # one profile: still a solo practice, one calendar
    set_hours(client, "Tuesday 10:00-10:30")
    first, second = offer(app, client), offer(app, client, email="sam@example.com", name="Sam Ortiz")
    tuesday_ten = slots_on(client, first)[0]

    assert "You're booked" in client.post(first, data={"slot": tuesday_ten}).get_data(as_text=True)

    assert tuesday_ten not in slots_on(client, second)
    assert client.post(second, data={"slot": tuesday_ten}).status_code == 409
    with app.app_context():
        assert list(db.session.scalars(select(Consultation.host_id))) == [None]


def test_two_people_choosing_the_same_time_at_once_get_one_booking(auth, app, client):
    with app.app_context():
        auth.login(client)
    set_hours(client, ONE_SLOT_A_DAY)
    paths = [offer(app, client), offer(app, client, email="sam@example.com", name="Sam Ortiz")]
    slot = re.search(r'name="slot" value="([^"]+)"', client.get(paths[0]).get_data(as_text=True)).group(1)
    start_together = threading.Barrier(2)
    answers: list[int] = []

    def choose(path: str) -> None:
        visitor = app.test_client()
        start_together.wait()
        answers.append(visitor.post(path, data={"slot": slot}).status_code)

    threads = [threading.Thread(target=choose, args=(path,)) for path in paths]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(answers) == [200, 409]
    with app.app_context():
        db.session.remove()
        assert db.session.scalar(select(func.count()).select_from(Consultation)) == 1


def test_a_forged_link_or_a_time_not_offered_books_nothing(auth, app, client):
    with app.app_context():
        auth.login(client)
    set_hours(client, ONE_SLOT_A_DAY)
    path = offer(app, client)

    assert client.get(path[:-3] + "abc").status_code == 404
    not_offered = client.post(path, data={"slot": "2026-12-08T03:00"})
    assert not_offered.status_code == 409 and "that time was just taken" in not_offered.get_data(as_text=True)
    assert client.post(path, data={"slot": "tomorrow"}).status_code == 400
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Consultation)) == 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(slot=st.one_of(st.text(max_size=30), st.datetimes(min_value=datetime(2000, 1, 1)).map(
    lambda d: d.strftime("%Y-%m-%dT%H:%M"))))
def test_any_chosen_time_is_booked_or_refused_never_an_error(app, client, slot):
    with app.app_context():
        token = booking.tokens.make(booking.TOKEN_PURPOSE, submit().inquiry_id)

    response = client.post(f"/consultation/{token}", data={"slot": slot})

    assert response.status_code in (200, 400, 409)


def test_she_offers_a_consultation_and_the_person_books_it_in_the_browser(auth, app, client, live_server, page, smtp, worker):
    with app.app_context():
        auth.login(client)
    set_hours(client, ONE_SLOT_A_DAY)
    path = offer(app, client, name="Sam Ortiz", email="sam@example.com")

    page.set_viewport_size({"width": 375, "height": 800})
    page.goto(f"{live_server}{path}")
    page.locator("input[name=slot]").first.check()
    page.get_by_role("button", name="Book this time").click()

    page.get_by_role("heading", name="You're booked").wait_for()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    smtp.wait_for_messages(2, timeout=60)
    invites = [m for m in smtp.to("sam@example.com") if m.message["Subject"].startswith("Confirmed")]
    assert invites and "BEGIN:VCALENDAR" in ics_of(invites[0].message)
