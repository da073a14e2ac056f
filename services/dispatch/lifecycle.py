"""The assignment lifecycle (处警流程): accepted -> en route -> on scene -> cleared -> reported back (回告).

Every change is one transaction: the assignment, the unit's status, the
case's status and stamps, a case-timeline entry with who and when, and the
`dispatch.AssignmentChanged` event (plus `dispatch.CaseUpdated` when the case's
status moves). Only the assigned unit's officers or a dispatcher may act.
"""
from __future__ import annotations

import copy
from datetime import datetime

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime import metrics
from services.runtime.auth import AuthContext
from services.runtime.enums import enum_value
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.runtime.timeutil import to_pb

from .context import Dispatch, entry
from .domain import (
    KIND_LABELS, OUTCOME_LABELS, STATE_LABELS, UNIT_STATUS_FOR, Assignment, DispatchCase, can_move, case_status,
)
from .caseinfo import announce, case_message
from .mapping import assignment_to_pb, officers_to_pb
from .store import AssignmentRepository, CaseRepository, UnitRepository

# Roles that may act on any unit's assignment (besides the unit's own officers).
COMMAND_ROLES = ("dispatcher", "commander", "service")
CASE_STATUS_LABELS = {
    "PENDING": "待接单", "DISPATCHED": "已派警", "ON_SCENE": "已到场", "CLEARED": "现场处置完毕",
    "REPORTED_BACK": "部分回告", "CLOSED": "全部回告，警情办结",
}


def load(conn, case_id: str, assignment_id: str) -> tuple[DispatchCase, Assignment]:
    """The case and one of its assignments, both locked (case first, as everywhere)."""
    case = CaseRepository(conn).get(case_id, lock=True, with_timeline=False)
    a = AssignmentRepository(conn).get(case_id, assignment_id, lock=True) if case else None
    if case is None or a is None:
        raise NotFound(f"cases/{case_id}/assignments/{assignment_id}")
    return case, a


def authorize(actor: AuthContext, a: Assignment, unit_officers: list[dict]) -> None:
    """The unit's own officer (role officer, matching police number and station) or a dispatcher."""
    if actor.has_role(*COMMAND_ROLES):
        return
    officers = {o["officer_id"] for o in a.officers} | {o["officer_id"] for o in unit_officers}
    if actor.has_role("officer") and actor.subject in officers and actor.station in ("", a.station_id):
        return
    raise PermissionDenied(f"only an officer of {a.unit} or a dispatcher may act on {a.name}",
                           reason="NOT_ASSIGNED_OFFICER", metadata={"unit": a.unit})


def require_move(a: Assignment, target: str) -> None:
    if not can_move(a.state, target):
        raise FailedPrecondition(
            f"{a.name} is {a.state}; it cannot become {target}", reason="ILLEGAL_TRANSITION",
            metadata={"state": a.state, "target": target})


def record(conn, d: Dispatch, case: DispatchCase, a: Assignment, *, previous: str, actor: AuthContext,
           at: datetime, detail: str, reason: str = "") -> pb.Assignment:
    """Saves a changed (or, with no `previous` state, new) assignment and everything that follows
    from it; returns the assignment message."""
    before = copy.copy(case)
    a.version += 1
    a.update_time = at
    if previous:
        AssignmentRepository(conn).save(a)
        status = UNIT_STATUS_FOR.get(a.state)
        if status is not None and previous != a.state:
            UnitRepository(conn, now=at).set_status(a.unit_id, status)
    else:
        # A new offer: the unit was claimed (marked offered) when it was picked.
        AssignmentRepository(conn).add(a)
    case.assignments = [a if x.id == a.id else x for x in case.assignments]
    if all(x.id != a.id for x in case.assignments):
        case.assignments.append(a)
    entries = [entry(actor, at, a.state, detail, reason)]
    status_before = case.status
    _follow(conn, case, a, at)
    if case.status != status_before:
        entries.append(entry(actor, at, case.status, f"警情状态：{CASE_STATUS_LABELS.get(case.status, case.status)}"))
    case.update_time = at
    CaseRepository(conn).save(case, entries)
    msg = assignment_to_pb(a, case)
    d.outbox.publish(conn, "dispatch.AssignmentChanged", a.name, pb.AssignmentChanged(
        assignment=msg, case_name=case.name, station_id=case.station_id, incident_type=case.incident_type,
        officers=officers_to_pb(a.officers, a.station_id), action=a.state,
        stamp=stamp(actor, at, reason), previous_state=enum_value(pb.AssignmentState, previous, "ASSIGNMENT_STATE_"),
        grid_id=case.grid_id, report_time=to_pb(case.report_time), priority=case.priority))
    if case.status != status_before:
        # The case's side records (stop-payments, follow-up) do not change here: read now, they are as before.
        announce(conn, d.outbox, case, case.status, before=case_message(conn, before), entries=entries)
    return msg


def stamp(actor: AuthContext, at: datetime, reason: str = "") -> common_pb2.AuditStamp:
    return common_pb2.AuditStamp(actor=actor.subject, roles=sorted(actor.roles), time=to_pb(at), reason=reason)


def _follow(conn, case: DispatchCase, a: Assignment, at: datetime) -> None:
    """The case's stamps and status follow its assignments; SLA figures once the transaction commits."""
    if a.state == "ACCEPTED" and case.accept_time is None:
        case.accept_time = at
        metrics.observe_sla_after_commit(conn, "accept", (at - case.report_time).total_seconds())
    if a.state == "ON_SCENE" and case.arrive_time is None:
        case.arrive_time = at
        metrics.observe_sla_after_commit(conn, "arrive", (at - case.report_time).total_seconds())
    case.status = case_status(case.status, case.assignments)
    if case.status == "CLOSED" and case.close_time is None:
        case.close_time = at
        metrics.observe_sla_after_commit(conn, "close", (at - case.report_time).total_seconds())


def accept(conn, d: Dispatch, *, case_id: str, assignment_id: str, actor: AuthContext) -> pb.Assignment:
    case, a = load(conn, case_id, assignment_id)
    unit = UnitRepository(conn, now=d.now()).get(a.unit_id)
    authorize(actor, a, unit.officers if unit else [])
    require_move(a, "ACCEPTED")
    at = d.now()
    if a.offer_expire_time is not None and at >= a.offer_expire_time:
        raise FailedPrecondition(f"the offer {a.name} expired at {a.offer_expire_time.isoformat()}",
                                 reason="OFFER_EXPIRED")
    previous, a.state, a.accept_time = a.state, "ACCEPTED", at
    msg = record(conn, d, case, a, previous=previous, actor=actor, at=at,
                 detail=f"{a.call_sign}（{KIND_LABELS.get(a.kind, a.kind)}）接单")
    return msg


def advance(conn, d: Dispatch, *, case_id: str, assignment_id: str, target: str, actor: AuthContext
            ) -> pb.Assignment:
    case, a = load(conn, case_id, assignment_id)
    unit = UnitRepository(conn, now=d.now()).get(a.unit_id)
    authorize(actor, a, unit.officers if unit else [])
    require_move(a, target)
    at = d.now()
    previous, a.state = a.state, target
    detail = f"{a.call_sign}{STATE_LABELS[target]}"
    if target == "EN_ROUTE":
        a.en_route_time = at
    elif target == "ON_SCENE":
        a.arrive_time = at
        secs = int((at - case.report_time).total_seconds())
        target_s = a.arrival_target_s
        if target_s:
            detail += f"，距接警{secs}秒，{'达到' if secs <= target_s else '未达到'}{target_s}秒到场要求"
    elif target == "CLEARED":
        a.clear_time = at
    msg = record(conn, d, case, a, previous=previous, actor=actor, at=at, detail=detail)
    return msg


def report_back(conn, d: Dispatch, *, case_id: str, assignment_id: str, outcome: str, notes: str,
                evidence: list[dict], actor: AuthContext) -> pb.Assignment:
    case, a = load(conn, case_id, assignment_id)
    unit = UnitRepository(conn, now=d.now()).get(a.unit_id)
    authorize(actor, a, unit.officers if unit else [])
    require_move(a, "REPORTED_BACK")
    at = d.now()
    previous, a.state, a.report_back_time = a.state, "REPORTED_BACK", at
    a.outcome, a.notes, a.evidence = outcome, notes, evidence
    detail = f"{a.call_sign}回告：{OUTCOME_LABELS.get(outcome, outcome)}"
    if evidence:
        detail += f"，附证据{len(evidence)}件"
    msg = record(conn, d, case, a, previous=previous, actor=actor, at=at, detail=detail, reason=notes[:200])
    if case.status == "CLOSED":
        from .offers import cancel_open_offers

        cancel_open_offers(conn, d, case, at)
    return msg
