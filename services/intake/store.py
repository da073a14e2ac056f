"""Intake tables and repository, in the `intake` schema."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Identity, Index, Integer, MetaData, String, Table, Text,
    and_, func, or_, select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from services.runtime.app import RuntimeTables
from services.runtime.audit import Timeline, TimelineEntry, timeline_table

from .domain import (
    Address, AddressMatch, Attachment, Classification, GridArea, Report, StationArea, geometry_from_geojson,
)

SCHEMA = "intake"
metadata = MetaData(schema=SCHEMA)
runtime_tables = RuntimeTables.add_to(metadata)

stations = Table(
    "stations", metadata,
    Column("station_id", String(20), primary_key=True),
    Column("name", Text, nullable=False),
    Column("district", Text, nullable=False),
    Column("hq_lon", Float, nullable=False),
    Column("hq_lat", Float, nullable=False),
    Column("boundary", JSONB, nullable=False),
)

grids = Table(
    "grids", metadata,
    Column("grid_id", String(30), primary_key=True),
    Column("station_id", String(20), ForeignKey(f"{SCHEMA}.stations.station_id"), nullable=False),
    Column("name", Text, nullable=False),
    Column("arrival_target_seconds", Integer, nullable=False),
    Column("boundary", JSONB, nullable=False),
)

reports = Table(
    "reports", metadata,
    Column("id", String(40), primary_key=True),
    Column("channel", String(30), nullable=False),
    Column("caller_phone", String(30), nullable=False, server_default=""),
    Column("caller_name", String(60), nullable=False, server_default=""),
    Column("lon", Float),
    Column("lat", Float),
    Column("accuracy_m", Float, nullable=False, server_default="0"),
    Column("location_source", String(30), nullable=False, server_default=""),
    Column("address_text", Text, nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("attachments", JSONB, nullable=False, server_default="[]"),
    Column("language", String(20), nullable=False, server_default="zh-CN"),
    Column("category", String(20), nullable=False),
    Column("incident_type", String(40), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("classification_reason", Text, nullable=False),
    Column("rule_ids", ARRAY(Text), nullable=False, server_default="{}"),
    Column("corrected", Boolean, nullable=False, server_default="false"),
    Column("status", String(20), nullable=False),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("grid_id", String(30), nullable=False, server_default=""),
    Column("border_case", Boolean, nullable=False, server_default="false"),
    Column("merged_into", String(40), nullable=False, server_default=""),
    Column("receive_time", DateTime(timezone=True), nullable=False),
    Column("answer_time", DateTime(timezone=True)),
    Column("classify_time", DateTime(timezone=True)),
    Column("hand_off_time", DateTime(timezone=True)),
    Column("satisfaction", String(30), nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("address_code", String(21), nullable=False, server_default=""),
    Column("address_match", JSONB),
    Index("reports_receive_time", "receive_time", "id"),
    Index("reports_station_time", "station_id", "receive_time"),
)

# The standard address gazetteer (标准地址库).
addresses = Table(
    "addresses", metadata,
    Column("code", String(21), primary_key=True),
    Column("full_address", Text, nullable=False),
    Column("district", Text, nullable=False),
    Column("street", Text, nullable=False),
    Column("community", Text, nullable=False),
    Column("road", Text, nullable=False),
    Column("house_number", Text, nullable=False),
    Column("building", Text, nullable=False, server_default=""),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("grid_id", String(30), nullable=False, server_default=""),
)

timeline = Timeline(timeline_table(metadata, "report_timeline", "report_id", "reports.id"), "report_id")

# -- consultations, knowledge base, duplicates and follow-up (即问即复、合并、回填) --

# The consultation knowledge base (即问即复): seeded entries and experts' answers.
knowledge_entries = Table(
    "knowledge_entries", metadata,
    Column("seq", BigInteger, Identity(always=True), unique=True, nullable=False),
    Column("entry_id", String(40), primary_key=True),
    Column("topic", String(20), nullable=False),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("keywords", ARRAY(Text), nullable=False, server_default="{}"),
    Column("source", String(10), nullable=False),
    Column("source_consultation", String(40), nullable=False, server_default=""),
    Column("author", Text, nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
)

# One row per consultation report: answered at once, or queued for an expert (为民服务圈).
consultations = Table(
    "consultations", metadata,
    Column("report_id", String(40), ForeignKey(f"{SCHEMA}.reports.id"), primary_key=True),
    Column("question", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("topic", String(20), nullable=False, server_default=""),
    Column("answer", Text, nullable=False, server_default=""),
    Column("entry_id", String(40), nullable=False, server_default=""),
    Column("score", Float, nullable=False, server_default="0"),
    Column("answered_at_once", Boolean, nullable=False, server_default="false"),
    Column("expert", Text, nullable=False, server_default=""),
    Column("expert_name", Text, nullable=False, server_default=""),
    Column("suggestions", JSONB, nullable=False, server_default="[]"),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("claim_time", DateTime(timezone=True)),
    Column("answer_time", DateTime(timezone=True)),
    Index("consultations_status_time", "status", "create_time", "report_id"),
)

# What happened to a report after intake: merge reason, its dispatch case or
# 12345 work order, the citizen's rating comment.
report_handling = Table(
    "report_handling", metadata,
    Column("report_id", String(40), ForeignKey(f"{SCHEMA}.reports.id"), primary_key=True),
    Column("merge_reason", Text, nullable=False, server_default=""),
    Column("dispatch_case", String(60), nullable=False, server_default=""),
    Column("work_order", String(60), nullable=False, server_default=""),
    Column("satisfaction_comment", Text, nullable=False, server_default=""),
    Column("rate_time", DateTime(timezone=True)),
    Index("report_handling_case", "dispatch_case"),
)

# Duplicate search looks at recent reports near a point or from one caller.
Index("reports_caller_time", reports.c.caller_phone, reports.c.receive_time)
Index("reports_merged_into", reports.c.merged_into)


def _report_values(r: Report) -> dict:
    c = r.classification
    return dict(
        id=r.id, channel=r.channel, caller_phone=r.caller_phone, caller_name=r.caller_name,
        lon=r.lon, lat=r.lat, accuracy_m=r.accuracy_m, location_source=r.location_source,
        address_text=r.address_text, description=r.description,
        attachments=[vars(a) for a in r.attachments], language=r.language,
        category=c.category, incident_type=c.incident_type, priority=c.priority,
        classification_reason=c.reason, rule_ids=c.rule_ids, corrected=c.corrected,
        status=r.status, station_id=r.station_id, grid_id=r.grid_id, border_case=r.border_case,
        merged_into=r.merged_into, receive_time=r.receive_time, answer_time=r.answer_time,
        classify_time=r.classify_time, hand_off_time=r.hand_off_time, satisfaction=r.satisfaction,
        create_time=r.create_time, update_time=r.update_time,
        address_code=r.address_code, address_match=_match_values(r.address_match),
    )


def _match_values(m: AddressMatch | None) -> dict | None:
    if m is None:
        return None
    return {"method": m.method, "confidence": m.confidence, "address": vars(m.address) if m.address else None}


def _match_from(doc: dict | None) -> AddressMatch | None:
    if not doc:
        return None
    return AddressMatch(doc["method"], doc["confidence"], Address(**doc["address"]) if doc.get("address") else None)


def _to_report(row, entries: list[TimelineEntry]) -> Report:
    return Report(
        id=row.id, channel=row.channel, caller_phone=row.caller_phone, caller_name=row.caller_name,
        lon=row.lon, lat=row.lat, accuracy_m=row.accuracy_m, location_source=row.location_source,
        address_text=row.address_text, description=row.description,
        attachments=[Attachment(**a) for a in row.attachments], language=row.language,
        classification=Classification(row.category, row.incident_type, row.priority, row.classification_reason,
                                      list(row.rule_ids), row.corrected),
        status=row.status, station_id=row.station_id, grid_id=row.grid_id, border_case=row.border_case,
        merged_into=row.merged_into, receive_time=row.receive_time, answer_time=row.answer_time,
        classify_time=row.classify_time, hand_off_time=row.hand_off_time, satisfaction=row.satisfaction,
        create_time=row.create_time, update_time=row.update_time, timeline=entries,
        address_code=row.address_code, address_match=_match_from(row.address_match),
    )


class ReportRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, report: Report) -> None:
        self.conn.execute(reports.insert().values(**_report_values(report)))
        timeline.add(self.conn, report.id, report.timeline)

    def update(self, report: Report, new_entries: list[TimelineEntry]) -> None:
        values = _report_values(report)
        values.pop("id")
        values.pop("create_time")
        self.conn.execute(reports.update().where(reports.c.id == report.id).values(**values))
        timeline.add(self.conn, report.id, new_entries)

    def get_for_update(self, report_id: str) -> Report | None:
        row = self.conn.execute(select(reports).where(reports.c.id == report_id).with_for_update()).first()
        if row is None:
            return None
        from .handling import attach

        return attach(self.conn, _to_report(row, timeline.of(self.conn, report_id)))

    def recent_invalid_calls(self, phone: str, since: datetime) -> int:
        """Invalid reports (prank, misdial, harassment) from one number since a time."""
        return self.conn.execute(
            select(func.count()).select_from(reports).where(
                reports.c.caller_phone == phone, reports.c.receive_time >= since, reports.c.category == "INVALID")
        ).scalar_one()

    def get(self, report_id: str) -> Report | None:
        row = self.conn.execute(select(reports).where(reports.c.id == report_id)).first()
        if row is None:
            return None
        from .handling import attach  # consultation, duplicates, follow-up links

        return attach(self.conn, _to_report(row, timeline.of(self.conn, report_id)))

    def list(self, *, limit: int, after: tuple[datetime, str] | None, filters: dict) -> list[Report]:
        q = select(reports)
        for column in ("station_id", "channel", "category", "incident_type", "priority", "status"):
            if filters.get(column):
                q = q.where(reports.c[column] == filters[column])
        if filters.get("start"):
            q = q.where(reports.c.receive_time >= filters["start"])
        if filters.get("end"):
            q = q.where(reports.c.receive_time < filters["end"])
        if filters.get("query"):
            # Every word must occur in the description or the address (案情或地址). Words are split on
            # spaces and on "+", which form-encoded query strings use for a space and the gateway keeps.
            for word in filters["query"].replace("+", " ").split():
                like = "%" + word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
                q = q.where(or_(reports.c.description.ilike(like, escape="\\"),
                                reports.c.address_text.ilike(like, escape="\\")))
        if after:
            t, rid = after
            q = q.where(or_(reports.c.receive_time < t, and_(reports.c.receive_time == t, reports.c.id < rid)))
        q = q.order_by(reports.c.receive_time.desc(), reports.c.id.desc()).limit(limit)
        return [_to_report(row, []) for row in self.conn.execute(q)]


def load_areas(conn) -> tuple[list[StationArea], list[GridArea]]:
    st = [
        StationArea(r.station_id, r.name, r.district, r.hq_lon, r.hq_lat, geometry_from_geojson(r.boundary))
        for r in conn.execute(select(stations).order_by(stations.c.station_id))
    ]
    gr = [
        GridArea(r.grid_id, r.station_id, r.name, r.arrival_target_seconds, geometry_from_geojson(r.boundary))
        for r in conn.execute(select(grids).order_by(grids.c.grid_id))
    ]
    return st, gr


def upsert_station(conn, values: dict) -> None:
    stmt = insert(stations).values(**values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["station_id"], set_={
        k: stmt.excluded[k] for k in values if k != "station_id"}))


def upsert_grid(conn, values: dict) -> None:
    stmt = insert(grids).values(**values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["grid_id"], set_={
        k: stmt.excluded[k] for k in values if k != "grid_id"}))


def upsert_addresses(conn, rows: list[dict]) -> None:
    for start in range(0, len(rows), 1000):
        stmt = insert(addresses).values(rows[start:start + 1000])
        conn.execute(stmt.on_conflict_do_update(index_elements=["code"], set_={
            k: stmt.excluded[k] for k in rows[0] if k != "code"}))


def load_addresses(conn) -> list[Address]:
    return [
        Address(r.code, r.full_address, r.district, r.street, r.community, r.road, r.house_number, r.building,
                r.lon, r.lat, r.station_id, r.grid_id)
        for r in conn.execute(select(addresses).order_by(addresses.c.code))
    ]
