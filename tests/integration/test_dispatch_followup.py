"""Citizen follow-up (回访) after report-back: ratings, the station chief's flag and
the rates per station and officer, over real gRPC against a real Postgres."""
from __future__ import annotations

import grpc
import pytest

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from tests import support
from tests.integration.dispatch_harness import dispatch_service, report_in, see_through

CALL_TAKER = support.caller(["call_taker"], sub="p-followup")
SAT = common_pb2.Satisfaction


@pytest.fixture(scope="module")
def h(admin_url):
    with dispatch_service(admin_url) as harness:
        yield harness


def rate(h, case, satisfaction, comment="", request_id=None, metadata=CALL_TAKER):
    return h.stub.RateCase(pb.RateCaseRequest(
        request_id=request_id or f"rate-{case.name.split('/')[1]}-{satisfaction}", name=case.name,
        satisfaction=satisfaction, comment=comment), metadata=metadata, timeout=10)


def test_a_reported_back_case_is_rated_with_its_officers_kept_and_announced(h):
    case = see_through(h, report_in(h, "S01-G01"), on_scene_after=10)
    assert case.status == pb.CASE_STATUS_CLOSED
    handled = next(a for a in case.assignments if a.state == pb.ASSIGNMENT_STATE_REPORTED_BACK)
    rated = rate(h, case, SAT.SATISFACTION_SATISFIED, "民警来得很快，处理得很好")
    assert rated.satisfaction == SAT.SATISFACTION_SATISFIED
    fu = rated.follow_up
    assert fu.satisfaction == SAT.SATISFACTION_SATISFIED and fu.comment == "民警来得很快，处理得很好"
    assert fu.stamp.actor == "p-followup" and not fu.flagged_to_station_chief
    assert [o.officer_id for o in fu.officers] == sorted(o.officer_id for o in handled.officers)
    assert rated.timeline[-1].action == "RATED" and "满意" in rated.timeline[-1].detail
    assert h.case(case.name).follow_up == fu
    updates = [b for _, b in h.events(["dispatch.CaseUpdated"]) if b.dispatch_case.name == case.name]
    assert updates[-1].action == "RATED" and updates[-1].dispatch_case.follow_up == fu
    assert not [b for _, b in h.events(["dispatch.FollowUpFlagged"]) if b.dispatch_case.name == case.name]


def test_an_unsatisfied_citizen_is_flagged_to_the_station_chief(h):
    case = see_through(h, report_in(h, "S01-G02"), on_scene_after=200)
    rated = rate(h, case, SAT.SATISFACTION_UNSATISFIED, "等了很久才来人，态度也不好")
    assert rated.follow_up.flagged_to_station_chief
    assert [e.action for e in rated.timeline][-2:] == ["RATED", "FOLLOW_UP_FLAGGED"]
    flags = [b for _, b in h.events(["dispatch.FollowUpFlagged"]) if b.dispatch_case.name == case.name]
    assert len(flags) == 1 and flags[0].station_id == "S01"
    assert flags[0].follow_up.comment == "等了很久才来人，态度也不好"
    flagged = h.stub.ListCases(pb.ListCasesRequest(follow_up_flagged=True, page_size=500), timeout=10).cases
    assert case.name in {c.name for c in flagged}
    assert all(c.follow_up.flagged_to_station_chief for c in flagged)


def test_rating_needs_a_report_back_once_and_a_retry_changes_nothing(h):
    pending = h.case_of(report_in(h, "S01-G03"))
    with pytest.raises(grpc.RpcError) as err:
        rate(h, pending, SAT.SATISFACTION_SATISFIED)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert support.error_reason(err.value) == "NOT_REPORTED_BACK"
    on_scene = see_through(h, report_in(h, "S01-G04"), on_scene_after=10, until="ON_SCENE")
    with pytest.raises(grpc.RpcError) as err:
        rate(h, on_scene, SAT.SATISFACTION_SATISFIED)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    case = see_through(h, report_in(h, "S01-G05"), on_scene_after=10)
    first = rate(h, case, SAT.SATISFACTION_BASICALLY_SATISFIED, request_id="rate-retry-1")
    assert rate(h, case, SAT.SATISFACTION_BASICALLY_SATISFIED, request_id="rate-retry-1") == first
    assert [e.action for e in h.case(case.name).timeline].count("RATED") == 1
    with pytest.raises(grpc.RpcError) as err:
        rate(h, case, SAT.SATISFACTION_UNSATISFIED, "还是不满意", request_id="rate-retry-2")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert support.error_reason(err.value) == "ALREADY_RATED"
    with pytest.raises(grpc.RpcError) as err:
        rate(h, case, SAT.SATISFACTION_SATISFIED, request_id="rate-retry-1")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_rating_checks_input_ids_and_roles(h):
    with pytest.raises(grpc.RpcError) as err:
        h.stub.RateCase(pb.RateCaseRequest(name="x", comment="很" * 1001), metadata=CALL_TAKER, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(support.field_violations(err.value)) == {"request_id", "name", "satisfaction", "comment"}
    with pytest.raises(grpc.RpcError) as err:
        rate(h, pb.DispatchCase(name="cases/nope"), SAT.SATISFACTION_UNSATISFIED)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert support.field_violations(err.value) == ["comment"], "unsatisfied needs the citizen's words"
    with pytest.raises(grpc.RpcError) as err:
        rate(h, pb.DispatchCase(name="cases/nope"), SAT.SATISFACTION_SATISFIED)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        rate(h, pb.DispatchCase(name="cases/nope"), SAT.SATISFACTION_SATISFIED,
            metadata=support.caller(["officer"], station="S01", sub="p-test"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_rates_per_station_and_officer(h):
    ratings = [("S02-G01", SAT.SATISFACTION_SATISFIED, ""), ("S02-G02", SAT.SATISFACTION_BASICALLY_SATISFIED, ""),
               ("S02-G03", SAT.SATISFACTION_UNSATISFIED, "没有解决问题")]
    officers: dict[str, list[int]] = {}
    for grid, satisfaction, comment in ratings:
        case = see_through(h, report_in(h, grid), on_scene_after=30)
        for o in rate(h, case, satisfaction, comment).follow_up.officers:
            officers.setdefault(o.officer_id, []).append(satisfaction)
    stats = h.stub.GetFollowUpStats(pb.GetFollowUpStatsRequest(station_id="S02"),
        metadata=support.caller(["commander"], station="S01", sub="p-test"),
                                    timeout=10)
    assert [(s.station_id, s.satisfied, s.basically_satisfied, s.unsatisfied, s.total) for s in stats.stations] == [
        ("S02", 1, 1, 1, 3)]
    assert stats.stations[0].satisfaction_rate == pytest.approx(2 / 3)
    got = {s.officer.officer_id: s for s in stats.officers}
    assert set(got) == set(officers)
    for officer_id, given in officers.items():
        line = got[officer_id]
        assert line.total == len(given) and line.unsatisfied == given.count(SAT.SATISFACTION_UNSATISFIED)
        assert line.officer.display_name and line.station_id == "S02"

    chief = h.stub.GetFollowUpStats(pb.GetFollowUpStatsRequest(),
        metadata=support.caller(["station_chief"], station="S02", sub="p-test"),
                                    timeout=10)
    assert chief == stats, "a station chief gets their own station"
    everyone = h.stub.GetFollowUpStats(pb.GetFollowUpStatsRequest(),
        metadata=support.caller(["commander"], station="S01", sub="p-test"), timeout=10)
    assert {s.station_id for s in everyone.stations} >= {"S01", "S02"}


def test_statistics_check_the_caller_and_the_window(h):
    with pytest.raises(grpc.RpcError) as err:
        h.stub.GetFollowUpStats(pb.GetFollowUpStatsRequest(station_id="S01"),
                                metadata=support.caller(["station_chief"], station="S02", sub="p-test"), timeout=10)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED and support.error_reason(err.value) == "OUT_OF_JURISDICTION"
    with pytest.raises(grpc.RpcError) as err:
        h.stub.GetFollowUpStats(pb.GetFollowUpStatsRequest(),
            metadata=support.caller(["officer"], station="S01", sub="p-test"), timeout=10)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    bad = pb.GetFollowUpStatsRequest(station_id="第二所")
    bad.start_time.FromSeconds(2_000_000_000)
    bad.end_time.FromSeconds(1_000_000_000)
    with pytest.raises(grpc.RpcError) as err:
        h.stub.GetFollowUpStats(bad, metadata=support.caller(["commander"], station="S01", sub="p-test"), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(support.field_violations(err.value)) == {"station_id", "end_time"}
    later = pb.GetFollowUpStatsRequest()
    later.start_time.FromSeconds(4_000_000_000)
    assert not h.stub.GetFollowUpStats(later,
        metadata=support.caller(["commander"], station="S01", sub="p-test"), timeout=10).stations
