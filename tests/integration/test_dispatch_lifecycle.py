"""The assignment lifecycle over real gRPC against a real Postgres: offer, accept, move on, report back."""
from __future__ import annotations

import uuid

import grpc
import pytest

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from tests import support
from tests.integration.dispatch_harness import dispatch_service, field_violations, officer_of, pb

S = pb.AssignmentState


@pytest.fixture(scope="module")
def h(admin_url):
    with dispatch_service(admin_url) as harness:
        yield harness


def rid() -> str:
    return uuid.uuid4().hex


def primary(case: pb.DispatchCase) -> pb.Assignment:
    return next(a for a in case.assignments if a.role == pb.ASSIGNMENT_ROLE_PRIMARY)


def unit(h, name: str) -> pb.Unit:
    return h.stub.GetUnit(pb.GetUnitRequest(name=name), timeout=10)


def test_a_police_report_is_offered_at_once_to_the_matrix_units(h):
    case = h.case_of(h.report(incident_type="FIGHT"))
    assert case.status == pb.CASE_STATUS_PENDING
    assert [(r.capability, r.role) for r in case.recommendations] == [
        ("PATROL", pb.ASSIGNMENT_ROLE_PRIMARY), ("COMMUNITY", pb.ASSIGNMENT_ROLE_SUPPORT)]
    assert {a.unit for a in case.assignments} == {r.unit for r in case.recommendations}
    assert all(a.state == S.ASSIGNMENT_STATE_OFFERED for a in case.assignments)
    for a in case.assignments:
        assert unit(h, a.unit).status == pb.UNIT_STATUS_OFFERED
        assert a.officers and a.call_sign and a.arrival_target_seconds > 0
    offered = [body for e, body in h.events(["dispatch.AssignmentChanged"]) if body.case_name == case.name]
    assert {(b.action, b.assignment.unit) for b in offered} == {("OFFERED", a.unit) for a in case.assignments}
    assert all(b.station_id == "S01" and b.incident_type == "FIGHT" and b.officers for b in offered)


def test_duplicates_and_non_police_reports_get_no_case(h):
    assert h.case_of(h.report(merged_into="reports/master-1")) is None
    assert h.case_of(h.report(category=intake_pb.CATEGORY_NON_POLICE)) is None


def test_reports_corrected_into_police_or_split_off_their_master_get_a_case(h):
    name = h.report(category=intake_pb.CATEGORY_NON_POLICE)
    h.update_report(name, "RATED")
    assert h.case_of(name) is None
    h.update_report(name, "CORRECTED", category=intake_pb.CATEGORY_POLICE, incident_type="FIGHT")
    assert h.case_of(name).assignments
    repeat = h.report(merged_into="reports/master-2")
    assert h.case_of(repeat) is None
    h.update_report(repeat, "UNMERGED", merged_into="")
    assert h.case_of(repeat).status == pb.CASE_STATUS_PENDING


def test_a_corrected_incident_type_is_carried_to_the_open_case(h):
    name = h.report(incident_type="DISPUTE")
    case = h.case_of(name)
    h.update_report(name, "CORRECTED", incident_type="FIGHT", priority=1)
    after = h.case(case.name)
    assert (after.incident_type, after.priority) == ("FIGHT", 1)
    assert after.timeline[-1].action == "RECLASSIFIED" and "DISPUTE → FIGHT" in after.timeline[-1].detail
    updates = [b.action for _, b in h.events(["dispatch.CaseUpdated"]) if b.dispatch_case.name == case.name]
    assert updates == ["RECLASSIFIED"]


def test_full_lifecycle_by_the_units_officer_with_events_and_timeline(h):
    case = h.case_of(h.report())
    a = primary(case)
    u = unit(h, a.unit)
    md = officer_of(u)
    accepted = h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=a.name), metadata=md)
    assert accepted.state == S.ASSIGNMENT_STATE_ACCEPTED and accepted.accept_seconds >= 20
    assert h.case(case.name).status == pb.CASE_STATUS_DISPATCHED
    assert h.case(case.name).accept_seconds == accepted.accept_seconds
    assert unit(h, a.unit).status == pb.UNIT_STATUS_BUSY
    h.clock.advance(10)  # within the offer timeout: the support offer stays open
    for state, unit_status in ((S.ASSIGNMENT_STATE_EN_ROUTE, pb.UNIT_STATUS_EN_ROUTE),
                               (S.ASSIGNMENT_STATE_ON_SCENE, pb.UNIT_STATUS_ON_SCENE)):
        moved = h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(request_id=rid(), name=a.name, state=state),
                                         metadata=md)
        assert moved.state == state
        assert unit(h, a.unit).status == unit_status
    assert moved.arrival_seconds == 30 and moved.arrival_target_met == (30 <= moved.arrival_target_seconds)
    assert h.case(case.name).status == pb.CASE_STATUS_ON_SCENE
    h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(request_id=rid(), name=a.name,
                                                         state=S.ASSIGNMENT_STATE_CLEARED), metadata=md)
    assert unit(h, a.unit).status == pb.UNIT_STATUS_AVAILABLE
    photo = common_pb2.Attachment(kind=common_pb2.ATTACHMENT_KIND_IMAGE, content_type="image/jpeg", size_bytes=1024,
                                  sha256="a" * 64, storage_uri="s3://evidence/2026/11/a.jpg")
    back = h.stub.ReportBack(pb.ReportBackRequest(request_id=rid(), name=a.name, outcome=pb.OUTCOME_MEDIATED,
                                                  notes="双方已调解，握手言和", evidence=[photo]), metadata=md)
    assert back.state == S.ASSIGNMENT_STATE_REPORTED_BACK and back.outcome == pb.OUTCOME_MEDIATED
    assert back.evidence[0].storage_uri == photo.storage_uri
    final = h.case(case.name)
    # The support offer nobody answered is withdrawn when the case closes.
    assert final.status == pb.CASE_STATUS_CLOSED and final.close_time.seconds > 0
    assert {x.state for x in final.assignments} == {S.ASSIGNMENT_STATE_REPORTED_BACK, S.ASSIGNMENT_STATE_CANCELLED}
    actions = [(e.action, e.stamp.actor) for e in final.timeline]
    officer = u.officers[0].officer_id
    for step in ("ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED", "REPORTED_BACK"):
        assert (step, officer) in actions
    assert ("CLOSED", officer) in actions
    changes = [b for _, b in h.events(["dispatch.AssignmentChanged"]) if b.assignment.name == a.name]
    assert [b.action for b in changes] == ["OFFERED", "ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED", "REPORTED_BACK"]
    last = changes[-1]
    assert last.assignment.outcome == pb.OUTCOME_MEDIATED and last.assignment.report_back_time.seconds > 0
    assert last.assignment.arrive_time.seconds > 0 and last.stamp.actor == officer
    assert last.previous_state == S.ASSIGNMENT_STATE_CLEARED and last.report_time.seconds > 0
    updated = [b.action for _, b in h.events(["dispatch.CaseUpdated"]) if b.dispatch_case.name == case.name]
    assert updated == ["DISPATCHED", "ON_SCENE", "CLEARED", "CLOSED"]


def test_illegal_transitions_are_failed_precondition(h):
    case = h.case_of(h.report())
    a = primary(case)
    with pytest.raises(grpc.RpcError) as err:
        h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(request_id=rid(), name=a.name,
                                                             state=S.ASSIGNMENT_STATE_ON_SCENE))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert support.error_reason(err.value) == "ILLEGAL_TRANSITION"
    with pytest.raises(grpc.RpcError) as err:
        h.stub.ReportBack(pb.ReportBackRequest(request_id=rid(), name=a.name, outcome=pb.OUTCOME_MEDIATED))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=a.name))
    with pytest.raises(grpc.RpcError) as err:
        h.stub.DeclineAssignment(pb.DeclineAssignmentRequest(request_id=rid(), name=a.name, reason="太远"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert h.case(case.name).status == pb.CASE_STATUS_DISPATCHED


def test_a_retried_request_changes_nothing(h):
    case = h.case_of(h.report())
    a = primary(case)
    req = pb.AcceptAssignmentRequest(request_id=rid(), name=a.name)
    first = h.stub.AcceptAssignment(req)
    second = h.stub.AcceptAssignment(req)
    assert first == second
    changes = [b for _, b in h.events(["dispatch.AssignmentChanged"]) if b.assignment.name == a.name]
    assert [b.action for b in changes] == ["OFFERED", "ACCEPTED"]
    with pytest.raises(grpc.RpcError) as err:
        other = next(x for x in case.assignments if x.name != a.name)
        h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=req.request_id, name=other.name))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS


def test_only_the_units_officer_or_a_dispatcher_may_act(h):
    case = h.case_of(h.report())
    a = primary(case)
    other = next(x for x in case.assignments if x.name != a.name)
    someone_else = officer_of(unit(h, other.unit))
    for md in (someone_else, support.caller(["call_taker"], sub="t-dispatcher"),
               support.caller(["officer"], station="S01", sub="P-nobody")):
        with pytest.raises(grpc.RpcError) as err:
            h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=a.name), metadata=md)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    u = unit(h, a.unit)
    wrong_station = support.caller(["officer"], station="S99", sub=u.officers[0].officer_id)
    with pytest.raises(grpc.RpcError) as err:
        h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=a.name), metadata=wrong_station)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert h.stub.GetAssignment(pb.GetAssignmentRequest(name=a.name)).state == S.ASSIGNMENT_STATE_OFFERED
    done = h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=a.name),
                                   metadata=support.caller(["dispatcher"], sub="t-dispatcher"))
    assert done.state == S.ASSIGNMENT_STATE_ACCEPTED
    with pytest.raises(grpc.RpcError) as err:
        h.stub.OfferCase(pb.OfferCaseRequest(request_id=rid(), name=case.name, unit=other.unit),
                         metadata=officer_of(u))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_bad_input_names_the_fields_and_unknown_ids_are_not_found(h):
    with pytest.raises(grpc.RpcError) as err:
        h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(name="cases/x", state=S.ASSIGNMENT_STATE_ACCEPTED))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == {"request_id", "name", "state"}
    with pytest.raises(grpc.RpcError) as err:
        h.stub.ReportBack(pb.ReportBackRequest(
            request_id=rid(), name="cases/a/assignments/b",
            evidence=[common_pb2.Attachment(sha256="xyz")]))
    assert field_violations(err.value) == {"outcome", "evidence[0].kind", "evidence[0].storage_uri",
                                           "evidence[0].sha256"}
    with pytest.raises(grpc.RpcError) as err:
        h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name="cases/nope/assignments/nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        h.stub.OfferCase(pb.OfferCaseRequest(request_id=rid(), name="cases/nope", unit="units/U-S01-001"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
