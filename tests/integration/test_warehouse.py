"""The warehouse against a real Postgres: events through the real consumers (cursor + inbox) into facts and
rollups, the month partitions, a bulk load of 20,000 reports (interrupted and resumed), and the analytics
over a real gRPC channel with the callers' JWT claims.

The rollups are checked against a GROUP BY over the fact table after every kind of change.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import grpc
import h3
import pytest
from sqlalchemy import text

from sampledata import city
from smart110.common.v1 import common_pb2, events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dpb
from smart110.intake.v1 import intake_service_pb2 as ipb
from smart110.referral.v1 import referral_service_pb2 as rpb
from smart110.warehouse.v1 import warehouse_service_pb2 as pb
from smart110.warehouse.v1 import warehouse_service_pb2_grpc as pb_grpc
from services.warehouse import domain, seed, workers
from services.warehouse.store import ROLLUPS
from services.warehouse.__main__ import SPEC
from tests import support
from tests.support import caller, field_violations

UTC = timezone.utc
T0 = datetime(2028, 3, 10, 2, 0, tzinfo=UTC)  # 10:00 in the city
COMMANDER = caller(["commander"], sub="cmd-1")
S01 = next(s for s in city.stations() if s.station_id == "S01")
S02 = next(s for s in city.stations() if s.station_id == "S02")


@pytest.fixture(scope="module")
def env(admin_url):
    clock = support.Clock(T0)
    with support.serving(SPEC, admin_url, clock=clock, seed=False) as served:
        yield dict(rt=served.rt, served=served, clock=clock, stub=pb_grpc.WarehouseServiceStub(served.channel))


def ts(t: datetime):
    out = events_pb2.Event().occur_time
    out.FromDatetime(t)
    return out


def event(source: str, type_: str, subject: str, payload, when: datetime) -> events_pb2.Event:
    e = events_pb2.Event(event_id=str(uuid.uuid4()), sequence=1, type=type_, subject=subject, source=source)
    e.occur_time.FromDatetime(when)
    e.payload.Pack(payload)
    return e


def deliver(env, e: events_pb2.Event) -> bool:
    return env["served"].consumer(e.source).apply(e)


def report_pb(name: str, station, received: datetime, *, incident_type="FIGHT", category=ipb.CATEGORY_POLICE,
              offset=(0.001, 0.001), **times) -> ipb.Report:
    grid = next(g for g in city.grids() if g.station_id == station.station_id)
    r = ipb.Report(name=name, channel=ipb.CHANNEL_PHONE, station_id=station.station_id, grid_id=grid.grid_id,
                   classification=ipb.Classification(category=category, incident_type=incident_type, priority=2),
                   location=common_pb2.Location(point=common_pb2.GeoPoint(
                       longitude=station.hq[0] + offset[0], latitude=station.hq[1] + offset[1])))
    r.receive_time.CopyFrom(ts(received))
    for field, t in times.items():
        getattr(r, field).CopyFrom(ts(t))
    return r


def reported(env, report: ipb.Report) -> events_pb2.Event:
    e = event("intake", "intake.IncidentReported", report.name, ipb.IncidentReported(report=report),
              report.receive_time.ToDatetime(tzinfo=UTC))
    assert deliver(env, e)
    return e


def updated(env, report: ipb.Report, action: str) -> None:
    assert deliver(env, event("intake", "intake.ReportUpdated", report.name,
                              ipb.ReportUpdated(report=report, action=action), env["clock"]()))


def fact(env, name: str):
    with env["rt"].engine.connect() as conn:
        return conn.execute(text("SELECT * FROM warehouse.report_facts WHERE report = :r"), {"r": name}).first()


def hourly(env, station: str, hour: datetime, incident_type: str):
    with env["rt"].engine.connect() as conn:
        return conn.execute(text("SELECT * FROM warehouse.rollup_hourly WHERE station_id = :s AND hour = :h "
                                 "AND incident_type = :t"), {"s": station, "h": hour, "t": incident_type}).first()


def assert_rollups_match_facts(env) -> None:
    """Every rollup row equals the GROUP BY over the facts it counts (no row missing, none extra)."""
    cols = ", ".join(f"{m}" for m in domain.MEASURES)
    with env["rt"].engine.connect() as conn:
        from_facts = conn.execute(text(f"""
            SELECT date_trunc('hour', receive_time), station_id, incident_type, count(*), count(answer_time),
                   count(*) FILTER (WHERE answer_time - receive_time <= interval '3 seconds'),
                   count(hand_off_time),
                   count(*) FILTER (WHERE hand_off_time - coalesce(answer_time, receive_time) <= interval '30 seconds'),
                   count(arrival_time),
                   count(*) FILTER (WHERE arrival_time - receive_time
                                    <= make_interval(secs => coalesce(arrival_target_s, 300))),
                   count(*) FILTER (WHERE merged), count(*) FILTER (WHERE satisfaction <> ''),
                   count(*) FILTER (WHERE satisfaction IN ('SATISFIED', 'BASICALLY_SATISFIED')),
                   count(*) FILTER (WHERE referred), count(close_time)
            FROM warehouse.report_facts GROUP BY 1, 2, 3""")).all()
        rolled = conn.execute(text(f"SELECT hour, station_id, incident_type, {cols} FROM warehouse.rollup_hourly "
                                   "WHERE reports <> 0")).all()
        assert sorted(map(tuple, from_facts)) == sorted(map(tuple, rolled))
        by_day = {}
        for hour, station, kind, *counts in from_facts:
            key = (hour.astimezone(domain.CITY_TIME).date(), station, kind)
            by_day[key] = [a + b for a, b in zip(by_day.get(key, [0] * len(counts)), counts)]
        rolled_days = conn.execute(text(f"SELECT day, station_id, incident_type, {cols} FROM warehouse.rollup_daily "
                                        "WHERE reports <> 0")).all()
        assert sorted((*k, *v) for k, v in by_day.items()) == sorted(map(tuple, rolled_days))
        cells = conn.execute(text("""
            SELECT (receive_time AT TIME ZONE 'Asia/Shanghai')::date, h3_r8, station_id, incident_type, count(*)
            FROM warehouse.report_facts WHERE h3_r8 IS NOT NULL GROUP BY 1, 2, 3, 4""")).all()
        rolled_cells = conn.execute(text("SELECT day, cell, station_id, incident_type, reports "
                                         "FROM warehouse.rollup_daily_cells WHERE reports <> 0")).all()
        assert sorted(map(tuple, cells)) == sorted(map(tuple, rolled_cells))
        months = conn.execute(text("""
            SELECT date_trunc('month', receive_time AT TIME ZONE 'Asia/Shanghai')::date, h3_r8, station_id,
                   incident_type, count(*)
            FROM warehouse.report_facts WHERE h3_r8 IS NOT NULL GROUP BY 1, 2, 3, 4""")).all()
        rolled_months = conn.execute(text("SELECT month, cell, station_id, incident_type, reports "
                                          "FROM warehouse.rollup_monthly_cells WHERE reports <> 0")).all()
        assert sorted(map(tuple, months)) == sorted(map(tuple, rolled_months))
        for table, bucket in (("rollup_daily_cell_totals", "day"), ("rollup_monthly_cell_totals", "month")):
            expr = ("(receive_time AT TIME ZONE 'Asia/Shanghai')::date" if bucket == "day"
                    else "date_trunc('month', receive_time AT TIME ZONE 'Asia/Shanghai')::date")
            totals = conn.execute(text(f"SELECT {expr}, h3_r8, station_id, count(*) FROM warehouse.report_facts "
                                       "WHERE h3_r8 IS NOT NULL GROUP BY 1, 2, 3")).all()
            rolled_totals = conn.execute(text(f"SELECT {bucket}, cell, station_id, reports FROM warehouse.{table} "
                                              "WHERE reports <> 0")).all()
            assert sorted(map(tuple, totals)) == sorted(map(tuple, rolled_totals))


# -- events in: facts and rollups ---------------------------------------------------------------

def test_a_report_and_its_updates_become_one_fact_and_move_the_rollups(env):
    name = f"reports/{uuid.uuid4().hex[:10]}"
    at = T0 + timedelta(minutes=5)
    r = report_pb(name, S01, at)
    first = reported(env, r)
    row = fact(env, name)
    assert (row.station_id, row.incident_type, row.category, row.channel) == ("S01", "FIGHT", "POLICE", "PHONE")
    assert row.district_id == S01.district_id
    assert row.h3_r8 == domain.cells_of(S01.hq[0] + 0.001, S01.hq[1] + 0.001)["h3_r8"]
    assert hourly(env, "S01", T0, "FIGHT").reports >= 1
    before = hourly(env, "S01", T0, "FIGHT")

    # Answered in 2 s: counted as answered within 3 s.
    r.answer_time.CopyFrom(ts(at + timedelta(seconds=2)))
    updated(env, r, "ANSWERED")
    after = hourly(env, "S01", T0, "FIGHT")
    assert (after.reports, after.answered, after.answered_3s) == (before.reports, before.answered + 1,
                                                                 before.answered_3s + 1)
    # The same event again (redelivered): the inbox drops it, nothing moves.
    assert deliver(env, first) is False
    assert hourly(env, "S01", T0, "FIGHT") == after

    # Classification corrected: the report leaves FIGHT's rows for ASSAULT's.
    r.classification.incident_type = "ASSAULT"
    updated(env, r, "CORRECTED")
    assert hourly(env, "S01", T0, "FIGHT").reports == before.reports - 1
    assault = hourly(env, "S01", T0, "ASSAULT")
    assert (assault.reports, assault.answered_3s) == (1, 1)
    assert fact(env, name).incident_type == "ASSAULT"
    assert_rollups_match_facts(env)


def test_dispatch_before_intake_is_kept_and_applied_when_the_report_arrives(env):
    name = f"reports/{uuid.uuid4().hex[:10]}"
    at = T0 + timedelta(minutes=20)
    case = dpb.DispatchCase(name=f"cases/{uuid.uuid4().hex[:8]}", report=name, station_id="S01",
                            status=dpb.CASE_STATUS_DISPATCHED, arrival_target_seconds=60)
    case.accept_time.CopyFrom(ts(at + timedelta(seconds=25)))
    case.arrive_time.CopyFrom(ts(at + timedelta(seconds=70)))  # late for a 60 s circle
    assert deliver(env, event("dispatch", "dispatch.CaseUpdated", case.name, dpb.CaseUpdated(dispatch_case=case),
                              at + timedelta(seconds=70)))
    assert fact(env, name) is None
    reported(env, report_pb(name, S01, at, answer_time=at + timedelta(seconds=1)))
    row = fact(env, name)
    assert row.hand_off_time == at + timedelta(seconds=25)
    assert row.arrival_time == at + timedelta(seconds=70) and row.arrival_target_s == 60
    assert row.dispatch_case == case.name
    # Then the case closes, and a 12345 work order names the report: closed and referred.
    case.close_time.CopyFrom(ts(at + timedelta(hours=1)))
    case.status = dpb.CASE_STATUS_CLOSED
    assert deliver(env, event("dispatch", "dispatch.CaseUpdated", case.name, dpb.CaseUpdated(dispatch_case=case),
                              at + timedelta(hours=1)))
    order = rpb.WorkOrder(name="workOrders/W1", report=name)
    assert deliver(env, event("referral", "referral.WorkOrderCreated", order.name,
                              rpb.WorkOrderCreated(work_order=order), at + timedelta(hours=1)))
    row = fact(env, name)
    assert row.close_time == at + timedelta(hours=1) and row.referred and row.work_order == "workOrders/W1"
    assert_rollups_match_facts(env)


def test_satisfaction_and_merging_from_intake(env):
    name = f"reports/{uuid.uuid4().hex[:10]}"
    at = T0 + timedelta(minutes=40)
    r = report_pb(name, S02, at, incident_type="THEFT")
    reported(env, r)
    r.merged_into = "reports/earlier"
    r.satisfaction = common_pb2.SATISFACTION_BASICALLY_SATISFIED
    updated(env, r, "MERGED")
    row = fact(env, name)
    assert row.merged and row.satisfaction == "BASICALLY_SATISFIED"
    h = hourly(env, "S02", T0, "THEFT")
    assert (h.repeats, h.rated, h.satisfied) == (1, 1, 1)
    assert_rollups_match_facts(env)


# -- partitions --------------------------------------------------------------------------------

def partitions(env) -> set[str]:
    with env["rt"].engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'warehouse.report_facts'::regclass")).scalars())


def test_the_maintenance_job_keeps_months_ahead_and_moves_rows_out_of_the_default(env):
    # Started (warm-up) at T0: March 2028 and three months ahead exist.
    assert {"report_facts_202803", "report_facts_202804", "report_facts_202805", "report_facts_202806"} <= partitions(env)
    # A report from a month no partition holds lands in the default partition...
    far = datetime(2029, 2, 3, 1, 0, tzinfo=UTC)
    name = f"reports/{uuid.uuid4().hex[:10]}"
    reported(env, report_pb(name, S01, far))
    with env["rt"].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM warehouse.report_facts_default WHERE report = :r"),
                            {"r": name}).scalar() == 1
    # ...until the job reaches that month: the row moves into the new partition, nothing lost.
    env["clock"].set(datetime(2028, 12, 15, tzinfo=UTC))
    try:
        created = workers.maintain_partitions(env["rt"])
    finally:
        env["clock"].set(T0)
    assert "report_facts_202902" in created
    with env["rt"].engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM warehouse.report_facts_202902 WHERE report = :r"),
                            {"r": name}).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM warehouse.report_facts_default")).scalar() == 0
        # A query by time touches only the partitions of its months (pruning).
        plan = "\n".join(conn.execute(text(
            "EXPLAIN SELECT count(*) FROM warehouse.report_facts WHERE receive_time >= '2028-03-01T00:00Z' "
            "AND receive_time < '2028-03-20T00:00Z'")).scalars())
    assert "report_facts_202803" in plan and "report_facts_202804" not in plan
    # Again: nothing more to do.
    assert workers.maintain_partitions(env["rt"]) == []
    assert_rollups_match_facts(env)


# -- the analytics over gRPC -------------------------------------------------------------------

def box_around(*stations, pad=0.02) -> common_pb2.BoundingBox:
    return common_pb2.BoundingBox(
        south_west=common_pb2.GeoPoint(longitude=min(s.hq[0] for s in stations) - pad,
                                       latitude=min(s.hq[1] for s in stations) - pad),
        north_east=common_pb2.GeoPoint(longitude=max(s.hq[0] for s in stations) + pad,
                                       latitude=max(s.hq[1] for s in stations) + pad))


@pytest.fixture(scope="module")
def week(env):
    """Reports of one city week in April 2028 and the same days a year before, at S01 and S02."""
    base = datetime(2028, 4, 3, 0, 0, tzinfo=domain.CITY_TIME)  # Monday, midnight in the city
    made = []
    for day, station, n, kind in ((0, S01, 3, "FIGHT"), (1, S01, 2, "THEFT"), (2, S02, 4, "FIGHT"),
                                  (-364, S01, 5, "FIGHT"), (-7, S01, 1, "FIGHT")):
        for i in range(n):
            at = base + timedelta(days=day, minutes=10 * i)
            name = f"reports/wk-{uuid.uuid4().hex[:8]}"
            reported(env, report_pb(name, station, at, incident_type=kind,
                                    answer_time=at + timedelta(seconds=2 if i % 2 == 0 else 6),
                                    offset=(0.001 * i, 0.0)))
            made.append((name, station.station_id, at, kind))
    return dict(base=base, made=made)


def test_heat_map_counts_cells_in_the_box_and_window(env, week):
    base = week["base"]
    req = pb.GetHeatMapRequest(box=box_around(S01, S02), start_time=ts(base), end_time=ts(base + timedelta(days=7)))
    hm = env["stub"].GetHeatMap(req, metadata=COMMANDER)
    assert hm.total == 9  # the 3 + 2 + 4 of the week, not the year before nor the week before
    assert sum(c.count for c in hm.cells) == 9
    assert all(c.cell and c.center.longitude for c in hm.cells)
    fights = env["stub"].GetHeatMap(pb.GetHeatMapRequest(
        box=box_around(S01, S02), start_time=ts(base), end_time=ts(base + timedelta(days=7)),
        incident_types=["FIGHT"]), metadata=COMMANDER)
    assert fights.total == 7
    coarse = env["stub"].GetHeatMap(pb.GetHeatMapRequest(
        box=box_around(S01, S02), start_time=ts(base), end_time=ts(base + timedelta(days=7)), resolution=7),
        metadata=COMMANDER)
    assert coarse.total == 9 and len(coarse.cells) <= len(hm.cells)
    # A box around S02 only.
    only = env["stub"].GetHeatMap(pb.GetHeatMapRequest(box=box_around(S02, pad=0.005), start_time=ts(base),
                                                       end_time=ts(base + timedelta(days=7))), metadata=COMMANDER)
    assert only.total == 4


def test_a_station_officer_sees_their_station_only(env, week):
    base = week["base"]
    officer = caller(["officer"], station="S01", sub="P1100001")
    req = pb.GetHeatMapRequest(box=box_around(S01, S02), start_time=ts(base), end_time=ts(base + timedelta(days=7)))
    assert env["stub"].GetHeatMap(req, metadata=officer).total == 5
    with pytest.raises(grpc.RpcError) as err:
        env["stub"].GetTrend(pb.GetTrendRequest(station_id="S02", start_time=ts(base),
                                                end_time=ts(base + timedelta(days=7))), metadata=officer)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        env["stub"].GetStationKpis(pb.GetStationKpisRequest(district_id=S02.district_id, start_time=ts(base),
                                                            end_time=ts(base + timedelta(days=7))),
                                   metadata=caller(["officer"], station="S26", sub="P1"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        env["stub"].GetHeatMap(req, metadata=caller(["hotline_agent"], sub="h1"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_trend_by_day_with_same_period_last_year_and_last_period(env, week):
    base = week["base"]
    trend = env["stub"].GetTrend(pb.GetTrendRequest(
        station_id="S01", start_time=ts(base), end_time=ts(base + timedelta(days=7)),
        granularity=pb.GRANULARITY_DAY), metadata=COMMANDER)
    counts = [b.count for b in trend.buckets]
    assert len(counts) == 7 and counts[:2] == [3, 2] and sum(counts) == 5
    assert trend.total == 5
    # 2027-04-05 is 364 days before: the same calendar day a year before is 2027-04-03 for bucket 0...
    assert trend.last_year_total == 5 and sum(b.last_year_count for b in trend.buckets) == 5
    # ...and the week before held one FIGHT (the 环比 window of the same length).
    assert trend.previous_total == 1
    assert trend.year_on_year == pytest.approx(0.0)
    assert trend.period_on_period == pytest.approx(4.0)
    assert trend.buckets[1].previous_count == 3  # Tuesday's 环比 is Monday
    weekly = env["stub"].GetTrend(pb.GetTrendRequest(
        station_id="S01", start_time=ts(base), end_time=ts(base + timedelta(days=7)),
        granularity=pb.GRANULARITY_WEEK), metadata=COMMANDER)
    assert [(b.count, b.last_year_count, b.previous_count) for b in weekly.buckets] == [(5, 5, 1)]
    district = env["stub"].GetTrend(pb.GetTrendRequest(
        district_id=S02.district_id, start_time=ts(base), end_time=ts(base + timedelta(days=7))),
        metadata=COMMANDER)
    assert district.total == (4 if S02.district_id != S01.district_id else 9)


def test_station_kpis(env, week):
    base = week["base"]
    kpis = env["stub"].GetStationKpis(pb.GetStationKpisRequest(
        station_id="S01", start_time=ts(base), end_time=ts(base + timedelta(days=7))), metadata=COMMANDER)
    # S01's week: FIGHT i=0,1,2 (answered in 2, 6, 2 s) and THEFT i=0,1 (2, 6 s).
    assert (kpis.reports, kpis.answered) == (5, 5)
    assert kpis.answered_within_3s_share == pytest.approx(3 / 5)
    assert kpis.district_id == S01.district_id
    # A window of part days: the whole day from the daily rollup, the hours around it from the hourly one
    # (Sunday 18:00 to Tuesday 00:05, rounded out to Tuesday 01:00: Monday's three and Tuesday's two).
    part = env["stub"].GetStationKpis(pb.GetStationKpisRequest(
        station_id="S01", start_time=ts(base - timedelta(hours=6)), end_time=ts(base + timedelta(days=1, minutes=5))),
        metadata=COMMANDER)
    assert (part.reports, part.answered_within_3s_share) == (5, pytest.approx(3 / 5))
    assert part.end_time.ToDatetime(tzinfo=UTC) == base + timedelta(days=1, hours=1)
    shorter = env["stub"].GetStationKpis(pb.GetStationKpisRequest(
        station_id="S01", start_time=ts(base + timedelta(minutes=5)), end_time=ts(base + timedelta(hours=3))),
        metadata=COMMANDER)
    assert shorter.reports == 3  # the hour from Monday 00:00 holds all three FIGHTs
    # A station's chief without a filter: their station's figures, named.
    own = env["stub"].GetStationKpis(pb.GetStationKpisRequest(
        start_time=ts(base), end_time=ts(base + timedelta(days=7))),
        metadata=caller(["station_chief"], station="S01", sub="chief-1"))
    assert (own.station_id, own.reports, own.answered) == ("S01", 5, 5)


def test_threshold_over_an_arbitrary_window(env, week):
    base = week["base"]
    # S02's four FIGHTs at 00:00, 00:10, 00:20, 00:30 city time on Wednesday.
    wed = base + timedelta(days=2)
    check = env["stub"].CheckThreshold(pb.CheckThresholdRequest(
        start_time=ts(wed + timedelta(minutes=5)), end_time=ts(wed + timedelta(minutes=25)),
        incident_types=["FIGHT"], station_id="S02", threshold=2), metadata=COMMANDER)
    assert (check.count, check.exceeded) == (2, True)
    # Across hour boundaries: the whole hours from the rollup, the edges from the facts.
    wide = env["stub"].CheckThreshold(pb.CheckThresholdRequest(
        start_time=ts(wed - timedelta(minutes=30)), end_time=ts(wed + timedelta(hours=2, minutes=15)),
        station_id="S02", threshold=5), metadata=COMMANDER)
    assert (wide.count, wide.exceeded) == (4, False)
    boxed = env["stub"].CheckThreshold(pb.CheckThresholdRequest(
        start_time=ts(wed), end_time=ts(wed + timedelta(minutes=15)), box=box_around(S02, pad=0.01)),
        metadata=COMMANDER)
    assert boxed.count == 2


def test_threshold_of_a_grid_a_cell_and_only_the_reports_alerts_count(env):
    """The alerts rules' areas (a grid, an H3 cell) and what they count (not merged, not invalid), over a
    window of whole hours (the rollup) and one of minutes (the facts)."""
    at = datetime(2028, 5, 10, 4, 0, tzinfo=UTC)
    grid = next(g.grid_id for g in city.grids() if g.station_id == "S01")
    made = []
    for i, (kind, category) in enumerate((("FIGHT", ipb.CATEGORY_POLICE), ("FIGHT", ipb.CATEGORY_POLICE),
                                          ("FIGHT", ipb.CATEGORY_POLICE), ("PRANK", ipb.CATEGORY_INVALID))):
        r = report_pb(f"reports/th-{uuid.uuid4().hex[:8]}", S01, at + timedelta(minutes=5 * i), incident_type=kind,
                      category=category)
        reported(env, r)
        made.append(r)
    made[2].merged_into = made[0].name
    updated(env, made[2], "MERGED")
    cell = h3.latlng_to_cell(S01.hq[1] + 0.001, S01.hq[0] + 0.001, 9)

    def count(start, end, **area):
        return env["stub"].CheckThreshold(pb.CheckThresholdRequest(
            start_time=ts(start), end_time=ts(end), **area), metadata=COMMANDER).count

    hours = (at - timedelta(hours=1), at + timedelta(hours=2))
    minutes = (at + timedelta(minutes=1), at + timedelta(minutes=20))
    assert count(*hours, station_id="S01") - count(*hours, station_id="S01", counted_only=True) == 2
    assert count(*hours, grid_id=grid) == 4
    assert count(*hours, grid_id=grid, counted_only=True) == 2
    assert count(*minutes, grid_id=grid, counted_only=True) == 1
    assert count(*hours, cell=cell, incident_types=["FIGHT"]) == 3
    assert count(*hours, cell=cell, incident_types=["FIGHT"], counted_only=True) == 2
    assert count(*hours, cell=h3.cell_to_parent(cell, 7)) == 4
    with pytest.raises(grpc.RpcError) as err:
        count(*hours, grid_id="NOPE", cell="zz", station_id="S01")
    assert {"grid_id", "cell"} <= set(field_violations(err.value))
    with pytest.raises(grpc.RpcError) as err:
        count(*hours, cell=h3.cell_to_parent(cell, 5))
    assert "cell" in field_violations(err.value)
    # A station's officer asks of their station's grids only.
    with pytest.raises(grpc.RpcError) as err:
        env["stub"].CheckThreshold(pb.CheckThresholdRequest(start_time=ts(hours[0]), end_time=ts(hours[1]),
                                                            grid_id=grid),
                                   metadata=caller(["officer"], station="S02", sub="P2"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_bad_windows_and_areas_name_their_fields(env):
    with pytest.raises(grpc.RpcError) as err:
        env["stub"].GetHeatMap(pb.GetHeatMapRequest(), metadata=COMMANDER)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"box", "start_time", "end_time"} <= set(field_violations(err.value))
    with pytest.raises(grpc.RpcError) as err:
        env["stub"].GetTrend(pb.GetTrendRequest(start_time=ts(T0), end_time=ts(T0 - timedelta(hours=1)),
                                                station_id="S99"), metadata=COMMANDER)
    assert set(field_violations(err.value)) == {"end_time", "station_id"}
    with pytest.raises(grpc.RpcError) as err:
        env["stub"].CheckThreshold(pb.CheckThresholdRequest(
            start_time=ts(T0), end_time=ts(T0 + timedelta(days=40)), incident_types=["bad type!"],
            threshold=-1), metadata=COMMANDER)
    assert set(field_violations(err.value)) == {"end_time", "incident_types", "threshold"}
    with pytest.raises(grpc.RpcError) as err:
        env["stub"].GetTrend(pb.GetTrendRequest(start_time=ts(T0), end_time=ts(T0 + timedelta(days=200)),
                                                granularity=pb.GRANULARITY_HOUR), metadata=COMMANDER)
    assert field_violations(err.value) == ["granularity"]


# -- the bulk load -----------------------------------------------------------------------------

class Interrupted(Exception):
    pass


def test_a_load_of_20000_reports_resumes_after_an_interruption_and_builds_its_rollups(env):
    engine = env["rt"].engine
    end = datetime(2026, 6, 30, tzinfo=UTC)
    lines = []

    def stop_after_two_batches(line):
        lines.append(line)
        if sum(x.startswith("  batch") for x in lines) == 2:
            raise Interrupted

    with pytest.raises(Interrupted):
        seed.load(engine, reports=20_000, years=2, batch_size=4_000, end=end, out=stop_after_two_batches)
    with engine.connect() as conn:
        run = conn.execute(text("SELECT * FROM warehouse.load_runs ORDER BY load_id DESC LIMIT 1")).first()
        assert (run.batches_done, run.rows_loaded, run.state) == (2, 8_000, "LOADING")
    resumed: list[str] = []
    summary = seed.load(engine, reports=20_000, years=2, batch_size=4_000, out=resumed.append)
    assert summary.load_id == run.load_id and summary.resumed_from_batch == 2 and summary.rows == 12_000
    # The rollups, the long part of a large load, say how far they are.
    built = [x.split(":")[1].split("(")[0].strip() for x in resumed if x.startswith("  rollup ")]
    assert built == [t.name for t in ROLLUPS.values()]
    assert resumed[-1].startswith(f"load {run.load_id}: 12,000 rows")
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*), count(DISTINCT report), min(receive_time), max(receive_time) "
                                 "FROM warehouse.report_facts WHERE load_id = :l"), {"l": run.load_id}).one()
        assert rows[0] == rows[1] == 20_000
        assert end - timedelta(days=2 * 366) <= rows[2] and rows[3] <= end + timedelta(days=1)
        assert conn.execute(text("SELECT state FROM warehouse.load_runs WHERE load_id = :l"),
                            {"l": run.load_id}).scalar() == "ROLLED_UP"
        # The load made the partitions of its months first: none of its rows is in the default partition.
        assert conn.execute(text("SELECT count(*) FROM warehouse.report_facts_default WHERE load_id = :l"),
                            {"l": run.load_id}).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM warehouse.rollup_daily_cells "
                                 "WHERE longitude = 0 AND latitude = 0")).scalar() == 0
        # The generated history has the profiles it promises: more in the evening than before dawn, and
        # the taxonomy's categories all present.
        by_hour = dict(conn.execute(text(
            "SELECT extract(hour FROM receive_time AT TIME ZONE 'Asia/Shanghai')::int, count(*) "
            "FROM warehouse.report_facts WHERE load_id = :l GROUP BY 1"), {"l": run.load_id}).all())
        assert by_hour[20] > 3 * by_hour[4]
        cats = set(conn.execute(text("SELECT DISTINCT category FROM warehouse.report_facts WHERE load_id = :l"),
                                {"l": run.load_id}).scalars())
        assert cats == {"POLICE", "NON_POLICE", "CONSULTATION", "INVALID"}
    assert_rollups_match_facts(env)
    # The analytics read the loaded history: a city-year heat map (a box a little wider than the city, so
    # that every cell's centre is in it) counts the year's rows.
    west, south, east, north = city.city_outline().polygon.bounds
    outline = (west - 0.01, south - 0.01, east + 0.01, north + 0.01)
    year = env["stub"].GetHeatMap(pb.GetHeatMapRequest(
        box=common_pb2.BoundingBox(south_west=common_pb2.GeoPoint(longitude=outline[0], latitude=outline[1]),
                                   north_east=common_pb2.GeoPoint(longitude=outline[2], latitude=outline[3])),
        start_time=ts(datetime(2025, 1, 1, tzinfo=domain.CITY_TIME)),
        end_time=ts(datetime(2026, 1, 1, tzinfo=domain.CITY_TIME))), metadata=COMMANDER)
    with engine.connect() as conn:
        expected = conn.execute(text(
            "SELECT count(*) FROM warehouse.report_facts WHERE receive_time >= '2024-12-31T16:00Z' "
            "AND receive_time < '2025-12-31T16:00Z'")).scalar()
    assert year.total == expected > 5_000
