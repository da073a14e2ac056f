"""Protobuf <-> alerts domain: API messages, other services' event payloads, a signal's stored
body (the Signal message), and the domain event -> outbox message mapping the unit of work
publishes with. (A rule version's stored spec, protobuf's JSON form, is domain.rule_spec.)"""
from __future__ import annotations

from datetime import datetime, timezone

from google.api import httpbody_pb2
from google.protobuf import duration_pb2

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from smart110.scoring.v1 import scoring_service_pb2 as scoring_pb

from services.runtime.audit import timeline_to_pb
from services.runtime.changes import changed_fields
from services.runtime.enums import enum_name, enum_value
from services.runtime.model import DomainEvent
from services.runtime.timeutil import from_pb, to_pb

from . import domain
from .domain import Alert, AlertChanged, KeywordTerm, Obligation, Rule, Signal, Silence, Stamp


def _name(enum, value: int, prefix: str) -> str:
    """An enum number as its plain name; a number no name stands for as its digits (kept, so that
    validation refuses it and a stored value reads back as it was)."""
    try:
        return enum_name(enum, value, prefix)
    except ValueError:
        return str(value)


def _value(enum, name: str, prefix: str) -> int:
    return int(name) if name.isdigit() else enum_value(enum, name, prefix)


def kind_name(value: int) -> str:
    return enum_name(pb.RuleKind, value, "RULE_KIND_")


def level_name(value: int) -> str:
    return enum_name(pb.AlertLevel, value, "ALERT_LEVEL_")


def state_name(value: int) -> str:
    return enum_name(pb.AlertState, value, "ALERT_STATE_")


def silence_state_name(value: int) -> str:
    return enum_name(pb.SilenceState, value, "SILENCE_STATE_")


def obligation_state_name(value: int) -> str:
    return enum_name(pb.ObligationState, value, "OBLIGATION_STATE_")


def seconds(duration: duration_pb2.Duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def _duration(value: float) -> duration_pb2.Duration:
    whole = int(value)
    return duration_pb2.Duration(seconds=whole, nanos=round((value - whole) * 1e9))


def stamp(s: Stamp | None) -> common_pb2.AuditStamp | None:
    if s is None:
        return None
    return common_pb2.AuditStamp(actor=s.actor or "", roles=list(s.roles or []), time=to_pb(s.time),
                                 reason=s.reason or "")


# -- rules ----------------------------------------------------------------------

def rule_from_pb(msg: pb.Rule) -> Rule:
    """A rule's content (what a client writes); the server's fields are not read."""
    return Rule(
        display_name=msg.display_name, kind=_name(pb.RuleKind, msg.kind, "RULE_KIND_"), enabled=msg.enabled,
        level=_name(pb.AlertLevel, msg.level, "ALERT_LEVEL_"), description=msg.description,
        terms=[KeywordTerm(t.term, _name(pb.AlertLevel, t.grade, "ALERT_LEVEL_"), list(t.exclusions))
               for t in msg.terms],
        window=seconds(msg.window) if msg.HasField("window") else None, threshold=msg.threshold,
        area_kind=_name(pb.AreaKind, msg.area_kind, "AREA_KIND_"), h3_resolution=msg.h3_resolution,
        areas=list(msg.areas), incident_types=list(msg.incident_types), signal_types=list(msg.signal_types),
        parameters=dict(msg.parameters), suggested_action=msg.suggested_action, recipients=list(msg.recipients),
        escalate_after=seconds(msg.escalate_after) if msg.HasField("escalate_after") else None,
    )


def _rule_content(rule: Rule) -> pb.Rule:
    msg = pb.Rule(
        display_name=rule.display_name, kind=_value(pb.RuleKind, rule.kind, "RULE_KIND_"), enabled=rule.enabled,
        level=_value(pb.AlertLevel, rule.level, "ALERT_LEVEL_"), description=rule.description,
        terms=[pb.KeywordTerm(term=t.term, grade=_value(pb.AlertLevel, t.grade, "ALERT_LEVEL_"),
                              exclusions=t.exclusions) for t in rule.terms],
        threshold=rule.threshold, area_kind=_value(pb.AreaKind, rule.area_kind, "AREA_KIND_"),
        h3_resolution=rule.h3_resolution, areas=rule.areas, incident_types=rule.incident_types,
        signal_types=rule.signal_types, parameters=rule.parameters, suggested_action=rule.suggested_action,
        recipients=rule.recipients,
    )
    if rule.window is not None:
        msg.window.CopyFrom(_duration(rule.window))
    if rule.escalate_after is not None:
        msg.escalate_after.CopyFrom(_duration(rule.escalate_after))
    return msg


def rule_to_pb(rule: Rule) -> pb.Rule:
    msg = _rule_content(rule)
    msg.name = rule.name
    msg.version = rule.version
    if rule.version_stamp is not None:
        msg.version_stamp.CopyFrom(stamp(rule.version_stamp))
    if rule.create_time is not None:
        msg.create_time.CopyFrom(to_pb(rule.create_time))
    if rule.update_time is not None:
        msg.update_time.CopyFrom(to_pb(rule.update_time))
    if rule.delete_time is not None:
        msg.delete_time.CopyFrom(to_pb(rule.delete_time))
    return msg


# -- alerts ---------------------------------------------------------------------

def alert_event_pb(alert: Alert) -> pb.Alert:
    """The alert as events carry it: its current state without its notifications and timeline,
    which grow with its history (an alert repeating all day); GetAlert has them."""
    area = alert.area
    msg = pb.Alert(
        name=alert.name, fingerprint=alert.fingerprint, group_key=alert.group_key,
        kind=enum_value(pb.RuleKind, alert.kind, "RULE_KIND_"),
        level=enum_value(pb.AlertLevel, alert.level, "ALERT_LEVEL_"),
        state=enum_value(pb.AlertState, alert.state, "ALERT_STATE_"),
        rule=f"rules/{alert.rule_id}", rule_version=alert.rule_version,
        area=pb.Area(kind=enum_value(pb.AreaKind, area.kind, "AREA_KIND_"), id=area.id, display_name=area.name,
                     station_id=area.station_id, grid_id=area.grid_id, shared_station_ids=area.shared_station_ids),
        subject=alert.subject, related_subjects=list(alert.related_subjects), summary=alert.summary,
        suggested_action=alert.suggested_action, recipients=list(alert.recipients),
        first_seen_time=to_pb(alert.first_seen_time), last_seen_time=to_pb(alert.last_seen_time), count=alert.count,
        escalation_level=alert.escalation_level, labels={k: str(v) for k, v in (alert.labels or {}).items()},
        silence=f"silences/{alert.silence_id}" if alert.silence_id else "", update_time=to_pb(alert.update_time),
        hot_cells=list(alert.hot_cells), cold_cells=list(alert.cold_cells),
    )
    if area.center is not None:
        msg.area.center.CopyFrom(common_pb2.GeoPoint(longitude=area.center[0], latitude=area.center[1]))
    if alert.acknowledged is not None:
        msg.acknowledge_stamp.CopyFrom(stamp(alert.acknowledged))
    if alert.resolved is not None:
        msg.resolve_stamp.CopyFrom(stamp(alert.resolved))
    return msg


def alert_to_pb(alert: Alert) -> pb.Alert:
    """The whole alert, with its notifications and timeline as loaded."""
    msg = alert_event_pb(alert)
    for n in alert.notifications:
        msg.notifications.add(
            channel=enum_value(pb.NotificationChannel, n.channel, "NOTIFICATION_CHANNEL_"), recipient=n.recipient,
            send_time=to_pb(n.send_time), escalation_level=n.escalation_level, delivered=n.delivered, error=n.error)
    timeline_to_pb(alert.timeline, msg.timeline)
    for d in alert.deliveries:
        item = msg.deliveries.add(
            receiver=d.receiver, kind=enum_value(pb.DeliveryKind, d.kind, "DELIVERY_KIND_"),
            target=mask_target(d.kind, d.target), status=d.status,
            state=enum_value(pb.DeliveryState, d.state, "DELIVERY_STATE_"), attempts=d.attempts,
            last_error=d.last_error, create_time=to_pb(d.create_time), inhibited_by=d.inhibited_by)
        for name in ("last_attempt_time", "next_attempt_time", "delivered_time"):
            if getattr(d, name) is not None:
                getattr(item, name).CopyFrom(to_pb(getattr(d, name)))
    return msg


def mask_target(kind: str, target: str) -> str:
    """A phone number with its middle digits masked (8613912345678 -> 86139****5678); a URL as it is."""
    if kind != "SMS" or len(target) < 8:
        return target
    return target[:-8] + "****" + target[-4:]


def alert_facets(alert: pb.Alert) -> tuple[str, str, str, str]:
    """What a subscription filters a pushed alert on: (station, grid, level, kind)."""
    return alert.area.station_id, alert.area.grid_id, level_name(alert.level), kind_name(alert.kind)


def area_center(area: pb.Area) -> tuple[float, float] | None:
    """A pushed alert's area centre (lon, lat), None when it has none."""
    return (area.center.longitude, area.center.latitude) if area.HasField("center") else None


def event_to_message(event: DomainEvent) -> tuple[str, str, pb.AlertFired | pb.AlertUpdated]:
    """An alert's change as the event on the alerts feed: "alerts.AlertFired" (the alert and the
    entries recorded with it) or "alerts.AlertUpdated" (the alert as it now stands, the paths of the
    fields the change set and the entries it appended); neither carries notifications or timeline."""
    if not isinstance(event, AlertChanged):
        raise TypeError(f"alerts publishes no {type(event).__name__}")
    alert = alert_event_pb(event.alert)
    if event.action == "FIRED":
        fired = pb.AlertFired(alert=alert)
        timeline_to_pb(list(event.new_entries), fired.new_entries)
        return "alerts.AlertFired", alert.name, fired
    before = alert_event_pb(event.before) if event.before is not None else pb.Alert()
    updated = pb.AlertUpdated(alert=alert, action=event.action, changed_fields=changed_fields(before, alert))
    timeline_to_pb(list(event.new_entries), updated.new_entries)
    return "alerts.AlertUpdated", alert.name, updated


def cap_document(alert: Alert, sender: domain.CapSender) -> pb.CapDocument:
    cap = domain.cap_input(alert)
    return pb.CapDocument(identifier=cap.identifier, xml=domain.cap_xml(cap, sender))


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


def cap_message_body(alert: Alert, sender: domain.CapSender) -> httpbody_pb2.HttpBody:
    """The alert's CAP message as a CAP receiver fetches it (application/cap+xml)."""
    xml = domain.cap_xml(domain.cap_input(alert), sender)
    return httpbody_pb2.HttpBody(content_type="application/cap+xml; charset=utf-8",
                                 data=(XML_DECLARATION + xml).encode())


def cap_feed_body(alerts: list[Alert], sender: domain.CapSender, *, scope: str, updated) -> httpbody_pb2.HttpBody:
    """The alerts in force as an ATOM feed of CAP messages (application/atom+xml)."""
    xml = domain.cap_feed(alerts, sender=sender, feed_id=f"urn:smart110:alerts:cap:{scope}",
                          title=f"{sender.name}在发预警（{scope}）", updated=updated,
                          link_of=lambda a: f"/v1/{a.name}:exportCap")
    return httpbody_pb2.HttpBody(content_type="application/atom+xml; charset=utf-8",
                                 data=(XML_DECLARATION + xml).encode())


# -- silences ---------------------------------------------------------------------

def matchers_from_pb(matchers) -> list[domain.Matcher]:
    return [domain.Matcher(m.label, m.value, enum_name(pb.MatcherOperator, m.operator, "MATCHER_OPERATOR_") or "EQUAL")
            for m in matchers]


def silence_to_pb(s: Silence, now: datetime) -> pb.Silence:
    msg = pb.Silence(
        name=s.name,
        matchers=[pb.Matcher(label=m.label, value=m.value,
                             operator=enum_value(pb.MatcherOperator, m.operator, "MATCHER_OPERATOR_"))
                  for m in s.matchers],
        start_time=to_pb(s.start_time), expire_time=to_pb(s.expire_time), reason=s.reason, creator=s.creator,
        create_time=to_pb(s.create_time), state=enum_value(pb.SilenceState, s.state(now), "SILENCE_STATE_"),
    )
    if s.expired is not None:
        msg.expire_stamp.CopyFrom(stamp(s.expired))
    return msg


# -- obligations ------------------------------------------------------------------

def obligation_to_pb(o: Obligation, now: datetime) -> pb.Obligation:
    msg = pb.Obligation(
        name=o.name, kind=o.kind, subject=o.subject, station_id=o.station_id, description=o.description,
        due_time=to_pb(o.due_time), state=enum_value(pb.ObligationState, o.state_at(now), "OBLIGATION_STATE_"),
        create_time=to_pb(o.create_time), update_time=to_pb(o.update_time),
    )
    if o.period_s:
        msg.period.FromSeconds(int(o.period_s))
    if o.completed is not None:
        msg.complete_stamp.CopyFrom(stamp(o.completed))
    return msg


def assignment_from_pb(changed: dispatch_pb.AssignmentChanged) -> domain.Assignment:
    a = changed.assignment
    return domain.Assignment(
        name=a.name, unit=a.unit, state=enum_name(dispatch_pb.AssignmentState, a.state, "ASSIGNMENT_STATE_"),
        station_id=changed.station_id, case_name=changed.case_name, incident_type=changed.incident_type,
        accept_time=from_pb(a.accept_time), clear_time=from_pb(a.clear_time))


def case_from_pb(changed: dispatch_pb.CaseUpdated) -> domain.Case:
    c = changed.dispatch_case
    return domain.Case(
        name=c.name, station_id=c.station_id, status=enum_name(dispatch_pb.CaseStatus, c.status, "CASE_STATUS_"),
        level=enum_name(dispatch_pb.CaseLevel, c.level, "CASE_LEVEL_"), incident_type=c.incident_type,
        accepted=c.HasField("accept_time"), offers_stopped=c.HasField("offers_exhausted_time"))


def work_order_from_pb(order: referral_pb.WorkOrder) -> domain.WorkOrder:
    return domain.WorkOrder(
        name=order.name, status=enum_name(referral_pb.WorkOrderStatus, order.status, "WORK_ORDER_STATUS_"),
        description=order.description, deadline=from_pb(order.deadline),
        preliminary_station=order.preliminary_station, report=order.report)


# -- reports, signals, warnings ------------------------------------------------------

def report_from_pb(report: intake_pb.Report) -> domain.Report:
    has_point = report.HasField("location") and report.location.HasField("point")
    return domain.Report(
        name=report.name, description=report.description, station_id=report.station_id, grid_id=report.grid_id,
        category=enum_name(intake_pb.Category, report.classification.category, "CATEGORY_"),
        incident_type=report.classification.incident_type, merged_into=report.merged_into,
        receive_time=from_pb(report.receive_time),
        point=(report.location.point.longitude, report.location.point.latitude) if has_point else None,
        address_text=report.address_text, shared_station_ids=tuple(report.shared_station_ids))


def warning_from_pb(warning: scoring_pb.EnforcementWarning) -> domain.EnforcementWarning:
    return domain.EnforcementWarning(name=warning.name, officer_id=warning.officer_id,
                                     station_id=warning.station_id, case_name=warning.case_name,
                                     detail=warning.detail)


def signal_from_pb(msg: pb.Signal) -> Signal:
    place = None
    if msg.HasField("location"):
        loc = msg.location
        place = domain.Place(
            point=(loc.point.longitude, loc.point.latitude) if loc.HasField("point") else None,
            accuracy_m=loc.accuracy_m, source=_name(common_pb2.LocationSource, loc.source, "LOCATION_SOURCE_"))
    return Signal(
        source=msg.source, signal_type=msg.signal_type, name=msg.name, external_id=msg.external_id, location=place,
        address_text=msg.address_text, person_masked=msg.person_masked, risk_score=msg.risk_score,
        description=msg.description, attributes=dict(msg.attributes),
        observe_time=_time(msg.observe_time) if msg.HasField("observe_time") else None,
        receive_time=_time(msg.receive_time) if msg.HasField("receive_time") else None,
        alerts=list(msg.alerts), station_id=msg.station_id)


def _time(ts) -> datetime:
    return ts.ToDatetime(tzinfo=timezone.utc)


def signal_to_pb(s: Signal) -> pb.Signal:
    msg = pb.Signal(
        name=s.name, source=s.source, signal_type=s.signal_type, external_id=s.external_id,
        address_text=s.address_text, person_masked=s.person_masked, risk_score=s.risk_score,
        description=s.description, attributes=s.attributes, alerts=s.alerts, station_id=s.station_id)
    if s.location is not None:
        msg.location.SetInParent()
        if s.location.point is not None:
            msg.location.point.CopyFrom(common_pb2.GeoPoint(longitude=s.location.point[0],
                                                            latitude=s.location.point[1]))
        msg.location.accuracy_m = s.location.accuracy_m
        msg.location.source = _value(common_pb2.LocationSource, s.location.source, "LOCATION_SOURCE_")
    if s.observe_time is not None:
        msg.observe_time.CopyFrom(to_pb(s.observe_time))
    if s.receive_time is not None:
        msg.receive_time.CopyFrom(to_pb(s.receive_time))
    return msg


def signal_body(s: Signal) -> bytes:
    """A signal as stored: the Signal message."""
    return signal_to_pb(s).SerializeToString()


def signal_from_body(body: bytes) -> Signal:
    return signal_from_pb(pb.Signal.FromString(body))


# -- the heat map -----------------------------------------------------------------

def box_from_pb(box: common_pb2.BoundingBox) -> domain.Box:
    return domain.Box(west=box.south_west.longitude, south=box.south_west.latitude,
                      east=box.north_east.longitude, north=box.north_east.latitude)


def heat_map_to_pb(resolution: int, start: datetime, end: datetime, cells: list[domain.HeatCell],
                   computed: datetime) -> pb.HeatMap:
    return pb.HeatMap(
        resolution=resolution, start_time=to_pb(start), end_time=to_pb(end), compute_time=to_pb(computed),
        cells=[pb.HeatMapCell(cell=c.cell, center=common_pb2.GeoPoint(longitude=c.center[0], latitude=c.center[1]),
                              incident_count=c.incident_count, available_units=c.available_units, gap=c.gap,
                              station_id=c.station_id) for c in cells])
