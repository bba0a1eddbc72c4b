"""The reply-by clock: business days in the practice's timezone across weekends, holidays and DST,
and what the inquirer and the practice see of it."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from newsletter.accounts import practice
from newsletter.core.extensions import db
from newsletter.inquiries import business_days, jobs, pipeline
from newsletter.inquiries.business_days import Calendar
from newsletter.models import Inquiry, utcnow
from tests.helpers import FORM, PRACTICE, queued, submit, text_of

DENVER = ZoneInfo("America/Denver")
THANKSGIVING = date(2026, 11, 26)
WEEKDAYS_ONLY = Calendar(working_days=frozenset({1, 2, 3, 4, 5}), holidays=frozenset({THANKSGIVING}), tz=DENVER)


# -- the service, on its own

@pytest.mark.parametrize("received_utc, expected", [
    (datetime(2026, 11, 30, 17, 0), date(2026, 12, 2)),   # Monday 10:00 → Wednesday
    (datetime(2026, 11, 20, 17, 0), date(2026, 11, 24)),  # Friday → over the weekend to Tuesday
    (datetime(2026, 11, 21, 17, 0), date(2026, 11, 24)),  # Saturday counts from Saturday: Monday, Tuesday
    (datetime(2026, 11, 25, 17, 0), date(2026, 11, 30)),  # Wednesday before Thanksgiving → Friday, Monday
    (datetime(2026, 11, 24, 17, 0), date(2026, 11, 27)),  # Tuesday → Wednesday, (Thursday off) Friday
])
def test_reply_by_skips_weekends_and_holidays(received_utc, expected):
    assert WEEKDAYS_ONLY.reply_by(received_utc, 2) == expected


def test_the_day_is_the_practices_local_day_not_utcs():
    # Friday 22:30 in Denver is already Saturday 04:30 in UTC: Friday still counts as the day received.
    friday_night = datetime(2026, 10, 31, 4, 30)
    assert WEEKDAYS_ONLY.local_date(friday_night) == date(2026, 10, 30)
    assert WEEKDAYS_ONLY.reply_by(friday_night, 2) == date(2026, 11, 3)
    # Monday 17:30 in Denver (MST) is Tuesday 00:30 UTC.
    assert WEEKDAYS_ONLY.reply_by(datetime(2026, 12, 1, 0, 30), 1) == date(2026, 12, 1)


def test_the_day_ends_at_local_midnight_on_both_sides_of_a_dst_change():
    assert WEEKDAYS_ONLY.end_of_day(date(2026, 10, 30)) == datetime(2026, 10, 31, 6, 0)  # MDT, UTC-6
    assert WEEKDAYS_ONLY.end_of_day(date(2026, 10, 31)) == datetime(2026, 11, 1, 6, 0)   # midnight still MDT
    assert WEEKDAYS_ONLY.end_of_day(date(2026, 11, 3)) == datetime(2026, 11, 4, 7, 0)    # MST, UTC-7
    assert WEEKDAYS_ONLY.end_of_day(date(2026, 3, 7)) == datetime(2026, 3, 8, 7, 0)      # before spring forward
    assert WEEKDAYS_ONLY.end_of_day(date(2026, 3, 8)) == datetime(2026, 3, 9, 6, 0)      # after: a 23-hour day


def test_other_working_weeks_and_zero_days():
    four_days = Calendar(working_days=frozenset({1, 2, 3, 4}), holidays=frozenset(), tz=DENVER)
    assert four_days.add_business_days(date(2026, 12, 3), 1) == date(2026, 12, 7)  # Thursday → Monday
    assert four_days.add_business_days(date(2026, 12, 5), 0) == date(2026, 12, 7)  # Saturday → Monday
    assert four_days.add_business_days(date(2026, 12, 7), 0) == date(2026, 12, 7)


def test_a_calendar_with_no_open_day_says_so_instead_of_looping():
    with pytest.raises(ValueError):
        Calendar(working_days=frozenset(), holidays=frozenset(), tz=DENVER).add_business_days(date(2026, 1, 1), 1)


def test_holiday_lists_and_working_days_read_and_write():
    assert business_days.parse_holidays("2026-12-25 Christmas\n\n 2027-01-01\n") == {date(2026, 12, 25), date(2027, 1, 1)}
    with pytest.raises(business_days.InvalidHoliday, match="Dec 25"):
        business_days.parse_holidays("2026-12-24\nDec 25")
    assert business_days.parse_working_days("5x31") == {1, 3, 5}
    assert business_days.format_working_days({5, 1, 3}) == "135"
    assert business_days.long_date(date(2026, 12, 3)) == "Thursday, December 3"


@given(start=st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)), count=st.integers(1, 15),
       holidays=st.frozensets(st.dates(min_value=date(2020, 1, 1), max_value=date(2036, 12, 31)), max_size=30))
def test_reply_by_is_a_business_day_with_exactly_count_business_days_after_the_start(start, count, holidays):
    calendar = Calendar(working_days=frozenset({1, 2, 3, 4, 5}), holidays=holidays, tz=DENVER)
    due = calendar.add_business_days(start, count)
    between = [start + timedelta(days=n) for n in range(1, (due - start).days + 1)]
    assert calendar.is_business_day(due)
    assert sum(calendar.is_business_day(day) for day in between) == count


# -- through the app

def local_today(app) -> date:
    return datetime.now(ZoneInfo(app.extensions["settings"].practice_timezone)).date()


def set_office_days(client, days: list[int], holidays: str = "") -> None:
    response = client.post("/admin/practice/days", data={"working_days": [str(d) for d in days], "holidays": holidays})
    assert response.status_code == 302


def test_the_thank_you_page_and_acknowledgement_name_the_day_counted_past_holidays(auth, app, client):
    with app.app_context():
        auth.login(client)
    today = local_today(app)
    # Every day is a working day, but the next two are days off: two business days later is today + 4.
    set_office_days(client, [1, 2, 3, 4, 5, 6, 7], f"{today + timedelta(days=1)} Retreat\n{today + timedelta(days=2)}")
    expected = business_days.long_date(today + timedelta(days=4))

    page = client.post("/contact", data=FORM).get_data(as_text=True)

    assert f"you'll hear from us by <strong class=\"reply-by\">{expected}</strong>" in page
    with app.app_context():
        [ack] = queued("inquiry_ack")
        assert f"so you'll hear from us by {expected}" in text_of(ack)
        assert db.session.scalar(select(Inquiry.reply_by)) == today + timedelta(days=4)


def test_the_admin_shows_time_left_and_what_is_overdue(auth, app, client):
    with app.app_context():
        auth.login(client)
        due_later = submit().inquiry_id
        overdue = submit(email="sam@example.com", name="Sam Ortiz").inquiry_id
        db.session.get(Inquiry, due_later).reply_by = local_today(app) + timedelta(days=3)
        db.session.get(Inquiry, overdue).reply_by = local_today(app) - timedelta(days=2)
        db.session.commit()

    page = client.get("/admin/inquiries").get_data(as_text=True)

    assert "days" in page and " left</span>" in page
    assert 'class="error small">overdue by 1 day' in page
    client.post(f"/admin/inquiries/{overdue}/call", data={})
    assert "overdue by" not in client.get("/admin/inquiries").get_data(as_text=True)


def test_the_practice_is_nudged_once_on_the_reply_by_day_and_not_for_answered_ones(app_ctx):
    waiting = submit().inquiry_id
    answered = submit(email="sam@example.com", name="Sam Ortiz").inquiry_id
    later = submit(email="kim@example.com", name="Kim Lee").inquiry_id
    today = business_days.practice_calendar().local_date(utcnow())
    for inquiry_id, day in ((waiting, today), (answered, today), (later, today + timedelta(days=1))):
        db.session.get(Inquiry, inquiry_id).reply_by = day
    pipeline.record_call(db.session.get(Inquiry, answered), "", None)
    db.session.commit()

    assert len(jobs.queue_nudges()) == 1
    db.session.commit()
    assert jobs.queue_nudges() == []

    [nudge] = queued("inquiry_nudge")
    assert nudge["To"] == PRACTICE and nudge["Subject"] == "An inquiry is due for a reply today"
    body = text_of(nudge)
    assert "Dana Reyes, answer by " + business_days.long_date(today) in body and "left)" in body
    assert "Sam Ortiz" not in body and "Kim Lee" not in body


def test_the_nudge_task_runs_through_celery(app_ctx, worker, smtp):
    from newsletter.tasks import nudge_inquiries_due

    inquiry_id = submit().inquiry_id
    db.session.get(Inquiry, inquiry_id).reply_by = business_days.practice_calendar().local_date(utcnow()) - timedelta(days=1)
    db.session.commit()

    nudge_inquiries_due.delay()

    smtp.wait_for_messages(1, timeout=60)  # the worker queues the nudge and sends it (the forward waits for the sweeper)
    [nudge] = smtp.to(PRACTICE)
    assert nudge.message["Subject"] == "An inquiry is due for a reply today"
    assert "overdue by" in nudge.message.get_body(("plain",)).get_content()


def test_office_days_are_saved_and_a_bad_holiday_is_refused_with_a_message(auth, app, client):
    with app.app_context():
        auth.login(client)
    set_office_days(client, [2, 4], "2026-12-25 Christmas")

    refused = client.post("/admin/practice/days", data={"working_days": ["1"], "holidays": "2026-12-24\nDec 25"})
    no_days = client.post("/admin/practice/days", data={"holidays": ""})

    assert refused.status_code == 400 and "“Dec 25” is not a date" in refused.get_data(as_text=True)
    assert no_days.status_code == 400 and "Please choose at least one day." in no_days.get_data(as_text=True)
    with app.app_context():
        profile = practice.ensure_profile()
        assert (profile.working_days, profile.holidays) == ("24", "2026-12-25 Christmas")
    page = client.get("/admin/practice").get_data(as_text=True)
    assert '<input checked id="working_days-1"' in page and '<input id="working_days-0"' in page  # Tuesday, not Monday


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.lists(st.text(max_size=3), max_size=8), holidays=st.text(max_size=200))
def test_any_office_days_input_is_saved_or_refused_never_an_error(auth, app, client, days, holidays):
    auth.stay_signed_in(client)

    response = client.post("/admin/practice/days", data={"working_days": days, "holidays": holidays})

    assert response.status_code in (302, 400)
    with app.app_context():
        assert business_days.practice_calendar().working_days  # never left without a working day
