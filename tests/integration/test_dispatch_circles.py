"""Response circles (1-3-5 minutes): arrival against each grid's target, kept on the
case and reported per station, over real gRPC against a real Postgres."""
from __future__ import annotations

from datetime import timedelta

import grpc
import pytest

from sampledata import city
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from tests import support
from tests.integration.dispatch_harness import dispatch_service, report_in, see_through

COMMANDER = support.caller(["commander"], station="S01", sub="p-test")
TARGET = {g.grid_id: g.arrival_target_s for g in city.grids()}


@pytest.fixture(scope="module")
def h(admin_url):
    with dispatch_service(admin_url) as harness:
        yield harness


def stats(h, metadata=COMMANDER, **kw) -> pb.ResponseCircleStats:
    return h.stub.GetResponseCircleStats(pb.GetResponseCircleStatsRequest(**kw), metadata=metadata, timeout=10)


def test_arrival_against_the_grid_target_is_kept_on_the_case_and_counted_per_station(h):
    assert (TARGET["S02-G01"], TARGET["S02-G02"], TARGET["S02-G03"], TARGET["S01-G01"]) == (60, 180, 180, 60)
    # The harness reports 20 s before the case opens; the unit accepts at once.
    quick = see_through(h, report_in(h, "S02-G01"), on_scene_after=10, until="ON_SCENE")
    late = see_through(h, report_in(h, "S02-G02"), on_scene_after=200)
    in_time = see_through(h, report_in(h, "S02-G03"), on_scene_after=100)
    elsewhere = see_through(h, report_in(h, "S01-G01"), on_scene_after=50)
    waiting = h.case_of(report_in(h, "S02-G01"))
    h.clock.advance(61)  # the waiting case is now past its 60 s target with nobody on scene

    assert (quick.arrival_seconds, quick.arrival_target_met, quick.arrival_target_seconds) == (30, True, 60)
    assert (late.arrival_seconds, late.arrival_target_met) == (220, False)
    assert (in_time.arrival_seconds, in_time.arrival_target_met) == (120, True)
    assert (elsewhere.arrival_seconds, elsewhere.arrival_target_met) == (70, False)
    assert h.case(waiting.name).arrival_seconds == 0 and not h.case(waiting.name).arrival_target_met

    got = stats(h)
    s02 = next(s for s in got.stations if s.station_id == "S02")
    assert (s02.arrived, s02.within_target, s02.overdue_not_arrived) == (3, 2, 1)
    assert s02.within_target_rate == pytest.approx(2 / 3)
    assert s02.mean_arrival_seconds == pytest.approx((30 + 220 + 120) / 3)
    assert [(t.target_seconds, t.arrived, t.within_target, t.mean_arrival_seconds) for t in s02.tiers] == [
        (60, 1, 1, 30.0), (180, 2, 1, 170.0)]
    s01 = next(s for s in got.stations if s.station_id == "S01")
    assert (s01.arrived, s01.within_target, s01.mean_arrival_seconds) == (1, 0, 70.0)
    assert (got.total.station_id, got.total.arrived, got.total.within_target) == ("", 4, 2)
    assert got.total.overdue_not_arrived == 1

    only = stats(h, station_id="S02")
    assert [s.station_id for s in only.stations] == ["S02"] and only.total.arrived == 3
    chief = stats(h, metadata=support.caller(["station_chief"], station="S01", sub="p-test"))
    assert [s.station_id for s in chief.stations] == ["S01"]
    window = pb.GetResponseCircleStatsRequest()
    window.start_time.FromDatetime(h.clock() + timedelta(days=1))
    assert not h.stub.GetResponseCircleStats(window, metadata=COMMANDER, timeout=10).stations


def test_response_statistics_check_the_caller_and_the_window(h):
    with pytest.raises(grpc.RpcError) as err:
        stats(h, metadata=support.caller(["station_chief"], station="S01", sub="p-test"), station_id="S02")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and support.error_reason(err.value) == "OUT_OF_JURISDICTION"
    with pytest.raises(grpc.RpcError) as err:
        stats(h, metadata=support.caller(["call_taker"], sub="p-test"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    bad = pb.GetResponseCircleStatsRequest(station_id="S-2")
    bad.start_time.FromSeconds(2_000_000_000)
    bad.end_time.FromSeconds(2_000_000_000)
    with pytest.raises(grpc.RpcError) as err:
        h.stub.GetResponseCircleStats(bad, metadata=COMMANDER, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(support.field_violations(err.value)) == {"station_id", "end_time"}
