"""Alerts tables (the `alerts` schema) and the repositories that load and save the alerts
domain's objects on one connection: the write side. Lists and the heat map are in queries.py.

Rule contents and signals are stored in their protobuf forms: a rule version's `spec` is the Rule
message as JSON (domain.rule_spec writes and reads it), a signal's `body` the Signal message, which
the signal's use case encodes and decodes (mapping.signal_body) and this module keeps as given.
"""
from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from functools import lru_cache

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Identity, Index, Integer, LargeBinary, MetaData,
    PrimaryKeyConstraint, String, Table, Text, and_, func, or_, select, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from services.runtime.app import RuntimeTables
from services.runtime.audit import Timeline, timeline_table
from services.runtime.errors import NotFound

from .domain import (
    Alert, Area, CellCounts, HourCounts, Incident, Matcher, Notification, Obligation, Rule, RuleCounts, Signal, Silence,
    Stamp, WindowCount, rule_from_spec, rule_spec,
)
from .domain.receivers import Delivery

SCHEMA = "alerts"
metadata = MetaData(schema=SCHEMA)
runtime_tables = RuntimeTables.add_to(metadata)

# A rule's identity; its content lives in rule_versions (every change a new row).
rules = Table(
    "rules", metadata,
    Column("id", String(40), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("kind", String(30), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("delete_time", DateTime(timezone=True)),
)

rule_versions = Table(
    "rule_versions", metadata,
    Column("rule_id", String(40), ForeignKey(f"{SCHEMA}.rules.id"), nullable=False),
    Column("version", BigInteger, nullable=False),
    # The Rule message as JSON (proto field names): rules are data.
    Column("spec", JSONB, nullable=False),
    Column("actor", Text, nullable=False),
    Column("roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("time", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    PrimaryKeyConstraint("rule_id", "version"),
)

alerts = Table(
    "alerts", metadata,
    Column("id", String(40), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("group_key", String(200), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("level", String(10), nullable=False),
    Column("state", String(20), nullable=False),
    Column("rule_id", String(40), nullable=False),
    Column("rule_version", BigInteger, nullable=False),
    Column("area_kind", String(10), nullable=False, server_default=""),
    Column("area_id", String(40), nullable=False, server_default=""),
    Column("area_name", Text, nullable=False, server_default=""),
    Column("center_lon", Float),
    Column("center_lat", Float),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("grid_id", String(30), nullable=False, server_default=""),
    # A border case's neighbouring stations (边界警情, revision 0007).
    Column("shared_station_ids", ARRAY(Text), nullable=False, server_default="{}"),
    Column("subject", String(200), nullable=False, server_default=""),
    Column("related_subjects", ARRAY(Text), nullable=False, server_default="{}"),
    Column("summary", Text, nullable=False),
    Column("suggested_action", Text, nullable=False, server_default=""),
    Column("recipients", ARRAY(Text), nullable=False, server_default="{}"),
    Column("first_seen_time", DateTime(timezone=True), nullable=False),
    Column("last_seen_time", DateTime(timezone=True), nullable=False),
    Column("count", BigInteger, nullable=False, server_default="1"),
    Column("escalation_level", Integer, nullable=False, server_default="0"),
    Column("escalate_after_s", Float, nullable=False, server_default="0"),
    # When the sweeper escalates it if still unacknowledged; NULL: never.
    Column("next_escalation_time", DateTime(timezone=True)),
    # When the sweeper resolves it unless matched again (volume, anomaly, strength gap).
    Column("auto_resolve_time", DateTime(timezone=True)),
    Column("labels", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("hot_cells", ARRAY(Text), nullable=False, server_default="{}"),
    Column("cold_cells", ARRAY(Text), nullable=False, server_default="{}"),
    Column("silence_id", String(40), nullable=False, server_default=""),
    Column("ack_actor", Text), Column("ack_roles", ARRAY(Text)), Column("ack_time", DateTime(timezone=True)),
    Column("ack_reason", Text),
    Column("resolve_actor", Text), Column("resolve_roles", ARRAY(Text)),
    Column("resolve_time", DateTime(timezone=True)), Column("resolve_reason", Text),
    Column("update_time", DateTime(timezone=True), nullable=False),
    # One open alert per condition: a repeat folds into it.
    Index("alerts_open_fingerprint", "fingerprint", unique=True, postgresql_where=text("state <> 'RESOLVED'")),
    Index("alerts_last_seen", "last_seen_time", "id"),
    Index("alerts_escalation", "next_escalation_time", postgresql_where=text("state = 'FIRING'")),
    Index("alerts_station_state", "station_id", "state"),
    Index("alerts_shared_stations", "shared_station_ids", postgresql_using="gin"),
)

notifications = Table(
    "alert_notifications", metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("alert_id", String(40), ForeignKey(f"{SCHEMA}.alerts.id"), nullable=False, index=True),
    Column("channel", String(20), nullable=False),
    Column("recipient", Text, nullable=False),
    Column("send_time", DateTime(timezone=True), nullable=False),
    Column("escalation_level", Integer, nullable=False),
    Column("delivered", Boolean, nullable=False),
    Column("error", Text, nullable=False, server_default=""),
)

# What was sent to each receiver (webhooks, SMS), with its delivery log: queued in the transaction
# that changed the alert, sent afterwards by the delivery worker (outside any transaction), which
# holds a row by lease (`claimed_by`, `lease_until`) while it calls.
deliveries = Table(
    "alert_deliveries", metadata,
    Column("id", String(40), primary_key=True),
    Column("alert_id", String(40), ForeignKey(f"{SCHEMA}.alerts.id"), nullable=False, index=True),
    Column("receiver", String(60), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("target", Text, nullable=False),
    Column("status", String(10), nullable=False),
    # The exact body sent (a webhook's signed JSON, an SMS text): a retry sends the same.
    Column("body", Text, nullable=False),
    # PENDING, DELIVERED, FAILED, INHIBITED.
    Column("state", String(20), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("next_attempt_time", DateTime(timezone=True)),
    Column("last_attempt_time", DateTime(timezone=True)),
    Column("delivered_time", DateTime(timezone=True)),
    Column("remote_id", Text, nullable=False, server_default=""),
    Column("inhibited_by", String(60), nullable=False, server_default=""),
    Column("claimed_by", Text),
    Column("lease_until", DateTime(timezone=True)),
    Index("alert_deliveries_due", "next_attempt_time", postgresql_where=text("state = 'PENDING'")),
    Index("alert_deliveries_target", "kind", "target", "create_time"),
    Index("alert_deliveries_inhibited", "inhibited_by", postgresql_where=text("state = 'INHIBITED'")),
    # The delivery log's retention reads deliveries no longer in play, oldest first.
    Index("alert_deliveries_settled", "create_time", postgresql_where=text("state <> 'PENDING'")),
)

alert_timeline = Timeline(timeline_table(metadata, "alert_timeline", "alert_id", "alerts.id"), "alert_id")

silences = Table(
    "silences", metadata,
    Column("id", String(40), primary_key=True),
    Column("matchers", JSONB, nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("expire_time", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False),
    Column("creator", Text, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    # Expired early by DeleteSilence.
    Column("expired_time", DateTime(timezone=True)),
    Column("expire_actor", Text), Column("expire_roles", ARRAY(Text)), Column("expire_reason", Text),
    # Matching alerts were silenced once it started (a silence may start later).
    Column("applied", Boolean, nullable=False, server_default="false"),
    # The sweeper has released the alerts it held after it ended.
    Column("released", Boolean, nullable=False, server_default="false"),
)

signals = Table(
    "signals", metadata,
    Column("id", String(40), primary_key=True),
    Column("source", Text, nullable=False),
    Column("signal_type", String(60), nullable=False),
    Column("external_id", Text, nullable=False, server_default=""),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("body", LargeBinary, nullable=False),
    Column("alert_ids", ARRAY(Text), nullable=False, server_default="{}"),
    Column("receive_time", DateTime(timezone=True), nullable=False),
    Index("signals_source_external", "source", "external_id", unique=True,
          postgresql_where=text("external_id <> ''")),
)

# Every report as it arrived from intake, for windows, rollups and the heat map.
incidents = Table(
    "incidents", metadata,
    Column("report_id", String(40), primary_key=True),
    Column("receive_time", DateTime(timezone=True), nullable=False),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("grid_id", String(30), nullable=False, server_default=""),
    Column("category", String(20), nullable=False, server_default=""),
    Column("incident_type", String(40), nullable=False, server_default=""),
    # A repeat report merged into its master incident: not counted again.
    Column("merged_into", String(60), nullable=False, server_default=""),
    Column("lon", Float),
    Column("lat", Float),
    # H3 cells at resolutions 6..10 (index 1 is resolution 6).
    Column("cells", ARRAY(Text), nullable=False, server_default="{}"),
    Index("incidents_time", "receive_time"),
    Index("incidents_station_time", "station_id", "receive_time"),
    Index("incidents_grid_time", "grid_id", "receive_time"),
)

# Reports per area and hour: the history anomaly rules compare against.
hourly_counts = Table(
    "hourly_counts", metadata,
    Column("area_kind", String(10), nullable=False),
    Column("area_id", String(40), nullable=False),
    # "" counts every incident type.
    Column("incident_type", String(40), nullable=False),
    Column("hour_start", DateTime(timezone=True), nullable=False),
    Column("count", BigInteger, nullable=False),
    PrimaryKeyConstraint("area_kind", "area_id", "incident_type", "hour_start"),
)

obligations = Table(
    "obligations", metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("description", Text, nullable=False),
    Column("due_time", DateTime(timezone=True), nullable=False),
    Column("period_s", Float, nullable=False, server_default="0"),
    # PENDING, DONE or CANCELLED; OVERDUE is PENDING past due_time.
    Column("state", String(20), nullable=False),
    # How far the warnings for the current due time have gone: "", "DUE_SOON", "OVERDUE".
    Column("warned", String(20), nullable=False, server_default=""),
    Column("complete_actor", Text), Column("complete_roles", ARRAY(Text)),
    Column("complete_time", DateTime(timezone=True)), Column("complete_reason", Text),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Index("obligations_kind_subject", "kind", "subject"),
    Index("obligations_due", "due_time", postgresql_where=text("state = 'PENDING'")),
)



# -- rules --------------------------------------------------------------------------

def rule_of(head, ver) -> Rule:
    """A rule version from its head row and version row."""
    rule = rule_from_spec(ver.spec)
    rule.id = head.id
    rule.version = ver.version
    rule.version_stamp = Stamp(ver.actor or "", list(ver.roles or []), ver.time, ver.reason or "")
    rule.create_time = head.create_time
    rule.update_time = ver.time
    rule.delete_time = head.delete_time if head.delete_time is not None and ver.version == head.version else None
    return rule


def load_rule(conn, rule_id: str, version: int | None = None, *, lock: bool = False) -> Rule:
    """The rule at `version` (default: the version in force)."""
    q = select(rules).where(rules.c.id == rule_id)
    head = conn.execute(q.with_for_update() if lock else q).first()
    if head is None:
        raise NotFound(f"rules/{rule_id}")
    ver = conn.execute(select(rule_versions).where(
        rule_versions.c.rule_id == rule_id, rule_versions.c.version == (version or head.version))).first()
    if ver is None:
        raise NotFound(f"rules/{rule_id}@{version}")
    return rule_of(head, ver)


# Read at every report (RulesCache): built once.
_REVISION = text(f"SELECT count(*), coalesce(sum(version), 0) FROM {SCHEMA}.rules")


class RuleRepository:
    """Rules: a head row per rule (the version in force) and a row per version."""

    def __init__(self, conn):
        self.conn = conn

    def get(self, rule_id: str, *, lock: bool = True) -> Rule:
        return load_rule(self.conn, rule_id, lock=lock)

    def ids(self) -> set[str]:
        return set(self.conn.execute(select(rules.c.id)).scalars())

    def add(self, rule: Rule) -> None:
        self.conn.execute(rules.insert().values(id=rule.id, version=rule.version, kind=rule.kind, enabled=rule.enabled,
                                                create_time=rule.create_time, update_time=rule.update_time))
        self._add_version(rule)

    def add_version(self, rule: Rule) -> None:
        """A new version of an existing rule, in force from now."""
        self.conn.execute(rules.update().where(rules.c.id == rule.id).values(
            version=rule.version, enabled=rule.enabled, update_time=rule.update_time, delete_time=rule.delete_time))
        self._add_version(rule)

    def _add_version(self, rule: Rule) -> None:
        s = rule.version_stamp
        self.conn.execute(rule_versions.insert().values(
            rule_id=rule.id, version=rule.version, spec=rule_spec(rule), actor=s.actor, roles=list(s.roles),
            time=s.time, reason=s.reason))

    def active(self, kind: str | None = None) -> list[Rule]:
        """The enabled rules in force (of a kind), by id."""
        q = (select(rules, rule_versions)
             .join(rule_versions, and_(rule_versions.c.rule_id == rules.c.id,
                                       rule_versions.c.version == rules.c.version))
             .where(rules.c.enabled.is_(True), rules.c.delete_time.is_(None)).order_by(rules.c.id))
        if kind:
            q = q.where(rules.c.kind == kind)
        return [rule_of(row, row) for row in self.conn.execute(q)]

    def revision(self) -> tuple[int, int]:
        """Grows with every change: every create adds a row and every change (update, enable, delete)
        adds one to a version, so (count, sum of versions) moves. Update times would not do: they come
        from the caller's clock, which need not move forward (another replica's, an injected one)."""
        return tuple(self.conn.execute(_REVISION).one())


# -- alerts -------------------------------------------------------------------------

def _stamp(actor, roles, time, reason) -> Stamp | None:
    return Stamp(actor or "", list(roles or []), time, reason or "") if time is not None else None


def alert_of(conn, row, whole: bool = True) -> Alert:
    """An alert from its row, with its notifications and its timeline (`whole`), or from its row
    alone (to be changed: what it decides on and what its events carry are all in the row)."""
    notes = conn.execute(select(notifications).where(notifications.c.alert_id == row.id)
                         .order_by(notifications.c.seq)).all() if whole else []
    timeline = alert_timeline.of(conn, row.id) if whole else []
    alert = _alert_from(row, notes, timeline)
    if whole:
        alert.deliveries = DeliveryRepository(conn).of_alert(row.id)
    return alert


def alerts_of(conn, rows) -> list[Alert]:
    """Whole alerts from their rows, in the rows' order: three queries for the notifications,
    timelines and deliveries of any number of alerts, not three per alert."""
    ids = [r.id for r in rows]
    notes: dict[str, list] = {i: [] for i in ids}
    if ids:
        for n in conn.execute(select(notifications).where(notifications.c.alert_id.in_(ids))
                              .order_by(notifications.c.seq)):
            notes[n.alert_id].append(n)
    timelines = alert_timeline.of_many(conn, ids)
    sent: dict[str, list[Delivery]] = {i: [] for i in ids}
    if ids:
        for d in conn.execute(select(deliveries).where(deliveries.c.alert_id.in_(ids))
                              .order_by(deliveries.c.create_time, deliveries.c.id)):
            sent[d.alert_id].append(delivery_of(d))
    out = [_alert_from(row, notes[row.id], timelines[row.id]) for row in rows]
    for alert in out:
        alert.deliveries = sent[alert.id]
    return out


def _alert_from(row, notes, timeline) -> Alert:
    center = (row.center_lon, row.center_lat) if row.center_lon is not None else None
    return Alert(
        id=row.id, fingerprint=row.fingerprint, group_key=row.group_key, kind=row.kind, level=row.level,
        state=row.state, rule_id=row.rule_id, rule_version=row.rule_version,
        area=Area(row.area_kind, row.area_id, row.area_name, row.station_id, row.grid_id, center,
                  tuple(row.shared_station_ids)),
        subject=row.subject, summary=row.summary, first_seen_time=row.first_seen_time,
        last_seen_time=row.last_seen_time, update_time=row.update_time, related_subjects=list(row.related_subjects),
        suggested_action=row.suggested_action, recipients=list(row.recipients), count=row.count,
        escalation_level=row.escalation_level, escalate_after_s=row.escalate_after_s,
        next_escalation_time=row.next_escalation_time, auto_resolve_time=row.auto_resolve_time,
        labels=dict(row.labels or {}), hot_cells=list(row.hot_cells), cold_cells=list(row.cold_cells),
        silence_id=row.silence_id, acknowledged=_stamp(row.ack_actor, row.ack_roles, row.ack_time, row.ack_reason),
        resolved=_stamp(row.resolve_actor, row.resolve_roles, row.resolve_time, row.resolve_reason),
        notifications=[Notification(n.channel, n.recipient, n.send_time, n.escalation_level, n.delivered, n.error)
                       for n in notes],
        timeline=timeline,
    )


def _alert_values(a: Alert) -> dict:
    center = a.area.center
    ack, res = a.acknowledged, a.resolved
    return dict(
        fingerprint=a.fingerprint, group_key=a.group_key, kind=a.kind, level=a.level, state=a.state,
        rule_id=a.rule_id, rule_version=a.rule_version, area_kind=a.area.kind, area_id=a.area.id,
        area_name=a.area.name, center_lon=center[0] if center else None, center_lat=center[1] if center else None,
        station_id=a.area.station_id, grid_id=a.area.grid_id, shared_station_ids=list(a.area.shared_station_ids),
        subject=a.subject,
        related_subjects=list(a.related_subjects), summary=a.summary, suggested_action=a.suggested_action,
        recipients=list(a.recipients), first_seen_time=a.first_seen_time, last_seen_time=a.last_seen_time,
        count=a.count, escalation_level=a.escalation_level, escalate_after_s=a.escalate_after_s,
        next_escalation_time=a.next_escalation_time, auto_resolve_time=a.auto_resolve_time, labels=dict(a.labels),
        hot_cells=list(a.hot_cells), cold_cells=list(a.cold_cells), silence_id=a.silence_id,
        ack_actor=ack.actor if ack else None, ack_roles=list(ack.roles) if ack else None,
        ack_time=ack.time if ack else None, ack_reason=ack.reason if ack else None,
        resolve_actor=res.actor if res else None, resolve_roles=list(res.roles) if res else None,
        resolve_time=res.time if res else None, resolve_reason=res.reason if res else None,
        update_time=a.update_time,
    )


class AlertRepository:
    """Alerts with their notifications and timelines. Loading one to change it locks its row; it
    comes without its notifications and timeline unless asked for them (`whole`: an RPC answering
    with the alert), and what it adds to them is written on save."""

    def __init__(self, conn):
        self.conn = conn

    def _load(self, row, whole: bool = False) -> Alert:
        return alert_of(self.conn, row, whole)

    def find_open(self, fingerprint: str) -> Alert | None:
        """The open alert of a condition (one at most)."""
        row = self.conn.execute(select(alerts).where(alerts.c.fingerprint == fingerprint, alerts.c.state != "RESOLVED")
                                .with_for_update()).first()
        return self._load(row) if row is not None else None

    def get(self, alert_id: str, *, whole: bool = False) -> Alert:
        row = self.conn.execute(select(alerts).where(alerts.c.id == alert_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"alerts/{alert_id}")
        return self._load(row, whole)

    def add(self, alert: Alert) -> bool:
        """Inserts a new alert; False when another open alert of the same condition got there first."""
        inserted = self.conn.execute(
            insert(alerts).values(id=alert.id, **_alert_values(alert))
            .on_conflict_do_nothing(index_elements=["fingerprint"], index_where=text("state <> 'RESOLVED'"))
            .returning(alerts.c.id)).first()
        if inserted is None:
            return False
        self._write_added(alert)
        return True

    def save(self, alert: Alert) -> None:
        self.conn.execute(alerts.update().where(alerts.c.id == alert.id).values(**_alert_values(alert)))
        self._write_added(alert)

    def _write_added(self, alert: Alert) -> None:
        if alert.new_notifications:
            self.conn.execute(notifications.insert(), [
                dict(alert_id=alert.id, channel=n.channel, recipient=n.recipient, send_time=n.send_time,
                     escalation_level=n.escalation_level, delivered=n.delivered, error=n.error)
                for n in alert.new_notifications])
            alert.new_notifications = []
        alert_timeline.add(self.conn, alert.id, alert.new_entries)
        alert.new_entries = []

    def open_mentioning(self, fingerprint: str, subject: str) -> bool:
        """Whether the open alert of a condition was raised (or repeated) by `subject` already."""
        return self.conn.execute(select(alerts.c.id).where(
            alerts.c.fingerprint == fingerprint, alerts.c.state != "RESOLVED",
            or_(alerts.c.subject == subject, alerts.c.related_subjects.any(subject)))).first() is not None

    def firing_labels(self) -> list[tuple[str, dict]]:
        """Every firing alert's id and labels, locked (a silence starting looks for what it holds)."""
        return [(r.id, dict(r.labels)) for r in self.conn.execute(
            select(alerts.c.id, alerts.c.labels).where(alerts.c.state == "FIRING").with_for_update()).all()]

    def open_labels(self, station_id: str) -> list[tuple[str, dict]]:
        """The open (firing or acknowledged) alerts of a station: (name, labels), for inhibition."""
        return [(f"alerts/{r.id}", dict(r.labels)) for r in self.conn.execute(
            select(alerts.c.id, alerts.c.labels).where(alerts.c.station_id == station_id,
                                                       alerts.c.state.in_(("FIRING", "ACKNOWLEDGED"))))]

    def mark_pushed(self, alert_id: str, channels: tuple[str, ...], until: datetime) -> int:
        """The alert's stream notifications sent by `until` were pushed to a connected subscriber."""
        return self.conn.execute(notifications.update().where(
            notifications.c.alert_id == alert_id, notifications.c.channel.in_(channels),
            notifications.c.delivered.is_(False), notifications.c.send_time <= until).values(delivered=True)).rowcount

    def held_by(self, silence_id: str) -> list[Alert]:
        rows = self.conn.execute(select(alerts).where(alerts.c.silence_id == silence_id, alerts.c.state == "SILENCED")
                                 .with_for_update()).all()
        return [self._load(r) for r in rows]

    def due_for_escalation(self, now: datetime) -> list[Alert]:
        """Firing alerts whose escalation time has come (those another sweeper holds are skipped)."""
        rows = self.conn.execute(select(alerts).where(
            alerts.c.state == "FIRING", alerts.c.next_escalation_time <= now)
            .order_by(alerts.c.next_escalation_time).with_for_update(skip_locked=True)).all()
        return [self._load(r) for r in rows]

    def auto_resolvable(self, now: datetime) -> list[str]:
        """Open alerts whose condition has stopped holding by now (skipping those another sweeper holds)."""
        return list(self.conn.execute(select(alerts.c.id).where(
            alerts.c.state != "RESOLVED", alerts.c.auto_resolve_time <= now)
            .with_for_update(skip_locked=True)).scalars())

    def open_about(self, subject: str) -> list[str]:
        return list(self.conn.execute(select(alerts.c.id).where(alerts.c.subject == subject,
                                                                alerts.c.state != "RESOLVED")).scalars())


# -- silences ---------------------------------------------------------------------

def silence_of(row) -> Silence:
    return Silence(
        id=row.id, matchers=[Matcher(m["label"], m["value"], m.get("operator", "EQUAL")) for m in row.matchers],
        start_time=row.start_time, expire_time=row.expire_time, reason=row.reason, creator=row.creator,
        create_time=row.create_time,
        expired=_stamp(row.expire_actor, row.expire_roles, row.expired_time, row.expire_reason),
        applied=row.applied, released=row.released)


class SilenceRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, s: Silence) -> None:
        self.conn.execute(silences.insert().values(
            id=s.id, matchers=[{"label": m.label, "value": m.value, "operator": m.operator} for m in s.matchers],
            start_time=s.start_time, expire_time=s.expire_time, reason=s.reason, creator=s.creator,
            create_time=s.create_time))

    def get(self, silence_id: str) -> Silence:
        row = self.conn.execute(select(silences).where(silences.c.id == silence_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"silences/{silence_id}")
        return silence_of(row)

    def save(self, s: Silence) -> None:
        e = s.expired
        self.conn.execute(silences.update().where(silences.c.id == s.id).values(
            expired_time=e.time if e else None, expire_actor=e.actor if e else None,
            expire_roles=list(e.roles) if e else None, expire_reason=e.reason if e else None,
            applied=s.applied, released=s.released))

    def active(self, now: datetime) -> list[Silence]:
        """The silences in force now, oldest first."""
        return [silence_of(r) for r in self.conn.execute(select(silences).where(
            silences.c.start_time <= now, silences.c.expire_time > now,
            or_(silences.c.expired_time.is_(None), silences.c.expired_time > now)).order_by(silences.c.create_time))]

    def starting(self, now: datetime) -> list[Silence]:
        """Silences in force whose matching alerts have not been silenced yet (they started later)."""
        return [silence_of(r) for r in self.conn.execute(select(silences).where(
            silences.c.applied.is_(False), silences.c.start_time <= now, silences.c.expire_time > now,
            silences.c.expired_time.is_(None)).with_for_update(skip_locked=True)).all()]

    def ending(self, now: datetime) -> list[Silence]:
        """Silences that have ended and still hold alerts."""
        return [silence_of(r) for r in self.conn.execute(select(silences).where(
            silences.c.released.is_(False),
            or_(silences.c.expire_time <= now, silences.c.expired_time <= now)).with_for_update(skip_locked=True)).all()]


# -- incidents (every report, for windows and rollups) ---------------------------------

def _in_area(area: Area, resolution: int):
    if area.kind == "STATION":
        return incidents.c.station_id == area.id
    if area.kind == "GRID":
        return incidents.c.grid_id == area.id
    return incidents.c.cells[resolution - 5] == area.id  # Postgres arrays count from 1


# A report recorded and its hourly counts rolled up in one round trip: the rollups only when the
# report was new (a redelivery changes nothing), all at the incident's hour.
_RECORD_COUNTED = text(f"""
WITH recorded AS (
    INSERT INTO {SCHEMA}.incidents
        (report_id, receive_time, station_id, grid_id, category, incident_type, merged_into, lon, lat, cells)
    VALUES (:report_id, :receive_time, :station_id, :grid_id, :category, :incident_type, :merged_into,
            :lon, :lat, CAST(:cells AS text[]))
    ON CONFLICT DO NOTHING
    RETURNING report_id
), rolled AS (
    INSERT INTO {SCHEMA}.hourly_counts AS h (area_kind, area_id, incident_type, hour_start, count)
    SELECT k.area_kind, k.area_id, k.incident_type, CAST(:hour_start AS timestamptz), 1
    FROM unnest(CAST(:area_kinds AS text[]), CAST(:area_ids AS text[]), CAST(:incident_types AS text[]))
         AS k(area_kind, area_id, incident_type)
    WHERE EXISTS (SELECT 1 FROM recorded)
    ON CONFLICT (area_kind, area_id, incident_type, hour_start) DO UPDATE SET count = h.count + 1
)
SELECT report_id FROM recorded
""")


def _resolution(w: WindowCount) -> int:
    return int(w.resolution) if w.area.kind == "H3" else 0


def _area_sql(kind: str, resolution: int, param: str) -> str:
    if kind == "STATION":
        return f"station_id = :{param}"
    if kind == "GRID":
        return f"grid_id = :{param}"
    return f"cells[{int(resolution) - 5}] = :{param}"  # Postgres arrays count from 1


@lru_cache(maxsize=256)
def _counts_statement(windows: tuple[tuple[str, int, bool], ...], hours: int,
                      cells: tuple[tuple[int, bool], ...]):
    """The statement of `IncidentRepository.counts` for asks of these shapes (area kind, H3
    resolution, whether typed), built once per shape. Rows: (part, index, cell, hour, count):
    W a window's count; H an hour's count; F an hourly ask's first hour; C a cell's count."""
    parts = []
    if windows:
        cols, areas, values = [], [], []
        for n, (kind, res, typed) in enumerate(windows):
            area = _area_sql(kind, res, f"w{n}_area")
            typed_sql = f" AND incident_type = ANY(CAST(:w{n}_types AS text[]))" if typed else ""
            cols.append(f"count(*) FILTER (WHERE receive_time > :w{n}_start AND {area}{typed_sql}) AS n{n}")
            areas.append(area)
            values.append(f"({n}, w.n{n})")
        parts.append(
            f"SELECT 'W', v.n, NULL::text, NULL::timestamptz, v.count FROM ("
            f"SELECT {', '.join(cols)} FROM {SCHEMA}.incidents"
            f" WHERE receive_time > :w_start AND receive_time <= :end AND category NOT IN ('INVALID', '')"
            f" AND merged_into = '' AND ({' OR '.join(areas)})) AS w"
            f" CROSS JOIN LATERAL (VALUES {', '.join(values)}) AS v(n, count)")
    for n in range(hours):
        area = f"area_kind = :h{n}_kind AND area_id = :h{n}_area"
        typed = f"incident_type = ANY(CAST(:h{n}_types AS text[]))"
        parts.append(
            f"SELECT 'H', {n}, NULL::text, hour_start, sum(count)::bigint FROM {SCHEMA}.hourly_counts"
            f" WHERE {area} AND {typed} AND hour_start = ANY(CAST(:h{n}_hours AS timestamptz[]))"
            f" GROUP BY hour_start")
        # The area's first hour only when the current hour has enough to be looked at (CASE: lazily).
        parts.append(
            f"SELECT 'F', {n}, NULL::text, CASE WHEN (SELECT coalesce(sum(count), 0) FROM {SCHEMA}.hourly_counts"
            f" WHERE {area} AND {typed} AND hour_start = :h{n}_hour) >= :h{n}_min"
            f" THEN (SELECT min(hour_start) FROM {SCHEMA}.hourly_counts WHERE {area}) END, NULL::bigint")
    for n, (res, typed) in enumerate(cells):
        col = f"cells[{int(res) - 5}]"
        typed_sql = f" AND incident_type = ANY(CAST(:c{n}_types AS text[]))" if typed else ""
        parts.append(
            f"SELECT 'C', {n}, {col}, NULL::timestamptz, count(*) FROM {SCHEMA}.incidents"
            f" WHERE receive_time > :c{n}_start AND receive_time <= :end AND category = 'POLICE'"
            f" AND merged_into = '' AND {col} = ANY(CAST(:c{n}_cells AS text[])){typed_sql} GROUP BY {col}")
    return text("\nUNION ALL\n".join(f"({p})" for p in parts))


class IncidentRepository:
    def __init__(self, conn):
        self.conn = conn

    def record(self, i: Incident) -> bool:
        """Records a report as it arrived; False when it was recorded already (a redelivery)."""
        return self.conn.execute(insert(incidents).values(
            report_id=i.report_id, receive_time=i.receive_time, station_id=i.station_id, grid_id=i.grid_id,
            category=i.category, incident_type=i.incident_type, merged_into=i.merged_into, lon=i.lon, lat=i.lat,
            cells=i.cells,
        ).on_conflict_do_nothing().returning(incidents.c.report_id)).first() is not None

    def roll_up(self, keys: list[tuple[str, str, str, datetime]]) -> None:
        """Adds one to each hourly count (area kind, area id, incident type, hour)."""
        if keys:
            stmt = insert(hourly_counts).values([dict(area_kind=k, area_id=a, incident_type=t, hour_start=h, count=1)
                                                 for k, a, t, h in keys])
            self.conn.execute(stmt.on_conflict_do_update(
                index_elements=["area_kind", "area_id", "incident_type", "hour_start"],
                set_={"count": hourly_counts.c.count + 1}))

    def record_counted(self, i: Incident, keys: list[tuple[str, str, str, datetime]]) -> bool:
        """`record` and, when the report was new, `roll_up(keys)`, in one statement."""
        hours = {h for _, _, _, h in keys}
        if len(hours) > 1:  # one hour per incident (domain.rollup_keys); anything else the long way
            if not self.record(i):
                return False
            self.roll_up(keys)
            return True
        return self.conn.execute(_RECORD_COUNTED, dict(
            report_id=i.report_id, receive_time=i.receive_time, station_id=i.station_id, grid_id=i.grid_id,
            category=i.category, incident_type=i.incident_type, merged_into=i.merged_into, lon=i.lon, lat=i.lat,
            cells=list(i.cells), hour_start=next(iter(hours), i.receive_time), area_kinds=[k[0] for k in keys],
            area_ids=[k[1] for k in keys], incident_types=[k[2] for k in keys])).first() is not None

    def counts(self, end: datetime, windows: list[WindowCount], hours: list[HourCounts],
               cells: list[CellCounts]) -> RuleCounts:
        """What `count_window`, `hourly` with `first_hour`, and `police_by_cell` give for each ask, in
        one statement (windows end at `end`)."""
        out = RuleCounts(windows=[0] * len(windows), hours=[({}, None) for _ in hours],
                         cells=[Counter() for _ in cells])
        if not (windows or hours or cells):
            return out
        stmt = _counts_statement(tuple((w.area.kind, _resolution(w), bool(w.incident_types)) for w in windows),
                                 len(hours), tuple((c.resolution, bool(c.incident_types)) for c in cells))
        params = {"end": end}
        if windows:
            params["w_start"] = min(w.start for w in windows)
            for n, w in enumerate(windows):
                params.update({f"w{n}_start": w.start, f"w{n}_area": w.area.id, f"w{n}_types": list(w.incident_types)})
        for n, h in enumerate(hours):
            params.update({f"h{n}_kind": h.area.kind, f"h{n}_area": h.area.id, f"h{n}_types": list(h.incident_types),
                           f"h{n}_hours": list(h.hours), f"h{n}_hour": h.hour, f"h{n}_min": h.min_count})
        for n, c in enumerate(cells):
            params.update({f"c{n}_start": c.start, f"c{n}_cells": list(c.cells), f"c{n}_types": list(c.incident_types)})
        for part, n, cell, hour, count in self.conn.execute(stmt, params):
            if part == "W":
                out.windows[n] = int(count)
            elif part == "H":
                out.hours[n][0][hour] = int(count)
            elif part == "F":
                out.hours[n] = (out.hours[n][0], hour)
            else:
                out.cells[n][cell] = int(count)
        return out

    def set_merged(self, report_id: str, merged_into: str) -> None:
        self.conn.execute(incidents.update().where(incidents.c.report_id == report_id)
                          .values(merged_into=merged_into))

    def correct(self, report_id: str, *, category: str, incident_type: str, station_id: str, grid_id: str) -> None:
        self.conn.execute(incidents.update().where(incidents.c.report_id == report_id).values(
            category=category, incident_type=incident_type, station_id=station_id, grid_id=grid_id))

    def station_of(self, report_id: str) -> str:
        return self.conn.execute(select(incidents.c.station_id).where(incidents.c.report_id == report_id)).scalar() \
            or ""

    def count_window(self, area: Area, resolution: int, start: datetime, end: datetime,
                     incident_types: list[str]) -> int:
        """Counted incidents (valid, not merged) in the area within (start, end]."""
        q = select(func.count()).select_from(incidents).where(
            incidents.c.receive_time > start, incidents.c.receive_time <= end,
            incidents.c.category.notin_(["INVALID", ""]), incidents.c.merged_into == "", _in_area(area, resolution))
        if incident_types:
            q = q.where(incidents.c.incident_type.in_(list(incident_types)))
        return self.conn.execute(q).scalar_one()

    def hourly(self, area: Area, incident_types: list[str], hours: list[datetime]) -> dict[datetime, int]:
        """The area's counts for those hours (incident type "" counts every type)."""
        rows = self.conn.execute(select(hourly_counts.c.hour_start, func.sum(hourly_counts.c.count)).where(
            hourly_counts.c.area_kind == area.kind, hourly_counts.c.area_id == area.id,
            hourly_counts.c.incident_type.in_(incident_types), hourly_counts.c.hour_start.in_(hours))
            .group_by(hourly_counts.c.hour_start)).all()
        return {h: int(n) for h, n in rows}

    def first_hour(self, area: Area) -> datetime | None:
        return self.conn.execute(select(func.min(hourly_counts.c.hour_start)).where(
            hourly_counts.c.area_kind == area.kind, hourly_counts.c.area_id == area.id)).scalar_one()

    def police_by_cell(self, resolution: int, start: datetime, end: datetime, cells: list[str],
                       incident_types: list[str]) -> Counter:
        """Counted police incidents within (start, end] per cell of those cells."""
        col = incidents.c.cells[resolution - 5]
        q = (select(col, func.count()).where(
            incidents.c.receive_time > start, incidents.c.receive_time <= end,
            incidents.c.category == "POLICE", incidents.c.merged_into == "", col.in_(cells)).group_by(col))
        if incident_types:
            q = q.where(incidents.c.incident_type.in_(list(incident_types)))
        return Counter({c: n for c, n in self.conn.execute(q)})


# -- partner signals ---------------------------------------------------------------

class SignalRepository:
    """Partner signals; a signal's body (the Signal message) is stored as given."""

    def __init__(self, conn):
        self.conn = conn

    def body_by_external_id(self, source: str, external_id: str) -> bytes | None:
        """The stored body of the signal with that (source, external id)."""
        return self.conn.execute(select(signals.c.body).where(
            signals.c.source == source, signals.c.external_id == external_id)).scalar()

    def add(self, s: Signal, body: bytes) -> bool:
        """Stores a new signal; False when the same (source, external id) was stored meanwhile."""
        return self.conn.execute(insert(signals).values(
            id=s.id, source=s.source, signal_type=s.signal_type, external_id=s.external_id, station_id=s.station_id,
            body=body, receive_time=s.receive_time,
        ).on_conflict_do_nothing(index_elements=["source", "external_id"], index_where=text("external_id <> ''"))
            .returning(signals.c.id)).first() is not None

    def save_alerts(self, s: Signal, alert_names: list[str], body: bytes) -> None:
        """The alerts the signal raised, and its body naming them."""
        self.conn.execute(signals.update().where(signals.c.id == s.id).values(alert_ids=alert_names, body=body))


# -- obligations ------------------------------------------------------------------

def obligation_of(row) -> Obligation:
    return Obligation(
        id=row.id, kind=row.kind, subject=row.subject, station_id=row.station_id, description=row.description,
        due_time=row.due_time, create_time=row.create_time, update_time=row.update_time, period_s=row.period_s,
        state=row.state, warned=row.warned,
        completed=_stamp(row.complete_actor, row.complete_roles, row.complete_time, row.complete_reason))


class ObligationRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, o: Obligation) -> None:
        self.conn.execute(obligations.insert().values(
            id=o.id, kind=o.kind, subject=o.subject, station_id=o.station_id, description=o.description,
            due_time=o.due_time, period_s=o.period_s, state=o.state, create_time=o.create_time,
            update_time=o.update_time))

    def get(self, obligation_id: str) -> Obligation:
        row = self.conn.execute(select(obligations).where(obligations.c.id == obligation_id).with_for_update()).first()
        if row is None:
            raise NotFound(f"obligations/{obligation_id}")
        return obligation_of(row)

    def find(self, kind: str, subject: str) -> Obligation | None:
        """The obligation of a kind about a subject (e.g. the report-back of an assignment), locked."""
        row = self.conn.execute(select(obligations).where(obligations.c.kind == kind, obligations.c.subject == subject)
                                .with_for_update()).first()
        return obligation_of(row) if row is not None else None

    def pending_id(self, kind: str, subject: str) -> str | None:
        return self.conn.execute(select(obligations.c.id).where(
            obligations.c.kind == kind, obligations.c.subject == subject, obligations.c.state == "PENDING")).scalar()

    def due_for_warning(self, now: datetime, lead_s: float, kinds: list[str], stations: list[str]) -> list[Obligation]:
        """Pending obligations due within `lead_s` (or overdue) not yet warned of as overdue, skipping
        those another sweeper holds."""
        q = select(obligations).where(obligations.c.state == "PENDING",
                                      obligations.c.due_time - timedelta(seconds=lead_s) <= now,
                                      obligations.c.warned != "OVERDUE")
        if kinds:
            q = q.where(obligations.c.kind.in_(kinds))
        if stations:
            q = q.where(obligations.c.station_id.in_(list(stations)))
        return [obligation_of(r) for r in self.conn.execute(q.with_for_update(skip_locked=True)).all()]

    def save(self, o: Obligation) -> None:
        c = o.completed
        self.conn.execute(obligations.update().where(obligations.c.id == o.id).values(
            description=o.description, due_time=o.due_time, state=o.state, warned=o.warned,
            complete_actor=c.actor if c else None, complete_roles=list(c.roles) if c else None,
            complete_time=c.time if c else None, complete_reason=c.reason if c else None,
            update_time=o.update_time))


# -- deliveries -----------------------------------------------------------------------

_DELIVERY_FIELDS = ("id", "alert_id", "receiver", "kind", "target", "status", "body", "state", "attempts",
                    "last_error", "create_time", "next_attempt_time", "last_attempt_time", "delivered_time",
                    "remote_id", "inhibited_by", "claimed_by", "lease_until")


def delivery_of(row) -> Delivery:
    return Delivery(**{k: getattr(row, k) for k in _DELIVERY_FIELDS})


class DeliveryRepository:
    """Deliveries to receivers as the worker works on them (see `deliveries`)."""

    def __init__(self, conn):
        self.conn = conn

    def add(self, items: list[Delivery]) -> None:
        if items:
            self.conn.execute(deliveries.insert(), [{k: getattr(d, k) for k in _DELIVERY_FIELDS} for d in items])

    def claim_next(self, *, sender: str, now: datetime, lease_until: datetime, skip: set[str] | None = None
                   ) -> Delivery | None:
        """Takes the next due delivery nobody has in hand, leased to `sender` until `lease_until`."""
        d = deliveries.c
        q = (select(deliveries)
             .where(d.state == "PENDING", d.next_attempt_time <= now,
                    or_(d.lease_until.is_(None), d.lease_until <= now))
             .order_by(d.next_attempt_time, d.id).limit(1).with_for_update(skip_locked=True))
        if skip:
            q = q.where(d.id.not_in(skip))
        row = self.conn.execute(q).first()
        if row is None:
            return None
        self.conn.execute(deliveries.update().where(d.id == row.id).values(claimed_by=sender, lease_until=lease_until))
        found = delivery_of(row)
        found.claimed_by, found.lease_until = sender, lease_until
        return found

    def get(self, delivery_id: str, *, lock: bool = False) -> Delivery | None:
        q = select(deliveries).where(deliveries.c.id == delivery_id)
        row = self.conn.execute(q.with_for_update() if lock else q).first()
        return delivery_of(row) if row is not None else None

    def save(self, item: Delivery) -> None:
        values = {k: getattr(item, k) for k in _DELIVERY_FIELDS if k not in ("id", "alert_id")}
        self.conn.execute(deliveries.update().where(deliveries.c.id == item.id).values(**values))

    def of_alert(self, alert_id: str) -> list[Delivery]:
        return [delivery_of(r) for r in self.conn.execute(
            select(deliveries).where(deliveries.c.alert_id == alert_id)
            .order_by(deliveries.c.create_time, deliveries.c.id))]

    def muted_by(self, alert_name: str) -> list[Delivery]:
        """The deliveries an open alert holds back (inhibition), locked."""
        return [delivery_of(r) for r in self.conn.execute(
            select(deliveries).where(deliveries.c.state == "INHIBITED", deliveries.c.inhibited_by == alert_name)
            .order_by(deliveries.c.create_time, deliveries.c.id).with_for_update())]

    def told(self, alert_id: str) -> set[str]:
        """The receivers a firing message of the alert was delivered (or is being sent) to."""
        return set(self.conn.execute(select(deliveries.c.receiver).where(
            deliveries.c.alert_id == alert_id, deliveries.c.status == "firing",
            deliveries.c.state.in_(("PENDING", "DELIVERED")))).scalars())

    def last_sms_to(self, number: str) -> Delivery | None:
        """The latest firing SMS delivered to a number (what a reply from it answers)."""
        row = self.conn.execute(select(deliveries).where(
            deliveries.c.kind == "SMS", deliveries.c.target == number, deliveries.c.status == "firing",
            deliveries.c.state == "DELIVERED").order_by(deliveries.c.delivered_time.desc()).limit(1)).first()
        return delivery_of(row) if row is not None else None

    def next_due(self) -> datetime | None:
        return self.conn.execute(
            select(func.min(func.greatest(deliveries.c.next_attempt_time, deliveries.c.lease_until)))
            .where(deliveries.c.state == "PENDING")).scalar()

    def prune(self, before: datetime, limit: int = 5000) -> int:
        """Deletes up to `limit` deliveries made before `before` that are no longer in play: settled
        (delivered, failed or held back) and their alert resolved. Returns how many."""
        d = deliveries.c
        settled = (select(d.id).join(alerts, alerts.c.id == d.alert_id)
                   .where(d.create_time < before, d.state != "PENDING", alerts.c.state == "RESOLVED")
                   .order_by(d.create_time).limit(limit))
        return self.conn.execute(deliveries.delete().where(d.id.in_(settled.scalar_subquery()))).rowcount


class Repositories:
    """The alerts repositories on one connection (`uow.repos`)."""

    def __init__(self, conn):
        self.rules = RuleRepository(conn)
        self.alerts = AlertRepository(conn)
        self.silences = SilenceRepository(conn)
        self.incidents = IncidentRepository(conn)
        self.signals = SignalRepository(conn)
        self.obligations = ObligationRepository(conn)
        self.deliveries = DeliveryRepository(conn)
