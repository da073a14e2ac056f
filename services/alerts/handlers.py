"""Alerts use cases: one function each, run inside the caller's transaction,
every state change with its timeline entry and its outbox event.

Every function takes the time as `now` (an injected clock): the consumers
and the sweeper pass the wall clock, the tests pass virtual times.
"""
from __future__ import annotations

import logging
import threading
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from google.protobuf import json_format
from sqlalchemy import and_, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb

from services.runtime.audit import TimelineEntry
from services.runtime.enums import enum_name
from services.runtime.errors import Aborted, FailedPrecondition, NotFound, Unavailable
from services.runtime.outbox import Outbox
from services.runtime.timeutil import from_pb

from . import domain
from .domain import KeywordMatcher, TermSpec
from .mapping import alert_fired_pb, alert_to_pb, alert_updated_pb, rule_from_row
from .store import (
    alert_timeline, alerts, hourly_counts, incidents, notifications, obligations, rule_versions, rules, signals,
    silences,
)

log = logging.getLogger("smart110.alerts")


@dataclass(frozen=True)
class Actor:
    subject: str
    roles: tuple[str, ...] = ()


SYSTEM = Actor("alerts", ("service",))


def kind_name(value: int) -> str:
    return enum_name(pb.RuleKind, value, "RULE_KIND_")


def level_name(value: int) -> str:
    return enum_name(pb.AlertLevel, value, "ALERT_LEVEL_")


def area_kind_name(value: int) -> str:
    return enum_name(pb.AreaKind, value, "AREA_KIND_")


def seconds(duration) -> float:
    return duration.seconds + duration.nanos / 1e9


def new_id(prefix: str, now: datetime) -> str:
    return f"{prefix}{now:%Y%m%d}-{uuid.uuid4().hex[:12]}"


# -- rules ----------------------------------------------------------------------

def rule_spec(rule: pb.Rule) -> dict:
    """The stored content of a rule version: the message without what the server sets."""
    copy = pb.Rule()
    copy.CopyFrom(rule)
    for f in ("name", "version", "version_stamp", "create_time", "update_time", "delete_time"):
        copy.ClearField(f)
    return json_format.MessageToDict(copy, preserving_proto_field_name=True)


def _add_version(conn, rule_id: str, version: int, rule: pb.Rule, actor: Actor, now: datetime, reason: str) -> None:
    conn.execute(rule_versions.insert().values(
        rule_id=rule_id, version=version, spec=rule_spec(rule), actor=actor.subject, roles=list(actor.roles),
        time=now, reason=reason))


def create_rule(conn, *, rule: pb.Rule, actor: Actor, now: datetime, rule_id: str | None = None,
                reason: str = "") -> pb.Rule:
    rule_id = rule_id or f"r-{uuid.uuid4().hex[:12]}"
    conn.execute(rules.insert().values(id=rule_id, version=1, kind=kind_name(rule.kind), enabled=rule.enabled,
                                       create_time=now, update_time=now))
    _add_version(conn, rule_id, 1, rule, actor, now, reason or "新建规则")
    return get_rule(conn, rule_id)


def get_rule(conn, rule_id: str, version: int | None = None) -> pb.Rule:
    head = conn.execute(select(rules).where(rules.c.id == rule_id)).first()
    if head is None:
        raise NotFound(f"rules/{rule_id}")
    ver = conn.execute(select(rule_versions).where(
        rule_versions.c.rule_id == rule_id, rule_versions.c.version == (version or head.version))).first()
    if ver is None:
        raise NotFound(f"rules/{rule_id}@{version}")
    return rule_from_row(head, ver)


def apply_mask(rule: pb.Rule, patch: pb.Rule, paths: list[str]) -> pb.Rule:
    """The rule with the fields named in `paths` taken from `patch`."""
    out = pb.Rule()
    out.CopyFrom(rule)
    for path in paths:
        desc = patch.DESCRIPTOR.fields_by_name[path]
        out.ClearField(path)
        if path == "parameters":
            out.parameters.update(patch.parameters)
        elif desc.is_repeated:
            getattr(out, path).extend(getattr(patch, path))
        elif desc.message_type is not None:
            if patch.HasField(path):
                getattr(out, path).CopyFrom(getattr(patch, path))
        else:
            setattr(out, path, getattr(patch, path))
    return out


def update_rule(conn, *, rule_id: str, patch: pb.Rule, paths: list[str], expected_version: int, actor: Actor,
                now: datetime, reason: str) -> pb.Rule:
    head = conn.execute(select(rules).where(rules.c.id == rule_id).with_for_update()).first()
    if head is None:
        raise NotFound(f"rules/{rule_id}")
    if head.delete_time is not None:
        raise FailedPrecondition(f"rules/{rule_id} was deleted", reason="RULE_DELETED")
    if expected_version and expected_version != head.version:
        raise Aborted(f"rules/{rule_id} is at version {head.version}, not {expected_version}",
                      reason="VERSION_MISMATCH", metadata={"current_version": str(head.version)})
    current = apply_mask(get_rule(conn, rule_id), patch, paths)
    version = head.version + 1
    conn.execute(rules.update().where(rules.c.id == rule_id).values(
        version=version, enabled=current.enabled, update_time=now))
    _add_version(conn, rule_id, version, current, actor, now, reason or "修改规则")
    return get_rule(conn, rule_id)


def delete_rule(conn, *, rule_id: str, actor: Actor, now: datetime, reason: str) -> pb.Rule:
    head = conn.execute(select(rules).where(rules.c.id == rule_id).with_for_update()).first()
    if head is None:
        raise NotFound(f"rules/{rule_id}")
    if head.delete_time is not None:
        raise FailedPrecondition(f"rules/{rule_id} is already deleted", reason="RULE_DELETED")
    current = get_rule(conn, rule_id)
    current.enabled = False
    version = head.version + 1
    conn.execute(rules.update().where(rules.c.id == rule_id).values(
        version=version, enabled=False, update_time=now, delete_time=now))
    _add_version(conn, rule_id, version, current, actor, now, reason or "删除规则")
    return get_rule(conn, rule_id)


def active_rules(conn, kind: str | None = None) -> list[pb.Rule]:
    q = (select(rules, rule_versions)
         .join(rule_versions, and_(rule_versions.c.rule_id == rules.c.id, rule_versions.c.version == rules.c.version))
         .where(rules.c.enabled.is_(True), rules.c.delete_time.is_(None)).order_by(rules.c.id))
    if kind:
        q = q.where(rules.c.kind == kind)
    return [rule_from_row(row, row) for row in conn.execute(q)]


def rule_id_of(rule: pb.Rule) -> str:
    return rule.name.split("/", 1)[1]


class MatcherCache:
    """The rules in force and the keyword automaton, reloaded only when a rule changes."""

    def __init__(self):
        self._key = None
        self._matcher = KeywordMatcher([])
        self._rules: dict[str, pb.Rule] = {}
        self._by_kind: dict[str, list[pb.Rule]] = {}
        self._lock = threading.Lock()

    def _refresh(self, conn) -> None:
        # The revision of the rules: every create adds a row and every change (update, enable,
        # delete) adds one to a version, so (count, sum of versions) grows with each change.
        # Update times would not do: they come from the caller's clock, which need not move
        # forward (another replica's clock, an injected one).
        key = tuple(conn.execute(select(func.count(), func.coalesce(func.sum(rules.c.version), 0))).one())
        with self._lock:
            if key != self._key:
                by_kind: dict[str, list[pb.Rule]] = {}
                for r in active_rules(conn):
                    by_kind.setdefault(kind_name(r.kind), []).append(r)
                keyword_rules = by_kind.get("KEYWORD", [])
                self._matcher = build_matcher(keyword_rules)
                self._rules = {rule_id_of(r): r for r in keyword_rules}
                self._by_kind = by_kind
                self._key = key

    def get(self, conn) -> tuple[KeywordMatcher, dict[str, pb.Rule]]:
        self._refresh(conn)
        with self._lock:
            return self._matcher, self._rules

    def rules(self, conn, kind: str) -> list[pb.Rule]:
        """Enabled rules of a kind, as of the last refresh (call get() first in the same event)."""
        with self._lock:
            return list(self._by_kind.get(kind, []))


def build_matcher(keyword_rules: list[pb.Rule]) -> KeywordMatcher:
    specs = []
    for rule in keyword_rules:
        cues = domain.Cues.from_parameters(dict(rule.parameters))
        for t in rule.terms:
            specs.append(TermSpec(rule_id_of(rule), rule.version, t.term, level_name(t.grade) or level_name(rule.level),
                                  tuple(t.exclusions), cues))
    return KeywordMatcher(specs)


# -- alerts ---------------------------------------------------------------------

@dataclass
class AreaInfo:
    kind: str = ""
    id: str = ""
    name: str = ""
    station_id: str = ""
    grid_id: str = ""
    center: tuple[float, float] | None = None


@dataclass
class Finding:
    """A condition a rule found: raised as a new alert or folded into the open one."""

    rule: pb.Rule
    level: str
    key: tuple[str, ...]  # what makes the condition the same one
    area: AreaInfo
    subject: str
    summary: str
    labels: dict[str, str] = field(default_factory=dict)
    suggested_action: str = ""
    hot_cells: list[str] = field(default_factory=list)
    cold_cells: list[str] = field(default_factory=list)
    auto_resolve_time: datetime | None = None

    @property
    def kind(self) -> str:
        return kind_name(self.rule.kind)

    @property
    def fingerprint(self) -> str:
        return domain.fingerprint(rule_id_of(self.rule), *self.key)


def _timeline(conn, alert_id: str, action: str, detail: str, actor: Actor, now: datetime,
              reason: str = "") -> list[TimelineEntry]:
    """Appends one entry to the alert's timeline; returns it, in a list, for the change's event."""
    entries = [TimelineEntry(action, actor.subject, list(actor.roles), now, detail, reason)]
    alert_timeline.add(conn, alert_id, entries)
    return entries


def _notify(conn, alert_id: str, recipients: list[str], escalation_level: int, now: datetime) -> list[TimelineEntry]:
    rows = [dict(alert_id=alert_id, channel=domain.channel_for(r, escalation_level), recipient=r, send_time=now,
                 escalation_level=escalation_level, delivered=True) for r in recipients]
    if not rows:
        return []
    conn.execute(notifications.insert(), rows)
    detail = "；".join(f"{r['recipient']}（{r['channel']}）" for r in rows)
    return _timeline(conn, alert_id, "NOTIFIED", f"通知 {detail}", SYSTEM, now)


def load_alert(conn, alert_id: str) -> pb.Alert:
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"alerts/{alert_id}")
    notes = conn.execute(select(notifications).where(notifications.c.alert_id == alert_id)
                         .order_by(notifications.c.seq)).all()
    return alert_to_pb(row, notes, alert_timeline.of(conn, alert_id))


def _publish(conn, outbox: Outbox, alert_id: str, action: str, *, before, entries: list[TimelineEntry]) -> pb.Alert:
    """Publishes the change: alerts.AlertFired for a new alert (`before` None), else alerts.AlertUpdated
    with what changed since `before` (the alert's row read, locked, before the change). Returns the
    alert as the event carries it."""
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).one()
    if before is None:
        event = alert_fired_pb(row, entries)
        outbox.publish(conn, "alerts.AlertFired", event.alert.name, event)
    else:
        event = alert_updated_pb(row, action, before=before, new_entries=entries)
        outbox.publish(conn, "alerts.AlertUpdated", event.alert.name, event)
    return event.alert


def active_silences(conn, now: datetime) -> list:
    return conn.execute(select(silences).where(
        silences.c.start_time <= now, silences.c.expire_time > now,
        or_(silences.c.expired_time.is_(None), silences.c.expired_time > now)).order_by(silences.c.create_time)).all()


def matchers_of(row) -> list[domain.Matcher]:
    return [domain.Matcher(m["label"], m["value"], m.get("operator", "EQUAL")) for m in row.matchers]


def silence_for(conn, labels: dict[str, str], now: datetime):
    for s in active_silences(conn, now):
        if domain.silenced_by(matchers_of(s), labels):
            return s
    return None


def raise_alert(conn, outbox: Outbox, f: Finding, now: datetime) -> pb.Alert:
    """Raises the finding as a new alert, or folds it into the open alert with its fingerprint."""
    fp = f.fingerprint
    labels = {"kind": f.kind, "level": f.level, "rule": f.rule.name, "station_id": f.area.station_id,
              "grid_id": f.area.grid_id, "area": f.area.id, **f.labels}
    row = conn.execute(select(alerts).where(alerts.c.fingerprint == fp, alerts.c.state != "RESOLVED")
                       .with_for_update()).first()
    if row is None:
        alert_id = new_id("a", now)
        escalate_after = seconds(f.rule.escalate_after)
        recipients = domain.route(f.level, f.area.station_id, list(f.rule.recipients))
        inserted = conn.execute(insert(alerts).values(
            id=alert_id, fingerprint=fp, group_key=f"{f.kind}:{f.area.station_id or f.area.id or 'city'}",
            kind=f.kind, level=f.level, state="FIRING", rule_id=rule_id_of(f.rule), rule_version=f.rule.version,
            area_kind=f.area.kind, area_id=f.area.id, area_name=f.area.name,
            center_lon=f.area.center[0] if f.area.center else None,
            center_lat=f.area.center[1] if f.area.center else None,
            station_id=f.area.station_id, grid_id=f.area.grid_id, subject=f.subject, summary=f.summary,
            suggested_action=f.suggested_action or f.rule.suggested_action, recipients=recipients,
            first_seen_time=now, last_seen_time=now, count=1, escalate_after_s=escalate_after,
            auto_resolve_time=f.auto_resolve_time, labels=labels, hot_cells=f.hot_cells, cold_cells=f.cold_cells,
            update_time=now,
        ).on_conflict_do_nothing(index_elements=["fingerprint"], index_where=text("state <> 'RESOLVED'"))
            .returning(alerts.c.id)).first()
        if inserted is None:  # raised concurrently by another consumer: fold into it
            return raise_alert(conn, outbox, f, now)
        entries = _timeline(conn, alert_id, "FIRED", f"{domain.LEVEL_CN.get(f.level, '')}预警（规则 "
                                                     f"{f.rule.display_name} 第{f.rule.version}版）：{f.summary}",
                            SYSTEM, now)
        silence = silence_for(conn, labels, now)
        if silence is not None:
            conn.execute(alerts.update().where(alerts.c.id == alert_id).values(state="SILENCED",
                                                                               silence_id=silence.id))
            entries += _timeline(conn, alert_id, "SILENCED", f"静默 silences/{silence.id}：{silence.reason}", SYSTEM,
                                 now)
        else:
            entries += _notify(conn, alert_id, recipients, 0, now)
            if escalate_after > 0:
                conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
                    next_escalation_time=now + timedelta(seconds=escalate_after)))
        return _publish(conn, outbox, alert_id, "FIRED", before=None, entries=entries)

    related = list(row.related_subjects)
    if f.subject and f.subject != row.subject:
        related = list(dict.fromkeys([row.subject] + related))[:100] if row.subject else related
    level = domain.max_level(row.level, f.level)
    values = dict(count=row.count + 1, last_seen_time=now, subject=f.subject or row.subject,
                  related_subjects=related, summary=f.summary, level=level, rule_version=f.rule.version,
                  labels={**labels, "level": level}, update_time=now)
    if f.auto_resolve_time is not None:
        values["auto_resolve_time"] = f.auto_resolve_time
    if f.hot_cells:
        values.update(hot_cells=f.hot_cells, cold_cells=f.cold_cells)
    if f.suggested_action:
        values["suggested_action"] = f.suggested_action
    added = []
    if domain.level_rank(level) > domain.level_rank(row.level):
        added = [r for r in domain.route(level, row.station_id, list(f.rule.recipients)) if r not in row.recipients]
        values["recipients"] = list(row.recipients) + added
    conn.execute(alerts.update().where(alerts.c.id == row.id).values(**values))
    entries = _timeline(conn, row.id, "REPEATED", f"第{row.count + 1}次：{f.summary}", SYSTEM, now)
    if added and row.state == "FIRING":
        entries += _notify(conn, row.id, added, row.escalation_level, now)
    return _publish(conn, outbox, row.id, "UPDATED", before=row, entries=entries)


def _locked_alert(conn, alert_id: str):
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"alerts/{alert_id}")
    return row


def acknowledge(conn, outbox: Outbox, *, alert_id: str, actor: Actor, comment: str, now: datetime) -> pb.Alert:
    row = _locked_alert(conn, alert_id)
    if row.state not in ("FIRING", "SILENCED"):
        raise FailedPrecondition(f"alerts/{alert_id} is {row.state}, only a firing or silenced alert can be "
                                 "acknowledged", reason="ALERT_NOT_FIRING", metadata={"state": row.state})
    conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
        state="ACKNOWLEDGED", ack_actor=actor.subject, ack_roles=list(actor.roles), ack_time=now,
        ack_reason=comment, next_escalation_time=None, update_time=now))
    entries = _timeline(conn, alert_id, "ACKNOWLEDGED", "已签收，停止升级", actor, now, comment)
    _publish(conn, outbox, alert_id, "ACKNOWLEDGED", before=row, entries=entries)
    return load_alert(conn, alert_id)


def resolve(conn, outbox: Outbox, *, alert_id: str, actor: Actor, reason: str, now: datetime) -> pb.Alert:
    row = _locked_alert(conn, alert_id)
    if row.state == "RESOLVED":
        raise FailedPrecondition(f"alerts/{alert_id} is already resolved", reason="ALERT_RESOLVED")
    conn.execute(alerts.update().where(alerts.c.id == alert_id).values(
        state="RESOLVED", resolve_actor=actor.subject, resolve_roles=list(actor.roles), resolve_time=now,
        resolve_reason=reason, next_escalation_time=None, update_time=now))
    entries = _timeline(conn, alert_id, "RESOLVED", "预警解除", actor, now, reason)
    _publish(conn, outbox, alert_id, "RESOLVED", before=row, entries=entries)
    return load_alert(conn, alert_id)


# -- silences -------------------------------------------------------------------

def create_silence(conn, outbox: Outbox, *, matchers: list[dict], start: datetime, expire: datetime, reason: str,
                   actor: Actor, now: datetime) -> str:
    silence_id = new_id("s", now)
    conn.execute(silences.insert().values(id=silence_id, matchers=matchers, start_time=start, expire_time=expire,
                                          reason=reason, creator=actor.subject, create_time=now))
    if start <= now:
        _apply_silence(conn, outbox, silence_id, now)
    return silence_id


def _apply_silence(conn, outbox: Outbox, silence_id: str, now: datetime) -> int:
    s = conn.execute(select(silences).where(silences.c.id == silence_id).with_for_update()).one()
    ms = matchers_of(s)
    held = 0
    for row in conn.execute(select(alerts).where(alerts.c.state == "FIRING").with_for_update()).all():
        if domain.silenced_by(ms, dict(row.labels)):
            conn.execute(alerts.update().where(alerts.c.id == row.id).values(
                state="SILENCED", silence_id=silence_id, next_escalation_time=None, update_time=now))
            entries = _timeline(conn, row.id, "SILENCED", f"静默 silences/{silence_id}：{s.reason}", SYSTEM, now)
            _publish(conn, outbox, row.id, "SILENCED", before=row, entries=entries)
            held += 1
    conn.execute(silences.update().where(silences.c.id == silence_id).values(applied=True))
    return held


def expire_silence(conn, outbox: Outbox, *, silence_id: str, actor: Actor, reason: str, now: datetime):
    s = conn.execute(select(silences).where(silences.c.id == silence_id).with_for_update()).first()
    if s is None:
        raise NotFound(f"silences/{silence_id}")
    if domain.silence_state(s.start_time, s.expire_time, s.expired_time, now) == "EXPIRED":
        raise FailedPrecondition(f"silences/{silence_id} has already expired", reason="SILENCE_EXPIRED")
    conn.execute(silences.update().where(silences.c.id == silence_id).values(
        expired_time=now, expire_actor=actor.subject, expire_roles=list(actor.roles), expire_reason=reason))
    _release_silence(conn, outbox, silence_id, now)


def _release_silence(conn, outbox: Outbox, silence_id: str, now: datetime) -> int:
    """A silence ended: its alerts fire again (or move to another silence) and are notified now."""
    released = 0
    for row in conn.execute(select(alerts).where(alerts.c.silence_id == silence_id, alerts.c.state == "SILENCED")
                            .with_for_update()).all():
        other = silence_for(conn, dict(row.labels), now)
        if other is not None:
            conn.execute(alerts.update().where(alerts.c.id == row.id).values(silence_id=other.id, update_time=now))
            _timeline(conn, row.id, "SILENCED", f"静默 silences/{other.id}：{other.reason}", SYSTEM, now)
            continue
        nxt = now + timedelta(seconds=row.escalate_after_s) if row.escalate_after_s > 0 else None
        conn.execute(alerts.update().where(alerts.c.id == row.id).values(
            state="FIRING", silence_id="", next_escalation_time=nxt, update_time=now))
        entries = _timeline(conn, row.id, "UNSILENCED", f"静默 silences/{silence_id} 已结束", SYSTEM, now)
        entries += _notify(conn, row.id, list(row.recipients), row.escalation_level, now)
        _publish(conn, outbox, row.id, "UPDATED", before=row, entries=entries)
        released += 1
    conn.execute(silences.update().where(silences.c.id == silence_id).values(released=True))
    return released


# -- reports (intake feed) -------------------------------------------------------

# Available units as (lon, lat, station_id).
UnitsProvider = Callable[[], list[tuple]]


def _area_of(rule: pb.Rule, station: str, grid: str, cells: list[str]) -> AreaInfo | None:
    kind = area_kind_name(rule.area_kind) or "STATION"
    if kind == "STATION":
        return AreaInfo("STATION", station, f"{station}辖区", station, grid) if station else None
    if kind == "GRID":
        return AreaInfo("GRID", grid, f"网格{grid}", station, grid) if grid else None
    res = rule.h3_resolution or 8
    if not cells:
        return None
    cell = cells[res - 6]
    return AreaInfo("H3", cell, f"H3单元{cell}", station, grid, domain.cell_center(cell))


def _area_filter(area: AreaInfo, resolution: int):
    if area.kind == "STATION":
        return incidents.c.station_id == area.id
    if area.kind == "GRID":
        return incidents.c.grid_id == area.id
    return incidents.c.cells[resolution - 5] == area.id  # Postgres arrays count from 1


def _applies(rule: pb.Rule, incident_type: str, area: AreaInfo | None) -> bool:
    if area is None:
        return False
    if rule.incident_types and incident_type not in rule.incident_types:
        return False
    return not rule.areas or area.id in rule.areas


def _hour(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def _fmt_window(sec: float) -> str:
    if sec % 3600 == 0:
        return f"{int(sec // 3600)}小时"
    return f"{int(sec // 60)}分钟"


def on_report(conn, outbox: Outbox, *, report: intake_pb.Report, now: datetime, matchers: MatcherCache,
              units: UnitsProvider | None = None) -> list[pb.Alert]:
    """One report from the intake feed: recorded for windows and rollups, then every rule looks at it."""
    report_id = report.name.split("/", 1)[1]
    category = enum_name(intake_pb.Category, report.classification.category, "CATEGORY_")
    itype = report.classification.incident_type
    t = from_pb(report.receive_time) if report.HasField("receive_time") else now
    t = t or now
    has_point = report.HasField("location") and report.location.HasField("point")
    lon = report.location.point.longitude if has_point else None
    lat = report.location.point.latitude if has_point else None
    cells = domain.h3_cells(lon, lat)
    station, grid = report.station_id, report.grid_id
    fresh = conn.execute(insert(incidents).values(
        report_id=report_id, receive_time=t, station_id=station, grid_id=grid, category=category,
        incident_type=itype, merged_into=report.merged_into, lon=lon, lat=lat, cells=cells,
    ).on_conflict_do_nothing().returning(incidents.c.report_id)).first()
    if fresh is None:
        return []
    # A duplicate merged into its master incident (重复警情) is the same incident: it
    # still matches keywords (folding into the master's alert) but is not counted again.
    counted = category not in ("INVALID", "") and not report.merged_into
    if counted:
        _roll_up(conn, t, itype, station, grid, cells)
    findings: list[Finding] = []
    findings += _keyword_findings(conn, report, t, matchers)  # refreshes the rules in force
    if counted:
        for rule in matchers.rules(conn, "VOLUME"):
            f = _volume_finding(conn, rule, report, t, itype, station, grid, cells)
            if f:
                findings.append(f)
        for rule in matchers.rules(conn, "ANOMALY"):
            f = _anomaly_finding(conn, rule, report, t, itype, station, grid, cells)
            if f:
                findings.append(f)
    if counted and category == "POLICE" and cells:
        gap_rules = matchers.rules(conn, "STRENGTH_GAP")
        unit_points = []
        if gap_rules and units is not None:
            try:
                unit_points = units()
            except Unavailable:
                # Police strength unknown (dispatch never answered yet): the other rules must not wait on it.
                log.warning("police strength unavailable; strength-gap rules skipped for %s", report.name)
                gap_rules = []
        for rule in gap_rules:
            f = _gap_finding(conn, rule, report, t, itype, station, grid, cells, unit_points)
            if f:
                findings.append(f)
    return [raise_alert(conn, outbox, f, now) for f in findings]


def on_report_updated(conn, outbox: Outbox, *, report: intake_pb.Report, action: str, now: datetime,
                      matchers: MatcherCache) -> list[pb.Alert]:
    """A report changed at intake: merged or un-merged repeats stop or start counting in windows; a
    corrected text is matched again (a term it now contains raises, one already alerted on does not).

    Hourly rollups keep the report where it was first counted: history is what was known at the time.
    """
    report_id = report.name.split("/", 1)[1]
    if action in ("MERGED", "UNMERGED"):
        conn.execute(incidents.update().where(incidents.c.report_id == report_id)
                     .values(merged_into=report.merged_into))
        return []
    if action != "CORRECTED":
        return []
    conn.execute(incidents.update().where(incidents.c.report_id == report_id).values(
        category=enum_name(intake_pb.Category, report.classification.category, "CATEGORY_"),
        incident_type=report.classification.incident_type, station_id=report.station_id, grid_id=report.grid_id))
    t = from_pb(report.receive_time) or now
    raised = []
    for f in _keyword_findings(conn, report, t, matchers):
        known = conn.execute(select(alerts.c.id).where(
            alerts.c.fingerprint == f.fingerprint, alerts.c.state != "RESOLVED",
            or_(alerts.c.subject == report.name, alerts.c.related_subjects.any(report.name)))).first()
        if known is None:
            raised.append(raise_alert(conn, outbox, f, now))
    return raised


def _roll_up(conn, t: datetime, itype: str, station: str, grid: str, cells: list[str]) -> None:
    hour = _hour(t)
    keys = [("STATION", station), ("GRID", grid), ("H3", cells[2] if cells else "")]
    rows = [dict(area_kind=k, area_id=a, incident_type=ty, hour_start=hour, count=1)
            for k, a in keys if a for ty in dict.fromkeys(("", itype))]
    if rows:
        stmt = insert(hourly_counts).values(rows)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=["area_kind", "area_id", "incident_type", "hour_start"],
            set_={"count": hourly_counts.c.count + 1}))


def _keyword_findings(conn, report: intake_pb.Report, t: datetime, matchers: MatcherCache) -> list[Finding]:
    matcher, by_id = matchers.get(conn)
    text_ = report.description
    findings = []
    for rule_id, hits in domain.strongest_by_rule(matcher.match(text_)).items():
        rule = by_id[rule_id]
        area = (AreaInfo("GRID", report.grid_id, f"网格{report.grid_id}", report.station_id, report.grid_id)
                if report.grid_id else AreaInfo("STATION", report.station_id, f"{report.station_id}辖区",
                                                report.station_id))
        if rule.areas and area.id not in rule.areas and report.station_id not in rule.areas:
            continue
        if rule.incident_types and report.classification.incident_type not in rule.incident_types:
            continue
        top = hits[0]
        terms = list(dict.fromkeys(h.term for h in hits))
        level = domain.max_level(level_name(rule.level), top.spec.grade)
        if report.HasField("location") and report.location.HasField("point"):
            area.center = (report.location.point.longitude, report.location.point.latitude)
        where = report.address_text or area.name
        findings.append(Finding(
            rule=rule, level=level, key=("term", top.term, area.id or "city"), area=area, subject=report.name,
            summary=f"{where}接报涉“{'、'.join(terms)}”警情：{text_[:80]}",
            labels={"term": top.term, "incident_type": report.classification.incident_type},
            suggested_action=rule.suggested_action or "立即核实警情，按预案就近调派警力处置"))
    return findings


def _count_window(conn, rule: pb.Rule, area: AreaInfo, start: datetime, end: datetime) -> int:
    q = select(func.count()).select_from(incidents).where(
        incidents.c.receive_time > start, incidents.c.receive_time <= end,
        incidents.c.category.notin_(["INVALID", ""]), incidents.c.merged_into == "",
        _area_filter(area, rule.h3_resolution or 8))
    if rule.incident_types:
        q = q.where(incidents.c.incident_type.in_(list(rule.incident_types)))
    return conn.execute(q).scalar_one()


def _volume_finding(conn, rule, report, t, itype, station, grid, cells) -> Finding | None:
    area = _area_of(rule, station, grid, cells)
    if not _applies(rule, itype, area):
        return None
    window = seconds(rule.window)
    n = _count_window(conn, rule, area, t - timedelta(seconds=window), t)
    if n <= rule.threshold:
        return None
    kinds = "、".join(rule.incident_types) if rule.incident_types else "各类"
    return Finding(
        rule=rule, level=level_name(rule.level), key=(area.kind, area.id), area=area, subject=report.name,
        summary=f"{area.name}{_fmt_window(window)}内接报{kinds}警情{n}起，超过阈值{rule.threshold:g}起",
        labels={"incident_type": itype, "window_count": str(n)},
        auto_resolve_time=t + timedelta(seconds=window))


def _anomaly_finding(conn, rule, report, t, itype, station, grid, cells) -> Finding | None:
    area = _area_of(rule, station, grid, cells)
    if area is not None and area.kind == "H3":
        area = AreaInfo("H3", cells[2], f"H3单元{cells[2]}", station, grid, domain.cell_center(cells[2]))
    if not _applies(rule, itype, area):
        return None
    types = list(rule.incident_types) or [""]
    hour = _hour(t)
    weeks = int(rule.parameters.get("history_weeks", "4") or 4)
    min_count = int(rule.parameters.get("min_count", "5") or 5)
    history_hours = [hour - timedelta(weeks=k) for k in range(1, weeks + 1)]
    rows = conn.execute(select(hourly_counts.c.hour_start, func.sum(hourly_counts.c.count)).where(
        hourly_counts.c.area_kind == area.kind, hourly_counts.c.area_id == area.id,
        hourly_counts.c.incident_type.in_(types), hourly_counts.c.hour_start.in_([hour] + history_hours))
        .group_by(hourly_counts.c.hour_start)).all()
    counts = {h: int(n) for h, n in rows}
    current = counts.get(hour, 0)
    if current < min_count:
        return None
    # Only weeks since the area's first report count as history: a new system has none.
    first = conn.execute(select(func.min(hourly_counts.c.hour_start)).where(
        hourly_counts.c.area_kind == area.kind, hourly_counts.c.area_id == area.id)).scalar_one()
    history_hours = [h for h in history_hours if first is not None and h >= first]
    hit, mean, std = domain.anomaly(current, [counts.get(h, 0) for h in history_hours], rule.threshold, min_count)
    if not hit:
        return None
    return Finding(
        rule=rule, level=level_name(rule.level), key=(area.kind, area.id), area=area, subject=report.name,
        summary=(f"{area.name}{hour:%H}时接报警情{current}起，远高于近{len(history_hours)}周同时段均值"
                 f"{mean:.1f}起（标准差{std:.1f}）"),
        labels={"incident_type": itype, "hour_count": str(current)},
        auto_resolve_time=hour + timedelta(hours=2))


def _gap_finding(conn, rule, report, t, itype, station, grid, cells, unit_points) -> Finding | None:
    res = rule.h3_resolution or 8
    cell = cells[res - 6]
    area = AreaInfo("H3", cell, f"H3单元{cell}", station, grid, domain.cell_center(cell))
    if not _applies(rule, itype, area) and not (rule.areas and station in rule.areas):
        return None
    window = seconds(rule.window) or 3600
    ring = int(rule.parameters.get("ring", "1") or 1)
    cold_ring = int(rule.parameters.get("cold_ring", "3") or 3)
    disk = domain.h3.grid_disk(cell, cold_ring)
    col = incidents.c.cells[res - 5]
    q = (select(col, func.count()).where(
        incidents.c.receive_time > t - timedelta(seconds=window), incidents.c.receive_time <= t,
        incidents.c.category == "POLICE", incidents.c.merged_into == "", col.in_(disk)).group_by(col))
    if rule.incident_types:
        q = q.where(incidents.c.incident_type.in_(list(rule.incident_types)))
    counts = Counter({c: n for c, n in conn.execute(q)})
    unit_cells = Counter(domain.h3.latlng_to_cell(lat, lon, res) for lon, lat, *_ in unit_points)
    found = domain.strength_gap(cell, counts, unit_cells, threshold=rule.threshold or 2.0,
                                min_incidents=int(rule.parameters.get("min_incidents", "3") or 3),
                                ring=ring, cold_ring=cold_ring)
    if found is None:
        return None
    n_inc = sum(x[1] for x in found.hot)
    n_units = sum(unit_cells.get(c, 0) for c in domain.h3.grid_disk(cell, ring))
    hot_desc = "、".join(f"{c}（{i}起/{u}警力）" for c, i, u in found.hot[:3])
    if found.cold:
        cold_desc = "、".join(f"{c}（可用警力{u}个）" for c, _, u in found.cold[:3])
        action = f"警力跟着警情走：建议从冷区{cold_desc}抽调警力支援热区{found.hot[0][0]}"
    else:
        action = "周边无富余警力，建议请求上级调派增援"
    return Finding(
        rule=rule, level=level_name(rule.level), key=("H3", found.hot[0][0]), area=area, subject=report.name,
        summary=f"警力缺口：{_fmt_window(window)}内热区{hot_desc}，周边共警情{n_inc}起、可用警力{n_units}个",
        labels={"incident_type": itype}, suggested_action=action,
        hot_cells=[c for c, _, _ in found.hot], cold_cells=[c for c, _, _ in found.cold],
        auto_resolve_time=t + timedelta(seconds=window))


# -- partner signals, scoring warnings ---------------------------------------------

def ingest_signal(conn, outbox: Outbox, *, signal: pb.Signal, now: datetime) -> pb.Signal:
    """Stores a partner's signal and raises the alerts its EXTERNAL_SIGNAL rules call for.

    A repeat of the same (source, external_id) returns the signal first stored.
    """
    if signal.external_id:
        existing = conn.execute(select(signals).where(
            signals.c.source == signal.source, signals.c.external_id == signal.external_id)).first()
        if existing is not None:
            return _signal_pb(existing)
    signal_id = new_id("g", now)
    stored = pb.Signal()
    stored.CopyFrom(signal)
    stored.name = f"signals/{signal_id}"
    stored.receive_time.FromDatetime(now)
    inserted = conn.execute(insert(signals).values(
        id=signal_id, source=signal.source, signal_type=signal.signal_type, external_id=signal.external_id,
        station_id=signal.station_id, body=stored.SerializeToString(), receive_time=now,
    ).on_conflict_do_nothing(index_elements=["source", "external_id"], index_where=text("external_id <> ''"))
        .returning(signals.c.id)).first()
    if inserted is None:
        return ingest_signal(conn, outbox, signal=signal, now=now)
    raised = []
    for rule in active_rules(conn, "EXTERNAL_SIGNAL"):
        if rule.signal_types and signal.signal_type not in rule.signal_types:
            continue
        if signal.risk_score < rule.threshold:
            continue
        if rule.areas and signal.station_id not in rule.areas:
            continue
        center = None
        if signal.HasField("location") and signal.location.HasField("point"):
            center = (signal.location.point.longitude, signal.location.point.latitude)
        area = AreaInfo("STATION", signal.station_id, f"{signal.station_id}辖区", signal.station_id, "", center)
        person = signal.person_masked or signal.external_id or signal_id
        amount = signal.attributes.get("amount")
        what = signal.description or signal.signal_type
        alert = raise_alert(conn, outbox, Finding(
            rule=rule, level=level_name(rule.level), key=(signal.signal_type, signal.station_id, person), area=area,
            subject=stored.name,
            summary=(f"{signal.source}风险提示：{what}" + (f"（金额{amount}元）" if amount else "")
                     + f"，当事人{person}，住址{signal.address_text or '未知'}"),
            labels={"signal_type": signal.signal_type},
            suggested_action=rule.suggested_action or "属地派出所立即联系当事人核实，必要时上门劝阻（反诈止付）",
        ), now)
        raised.append(alert.name)
    if raised:
        stored.alerts.extend(raised)
        conn.execute(signals.update().where(signals.c.id == signal_id).values(
            alert_ids=raised, body=stored.SerializeToString()))
    return stored


def _signal_pb(row) -> pb.Signal:
    return pb.Signal.FromString(row.body)


def on_warning(conn, outbox: Outbox, *, warning, now: datetime) -> list[pb.Alert]:
    """An enforcement warning from scoring (执法预警) becomes an alert to the officer's station."""
    out = []
    for rule in active_rules(conn, "ENFORCEMENT"):
        if rule.areas and warning.station_id not in rule.areas:
            continue
        area = AreaInfo("STATION", warning.station_id, f"{warning.station_id}辖区", warning.station_id)
        out.append(raise_alert(conn, outbox, Finding(
            rule=rule, level=level_name(rule.level), key=("warning", warning.name), area=area,
            subject=warning.case_name or warning.name,
            summary=f"执法预警（民警{warning.officer_id}）：{warning.detail}",
            labels={"officer_id": warning.officer_id, "warning": warning.name},
        ), now))
    return out


# -- obligations ----------------------------------------------------------------

def create_obligation(conn, *, kind: str, subject: str, station_id: str, description: str, due: datetime,
                      period_s: float, now: datetime) -> str:
    obligation_id = new_id("o", now)
    conn.execute(obligations.insert().values(
        id=obligation_id, kind=kind, subject=subject, station_id=station_id, description=description,
        due_time=due, period_s=period_s, state="PENDING", create_time=now, update_time=now))
    return obligation_id


def upsert_obligation(conn, outbox: Outbox, *, kind: str, subject: str, station_id: str, description: str,
                      due: datetime, now: datetime) -> str:
    """An obligation another service's event implies (回告 after an assignment, a work order's deadline)."""
    row = conn.execute(select(obligations).where(obligations.c.kind == kind, obligations.c.subject == subject)
                       .with_for_update()).first()
    if row is None:
        return create_obligation(conn, kind=kind, subject=subject, station_id=station_id, description=description,
                                 due=due, period_s=0, now=now)
    if row.state == "PENDING" and row.due_time != due:
        conn.execute(obligations.update().where(obligations.c.id == row.id).values(
            due_time=due, warned="", description=description, update_time=now))
    return row.id


def close_obligation(conn, outbox: Outbox, *, obligation_id: str, state: str, actor: Actor, reason: str,
                     now: datetime) -> None:
    """Done or cancelled; a recurring one done comes due again one period later. Its alerts resolve."""
    row = conn.execute(select(obligations).where(obligations.c.id == obligation_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"obligations/{obligation_id}")
    if row.state != "PENDING":
        raise FailedPrecondition(f"obligations/{obligation_id} is {row.state}", reason="OBLIGATION_CLOSED",
                                 metadata={"state": row.state})
    values = dict(complete_actor=actor.subject, complete_roles=list(actor.roles), complete_time=now,
                  complete_reason=reason, update_time=now, warned="")
    if state == "DONE" and row.period_s > 0:
        values["due_time"] = now + timedelta(seconds=row.period_s)
    else:
        values["state"] = state
    conn.execute(obligations.update().where(obligations.c.id == obligation_id).values(**values))
    for a in conn.execute(select(alerts.c.id).where(alerts.c.subject == f"obligations/{obligation_id}",
                                                    alerts.c.state != "RESOLVED")).all():
        resolve(conn, outbox, alert_id=a.id, actor=actor, reason=reason or "事项已完成", now=now)


def close_obligation_by_subject(conn, outbox: Outbox, *, kind: str, subject: str, state: str, reason: str,
                                now: datetime) -> None:
    row = conn.execute(select(obligations.c.id).where(
        obligations.c.kind == kind, obligations.c.subject == subject, obligations.c.state == "PENDING")).first()
    if row is not None:
        close_obligation(conn, outbox, obligation_id=row.id, state=state, actor=SYSTEM, reason=reason, now=now)


REPORT_BACK_SECONDS = 2 * 3600
OPEN_ASSIGNMENT_STATES = ("ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED")


def on_assignment_changed(conn, outbox: Outbox, *, changed, now: datetime) -> None:
    """Report-back (回告) is owed once a unit takes an assignment, due some hours after it cleared or accepted."""
    from smart110.dispatch.v1 import dispatch_service_pb2 as dpb

    a = changed.assignment
    state = enum_name(dpb.AssignmentState, a.state, "ASSIGNMENT_STATE_")
    if state in OPEN_ASSIGNMENT_STATES:
        seconds_ = REPORT_BACK_SECONDS
        for rule in active_rules(conn, "OBLIGATION"):
            if rule.parameters.get("report_back_seconds"):
                seconds_ = float(rule.parameters["report_back_seconds"])
                break
        base = from_pb(a.clear_time) or from_pb(a.accept_time) or now
        upsert_obligation(conn, outbox, kind="REPORT_BACK", subject=a.name, station_id=changed.station_id,
                          description=f"{a.unit}处警后回告（{changed.case_name}，{changed.incident_type}）",
                          due=base + timedelta(seconds=seconds_), now=now)
    elif state == "REPORTED_BACK":
        close_obligation_by_subject(conn, outbox, kind="REPORT_BACK", subject=a.name, state="DONE",
                                    reason="已回告", now=now)
    elif state in ("DECLINED", "EXPIRED"):
        close_obligation_by_subject(conn, outbox, kind="REPORT_BACK", subject=a.name, state="CANCELLED",
                                    reason=f"派警{state}", now=now)


def on_work_order(conn, outbox: Outbox, *, order, now: datetime) -> None:
    """A 12345 work order's deadline is an obligation until it is resolved or closed."""
    from smart110.referral.v1 import referral_service_pb2 as rpb

    status = enum_name(rpb.WorkOrderStatus, order.status, "WORK_ORDER_STATUS_")
    if status in ("RESOLVED", "CLOSED"):
        close_obligation_by_subject(conn, outbox, kind="WORK_ORDER", subject=order.name, state="DONE",
                                    reason=f"工单{status}", now=now)
        return
    due = from_pb(order.deadline)
    if due is None:
        return
    station = order.preliminary_station.split("/", 1)[1] if order.preliminary_station else ""
    if not station and order.report:
        # From a 110 report: the station with jurisdiction where it was reported.
        station = conn.execute(select(incidents.c.station_id).where(
            incidents.c.report_id == order.report.split("/", 1)[1])).scalar() or ""
    upsert_obligation(conn, outbox, kind="WORK_ORDER", subject=order.name, station_id=station,
                      description=f"12345工单办理时限：{order.description[:60]}", due=due, now=now)


def _obligation_findings(conn, now: datetime) -> list[Finding]:
    findings = []
    for rule in active_rules(conn, "OBLIGATION"):
        kinds = [k for k in rule.parameters.get("kinds", "").split(",") if k]
        lead = timedelta(seconds=rule.threshold)
        q = select(obligations).where(obligations.c.state == "PENDING", obligations.c.due_time - lead <= now,
                                      obligations.c.warned != "OVERDUE")
        if kinds:
            q = q.where(obligations.c.kind.in_(kinds))
        if rule.areas:
            q = q.where(obligations.c.station_id.in_(list(rule.areas)))
        for o in conn.execute(q.with_for_update(skip_locked=True)).all():
            overdue = now >= o.due_time
            stage = "OVERDUE" if overdue else "DUE_SOON"
            if stage == o.warned:
                continue
            conn.execute(obligations.update().where(obligations.c.id == o.id).values(warned=stage))
            level = level_name(rule.level)
            if overdue:
                level = domain.LEVELS[min(domain.level_rank(level) + 1, 4)]
            when = "已逾期" if overdue else "即将到期"
            area = AreaInfo("STATION", o.station_id, f"{o.station_id}辖区", o.station_id)
            findings.append(Finding(
                rule=rule, level=level, key=("obligation", o.id, o.due_time.isoformat()), area=area,
                subject=f"obligations/{o.id}",
                summary=f"{when}：{o.description}（期限{o.due_time:%Y-%m-%d %H:%M}）",
                labels={"obligation_kind": o.kind},
                suggested_action=rule.suggested_action or "请责任单位尽快办理并在系统中登记完成"))
    return findings


# -- the sweeper ------------------------------------------------------------------

def sweep(conn, outbox: Outbox, now: datetime) -> dict[str, int]:
    """Everything time alone changes: escalations, silences starting and ending,
    obligations coming due, conditions that stopped holding. Safe to run from
    several processes (rows are locked, skipped when another sweeper holds them)."""
    done = Counter()
    for row in conn.execute(select(alerts).where(
            alerts.c.state == "FIRING", alerts.c.next_escalation_time <= now)
            .order_by(alerts.c.next_escalation_time).with_for_update(skip_locked=True)).all():
        nxt = domain.next_recipient(list(row.recipients), row.station_id)
        if nxt is None:
            conn.execute(alerts.update().where(alerts.c.id == row.id).values(next_escalation_time=None))
            continue
        level = row.escalation_level + 1
        conn.execute(alerts.update().where(alerts.c.id == row.id).values(
            escalation_level=level, recipients=list(row.recipients) + [nxt], update_time=now,
            next_escalation_time=now + timedelta(seconds=row.escalate_after_s)))
        entries = _timeline(conn, row.id, "ESCALATED", f"{row.escalate_after_s:.0f}秒未签收，升级至 {nxt}", SYSTEM,
                            now)
        entries += _notify(conn, row.id, [nxt], level, now)
        _publish(conn, outbox, row.id, "ESCALATED", before=row, entries=entries)
        done["escalated"] += 1
    for s in conn.execute(select(silences).where(
            silences.c.applied.is_(False), silences.c.start_time <= now, silences.c.expire_time > now,
            silences.c.expired_time.is_(None)).with_for_update(skip_locked=True)).all():
        done["silenced"] += _apply_silence(conn, outbox, s.id, now)
    for s in conn.execute(select(silences).where(
            silences.c.released.is_(False),
            or_(silences.c.expire_time <= now, silences.c.expired_time <= now)).with_for_update(skip_locked=True)).all():
        done["unsilenced"] += _release_silence(conn, outbox, s.id, now)
    for f in _obligation_findings(conn, now):
        raise_alert(conn, outbox, f, now)
        done["obligations"] += 1
    for row in conn.execute(select(alerts.c.id).where(
            alerts.c.state != "RESOLVED", alerts.c.auto_resolve_time <= now)
            .with_for_update(skip_locked=True)).all():
        resolve(conn, outbox, alert_id=row.id, actor=SYSTEM, reason="条件已不再成立，自动解除", now=now)
        done["resolved"] += 1
    return dict(done)
