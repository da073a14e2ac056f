"""Protobuf <-> domain for dispatch: the messages of the API, intake's reports (into the domain's
terms), the anti-fraud centre's contract, and the domain event -> outbox message mapping
(`event_to_message`) the unit of work publishes with."""
from __future__ import annotations

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.partners.antifraud.v1 import antifraud_pb2 as af_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb

from services.runtime.audit import timeline_to_pb
from services.runtime.auth import AuthContext
from services.runtime.changes import changed_fields, without
from services.runtime.enums import enum_name, enum_value
from services.runtime.timeutil import from_pb, to_pb
from services.runtime.workdays import CHINA_TIME

from . import domain
from .domain import grant as grant_labels
from .queries import CircleLine, FollowUpStats, ResponseCircles, Satisfaction, Situation, StationGrants
from .domain import (
    AccessGrant, Assignment, DispatchCase, Evidence, FollowUp, PositionFix, Receipt, Recommendation, ReportFacts, Shift,
    StopPayment, Unit, VictimContact, mask_account, seconds_between,
)


# -- what dispatch reads of intake -----------------------------------------------------------


def report_from_pb(report: intake_pb.Report) -> ReportFacts:
    """The facts a case is opened from. Never the caller: intake's events do not carry it, and a
    case does not need it (the stop-payment sender reads the victim's contact when it delivers)."""
    has_point = report.HasField("location") and report.location.HasField("point")
    c = report.classification
    return ReportFacts(
        name=report.name, police=c.category == intake_pb.CATEGORY_POLICE, merged_into=report.merged_into,
        station_id=report.station_id, grid_id=report.grid_id, incident_type=c.incident_type, priority=c.priority,
        lon=report.location.point.longitude if has_point else None,
        lat=report.location.point.latitude if has_point else None,
        address_text=report.address_text, description=report.description,
        receive_time=from_pb(report.receive_time) if report.HasField("receive_time") else None,
        silent=report.silent,
        shared_station_ids=tuple(report.shared_station_ids),
        channel=enum_name(intake_pb.Channel, report.channel, "CHANNEL_"))


# -- what dispatch reads of referral: a 12345 work order handled by the police first (先期处置) ------

# 12345 matters (事项编码) that are, for the station handling them first, an incident type of the
# capability matrix; any other matter is OTHER. A matter that is itself a police incident type
# (NOISE, DISPUTE) keeps it.
MATTER_INCIDENT_TYPES = {
    "NOISE": "NOISE", "DISPUTE": "DISPUTE", "FIGHT": "FIGHT", "SUSPICIOUS_PERSON": "SUSPICIOUS_PERSON",
    "MISSING_PERSON": "MISSING_PERSON", "GAMBLING": "GAMBLING", "GAS_LEAK": "GAS_LEAK", "FIRE": "FIRE",
    "NEIGHBOR_DISPUTE": "DISPUTE", "CONSUMER_DISPUTE": "DISPUTE", "LABOR_DISPUTE": "DISPUTE",
    "WAGE_ARREARS": "DISPUTE", "HOUSING_RENTAL": "DISPUTE", "PROPERTY_MANAGEMENT": "DISPUTE",
    "MEDICAL_DISPUTE": "DISPUTE", "CONSTRUCTION_NOISE": "NOISE", "INDUSTRIAL_NOISE": "NOISE",
    "TRAFFIC_CONGESTION": "CONGESTION",
}
# A work order's urgency (1 emergency .. 4 routine) as a case priority: an emergency order is P2, any
# other P3 (the police act first on a citizen's request, not on a 110 emergency).
PRELIMINARY_PRIORITY = {1: 2}
PRELIMINARY_DEFAULT_PRIORITY = 3


def preliminary_order_from_pb(order: referral_pb.WorkOrder) -> ReportFacts | None:
    """A 12345 work order in 先期处置 as the facts of the case its station opens for it, named by the
    order (`workOrders/{id}`, the case's report); None when the order is not with a police station.

    The case's report time is when the case is opened (the police's clock starts then, not at the
    citizen's request); its summary says it is a 12345 order and gives the order's deadline."""
    if order.status != referral_pb.WORK_ORDER_STATUS_PRELIMINARY_POLICE or not order.preliminary_station:
        return None
    has_point = order.HasField("location") and order.location.HasField("point")
    deadline = from_pb(order.deadline) if order.HasField("deadline") else None
    head = "12345工单，属地派出所先期处置"
    if deadline is not None:
        head += f"，办理时限{deadline.astimezone(CHINA_TIME):%Y-%m-%d %H:%M}"
    return ReportFacts(
        name=order.name, police=True, merged_into="",
        station_id=order.preliminary_station.removeprefix("stations/"), grid_id="",
        incident_type=MATTER_INCIDENT_TYPES.get(order.matter_code, "OTHER"),
        priority=PRELIMINARY_PRIORITY.get(order.urgency, PRELIMINARY_DEFAULT_PRIORITY),
        lon=order.location.point.longitude if has_point else None,
        lat=order.location.point.latitude if has_point else None,
        address_text=order.address_text, description=f"{head}：{order.description}", receive_time=None,
        channel="HOTLINE_12345")


# -- cases -------------------------------------------------------------------------------------

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
    """What an officer's phone needs about a case: where, what, how urgent, and how to approach
    (a silent alarm: no call-back, quietly)."""
    return pb.DispatchCase(
        name=c.name, report=c.report, station_id=c.station_id, grid_id=c.grid_id, incident_type=c.incident_type,
        priority=c.priority, level=enum_value(pb.CaseLevel, c.level, "CASE_LEVEL_"),
        status=enum_value(pb.CaseStatus, c.status, "CASE_STATUS_"), location=_location(c),
        address_text=c.address_text, summary=c.summary, report_time=to_pb(c.report_time),
        arrival_target_seconds=c.arrival_target_s, silent=c.silent, instructions=c.instructions,
        shared_station_ids=c.shared_station_ids)


def case_to_pb(c: DispatchCase) -> pb.DispatchCase:
    """A case with what it owns: assignments, hand-offs, follow-up, timeline (as far as loaded)."""
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
        stop_payments=[stop_payment_to_pb(sp) for sp in c.stop_payments],
        arrival_seconds=c.arrival_seconds, arrival_target_met=c.arrival_target_met,
        silent=c.silent, instructions=c.instructions, shared_station_ids=c.shared_station_ids,
        outcome=enum_value(pb.Outcome, c.outcome, "OUTCOME_") if c.outcome else 0,
        cancel_reason=enum_value(pb.CancelReason, c.cancel_reason, "CANCEL_REASON_") if c.cancel_reason else 0,
        close_notes=c.close_notes, offers_exhausted_time=to_pb(c.offers_exhausted_time),
        reopen_time=to_pb(c.reopen_time),
    )
    if c.follow_up is not None:
        msg.follow_up.CopyFrom(follow_up_to_pb(c.follow_up))
        msg.satisfaction = msg.follow_up.satisfaction
    timeline_to_pb(c.timeline, msg.timeline)
    return msg


def follow_up_to_pb(f: FollowUp) -> pb.FollowUp:
    return pb.FollowUp(
        satisfaction=enum_value(common_pb2.Satisfaction, f.satisfaction, "SATISFACTION_"), comment=f.comment,
        stamp=common_pb2.AuditStamp(actor=f.actor, roles=list(f.roles), time=to_pb(f.rate_time)),
        flagged_to_station_chief=f.flagged,
        officers=[common_pb2.OfficerRef(officer_id=o.officer_id, display_name=o.name, station_id=o.station_id)
                  for o in f.officers],
        review_state=enum_value(pb.FollowUpReviewState, f.review_state, "FOLLOW_UP_REVIEW_STATE_")
        if f.review_state else 0,
        review_stamp=common_pb2.AuditStamp(actor=f.reviewed_by, time=to_pb(f.review_time)) if f.review_time else None,
        review_answer=f.review_answer)


def stop_payment_to_pb(sp: StopPayment) -> pb.StopPayment:
    return pb.StopPayment(
        name=sp.name, idempotency_key=sp.idempotency_key,
        state=enum_value(pb.StopPaymentState, sp.state, "STOP_PAYMENT_STATE_"), banks=list(sp.banks),
        victim_account=mask_account(sp.victim_account), amount_fen=sp.amount_fen, receipt_id=sp.receipt_id,
        frozen_amount_fen=sp.frozen_amount_fen, result_text=sp.result_text, attempts=sp.attempts,
        last_error=sp.last_error, create_time=to_pb(sp.create_time), deliver_time=to_pb(sp.deliver_time),
        result_time=to_pb(sp.result_time), next_attempt_time=to_pb(sp.next_attempt_time),
        requested=common_pb2.AuditStamp(actor=sp.requested_by, roles=list(sp.requested_roles),
                                        time=to_pb(sp.create_time)),
    )


def evidence_from_pb(items) -> list[dict]:
    return [dict(kind=enum_name(common_pb2.AttachmentKind, a.kind, "ATTACHMENT_KIND_"), content_type=a.content_type,
                 size_bytes=a.size_bytes, sha256=a.sha256.lower(), storage_uri=a.storage_uri) for a in items]


def evidence_to_pb(e: Evidence) -> pb.Evidence:
    a = e.attachment()
    return pb.Evidence(
        name=e.name, file_name=e.file_name, create_time=to_pb(e.create_time), uploaded_by=e.uploaded_by,
        attachment=common_pb2.Attachment(
            kind=enum_value(common_pb2.AttachmentKind, a["kind"], "ATTACHMENT_KIND_"), content_type=a["content_type"],
            size_bytes=a["size_bytes"], sha256=a["sha256"], storage_uri=a["storage_uri"]))


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


def case_assignment_to_pb(result: tuple[DispatchCase, Assignment]) -> pb.Assignment:
    """The assignment a use case changed, with the case it belongs to."""
    case, a = result
    return assignment_to_pb(a, case)


# -- units -------------------------------------------------------------------------------------

def unit_to_pb(u: Unit) -> pb.Unit:
    status = u.status if u.on_duty else "OFF_DUTY"
    msg = pb.Unit(
        name=u.name, unit_id=u.unit_id, call_sign=u.call_sign, kind=enum_value(pb.UnitKind, u.kind, "UNIT_KIND_"),
        station_id=u.station_id, skills=u.skills, vehicle=u.vehicle,
        officers=officers_to_pb(u.officers, u.station_id),
        status=enum_value(pb.UnitStatus, status, "UNIT_STATUS_"),
        position=common_pb2.GeoPoint(longitude=u.lon, latitude=u.lat), on_duty=u.on_duty,
        position_stale=u.position_stale, position_time=to_pb(u.position_time), grid_ids=u.grid_ids,
    )
    return msg


def unit_with_timeline_to_pb(u: Unit) -> pb.Unit:
    msg = unit_to_pb(u)
    timeline_to_pb(u.timeline, msg.timeline)
    return msg


def unit_values_from_pb(u: pb.Unit, paths: list[str]) -> dict:
    """The static data an UpdateUnit sets (checked by the servicer), in the domain's terms."""
    values: dict = {}
    if "call_sign" in paths:
        values["call_sign"] = u.call_sign.strip()
    if "kind" in paths:
        values["kind"] = enum_name(pb.UnitKind, u.kind, "UNIT_KIND_")
    if "station_id" in paths:
        values["station_id"] = u.station_id
    if "skills" in paths:
        values["skills"] = list(dict.fromkeys(u.skills))
    if "vehicle" in paths:
        values["vehicle"] = u.vehicle
    if "officers" in paths:
        values["officers"] = [{"officer_id": o.officer_id, "name": o.display_name} for o in u.officers]
    if "grid_ids" in paths:
        values["grid_ids"] = list(dict.fromkeys(u.grid_ids))
    return values


def position_fix_from_pb(req: pb.ReportPositionsRequest, now) -> PositionFix:
    """One fix of a ReportPositions stream; a fix without its time is taken as of `now`."""
    has = req.HasField("position")
    return PositionFix(unit_id=req.unit.removeprefix("units/") if req.unit.startswith("units/") else "",
                       lon=req.position.longitude if has else None, lat=req.position.latitude if has else None,
                       fix_time=from_pb(req.fix_time) or now, accuracy_m=req.accuracy_m)


def shift_to_pb(s: Shift) -> pb.Shift:
    return pb.Shift(name=s.name, start_time=to_pb(s.start_time), end_time=to_pb(s.end_time), area=s.area)


# -- the read side ---------------------------------------------------------------------------------

def situation_to_pb(s: Situation, alerts=None) -> pb.Situation:
    """The situation, with the alerts service's answer (`clients.AlertsFound`; None: it did not answer)."""
    stations = [pb.StationSituation(
        station_id=c.station_id, cases_by_status={"CASE_STATUS_" + k: n for k, n in c.cases_by_status.items()},
        units_by_status={"UNIT_STATUS_" + k: n for k, n in c.units_by_status.items()}) for c in s.stations]
    return pb.Situation(cases=[case_to_pb(c) for c in s.cases], units=[unit_to_pb(u) for u in s.units],
                        stations=stations, cases_truncated=s.cases_truncated, units_truncated=s.units_truncated,
                        alerts=alerts.alerts if alerts else [], alerts_unavailable=alerts is None,
                        alerts_truncated=bool(alerts and alerts.truncated))


def _satisfaction_to_pb(r: Satisfaction, **kw) -> pb.SatisfactionSummary:
    return pb.SatisfactionSummary(satisfied=r.satisfied, basically_satisfied=r.basically_satisfied,
                                  unsatisfied=r.unsatisfied, total=r.total, satisfaction_rate=r.rate, **kw)


def follow_up_stats_to_pb(s: FollowUpStats) -> pb.FollowUpStats:
    return pb.FollowUpStats(
        stations=[_satisfaction_to_pb(r, station_id=r.station_id) for r in s.stations],
        officers=[_satisfaction_to_pb(r, station_id=r.station_id, officer=common_pb2.OfficerRef(
                      officer_id=r.officer_id, display_name=r.officer_name, station_id=r.station_id))
                  for r in s.officers])


def _circle_to_pb(line: CircleLine) -> pb.StationResponseCircle:
    t = line.tally
    return pb.StationResponseCircle(
        station_id=line.station_id, arrived=t.arrived, within_target=t.within,
        within_target_rate=t.within / t.arrived if t.arrived else 0.0,
        mean_arrival_seconds=t.mean(), overdue_not_arrived=t.overdue,
        tiers=[pb.ResponseCircleTier(target_seconds=target, arrived=x.arrived, within_target=x.within,
                                     mean_arrival_seconds=x.mean()) for target, x in sorted(line.tiers.items())])


def response_circles_to_pb(r: ResponseCircles) -> pb.ResponseCircleStats:
    return pb.ResponseCircleStats(stations=[_circle_to_pb(s) for s in r.stations], total=_circle_to_pb(r.total))


# -- access grants (权随案走) -------------------------------------------------------------------------

def grant_to_pb(g: AccessGrant) -> pb.AccessGrant:
    return pb.AccessGrant(
        name=g.name, case=g.case_name, case_station_id=g.case_station_id, incident_type=g.incident_type,
        case_level=enum_value(pb.CaseLevel, g.case_level, "CASE_LEVEL_"), grantee=g.grantee,
        grantee_station_id=g.grantee_station_id, scope=enum_value(pb.AccessScope, g.scope, "ACCESS_SCOPE_"),
        station_ids=g.station_ids, reason=g.reason, hours=g.hours,
        state=enum_value(pb.AccessGrantState, g.state, "ACCESS_GRANT_STATE_"), auto_granted=g.auto_granted,
        decided_by=g.decided_by, decision_reason=g.decision_reason, request_time=to_pb(g.request_time),
        grant_time=to_pb(g.grant_time), expire_time=to_pb(g.expire_time), end_time=to_pb(g.end_time),
        end_reason=g.end_reason, uses=g.uses, last_use_time=to_pb(g.last_use_time),
        scope_label=grant_labels.SCOPE_LABELS.get(g.scope, ""), state_label=grant_labels.STATE_LABELS.get(g.state, ""))


def grant_stats_to_pb(lines: list[StationGrants]) -> pb.AccessGrantStats:
    return pb.AccessGrantStats(stations=[
        pb.StationAccessGrants(station_id=x.station_id, **x.counts, median_held_seconds=x.median_held_seconds,
                               median_decision_seconds=x.median_decision_seconds, uses=x.uses,
                               incident_types=[pb.IncidentTypeCount(incident_type=t, count=n)
                                               for t, n in x.incident_types])
        for x in lines])


# -- the anti-fraud centre -------------------------------------------------------------------------

def stop_payment_request_pb(sp: StopPayment, case: DispatchCase,
                            victim: VictimContact | None) -> af_pb.RequestStopPaymentRequest:
    """The centre's request; `victim`, read from intake for this delivery, fills in the victim's
    name and phone (None: unknown, sent empty)."""
    victim = victim or VictimContact()
    return af_pb.RequestStopPaymentRequest(
        idempotency_key=sp.idempotency_key, case_name=f"cases/{sp.case_id}", report_name=case.report,
        station_id=case.station_id, victim_name=victim.name, victim_phone=victim.phone,
        victim_accounts=[af_pb.VictimAccount(bank=b, account_number=sp.victim_account if i == 0 else "")
                         for i, b in enumerate(sp.banks or [""])],
        amount_fen=sp.amount_fen, report_time=to_pb(case.report_time),
        description=sp.description, requested_by=sp.requested_by,
    )


def receipt_from_pb(receipt: af_pb.StopPaymentReceipt) -> Receipt:
    return Receipt(state=enum_name(af_pb.StopPaymentState, receipt.state, "STOP_PAYMENT_STATE_"),
                   receipt_id=receipt.receipt_id, frozen_amount_fen=receipt.frozen_amount_fen,
                   result_text=receipt.result_text)


# -- events ----------------------------------------------------------------------------------------

# The lists of a case that grow with its history (offers expiring and moving on,
# stop-payment hand-offs, the timeline): events leave them out (GetCase has
# them), so an event's size does not depend on how long the case has run.
EVENT_OMITS = ("timeline", "assignments", "stop_payments")


def case_event_pb(msg: pb.DispatchCase) -> pb.DispatchCase:
    """A case message as events carry it: without the lists above."""
    return without(msg, EVENT_OMITS)


def stamp(actor: AuthContext, at, reason: str = "") -> common_pb2.AuditStamp:
    return common_pb2.AuditStamp(actor=actor.subject, roles=sorted(actor.roles), time=to_pb(at), reason=reason)


def case_created_pb(e: domain.CaseCreated) -> pb.CaseCreated:
    """dispatch.CaseCreated: the new case; its timeline so far is the news, with the stop-payment
    hand-off queued with it, if any."""
    event = pb.CaseCreated(dispatch_case=case_event_pb(case_to_pb(e.case)))
    timeline_to_pb(list(e.entries), event.new_entries)
    if e.stop_payment is not None:
        event.stop_payment.CopyFrom(stop_payment_to_pb(e.stop_payment))
    return event


def case_updated_pb(e: domain.CaseUpdated) -> pb.CaseUpdated:
    """dispatch.CaseUpdated: the case as it now stands, what changed since before the change and the
    timeline entries the change appended."""
    after = case_event_pb(case_to_pb(e.case))
    event = pb.CaseUpdated(dispatch_case=after, action=e.action,
                           previous_level=enum_value(pb.CaseLevel, e.previous_level, "CASE_LEVEL_"),
                           changed_fields=changed_fields(case_event_pb(case_to_pb(e.before)), after))
    timeline_to_pb(list(e.new_entries), event.new_entries)
    if e.stop_payment is not None:
        event.stop_payment.CopyFrom(stop_payment_to_pb(e.stop_payment))
    return event


def assignment_changed_pb(e: domain.AssignmentChanged) -> pb.AssignmentChanged:
    a, case = e.assignment, e.case
    return pb.AssignmentChanged(
        assignment=assignment_to_pb(a, case), case_name=case.name, station_id=case.station_id,
        incident_type=case.incident_type, officers=officers_to_pb(a.officers, a.station_id), action=a.state,
        stamp=stamp(e.actor, e.time, e.reason),
        previous_state=enum_value(pb.AssignmentState, e.previous_state, "ASSIGNMENT_STATE_"),
        grid_id=case.grid_id, report_time=to_pb(case.report_time), priority=case.priority)


def event_to_message(event: domain.DomainEvent) -> tuple[str, str, object]:
    """A domain event as its outbox message: (event type, subject, payload)."""
    if isinstance(event, domain.AssignmentChanged):
        return "dispatch.AssignmentChanged", event.assignment.name, assignment_changed_pb(event)
    if isinstance(event, domain.CaseUpdated):
        return "dispatch.CaseUpdated", event.case.name, case_updated_pb(event)
    if isinstance(event, domain.CaseCreated):
        return "dispatch.CaseCreated", event.case.name, case_created_pb(event)
    if isinstance(event, domain.FollowUpFlagged):
        return "dispatch.FollowUpFlagged", event.case.name, pb.FollowUpFlagged(
            dispatch_case=case_event_pb(case_to_pb(event.case)), follow_up=follow_up_to_pb(event.follow_up),
            station_id=event.case.station_id)
    if isinstance(event, domain.UnitUpdated):
        message = pb.UnitUpdated(unit=unit_to_pb(event.unit), action=event.action,
                                 stamp=stamp(event.actor, event.time, event.reason))
        if event.shift is not None:
            message.shift.CopyFrom(shift_to_pb(event.shift))
        return "dispatch.UnitUpdated", event.unit.name, message
    raise TypeError(f"dispatch publishes no {type(event).__name__}")
