"""Every case ends well (办结、撤销): the command closes a case with an outcome or cancels it with a
reason (offers withdrawn, units stand down); a case nobody takes stops wandering after a few
unanswered offers and goes up to district command; automatic offers stay in the case's district."""
from __future__ import annotations

import uuid

import grpc
import pytest

from services.dispatch import workers
from services.runtime.policy import org
from tests import support
from tests.integration.dispatch_harness import dispatch_service, field_violations, officer_of, pb

S = pb.AssignmentState
DISPATCHER = support.caller(["dispatcher"], sub="p-closing-desk")


@pytest.fixture(scope="module")
def h(admin_url):
    # The offer sweeper is run by hand: each round is one step of the test's clock.
    with dispatch_service(admin_url, offer_timeout_s=30, workers=False,
                          env={"DISPATCH_UNANSWERED_ESCALATE_SECONDS": "120"}) as harness:
        yield harness


def rid() -> str:
    return uuid.uuid4().hex


def refused(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code(), support.error_reason(err.value)


def test_closing_withdraws_the_offers_and_stands_the_units_down(h):
    case = h.open_case(incident_type="FIGHT", station="S02", grid="S02-G01")
    offered = [a for a in case.assignments if a.state == S.ASSIGNMENT_STATE_OFFERED]
    assert offered, "the case was offered"
    first = offered[0]
    unit = h.stub.GetUnit(pb.GetUnitRequest(name=first.unit))
    h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=first.name), metadata=officer_of(unit))
    after = h.latest_sequence()

    request = pb.CloseCaseRequest(name=case.name, outcome=pb.OUTCOME_MEDIATED, notes="双方已和解，电话回访确认",
                                  request_id=rid())
    closed = h.stub.CloseCase(request, metadata=DISPATCHER)
    assert closed.status == pb.CASE_STATUS_CLOSED and closed.outcome == pb.OUTCOME_MEDIATED
    assert closed.close_notes == "双方已和解，电话回访确认" and closed.HasField("close_time")
    states = {a.name: a.state for a in closed.assignments}
    assert states[first.name] == S.ASSIGNMENT_STATE_WITHDRAWN
    assert all(states[a.name] == S.ASSIGNMENT_STATE_CANCELLED for a in offered[1:])
    assert h.stub.GetUnit(pb.GetUnitRequest(name=first.unit)).status == pb.UNIT_STATUS_AVAILABLE
    actions = [e.action for e in closed.timeline]
    assert actions[-1] == "CLOSED" and "WITHDRAWN" in actions
    assert h.stub.CloseCase(request, metadata=DISPATCHER) == closed, "a retry changes nothing"
    updated = [b for _, b in h.events(["dispatch.CaseUpdated"], subject=case.name, after=after)]
    assert [b.action for b in updated] == ["CLOSED"]
    assert updated[0].dispatch_case.status == pb.CASE_STATUS_CLOSED
    assert refused(lambda: h.stub.CloseCase(pb.CloseCaseRequest(name=case.name, outcome=pb.OUTCOME_MEDIATED,
                                                                request_id=rid()), metadata=DISPATCHER)) == \
        (grpc.StatusCode.FAILED_PRECONDITION, "CASE_CLOSED")
    assert refused(lambda: h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=offered[-1].name),
                                                   metadata=DISPATCHER))[0] == grpc.StatusCode.FAILED_PRECONDITION


def test_cancelling_needs_a_reason_and_takes_the_case_off_the_map(h):
    case = h.open_case(incident_type="NOISE", station="S03", grid="S03-G01")
    with pytest.raises(grpc.RpcError) as err:
        h.stub.CancelCase(pb.CancelCaseRequest(name=case.name), metadata=DISPATCHER)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"reason", "request_id"} <= field_violations(err.value)
    with pytest.raises(grpc.RpcError) as err:
        h.stub.CancelCase(pb.CancelCaseRequest(name=case.name, reason=pb.CANCEL_REASON_FALSE_ALARM,
                                               request_id=rid()), metadata=DISPATCHER)
    assert "notes" in field_violations(err.value), "a false alarm says what was found"
    # Another station's chief does not see it; its own chief cancels it.
    other = support.caller(["station_chief"], station="S10", sub="chief-S10")
    assert refused(lambda: h.stub.CancelCase(pb.CancelCaseRequest(
        name=case.name, reason=pb.CANCEL_REASON_DUPLICATE, request_id=rid()), metadata=other))[0] == \
        grpc.StatusCode.NOT_FOUND
    chief = support.caller(["station_chief"], station="S03", sub="chief-S03")
    cancelled = h.stub.CancelCase(pb.CancelCaseRequest(name=case.name, reason=pb.CANCEL_REASON_CALLER_WITHDREW,
                                                       notes="报警人来电称已自行解决", request_id=rid()),
                                  metadata=chief)
    assert cancelled.status == pb.CASE_STATUS_CANCELLED
    assert cancelled.cancel_reason == pb.CANCEL_REASON_CALLER_WITHDREW
    assert all(a.state == S.ASSIGNMENT_STATE_CANCELLED for a in cancelled.assignments)
    assert "报警人撤警" in cancelled.timeline[-1].detail
    situation = h.stub.GetSituation(pb.GetSituationRequest(station_id="S03"), metadata=DISPATCHER)
    assert case.name not in {c.name for c in situation.cases}
    assert refused(lambda: h.stub.EscalateCase(pb.EscalateCaseRequest(
        name=case.name, level=pb.CASE_LEVEL_CITY, reason="x", request_id=rid()), metadata=DISPATCHER)) == \
        (grpc.StatusCode.FAILED_PRECONDITION, "CASE_CLOSED")


def test_a_case_nobody_takes_stops_wandering_and_goes_up_to_district_command(h):
    case = h.open_case(incident_type="SUSPICIOUS_PERSON", priority=3, station="S07", grid="S07-G01")
    assert case.level == pb.CASE_LEVEL_STATION and case.assignments
    district = org().stations_of(org().district_of["S07"])
    for _ in range(12):  # far more rounds than the limit, should offers not stop
        h.clock.advance(31)  # every open offer runs out
        workers.sweep_offers(h.rt)
        if h.case(case.name).HasField("offers_exhausted_time"):
            break
    h.clock.advance(31)
    workers.sweep_offers(h.rt)  # one more round: nothing more is offered
    stopped = h.case(case.name)
    unanswered = [a for a in stopped.assignments if a.state == S.ASSIGNMENT_STATE_EXPIRED]
    # The limit for a station-level case is 3; offers made in the same round as the third may run out too.
    assert 3 <= len(unanswered) < 3 + len(case.assignments), [a.state for a in stopped.assignments]
    assert not [a for a in stopped.assignments if a.state == S.ASSIGNMENT_STATE_OFFERED], "offers stopped"
    assert {a.station_id for a in stopped.assignments} <= district, "automatic offers stay in the district"
    assert stopped.HasField("offers_exhausted_time") and stopped.level == pb.CASE_LEVEL_STATION
    assert [e for e in stopped.timeline if e.action == "OFFERS_EXHAUSTED"]

    h.clock.advance(90)  # 121 s after offers stopped
    workers.sweep_offers(h.rt)
    raised = h.case(case.name)
    assert raised.level == pb.CASE_LEVEL_COUNTY
    assert raised.timeline[-1].action == "ESCALATED" and "无人接单" in raised.timeline[-1].stamp.reason
    workers.sweep_offers(h.rt)
    assert [e.action for e in h.case(case.name).timeline].count("ESCALATED") == 1, "raised once"


def test_a_cross_district_offer_is_the_commander_s_decision(h):
    case = h.open_case(incident_type="FIGHT", station="S01", grid="S01-G01")
    far = next(u for s in ("S23", "S24", "S25", "S26") for u in h.units_of(s, "PATROL_CAR")
               if u.status == pb.UNIT_STATUS_AVAILABLE and u.on_duty)
    offer = pb.OfferCaseRequest(name=case.name, unit=far.name, role=pb.ASSIGNMENT_ROLE_REINFORCEMENT,
                                reason="跨区增援", request_id=rid())
    assert refused(lambda: h.stub.OfferCase(offer, metadata=DISPATCHER)) == \
        (grpc.StatusCode.PERMISSION_DENIED, "CROSS_DISTRICT")
    commander = support.caller(["commander"], sub="p-commander")
    made = h.stub.OfferCase(offer, metadata=commander)
    assert made.unit == far.name and made.state == S.ASSIGNMENT_STATE_OFFERED


def _handle(h, case_name: str) -> pb.DispatchCase:
    """The open offer of the case is accepted and seen through to report-back by its unit's officer."""
    offer = next(a for a in h.case(case_name).assignments if a.state == S.ASSIGNMENT_STATE_OFFERED)
    officer = officer_of(h.stub.GetUnit(pb.GetUnitRequest(name=offer.unit)))
    h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=offer.name), metadata=officer)
    for state in ("EN_ROUTE", "ON_SCENE", "CLEARED"):
        h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(request_id=rid(), name=offer.name,
                                                             state=S.Value(f"ASSIGNMENT_STATE_{state}")),
                                 metadata=officer)
    h.stub.ReportBack(pb.ReportBackRequest(request_id=rid(), name=offer.name, outcome=pb.OUTCOME_MEDIATED,
                                           notes="已调解"), metadata=officer)
    return h.case(case_name)


def test_an_unsatisfied_follow_up_is_reviewed_and_the_case_reopened_or_answered(h):
    from smart110.common.v1 import common_pb2

    reopened_case = h.open_case(incident_type="DISPUTE", station="S04", grid="S04-G01")
    handled = _handle(h, reopened_case.name)
    assert handled.status in (pb.CASE_STATUS_CLOSED, pb.CASE_STATUS_REPORTED_BACK)
    h.clock.advance(3600)  # the follow-up call comes later
    rated = h.stub.RateCase(pb.RateCaseRequest(request_id=rid(), name=reopened_case.name,
                                               satisfaction=common_pb2.SATISFACTION_UNSATISFIED,
                                               comment="纠纷没有解决，对方还在闹"), metadata=DISPATCHER)
    assert rated.follow_up.review_state == pb.FOLLOW_UP_REVIEW_STATE_OPEN
    review = pb.ReviewFollowUpRequest(name=reopened_case.name, decision=pb.REVIEW_DECISION_REOPEN,
                                      answer="重新派警上门调解", request_id=rid())
    assert refused(lambda: h.stub.ReviewFollowUp(review, metadata=support.caller(
        ["station_chief"], station="S12", sub="chief-S12")))[0] == grpc.StatusCode.NOT_FOUND
    chief = support.caller(["station_chief"], station="S04", sub="chief-S04")
    again = h.stub.ReviewFollowUp(review, metadata=chief)
    assert again.status == pb.CASE_STATUS_PENDING and again.HasField("reopen_time")
    assert again.follow_up.review_state == pb.FOLLOW_UP_REVIEW_STATE_REOPENED
    assert again.follow_up.review_stamp.actor == "chief-S04" and again.follow_up.review_answer == "重新派警上门调解"
    assert "REOPENED" in [e.action for e in again.timeline]
    assert any(a.state == S.ASSIGNMENT_STATE_OFFERED for a in again.assignments), "offered anew"
    assert refused(lambda: h.stub.ReviewFollowUp(pb.ReviewFollowUpRequest(
        name=reopened_case.name, decision=pb.REVIEW_DECISION_ANSWER, answer="x", request_id=rid()),
        metadata=chief)) == (grpc.StatusCode.FAILED_PRECONDITION, "NO_OPEN_REVIEW")
    h.clock.advance(10)  # within the new offer's 30 s
    closed_again = _handle(h, reopened_case.name)
    assert closed_again.status in (pb.CASE_STATUS_CLOSED, pb.CASE_STATUS_REPORTED_BACK)
    if closed_again.status == pb.CASE_STATUS_CLOSED:
        assert closed_again.close_time.ToDatetime() > again.reopen_time.ToDatetime(), "closed anew"

    answered_case = h.open_case(incident_type="NOISE", station="S04", grid="S04-G01")
    _handle(h, answered_case.name)
    h.stub.RateCase(pb.RateCaseRequest(request_id=rid(), name=answered_case.name,
                                       satisfaction=common_pb2.SATISFACTION_UNSATISFIED, comment="态度不好"),
                    metadata=DISPATCHER)
    with pytest.raises(grpc.RpcError) as err:
        h.stub.ReviewFollowUp(pb.ReviewFollowUpRequest(name=answered_case.name, request_id=rid()), metadata=chief)
    assert {"decision", "answer"} <= field_violations(err.value)
    answered = h.stub.ReviewFollowUp(pb.ReviewFollowUpRequest(
        name=answered_case.name, decision=pb.REVIEW_DECISION_ANSWER,
        answer="经核查，民警已依法处置，已向您书面说明并致歉", request_id=rid()), metadata=chief)
    assert answered.follow_up.review_state == pb.FOLLOW_UP_REVIEW_STATE_ANSWERED
    assert answered.status == h.case(answered_case.name).status and answered.timeline[-1].action == "REVIEW_ANSWERED"
