"""The alerts rules' counts from the warehouse (警情数据大水库): the volume and anomaly rules ask the
warehouse's CheckThreshold before the transaction, so reports alerts never saw (a bulk-loaded history,
reports of before alerts started) count; when the warehouse does not answer, alerts' own tables do.

Both services run in-process on databases of their own, each at a virtual time, driven through
their real consumers (the prepare step is what calls the warehouse)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf import duration_pb2
from prometheus_client import REGISTRY

from sampledata import city
from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from services.alerts import clients, handlers, mapping
from services.alerts.__main__ import SPEC as ALERTS
from services.runtime import identity, metrics
from services.runtime.auth import AuthContext
from services.warehouse.__main__ import SPEC as WAREHOUSE
from tests import support
from tests.integration.test_alerts_engine import of_rule, work

T0 = datetime(2027, 6, 7, 12, 0, tzinfo=timezone.utc)  # a Monday, 20:00 in the city
CHIEF = AuthContext("chief-1", frozenset({"station_chief"}))
STATIONS = [s for s in city.stations()]
GRIDS = {s.station_id: next(g.grid_id for g in city.grids() if g.station_id == s.station_id) for s in STATIONS}


@pytest.fixture(scope="module")
def both(admin_url):
    clock = support.Clock(T0)
    with support.serving(WAREHOUSE, admin_url, clock=clock, seed=False) as warehouse, \
            support.serving(ALERTS, admin_url, clock=clock, seed=False) as alerts:
        channel = identity.with_credential(warehouse.channel, alerts.rt.credential.token)
        alerts.rt.context.counts = clients.WarehouseCounts(channel)
        yield dict(warehouse=warehouse, alerts=alerts, clock=clock)


def report(station: str, t: datetime, *, itype="FIGHT", category=intake_pb.CATEGORY_POLICE, offset=0.0005,
           merged_into="") -> intake_pb.Report:
    hq = next(s.hq for s in STATIONS if s.station_id == station)
    r = intake_pb.Report(name=f"reports/{uuid.uuid4().hex[:16]}", description="有人打架", station_id=station,
                         grid_id=GRIDS[station], merged_into=merged_into, channel=intake_pb.CHANNEL_PHONE,
                         classification=intake_pb.Classification(category=category, incident_type=itype, priority=2))
    r.receive_time.FromDatetime(t)
    r.location.point.CopyFrom(common_pb2.GeoPoint(longitude=hq[0] + offset, latitude=hq[1] + offset))
    return r


def to_warehouse(both, r: intake_pb.Report) -> None:
    """A report only the warehouse has (its feed, or a bulk load of the history)."""
    assert both["warehouse"].deliver("intake", "intake.IncidentReported", r.name, intake_pb.IncidentReported(report=r))


def to_alerts(both, r: intake_pb.Report) -> None:
    both["clock"].set(r.receive_time.ToDatetime(tzinfo=timezone.utc))
    assert both["alerts"].deliver("intake", "intake.IncidentReported", r.name, intake_pb.IncidentReported(report=r))


def rule(both, **fields):
    with work(both["alerts"], T0, CHIEF) as uow:
        return handlers.rules.create_rule(uow, rule=mapping.rule_from_pb(pb.Rule(enabled=True, **fields)))


def counted(source: str) -> float:
    return REGISTRY.get_sample_value("smart110_alerts_rule_counts_total",
                                     {"service": metrics.service(), "source": source}) or 0.0


def grid_fights_rule(both, grid: str, threshold: int):
    """A volume rule: more than `threshold` fights in the grid within an hour (网格打架)."""
    return rule(both, display_name="网格打架", kind=pb.RULE_KIND_VOLUME, level=pb.ALERT_LEVEL_ORANGE,
                window=duration_pb2.Duration(seconds=3600), threshold=threshold, area_kind=pb.AREA_KIND_GRID,
                incident_types=["FIGHT"], areas=[grid])


def warm_rules(both, station: str, t: datetime) -> None:
    """One report of another kind through alerts: its rules cache reads the rules in force (the prepare
    step uses the rules of the last event)."""
    to_alerts(both, report(station, t, itype="NOISE", category=intake_pb.CATEGORY_NON_POLICE))


def test_a_volume_rule_fires_from_the_warehouse_figures(both):
    station, grid = "S03", GRIDS["S03"]
    r = grid_fights_rule(both, grid, threshold=3)
    # The warehouse holds three fights of the last hour (one merged repeat and one of two hours ago that
    # do not count); alerts has seen none of them.
    for minutes in (10, 20, 30):
        to_warehouse(both, report(station, T0 - timedelta(minutes=minutes)))
    to_warehouse(both, report(station, T0 - timedelta(minutes=25), merged_into="reports/x"))
    to_warehouse(both, report(station, T0 - timedelta(hours=2)))
    warm_rules(both, station, T0 - timedelta(minutes=5))
    before = counted("warehouse")
    to_alerts(both, report(station, T0))
    [alert] = of_rule(both["alerts"], r)
    # Three from the warehouse and the report itself: four, above three.
    assert alert.labels["window_count"] == "4" and alert.area.id == grid
    assert counted("warehouse") > before


def test_a_warehouse_behind_on_the_latest_reports_does_not_hide_a_surge(both):
    """Alerts has seen three fights of the last hour the warehouse has not ingested yet (it reads
    intake's feed on its own): alerts' own count is the larger, and the rule fires on it."""
    station, grid = "S06", GRIDS["S06"]
    r = grid_fights_rule(both, grid, threshold=3)
    warm_rules(both, station, T0 - timedelta(minutes=40))
    for minutes in (30, 20, 10):
        to_alerts(both, report(station, T0 - timedelta(minutes=minutes)))
    assert of_rule(both["alerts"], r) == [], "three fights are not above three"
    before = counted("warehouse")
    to_alerts(both, report(station, T0))
    assert counted("warehouse") > before, "the warehouse was asked and answered (with fewer)"
    [alert] = of_rule(both["alerts"], r)
    assert alert.labels["window_count"] == "4" and alert.area.id == grid


def test_an_anomaly_rule_compares_with_the_warehouse_history(both):
    """The same hour of the past four weeks from the warehouse: a quiet history there, a busy hour now."""
    station = "S04"
    r = rule(both, display_name="辖区同时段警情异常", kind=pb.RULE_KIND_ANOMALY, level=pb.ALERT_LEVEL_YELLOW,
             threshold=3, area_kind=pb.AREA_KIND_STATION, areas=[station], incident_types=["THEFT"],
             parameters={"history_weeks": "4", "min_count": "4"})
    hour = T0.replace(minute=0)
    for week in range(1, 5):
        to_warehouse(both, report(station, hour - timedelta(weeks=week, minutes=-15), itype="THEFT"))
    # This hour's thefts alerts sees itself (the warehouse has the history alerts never saw).
    warm_rules(both, station, hour + timedelta(minutes=1))
    for minutes in (2, 3, 4, 5):
        to_alerts(both, report(station, hour + timedelta(minutes=minutes), itype="THEFT"))
    assert of_rule(both["alerts"], r) == [], "four this hour against a history of one a week: not yet five"
    to_alerts(both, report(station, hour + timedelta(minutes=6), itype="THEFT"))
    [alert] = of_rule(both["alerts"], r)
    assert alert.labels["hour_count"] == "5"
    assert "近4周" in alert.summary


def test_without_the_warehouse_alerts_counts_itself(both):
    station, grid = "S05", GRIDS["S05"]
    r = grid_fights_rule(both, grid, threshold=1)
    for minutes in (10, 20, 30):
        to_warehouse(both, report(station, T0 - timedelta(minutes=minutes)))
    working = both["alerts"].rt.context.counts
    dead = grpc.insecure_channel("127.0.0.1:1")
    both["alerts"].rt.context.counts = clients.WarehouseCounts(dead, timeout=0.5)
    try:
        warm_rules(both, station, T0 - timedelta(minutes=5))
        before = counted("local")
        to_alerts(both, report(station, T0))
        assert of_rule(both["alerts"], r) == [], "alerts' own tables hold one fight: not above one"
        assert counted("local") == before + 1
        to_alerts(both, report(station, T0 + timedelta(minutes=1)))
        [alert] = of_rule(both["alerts"], r)
        assert alert.labels["window_count"] == "2"
    finally:
        both["alerts"].rt.context.counts = working
        dead.close()
