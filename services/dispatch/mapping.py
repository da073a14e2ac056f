"""Domain <-> protobuf for dispatch."""
from __future__ import annotations

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime.audit import TimelineEntry, timeline_to_pb
from services.runtime.changes import changed_fields, without
from services.runtime.enums import enum_name, enum_value
from services.runtime.timeutil import to_pb

from .domain import Assignment, DispatchCase, Recommendation, Unit, seconds_between


def recommendation_to_pb(r: Recommendation) -> pb.Recommendation:
    return pb.Recommendation(
        unit=f"units/{r.unit_id}", call_sign=r.call_sign, kind=enum_value(pb.UnitKind, r.kind, "UNIT_KIND_"),
        station_id=r.station_id, role=enum_value(pb.AssignmentRole, r.role, "ASSIGNMENT_ROLE_"),
        distance_m=r.distance_m, eta_seconds=r.eta_seconds, reason=r.reason, capability=r.capability,
        position_stale=r.position_stale, cross_station=r.cross_station)


def _location(c: DispatchCase) -> common_pb2.Location | None:
    if c.lon is None:
        return None
    return common_pb2.Location(point=common_pb2.GeoPoint(longitude=c.lon, latitude=c.lat))


def case_summary_to_pb(c: DispatchCase) -> pb.DispatchCase:
    """What an officer's phone needs about a case: where, what, how urgent."""
    return pb.DispatchCase(
        name=c.name, report=c.report, station_id=c.station_id, grid_id=c.grid_id, incident_type=c.incident_type,
        priority=c.priority, level=enum_value(pb.CaseLevel, c.level, "CASE_LEVEL_"),
        status=enum_value(pb.CaseStatus, c.status, "CASE_STATUS_"), location=_location(c),
        address_text=c.address_text, summary=c.summary, report_time=to_pb(c.report_time),
        arrival_target_seconds=c.arrival_target_s)


def case_to_pb(c: DispatchCase) -> pb.DispatchCase:
    msg = pb.DispatchCase(
        name=c.name, report=c.report, station_id=c.station_id, grid_id=c.grid_id, incident_type=c.incident_type,
        priority=c.priority, level=enum_value(pb.CaseLevel, c.level, "CASE_LEVEL_"),
        status=enum_value(pb.CaseStatus, c.status, "CASE_STATUS_"), address_text=c.address_text,
        summary=c.summary, location=_location(c),
        recommendations=[recommendation_to_pb(r) for r in c.recommendations],
        assignments=[assignment_to_pb(a, c, summary=False) for a in c.assignments],
        report_time=to_pb(c.report_time), create_time=to_pb(c.create_time), update_time=to_pb(c.update_time),
        arrival_target_seconds=c.arrival_target_s, accept_time=to_pb(c.accept_time),
        accept_seconds=c.accept_seconds, arrive_time=to_pb(c.arrive_time), close_time=to_pb(c.close_time),
    )
    timeline_to_pb(c.timeline, msg.timeline)
    return msg


# The lists of a case that grow with its history (offers expiring and moving on,
# stop-payment hand-offs, the timeline): events leave them out (GetCase has
# them), so an event's size does not depend on how long the case has run.
EVENT_OMITS = ("timeline", "assignments", "stop_payments")


def case_event_pb(msg: pb.DispatchCase) -> pb.DispatchCase:
    """A case message (see caseinfo.case_message) as events carry it: without the lists above."""
    return without(msg, EVENT_OMITS)


def case_created_pb(msg: pb.DispatchCase) -> pb.CaseCreated:
    """dispatch.CaseCreated from the whole new case: its timeline so far is the news, with the
    stop-payment hand-off queued with it, if any."""
    event = pb.CaseCreated(dispatch_case=case_event_pb(msg), new_entries=msg.timeline)
    if msg.stop_payments:
        event.stop_payment.CopyFrom(msg.stop_payments[-1])
    return event


def case_updated_pb(msg: pb.DispatchCase, action: str, *, before: pb.DispatchCase, new_entries: list[TimelineEntry],
                    stop_payment: pb.StopPayment | None = None, previous_level: int = 0) -> pb.CaseUpdated:
    """dispatch.CaseUpdated: the case as it now stands, what changed since `before` (the case
    message read before the change) and the timeline entries the change appended."""
    after = case_event_pb(msg)
    event = pb.CaseUpdated(dispatch_case=after, action=action, previous_level=previous_level,
                           changed_fields=changed_fields(case_event_pb(before), after))
    timeline_to_pb(new_entries, event.new_entries)
    if stop_payment is not None:
        event.stop_payment.CopyFrom(stop_payment)
    return event


def evidence_from_pb(items) -> list[dict]:
    return [dict(kind=enum_name(common_pb2.AttachmentKind, a.kind, "ATTACHMENT_KIND_"), content_type=a.content_type,
                 size_bytes=a.size_bytes, sha256=a.sha256.lower(), storage_uri=a.storage_uri) for a in items]


def officers_to_pb(officers: list[dict], station_id: str) -> list[common_pb2.OfficerRef]:
    return [common_pb2.OfficerRef(officer_id=o["officer_id"], display_name=o["name"], station_id=station_id)
            for o in officers]


def assignment_to_pb(a: Assignment, case: DispatchCase, *, summary: bool = True) -> pb.Assignment:
    """An assignment with the SLA figures measured from the case's report (and the case summary)."""
    arrival = seconds_between(case.report_time, a.arrive_time)
    msg = pb.Assignment(
        name=a.name, unit=a.unit, role=enum_value(pb.AssignmentRole, a.role, "ASSIGNMENT_ROLE_"),
        state=enum_value(pb.AssignmentState, a.state, "ASSIGNMENT_STATE_"),
        offer_time=to_pb(a.offer_time), offer_expire_time=to_pb(a.offer_expire_time),
        accept_time=to_pb(a.accept_time), arrive_time=to_pb(a.arrive_time), clear_time=to_pb(a.clear_time),
        report_back_time=to_pb(a.report_back_time),
        outcome=enum_value(pb.Outcome, a.outcome, "OUTCOME_"), notes=a.notes,
        evidence=[common_pb2.Attachment(
            kind=enum_value(common_pb2.AttachmentKind, e["kind"], "ATTACHMENT_KIND_"),
            content_type=e["content_type"], size_bytes=e["size_bytes"], sha256=e["sha256"],
            storage_uri=e["storage_uri"]) for e in a.evidence],
        officers=officers_to_pb(a.officers, a.station_id), station_id=a.station_id, call_sign=a.call_sign,
        kind=enum_value(pb.UnitKind, a.kind, "UNIT_KIND_"), decline_reason=a.decline_reason,
        en_route_time=to_pb(a.en_route_time), arrival_target_seconds=a.arrival_target_s,
        reason=a.reason, version=a.version, update_time=to_pb(a.update_time), capability=a.capability,
    )
    if summary:
        msg.case_summary.CopyFrom(case_summary_to_pb(case))
    msg.accept_seconds = seconds_between(case.report_time, a.accept_time)
    if a.arrive_time:
        msg.arrival_seconds = arrival
        msg.arrival_target_met = a.arrival_target_s > 0 and arrival <= a.arrival_target_s
    return msg


def unit_to_pb(u: Unit) -> pb.Unit:
    status = u.status if u.on_duty else "OFF_DUTY"
    msg = pb.Unit(
        name=u.name, unit_id=u.unit_id, call_sign=u.call_sign, kind=enum_value(pb.UnitKind, u.kind, "UNIT_KIND_"),
        station_id=u.station_id, skills=u.skills, vehicle=u.vehicle,
        officers=officers_to_pb(u.officers, u.station_id),
        status=enum_value(pb.UnitStatus, status, "UNIT_STATUS_"),
        position=common_pb2.GeoPoint(longitude=u.lon, latitude=u.lat), on_duty=u.on_duty,
        position_stale=u.position_stale, position_time=to_pb(u.position_time),
    )
    return msg
