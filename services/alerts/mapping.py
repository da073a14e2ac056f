"""Domain rows <-> protobuf for alerts."""
from __future__ import annotations

from datetime import datetime

from google.protobuf import json_format

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.common.v1 import common_pb2

from services.runtime.audit import TimelineEntry, timeline_to_pb
from services.runtime.changes import changed_fields
from services.runtime.enums import enum_value
from services.runtime.timeutil import to_pb

from . import domain


def stamp(actor, roles, time, reason="") -> common_pb2.AuditStamp:
    return common_pb2.AuditStamp(actor=actor or "", roles=list(roles or []), time=to_pb(time), reason=reason or "")


def rule_from_row(head, ver) -> pb.Rule:
    rule = json_format.ParseDict(ver.spec, pb.Rule(), ignore_unknown_fields=True)
    rule.name = f"rules/{head.id}"
    rule.version = ver.version
    rule.version_stamp.CopyFrom(stamp(ver.actor, ver.roles, ver.time, ver.reason))
    rule.create_time.CopyFrom(to_pb(head.create_time))
    rule.update_time.CopyFrom(to_pb(ver.time))
    if head.delete_time is not None and ver.version == head.version:
        rule.delete_time.CopyFrom(to_pb(head.delete_time))
    return rule


def alert_to_pb(row, notes, timeline) -> pb.Alert:
    msg = pb.Alert(
        name=f"alerts/{row.id}", fingerprint=row.fingerprint, group_key=row.group_key,
        kind=enum_value(pb.RuleKind, row.kind, "RULE_KIND_"),
        level=enum_value(pb.AlertLevel, row.level, "ALERT_LEVEL_"),
        state=enum_value(pb.AlertState, row.state, "ALERT_STATE_"),
        rule=f"rules/{row.rule_id}", rule_version=row.rule_version,
        area=pb.Area(kind=enum_value(pb.AreaKind, row.area_kind, "AREA_KIND_"), id=row.area_id,
                     display_name=row.area_name, station_id=row.station_id, grid_id=row.grid_id),
        subject=row.subject, related_subjects=list(row.related_subjects), summary=row.summary,
        suggested_action=row.suggested_action, recipients=list(row.recipients),
        first_seen_time=to_pb(row.first_seen_time), last_seen_time=to_pb(row.last_seen_time), count=row.count,
        escalation_level=row.escalation_level, labels={k: str(v) for k, v in (row.labels or {}).items()},
        silence=f"silences/{row.silence_id}" if row.silence_id else "", update_time=to_pb(row.update_time),
        hot_cells=list(row.hot_cells), cold_cells=list(row.cold_cells),
    )
    if row.center_lon is not None:
        msg.area.center.CopyFrom(common_pb2.GeoPoint(longitude=row.center_lon, latitude=row.center_lat))
    if row.ack_time is not None:
        msg.acknowledge_stamp.CopyFrom(stamp(row.ack_actor, row.ack_roles, row.ack_time, row.ack_reason))
    if row.resolve_time is not None:
        msg.resolve_stamp.CopyFrom(stamp(row.resolve_actor, row.resolve_roles, row.resolve_time, row.resolve_reason))
    for n in notes:
        msg.notifications.add(
            channel=enum_value(pb.NotificationChannel, n.channel, "NOTIFICATION_CHANNEL_"), recipient=n.recipient,
            send_time=to_pb(n.send_time), escalation_level=n.escalation_level, delivered=n.delivered, error=n.error)
    timeline_to_pb(timeline, msg.timeline)
    return msg


def alert_event_pb(row) -> pb.Alert:
    """The alert as events carry it, from its row alone: its current state without its notifications
    and timeline, which grow with its history (an alert repeating all day); GetAlert has them."""
    return alert_to_pb(row, notes=[], timeline=[])


def alert_fired_pb(row, new_entries: list[TimelineEntry]) -> pb.AlertFired:
    msg = pb.AlertFired(alert=alert_event_pb(row))
    timeline_to_pb(new_entries, msg.new_entries)
    return msg


def alert_updated_pb(row, action: str, *, before, new_entries: list[TimelineEntry]) -> pb.AlertUpdated:
    """alerts.AlertUpdated: the alert as it now stands (`row`), what changed since `before` (its row
    read before the change) and the timeline entries the change appended."""
    after = alert_event_pb(row)
    msg = pb.AlertUpdated(alert=after, action=action, changed_fields=changed_fields(alert_event_pb(before), after))
    timeline_to_pb(new_entries, msg.new_entries)
    return msg


def silence_to_pb(row, now: datetime) -> pb.Silence:
    msg = pb.Silence(
        name=f"silences/{row.id}",
        matchers=[pb.Matcher(label=m["label"], value=m["value"],
                             operator=enum_value(pb.MatcherOperator, m.get("operator", "EQUAL"), "MATCHER_OPERATOR_"))
                  for m in row.matchers],
        start_time=to_pb(row.start_time), expire_time=to_pb(row.expire_time), reason=row.reason,
        creator=row.creator, create_time=to_pb(row.create_time),
        state=enum_value(pb.SilenceState, domain.silence_state(row.start_time, row.expire_time, row.expired_time, now),
                         "SILENCE_STATE_"),
    )
    if row.expired_time is not None:
        msg.expire_stamp.CopyFrom(stamp(row.expire_actor, row.expire_roles, row.expired_time, row.expire_reason))
    return msg


def obligation_to_pb(row, now: datetime) -> pb.Obligation:
    state = row.state if row.state != "PENDING" else domain.obligation_state(row.due_time, False, False, now)
    msg = pb.Obligation(
        name=f"obligations/{row.id}", kind=row.kind, subject=row.subject, station_id=row.station_id,
        description=row.description, due_time=to_pb(row.due_time),
        state=enum_value(pb.ObligationState, state, "OBLIGATION_STATE_"),
        create_time=to_pb(row.create_time), update_time=to_pb(row.update_time),
    )
    if row.period_s:
        msg.period.FromSeconds(int(row.period_s))
    if row.complete_time is not None:
        msg.complete_stamp.CopyFrom(stamp(row.complete_actor, row.complete_roles, row.complete_time,
                                          row.complete_reason))
    return msg


def cap_of(alert: pb.Alert) -> domain.CapInput:
    from services.runtime.timeutil import from_pb

    level = pb.AlertLevel.Name(alert.level).removeprefix("ALERT_LEVEL_")
    center = (alert.area.center.longitude, alert.area.center.latitude) if alert.area.HasField("center") else None
    return domain.CapInput(
        identifier=f"smart110-{alert.name.replace('/', '-')}-{alert.count}",
        kind=pb.RuleKind.Name(alert.kind).removeprefix("RULE_KIND_"), level=level,
        state=pb.AlertState.Name(alert.state).removeprefix("ALERT_STATE_"),
        sent=from_pb(alert.update_time), summary=alert.summary, suggested_action=alert.suggested_action,
        area_desc=alert.area.display_name, station_id=alert.area.station_id,
        area_kind=pb.AreaKind.Name(alert.area.kind).removeprefix("AREA_KIND_").replace("UNSPECIFIED", ""),
        area_id=alert.area.id, center=center, rule=alert.rule, count=alert.count,
    )
