"""Offers straight to the officer's phone over a real server stream; decline, timeout and several units."""
from __future__ import annotations

import queue
import threading
import uuid

import grpc
import pytest
from sqlalchemy import delete

from smart110.intake.v1 import intake_service_pb2 as intake_pb
from services.dispatch.store import shifts
from services.dispatch import queries
from services.dispatch.domain import SILENT_INSTRUCTION
from tests import support
from tests.conftest import eventually
from tests.integration.dispatch_harness import dispatch_service, officer_of, pb

S = pb.AssignmentState


@pytest.fixture(scope="module")
def h(admin_url):
    with dispatch_service(admin_url, offer_timeout_s=30) as harness:
        yield harness


def rid() -> str:
    return uuid.uuid4().hex


class Phone:
    """A unit's phone: a WatchAssignments stream read on its own thread."""

    def __init__(self, h, unit: pb.Unit, metadata=None):
        self.call = h.stub.WatchAssignments(pb.WatchAssignmentsRequest(unit=unit.name),
                                            metadata=metadata or officer_of(unit))
        self.received: queue.Queue = queue.Queue()
        self.error: list = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for msg in self.call:
                self.received.put(msg)
        except grpc.RpcError as exc:
            self.error.append(exc)
            self.received.put(None)

    def next(self) -> pb.Assignment:
        return self.received.get(timeout=20)

    def close(self):
        self.call.cancel()


def place_near(h, unit: pb.Unit, lon: float, lat: float) -> None:
    h.set_unit(unit.unit_id, lon=lon, lat=lat, position_time=h.clock(), status="AVAILABLE")


def test_an_offer_reaches_the_units_phone_as_it_is_made(h):
    lon, lat = 115.0, 31.0
    unit = h.units_of("S05", "PATROL_CAR")[0]
    place_near(h, unit, lon + 0.001, lat)
    phone = Phone(h, unit)
    try:
        case = h.case_of(h.report(incident_type="SUSPICIOUS_PERSON", station="S05", grid="S05-G01", lon=lon, lat=lat))
        offer = phone.next()
        assert offer is not None and offer.state == S.ASSIGNMENT_STATE_OFFERED and offer.unit == unit.name
        assert offer.case_summary.name == case.name and offer.case_summary.summary == "小区门口有人打架"
        assert offer.case_summary.location.point.longitude == lon and offer.offer_expire_time.seconds > 0
        h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=offer.name),
                                metadata=officer_of(unit))
        accepted = phone.next()
        assert accepted.name == offer.name and accepted.state == S.ASSIGNMENT_STATE_ACCEPTED
        assert accepted.version > offer.version
    finally:
        phone.close()


def test_a_phone_that_connects_later_gets_the_offer_made_before(h):
    lon, lat = 115.2, 31.0
    unit = h.units_of("S06", "PATROL_CAR")[0]
    place_near(h, unit, lon + 0.001, lat)
    case = h.case_of(h.report(incident_type="SUSPICIOUS_PERSON", station="S06", grid="S06-G01", lon=lon, lat=lat))
    (a,) = case.assignments
    phone = Phone(h, unit)
    try:
        resumed = phone.next()
        assert resumed.name == a.name and resumed.state == S.ASSIGNMENT_STATE_OFFERED
    finally:
        phone.close()


def test_only_the_units_officer_or_a_dispatcher_watches(h):
    unit = h.units_of("S06", "FOOT_PATROL")[0]
    phone = Phone(h, unit, metadata=support.caller(["officer"], station=unit.station_id, sub="P-not-in-this-unit"))
    assert phone.next() is None and phone.error[0].code() == grpc.StatusCode.PERMISSION_DENIED
    phone = Phone(h, pb.Unit(name="units/U-NOPE"),
        metadata=support.caller(["dispatcher"], sub="t-dispatcher"))
    assert phone.next() is None and phone.error[0].code() == grpc.StatusCode.NOT_FOUND


def test_a_declined_offer_goes_to_the_next_unit_with_the_reason_kept(h):
    lon, lat = 115.4, 31.0
    first, second = h.units_of("S08", "PATROL_CAR")[:2]
    place_near(h, first, lon + 0.001, lat)
    place_near(h, second, lon + 0.003, lat)
    case = h.case_of(h.report(incident_type="SUSPICIOUS_PERSON", station="S08", grid="S08-G01", lon=lon, lat=lat))
    (a,) = case.assignments
    assert a.unit == first.name
    declined = h.stub.DeclineAssignment(pb.DeclineAssignmentRequest(request_id=rid(), name=a.name,
                                                                    reason="车辆故障"), metadata=officer_of(first))
    assert declined.state == S.ASSIGNMENT_STATE_DECLINED and declined.decline_reason == "车辆故障"
    after = h.case(case.name)
    nxt = [x for x in after.assignments if x.state == S.ASSIGNMENT_STATE_OFFERED]
    assert [x.unit for x in nxt] == [second.name] and nxt[0].capability == a.capability
    assert h.stub.GetUnit(pb.GetUnitRequest(name=first.name)).status == pb.UNIT_STATUS_AVAILABLE
    assert any(e.action == "DECLINED" and e.stamp.reason == "车辆故障" for e in after.timeline)


def test_an_offer_not_accepted_in_time_goes_to_the_next_unit(h):
    lon, lat = 115.6, 31.0
    first, second = h.units_of("S09", "PATROL_CAR")[:2]
    place_near(h, first, lon + 0.001, lat)
    place_near(h, second, lon + 0.003, lat)
    case = h.case_of(h.report(incident_type="SUSPICIOUS_PERSON", station="S09", grid="S09-G01", lon=lon, lat=lat))
    (a,) = case.assignments
    h.clock.advance(31)  # past the 30 s offer timeout; the sweeper notices

    def moved_on():
        c = h.case(case.name)
        return c if any(x.unit == second.name and x.state == S.ASSIGNMENT_STATE_OFFERED for x in c.assignments) else None

    after = eventually(moved_on)
    assert next(x for x in after.assignments if x.name == a.name).state == S.ASSIGNMENT_STATE_EXPIRED
    with pytest.raises(grpc.RpcError) as err:
        h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=a.name), metadata=officer_of(first))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    expired = [b for _, b in h.events(["dispatch.AssignmentChanged"]) if b.assignment.name == a.name]
    assert [b.action for b in expired] == ["OFFERED", "EXPIRED"] and expired[-1].stamp.actor == "dispatch"


def test_several_units_with_roles_across_stations_and_a_legal_officer(h):
    lon, lat = 115.8, 31.0
    car = h.units_of("S10", "PATROL_CAR")[0]
    place_near(h, car, lon + 0.001, lat)
    case = h.case_of(h.report(incident_type="SUSPICIOUS_PERSON", station="S10", grid="S10-G01", lon=lon, lat=lat))
    (primary,) = case.assignments
    dispatcher = support.caller(["dispatcher"], sub="d-s10")  # the city centre
    helper = h.units_of("S11", "PATROL_CAR")[0]  # another station's car
    reinforcement = h.stub.OfferCase(pb.OfferCaseRequest(
        request_id=rid(), name=case.name, unit=helper.name, role=pb.ASSIGNMENT_ROLE_REINFORCEMENT,
        reason="现场人员较多，请求增援"), metadata=dispatcher)
    assert reinforcement.role == pb.ASSIGNMENT_ROLE_REINFORCEMENT and reinforcement.station_id == "S11"
    legal = h.units_of("S10", "LEGAL_OFFICER")[0]
    guide = h.stub.OfferCase(pb.OfferCaseRequest(request_id=rid(), name=case.name, unit=legal.name),
                             metadata=dispatcher)
    assert guide.role == pb.ASSIGNMENT_ROLE_LEGAL_GUIDANCE and guide.capability == "LEGAL"
    timeline = h.case(case.name).timeline
    assert any(e.action == "OFFERED" and "跨所协作" in e.detail and e.stamp.actor == "d-s10" for e in timeline)

    not_legal = h.units_of("S10", "FOOT_PATROL")[0]
    with pytest.raises(grpc.RpcError) as err:
        h.stub.OfferCase(pb.OfferCaseRequest(request_id=rid(), name=case.name, unit=not_legal.name,
                                             role=pb.ASSIGNMENT_ROLE_LEGAL_GUIDANCE), metadata=dispatcher)
    assert support.error_reason(err.value) == "ROLE_NEEDS_LEGAL_OFFICER"
    with pytest.raises(grpc.RpcError) as err:  # already offered this case
        h.stub.OfferCase(pb.OfferCaseRequest(request_id=rid(), name=case.name, unit=helper.name), metadata=dispatcher)
    assert support.error_reason(err.value) == "ALREADY_ON_CASE"

    def act(a, unit, *states):
        md = officer_of(unit)
        h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=a.name), metadata=md)
        for s in states:
            h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(request_id=rid(), name=a.name, state=s), metadata=md)

    act(primary, car, S.ASSIGNMENT_STATE_EN_ROUTE, S.ASSIGNMENT_STATE_ON_SCENE)
    with h.rt.engine.connect() as conn:  # the unit's status changes are kept as history
        statuses = [r["status"] for r in queries.unit_history(conn, car.unit_id)]
    assert statuses[-4:] == ["OFFERED", "BUSY", "EN_ROUTE", "ON_SCENE"]
    act(reinforcement, helper, S.ASSIGNMENT_STATE_EN_ROUTE)
    assert h.case(case.name).status == pb.CASE_STATUS_ON_SCENE
    busy_case = h.case_of(h.report(incident_type="SUSPICIOUS_PERSON", station="S11", grid="S11-G01",
                                   lon=lon + 1, lat=lat))
    with pytest.raises(grpc.RpcError) as err:  # the helper is busy on the first case
        h.stub.OfferCase(pb.OfferCaseRequest(request_id=rid(), name=busy_case.name, unit=helper.name),
                         metadata=dispatcher)
    assert support.error_reason(err.value) == "UNIT_NOT_AVAILABLE"

    act(guide, legal, S.ASSIGNMENT_STATE_EN_ROUTE, S.ASSIGNMENT_STATE_ON_SCENE, S.ASSIGNMENT_STATE_CLEARED)
    h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(request_id=rid(), name=primary.name,
                                                         state=S.ASSIGNMENT_STATE_CLEARED), metadata=officer_of(car))
    h.stub.ReportBack(pb.ReportBackRequest(request_id=rid(), name=primary.name, outcome=pb.OUTCOME_ADMINISTRATIVE_CASE,
                                           notes="已依法传唤"), metadata=officer_of(car))
    # The reinforcement is still on its way: the case stays open.
    assert h.case(case.name).status == pb.CASE_STATUS_DISPATCHED
    for s in (S.ASSIGNMENT_STATE_ON_SCENE, S.ASSIGNMENT_STATE_CLEARED):
        h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(request_id=rid(), name=reinforcement.name, state=s),
                                 metadata=officer_of(helper))
    for a, u in ((reinforcement, helper), (guide, legal)):
        h.stub.ReportBack(pb.ReportBackRequest(request_id=rid(), name=a.name, outcome=pb.OUTCOME_ADMINISTRATIVE_CASE),
                          metadata=officer_of(u))
    final = h.case(case.name)
    assert final.status == pb.CASE_STATUS_CLOSED
    assert {(a.role, a.state) for a in final.assignments} == {
        (pb.ASSIGNMENT_ROLE_PRIMARY, S.ASSIGNMENT_STATE_REPORTED_BACK),
        (pb.ASSIGNMENT_ROLE_REINFORCEMENT, S.ASSIGNMENT_STATE_REPORTED_BACK),
        (pb.ASSIGNMENT_ROLE_LEGAL_GUIDANCE, S.ASSIGNMENT_STATE_REPORTED_BACK)}
    with pytest.raises(grpc.RpcError) as err:
        h.stub.OfferCase(pb.OfferCaseRequest(request_id=rid(), name=case.name, unit=not_legal.name),
                         metadata=dispatcher)
    assert support.error_reason(err.value) == "CASE_CLOSED"


def test_an_off_duty_unit_cannot_be_offered(h):
    unit = h.units_of("S12", "FOOT_PATROL")[0]
    with h.rt.engine.begin() as conn:
        conn.execute(delete(shifts).where(shifts.c.unit_id == unit.unit_id))
    case = h.case_of(h.report(incident_type="DISPUTE", station="S12", grid="S12-G01", lon=116.5, lat=31.0))
    with pytest.raises(grpc.RpcError) as err:
        h.stub.OfferCase(pb.OfferCaseRequest(request_id=rid(), name=case.name, unit=unit.name))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert support.error_reason(err.value) == "UNIT_OFF_DUTY"


def test_a_silent_alarm_reaches_the_phone_as_a_silent_case_that_follows_its_report(h):
    """An intake.IncidentReported from a silent alarm (无声报警): the case is silent, the officer's offer
    says not to call back and to approach quietly, and the case follows later changes of the report."""
    lon, lat = 116.7, 31.0
    unit = h.units_of("S13", "PATROL_CAR")[0]
    place_near(h, unit, lon + 0.001, lat)
    phone = Phone(h, unit)
    after = h.latest_sequence()
    try:
        report = h.report(incident_type="SILENT_ALARM", priority=1, description="", station="S13", grid="S13-G01",
                          lon=lon, lat=lat, channel=intake_pb.CHANNEL_SILENT_ALARM)
        offer = phone.next()
        assert offer is not None and offer.unit == unit.name and offer.state == S.ASSIGNMENT_STATE_OFFERED
        assert offer.case_summary.silent and offer.case_summary.instructions == SILENT_INSTRUCTION
    finally:
        phone.close()
    case = h.case_of(report)
    assert case.silent and case.instructions == SILENT_INSTRUCTION == "无声报警：勿回拨报警人，静默接近"
    assert any(e.action == "SILENT_ALARM" and e.detail == SILENT_INSTRUCTION for e in case.timeline)
    (created,) = [body for _, body in h.events(["dispatch.CaseCreated"], subject=case.name, after=after)]
    assert created.dispatch_case.silent and created.dispatch_case.instructions == SILENT_INSTRUCTION
    got = h.stub.GetAssignment(pb.GetAssignmentRequest(name=offer.name), metadata=officer_of(unit))
    assert got.case_summary.silent and got.case_summary.instructions == SILENT_INSTRUCTION

    h.update_report(report, "CORRECTED", silent=False)
    lifted = h.case(case.name)
    assert not lifted.silent and lifted.instructions == "" and lifted.timeline[-1].action == "SILENT_ALARM_LIFTED"
    h.update_report(report, "DUPLICATE_LINKED", silent=True)
    again = h.case(case.name)
    assert again.silent and again.instructions == SILENT_INSTRUCTION and again.timeline[-1].action == "SILENT_ALARM"
    updates = [body for _, body in h.events(["dispatch.CaseUpdated"], subject=case.name, after=after)]
    assert [(u.action, u.dispatch_case.silent) for u in updates] == [("SILENT_ALARM_LIFTED", False),
                                                                     ("SILENT_ALARM", True)]
    assert all("silent" in u.changed_fields for u in updates)
    ordinary = h.case_of(h.report(incident_type="DISPUTE", station="S13", grid="S13-G01", lon=lon, lat=lat))
    assert not ordinary.silent and ordinary.instructions == ""
