"""China working days (工作日): public holidays skipped, make-up working days (调休) counted, overrides."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from services.runtime import workdays
from services.runtime.workdays import WorkingCalendar, parse_overrides

CHINA = timezone(timedelta(hours=8))
CAL = WorkingCalendar()


def at(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=CHINA)


def test_five_working_days_from_the_eve_of_national_day_end_on_the_thirteenth():
    # 10-01..10-07 off; Saturday 10-10 is a make-up working day: 10-08, 10-09, 10-10, 10-12, 10-13.
    assert CAL.add_working_days(at(2026, 9, 30), 5) == at(2026, 10, 13)


def test_five_working_days_before_the_spring_festival_end_on_the_twenty_sixth():
    # 02-13, Saturday 02-14 (make-up), then 02-15..02-23 off, then 02-24, 02-25, 02-26.
    assert CAL.add_working_days(at(2026, 2, 12), 5) == at(2026, 2, 26)


def test_make_up_saturdays_are_working_days_and_holiday_weekdays_are_not():
    for saturday in (date(2026, 2, 14), date(2026, 2, 28), date(2026, 10, 10)):
        assert saturday.weekday() == 5 and CAL.is_working_day(saturday)
    assert date(2026, 9, 20).weekday() == 6 and CAL.is_working_day(date(2026, 9, 20))
    for weekday_off in (date(2026, 1, 2), date(2026, 2, 20), date(2026, 5, 5), date(2026, 10, 7)):
        assert weekday_off.weekday() < 5 and not CAL.is_working_day(weekday_off)
    assert not CAL.is_working_day(date(2026, 11, 21))  # an ordinary Saturday
    assert CAL.is_working_day(date(2026, 11, 20))  # an ordinary Friday


def test_one_working_day_from_a_make_up_friday_evening_is_the_make_up_saturday():
    assert CAL.add_working_days(at(2026, 10, 9, 17, 30), 1) == at(2026, 10, 10, 17, 30)
    assert CAL.add_working_days(at(2026, 10, 10, 17, 30), 1) == at(2026, 10, 12, 17, 30)


def test_the_result_is_in_utc_and_days_are_counted_on_the_china_calendar():
    # 2026-09-30 23:30 in Beijing is 15:30 UTC the same day: counted from Beijing's 09-30.
    start = datetime(2026, 9, 30, 15, 30, tzinfo=timezone.utc)
    end = CAL.add_working_days(start, 1)
    assert end.tzinfo == timezone.utc and end == at(2026, 10, 8, 23, 30)


def test_overrides_win_over_the_package():
    cal = WorkingCalendar({date(2026, 11, 21): True, date(2026, 11, 23): False})
    assert cal.is_working_day(date(2026, 11, 21)) and not cal.is_working_day(date(2026, 11, 23))
    # Friday 11-20 + 2: Saturday 11-21 (set working), Monday 11-23 off, Tuesday 11-24.
    assert cal.add_working_days(at(2026, 11, 20), 2) == at(2026, 11, 24)


def test_overrides_are_read_from_text_and_bad_items_stop_the_process():
    assert parse_overrides(["2027-02-20=work", " 2027-02-11 = OFF "]) == {date(2027, 2, 20): True,
                                                                          date(2027, 2, 11): False}
    for bad in ("2027-02-20", "2027-02-30=work", "2027-02-20=holiday"):
        with pytest.raises(SystemExit, match="WORKDAY_OVERRIDES"):
            parse_overrides([bad])


def test_the_process_calendar_reads_the_environment_once(monkeypatch):
    monkeypatch.setattr(workdays, "_default", None)
    monkeypatch.setenv("WORKDAY_OVERRIDES", "2026-11-21=work")
    assert workdays.is_working_day(date(2026, 11, 21))
    monkeypatch.setenv("WORKDAY_OVERRIDES", "")
    assert workdays.is_working_day(date(2026, 11, 21))
    monkeypatch.setattr(workdays, "_default", None)
    assert not workdays.is_working_day(date(2026, 11, 21))
