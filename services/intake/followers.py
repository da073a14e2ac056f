"""The report follows its handling: consumers of the dispatch and referral feeds.

- dispatch.CaseCreated: the report is linked to its case (the case carries the
  report's name) and becomes DISPATCHED;
- dispatch.AssignmentChanged with state ACCEPTED: the first acceptance stamps
  the report's hand-off time (交给民警), found through the case link;
- dispatch.CaseUpdated with the case CLOSED: the report is CLOSED;
- referral.WorkOrderCreated/Updated for a work order from a 110 report: the
  report is REFERRED, CLOSED when the order closes, REFERRED again when it is
  reopened; a joint-rescue order beside a police case (a cut gas main) is only
  linked and noted in the timeline, the report following its case.
"""
from __future__ import annotations

from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as dispatch_grpc
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from smart110.referral.v1 import referral_service_pb2_grpc as referral_grpc

from services.runtime.app import Runtime
from services.runtime.consumer import Subscription
from services.runtime.outbox import Outbox
from services.runtime.timeutil import from_pb, now

from . import handling


def on_case_created(conn, outbox: Outbox, payload: dispatch_pb.CaseCreated) -> None:
    case = payload.dispatch_case
    handling.case_opened(conn, outbox=outbox, case_name=case.name, report_name=case.report, now=now())


def on_case_updated(conn, outbox: Outbox, payload: dispatch_pb.CaseUpdated) -> None:
    case = payload.dispatch_case
    handling.case_changed(conn, outbox=outbox, case_name=case.name, report_name=case.report,
                          closed=case.status == dispatch_pb.CASE_STATUS_CLOSED, now=now())


def on_assignment_changed(conn, outbox: Outbox, payload: dispatch_pb.AssignmentChanged) -> None:
    a = payload.assignment
    if a.state != dispatch_pb.ASSIGNMENT_STATE_ACCEPTED:
        return
    handling.assignment_accepted(conn, outbox=outbox, case_name=payload.case_name, unit=a.unit,
                                 accept_time=from_pb(a.accept_time) if a.HasField("accept_time") else None,
                                 now=now())


def on_work_order(conn, outbox: Outbox, payload) -> None:
    order = payload.work_order
    if order.source != referral_pb.WORK_ORDER_SOURCE_REPORT_110 or not order.report:
        return
    if order.status == referral_pb.WORK_ORDER_STATUS_TRANSFERRED_TO_110:
        return  # a new 110 report carries on; this one stays as it is
    if order.joint_rescue:
        # Departments work beside the police (a cut gas main): the report follows its case.
        if isinstance(payload, referral_pb.WorkOrderCreated):
            handling.joint_order_opened(conn, outbox=outbox, work_order=order.name, report_name=order.report, now=now())
        return
    handling.work_order_changed(conn, outbox=outbox, work_order=order.name, report_name=order.report,
                                closed=order.status == referral_pb.WORK_ORDER_STATUS_CLOSED, now=now())


def subscribe(rt: Runtime) -> None:
    def bind(fn):
        return lambda conn, event, payload: fn(conn, rt.outbox, payload)

    rt.consume("dispatch", dispatch_grpc.DispatchServiceStub, {
        "dispatch.CaseCreated": Subscription(dispatch_pb.CaseCreated, bind(on_case_created)),
        "dispatch.CaseUpdated": Subscription(dispatch_pb.CaseUpdated, bind(on_case_updated)),
        "dispatch.AssignmentChanged": Subscription(dispatch_pb.AssignmentChanged, bind(on_assignment_changed)),
    })
    rt.consume("referral", referral_grpc.ReferralServiceStub, {
        "referral.WorkOrderCreated": Subscription(referral_pb.WorkOrderCreated, bind(on_work_order)),
        "referral.WorkOrderUpdated": Subscription(referral_pb.WorkOrderUpdated, bind(on_work_order)),
    })
