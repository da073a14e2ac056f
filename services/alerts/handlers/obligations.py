"""Obligation use cases: obligations made through the API (an inspection every two weeks) or
implied by other services' events (the report-back after an assignment, a 12345 work order's
deadline), closing them (their alerts resolve), and warning of those coming due or overdue."""
from __future__ import annotations

from datetime import datetime, timedelta

from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb

from services.runtime.auth import AuthContext
from services.runtime.consumer import Subscription
from services.runtime.ids import new_id
from services.runtime.uow import UnitOfWork

from .. import domain, mapping
from ..domain import SYSTEM, Assignment, Case, Obligation, WorkOrder
from .alerts import raise_alert, resolve_alerts_about


def create_obligation(uow: UnitOfWork, *, kind: str, subject: str, station_id: str, description: str,
                      due: datetime, period_s: float) -> Obligation:
    now = uow.now()
    o = Obligation(id=new_id(now, prefix="o"), kind=kind, subject=subject, station_id=station_id,
                   description=description, due_time=due, period_s=period_s, create_time=now, update_time=now)
    uow.repos.obligations.add(o)
    return o


def upsert_obligation(uow: UnitOfWork, *, kind: str, subject: str, station_id: str, description: str,
                      due: datetime) -> Obligation:
    """An obligation another service's event implies (回告 after an assignment, a work order's deadline)."""
    o = uow.repos.obligations.find(kind, subject)
    if o is None:
        return create_obligation(uow, kind=kind, subject=subject, station_id=station_id, description=description,
                                 due=due, period_s=0)
    if o.reschedule(due=due, description=description, now=uow.now()):
        uow.repos.obligations.save(o)
    return o


def close_obligation(uow: UnitOfWork, *, obligation_id: str, state: str, reason: str,
                     actor: AuthContext | None = None) -> Obligation:
    """Done or cancelled; a recurring one done comes due again one period later. Its alerts resolve."""
    actor = actor or uow.actor
    o = uow.repos.obligations.get(obligation_id)
    o.close(state, actor, reason, uow.now())
    uow.repos.obligations.save(o)
    resolve_alerts_about(uow, o.name, actor=actor, reason=reason or "事项已完成")
    return o


def complete_obligation(uow: UnitOfWork, *, obligation_id: str, comment: str) -> Obligation:
    return close_obligation(uow, obligation_id=obligation_id, state="DONE", reason=comment)


def close_obligation_by_subject(uow: UnitOfWork, *, kind: str, subject: str, state: str, reason: str) -> None:
    obligation_id = uow.repos.obligations.pending_id(kind, subject)
    if obligation_id is not None:
        close_obligation(uow, obligation_id=obligation_id, state=state, reason=reason, actor=SYSTEM)


def assignment_changed(uow: UnitOfWork, *, assignment: Assignment) -> None:
    """Report-back (回告) is owed once a unit takes an assignment, due some hours after it cleared or accepted."""
    a = assignment
    if a.state in domain.OPEN_ASSIGNMENT_STATES:
        seconds = domain.report_back_seconds(uow.repos.rules.active("OBLIGATION"))
        upsert_obligation(uow, kind="REPORT_BACK", subject=a.name, station_id=a.station_id,
                          description=domain.report_back_description(a),
                          due=domain.report_back_due(a, seconds, uow.now()))
    elif a.state == "REPORTED_BACK":
        close_obligation_by_subject(uow, kind="REPORT_BACK", subject=a.name, state="DONE", reason="已回告")
    elif a.state in ("DECLINED", "EXPIRED", "WITHDRAWN"):
        close_obligation_by_subject(uow, kind="REPORT_BACK", subject=a.name, state="CANCELLED",
                                    reason=f"派警{a.state}")


def case_changed(uow: UnitOfWork, *, case: Case, action: str) -> None:
    """A case whose automatic offers stopped before any officer took it owes its station's duty
    dispatcher a unit within ASSIGN_UNIT_SECONDS: an obligation, warned of at once and overdue (one
    level up, then escalated as any unacknowledged alert) while nobody has it; done when an officer
    accepts, cancelled when the case ends. A case at county level or above is the command's, which
    the same warning reaches through the station's escalation chain."""
    if action == "OFFERS_EXHAUSTED" and not case.accepted and not case.ended:
        upsert_obligation(uow, kind="ASSIGN_UNIT", subject=case.name, station_id=case.station_id,
                          description=domain.assign_unit_description(case),
                          due=uow.now() + timedelta(seconds=domain.ASSIGN_UNIT_SECONDS))
    elif case.offers_stopped and case.ended:
        close_obligation_by_subject(uow, kind="ASSIGN_UNIT", subject=case.name, state="CANCELLED",
                                    reason=f"警情已{'撤销' if case.status == 'CANCELLED' else '办结'}")
    elif case.offers_stopped and case.accepted:
        close_obligation_by_subject(uow, kind="ASSIGN_UNIT", subject=case.name, state="DONE", reason="已有民警接单")


def work_order_changed(uow: UnitOfWork, *, order: WorkOrder) -> None:
    """A 12345 work order's deadline is an obligation until it is resolved or closed."""
    if order.closed:
        close_obligation_by_subject(uow, kind="WORK_ORDER", subject=order.name, state="DONE",
                                    reason=f"工单{order.status}")
        return
    if order.deadline is None:
        return
    station = order.station_id
    if not station and order.report:
        # From a 110 report: the station with jurisdiction where it was reported.
        station = uow.repos.incidents.station_of(order.report_id)
    upsert_obligation(uow, kind="WORK_ORDER", subject=order.name, station_id=station,
                      description=order.obligation_description, due=order.deadline)


def warn_due_obligations(uow: UnitOfWork) -> int:
    """Every OBLIGATION rule warns of the obligations it covers coming due, then overdue (once each);
    returns how many warnings were raised."""
    now = uow.now()
    findings = []
    for rule in uow.repos.rules.active("OBLIGATION"):
        for o in uow.repos.obligations.due_for_warning(now, rule.threshold, domain.obligation_kinds(rule),
                                                       list(rule.areas)):
            stage = o.next_warning(now)
            if stage is None:
                continue
            uow.repos.obligations.save(o)
            findings.append(domain.obligation_finding(rule, o, stage))
    for f in findings:
        raise_alert(uow, f)
    return len(findings)


# -- the feeds ----------------------------------------------------------------------

def on_assignment_changed(uow: UnitOfWork, event, payload: dispatch_pb.AssignmentChanged) -> None:
    assignment_changed(uow, assignment=mapping.assignment_from_pb(payload))


def on_case_updated(uow: UnitOfWork, event, payload: dispatch_pb.CaseUpdated) -> None:
    case = payload.dispatch_case
    if payload.action == "OFFERS_EXHAUSTED" or case.HasField("offers_exhausted_time"):
        case_changed(uow, case=mapping.case_from_pb(payload), action=payload.action)


def on_work_order(uow: UnitOfWork, event, payload) -> None:
    work_order_changed(uow, order=mapping.work_order_from_pb(payload.work_order))


DISPATCH = {
    "dispatch.AssignmentChanged": Subscription(dispatch_pb.AssignmentChanged, on_assignment_changed),
    "dispatch.CaseUpdated": Subscription(dispatch_pb.CaseUpdated, on_case_updated),
}
REFERRAL = {
    "referral.WorkOrderCreated": Subscription(referral_pb.WorkOrderCreated, on_work_order),
    "referral.WorkOrderUpdated": Subscription(referral_pb.WorkOrderUpdated, on_work_order),
}
