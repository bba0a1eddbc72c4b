"""Business days in the practice's timezone: the day by which an inquiry is answered, and how long is left.

Plain values only (no Flask, no database): a `Calendar` of working weekdays, holidays and a timezone.
Times in and out are naive UTC, as stored; days are the practice's local dates.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from newsletter.accounts import practice

WEEKDAYS = {1: "Monday", 2: "Tuesday", 3: "Wednesday", 4: "Thursday", 5: "Friday", 6: "Saturday", 7: "Sunday"}
DEFAULT_WORKING_DAYS = "12345"
_LOOKAHEAD_DAYS = 3660  # a calendar with (almost) no open days still gives an answer, ten years out


class InvalidHoliday(ValueError):
    """A line of the holiday list that is not a date."""


@dataclass(frozen=True)
class Calendar:
    """When the practice works: ISO weekdays (Monday 1 … Sunday 7), holidays, and its timezone."""

    working_days: frozenset[int]
    holidays: frozenset[date]
    tz: ZoneInfo

    def is_business_day(self, day: date) -> bool:
        return day.isoweekday() in self.working_days and day not in self.holidays

    def local_date(self, moment: datetime) -> date:
        """The practice's date at a naive-UTC moment."""
        return moment.replace(tzinfo=UTC).astimezone(self.tz).date()

    def add_business_days(self, start: date, count: int) -> date:
        """The `count`-th business day after `start` (start itself not counted); with count 0, start
        if it is a business day, else the next one."""
        day, counted = start, 0
        if count <= 0 and self.is_business_day(day):
            return day
        for _ in range(_LOOKAHEAD_DAYS):
            day += timedelta(days=1)
            if self.is_business_day(day):
                counted += 1
                if counted >= count:
                    return day
        raise ValueError("no business day within ten years: check the working days and holidays")

    def reply_by(self, received: datetime, count: int) -> date:
        """The day by which a message received at `received` (naive UTC) is answered, `count` business
        days later; a message received on a weekend or holiday counts from that local day all the same."""
        return self.add_business_days(self.local_date(received), count)

    def end_of_day(self, day: date) -> datetime:
        """The naive-UTC moment `day` ends in the practice's timezone (its next local midnight, DST included)."""
        midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz)
        return midnight.astimezone(UTC).replace(tzinfo=None)


def parse_working_days(value: str) -> frozenset[int]:
    """'12345' (ISO weekday digits) as a set; anything else in the string is ignored."""
    return frozenset(int(ch) for ch in value if ch in "1234567")


def format_working_days(days: set[int] | frozenset[int]) -> str:
    return "".join(str(day) for day in sorted(days))


def parse_holidays(text: str) -> frozenset[date]:
    """One ISO date (2026-12-25) per line, optionally followed by a name ("2026-12-25 Christmas").
    Raises InvalidHoliday naming the first line that is not a date."""
    days = set()
    for line in text.splitlines():
        first = line.strip().split(" ", 1)[0]
        if not first:
            continue
        try:
            days.add(date.fromisoformat(first))
        except ValueError as exc:
            raise InvalidHoliday(line.strip()[:40]) from exc
    return frozenset(days)


def long_date(day: date) -> str:
    """'Thursday, December 3'."""
    return f"{WEEKDAYS[day.isoweekday()]}, {day:%B} {day.day}"


def practice_calendar() -> Calendar:
    """The practice's working days and holidays (from the profile) in its timezone."""
    row = practice.profile()
    return Calendar(
        working_days=parse_working_days(row.working_days or DEFAULT_WORKING_DAYS),
        holidays=parse_holidays(row.holidays or ""),
        tz=practice.timezone(),
    )
