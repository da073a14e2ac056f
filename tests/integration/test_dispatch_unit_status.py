"""Officers say what their unit is doing (状态上报), the panic button (紧急求助) brings help at once, and the
big screen watches units move and change, within its jurisdiction."""
from __future__ import annotations

import uuid

import grpc
import pytest

from tests import support
from tests.integration.dispatch_harness import dispatch_service, field_violations, officer_of, pb

S = pb.UnitStatus


@pytest.fixture(scope="module")
def h(admin_url):
    with dispatch_service(admin_url) as harness:
        yield harness


def rid() -> str:
    return uuid.uuid4().hex


def free_unit(h, station: str, index: int = 0) -> pb.Unit:
    found = [u for u in h.units_of(station, "PATROL_CAR") if u.status == S.Value("UNIT_STATUS_AVAILABLE") and u.on_duty]
    return found[index]


def set_status(h, unit: pb.Unit, status: str, reason: str = "", metadata=None) -> pb.Unit:
    return h.stub.SetUnitStatus(pb.SetUnitStatusRequest(name=unit.name, status=S.Value(f"UNIT_STATUS_{status}"),
                                                        reason=reason, request_id=rid()),
                                metadata=metadata or officer_of(unit))


def test_an_officer_sets_the_unit_s_status_and_it_is_kept_in_its_history(h):
    unit = free_unit(h, "S06")
    back = set_status(h, unit, "AT_STATION", "回所整理笔录")
    assert back.status == S.Value("UNIT_STATUS_AT_STATION")
    stored = h.stub.GetUnit(pb.GetUnitRequest(name=unit.name))
    assert stored.status == S.Value("UNIT_STATUS_AT_STATION")
    assert stored.timeline[-1].action == "STATUS_CHANGED" and "在所" in stored.timeline[-1].detail
    # Not available: no case is offered to it.
    case = h.open_case(incident_type="FIGHT", station="S06", grid="S06-G01", lon=unit.position.longitude,
                       lat=unit.position.latitude)
    assert unit.name not in {a.unit for a in case.assignments}
    with pytest.raises(grpc.RpcError) as err:
        h.stub.SetUnitStatus(pb.SetUnitStatusRequest(name=unit.name, status=S.Value("UNIT_STATUS_OUT_OF_SERVICE"),
                                                     request_id=rid()), metadata=officer_of(unit))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "reason" in field_violations(err.value)
    with pytest.raises(grpc.RpcError) as err:
        set_status(h, unit, "ON_SCENE")
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, "on scene follows the assignments"
    someone_else = support.caller(["officer"], station="S06", sub="P-not-of-this-unit")
    with pytest.raises(grpc.RpcError) as err:
        set_status(h, unit, "AVAILABLE", metadata=someone_else)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert set_status(h, unit, "AVAILABLE").status == S.Value("UNIT_STATUS_AVAILABLE")


def test_a_unit_with_an_offer_answers_it_before_saying_anything_else(h):
    case = h.open_case(incident_type="FIGHT", station="S08", grid="S08-G01")
    offered = next(a for a in case.assignments if a.state == pb.ASSIGNMENT_STATE_OFFERED)
    unit = h.stub.GetUnit(pb.GetUnitRequest(name=offered.unit))
    with pytest.raises(grpc.RpcError) as err:
        set_status(h, unit, "AT_STATION")
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert support.error_reason(err.value) == "UNIT_OFFERED"


def test_the_panic_button_opens_a_city_level_case_at_the_unit_offered_to_the_nearest_units(h):
    unit = free_unit(h, "S02")
    after = h.latest_sequence()
    pressed = set_status(h, unit, "EMERGENCY", "嫌疑人持刀反抗，请求支援")
    assert pressed.status == S.Value("UNIT_STATUS_EMERGENCY")
    created = [b for _, b in h.events(["dispatch.CaseCreated"], after=after)]
    (sos,) = [b.dispatch_case for b in created if b.dispatch_case.report.startswith(f"{unit.name}/sos/")]
    assert sos.incident_type == "OFFICER_EMERGENCY" and sos.priority == 1 and sos.level == pb.CASE_LEVEL_CITY
    assert sos.station_id == unit.station_id and "嫌疑人持刀反抗" in sos.summary
    case = h.case(sos.name)
    assert case.assignments and unit.name not in {a.unit for a in case.assignments}
    assert all(a.state == pb.ASSIGNMENT_STATE_OFFERED for a in case.assignments)
    updated = [b for _, b in h.events(["dispatch.UnitUpdated"], subject=unit.name, after=after)]
    assert [b.action for b in updated] == ["EMERGENCY"]


def test_the_big_screen_watches_units_change_within_its_jurisdiction(h):
    mine, theirs = free_unit(h, "S03"), free_unit(h, "S11")
    chief = support.caller(["station_chief"], station="S03", sub="chief-S03-screen")
    stream = h.stub.WatchUnits(pb.WatchUnitsRequest(), metadata=chief, timeout=20)
    try:
        snapshot = []
        for change in stream:
            snapshot.append(change)
            if len(snapshot) == len([u for u in h.units_of("S03") if u.on_duty]):
                break
        assert {c.action for c in snapshot} == {"SNAPSHOT"} and {c.unit.station_id for c in snapshot} == {"S03"}
        set_status(h, theirs, "AT_STATION", "回所")
        set_status(h, mine, "BUSY", "处理群众求助")
        change = next(c for c in stream if c.action == "CHANGED")
    finally:
        stream.cancel()
    assert change.unit.name == mine.name and change.unit.status == S.Value("UNIT_STATUS_BUSY")
    assert change.sequence > snapshot[0].sequence
    with pytest.raises(grpc.RpcError) as err:
        next(iter(h.stub.WatchUnits(pb.WatchUnitsRequest(station_ids=["S11"]), metadata=chief, timeout=5)))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # Resuming after the change it saw, the stream goes on from there.
    resumed = h.stub.WatchUnits(pb.WatchUnitsRequest(after_sequence=change.sequence), metadata=chief, timeout=20)
    try:
        set_status(h, mine, "AVAILABLE")
        again = next(c for c in resumed if c.action == "CHANGED")
    finally:
        resumed.cancel()
    assert again.unit.name == mine.name and again.unit.status == S.Value("UNIT_STATUS_AVAILABLE")


def test_a_community_matter_goes_straight_to_the_grid_s_community_officer(h):
    officer = next(u for u in h.units_of("S09", "COMMUNITY_OFFICER")
                   if u.grid_ids and u.on_duty and u.status == S.Value("UNIT_STATUS_AVAILABLE"))
    grid = officer.grid_ids[0]
    # An emergency in the grid keeps the nearest suitable units: a robbery needs a patrol car and
    # criminal investigation, and the grid's officer stays free.
    urgent = h.open_case(incident_type="ROBBERY", priority=1, station="S09", grid=grid, description="有人抢包")
    assert officer.name not in {a.unit for a in urgent.assignments}
    assert h.stub.GetUnit(pb.GetUnitRequest(name=officer.name)).status == S.Value("UNIT_STATUS_AVAILABLE")
    case = h.open_case(incident_type="NOISE", priority=3, station="S09", grid=grid,
                       description="楼上天天半夜跺脚，想请社区民警来协调一下")
    (offer,) = [a for a in case.assignments if a.role == pb.ASSIGNMENT_ROLE_PRIMARY]
    assert offer.unit == officer.name and offer.state == pb.ASSIGNMENT_STATE_OFFERED
    assert "责任民警" in offer.reason and len(case.assignments) == 1
