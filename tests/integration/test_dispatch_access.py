"""Who sees which cases and units (管辖范围), end to end on dispatch's port: a station sees its own,
and the cases its units are assigned to (跨所协作); another station's are not there."""
from __future__ import annotations

import uuid

import grpc
import pytest

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from services.runtime.policy import org
from tests import support
from tests.integration.dispatch_harness import dispatch_service

DISPATCHER = support.caller(["dispatcher"], sub="p-centre")


@pytest.fixture(scope="module")
def h(admin_url):
    with dispatch_service(admin_url) as harness:
        yield harness


def chief(station: str) -> tuple:
    return support.caller(["station_chief"], station=station, sub=f"chief-{station}")


def test_a_station_sees_its_cases_and_units_and_not_another_s(h):
    case = h.open_case(incident_type="FIGHT", station="S03", grid="S03-G01")
    mine, other = chief("S03"), chief("S04")
    assert h.stub.GetCase(pb.GetCaseRequest(name=case.name), metadata=mine).name == case.name
    with pytest.raises(grpc.RpcError) as err:
        h.stub.GetCase(pb.GetCaseRequest(name=case.name), metadata=other)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, "the same answer as for an unknown id"
    listed = h.stub.ListCases(pb.ListCasesRequest(page_size=100), metadata=other).cases
    assert case.name not in {c.name for c in listed} and {c.station_id for c in listed} <= {"S04"}
    with pytest.raises(grpc.RpcError) as err:
        h.stub.ListCases(pb.ListCasesRequest(station_id="S03"), metadata=other)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert support.error_reason(err.value) == "OUT_OF_JURISDICTION"

    unit = h.units_of("S03")[0]
    with pytest.raises(grpc.RpcError) as err:
        h.stub.GetUnit(pb.GetUnitRequest(name=unit.name), metadata=other)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    units = h.stub.ListUnits(pb.ListUnitsRequest(page_size=200), metadata=other).units
    assert units and {u.station_id for u in units} == {"S04"}
    situation = h.stub.GetSituation(pb.GetSituationRequest(station_id="S04"), metadata=other)
    assert case.name not in {c.name for c in situation.cases}
    with pytest.raises(grpc.RpcError) as err:
        h.stub.GetSituation(pb.GetSituationRequest(station_id="S03"), metadata=other)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_station_whose_unit_is_assigned_sees_the_case(h):
    case = h.open_case(incident_type="FIGHT", station="S05", grid="S05-G01")
    # A station none of whose units the case was offered to yet.
    assigned = {"S05"} | {a.station_id for a in case.assignments}
    # Of the same district: a dispatcher does not send a unit across districts.
    station = next(s for s in sorted(org().stations_of(org().district_of["S05"]))
                   if s not in assigned and h.units_of(s, "PATROL_CAR"))
    helper = h.units_of(station, "PATROL_CAR")[0]
    with pytest.raises(grpc.RpcError) as err:
        h.stub.GetCase(pb.GetCaseRequest(name=case.name), metadata=chief(station))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    h.stub.OfferCase(pb.OfferCaseRequest(request_id=uuid.uuid4().hex, name=case.name, unit=helper.name,
                                         role=pb.ASSIGNMENT_ROLE_REINFORCEMENT, reason="请求增援"),
                     metadata=DISPATCHER)
    assert h.stub.GetCase(pb.GetCaseRequest(name=case.name), metadata=chief(station)).name == case.name
    listed = h.stub.ListCases(pb.ListCasesRequest(page_size=100), metadata=chief(station)).cases
    assert case.name in {c.name for c in listed}


def test_district_command_sees_its_district_and_the_city_command_everything(h):
    case = h.open_case(incident_type="FIGHT", station="S01", grid="S01-G01")
    # A district none of whose stations has a unit on the case.
    districts = {org().district_of[a.station_id] for a in case.assignments} | {org().district_of["S01"]}
    elsewhere = next(s for s, d in sorted(org().district_of.items()) if d not in districts)
    mine = support.caller(["district_commander"], station="S01", sub="dc")
    assert h.stub.GetCase(pb.GetCaseRequest(name=case.name), metadata=mine).name == case.name
    far = support.caller(["district_commander"], station=elsewhere, sub="dc2")
    with pytest.raises(grpc.RpcError) as err:
        h.stub.GetCase(pb.GetCaseRequest(name=case.name), metadata=far)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    commander = support.caller(["commander"], station=elsewhere, sub="cc")
    assert h.stub.GetCase(pb.GetCaseRequest(name=case.name), metadata=commander).name == case.name


def test_a_helping_station_watches_the_case_its_unit_was_sent_to(h):
    """WatchCases shows a station the cases its units help with (跨所协作): in the opening snapshot
    and live, from the moment its unit is offered the case."""
    case = h.open_case(incident_type="FIGHT", station="S07", grid="S07-G01")
    assigned = {"S07"} | {a.station_id for a in case.assignments}
    # A station of the same district: a dispatcher does not send a unit across districts.
    district = org().district_of["S07"]
    station, helper = next((s, u) for s in sorted(org().stations_of(district)) if s not in assigned
                           for u in h.units_of(s, "PATROL_CAR") if u.status == pb.UNIT_STATUS_AVAILABLE)
    live = h.stub.WatchCases(pb.WatchCasesRequest(after_sequence=h.latest_sequence()), metadata=chief(station),
                             timeout=30)
    try:
        h.stub.OfferCase(pb.OfferCaseRequest(request_id=uuid.uuid4().hex, name=case.name, unit=helper.name,
                                             role=pb.ASSIGNMENT_ROLE_REINFORCEMENT, reason="请求增援"),
                         metadata=DISPATCHER)
        h.stub.EscalateCase(pb.EscalateCaseRequest(request_id=uuid.uuid4().hex, name=case.name,
                                                   level=pb.CASE_LEVEL_CITY, reason="现场人数增多，升级处置"),
                            metadata=DISPATCHER)
        change = next(c for c in live if c.dispatch_case.name == case.name)
    finally:
        live.cancel()
    assert change.action == "ESCALATED" and change.in_view
    snapshot = h.stub.WatchCases(pb.WatchCasesRequest(), metadata=chief(station), timeout=5)
    try:
        names = set()
        for c in snapshot:
            if c.action != "SNAPSHOT":
                break
            names.add(c.dispatch_case.name)
            if case.name in names:
                break
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    finally:
        snapshot.cancel()
    assert case.name in names


def test_a_border_case_is_shared_with_the_station_across_the_line(h):
    """边界警情: intake names the neighbouring station on the report; the case is in that station's
    view (GetCase, ListCases, the situation map, WatchCases) as its own, and a third station's not."""
    from datetime import timedelta

    from smart110.common.v1 import common_pb2
    from smart110.intake.v1 import intake_service_pb2 as intake_pb
    from services.runtime import timeutil

    name = f"reports/{uuid.uuid4().hex[:16]}"
    report = intake_pb.Report(
        name=name, channel=intake_pb.CHANNEL_PHONE, description="两车在路口刮擦，双方争执",
        location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=114.30, latitude=30.58)),
        station_id="S01", grid_id="S01-G01", border_case=True, shared_station_ids=["S02"],
        classification=intake_pb.Classification(category=intake_pb.CATEGORY_POLICE, incident_type="DISPUTE",
                                                 priority=3),
        receive_time=timeutil.to_pb(h.clock() - timedelta(seconds=5)))
    live = h.stub.WatchCases(pb.WatchCasesRequest(after_sequence=h.latest_sequence()), metadata=chief("S02"),
                             timeout=30)
    try:
        assert h.served.deliver("intake", "intake.IncidentReported", name, intake_pb.IncidentReported(report=report))
        created = next(c for c in live if c.dispatch_case.report == name)
    finally:
        live.cancel()
    assert created.action == "CREATED" and list(created.dispatch_case.shared_station_ids) == ["S02"]
    case = h.case_of(name)
    assert list(case.shared_station_ids) == ["S02"] and "SHARED" in {e.action for e in case.timeline}
    neighbour = chief("S02")
    assert h.stub.GetCase(pb.GetCaseRequest(name=case.name), metadata=neighbour).name == case.name
    assert case.name in {c.name for c in h.stub.ListCases(pb.ListCasesRequest(page_size=100),
                                                          metadata=neighbour).cases}
    situation = h.stub.GetSituation(pb.GetSituationRequest(station_id="S02"), metadata=neighbour)
    assert case.name in {c.name for c in situation.cases}
    third = next(s for s in sorted(org().district_of)
                 if s not in {"S01", "S02"} | {a.station_id for a in case.assignments})
    with pytest.raises(grpc.RpcError) as err:
        h.stub.GetCase(pb.GetCaseRequest(name=case.name), metadata=chief(third))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
