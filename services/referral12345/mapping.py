"""Domain <-> protobuf for referral: resources, the intake reports referral reads and files, the
domain events as outbox messages (`event_to_message`), and the GeoReport v2 JSON bodies."""
from __future__ import annotations

import json

from google.api import httpbody_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as pb

from services.runtime.changes import changed_fields, without
from services.runtime.enums import enum_name, enum_value
from services.runtime.logs import mask_name, mask_phone
from services.runtime.model import DomainEvent
from services.runtime.timeutil import from_pb, to_pb

from . import rules
from .domain import police_cases
from .domain import (
    CHINA, CLOSED_FOR_OPEN311, Department, Figures, Open311Service, OrderEntry, PoliceCaseNews, PoliceReport,
    UnreasonableRecord,
    UnreasonableRequestRecorded, Verdict, WorkOrder, WorkOrderCreated, WorkOrderUpdated, anonymise,
    typical_case_id,
)

GEOREPORT_CONTENT_TYPE = "application/json; charset=utf-8"
# Decimal places of a public location not published by its citizen (3: about 100 m).
PUBLIC_COORD_DECIMALS = 3


def department_to_pb(d: Department) -> pb.Department:
    return pb.Department(
        name=d.resource_name, department_id=d.dept_id, display_name=d.name, matter_codes=d.matter_codes,
        districts=d.districts, supervisor=pb.DepartmentContact(name=d.supervisor, phone_number=d.phone),
        emergency_linkage=d.emergency_linkage,
    )


def open311_service_to_pb(s: Open311Service) -> pb.Service:
    return pb.Service(service_code=s.code, service_name=s.name, group=s.group, type="realtime", metadata=False)


def attachments_to_pb(items: list[dict]) -> list[common_pb2.Attachment]:
    return [common_pb2.Attachment(
        kind=enum_value(common_pb2.AttachmentKind, a.get("kind", ""), "ATTACHMENT_KIND_"),
        content_type=a.get("content_type", ""), size_bytes=a.get("size_bytes", 0), sha256=a.get("sha256", ""),
        storage_uri=a.get("storage_uri", "")) for a in items]


def attachments_from_pb(items) -> list[dict]:
    return [dict(kind=enum_name(common_pb2.AttachmentKind, a.kind, "ATTACHMENT_KIND_"), content_type=a.content_type,
                 size_bytes=a.size_bytes, sha256=a.sha256, storage_uri=a.storage_uri) for a in items]


def work_order_to_pb(o: WorkOrder, *, masked: bool = False, hide_citizen: bool = False) -> pb.WorkOrder:
    """`masked`: personal data masked (list views); `hide_citizen`: none at all (confidential, seen by a department)."""
    msg = pb.WorkOrder(
        name=o.name, source=enum_value(pb.WorkOrderSource, o.source, "WORK_ORDER_SOURCE_"), report=o.report,
        hotline_ticket_id=o.hotline_ticket_id, category=o.category, matter_code=o.matter_code,
        description=o.description, address_text=o.address_text, urgency=o.urgency, deadline=to_pb(o.deadline),
        status=enum_value(pb.WorkOrderStatus, o.status, "WORK_ORDER_STATUS_"),
        preliminary_station=o.preliminary_station, overdue=o.overdue,
        satisfaction=enum_value(common_pb2.Satisfaction, o.satisfaction, "SATISFACTION_"),
        satisfaction_comment=o.satisfaction_comment, reopen_count=o.reopen_count,
        transferred_report=o.transferred_report, unreasonable_request=o.unreasonable_request,
        attachments=attachments_to_pb(o.attachments), request_time=to_pb(o.request_time),
        create_time=to_pb(o.create_time), update_time=to_pb(o.update_time), close_time=to_pb(o.close_time),
        transferred_report_status=o.transferred_report_status, repeat_caller=o.repeat_caller,
        prior_requests=o.prior_requests, escalate_time=to_pb(o.escalate_time), district=o.district,
        preliminary_reason=o.preliminary_reason, joint_rescue=o.joint_rescue,
        service_attributes=[pb.ServiceAttributeValue(code=a["code"], description=a["description"], value=a["value"],
                                                     value_text=a["value_text"]) for a in o.service_attributes],
    )
    if o.lon is not None and o.lat is not None:
        msg.location.CopyFrom(common_pb2.Location(point=common_pb2.GeoPoint(longitude=o.lon, latitude=o.lat),
                                                  accuracy_m=o.accuracy_m))
    if not hide_citizen:
        msg.citizen.CopyFrom(pb.Citizen(
            phone_number=mask_phone(o.citizen_phone) if masked and o.citizen_phone else o.citizen_phone,
            name=mask_name(o.citizen_name) if masked else o.citizen_name, confidential=o.confidential))
    else:
        msg.citizen.confidential = True
    if o.escalated_to_name:
        msg.escalated_to.CopyFrom(pb.DepartmentContact(name=o.escalated_to_name, title="承办单位负责人",
                                                       phone_number=o.escalated_to_phone))
    for a in o.assignments:
        msg.assignments.add(
            department=a.department, department_display_name=a.dept_name,
            role=enum_value(pb.DepartmentRole, a.role, "DEPARTMENT_ROLE_"),
            state=enum_value(pb.DepartmentAssignmentState, a.state, "DEPARTMENT_ASSIGNMENT_STATE_"),
            routing_reason=a.routing_reason, assign_time=to_pb(a.assign_time), accept_time=to_pb(a.accept_time),
            start_time=to_pb(a.start_time), resolve_time=to_pb(a.resolve_time), reject_reason=a.reject_reason,
            feedback=a.feedback, attachments=attachments_to_pb(a.attachments), deadline=to_pb(a.deadline))
    _entries_to_pb(o.timeline, msg.timeline)
    return msg


def _entries_to_pb(entries: list[OrderEntry], field) -> None:
    for e in entries:
        field.add(action=e.action, detail=e.detail, department=e.department,
                  stamp=common_pb2.AuditStamp(actor=e.actor, roles=e.roles, time=to_pb(e.time), reason=e.reason))


# The lists of a work order that grow with its history (every rejection, reassignment and reopening adds
# assignments) or are not bounded by the request: events leave them out (GetWorkOrder has them).
EVENT_OMITS = ("assignments", "attachments", "timeline")


def work_order_event_pb(o: WorkOrder) -> pb.WorkOrder:
    """The order as events carry it: its current state without the lists above."""
    return without(work_order_to_pb(o), EVENT_OMITS)


def event_to_message(event: DomainEvent) -> tuple[str, str, Message]:
    """A domain event as its outbox message: (event type, subject, payload)."""
    if isinstance(event, WorkOrderCreated):
        # The new order and the timeline recorded with it.
        msg = pb.WorkOrderCreated(work_order=work_order_event_pb(event.order))
        _entries_to_pb(event.entries, msg.new_entries)
        return "referral.WorkOrderCreated", event.order.name, msg
    if isinstance(event, WorkOrderUpdated):
        # The order as it now stands, the fields changed and the entries added since it was last
        # announced or loaded.
        after = work_order_event_pb(event.order)
        before = work_order_event_pb(event.before) if event.before is not None else pb.WorkOrder()
        msg = pb.WorkOrderUpdated(work_order=after, action=event.action, changed_fields=changed_fields(before, after))
        _entries_to_pb(event.entries, msg.new_entries)
        return "referral.WorkOrderUpdated", event.order.name, msg
    if isinstance(event, UnreasonableRequestRecorded):
        return ("referral.UnreasonableRequestRecorded", event.record.name,
                pb.UnreasonableRequestRecorded(unreasonable_request=unreasonable_to_pb(event.record),
                                               action=event.action))
    raise TypeError(f"referral publishes no {type(event).__name__}")


def unreasonable_to_pb(r: UnreasonableRecord, *, masked: bool = False) -> pb.UnreasonableRequest:
    msg = pb.UnreasonableRequest(
        name=r.name, work_order=r.work_order, description=r.description,
        citizen=pb.Citizen(phone_number=mask_phone(r.citizen_phone) if masked and r.citizen_phone else r.citizen_phone,
                           name=mask_name(r.citizen_name) if masked else r.citizen_name),
        category=enum_value(pb.UnreasonableCategory, r.category, "UNREASONABLE_CATEGORY_"),
        reason=r.reason, standard_reply=r.standard_reply, typical_case=r.typical_case,
        state=enum_value(pb.UnreasonableRequestState, r.state, "UNREASONABLE_REQUEST_STATE_"),
        prior_requests=r.prior_requests,
        record_stamp=common_pb2.AuditStamp(actor=r.record_actor, roles=r.record_roles, time=to_pb(r.create_time)),
        create_time=to_pb(r.create_time),
    )
    if r.overturn_time is not None:
        msg.overturn_stamp.CopyFrom(common_pb2.AuditStamp(actor=r.overturn_actor, roles=r.overturn_roles,
                                                          time=to_pb(r.overturn_time), reason=r.overturn_reason))
    return msg


def typical_case_to_pb(r: UnreasonableRecord) -> pb.TypicalCase:
    return pb.TypicalCase(
        name=f"typicalCases/{typical_case_id(r.id)}",
        category=enum_value(pb.UnreasonableCategory, r.category, "UNREASONABLE_CATEGORY_"),
        summary=anonymise(r.description, r.citizen_name), reason=anonymise(r.reason, r.citizen_name),
        standard_reply=r.standard_reply, record_time=to_pb(r.create_time.replace(minute=0, second=0, microsecond=0)),
    )


def classification_to_pb(verdict: Verdict) -> pb.RequestClassification:
    return pb.RequestClassification(
        unreasonable=verdict.unreasonable,
        category=pb.UnreasonableCategory.Value(f"UNREASONABLE_CATEGORY_{verdict.category}") if verdict.category else 0,
        reason=verdict.reason, standard_reply=verdict.standard_reply, confidence=verdict.confidence,
        rule_ids=verdict.rule_ids, prior_requests=verdict.prior_requests)


def statistics_to_pb(start, end, figures: list[Figures]) -> pb.DepartmentStatistics:
    return pb.DepartmentStatistics(
        start_time=to_pb(start), end_time=to_pb(end),
        departments=[pb.DepartmentFigures(
            department=f"departments/{f.dept_id}", department_display_name=f.dept_name, assigned=f.assigned,
            rejected=f.rejected, resolved=f.resolved, completion_rate=f.completion_rate,
            on_time_rate=f.on_time_rate, satisfaction_rate=f.satisfaction_rate, reopen_rate=f.reopen_rate,
            mean_resolve_seconds=f.mean_resolve_seconds) for f in figures])


def sweep_to_pb(flagged: list[WorkOrder]) -> pb.SweepOverdueWorkOrdersResponse:
    return pb.SweepOverdueWorkOrdersResponse(work_orders=[o.name for o in flagged])


# -- intake's reports --------------------------------------------------------------

def police_report_from_pb(report: intake_pb.Report) -> PoliceReport:
    """What referral reads of an intake report (an event's, or the one intake filed for a transfer):
    never its caller, which events do not carry (`clients.Intake.caller_contact` reads it)."""
    has_point = report.HasField("location") and report.location.HasField("point")
    return PoliceReport(
        name=report.name, status=intake_pb.ReportStatus.Name(report.status),
        category=enum_name(intake_pb.Category, report.classification.category, "CATEGORY_"),
        incident_type=report.classification.incident_type, priority=report.classification.priority,
        channel=enum_name(intake_pb.Channel, report.channel, "CHANNEL_"), merged_into=report.merged_into,
        description=report.description, lon=report.location.point.longitude if has_point else None,
        lat=report.location.point.latitude if has_point else None, accuracy_m=report.location.accuracy_m,
        address_text=report.address_text, station_id=report.station_id,
        attachments=tuple(attachments_from_pb(report.attachments)),
        receive_time=from_pb(report.receive_time) if report.HasField("receive_time") else None,
    )


# -- dispatch's cases of orders in 先期处置 -------------------------------------------------

_ASSIGNMENT_NEWS = {dispatch_pb.ASSIGNMENT_STATE_ACCEPTED: police_cases.ACCEPTED,
                    dispatch_pb.ASSIGNMENT_STATE_ON_SCENE: police_cases.ON_SCENE,
                    dispatch_pb.ASSIGNMENT_STATE_REPORTED_BACK: police_cases.REPORTED_BACK}


def _outcome(value: int) -> str:
    return enum_name(dispatch_pb.Outcome, value, "OUTCOME_")


def police_case_news(payload) -> PoliceCaseNews | None:
    """dispatch.CaseCreated, AssignmentChanged or CaseUpdated as news of an order's police case; None
    for a 110 report's case or a change the order does not follow (an offer, a level change, the
    case closing by its last report-back, which that report-back's own event tells)."""
    if isinstance(payload, dispatch_pb.AssignmentChanged):
        a = payload.assignment
        order_id = police_cases.order_id_of(a.case_summary.report)
        what = _ASSIGNMENT_NEWS.get(a.state)
        if order_id is None or what is None:
            return None
        return PoliceCaseNews(
            order_id=order_id, case_name=payload.case_name, what=what, station_id=payload.station_id,
            unit=a.call_sign or a.unit, outcome=_outcome(a.outcome),
            notes=a.notes, closes=a.case_summary.status == dispatch_pb.CASE_STATUS_CLOSED)
    case = payload.dispatch_case
    order_id = police_cases.order_id_of(case.report)
    if order_id is None:
        return None
    if isinstance(payload, dispatch_pb.CaseCreated):
        return PoliceCaseNews(order_id=order_id, case_name=case.name, what=police_cases.OPENED,
                              station_id=case.station_id)
    if case.status == dispatch_pb.CASE_STATUS_CLOSED and case.outcome and payload.action == "CLOSED":
        return PoliceCaseNews(order_id=order_id, case_name=case.name, what=police_cases.CLOSED,
                              station_id=case.station_id, outcome=_outcome(case.outcome),
                              notes=case.close_notes)
    if case.status == dispatch_pb.CASE_STATUS_CANCELLED and payload.action == "CANCELLED":
        return PoliceCaseNews(
            order_id=order_id, case_name=case.name, what=police_cases.CANCELLED, station_id=case.station_id,
            reason=enum_name(dispatch_pb.CancelReason, case.cancel_reason, "CANCEL_REASON_"),
            notes=case.close_notes)
    return None


def transfer_report_pb(order: WorkOrder, why: str) -> intake_pb.Report:
    """The intake report a transferred order becomes (channel 12345)."""
    report = intake_pb.Report(
        channel=intake_pb.CHANNEL_HOTLINE_12345, description=f"{order.description}（12345转警：{why}）",
        caller=intake_pb.Caller(phone_number=order.citizen_phone, name=order.citizen_name),
        address_text=order.address_text, receive_time=to_pb(order.request_time))
    if order.lon is not None:
        report.location.CopyFrom(common_pb2.Location(
            point=common_pb2.GeoPoint(longitude=order.lon, latitude=order.lat), accuracy_m=order.accuracy_m))
    return report


# -- GeoReport v2 ----------------------------------------------------------------

def public_text(text: str, citizen_name: str) -> str:
    """Free text for anyone to read: anonymised, the citizen's name also caught without its space ("何 小明")."""
    out = anonymise(text, citizen_name)
    compact = citizen_name.replace(" ", "")
    return anonymise(out, compact) if compact != citizen_name else out


def service_request_to_pb(o: WorkOrder, matter_label: str) -> pb.ServiceRequest:
    lead = o.lead()
    if lead is not None:
        agency = lead.dept_name
    elif o.status == "PRELIMINARY_POLICE":
        agency = f"属地派出所（{o.preliminary_station.removeprefix('stations/')}，先期处置）"
    elif o.status == "TRANSFERRED_TO_110":
        agency = "110报警服务台"
    else:
        agency = "12345市民服务热线"
    notes = o.latest_feedback()
    if o.status == "TRANSFERRED_TO_110":
        notes = "已转110处置"
    elif o.unreasonable_request and o.status == "CLOSED":
        notes = o.timeline[-1].detail if o.timeline else ""
    limit = rules.URGENCY_LABEL.get(o.urgency, "")
    notice = f"办理时限：{o.deadline.astimezone(CHINA):%Y-%m-%d %H:%M}（{limit}）" if o.deadline else ""
    # Public: never the citizen's name, phone or e-mail; free text anonymised. An Open311 poster
    # published the place; a 110 caller or 12345 ticket did not, so theirs is coarsened (~100 m,
    # house numbers hidden).
    own_post = o.source == "OPEN311"
    msg = pb.ServiceRequest(
        service_request_id=o.id, status="closed" if o.status in CLOSED_FOR_OPEN311 else "open",
        status_notes=public_text(notes, o.citizen_name), service_name=matter_label, service_code=o.matter_code,
        description=public_text(o.description, o.citizen_name), agency_responsible=agency, service_notice=notice,
        requested_datetime=to_pb(o.request_time), updated_datetime=to_pb(o.update_time),
        expected_datetime=to_pb(o.deadline),
        address=o.address_text if own_post else public_text(o.address_text, o.citizen_name),
        media_url=next((a.get("storage_uri", "") for a in o.attachments if a.get("storage_uri")), "")
        if own_post else "",
    )
    if o.lat is not None and o.lon is not None:
        msg.lat, msg.long = (o.lat, o.lon) if own_post else (round(o.lat, PUBLIC_COORD_DECIMALS),
                                                            round(o.lon, PUBLIC_COORD_DECIMALS))
    return msg


def georeport_body(messages: list[Message]) -> httpbody_pb2.HttpBody:
    """A GeoReport JSON array: proto field names as keys, every field present (clients expect `metadata: false`)."""
    items = [
        json_format.MessageToDict(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        for m in messages
    ]
    return httpbody_pb2.HttpBody(
        content_type=GEOREPORT_CONTENT_TYPE, data=json.dumps(items, ensure_ascii=False).encode("utf-8"))


def receipt_body(order: WorkOrder, matter_label: str, account_id: str) -> httpbody_pb2.HttpBody:
    """The answer to a GeoReport POST: the new request's id and notice."""
    sr = service_request_to_pb(order, matter_label)
    return georeport_body([pb.ServiceRequestReceipt(service_request_id=order.id, service_notice=sr.service_notice,
                                                    account_id=account_id)])
