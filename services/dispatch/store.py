"""Dispatch tables and repositories, in the `dispatch` schema."""
from __future__ import annotations

from dataclasses import fields as dataclass_fields
from datetime import datetime

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Table, Text, and_,
    exists, literal, or_, select, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from services.runtime.app import RuntimeTables
from services.runtime.audit import Timeline, TimelineEntry, timeline_table

from .domain import Assignment, DispatchCase, Recommendation, Unit

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
    Column("position_accuracy_m", Float, nullable=False, server_default="0"),
    Index("units_kind_status", "kind", "status"),
    Index("units_lat_lon", "lat", "lon"),
)

# The duty roster (勤务报备): a unit is on duty while one of its shifts covers the time.
shifts = Table(
    "shifts", metadata,
    Column("shift_id", String(60), primary_key=True),
    Column("unit_id", String(30), ForeignKey(f"{SCHEMA}.units.unit_id"), nullable=False),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("end_time", DateTime(timezone=True), nullable=False),
    Column("area", String(40), nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Index("shifts_unit_time", "unit_id", "start_time", "end_time"),
)

# Grids and their arrival target (the 1-3-5 minute response circle), from the sample city.
grids = Table(
    "grids", metadata,
    Column("grid_id", String(30), primary_key=True),
    Column("station_id", String(20), nullable=False),
    Column("arrival_target_s", Integer, nullable=False),
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
    Column("arrival_target_s", Integer, nullable=False, server_default="0"),
    Column("accept_time", DateTime(timezone=True)),
    Column("arrive_time", DateTime(timezone=True)),
    Column("close_time", DateTime(timezone=True)),
    Index("cases_create_time", "create_time", "id"),
    Index("cases_station_status", "station_id", "status"),
)

case_timeline = Timeline(timeline_table(metadata, "case_timeline", "case_id", "cases.id"), "case_id")
unit_timeline = Timeline(timeline_table(metadata, "unit_timeline", "unit_id", "units.unit_id"), "unit_id")

assignments = Table(
    "assignments", metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey(f"{SCHEMA}.cases.id"), nullable=False, index=True),
    Column("unit_id", String(30), ForeignKey(f"{SCHEMA}.units.unit_id"), nullable=False),
    Column("call_sign", String(30), nullable=False),
    Column("kind", String(40), nullable=False),
    Column("station_id", String(20), nullable=False),
    Column("officers", JSONB, nullable=False, server_default="[]"),
    Column("role", String(30), nullable=False),
    Column("capability", String(40), nullable=False, server_default=""),
    Column("state", String(20), nullable=False),
    Column("version", Integer, nullable=False),
    Column("reason", Text, nullable=False, server_default=""),
    Column("arrival_target_s", Integer, nullable=False, server_default="0"),
    Column("offer_time", DateTime(timezone=True), nullable=False),
    Column("offer_expire_time", DateTime(timezone=True)),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("accept_time", DateTime(timezone=True)),
    Column("en_route_time", DateTime(timezone=True)),
    Column("arrive_time", DateTime(timezone=True)),
    Column("clear_time", DateTime(timezone=True)),
    Column("report_back_time", DateTime(timezone=True)),
    Column("decline_reason", Text, nullable=False, server_default=""),
    Column("outcome", String(30), nullable=False, server_default=""),
    Column("notes", Text, nullable=False, server_default=""),
    Column("evidence", JSONB, nullable=False, server_default="[]"),
    Index("assignments_unit_state", "unit_id", "state"),
    # The offer sweeper's scan: open offers by expiry.
    Index("assignments_open_offers", "offer_expire_time", postgresql_where=text("state = 'OFFERED'")),
)


def on_duty_at(at: datetime):
    """SQL: the unit has a shift covering `at`."""
    return exists().where(shifts.c.unit_id == units.c.unit_id, shifts.c.start_time <= at, shifts.c.end_time > at)


def _to_unit(r, stale_before: datetime | None) -> Unit:
    stale = stale_before is not None and (r.position_time is None or r.position_time < stale_before)
    return Unit(r.unit_id, r.call_sign, r.kind, r.station_id, list(r.skills), r.vehicle, list(r.officers),
                r.status, r.lon, r.lat, r.position_time, bool(r.on_duty), stale)


class UnitRepository:
    """Units as seen at one time: on duty by the roster, position stale by age."""

    def __init__(self, conn, *, now: datetime, stale_before: datetime | None = None):
        self.conn = conn
        self.now = now
        self.stale_before = stale_before

    def _select(self):
        return select(units, on_duty_at(self.now).label("on_duty"))

    def get(self, unit_id: str, *, lock: bool = False) -> Unit | None:
        q = self._select().where(units.c.unit_id == unit_id)
        if lock:
            q = q.with_for_update(of=units)
        row = self.conn.execute(q).first()
        return _to_unit(row, self.stale_before) if row else None

    def list(self, *, limit: int, after: str | None, station_id: str = "", kind: str = "", status: str = "",
             ) -> list[Unit]:
        q = self._select().order_by(units.c.unit_id).limit(limit)
        if after:
            q = q.where(units.c.unit_id > after)
        if station_id:
            q = q.where(units.c.station_id == station_id)
        if kind:
            q = q.where(units.c.kind == kind)
        if status == "OFF_DUTY":
            q = q.where(~on_duty_at(self.now))
        elif status:
            q = q.where(units.c.status == status, on_duty_at(self.now))
        return [_to_unit(r, self.stale_before) for r in self.conn.execute(q)]

    def available(self, kinds: set[str] | None = None) -> list[Unit]:
        """Units that can take an offer now: on duty and available, of the given kinds."""
        q = self._select().where(units.c.status == "AVAILABLE", on_duty_at(self.now))
        if kinds is not None:
            q = q.where(units.c.kind.in_(sorted(kinds)))
        return [_to_unit(r, self.stale_before) for r in self.conn.execute(q)]

    def candidates(self, kinds: set[str], *, station_id: str, box: tuple[float, float, float, float] | None,
                   ) -> list[Unit]:
        """What ranking needs of available on-duty units of `kinds`: all of the station's, and
        the others inside `box` (min lon, min lat, max lon, max lat; None: all)."""
        c = units.c
        q = select(c.unit_id, c.call_sign, c.kind, c.station_id, c.status, c.lon, c.lat, c.position_time).where(
            c.status == "AVAILABLE", c.kind.in_(sorted(kinds)), on_duty_at(self.now))
        if box is not None:
            q = q.where(or_(c.station_id == station_id, and_(c.lon.between(box[0], box[2]),
                                                            c.lat.between(box[1], box[3]))))
        return [Unit(r.unit_id, r.call_sign, r.kind, r.station_id, [], "", [], r.status, r.lon, r.lat,
                     r.position_time, True) for r in self.conn.execute(q)]

    def claim_for_offer(self, unit_id: str) -> Unit | None:
        """Marks an available on-duty unit as offered and returns it; None when someone else took it first."""
        row = self.conn.execute(
            units.update().where(units.c.unit_id == unit_id, units.c.status == "AVAILABLE", on_duty_at(self.now))
            .values(status="OFFERED").returning(*units.c, literal(True).label("on_duty"))).first()
        return _to_unit(row, self.stale_before) if row else None

    def set_status(self, unit_id: str, status: str) -> None:
        self.conn.execute(units.update().where(units.c.unit_id == unit_id).values(status=status))

    def update(self, unit_id: str, values: dict) -> None:
        self.conn.execute(units.update().where(units.c.unit_id == unit_id).values(**values))

    def move(self, unit_id: str, lon: float, lat: float, fix_time: datetime, accuracy_m: float) -> bool:
        """Records a position unless a newer fix is already stored; False for an unknown unit."""
        row = self.conn.execute(
            units.update().where(units.c.unit_id == unit_id,
                                 or_(units.c.position_time.is_(None), units.c.position_time <= fix_time))
            .values(lon=lon, lat=lat, position_time=fix_time, position_accuracy_m=accuracy_m)
            .returning(units.c.unit_id)).first()
        if row:
            return True
        return self.conn.execute(select(units.c.unit_id).where(units.c.unit_id == unit_id)).first() is not None

    def upsert(self, values: dict) -> None:
        stmt = insert(units).values(**values)
        # Seeding refreshes static data but never a live status or position.
        static = ("call_sign", "kind", "station_id", "skills", "vehicle", "officers")
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["unit_id"], set_={k: stmt.excluded[k] for k in static}))


class ShiftRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, values: dict) -> bool:
        """Stores a shift; False when its id exists already."""
        return self.conn.execute(insert(shifts).values(**values).on_conflict_do_nothing()
                                 .returning(shifts.c.shift_id)).first() is not None

    def overlapping(self, unit_id: str, start: datetime, end: datetime) -> list:
        return self.conn.execute(select(shifts).where(
            shifts.c.unit_id == unit_id, shifts.c.start_time < end, shifts.c.end_time > start)).all()

    def list(self, unit_id: str, *, limit: int, after: tuple[datetime, str] | None) -> list:
        q = select(shifts).where(shifts.c.unit_id == unit_id)
        if after:
            t, sid = after
            q = q.where(or_(shifts.c.start_time > t, and_(shifts.c.start_time == t, shifts.c.shift_id > sid)))
        return self.conn.execute(q.order_by(shifts.c.start_time, shifts.c.shift_id).limit(limit)).all()


class GridRepository:
    def __init__(self, conn):
        self.conn = conn

    def upsert(self, grid_id: str, station_id: str, arrival_target_s: int) -> None:
        stmt = insert(grids).values(grid_id=grid_id, station_id=station_id, arrival_target_s=arrival_target_s)
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["grid_id"], set_={"station_id": stmt.excluded.station_id,
                                              "arrival_target_s": stmt.excluded.arrival_target_s}))

    def arrival_target_s(self, grid_id: str) -> int:
        """The grid's arrival target; 0 when the grid is unknown."""
        if not grid_id:
            return 0
        return self.conn.execute(select(grids.c.arrival_target_s).where(grids.c.grid_id == grid_id)).scalar() or 0


def _case_values(c: DispatchCase) -> dict:
    return dict(
        id=c.id, report=c.report, station_id=c.station_id, grid_id=c.grid_id, incident_type=c.incident_type,
        priority=c.priority, level=c.level, status=c.status, lon=c.lon, lat=c.lat, address_text=c.address_text,
        summary=c.summary, recommendations=[vars(r) for r in c.recommendations], report_time=c.report_time,
        create_time=c.create_time, update_time=c.update_time, arrival_target_s=c.arrival_target_s,
        accept_time=c.accept_time, arrive_time=c.arrive_time, close_time=c.close_time,
    )


def _to_case(r, entries: list[TimelineEntry], assigned: list[Assignment] | None = None) -> DispatchCase:
    return DispatchCase(
        id=r.id, report=r.report, station_id=r.station_id, grid_id=r.grid_id, incident_type=r.incident_type,
        priority=r.priority, level=r.level, status=r.status, lon=r.lon, lat=r.lat, address_text=r.address_text,
        summary=r.summary, recommendations=[Recommendation(**x) for x in r.recommendations],
        report_time=r.report_time, create_time=r.create_time, update_time=r.update_time, timeline=entries,
        arrival_target_s=r.arrival_target_s, accept_time=r.accept_time, arrive_time=r.arrive_time,
        close_time=r.close_time, assignments=assigned or [],
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

    def get(self, case_id: str, *, lock: bool = False, with_timeline: bool = True) -> DispatchCase | None:
        q = select(cases).where(cases.c.id == case_id)
        if lock:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        if row is None:
            return None
        entries = case_timeline.of(self.conn, case_id) if with_timeline else []
        return _to_case(row, entries, AssignmentRepository(self.conn).of_case(case_id))

    def save(self, c: DispatchCase, entries: list[TimelineEntry]) -> None:
        """Writes a changed case and appends its new timeline entries."""
        values = _case_values(c)
        values.pop("id")
        self.conn.execute(cases.update().where(cases.c.id == c.id).values(**values))
        case_timeline.add(self.conn, c.id, entries)
        c.timeline.extend(entries)

    def list(self, *, limit: int, after: tuple[datetime, str] | None, station_id: str = "", status: str = "",
             report: str = "", levels: list[str] | None = None, flagged: bool = False) -> list[DispatchCase]:
        q = select(cases)
        if flagged:
            q = q.where(cases.c.id.in_(select(case_followups.c.case_id).where(case_followups.c.flagged)))
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
        rows = self.conn.execute(q).all()
        by_case = AssignmentRepository(self.conn).of_cases([r.id for r in rows])
        return [_to_case(r, [], by_case.get(r.id, [])) for r in rows]


_ASSIGNMENT_FIELDS = [f.name for f in dataclass_fields(Assignment)]


def _to_assignment(r) -> Assignment:
    m = r._mapping
    return Assignment(**{k: m[k] for k in _ASSIGNMENT_FIELDS})


class AssignmentRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, a: Assignment) -> None:
        self.conn.execute(assignments.insert().values(**{k: getattr(a, k) for k in _ASSIGNMENT_FIELDS}))

    def save(self, a: Assignment) -> None:
        values = {k: getattr(a, k) for k in _ASSIGNMENT_FIELDS if k not in ("id", "case_id")}
        self.conn.execute(assignments.update().where(assignments.c.id == a.id).values(**values))

    def get(self, case_id: str, assignment_id: str, *, lock: bool = False) -> Assignment | None:
        q = select(assignments).where(assignments.c.id == assignment_id, assignments.c.case_id == case_id)
        if lock:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return _to_assignment(row) if row else None

    def of_case(self, case_id: str) -> list[Assignment]:
        q = select(assignments).where(assignments.c.case_id == case_id).order_by(assignments.c.offer_time,
                                                                                  assignments.c.id)
        return [_to_assignment(r) for r in self.conn.execute(q)]

    def of_cases(self, case_ids: list[str]) -> dict[str, list[Assignment]]:
        out: dict[str, list[Assignment]] = {}
        if case_ids:
            q = select(assignments).where(assignments.c.case_id.in_(case_ids)).order_by(
                assignments.c.offer_time, assignments.c.id)
            for r in self.conn.execute(q):
                out.setdefault(r.case_id, []).append(_to_assignment(r))
        return out

    def active_of_unit(self, unit_id: str) -> list[Assignment]:
        """The unit's offers and assignments still under way (what its phone should show)."""
        q = select(assignments).where(assignments.c.unit_id == unit_id,
                                      assignments.c.state.in_(["OFFERED", "ACCEPTED", "EN_ROUTE", "ON_SCENE"]))
        return [_to_assignment(r) for r in self.conn.execute(q.order_by(assignments.c.offer_time))]

    def due_offers(self, now: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """(case_id, assignment_id) of offers past their expiry, skipping rows another sweeper holds."""
        q = (select(assignments.c.case_id, assignments.c.id)
             .where(assignments.c.state == "OFFERED", assignments.c.offer_expire_time <= now)
             .order_by(assignments.c.offer_expire_time).limit(limit).with_for_update(skip_locked=True))
        return [(r.case_id, r.id) for r in self.conn.execute(q)]


# -- Emergency stop-payment hand-offs (紧急止付) ----------------------------------
# A durable outbox of requests to the anti-fraud centre: a row is written in
# the transaction that decides the hand-off and stays until the centre's
# result is final (services/dispatch/antifraud.py delivers it).
stop_payments = Table(
    "stop_payments", metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey(f"{SCHEMA}.cases.id"), nullable=False, index=True),
    # Sent to the centre on every attempt; the centre deduplicates on it.
    Column("idempotency_key", String(120), nullable=False, unique=True),
    Column("state", String(30), nullable=False),
    Column("banks", ARRAY(Text), nullable=False, server_default="{}"),
    Column("victim_account", String(40), nullable=False, server_default=""),
    Column("amount_fen", BigInteger, nullable=False, server_default="0"),
    Column("victim_name", Text, nullable=False, server_default=""),
    Column("victim_phone", String(40), nullable=False, server_default=""),
    Column("description", Text, nullable=False, server_default=""),
    Column("requested_by", Text, nullable=False),
    Column("requested_roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("receipt_id", String(80), nullable=False, server_default=""),
    Column("frozen_amount_fen", BigInteger, nullable=False, server_default="0"),
    Column("result_text", Text, nullable=False, server_default=""),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("checks", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("deliver_time", DateTime(timezone=True)),
    Column("result_time", DateTime(timezone=True)),
    # Due work (deliver or ask for the result); NULL once the result is final.
    Column("next_attempt_time", DateTime(timezone=True)),
    # The sender that has the hand-off in hand (a call to the centre under way) and until when;
    # another sender takes it only after lease_until (the first one died mid-call).
    Column("claimed_by", String(120)),
    Column("lease_until", DateTime(timezone=True)),
    Index("stop_payments_due", "next_attempt_time", postgresql_where=text("next_attempt_time IS NOT NULL")),
)


# -- Citizen follow-up (回访) -----------------------------------------------------
case_followups = Table(
    "case_followups", metadata,
    # One follow-up per case.
    Column("case_id", String(40), ForeignKey(f"{SCHEMA}.cases.id"), primary_key=True),
    Column("station_id", String(20), nullable=False),
    Column("satisfaction", String(30), nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("actor", Text, nullable=False),
    Column("roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("rate_time", DateTime(timezone=True), nullable=False),
    Column("flagged", Boolean, nullable=False),
    Index("case_followups_station_time", "station_id", "rate_time"),
)

# The officers rated with a case: those of the units that saw it through.
case_followup_officers = Table(
    "case_followup_officers", metadata,
    Column("case_id", String(40), ForeignKey(f"{SCHEMA}.case_followups.case_id"), primary_key=True),
    Column("officer_id", String(20), primary_key=True),
    Column("officer_name", Text, nullable=False, server_default=""),
    Column("station_id", String(20), nullable=False),
    Column("unit_id", String(30), nullable=False),
)
