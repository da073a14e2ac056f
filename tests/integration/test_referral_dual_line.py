"""From 12345 to 110 (一键转接) against a real Postgres: intake and referral on real gRPC sockets."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf import any_pb2

from smart110.common.v1 import events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as pb
from services.runtime.timeutil import to_pb
from tests.conftest import eventually
from tests import support
from tests.integration.referral_support import (
    HANYANG_S15, JIANGAN_S01, actions, phone, rid, serving_suite, ticket,
)

AGENT = support.caller(["hotline_agent"], sub="agent-12")


@pytest.fixture(scope="module")
def suite(admin_url):
    with serving_suite(admin_url) as s:
        yield s


def reports_about(suite, text: str) -> list[intake_pb.Report]:
    return list(suite.intake.ListReports(intake_pb.ListReportsRequest(query=text, page_size=500),
                                         timeout=10).reports)


def test_agent_transfers_a_police_emergency_to_110_once(suite):
    caller = phone()
    w = ticket("市民来电称邻居家传出呼救声和打砸声，怀疑有人持刀伤人", caller_phone=caller, name="周女士",
               urgency=1)
    request = pb.TransferTo110Request(request_id=rid(), work_order=w, reason="涉嫌持刀伤人，属警情，需110立即处置")
    order = suite.referral.TransferTo110(request, metadata=AGENT, timeout=10)
    assert order.status == pb.WORK_ORDER_STATUS_TRANSFERRED_TO_110
    assert order.source == pb.WORK_ORDER_SOURCE_HOTLINE_12345
    assert order.transferred_report.startswith("reports/")
    assert order.transferred_report_status == "REPORT_STATUS_CLASSIFIED"
    assert actions(order) == ["CREATED", "TRANSFERRED_TO_110", "POLICE_PROGRESS"]

    report = suite.intake.GetReport(intake_pb.GetReportRequest(name=order.transferred_report), timeout=10)
    assert report.channel == intake_pb.CHANNEL_HOTLINE_12345
    assert report.caller.phone_number == caller[:3] + "****" + caller[-4:], "a service's GetReport is masked"
    contact = suite.intake.GetCallerContact(intake_pb.GetCallerContactRequest(
        name=report.name, purpose=intake_pb.CALLER_CONTACT_PURPOSE_WORK_ORDER), timeout=10)
    assert (contact.caller.phone_number, contact.caller.name) == (caller, "周女士"), "the 12345 caller reached 110"
    assert report.description.startswith("市民来电称邻居家传出呼救声和打砸声")
    assert report.classification.category == intake_pb.CATEGORY_POLICE
    assert report.station_id, "routed to the station with jurisdiction"

    # A retry (lost answer) neither records a second order nor files a second report.
    again = suite.referral.TransferTo110(request, metadata=AGENT, timeout=10)
    assert again.name == order.name and again.transferred_report == order.transferred_report
    assert [r.name for r in reports_about(suite, "邻居家传出呼救声和打砸声") if r.caller.phone_number.endswith(caller[-4:])
            ] == [order.transferred_report]
    # The transferred report came from 12345: it is not referred back as a new work order.
    assert not suite.referral.ListWorkOrders(pb.ListWorkOrdersRequest(report=order.transferred_report),
                                             timeout=10).work_orders


def test_an_existing_work_order_is_transferred_and_its_police_progress_shows_on_it(suite):
    order = suite.referral.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "小区里一名老人走失两个小时了，家属到处找不到", urgency=2)), metadata=AGENT, timeout=10)
    order = suite.referral.TransferTo110(pb.TransferTo110Request(
        request_id=rid(), name=order.name, reason="老人走失，需公安协助查找"), metadata=AGENT, timeout=10)
    assert order.status == pb.WORK_ORDER_STATUS_TRANSFERRED_TO_110
    assert all(a.state == pb.DEPARTMENT_ASSIGNMENT_STATE_WITHDRAWN for a in order.assignments)

    # Once referral has consumed the report's own announcement, intake announces progress on it
    # (here: dispatched) as intake.ReportUpdated.
    consumer = suite.referral_rt.consumers[0]
    reported = next(e for e in suite.intake.StreamEvents(events_pb2.StreamEventsRequest(
        stop_at_end=True, types=["intake.IncidentReported"]), timeout=10) if e.subject == order.transferred_report)
    eventually(lambda: consumer.cursor() >= reported.sequence)
    report = suite.intake.GetReport(intake_pb.GetReportRequest(name=order.transferred_report), timeout=10)
    report.status = intake_pb.REPORT_STATUS_DISPATCHED
    event = events_pb2.Event(event_id="00000000-0000-4000-a000-" + rid()[:12], sequence=reported.sequence,
                             type="intake.ReportUpdated", subject=report.name, source="intake")
    event.payload.Pack(intake_pb.ReportUpdated(report=report, action="DISPATCHED"))
    assert consumer.apply(event) is True
    seen = suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), timeout=10)
    assert seen.transferred_report_status == "REPORT_STATUS_DISPATCHED"
    assert seen.timeline[-1].action == "POLICE_PROGRESS"
    assert seen.timeline[-1].detail.startswith(f"110接警单 {report.name}：已派警")
    assert "DISPATCHED" not in seen.timeline[-1].detail

    # The same status again records nothing new.
    repeat = events_pb2.Event()
    repeat.CopyFrom(event)
    repeat.event_id = "00000000-0000-4000-b000-" + rid()[:12]
    consumer.apply(repeat)
    assert len(suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), timeout=10).timeline) == \
        len(seen.timeline)

    with pytest.raises(grpc.RpcError) as twice:
        suite.referral.TransferTo110(pb.TransferTo110Request(request_id=rid(), name=order.name, reason="再次转接"),
                                     metadata=AGENT, timeout=10)
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_transfer_needs_a_target_a_reason_and_a_place(suite):
    with pytest.raises(grpc.RpcError) as err:
        suite.referral.TransferTo110(pb.TransferTo110Request(request_id=rid()), metadata=AGENT, timeout=10)
    assert set(support.field_violations(err.value)) == {"reason", "target"}
    with pytest.raises(grpc.RpcError) as nowhere:
        suite.referral.TransferTo110(pb.TransferTo110Request(
            request_id=rid(), reason="疑似绑架", work_order=ticket("电话里听到有人喊救命说被绑架了", where=None)),
            metadata=AGENT, timeout=10)
    assert support.field_violations(nowhere.value) == ["work_order.location"]
    with pytest.raises(grpc.RpcError) as unknown:
        suite.referral.TransferTo110(pb.TransferTo110Request(request_id=rid(), name="workOrders/20260101-abc",
                                                             reason="疑似诈骗"), metadata=AGENT, timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as role:
        suite.referral.TransferTo110(pb.TransferTo110Request(
            request_id=rid(), reason="打架", work_order=ticket("有人打架", where=JIANGAN_S01)),
            metadata=support.caller(["department"], station="D01"), timeout=10)
    assert role.value.code() == grpc.StatusCode.PERMISSION_DENIED


_dispatch_sequence = iter(range(1, 10**9))


def dispatch_event(kind: str, subject: str, payload) -> events_pb2.Event:
    packed = any_pb2.Any()
    packed.Pack(payload)
    return events_pb2.Event(event_id=str(uuid.uuid4()), sequence=next(_dispatch_sequence), type=kind,
                            subject=subject, source="dispatch", payload=packed)


def test_a_transferred_orders_timeline_follows_the_officer_from_acceptance_to_the_closed_case(suite):
    """Dispatch's news reaches intake's consumer; intake's ReportUpdated reaches referral's, which keeps each
    step on the 12345 order in Chinese: a case opened (派警中), an officer accepted, arrived, the case closed."""
    order = suite.referral.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "小区门口有人持棍打架，已有人受伤", urgency=1, where=HANYANG_S15)), metadata=AGENT, timeout=10)
    order = suite.referral.TransferTo110(pb.TransferTo110Request(
        request_id=rid(), name=order.name, reason="现场斗殴有人受伤，属警情"), metadata=AGENT, timeout=10)
    report_name = order.transferred_report
    [intake_dispatch] = [c for c in suite.intake_rt.consumers if c.source == "dispatch"]

    def order_now():
        return suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), timeout=10)

    def progress_until(text: str):
        o = order_now()
        return o if any(text in e.detail for e in o.timeline if e.action == "POLICE_PROGRESS") else None

    case = dispatch_pb.DispatchCase(name=f"cases/{uuid.uuid4().hex[:12]}", report=report_name,
                                    status=dispatch_pb.CASE_STATUS_PENDING)
    assert intake_dispatch.apply(dispatch_event("dispatch.CaseCreated", case.name,
                                                dispatch_pb.CaseCreated(dispatch_case=case)))
    report = suite.intake.GetReport(intake_pb.GetReportRequest(name=report_name), timeout=10)
    assert not report.merged_into and report.status == intake_pb.REPORT_STATUS_ASSIGNING
    assigning = eventually(lambda: progress_until("正在派警"))
    assert assigning.transferred_report_status == "REPORT_STATUS_ASSIGNING"

    now = datetime.now(timezone.utc)
    unit = "units/U-S01-001"
    for state, times in ((dispatch_pb.ASSIGNMENT_STATE_ACCEPTED, {"accept_time": to_pb(now)}),
                         (dispatch_pb.ASSIGNMENT_STATE_ON_SCENE, {"arrive_time": to_pb(now + timedelta(minutes=3))})):
        a = dispatch_pb.Assignment(name=f"{case.name}/assignments/a1", unit=unit, state=state, **times)
        assert intake_dispatch.apply(dispatch_event("dispatch.AssignmentChanged", a.name,
                                                    dispatch_pb.AssignmentChanged(assignment=a, case_name=case.name)))
    accepted = eventually(lambda: progress_until("民警已接单"))
    assert accepted.transferred_report_status == "REPORT_STATUS_DISPATCHED"
    on_scene = eventually(lambda: progress_until("民警已到达现场"))
    assert on_scene.transferred_report_status == "REPORT_STATUS_DISPATCHED"

    case.status = dispatch_pb.CASE_STATUS_CLOSED
    assert intake_dispatch.apply(dispatch_event("dispatch.CaseUpdated", case.name,
                                                dispatch_pb.CaseUpdated(dispatch_case=case, action="CLOSED")))
    closed = eventually(lambda: progress_until("110警情已办结"))
    assert closed.transferred_report_status == "REPORT_STATUS_CLOSED"
    assert closed.status == pb.WORK_ORDER_STATUS_TRANSFERRED_TO_110

    police = [e.detail for e in closed.timeline if e.action == "POLICE_PROGRESS"]
    steps = ["110已接报", "正在派警", "民警已接单", "民警已到达现场", "110警情已办结"]
    assert [next(s for s in steps if s in d) for d in police] == steps
    assert police[1].startswith(f"110接警单 {report_name}：已生成处警单，正在派警（派警中）；定为警情“")
    for detail in police:
        assert "REPORT_STATUS" not in detail and "POLICE/" not in detail and "FIGHT" not in detail
