"""Working days (工作日) in mainland China, for every deadline counted in working days.

A day is a working day when it is Monday to Friday and not a public holiday, or when it is a weekend
day made a working day to make up for a longer holiday (调休, e.g. Saturday 2026-10-10 after the National
Day week). Public holidays and make-up days come from the `holidays` package (`holidays.China`), which
follows the State Council's yearly notice (国务院办公厅关于节假日安排的通知).

The notice for a year comes out late in the year before; until the package has it, that year's holidays
are the statutory ones without make-up days. `OVERRIDES` below, and the `WORKDAY_OVERRIDES` environment
variable on top of it, set days the package does not know yet or gets wrong:

    WORKDAY_OVERRIDES="2027-02-20=work,2027-02-11=off"

`work` makes the day a working day (a make-up day), `off` a day off (a holiday). An override wins over
the package.
"""
from __future__ import annotations

import threading
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache

import holidays

from .config import env_list

# China Standard Time: working days are counted on the local calendar.
CHINA_TIME = timezone(timedelta(hours=8))

# Days set by a published notice that the pinned `holidays` release does not have: date -> True for a
# working day (调休上班), False for a day off. holidays 0.109 has the 2026 notice in full (make-up days
# 01-04, 02-14, 02-28, 05-09, 09-20, 10-10); for 2027 it has the statutory holidays and their observed
# days but no make-up days yet, so 2027's go here (or in WORKDAY_OVERRIDES) once the notice is out,
# unless a newer pinned release has them.
OVERRIDES: dict[date, bool] = {}

_WORDS = {"work": True, "off": False}


def parse_overrides(items: list[str]) -> dict[date, bool]:
    """`["2027-02-20=work", "2027-02-11=off"]` as overrides; a malformed item is a configuration error."""
    out: dict[date, bool] = {}
    for item in items:
        day, _, word = item.partition("=")
        try:
            out[date.fromisoformat(day.strip())] = _WORDS[word.strip().lower()]
        except (ValueError, KeyError) as exc:
            raise SystemExit(f"configuration error: WORKDAY_OVERRIDES item {item!r} is not "
                             "YYYY-MM-DD=work or YYYY-MM-DD=off") from exc
    return out


@lru_cache(maxsize=None)
def _year(year: int) -> tuple[frozenset[date], frozenset[date]]:
    """A year's public holidays and make-up working days, as the package has them."""
    cn = holidays.China(years=year)
    return frozenset(cn.keys()), frozenset(d for d in cn.weekend_workdays if d.year == year)


class WorkingCalendar:
    """Which days are working days: the package's China calendar with `overrides` on top."""

    def __init__(self, overrides: dict[date, bool] | None = None):
        self.overrides = dict(OVERRIDES) | dict(overrides or {})

    def is_working_day(self, day: date) -> bool:
        if day in self.overrides:
            return self.overrides[day]
        days_off, make_up = _year(day.year)
        if day in make_up:
            return True
        return day.weekday() < 5 and day not in days_off

    def add_working_days(self, start: datetime, days: int, tz: timezone = CHINA_TIME) -> datetime:
        """The same time of day `days` working days after `start`, counted on the calendar of `tz`;
        returned in UTC. A start on a day off counts from the next working day (Saturday + 1 is the
        next working day's same time)."""
        local = start.astimezone(tz)
        counted = 0
        while counted < days:
            local += timedelta(days=1)
            if self.is_working_day(local.date()):
                counted += 1
        return local.astimezone(timezone.utc)


_default: WorkingCalendar | None = None
_lock = threading.Lock()


def calendar() -> WorkingCalendar:
    """The process's calendar: `OVERRIDES` and `WORKDAY_OVERRIDES`, read once."""
    global _default
    with _lock:
        if _default is None:
            _default = WorkingCalendar(parse_overrides(env_list("WORKDAY_OVERRIDES")))
        return _default


def add_working_days(start: datetime, days: int) -> datetime:
    """`days` China working days after `start` (see `WorkingCalendar.add_working_days`)."""
    return calendar().add_working_days(start, days)


def is_working_day(day: date) -> bool:
    return calendar().is_working_day(day)
