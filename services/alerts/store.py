"""Alerts tables, in the `alerts` schema."""
from __future__ import annotations

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Identity, Index, Integer, LargeBinary, MetaData,
    PrimaryKeyConstraint, String, Table, Text, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from services.runtime.app import RuntimeTables
from services.runtime.audit import Timeline, timeline_table

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

