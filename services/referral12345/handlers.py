"""Referral use cases: one function each; state, timeline and event in the caller's transaction."""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Callable

from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as pb

from services.runtime.enums import enum_name
from services.runtime.errors import AlreadyExists, FailedPrecondition, NotFound
from services.runtime.outbox import Outbox
from services.runtime.timeutil import from_pb

from . import rules
from .domain import (
    Actor, Department, Route, UnreasonableRecord, WorkOrder, classify_request, deadline_for, infer_matter,
    route_linkage, route_ordinary,
)
from .mapping import attachments_from_pb, unreasonable_to_pb, work_order_created_pb, work_order_updated_pb
from .police import Place
from .store import DepartmentRepository, UnreasonableRepository, WorkOrderRepository

SYSTEM = Actor("referral", ["service"])


def new_id(now: datetime) -> str:
    # Sortable by day for agents reading ids aloud; unique by the random tail.
    return f"{now:%Y%m%d}-{uuid.uuid4().hex[:12]}"


def announce(conn, outbox: Outbox, order: WorkOrder, action: str) -> None:
    """Publishes referral.WorkOrderUpdated with what changed since the order was last announced or loaded."""
    outbox.publish(conn, "referral.WorkOrderUpdated", order.name, work_order_updated_pb(order, action))
    order.mark_announced()


# -- recording and routing ------------------------------------------------------

def route_or_hand_over(conn, outbox: Outbox, order: WorkOrder, departments: list[Department], place: Place | None,
                       actor: Actor, now: datetime, *, routes: list[Route] | None = None,
                       unclear_why: str = "") -> None:
    """Sends the order to its departments; when none is known, to the local station (先期处置).

    An order the routing cannot place and that has no location stays RECEIVED
    with the 12345 dispatch desk, which then assigns it by hand.
    """
    if routes is None and order.matter_code:
        routes = route_ordinary(order.matter_code, order.district, departments, order.rejected_departments())
    if routes:
        order.assign(routes, actor, now)
        announce(conn, outbox, order, "ASSIGNED")
        return
    if not unclear_why:
        label = order.matter_code or "未明确事项"
        unclear_why = f"事项“{label}”在{order.district or '该区域'}暂无明确承办单位，职责待厘清"
    if place is not None:
        order.hand_to_police(place.station_id, place.station_name, unclear_why, actor, now)
        announce(conn, outbox, order, "PRELIMINARY_POLICE")
    else:
        order.note("AWAITING_ASSIGNMENT", actor, now,
                   f"{unclear_why}，且无位置可交属地派出所先期处置，由12345派单席人工派单")


def record_order(conn, outbox: Outbox, fields: dict, actor: Actor, now: datetime) -> WorkOrder | None:
    """Stores a new order and announces it; None when its 110 report already has one."""
    request_time = fields.pop("request_time", None) or now
    order = WorkOrder(id=new_id(now), status="RECEIVED", request_time=request_time, create_time=now,
                      update_time=now, **fields)
    order.category = order.category or rules.CATEGORY_BY_MATTER.get(order.matter_code, "综合")
    order.deadline = deadline_for(request_time, order.urgency)
    repo = WorkOrderRepository(conn)
    source_label = {"REPORT_110": f"110非警务警情 {order.report} 转入", "HOTLINE_12345": "12345热线受理",
                    "OPEN311": "Open311 接口提交"}[order.source]
    order.record(actor, now, f"{source_label}；时限{rules.URGENCY_LABEL.get(order.urgency, '')}")
    if order.citizen_phone:
        prior = repo.count_from(order.citizen_phone, request_time - rules.PRIOR_WINDOW)
        same = repo.count_from(order.citizen_phone, request_time - rules.REPEAT_WINDOW, order.matter_code) \
            if order.matter_code else 0
        order.flag_repeat(prior, same, actor, now)
    if not repo.add(order):
        return None
    outbox.publish(conn, "referral.WorkOrderCreated", order.name, work_order_created_pb(order))
    order.mark_announced()
    return order


def create_work_order(conn, *, outbox: Outbox, fields: dict, place: Place | None, actor: Actor, now: datetime,
                      route: bool = True) -> WorkOrder:
    """A 12345 ticket or Open311 request: recorded, then routed by matter and area."""
    if place is not None:
        fields.setdefault("district", place.district)
        fields.setdefault("station_id", place.station_id)
    order = record_order(conn, outbox, fields, actor, now)
    if order is None:
        raise AlreadyExists(f"{fields.get('report')} already has a work order", reason="REPORT_ALREADY_REFERRED",
                            metadata={"report": fields.get("report", "")})
    if route:
        departments = DepartmentRepository(conn).all()
        route_or_hand_over(conn, outbox, order, departments, place, actor, now)
        WorkOrderRepository(conn).save(order)
    return order


def refer_report(conn, *, outbox: Outbox, report: intake_pb.Report, place: Place | None,
                 now: datetime) -> WorkOrder | None:
    """From 110: a non-police report becomes a work order, once; a police report of a type that needs
    city departments (联动抢险, e.g. a cut gas main) becomes a level-1 order to all of them at once.

    Returns None when the report needs no order, is a duplicate (merged), came from 12345 itself,
    or already has one.
    """
    category = enum_name(intake_pb.Category, report.classification.category, "CATEGORY_")
    incident_type = report.classification.incident_type
    if report.merged_into or report.channel == intake_pb.CHANNEL_HOTLINE_12345:
        return None
    linkage = rules.LINKAGE.get(incident_type) if category == "POLICE" else None
    if category != "NON_POLICE" and linkage is None:
        return None
    departments = DepartmentRepository(conn).all()
    known = {m.code for d in departments for m in d.matters}
    district = place.district if place else ""
    if linkage is not None:
        matter, why, urgency = linkage.lead_matter, f"警情类型“{incident_type}”需城市部门联动抢险", linkage.urgency
    else:
        matter, why = infer_matter(incident_type, report.description, known)
        urgency = report.classification.priority if 1 <= report.classification.priority <= 4 else 4
    has_point = report.HasField("location") and report.location.HasField("point")
    fields = dict(
        source="REPORT_110", report=report.name, matter_code=matter, description=report.description,
        urgency=urgency, lon=report.location.point.longitude if has_point else None,
        lat=report.location.point.latitude if has_point else None, accuracy_m=report.location.accuracy_m,
        address_text=report.address_text, district=district, station_id=report.station_id,
        citizen_phone=report.caller.phone_number, citizen_name=report.caller.name,
        category=rules.EMERGENCY_CATEGORY if linkage else "", joint_rescue=linkage is not None,
        attachments=attachments_from_pb(report.attachments),
        request_time=from_pb(report.receive_time) if report.HasField("receive_time") else None,
    )
    order = record_order(conn, outbox, fields, SYSTEM, now)
    if order is None:
        return None
    order.note("ROUTING", SYSTEM, now, why)
    routes = route_linkage(linkage, district, departments) if linkage else None
    route_or_hand_over(conn, outbox, order, departments, place, SYSTEM, now, routes=routes,
                       unclear_why="" if matter else f"{why}，职责待厘清")
    WorkOrderRepository(conn).save(order)
    return order


def progress_detail(report: intake_pb.Report, action: str) -> str:
    detail = f"110接警单 {report.name} 状态 {intake_pb.ReportStatus.Name(report.status)}"
    if action:
        detail += f"（{action}）"
    category = enum_name(intake_pb.Category, report.classification.category, "CATEGORY_")
    if category:
        detail += f"；分类 {category}/{report.classification.incident_type}，{report.classification.priority}级"
    return detail


def record_police_progress(conn, *, outbox: Outbox, report: intake_pb.Report, action: str,
                           now: datetime) -> WorkOrder | None:
    """The progress of a report transferred from 12345 (一键转接), kept on its work order."""
    repo = WorkOrderRepository(conn)
    order = repo.by_transferred_report(report.name)
    if order is None:
        return None
    status = intake_pb.ReportStatus.Name(report.status)
    if not order.record_110_progress(status, progress_detail(report, action), SYSTEM, now):
        return None
    repo.save(order)
    announce(conn, outbox, order, "POLICE_PROGRESS")
    return order


# -- lifecycle ---------------------------------------------------------------------

def change(conn, *, outbox: Outbox, order_id: str, action: str, apply: Callable[[WorkOrder], None]) -> WorkOrder:
    repo = WorkOrderRepository(conn)
    order = repo.get(order_id, for_update=True)
    if order is None:
        raise NotFound(f"workOrders/{order_id}")
    apply(order)
    repo.save(order)
    announce(conn, outbox, order, action)
    return order


def assign(conn, *, outbox: Outbox, order_id: str, dept_ids: list[str], reason: str, preliminary: bool,
           place_of: Callable[[WorkOrder], Place | None], actor: Actor, now: datetime) -> WorkOrder:
    repo = WorkOrderRepository(conn)
    order = repo.get(order_id, for_update=True)
    if order is None:
        raise NotFound(f"workOrders/{order_id}")
    departments = DepartmentRepository(conn).all()
    by_id = {d.dept_id: d for d in departments}
    missing = [d for d in dept_ids if d not in by_id]
    if missing:
        raise NotFound(f"departments/{missing[0]}")
    if preliminary:
        place = place_of(order)
        if place is None:
            raise FailedPrecondition(f"{order.name} has no location, so no station can handle it first",
                                     reason="NO_JURISDICTION")
        order.hand_to_police(place.station_id, place.station_name, reason or "职责不清，由属地派出所先期处置",
                             actor, now)
        action = "PRELIMINARY_POLICE"
    else:
        if dept_ids:
            routes = [Route(by_id[d], "LEAD" if i == 0 else "COOPERATING", reason) for i, d in enumerate(dept_ids)]
        else:
            routes = route_ordinary(order.matter_code, order.district, departments, order.rejected_departments())
            if not routes and order.rejected_departments():
                # Every responsible department refused once: back to the first of them.
                routes = route_ordinary(order.matter_code, order.district, departments)
            if not routes:
                raise FailedPrecondition(
                    f"no department handles matter {order.matter_code or '(none)'} in "
                    f"{order.district or 'the city'}; name the departments or hand it to the police station",
                    reason="NO_RESPONSIBLE_DEPARTMENT")
        order.assign(routes, actor, now, reason)
        action = "ASSIGNED"
    repo.save(order)
    announce(conn, outbox, order, action)
    return order


def review(conn, *, outbox: Outbox, order_id: str, satisfaction: str, comment: str, actor: Actor,
           now: datetime) -> WorkOrder:
    repo = WorkOrderRepository(conn)
    order = repo.get(order_id, for_update=True)
    if order is None:
        raise NotFound(f"workOrders/{order_id}")
    lead = order.lead()
    supervisor = None
    if lead is not None:
        dept = DepartmentRepository(conn).get(lead.dept_id)
        supervisor = (dept.supervisor, dept.phone) if dept else None
    order.review(satisfaction, comment, supervisor, actor, now)
    if lead is not None:
        repo.add_review(order.id, lead.dept_id, satisfaction, comment, now)
    repo.save(order)
    announce(conn, outbox, order, "ESCALATED" if order.escalate_time == now else
             "REOPENED" if order.status == "REOPENED" else "CLOSED")
    return order


def transfer_to_110(conn, *, outbox: Outbox, order: WorkOrder, report: intake_pb.Report, why: str, actor: Actor,
                    now: datetime) -> WorkOrder:
    order.transfer_to_110(report.name, why, actor, now)
    order.record_110_progress(intake_pb.ReportStatus.Name(report.status), progress_detail(report, "REPORTED"),
                              actor, now)
    WorkOrderRepository(conn).save(order)
    announce(conn, outbox, order, "TRANSFERRED_TO_110")
    return order


def sweep_overdue(conn, *, outbox: Outbox, now: datetime) -> list[str]:
    """Flags open orders past their deadline (超期), each announced; the clock is the caller's."""
    repo = WorkOrderRepository(conn)
    flagged = []
    for order_id in repo.due(now):
        order = repo.get(order_id, for_update=True)
        if order is not None and order.mark_overdue(SYSTEM, now):
            repo.save(order)
            announce(conn, outbox, order, "OVERDUE")
            flagged.append(order.name)
    return flagged


# -- unreasonable requests ---------------------------------------------------------

def prior_counts(conn, phone: str, matter_code: str, now: datetime) -> tuple[int, int]:
    if not phone:
        return 0, 0
    repo = WorkOrderRepository(conn)
    since = now - rules.PRIOR_WINDOW
    total = repo.count_from(phone, since) + UnreasonableRepository(conn).count_from(phone, since)
    same = repo.count_from(phone, since, matter_code) if matter_code else 0
    return total, same


def classify(conn, *, description: str, matter_code: str, phone: str, now: datetime):
    total, same = prior_counts(conn, phone, matter_code, now)
    return classify_request(description, total, same)


def record_unreasonable(conn, *, outbox: Outbox, fields: dict, actor: Actor, now: datetime) -> UnreasonableRecord:
    order = None
    repo = WorkOrderRepository(conn)
    if fields["work_order"]:
        order = repo.get(fields["work_order"].removeprefix("workOrders/"), for_update=True)
        if order is None:
            raise NotFound(fields["work_order"])
        fields["citizen_phone"] = fields["citizen_phone"] or order.citizen_phone
        fields["citizen_name"] = fields["citizen_name"] or order.citizen_name
        fields["description"] = fields["description"] or order.description
    total, _ = prior_counts(conn, fields["citizen_phone"], "", now)
    record = UnreasonableRecord(
        id=new_id(now), state="RECORDED", create_time=now, record_actor=actor.subject, record_roles=actor.roles,
        prior_requests=total - (1 if order is not None else 0), **fields)
    record.standard_reply = record.standard_reply or rules.STANDARD_REPLY[record.category]
    UnreasonableRepository(conn).add(record)
    if order is not None:
        order.close_as_unreasonable(record.name, rules.CATEGORY_LABEL[record.category], record.standard_reply,
                                    actor, now)
        repo.save(order)
        announce(conn, outbox, order, "CLOSED_UNREASONABLE")
    outbox.publish(conn, "referral.UnreasonableRequestRecorded", record.name,
                   pb.UnreasonableRequestRecorded(unreasonable_request=unreasonable_to_pb(record), action="RECORDED"))
    return record


def overturn(conn, *, outbox: Outbox, record_id: str, reason: str, place_of: Callable[[WorkOrder], Place | None],
             actor: Actor, now: datetime) -> UnreasonableRecord:
    """A supervisor overturns a record: the request is handled as an ordinary work order."""
    urepo = UnreasonableRepository(conn)
    record = urepo.get(record_id, for_update=True)
    if record is None:
        raise NotFound(f"unreasonableRequests/{record_id}")
    if record.state != "RECORDED":
        raise FailedPrecondition(f"{record.name} was already overturned", reason="ILLEGAL_TRANSITION",
                                 metadata={"state": record.state})
    record.state, record.overturn_actor, record.overturn_roles = "OVERTURNED", actor.subject, actor.roles
    record.overturn_time, record.overturn_reason = now, reason
    departments = DepartmentRepository(conn).all()
    repo = WorkOrderRepository(conn)
    if record.work_order:
        order = repo.get(record.work_order.removeprefix("workOrders/"), for_update=True)
        order.reopen_overturned(reason, actor, now)
        announce(conn, outbox, order, "OVERTURNED")
    else:
        known = {m.code for d in departments for m in d.matters}
        matter, _ = infer_matter("", record.description, known)
        order = record_order(conn, outbox, dict(
            source="HOTLINE_12345", matter_code=matter, description=record.description, urgency=4,
            citizen_phone=record.citizen_phone, citizen_name=record.citizen_name), actor, now)
        order.unreasonable_request = record.name
        order.note("OVERTURNED", actor, now, f"督导改判为正常诉求，生成工单：{reason}", reason)
        record.work_order = order.name
    route_or_hand_over(conn, outbox, order, departments, place_of(order), actor, now)
    repo.save(order)
    urepo.save(record)
    outbox.publish(conn, "referral.UnreasonableRequestRecorded", record.name,
                   pb.UnreasonableRequestRecorded(unreasonable_request=unreasonable_to_pb(record), action="OVERTURNED"))
    return record



