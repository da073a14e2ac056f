"""先期处置 on the real consumers: a 12345 work order the police handle first opens one dispatch case for
its station, and that case's progress comes back to the order the 12345 agent reads.

Dispatch is served with its feed consumers fed by hand (`dispatch_harness`); intake and referral run
together (`referral_support`), referral's dispatch consumer fed by hand with what dispatch published.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from smart110.common.v1 import common_pb2, events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2 as rpb
from services.runtime import timeutil
from tests import support
from tests.integration.dispatch_harness import dispatch_service, officer_of
from tests.integration.referral_support import JIANGAN_S01, rid, serving_suite, ticket

AGENT = support.caller(["hotline_agent"], sub="agent-07")
# A request nobody's matter (test_referral_workorders): the local station handles it first.
DUMPING = "小区后面的空地上半夜有人倾倒不明液体，气味刺鼻，不知道该归哪个部门管"
REFERRAL_EVENTS = {"referral.WorkOrderCreated": rpb.WorkOrderCreated, "referral.WorkOrderUpdated": rpb.WorkOrderUpdated}
CASE_EVENTS = ["dispatch.CaseCreated", "dispatch.AssignmentChanged", "dispatch.CaseUpdated"]


@pytest.fixture(scope="module")
def h(admin_url):
    with dispatch_service(admin_url) as harness:
        yield harness


@pytest.fixture(scope="module")
def suite(admin_url):
    with serving_suite(admin_url) as s:
        yield s


def preliminary(h, *, matter: str = "", urgency: int = 3, station: str = "S01",
                status=rpb.WORK_ORDER_STATUS_PRELIMINARY_POLICE) -> rpb.WorkOrder:
    """A work order as referral's events carry it, with the police station handling it first."""
    return rpb.WorkOrder(
        name=f"workOrders/{uuid.uuid4().hex[:16]}", source=rpb.WORK_ORDER_SOURCE_HOTLINE_12345, matter_code=matter,
        description=DUMPING, urgency=urgency, status=status, preliminary_station=f"stations/{station}",
        address_text="江岸区大智路18号小区后空地",
        location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=114.30, latitude=30.58)),
        deadline=timeutil.to_pb(h.clock() + timedelta(days=3)))


def handed(h, order: rpb.WorkOrder, action: str = "PRELIMINARY_POLICE") -> bool:
    return h.served.deliver("referral", "referral.WorkOrderUpdated", order.name,
                            rpb.WorkOrderUpdated(work_order=order, action=action))


def cases_for(h, order_name: str) -> list[pb.DispatchCase]:
    """The cases dispatch opened for an order, as GetCase shows them (from its CaseCreated events)."""
    return [h.case(body.dispatch_case.name) for _e, body in h.events(["dispatch.CaseCreated"])
            if body.dispatch_case.report == order_name]


# -- dispatch: the order becomes its station's case --------------------------------------------

def test_an_order_handed_to_the_police_opens_one_case_for_the_station_offered_to_its_units(h):
    order = preliminary(h)
    assert handed(h, order)
    [case] = cases_for(h, order.name)
    assert (case.station_id, case.report, case.incident_type, case.priority) == ("S01", order.name, "OTHER", 3)
    assert case.level == pb.CASE_LEVEL_STATION and case.status == pb.CASE_STATUS_PENDING
    assert DUMPING in case.summary and "先期处置" in case.summary and "办理时限" in case.summary
    assert case.address_text == order.address_text
    assert (case.location.point.longitude, case.location.point.latitude) == (114.30, 30.58)
    assert case.assignments and all(a.state == pb.ASSIGNMENT_STATE_OFFERED for a in case.assignments)
    assert any(a.role == pb.ASSIGNMENT_ROLE_PRIMARY for a in case.assignments)

    # The same news again (a redelivery under a new event id), or later news of the order: no second case.
    assert handed(h, order)
    assert handed(h, order, "OVERDUE")
    assert [c.name for c in cases_for(h, order.name)] == [case.name]
    assert len(h.events(["dispatch.CaseCreated"], subject=case.name)) == 1


def test_an_emergency_order_on_a_dispute_is_a_p2_dispute_and_other_orders_open_no_case(h):
    order = preliminary(h, matter="NEIGHBOR_DISPUTE", urgency=1)
    handed(h, order)
    [case] = cases_for(h, order.name)
    assert (case.incident_type, case.priority, case.level) == ("DISPUTE", 2, pb.CASE_LEVEL_STATION)

    assigned = preliminary(h, status=rpb.WORK_ORDER_STATUS_ASSIGNED)
    assert handed(h, assigned, "ASSIGNED")
    created = h.served.deliver("referral", "referral.WorkOrderCreated", assigned.name,
                               rpb.WorkOrderCreated(work_order=preliminary(h, status=rpb.WORK_ORDER_STATUS_RECEIVED)))
    assert created and cases_for(h, assigned.name) == []


def test_old_news_of_an_order_read_from_the_feeds_start_opens_no_case(h):
    """Dispatch reading referral's feed for the first time replays orders long since handled."""
    order = preliminary(h)
    old = events_pb2.Event(event_id=str(uuid.uuid4()), sequence=10_000, type="referral.WorkOrderUpdated",
                           subject=order.name, source="referral")
    old.occur_time.FromDatetime(h.clock() - timedelta(days=2))
    old.payload.Pack(rpb.WorkOrderUpdated(work_order=order, action="PRELIMINARY_POLICE"))
    assert h.served.consumer("referral").apply(old)
    assert cases_for(h, order.name) == []


# -- the whole line: order -> case -> officer -> order ---------------------------------------------

def referral_events(suite, order_name: str) -> list:
    """(type, payload) of what referral published about an order, oldest first."""
    out = []
    for e in support.Served(suite.referral_rt, None, support.Clock()).events(list(REFERRAL_EVENTS), order_name):
        body = REFERRAL_EVENTS[e.type]()
        e.payload.Unpack(body)
        out.append((e.type, body))
    return out


def case_envelopes(h, case_name: str) -> list:
    """What dispatch published about a case and its assignments, as its feed serves it."""
    return [e for e in h.served.events(CASE_EVENTS)
            if e.subject == case_name or e.subject.startswith(case_name + "/")]


def to_referral(suite, envelopes) -> list[bool]:
    consumer = next(c for c in suite.referral_rt.consumers if c.source == "dispatch")
    return [consumer.apply(e) for e in envelopes]


def order_of(suite, name: str) -> rpb.WorkOrder:
    return suite.referral.GetWorkOrder(rpb.GetWorkOrderRequest(name=name), metadata=AGENT, timeout=10)


def test_the_stations_case_reports_back_on_the_order_the_agent_reads(h, suite):
    order = suite.referral.CreateWorkOrder(rpb.CreateWorkOrderRequest(
        request_id=rid(), work_order=ticket(DUMPING, urgency=3, where=JIANGAN_S01)), metadata=AGENT, timeout=10)
    assert order.status == rpb.WORK_ORDER_STATUS_PRELIMINARY_POLICE
    for event_type, payload in referral_events(suite, order.name):
        h.served.deliver("referral", event_type, order.name, payload)
    [case] = cases_for(h, order.name)
    assert case.station_id == order.preliminary_station.removeprefix("stations/")

    a = next(x for x in case.assignments if x.role == pb.ASSIGNMENT_ROLE_PRIMARY)
    officer = officer_of(h.stub.GetUnit(pb.GetUnitRequest(name=a.unit), timeout=10))
    h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=a.name), metadata=officer)
    assert all(to_referral(suite, case_envelopes(h, case.name)))
    accepted = order_of(suite, order.name)
    assert [e.action for e in accepted.timeline][-2:] == ["POLICE_CASE_OPENED", "POLICE_ACCEPTED"]
    assert case.name in accepted.timeline[-2].detail
    assert accepted.timeline[-1].detail == f"民警已接单：{a.call_sign}"
    assert accepted.status == rpb.WORK_ORDER_STATUS_PRELIMINARY_POLICE, "no department state fits a police step"

    seen = len(case_envelopes(h, case.name))
    for state in ("EN_ROUTE", "ON_SCENE", "CLEARED"):
        h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(
            request_id=rid(), name=a.name, state=pb.AssignmentState.Value(f"ASSIGNMENT_STATE_{state}")),
            metadata=officer)
    h.stub.ReportBack(pb.ReportBackRequest(request_id=rid(), name=a.name, outcome=pb.OUTCOME_MEDIATED,
                                           notes="系邻近工地夜间清洗设备，已责令停止并调解"), metadata=officer)
    later = case_envelopes(h, case.name)[seen:]
    assert all(to_referral(suite, later))
    done = order_of(suite, order.name)
    police = [(e.action, e.detail) for e in done.timeline if e.action.startswith("POLICE_")]
    assert police == [
        ("POLICE_CASE_OPENED", f"属地派出所已生成先期处置警情 {case.name}，正在派警"),
        ("POLICE_ACCEPTED", f"民警已接单：{a.call_sign}"),
        ("POLICE_ON_SCENE", f"民警已到场：{a.call_sign}"),
        ("POLICE_REPORTED_BACK", f"民警已回告：{a.call_sign}，调解处理（系邻近工地夜间清洗设备，已责令停止并调解）"),
        ("POLICE_CLOSED", "警情已办结：调解处理"),
    ]
    assert done.status == rpb.WORK_ORDER_STATUS_RESOLVED, "the citizen's follow-up is next"
    updates = [p for t, p in referral_events(suite, order.name) if t == "referral.WorkOrderUpdated"]
    assert updates[-1].action == "POLICE_CLOSED" and updates[-1].work_order.status == rpb.WORK_ORDER_STATUS_RESOLVED

    # Redelivered (the inbox) or the same news again under new event ids (the handler): nothing new.
    everything = case_envelopes(h, case.name)
    assert not any(to_referral(suite, everything))
    for e in everything:
        e.event_id = str(uuid.uuid4())
    to_referral(suite, everything)
    again = order_of(suite, order.name)
    assert [(e.action, e.detail) for e in again.timeline] == [(e.action, e.detail) for e in done.timeline]
    assert again.status == rpb.WORK_ORDER_STATUS_RESOLVED

    # What referral announced of the order since reaches dispatch too: still the one case.
    for event_type, payload in referral_events(suite, order.name):
        h.served.deliver("referral", event_type, order.name, payload)
    assert [c.name for c in cases_for(h, order.name)] == [case.name]

    # The citizen's follow-up closes the order the police settled.
    closed = suite.referral.ReviewWorkOrder(rpb.ReviewWorkOrderRequest(
        request_id=rid(), name=order.name, satisfaction=common_pb2.SATISFACTION_SATISFIED), metadata=AGENT,
        timeout=10)
    assert closed.status == rpb.WORK_ORDER_STATUS_CLOSED
