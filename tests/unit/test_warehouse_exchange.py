"""The warehouse's CSV exchange layout: which lines are taken, what each becomes, and what a bad one says."""
from __future__ import annotations

from datetime import datetime, timezone

from sampledata import city
from services.warehouse.domain import ReportFact, cells_of, exchange

STATION = city.stations()[0]
GRID = next(g for g in city.grids() if g.station_id == STATION.station_id)
LINE = {"report_id": "HIST-1", "receive_time": "2026-03-10T10:00:00+08:00", "category": "POLICE",
        "incident_type": "FIGHT", "station_id": STATION.station_id, "grid_id": GRID.grid_id,
        "longitude": str(STATION.hq[0]), "latitude": str(STATION.hq[1]), "answer_time": "2026-03-10T02:00:04Z"}


def test_a_good_line_becomes_a_fact_in_utc_with_district_cells_and_target():
    fact = exchange.parse_row(2, LINE)
    assert isinstance(fact, ReportFact)
    assert fact.receive_time == datetime(2026, 3, 10, 2, 0, tzinfo=timezone.utc)
    assert (fact.answer_time - fact.receive_time).total_seconds() == 4
    assert fact.district_id == STATION.district_id and fact.arrival_target_s == GRID.arrival_target_s
    assert fact.h3_r8 == cells_of(*STATION.hq)["h3_r8"] and fact.priority == 0 and not fact.merged


def test_a_bad_line_names_every_wrong_column_with_its_line_number():
    bad = exchange.parse_row(7, {**LINE, "receive_time": "2026-03-10T10:00:00", "priority": "0",
                                 "channel": "PIGEON", "merged": "maybe", "longitude": ""})
    assert isinstance(bad, exchange.BadRow) and bad.line == 7
    assert {c for c, _ in bad.problems} == {"receive_time", "priority", "channel", "merged", "longitude"}
    assert str(bad).startswith("line 7: receive_time has no UTC offset")


def test_types_categories_and_places_must_fit_the_city():
    other = next(s for s in city.stations() if s.district_id != STATION.district_id)
    bad = exchange.parse_row(3, {**LINE, "category": "CONSULTATION", "district_id": other.district_id})
    assert {c for c, _ in bad.problems} == {"category", "district_id"}
    bad = exchange.parse_row(3, {**LINE, "station_id": "S99", "incident_type": "NOPE"})
    assert {c for c, _ in bad.problems} == {"station_id", "incident_type"}
    bad = exchange.parse_row(3, {**LINE, "close_time": "2026-03-10T09:59:59+08:00"})
    assert bad.problems == (("close_time", "is before receive_time"),)


def test_the_header_needs_the_required_columns_and_no_unknown_ones():
    assert exchange.header_problems(list(exchange.HEADER)) == []
    problems = exchange.header_problems(["report_id", "receive_time", "caller_phone", "report_id"])
    assert "unknown column 'caller_phone'" in problems and "column 'report_id' appears twice" in problems
    assert "required column 'station_id' is missing" in problems


def test_a_fact_as_copy_text_escapes_and_marks_nulls():
    fact = exchange.parse_row(2, {**LINE, "report_id": "A\\B"})
    line = exchange.copy_line(fact, ("report", "hand_off_time", "merged", "load_id"), 9)
    assert line == "A\\\\B\t\\N\tf\t9\n"
