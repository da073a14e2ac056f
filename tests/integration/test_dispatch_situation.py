"""The situation map (一张图): active cases and on-duty units in a box, counted per
station and status, against a real Postgres loaded with the sample city; the active alerts of the
box from a stand-in alerts service (slow or away: the situation still answers)."""
from __future__ import annotations

import time
from collections import Counter
from concurrent import futures

import grpc
import pytest

from sampledata import city
from services.dispatch import clients
from smart110.alerts.v1 import alerts_service_pb2 as alerts_pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as alerts_grpc
from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from tests import support
from tests.integration.dispatch_harness import dispatch_service

COMMANDER = support.caller(["commander"], station="S01", sub="p-test")


def box(west, south, east, north) -> common_pb2.BoundingBox:
    return common_pb2.BoundingBox(south_west=common_pb2.GeoPoint(longitude=west, latitude=south),
                                  north_east=common_pb2.GeoPoint(longitude=east, latitude=north))


@pytest.fixture(scope="module")
def dispatch(admin_url):
    with dispatch_service(admin_url, workers=False) as d:
        yield d


def situation(dispatch, metadata=COMMANDER, **kw) -> pb.Situation:
    return dispatch.stub.GetSituation(pb.GetSituationRequest(**kw), metadata=metadata, timeout=10)


def test_cases_in_the_box_are_shown_and_counted_per_station_and_status(dispatch):
    # Stations S81/S82 and a corner of the map no sample unit stands in.
    a = dispatch.open_case(station="S81", lon=114.901, lat=30.901)
    dispatch.clock.advance(1)
    b = dispatch.open_case(station="S81", lon=114.902, lat=30.902, incident_type="THEFT", priority=3)
    dispatch.clock.advance(1)
    c = dispatch.open_case(station="S82", lon=114.903, lat=30.903)
    far = dispatch.open_case(station="S81", lon=114.990, lat=30.990)
    got = situation(dispatch, bounds=box(114.90, 30.90, 114.95, 30.95))
    assert {x.name for x in got.cases} == {a.name, b.name, c.name} and far.name not in {x.name for x in got.cases}
    assert [x.name for x in got.cases] == [c.name, b.name, a.name], "newest first"
    counts = {s.station_id: dict(s.cases_by_status) for s in got.stations}
    assert counts == {"S81": {"CASE_STATUS_PENDING": 2}, "S82": {"CASE_STATUS_PENDING": 1}}
    assert not got.units and not got.cases_truncated and not got.units_truncated


def test_units_on_duty_in_the_box_are_shown_and_counted(dispatch):
    west, south, east, north = 114.30, 30.55, 114.36, 30.60
    expected = Counter(u.station_id for u in city.units()
                       if west <= u.home[0] <= east and south <= u.home[1] <= north)
    assert expected, "the sample city has units in this box"
    got = situation(dispatch, bounds=box(west, south, east, north))
    assert all(west <= u.position.longitude <= east and south <= u.position.latitude <= north for u in got.units)
    assert Counter(u.station_id for u in got.units) == expected
    units_counted = {s.station_id: dict(s.units_by_status) for s in got.stations if s.units_by_status}
    assert units_counted == {s: {"UNIT_STATUS_AVAILABLE": n} for s, n in expected.items()}


def test_one_station_without_a_box(dispatch):
    got = situation(dispatch, station_id="S03")
    assert got.units and {u.station_id for u in got.units} == {"S03"}
    assert len(got.units) == sum(1 for u in city.units() if u.station_id == "S03")
    assert [s.station_id for s in got.stations] == ["S03"]


def test_bad_boxes_are_refused_naming_the_fields(dispatch):
    cases = [
        (dict(), {"bounds"}),
        (dict(bounds=common_pb2.BoundingBox()), {"bounds.south_west", "bounds.north_east"}),
        (dict(bounds=box(114.5, 30.6, 114.4, 30.5)), {"bounds.north_east.longitude", "bounds.north_east.latitude"}),
        (dict(bounds=box(-190, 30, 114, 95)), {"bounds.south_west.longitude", "bounds.north_east.latitude"}),
        (dict(bounds=box(100, 20, 120, 40)), {"bounds"}),
        (dict(station_id="七号所"), {"station_id"}),
    ]
    for request, fields in cases:
        with pytest.raises(grpc.RpcError) as err:
            situation(dispatch, **request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, request
        assert set(support.field_violations(err.value)) == fields, request


def test_the_map_is_for_the_command_and_call_taking_roles(dispatch):
    with pytest.raises(grpc.RpcError) as err:
        situation(dispatch, metadata=support.caller(["officer"], station="S01", sub="p-test"), station_id="S01")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert situation(dispatch,
        metadata=support.caller(["call_taker"], sub="p-test"), station_id="S01").units


# -- the alerts of the view: asked of the alerts service, with a short deadline ------------------------

class StandInAlerts(alerts_grpc.AlertsServiceServicer):
    """Alerts' ListAlerts on a real socket: answers from `active` by state, after `delay` seconds,
    and records each request."""

    def __init__(self):
        self.active: list[alerts_pb.Alert] = []
        self.delay = 0.0
        self.requests: list[alerts_pb.ListAlertsRequest] = []

    def ListAlerts(self, request, context):
        self.requests.append(request)
        time.sleep(self.delay)
        return alerts_pb.ListAlertsResponse(alerts=[a for a in self.active if a.state == request.state])


def alert(name, level, state, station, seen_s, shared=()) -> alerts_pb.Alert:
    a = alerts_pb.Alert(name=f"alerts/{name}", level=level, state=state, summary=f"预警{name}",
                        area=alerts_pb.Area(station_id=station, shared_station_ids=list(shared),
                                            center=common_pb2.GeoPoint(longitude=114.905, latitude=30.905)))
    a.last_seen_time.FromSeconds(1_700_000_000 + seen_s)
    return a


@pytest.fixture()
def stand_in_alerts(dispatch):
    stand_in = StandInAlerts()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
    alerts_grpc.add_AlertsServiceServicer_to_server(stand_in, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    before = dispatch.rt.context.situation_alerts
    dispatch.rt.context.situation_alerts = clients.AlertsInView(channel, timeout_seconds=0.5)
    try:
        yield stand_in
    finally:
        dispatch.rt.context.situation_alerts = before
        channel.close()
        server.stop(0).wait(5)


def test_the_situation_carries_the_active_alerts_of_its_box(dispatch, stand_in_alerts):
    case = dispatch.open_case(station="S81", lon=114.911, lat=30.911)
    stand_in_alerts.active = [
        alert("a-blue", alerts_pb.ALERT_LEVEL_BLUE, alerts_pb.ALERT_STATE_FIRING, "S01", 30),
        alert("a-red-old", alerts_pb.ALERT_LEVEL_RED, alerts_pb.ALERT_STATE_ACKNOWLEDGED, "S01", 10),
        alert("a-red-new", alerts_pb.ALERT_LEVEL_RED, alerts_pb.ALERT_STATE_FIRING, "S02", 20),
        alert("a-border", alerts_pb.ALERT_LEVEL_YELLOW, alerts_pb.ALERT_STATE_FIRING, "S02", 40, shared=["S01"]),
    ]
    view = box(114.90, 30.90, 114.95, 30.95)
    got = situation(dispatch, bounds=view)
    assert case.name in {c.name for c in got.cases}
    assert not got.alerts_unavailable and not got.alerts_truncated
    # Most severe first, then the latest seen.
    assert [a.name for a in got.alerts] == ["alerts/a-red-new", "alerts/a-red-old", "alerts/a-border", "alerts/a-blue"]
    # Asked for the firing and the acknowledged ones in the same box.
    asked = stand_in_alerts.requests[-2:]
    assert {r.state for r in asked} == {alerts_pb.ALERT_STATE_FIRING, alerts_pb.ALERT_STATE_ACKNOWLEDGED}
    assert all(r.bounds == view for r in asked)
    # A station's chief sees their station's alerts and a border case shared with it, not the neighbour's own.
    chief = support.caller(["station_chief"], station="S01", sub="p-chief")
    mine = situation(dispatch, metadata=chief, bounds=view)
    assert [a.name for a in mine.alerts] == ["alerts/a-red-old", "alerts/a-border", "alerts/a-blue"]
    # One station without a box: asked by station.
    situation(dispatch, station_id="S01")
    assert {r.station_id for r in stand_in_alerts.requests[-2:]} == {"S01"}
    assert not any(r.HasField("bounds") for r in stand_in_alerts.requests[-2:])


def test_the_situation_answers_without_alerts_when_alerts_is_slow_or_away(dispatch, stand_in_alerts):
    case = dispatch.open_case(station="S81", lon=114.921, lat=30.921)
    stand_in_alerts.active = [alert("a-slow", alerts_pb.ALERT_LEVEL_RED, alerts_pb.ALERT_STATE_FIRING, "S81", 0)]
    stand_in_alerts.delay = 3.0
    started = time.monotonic()
    got = situation(dispatch, bounds=box(114.90, 30.90, 114.95, 30.95))
    assert time.monotonic() - started < 2.5, "the deadline is the client's, not the slow server's"
    assert got.alerts_unavailable and not got.alerts
    assert case.name in {c.name for c in got.cases}
    # Nothing listens there: the same answer, at once.
    dispatch.rt.context.situation_alerts = clients.AlertsInView(
        grpc.insecure_channel("127.0.0.1:1"), timeout_seconds=0.5)
    away = situation(dispatch, bounds=box(114.90, 30.90, 114.95, 30.95))
    assert away.alerts_unavailable and not away.alerts and case.name in {c.name for c in away.cases}
