"""Case levels, escalation and the command centres' live view (同步同息感知),
against a real Postgres and the real dispatch feed."""
from __future__ import annotations

import grpc
import pytest

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from services.dispatch.domain import initial_level
from tests import support
from tests.integration.dispatch_harness import dispatch_service

DISPATCHER = support.caller(["dispatcher"], sub="p-dispatcher")
COMMANDER = support.caller(["commander"], station="S01", sub="p-commander")


@pytest.fixture(scope="module")
def dispatch(admin_url):
    with dispatch_service(admin_url, seed=False, workers=False) as d:
        yield d


def escalate(dispatch, case, level, reason="现场有人持刀，升级处置", request_id=None, metadata=DISPATCHER):
    return dispatch.stub.EscalateCase(pb.EscalateCaseRequest(
        request_id=request_id or f"esc-{case.name.split('/')[1]}-{level}-{len(reason)}", name=case.name,
        level=level, reason=reason), metadata=metadata, timeout=10)


def test_initial_level_follows_type_and_priority_as_data(dispatch):
    assert initial_level("HOMICIDE", 1) == "CITY" and initial_level("KIDNAPPING", 2) == "CITY"
    assert initial_level("ROBBERY", 3) == "COUNTY" and initial_level("THEFT", 1) == "COUNTY"
    assert initial_level("FIGHT", 2) == "STATION"
    homicide = dispatch.open_case(incident_type="HOMICIDE", priority=1, description="有人持刀杀人")
    fight = dispatch.open_case(incident_type="FIGHT", priority=2)
    assert homicide.level == pb.CASE_LEVEL_CITY and fight.level == pb.CASE_LEVEL_STATION


def test_escalation_changes_the_level_keeps_who_and_why_and_is_announced(dispatch):
    case = dispatch.open_case(incident_type="FIGHT")
    after = dispatch.latest_sequence()
    out = escalate(dispatch, case, pb.CASE_LEVEL_CITY, reason="多人持械斗殴，需市局统一指挥")
    assert out.level == pb.CASE_LEVEL_CITY
    entry = out.timeline[-1]
    assert entry.action == "ESCALATED" and entry.stamp.actor == "p-dispatcher"
    assert entry.stamp.reason == "多人持械斗殴，需市局统一指挥" and "派出所级" in entry.detail and "市级" in entry.detail
    assert dispatch.stub.GetCase(pb.GetCaseRequest(name=case.name)).level == pb.CASE_LEVEL_CITY
    updates = [body for e, body in dispatch.events(subject=case.name, after=after) if e.type == "dispatch.CaseUpdated"]
    assert [(u.action, u.previous_level, u.dispatch_case.level) for u in updates] == [
        ("ESCALATED", pb.CASE_LEVEL_STATION, pb.CASE_LEVEL_CITY)]

    city = dispatch.stub.ListCases(pb.ListCasesRequest(min_level=pb.CASE_LEVEL_CITY, page_size=500)).cases
    province = dispatch.stub.ListCases(pb.ListCasesRequest(min_level=pb.CASE_LEVEL_PROVINCE, page_size=500)).cases
    assert case.name in {c.name for c in city} and case.name not in {c.name for c in province}
    assert all(c.level >= pb.CASE_LEVEL_CITY for c in city)


def test_escalation_rejects_bad_input_unknown_cases_and_the_same_level(dispatch):
    with pytest.raises(grpc.RpcError) as err:
        dispatch.stub.EscalateCase(pb.EscalateCaseRequest(name="nope"), metadata=DISPATCHER, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(support.field_violations(err.value)) == {"request_id", "name", "level", "reason"}
    with pytest.raises(grpc.RpcError) as err:
        escalate(dispatch, pb.DispatchCase(name="cases/unknown"), pb.CASE_LEVEL_CITY)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    case = dispatch.open_case(incident_type="FIGHT")
    with pytest.raises(grpc.RpcError) as err:
        escalate(dispatch, case, pb.CASE_LEVEL_STATION)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and support.error_reason(err.value) == "SAME_LEVEL"
    assert [e.action for e in dispatch.stub.GetCase(pb.GetCaseRequest(name=case.name)).timeline][-1] != "ESCALATED"


def test_a_retried_escalation_changes_nothing_and_a_reused_id_is_refused(dispatch):
    case = dispatch.open_case(incident_type="FIGHT")
    first = escalate(dispatch, case, pb.CASE_LEVEL_COUNTY, request_id="esc-retry-1")
    again = escalate(dispatch, case, pb.CASE_LEVEL_COUNTY, request_id="esc-retry-1")
    assert again == first
    timeline = dispatch.stub.GetCase(pb.GetCaseRequest(name=case.name)).timeline
    assert [e.action for e in timeline].count("ESCALATED") == 1
    with pytest.raises(grpc.RpcError) as err:
        escalate(dispatch, case, pb.CASE_LEVEL_CITY, request_id="esc-retry-1")
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_who_may_escalate_and_de_escalate(dispatch):
    case = dispatch.open_case(incident_type="FIGHT", station="S01")
    for metadata in (support.caller(["officer"], station="S01", sub="p-test"),
                     support.caller(["call_taker"], sub="p-test"), None):
        with pytest.raises(grpc.RpcError) as err:
            escalate(dispatch, case, pb.CASE_LEVEL_COUNTY, metadata=metadata)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        escalate(dispatch, case, pb.CASE_LEVEL_COUNTY,
            metadata=support.caller(["station_chief"], station="S02", sub="p-test"))
    # Another station's case is, for that station's chief, not there.
    assert err.value.code() == grpc.StatusCode.NOT_FOUND

    chief = support.caller(["station_chief"], station="S01", sub="p-chief")
    up = escalate(dispatch, case, pb.CASE_LEVEL_COUNTY, metadata=chief)
    assert up.level == pb.CASE_LEVEL_COUNTY and up.timeline[-1].stamp.roles == ["station_chief"]
    with pytest.raises(grpc.RpcError) as err:
        escalate(dispatch, case, pb.CASE_LEVEL_STATION, reason="已控制", metadata=chief)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    down = escalate(dispatch, case, pb.CASE_LEVEL_STATION, reason="嫌疑人已控制，交派出所处置", metadata=COMMANDER)
    assert down.level == pb.CASE_LEVEL_STATION and down.timeline[-1].action == "DEESCALATED"
    assert down.timeline[-1].stamp.reason == "嫌疑人已控制，交派出所处置"


# -- the live view -------------------------------------------------------------------

def test_a_city_centre_sees_its_level_and_above_live_including_cases_leaving_its_view(dispatch):
    start = dispatch.latest_sequence()
    call = dispatch.stub.WatchCases(pb.WatchCasesRequest(min_level=pb.CASE_LEVEL_CITY, after_sequence=start),
                                    metadata=COMMANDER, timeout=30)
    try:
        homicide = dispatch.open_case(incident_type="HOMICIDE", priority=1, description="有人持刀杀人")
        fight = dispatch.open_case(incident_type="FIGHT")
        escalate(dispatch, fight, pb.CASE_LEVEL_PROVINCE, reason="涉外群体性事件")
        escalate(dispatch, fight, pb.CASE_LEVEL_STATION, reason="经核实为普通纠纷", metadata=COMMANDER)

        seen = [next(call) for _ in range(3)]
    finally:
        call.cancel()
    assert [(c.dispatch_case.name, c.action, c.in_view) for c in seen] == [
        (homicide.name, "CREATED", True),
        (fight.name, "ESCALATED", True),
        (fight.name, "DEESCALATED", False),
    ], "the station-level fight's creation is not shown to the city centre"
    assert seen[0].sequence > start and seen[0].sequence < seen[1].sequence < seen[2].sequence


def test_a_watch_opens_with_the_active_cases_in_view_and_filters_by_area(dispatch):
    inside = dispatch.open_case(incident_type="FIGHT", station="S25", lon=114.50, lat=30.70)
    outside = dispatch.open_case(incident_type="FIGHT", station="S25", lon=114.60, lat=30.70)
    other_station = dispatch.open_case(incident_type="FIGHT", station="S26", lon=114.50, lat=30.70)
    box = common_pb2.BoundingBox(south_west=common_pb2.GeoPoint(longitude=114.45, latitude=30.65),
                                 north_east=common_pb2.GeoPoint(longitude=114.55, latitude=30.75))
    call = dispatch.stub.WatchCases(pb.WatchCasesRequest(station_ids=["S25"], bounds=box),
                                    metadata=support.caller(["station_chief"], station="S25", sub="p-test"), timeout=30)
    try:
        first = next(call)
        later = dispatch.open_case(incident_type="FIGHT", station="S25", lon=114.51, lat=30.71)
        dispatch.open_case(incident_type="FIGHT", station="S26", lon=114.51, lat=30.71)
        second = next(call)
    finally:
        call.cancel()
    # One snapshot entry, then the new case: the cases outside the box or of
    # another station appear in neither.
    assert (first.dispatch_case.name, first.action, first.sequence) == (inside.name, "SNAPSHOT", 0)
    assert (second.dispatch_case.name, second.action) == (later.name, "CREATED")
    assert {first.dispatch_case.name, second.dispatch_case.name}.isdisjoint({outside.name, other_station.name})


def test_watch_checks_its_caller_and_its_filters(dispatch):
    def first_of(request, metadata):
        with pytest.raises(grpc.RpcError) as err:
            next(dispatch.stub.WatchCases(request, metadata=metadata, timeout=10))
        return err.value

    err = first_of(pb.WatchCasesRequest(station_ids=["S01"]), support.caller(["officer"], station="S01", sub="p-test"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED
    err = first_of(pb.WatchCasesRequest(station_ids=["S01"]),
                   support.caller(["station_chief"], station="S02", sub="p-test"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and support.error_reason(err) == "OUT_OF_JURISDICTION"
    bad = pb.WatchCasesRequest(after_sequence=-1, station_ids=["x"],
                               bounds=common_pb2.BoundingBox(south_west=common_pb2.GeoPoint(longitude=200)))
    err = first_of(bad, COMMANDER)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(support.field_violations(err)) == {"after_sequence", "station_ids[0]",
                                          "bounds.south_west.longitude", "bounds.north_east"}
    # A level number the contract does not define is refused before the stream starts.
    err = first_of(pb.WatchCasesRequest(min_level=9), COMMANDER)
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and set(support.field_violations(err)) == {"min_level"}
