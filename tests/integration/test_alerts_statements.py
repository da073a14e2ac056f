"""The statements an IncidentReported event costs the alerts service, and the repository's one-statement
asks (`record_counted`, `counts`) against the one-ask-at-a-time queries they replace, on a real Postgres."""
from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import h3
import pytest

from services.alerts import domain, store
from services.alerts.__main__ import SPEC
from services.alerts.domain import Area, CellCounts, HourCounts, Incident, WindowCount
from tests import support
from tools.benches import alerts_statements as bench

# The figures the bench measured (tools/benches/alerts_statements.py; it was 11, 8 of them the handler's).
STATEMENTS_PER_EVENT = 6
HANDLER_STATEMENTS_PER_EVENT = 3

T = datetime(2027, 3, 1, 10, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def seeded(admin_url):
    """The alerts service with its standing rules, on a database of its own."""
    with support.serving(SPEC, admin_url, clock=support.Clock(bench.T0), seed=True) as s:
        yield s


@pytest.fixture(scope="module")
def served(admin_url):
    """The alerts service without rules, for the repository's queries."""
    with support.serving(SPEC, admin_url, clock=support.Clock(T), seed=False) as s:
        yield s


def test_an_incident_reported_event_costs_at_most_the_measured_statements(seeded):
    # 30 reports, ten a station: from each station's eighth on, the anomaly rule reads its history too.
    result = bench.measure(seeded, events=30)
    assert result["alerts_raised"] == 0
    per_event = result["statements_per_event"]
    assert per_event["max"] <= STATEMENTS_PER_EVENT, result
    assert per_event["handler"] <= HANDLER_STATEMENTS_PER_EVENT, result
    assert result["handler_statements"].get("SELECT hourly_counts", 0) == 0, "no query of its own per rule"


# -- the repository's asks -------------------------------------------------------------

def point(k: int) -> tuple[float, float]:
    """A place of its own (about 2 km from another's), so that H3 cells are not shared between tests."""
    return 114.10 + 0.02 * (k % 20), 30.40 + 0.02 * (k // 20)


def incident(t: datetime, *, station: str, grid: str = "", category: str = "POLICE", itype: str = "FIGHT",
             merged_into: str = "", at: tuple[float, float] | None = None) -> Incident:
    lon, lat = at if at is not None else (None, None)
    return Incident(uuid.uuid4().hex[:16], t, station, grid or f"{station}-G", category, itype, merged_into,
                    lon, lat, domain.h3_cells(lon, lat))


def record(served, *incidents: Incident, rolled: bool = False) -> None:
    with served.rt.engine.begin() as conn:
        repo = store.IncidentRepository(conn)
        for i in incidents:
            repo.record_counted(i, domain.rollup_keys(i) if rolled else [])


def ask(served, end, windows=(), hours=(), cells=()):
    """`counts` and, for each ask, the per-ask query it replaces; and how many statements `counts` took."""
    with served.rt.engine.connect() as conn:
        repo = store.IncidentRepository(conn)
        with bench.StatementCounter(served.rt.engine) as seen:
            got = repo.counts(end, list(windows), list(hours), list(cells))
        one_by_one = (
            [repo.count_window(w.area, w.resolution, w.start, end, list(w.incident_types)) for w in windows],
            [repo.hourly(h.area, list(h.incident_types), list(h.hours)) for h in hours],
            [repo.first_hour(h.area) for h in hours],
            [repo.police_by_cell(c.resolution, c.start, end, list(c.cells), list(c.incident_types)) for c in cells])
    return got, one_by_one, len(seen)


@pytest.fixture()
def station():
    return "Q" + uuid.uuid4().hex[:6]


def test_window_counts_keep_the_window_bounds_for_every_area_kind(served, station):
    at = point(1)
    start, end = T, T + timedelta(minutes=30)
    micro = timedelta(microseconds=1)
    times = [start - micro, start, start + micro, end - micro, end, end + micro]  # in: start+, end-, end
    record(served, *(incident(t, station=station, grid=f"{station}-G1", at=at) for t in times))
    windows = [WindowCount(Area.station(station), 8, start),
               WindowCount(Area.grid(f"{station}-G1", station), 8, start)]
    windows += [WindowCount(Area.cell(domain.h3_cells(*at)[r - 6], station, ""), r, start) for r in (6, 8, 10)]
    got, (one_by_one, *_), statements = ask(served, end, windows)
    assert got.windows == [3, 3, 3, 3, 3] == one_by_one
    assert statements == 1
    # A window starting at the first incident's instant excludes it; ending before the last excludes those after.
    got, (one_by_one, *_), _ = ask(served, end - micro, [WindowCount(Area.station(station), 8, start + micro)])
    assert got.windows == [1] == one_by_one


def test_window_counts_leave_out_merged_invalid_unclassified_and_other_types_and_areas(served, station):
    at = point(2)
    t = T + timedelta(days=1)
    grid = f"{station}-G2"
    record(served,
           incident(t, station=station, grid=grid, at=at),
           incident(t, station=station, grid=grid, itype="THEFT", at=at),
           incident(t, station=station, grid=grid, merged_into="reports/m", at=at),
           incident(t, station=station, grid=grid, category="INVALID", at=at),
           incident(t, station=station, grid=grid, category="", at=at),
           incident(t, station=station, grid=grid, category="FIRE", itype="FIRE", at=at),
           incident(t, station=station + "X", grid=grid + "X", at=point(3)))
    cell = domain.h3_cells(*at)[2]
    since = t - timedelta(minutes=1)
    windows = [WindowCount(Area.station(station), 8, since), WindowCount(Area.station(station), 8, since, ("FIGHT",)),
               WindowCount(Area.grid(grid, station), 8, since, ("FIGHT", "THEFT")),
               WindowCount(Area.cell(cell, station, grid), 8, since, ("FIRE",)),
               WindowCount(Area.station(station + "X"), 8, since), WindowCount(Area.station("nowhere"), 8, since)]
    got, (one_by_one, *_), _ = ask(served, t, windows)
    assert got.windows == [3, 1, 2, 1, 1, 0] == one_by_one


def test_hourly_counts_and_the_first_hour_only_when_the_hour_is_busy_enough(served, station):
    at = point(4)
    hour = T + timedelta(days=2)
    week = timedelta(weeks=1)
    grid = f"{station}-G4"
    record(served, *(incident(hour + timedelta(minutes=m), station=station, grid=grid, at=at) for m in range(3)),
           incident(hour, station=station, grid=grid, itype="THEFT", at=at),
           incident(hour - week, station=station, grid=grid, at=at),
           incident(hour - 3 * week, station=station, grid=grid, itype="THEFT", at=at),
           incident(hour - timedelta(hours=1), station=station, grid=grid, at=at),  # not one of the hours
           rolled=True)
    hours = (hour, hour - week, hour - 2 * week, hour - 3 * week)
    cell = domain.h3_cells(*at)[2]
    asks = [HourCounts(Area.station(station), ("",), hours, hour, 4),  # 4 this hour: enough
            HourCounts(Area.station(station), ("FIGHT",), hours, hour, 4),  # 3 fights: not enough
            HourCounts(Area.grid(grid, station), ("FIGHT", "THEFT"), hours, hour, 1),
            HourCounts(Area.cell(cell, station, grid), ("",), hours, hour, 5),
            HourCounts(Area.station("nowhere"), ("",), hours, hour, 0)]
    got, (_, hourly, first, _), statements = ask(served, hour, hours=asks)
    assert statements == 1
    assert [c for c, _ in got.hours] == hourly
    assert hourly[0] == {hour: 4, hour - week: 1, hour - 3 * week: 1}
    assert hourly[1] == {hour: 3, hour - week: 1}
    assert [f for _, f in got.hours] == [first[0], None, first[2], None, None]
    assert first[0] == hour - 3 * week  # the earliest of every type, of any hour
    # An area without history at all: enough with a minimum of 0, and no first hour.
    assert got.hours[4] == ({}, None) and first[4] is None


def test_cell_counts_are_police_incidents_within_the_window_per_cell_at_the_resolution(served, station):
    at, away = point(5), point(6)
    start, end = T + timedelta(days=3), T + timedelta(days=3, hours=1)
    micro = timedelta(microseconds=1)
    near = h3.cell_to_latlng(h3.grid_disk(domain.h3_cells(*at)[2], 1)[-1])  # lat, lon of a neighbour at res 8
    record(served,
           incident(start, station=station, at=at),  # the start: out
           incident(start + micro, station=station, at=at),
           incident(end, station=station, at=at),
           incident(end + micro, station=station, at=at),  # after the end: out
           incident(end, station=station, itype="THEFT", at=at),
           incident(end, station=station, at=(near[1], near[0])),
           incident(end, station=station, category="FIRE", at=at),
           incident(end, station=station, merged_into="reports/m", at=at),
           incident(end, station=station, at=away))
    asks = []
    for res in (7, 8, 9):
        cells = tuple(h3.grid_disk(domain.h3_cells(*at)[res - 6], 1))
        asks += [CellCounts(res, start, cells), CellCounts(res, start, cells, ("FIGHT",))]
    got, (*_, by_cell), statements = ask(served, end, cells=asks)
    assert statements == 1
    assert got.cells == by_cell
    here8 = domain.h3_cells(*at)[2]
    assert got.cells[2] == Counter({here8: 3, h3.latlng_to_cell(near[0], near[1], 8): 1})
    assert got.cells[3] == Counter({here8: 2, h3.latlng_to_cell(near[0], near[1], 8): 1})
    for n, res in ((0, 7), (4, 9)):  # the report's own cell at the other resolutions: the same three at least
        assert got.cells[n][domain.h3_cells(*at)[res - 6]] >= 3
        assert set(got.cells[n]) <= set(asks[n].cells)


def test_every_ask_at_once_is_one_statement_with_the_same_answers(served, station):
    at = point(7)
    t = T + timedelta(days=4, minutes=30)
    record(served, *(incident(t - timedelta(minutes=m), station=station, at=at) for m in range(5)), rolled=True)
    cell = domain.h3_cells(*at)[2]
    hour = domain.hour_of(t)
    windows = [WindowCount(Area.station(station), 8, t - timedelta(minutes=3)),
               WindowCount(Area.cell(cell, station, ""), 8, t - timedelta(hours=1), ("FIGHT",))]
    hours = [HourCounts(Area.station(station), ("",), (hour, hour - timedelta(weeks=1)), hour, 5)]
    cells = [CellCounts(8, t - timedelta(hours=1), tuple(h3.grid_disk(cell, 2)))]
    got, (w, hourly, first, by_cell), statements = ask(served, t, windows, hours, cells)
    assert statements == 1
    assert got.windows == w == [3, 5]
    assert got.hours == [(hourly[0], first[0])] and hourly[0] == {hour: 5} and first[0] == hour
    assert got.cells == by_cell == [Counter({cell: 5})]
    # Nothing asked: nothing sent.
    got, _, statements = ask(served, t)
    assert statements == 0 and got.windows == [] and got.hours == [] and got.cells == []


def test_record_counted_rolls_up_once_and_a_redelivery_changes_nothing(served, station):
    at = point(8)
    t = T + timedelta(days=5, minutes=10)
    i = incident(t, station=station, at=at)
    keys = domain.rollup_keys(i)
    with served.rt.engine.begin() as conn:
        repo = store.IncidentRepository(conn)
        with bench.StatementCounter(served.rt.engine) as seen:
            assert repo.record_counted(i, keys) is True
        assert len(seen) == 1
        assert repo.record_counted(i, keys) is False
        other = incident(t, station=station, itype="THEFT", at=at)
        assert repo.record_counted(other, domain.rollup_keys(other)) is True
        uncounted = incident(t, station=station, merged_into="reports/m", at=at)
        assert repo.record_counted(uncounted, []) is True
        stored = conn.execute(store.incidents.select().where(store.incidents.c.report_id == i.report_id)).one()
        assert (stored.station_id, stored.category, stored.incident_type, list(stored.cells), stored.lon) == \
            (station, "POLICE", "FIGHT", i.cells, at[0])
        rows = conn.execute(store.hourly_counts.select().where(
            store.hourly_counts.c.area_id.in_([station, f"{station}-G", i.cells[2]]))).all()
    hour = domain.hour_of(t)
    assert {(r.area_kind, r.incident_type, r.hour_start, r.count) for r in rows} == {
        (kind, itype, hour, n) for kind in ("STATION", "GRID", "H3")
        for itype, n in (("", 2), ("FIGHT", 1), ("THEFT", 1))}


def test_record_counted_without_a_place_or_a_grid(served, station):
    t = T + timedelta(days=6)
    i = Incident(uuid.uuid4().hex[:16], t, station, "", "POLICE", "FIGHT", "", None, None, [])
    with served.rt.engine.begin() as conn:
        repo = store.IncidentRepository(conn)
        assert repo.record_counted(i, domain.rollup_keys(i)) is True
        rows = conn.execute(store.hourly_counts.select().where(store.hourly_counts.c.area_id == station)).all()
        stored = conn.execute(store.incidents.select().where(store.incidents.c.report_id == i.report_id)).one()
    assert sorted((r.area_kind, r.incident_type, r.count) for r in rows) == [("STATION", "", 1),
                                                                            ("STATION", "FIGHT", 1)]
    assert stored.lon is None and list(stored.cells) == []
