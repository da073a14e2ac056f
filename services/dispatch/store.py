"""Dispatch tables and repositories, in the `dispatch` schema."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean, Column, DateTime, Float, Index, Integer, MetaData, String, Table, Text, and_, or_, select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from services.runtime.app import RuntimeTables
from services.runtime.audit import Timeline, TimelineEntry, timeline_table

from .domain import DispatchCase, Recommendation, Unit

SCHEMA = "dispatch"
metadata = MetaData(schema=SCHEMA)
runtime_tables = RuntimeTables.add_to(metadata)

units = Table(
    "units", metadata,
    Column("unit_id", String(30), primary_key=True),
    Column("call_sign", String(30), nullable=False, unique=True),
    Column("kind", String(40), nullable=False),
    Column("station_id", String(20), nullable=False, index=True),
    Column("skills", ARRAY(Text), nullable=False, server_default="{}"),
    Column("vehicle", String(30), nullable=False, server_default=""),
    Column("officers", JSONB, nullable=False, server_default="[]"),
    Column("status", String(20), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("position_time", DateTime(timezone=True)),
    Column("on_duty", Boolean, nullable=False, server_default="true"),
)

cases = Table(
    "cases", metadata,
    Column("id", String(40), primary_key=True),
    # One case per report: a redelivered IncidentReported cannot open a second.
    Column("report", String(60), nullable=False, unique=True),
    Column("station_id", String(20), nullable=False),
    Column("grid_id", String(30), nullable=False, server_default=""),
    Column("incident_type", String(40), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("level", String(20), nullable=False),
    Column("status", String(20), nullable=False),
    Column("lon", Float),
    Column("lat", Float),
    Column("address_text", Text, nullable=False, server_default=""),
    Column("summary", Text, nullable=False, server_default=""),
    Column("recommendations", JSONB, nullable=False, server_default="[]"),
    Column("report_time", DateTime(timezone=True), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Index("cases_create_time", "create_time", "id"),
    Index("cases_station_status", "station_id", "status"),
)

case_timeline = Timeline(timeline_table(metadata, "case_timeline", "case_id", "cases.id"), "case_id")

TABLES = ["units", "cases", "case_timeline"] + runtime_tables.names


def _to_unit(r) -> Unit:
    return Unit(r.unit_id, r.call_sign, r.kind, r.station_id, list(r.skills), r.vehicle, list(r.officers),
                r.status, r.lon, r.lat, r.position_time, r.on_duty)


class UnitRepository:
    def __init__(self, conn):
        self.conn = conn

    def get(self, unit_id: str) -> Unit | None:
        row = self.conn.execute(select(units).where(units.c.unit_id == unit_id)).first()
        return _to_unit(row) if row else None

    def list(self, *, limit: int, after: str | None, station_id: str = "", kind: str = "", status: str = "") -> list[Unit]:
        q = select(units).order_by(units.c.unit_id).limit(limit)
        if after:
            q = q.where(units.c.unit_id > after)
        if station_id:
            q = q.where(units.c.station_id == station_id)
        if kind:
            q = q.where(units.c.kind == kind)
        if status:
            q = q.where(units.c.status == status)
        return [_to_unit(r) for r in self.conn.execute(q)]

    def available(self) -> list[Unit]:
        q = select(units).where(units.c.on_duty.is_(True), units.c.status == "AVAILABLE")
        return [_to_unit(r) for r in self.conn.execute(q)]

    def upsert(self, values: dict) -> None:
        stmt = insert(units).values(**values)
        # Seeding refreshes static data but never a live status or position.
        static = ("call_sign", "kind", "station_id", "skills", "vehicle", "officers")
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["unit_id"], set_={k: stmt.excluded[k] for k in static}))


def _case_values(c: DispatchCase) -> dict:
    return dict(
        id=c.id, report=c.report, station_id=c.station_id, grid_id=c.grid_id, incident_type=c.incident_type,
        priority=c.priority, level=c.level, status=c.status, lon=c.lon, lat=c.lat, address_text=c.address_text,
        summary=c.summary, recommendations=[vars(r) for r in c.recommendations], report_time=c.report_time,
        create_time=c.create_time, update_time=c.update_time,
    )


def _to_case(r, entries: list[TimelineEntry]) -> DispatchCase:
    return DispatchCase(
        id=r.id, report=r.report, station_id=r.station_id, grid_id=r.grid_id, incident_type=r.incident_type,
        priority=r.priority, level=r.level, status=r.status, lon=r.lon, lat=r.lat, address_text=r.address_text,
        summary=r.summary, recommendations=[Recommendation(**x) for x in r.recommendations],
        report_time=r.report_time, create_time=r.create_time, update_time=r.update_time, timeline=entries,
    )


class CaseRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, c: DispatchCase) -> bool:
        """Stores a new case; False when the report already has one."""
        created = self.conn.execute(
            insert(cases).values(**_case_values(c)).on_conflict_do_nothing(index_elements=["report"])
            .returning(cases.c.id)
        ).first()
        if not created:
            return False
        case_timeline.add(self.conn, c.id, c.timeline)
        return True

    def get(self, case_id: str) -> DispatchCase | None:
        row = self.conn.execute(select(cases).where(cases.c.id == case_id)).first()
        if row is None:
            return None
        return _to_case(row, case_timeline.of(self.conn, case_id))

    def list(self, *, limit: int, after: tuple[datetime, str] | None, station_id: str = "", status: str = "",
             report: str = "", levels: list[str] | None = None) -> list[DispatchCase]:
        q = select(cases)
        if station_id:
            q = q.where(cases.c.station_id == station_id)
        if status:
            q = q.where(cases.c.status == status)
        if report:
            q = q.where(cases.c.report == report)
        if levels:
            q = q.where(cases.c.level.in_(levels))
        if after:
            t, cid = after
            q = q.where(or_(cases.c.create_time < t, and_(cases.c.create_time == t, cases.c.id < cid)))
        q = q.order_by(cases.c.create_time.desc(), cases.c.id.desc()).limit(limit)
        return [_to_case(r, []) for r in self.conn.execute(q)]
