"""The report follows its dispatch case and 12345 work order: real dispatch and referral
event payloads applied through intake's feed consumers (wired from EVENT_HANDLERS), exactly once,
on a real Postgres."""
from __future__ import annotations

import uuid
from datetime import timedelta

from google.protobuf import any_pb2

from smart110.common.v1 import events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from services.runtime.consumer import FeedConsumer
from services.runtime.timeutil import to_pb
from tests.integration.intake_support import (
    CALL_TAKER, HANKOU, WUCHANG, actions, events_about, intake, report, served, submit, time_slot,
)

__all__ = ["intake", "served"]  # the fixtures
_sequence = iter(range(1, 10**9))


def consumer(rt, source: str) -> FeedConsumer:
    """The service's consumer of `source`'s feed, as the runtime wired it from EVENT_HANDLERS."""
    [wired] = [c for c in rt.consumers if c.source == source]
    return wired


def event(kind: str, subject: str, payload) -> events_pb2.Event:
    packed = any_pb2.Any()
    packed.Pack(payload)
    return events_pb2.Event(event_id=str(uuid.uuid4()), sequence=next(_sequence), type=kind, subject=subject,
                            payload=packed)


def get(stub, name: str) -> pb.Report:
    return stub.GetReport(pb.GetReportRequest(name=name), metadata=CALL_TAKER)


def assignment(case, n: int, state, **times) -> dispatch_pb.Assignment:
    return dispatch_pb.Assignment(name=f"{case.name}/assignments/a{n}", unit=f"units/U-S01-00{n}", state=state,
                                  **{k: to_pb(v) for k, v in times.items()})


def changed(case, a: dispatch_pb.Assignment) -> events_pb2.Event:
    return event("dispatch.AssignmentChanged", a.name, dispatch_pb.AssignmentChanged(assignment=a, case_name=case.name))


def test_case_opened_accepted_on_scene_and_closed(intake):
    rt, stub = intake
    t = time_slot()
    r = submit(stub, report("有人在地铁站持刀抢劫", point=HANKOU, at=t))
    feed = consumer(rt, "dispatch")
    case = dispatch_pb.DispatchCase(name=f"cases/{uuid.uuid4().hex[:12]}", report=r.name,
                                    status=dispatch_pb.CASE_STATUS_PENDING)
    opened = event("dispatch.CaseCreated", case.name, dispatch_pb.CaseCreated(dispatch_case=case))
    assert feed.apply(opened) is True
    assert feed.apply(opened) is False  # delivered again: applied once
    after = get(stub, r.name)
    # A case is open, no officer has accepted: assigning (派警中), not yet dispatched.
    assert after.status == pb.REPORT_STATUS_ASSIGNING and after.dispatch_case == case.name
    assert actions(after).count("CASE_OPENED") == 1 and not after.HasField("hand_off_time")
    assert "等待民警接单" in after.timeline[-1].detail

    feed.apply(changed(case, assignment(case, 1, dispatch_pb.ASSIGNMENT_STATE_OFFERED)))
    offered = get(stub, r.name)
    assert offered.status == pb.REPORT_STATUS_ASSIGNING and not offered.HasField("hand_off_time")
    feed.apply(changed(case, assignment(case, 1, dispatch_pb.ASSIGNMENT_STATE_ACCEPTED,
                                        accept_time=t + timedelta(seconds=25))))
    handed = get(stub, r.name)
    assert handed.status == pb.REPORT_STATUS_DISPATCHED
    assert handed.hand_off_time.ToDatetime() == (t + timedelta(seconds=25)).replace(tzinfo=None)
    assert actions(handed)[-1] == "HANDED_OFF" and "U-S01-001" in handed.timeline[-1].detail
    # A second unit accepting does not move the hand-off.
    feed.apply(changed(case, assignment(case, 2, dispatch_pb.ASSIGNMENT_STATE_ACCEPTED,
                                        accept_time=t + timedelta(seconds=90))))
    assert get(stub, r.name).hand_off_time == handed.hand_off_time

    # The first unit on scene stamps the arrival; the second does not move it; the status stays.
    feed.apply(changed(case, assignment(case, 1, dispatch_pb.ASSIGNMENT_STATE_ON_SCENE,
                                        arrive_time=t + timedelta(minutes=4))))
    feed.apply(changed(case, assignment(case, 2, dispatch_pb.ASSIGNMENT_STATE_ON_SCENE,
                                        arrive_time=t + timedelta(minutes=6))))
    arrived = get(stub, r.name)
    assert arrived.status == pb.REPORT_STATUS_DISPATCHED
    assert arrived.on_scene_time.ToDatetime() == (t + timedelta(minutes=4)).replace(tzinfo=None)
    assert actions(arrived).count("ON_SCENE") == 1 and "到达现场" in arrived.timeline[-1].detail

    case.status = dispatch_pb.CASE_STATUS_CLOSED
    feed.apply(event("dispatch.CaseUpdated", case.name, dispatch_pb.CaseUpdated(dispatch_case=case, action="CLOSED")))
    closed = get(stub, r.name)
    assert closed.status == pb.REPORT_STATUS_CLOSED and actions(closed)[-1] == "CLOSED"
    assert [getattr(e, "action", "") for _, e in events_about(rt, r.name)] == [
        "", "CASE_OPENED", "HANDED_OFF", "ON_SCENE", "CLOSED"]
    statuses = [e.report.status for _, e in events_about(rt, r.name)]
    assert statuses[1:] == [pb.REPORT_STATUS_ASSIGNING, pb.REPORT_STATUS_DISPATCHED, pb.REPORT_STATUS_DISPATCHED,
                            pb.REPORT_STATUS_CLOSED]


def test_a_case_closed_before_any_officer_accepted_closes_its_assigning_report(intake):
    rt, stub = intake
    r = submit(stub, report("小区门口有人打架", point=HANKOU, at=time_slot()))
    feed = consumer(rt, "dispatch")
    case = dispatch_pb.DispatchCase(name=f"cases/{uuid.uuid4().hex[:12]}", report=r.name,
                                    status=dispatch_pb.CASE_STATUS_PENDING)
    feed.apply(event("dispatch.CaseCreated", case.name, dispatch_pb.CaseCreated(dispatch_case=case)))
    assert get(stub, r.name).status == pb.REPORT_STATUS_ASSIGNING
    case.status = dispatch_pb.CASE_STATUS_CLOSED
    feed.apply(event("dispatch.CaseUpdated", case.name, dispatch_pb.CaseUpdated(dispatch_case=case, action="CLOSED")))
    closed = get(stub, r.name)
    assert closed.status == pb.REPORT_STATUS_CLOSED and not closed.HasField("hand_off_time")


def test_events_about_unknown_reports_and_cases_change_nothing(intake):
    rt, stub = intake
    feed = consumer(rt, "dispatch")
    case = dispatch_pb.DispatchCase(name="cases/elsewhere", report="reports/not-here")
    assert feed.apply(event("dispatch.CaseCreated", case.name, dispatch_pb.CaseCreated(dispatch_case=case)))
    accepted = dispatch_pb.Assignment(name="cases/elsewhere/assignments/a1", state=dispatch_pb.ASSIGNMENT_STATE_ACCEPTED)
    assert feed.apply(event("dispatch.AssignmentChanged", accepted.name,
                            dispatch_pb.AssignmentChanged(assignment=accepted, case_name="cases/unknown")))
    assert events_about(rt, "reports/not-here") == []


def test_report_follows_its_12345_work_order(intake):
    rt, stub = intake
    r = submit(stub, report("小区停水两天了，物业也不管，请帮忙协调自来水公司", point=WUCHANG, at=time_slot()))
    assert r.classification.category == pb.CATEGORY_NON_POLICE
    feed = consumer(rt, "referral")
    order = referral_pb.WorkOrder(name=f"workOrders/{uuid.uuid4().hex[:10]}", report=r.name,
                                  source=referral_pb.WORK_ORDER_SOURCE_REPORT_110,
                                  status=referral_pb.WORK_ORDER_STATUS_ASSIGNED)
    created = event("referral.WorkOrderCreated", order.name, referral_pb.WorkOrderCreated(work_order=order))
    assert feed.apply(created) and not feed.apply(created)
    referred = get(stub, r.name)
    assert referred.status == pb.REPORT_STATUS_REFERRED and referred.work_order == order.name

    def update(status, action):
        order.status = status
        feed.apply(event("referral.WorkOrderUpdated", order.name,
                         referral_pb.WorkOrderUpdated(work_order=order, action=action)))
        return get(stub, r.name)

    assert update(referral_pb.WORK_ORDER_STATUS_IN_PROGRESS, "STARTED").status == pb.REPORT_STATUS_REFERRED
    assert update(referral_pb.WORK_ORDER_STATUS_CLOSED, "CLOSED").status == pb.REPORT_STATUS_CLOSED
    assert update(referral_pb.WORK_ORDER_STATUS_REOPENED, "REOPENED").status == pb.REPORT_STATUS_REFERRED
    assert [getattr(e, "action", "") for _, e in events_about(rt, r.name)] == [
        "", "REFERRED", "CLOSED", "REFERRED"]
    # Work orders from the 12345 hotline itself concern no intake report.
    other = referral_pb.WorkOrder(name="workOrders/hotline-1", report=r.name,
                                  source=referral_pb.WORK_ORDER_SOURCE_HOTLINE_12345,
                                  status=referral_pb.WORK_ORDER_STATUS_CLOSED)
    feed.apply(event("referral.WorkOrderUpdated", other.name, referral_pb.WorkOrderUpdated(work_order=other)))
    assert get(stub, r.name).status == pb.REPORT_STATUS_REFERRED
