"""Access grants bound to a case (权随案走、因事提权), on dispatch's port: the officer working a case asks
for another station's cases with a reason; the grant policy grants a criminal case at county level
at once, anything else waits for the case station's chief or legal officer; a grant opens exactly
what it names, ends with its time, its case or a revocation, and every request, decision, use and
end is on the case's timeline."""
from __future__ import annotations

import uuid

import grpc
import pytest

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from services.dispatch import workers
from tests import support
from tests.integration.dispatch_harness import dispatch_service, field_violations

STATION_CASES = pb.ACCESS_SCOPE_STATION_CASES
State = pb.AccessGrantState


@pytest.fixture(scope="module")
def h(admin_url):
    with dispatch_service(admin_url, env={"DISPATCH_GRANT_SWEEP_SECONDS": "3600"}) as harness:
        yield harness


def officer(station: str, sub: str) -> tuple:
    return support.caller(["officer"], station=station, sub=sub)


def chief(station: str) -> tuple:
    return support.caller(["station_chief"], station=station, sub=f"chief-{station}")


def code_and_reason(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), support.error_reason(err.value)


# Stations of other districts than the askers': no unit of the asker's station is offered their cases
# (automatic offers stay in a district), so only a grant opens them.
def ask(h, case: str, who: tuple, stations=("S10",), *, hours: int = 0, reason: str = "嫌疑人逃往邻所辖区，需查阅关联警情",
        request_id: str | None = None) -> pb.AccessGrant:
    return h.stub.RequestAccessGrant(pb.RequestAccessGrantRequest(
        parent=case, scope=STATION_CASES, station_ids=list(stations), reason=reason, hours=hours,
        request_id=request_id or uuid.uuid4().hex), metadata=who, timeout=10)


def actions(h, case: str) -> list[str]:
    return [e.action for e in h.case(case).timeline]


def test_a_criminal_case_at_county_level_is_granted_at_once_and_opens_exactly_what_it_names(h):
    mine = h.open_case(incident_type="ROBBERY", priority=1, station="S01", grid="S01-G01")
    assert mine.level == pb.CASE_LEVEL_COUNTY
    theirs = h.open_case(incident_type="THEFT", station="S10", grid="S10-G01")
    elsewhere = h.open_case(incident_type="THEFT", station="S14", grid="S14-G01")
    me, colleague = officer("S01", "p-grant-01"), officer("S01", "p-grant-02")
    assert code_and_reason(lambda: h.stub.GetCase(pb.GetCaseRequest(name=theirs.name), metadata=me)
                           )[0] == grpc.StatusCode.NOT_FOUND

    grant = ask(h, mine.name, me)
    assert grant.state == State.Value("ACCESS_GRANT_STATE_ACTIVE") and grant.auto_granted
    assert grant.decided_by == "grant-policy" and "自动授权" in grant.decision_reason
    assert grant.grantee == "p-grant-01" and grant.grantee_station_id == "S01" and list(grant.station_ids) == ["S10"]
    assert grant.expire_time.ToDatetime() > grant.grant_time.ToDatetime()

    assert h.stub.GetCase(pb.GetCaseRequest(name=theirs.name), metadata=me).name == theirs.name
    listed = h.stub.ListCases(pb.ListCasesRequest(station_id="S10", page_size=100), metadata=me).cases
    assert theirs.name in {c.name for c in listed}
    # Not another station, not another officer, not a write.
    assert code_and_reason(lambda: h.stub.GetCase(pb.GetCaseRequest(name=elsewhere.name), metadata=me)
                           )[0] == grpc.StatusCode.NOT_FOUND
    assert code_and_reason(lambda: h.stub.ListCases(pb.ListCasesRequest(station_id="S14"), metadata=me)) == \
        (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_JURISDICTION")
    assert code_and_reason(lambda: h.stub.GetCase(pb.GetCaseRequest(name=theirs.name), metadata=colleague)
                           )[0] == grpc.StatusCode.NOT_FOUND
    assert code_and_reason(lambda: h.stub.EscalateCase(pb.EscalateCaseRequest(
        name=theirs.name, level=pb.CASE_LEVEL_CITY, reason="x", request_id=uuid.uuid4().hex), metadata=me)
    )[0] in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND)

    # Each read under the grant is on the case's timeline and counted.
    trail = [e for e in h.case(mine.name).timeline if e.action.startswith("ACCESS_")]
    assert [e.action for e in trail] == ["ACCESS_REQUESTED", "ACCESS_GRANTED", "ACCESS_USED", "ACCESS_USED"]
    assert trail[0].stamp.reason == "嫌疑人逃往邻所辖区，需查阅关联警情" and theirs.name in trail[2].detail
    assert {e.stamp.actor for e in trail} == {"p-grant-01", "grant-policy"}
    (found,) = h.stub.ListAccessGrants(pb.ListAccessGrantsRequest(case=mine.name), metadata=me).access_grants
    assert found.name == grant.name and found.uses == 2 and found.HasField("last_use_time")


def test_any_other_request_waits_for_the_case_station_s_chief_who_may_approve_and_revoke_it(h):
    mine = h.open_case(incident_type="FIGHT", station="S01", grid="S01-G01")
    theirs = h.open_case(incident_type="FIGHT", station="S10", grid="S10-G01")
    me = officer("S01", "p-grant-03")
    grant = ask(h, mine.name, me)
    assert grant.state == State.Value("ACCESS_GRANT_STATE_PENDING") and not grant.auto_granted
    assert code_and_reason(lambda: h.stub.GetCase(pb.GetCaseRequest(name=theirs.name), metadata=me)
                           )[0] == grpc.StatusCode.NOT_FOUND, "pending opens nothing"

    approve = pb.ApproveAccessGrantRequest(name=grant.name, comment="同意", request_id=uuid.uuid4().hex)
    # The grantee cannot approve; another station's chief does not even see it.
    assert code_and_reason(lambda: h.stub.ApproveAccessGrant(approve, metadata=me)) == \
        (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    assert code_and_reason(lambda: h.stub.ApproveAccessGrant(approve, metadata=chief("S07")))[0] == \
        grpc.StatusCode.NOT_FOUND
    self_approval = support.caller(["station_chief"], station="S01", sub="p-grant-chief-asks")
    own = ask(h, mine.name, self_approval)
    assert code_and_reason(lambda: h.stub.ApproveAccessGrant(pb.ApproveAccessGrantRequest(
        name=own.name, request_id=uuid.uuid4().hex), metadata=self_approval)) == \
        (grpc.StatusCode.PERMISSION_DENIED, "SELF_APPROVAL")

    approved = h.stub.ApproveAccessGrant(approve, metadata=chief("S01"))
    assert approved.state == State.Value("ACCESS_GRANT_STATE_ACTIVE") and approved.decided_by == "chief-S01"
    assert h.stub.ApproveAccessGrant(approve, metadata=chief("S01")) == approved, "a retry changes nothing"
    assert code_and_reason(lambda: h.stub.ApproveAccessGrant(pb.ApproveAccessGrantRequest(
        name=grant.name, request_id=uuid.uuid4().hex), metadata=chief("S01"))) == \
        (grpc.StatusCode.FAILED_PRECONDITION, "GRANT_NOT_PENDING")
    assert h.stub.GetCase(pb.GetCaseRequest(name=theirs.name), metadata=me).name == theirs.name

    revoked = h.stub.RevokeAccessGrant(pb.RevokeAccessGrantRequest(
        name=grant.name, reason="已抓获嫌疑人", request_id=uuid.uuid4().hex), metadata=chief("S01"))
    assert revoked.state == State.Value("ACCESS_GRANT_STATE_REVOKED") and revoked.end_reason == "已抓获嫌疑人"
    assert code_and_reason(lambda: h.stub.GetCase(pb.GetCaseRequest(name=theirs.name), metadata=me)
                           )[0] == grpc.StatusCode.NOT_FOUND
    assert code_and_reason(lambda: h.stub.RevokeAccessGrant(pb.RevokeAccessGrantRequest(
        name=grant.name, request_id=uuid.uuid4().hex), metadata=me)) == \
        (grpc.StatusCode.FAILED_PRECONDITION, "GRANT_ENDED")
    trail = [a for a in actions(h, mine.name) if a.startswith("ACCESS_")]
    assert trail[:2] == ["ACCESS_REQUESTED", "ACCESS_REQUESTED"]
    assert trail[2:] == ["ACCESS_GRANTED", "ACCESS_USED", "ACCESS_REVOKED"]


def test_a_denial_needs_a_reason_and_ends_the_request(h):
    mine = h.open_case(incident_type="NOISE", station="S02", grid="S02-G01")
    grant = ask(h, mine.name, officer("S02", "p-grant-04"), stations=("S11",))
    err = code_and_reason(lambda: h.stub.DenyAccessGrant(pb.DenyAccessGrantRequest(
        name=grant.name, request_id=uuid.uuid4().hex), metadata=chief("S02")))
    assert err[0] == grpc.StatusCode.INVALID_ARGUMENT
    legal = support.caller(["legal_officer"], station="S02", sub="p-legal-S02")
    denied = h.stub.DenyAccessGrant(pb.DenyAccessGrantRequest(
        name=grant.name, reason="与本案无关", request_id=uuid.uuid4().hex), metadata=legal)
    assert denied.state == State.Value("ACCESS_GRANT_STATE_DENIED") and denied.decision_reason == "与本案无关"
    assert denied.decided_by == "p-legal-S02" and "ACCESS_DENIED" in actions(h, mine.name)


def test_a_grant_ends_with_its_time_and_with_its_case(h):
    mine = h.open_case(incident_type="HOMICIDE", priority=1, station="S03", grid="S03-G01")
    theirs = h.open_case(incident_type="FIGHT", station="S11", grid="S11-G01")
    me = officer("S03", "p-grant-05")
    grant = ask(h, mine.name, me, stations=("S11",), hours=1)
    assert grant.state == State.Value("ACCESS_GRANT_STATE_ACTIVE")
    h.clock.advance(3601)
    # Past its time the grant opens nothing, before any sweeper has run.
    assert code_and_reason(lambda: h.stub.GetCase(pb.GetCaseRequest(name=theirs.name), metadata=me)
                           )[0] == grpc.StatusCode.NOT_FOUND
    assert workers.sweep_grants(h.rt) >= 1
    (ended,) = h.stub.ListAccessGrants(pb.ListAccessGrantsRequest(case=mine.name), metadata=me).access_grants
    assert ended.state == State.Value("ACCESS_GRANT_STATE_EXPIRED") and ended.end_reason == "授权期限届满"
    assert actions(h, mine.name)[-1] == "ACCESS_EXPIRED"

    # A case opened now (the offers of the first one expired with the hour that passed).
    mine = h.open_case(incident_type="HOMICIDE", priority=1, station="S03", grid="S03-G01")
    other = ask(h, mine.name, me, stations=("S11",))
    assert other.state == State.Value("ACCESS_GRANT_STATE_ACTIVE")
    close(h, mine.name)
    assert h.case(mine.name).status == pb.CASE_STATUS_CLOSED
    assert code_and_reason(lambda: h.stub.GetCase(pb.GetCaseRequest(name=theirs.name), metadata=me)
                           )[0] == grpc.StatusCode.NOT_FOUND, "a closed case's grant opens nothing"
    workers.sweep_grants(h.rt)
    found = {g.name: g for g in h.stub.ListAccessGrants(pb.ListAccessGrantsRequest(case=mine.name),
                                                         metadata=me).access_grants}
    assert found[other.name].state == State.Value("ACCESS_GRANT_STATE_EXPIRED")
    assert found[other.name].end_reason == "警情办结或撤销，授权终止"
    # A cancelled case's grant ends the same way.
    dropped = h.open_case(incident_type="HOMICIDE", priority=1, station="S03", grid="S03-G01")
    third = ask(h, dropped.name, me, stations=("S11",))
    assert h.stub.GetCase(pb.GetCaseRequest(name=theirs.name), metadata=me).name == theirs.name
    h.stub.CancelCase(pb.CancelCaseRequest(name=dropped.name, reason=pb.CANCEL_REASON_DUPLICATE,
                                           request_id=uuid.uuid4().hex),
                      metadata=support.caller(["dispatcher"], sub="p-grants-desk"))
    assert code_and_reason(lambda: h.stub.GetCase(pb.GetCaseRequest(name=theirs.name), metadata=me)
                           )[0] == grpc.StatusCode.NOT_FOUND, "a cancelled case's grant opens nothing"
    workers.sweep_grants(h.rt)
    (ended_too,) = h.stub.ListAccessGrants(pb.ListAccessGrantsRequest(case=dropped.name), metadata=me).access_grants
    assert ended_too.name == third.name and ended_too.state == State.Value("ACCESS_GRANT_STATE_EXPIRED")
    assert code_and_reason(lambda: ask(h, mine.name, me, stations=("S11",))) == \
        (grpc.StatusCode.FAILED_PRECONDITION, "CASE_CLOSED")


def close(h, case: str) -> None:
    """Every unit on the case accepts, goes, clears and reports back (the case closes)."""
    S = pb.AssignmentState
    for a in h.case(case).assignments:
        if a.state != S.Value("ASSIGNMENT_STATE_OFFERED"):
            continue
        unit = h.stub.GetUnit(pb.GetUnitRequest(name=a.unit), timeout=10)
        crew = support.caller(["officer"], station=unit.station_id, sub=unit.officers[0].officer_id)
        h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=uuid.uuid4().hex, name=a.name), metadata=crew)
        for state in ("EN_ROUTE", "ON_SCENE", "CLEARED"):
            h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(
                request_id=uuid.uuid4().hex, name=a.name, state=S.Value(f"ASSIGNMENT_STATE_{state}")), metadata=crew)
        h.stub.ReportBack(pb.ReportBackRequest(request_id=uuid.uuid4().hex, name=a.name,
                                               outcome=pb.OUTCOME_CRIMINAL_CASE, notes="已移交刑侦"), metadata=crew)


def test_bad_requests_are_refused_naming_the_fields(h):
    mine = h.open_case(incident_type="FIGHT", station="S01", grid="S01-G01")
    me = officer("S01", "p-grant-06")
    with pytest.raises(grpc.RpcError) as err:
        h.stub.RequestAccessGrant(pb.RequestAccessGrantRequest(parent=mine.name, hours=99,
                                                               station_ids=["S99"]), metadata=me)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"request_id", "scope", "station_ids[0]", "reason", "hours"} <= field_violations(err.value)
    assert code_and_reason(lambda: ask(h, mine.name, me, stations=("S01",))) == \
        (grpc.StatusCode.FAILED_PRECONDITION, "ALREADY_IN_JURISDICTION")
    # A case outside the asker's jurisdiction is not there for them.
    theirs = h.open_case(incident_type="FIGHT", station="S10", grid="S10-G01")
    assert code_and_reason(lambda: ask(h, theirs.name, me, stations=("S14",)))[0] == grpc.StatusCode.NOT_FOUND
    # The same request_id twice is one grant.
    rid = uuid.uuid4().hex
    assert ask(h, mine.name, me, request_id=rid).name == ask(h, mine.name, me, request_id=rid).name
    assert [a for a in actions(h, mine.name) if a == "ACCESS_REQUESTED"] == ["ACCESS_REQUESTED"]
    with pytest.raises(grpc.RpcError) as err:
        h.stub.ApproveAccessGrant(pb.ApproveAccessGrantRequest(name="cases/x", request_id="r1"), metadata=chief("S01"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "name" in field_violations(err.value)


def test_officers_list_their_own_grants_chiefs_their_station_s_and_supervisors_see_the_figures(h):
    mine = h.open_case(incident_type="ASSAULT", priority=1, station="S02", grid="S02-G01")
    a = ask(h, mine.name, officer("S02", "p-grant-07"), stations=("S11",))
    b = ask(h, mine.name, officer("S02", "p-grant-08"), stations=("S12",))
    own = h.stub.ListAccessGrants(pb.ListAccessGrantsRequest(), metadata=officer("S02", "p-grant-07")).access_grants
    assert {g.name for g in own} == {a.name}
    assert code_and_reason(lambda: h.stub.ListAccessGrants(pb.ListAccessGrantsRequest(grantee="p-grant-08"),
                                                           metadata=officer("S02", "p-grant-07"))) == \
        (grpc.StatusCode.PERMISSION_DENIED, "OTHERS_GRANTS")
    station = h.stub.ListAccessGrants(pb.ListAccessGrantsRequest(station_id="S02", page_size=100),
                                      metadata=chief("S02")).access_grants
    assert {a.name, b.name} <= {g.name for g in station} and {g.grantee_station_id for g in station} == {"S02"}
    assert not {a.name, b.name} & {g.name for g in h.stub.ListAccessGrants(
        pb.ListAccessGrantsRequest(page_size=100), metadata=chief("S07")).access_grants}
    assert code_and_reason(lambda: h.stub.ListAccessGrants(pb.ListAccessGrantsRequest(station_id="S02"),
                                                           metadata=chief("S07"))) == \
        (grpc.StatusCode.PERMISSION_DENIED, "OUT_OF_JURISDICTION")

    stats = h.stub.GetAccessGrantStats(pb.GetAccessGrantStatsRequest(station_id="S02"),
                                       metadata=support.caller(["supervisor"], sub="p-supervisor"))
    (line,) = stats.stations
    listed = [g for g in station if g.grantee_station_id == "S02"]
    assert line.station_id == "S02" and line.requested == len(listed)
    assert line.auto_granted == sum(g.auto_granted for g in listed) >= 2
    assert line.pending + line.active + line.denied + line.revoked + line.expired == line.requested
    assert {t.incident_type: t.count for t in line.incident_types}["ASSAULT"] >= 2
