"""The situation map (一张图): active cases and on-duty units in a box, counted per
station and status, against a real Postgres loaded with the sample city."""
from __future__ import annotations

from collections import Counter

import grpc
import pytest

from sampledata import city
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
