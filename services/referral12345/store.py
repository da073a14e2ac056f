"""Referral tables and repositories (the write side), in the `referral` schema.

Repositories load and save the aggregates (work orders, unreasonable-request records) and the
department catalogue; `Repositories(conn)` gives them to a unit of work. Lists and figures are
the read side, in queries.py.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Identity, Index, Integer, MetaData, String, Table,
    Text, UniqueConstraint, func, select,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from services.runtime.app import RuntimeTables
from services.runtime.audit import timeline_table
from services.runtime.db import insert_once

from .domain import Assignment, CitizenUpdate, Department, Matter, OrderEntry, UnreasonableRecord, WorkOrder

SCHEMA = "referral"
metadata = MetaData(schema=SCHEMA)
runtime_tables = RuntimeTables.add_to(metadata)

departments = Table(
    "departments", metadata,
    Column("dept_id", String(20), primary_key=True),
    Column("name", Text, nullable=False),
    # [{"code": "ILLEGAL_PARKING", "label": "违章停车"}, ...]
    Column("matters", JSONB, nullable=False, server_default="[]"),
    Column("districts", ARRAY(Text), nullable=False, server_default="{}"),
    Column("supervisor", Text, nullable=False, server_default=""),
    Column("phone", String(30), nullable=False, server_default=""),
)

work_orders = Table(
    "work_orders", metadata,
    Column("id", String(40), primary_key=True),
    Column("source", String(20), nullable=False),
    # At most one order per 110 report (exactly-once referral).
    Column("report", String(80), unique=True),
    Column("hotline_ticket_id", String(80), nullable=False, server_default=""),
    Column("category", Text, nullable=False, server_default=""),
    Column("matter_code", String(60), nullable=False, server_default=""),
    Column("description", Text, nullable=False),
    Column("lon", Float), Column("lat", Float),
    Column("accuracy_m", Float, nullable=False, server_default="0"),
    Column("address_text", Text, nullable=False, server_default=""),
    Column("district", Text, nullable=False, server_default=""),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("citizen_phone", String(30), nullable=False, server_default="", index=True),
    Column("citizen_name", Text, nullable=False, server_default=""),
    Column("confidential", Boolean, nullable=False, server_default="false"),
    Column("urgency", Integer, nullable=False),
    Column("deadline", DateTime(timezone=True)),
    Column("status", String(30), nullable=False),
    Column("preliminary_station", String(40), nullable=False, server_default=""),
    Column("preliminary_reason", Text, nullable=False, server_default=""),
    Column("overdue", Boolean, nullable=False, server_default="false"),
    Column("satisfaction", String(30), nullable=False, server_default=""),
    Column("satisfaction_comment", Text, nullable=False, server_default=""),
    Column("reopen_count", Integer, nullable=False, server_default="0"),
    Column("transferred_report", String(80), nullable=False, server_default=""),
    Column("transferred_report_status", String(40), nullable=False, server_default=""),
    Column("unreasonable_request", String(80), nullable=False, server_default=""),
    Column("attachments", JSONB, nullable=False, server_default="[]"),
    Column("request_time", DateTime(timezone=True), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("close_time", DateTime(timezone=True)),
    Column("repeat_caller", Boolean, nullable=False, server_default="false"),
    Column("prior_requests", Integer, nullable=False, server_default="0"),
    Column("escalated_to_name", Text, nullable=False, server_default=""),
    Column("escalated_to_phone", String(30), nullable=False, server_default=""),
    Column("escalate_time", DateTime(timezone=True)),
    Column("round", Integer, nullable=False, server_default="0"),
    Column("joint_rescue", Boolean, nullable=False, server_default="false"),
    # The answers to an Open311 service definition's attributes:
    # [{"code": "cover_state", "description": "井盖现状", "value": "missing", "value_text": "缺失"}, ...]
    Column("service_attributes", JSONB, nullable=False, server_default="[]"),
    Index("work_orders_create_time", "create_time", "id"),
    Index("work_orders_open_deadline", "deadline", postgresql_where="NOT overdue"),
    Index("work_orders_transferred_report", "transferred_report"),
)

assignments = Table(
    "work_order_assignments", metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("work_order_id", String(40), ForeignKey(f"{SCHEMA}.work_orders.id"), nullable=False, index=True),
    Column("dept_id", String(20), nullable=False, index=True),
    Column("dept_name", Text, nullable=False),
    Column("role", String(20), nullable=False),
    Column("state", String(20), nullable=False),
    Column("routing_reason", Text, nullable=False, server_default=""),
    Column("round", Integer, nullable=False),
    Column("assign_time", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True)),
    Column("accept_time", DateTime(timezone=True)),
    Column("start_time", DateTime(timezone=True)),
    Column("resolve_time", DateTime(timezone=True)),
    Column("reject_reason", Text, nullable=False, server_default=""),
    Column("feedback", Text, nullable=False, server_default=""),
    Column("attachments", JSONB, nullable=False, server_default="[]"),
)

order_timeline = timeline_table(metadata, "work_order_timeline", "work_order_id", "work_orders.id")
order_timeline.append_column(Column("department", String(40), nullable=False, server_default=""))

# Every follow-up (回访), for satisfaction and reopen rates per department.
reviews = Table(
    "work_order_reviews", metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("work_order_id", String(40), ForeignKey(f"{SCHEMA}.work_orders.id"), nullable=False, index=True),
    Column("dept_id", String(20), nullable=False),
    Column("satisfaction", String(30), nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("time", DateTime(timezone=True), nullable=False),
)

# Citizens' updates posted through Open311 (servicerequestupdates): who sent each (personal data,
# kept here and not on the append-only timeline, erased once the order has been closed for
# OPEN311_UPDATE_CONTACT_DAYS), and the app's own update id, once per app.
citizen_updates = Table(
    "citizen_updates", metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("work_order_id", String(40), ForeignKey(f"{SCHEMA}.work_orders.id"), nullable=False, index=True),
    # The app: the first 16 hex digits of its api_key's SHA-256 (the key itself is not stored).
    Column("client", String(16), nullable=False),
    Column("client_update_id", String(100), nullable=False),
    Column("fingerprint", String(64), nullable=False),
    Column("timeline_seq", BigInteger, nullable=False, unique=True),
    Column("order_status", String(30), nullable=False),
    Column("status", String(40), nullable=False),
    Column("description", Text, nullable=False, server_default=""),
    Column("client_time", DateTime(timezone=True)),
    Column("first_name", Text, nullable=False, server_default=""),
    Column("last_name", Text, nullable=False, server_default=""),
    Column("email", Text, nullable=False, server_default=""),
    Column("phone", String(30), nullable=False, server_default=""),
    Column("media_url", Text, nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("contact_erase_time", DateTime(timezone=True)),
    UniqueConstraint("client", "client_update_id", name="citizen_updates_client_update_id"),
)

unreasonable = Table(
    "unreasonable_requests", metadata,
    Column("id", String(40), primary_key=True),
    Column("work_order", String(80), nullable=False, server_default=""),
    Column("description", Text, nullable=False),
    Column("citizen_phone", String(30), nullable=False, server_default=""),
    Column("citizen_name", Text, nullable=False, server_default=""),
    Column("category", String(40), nullable=False),
    Column("reason", Text, nullable=False),
    Column("standard_reply", Text, nullable=False),
    Column("typical_case", Boolean, nullable=False, server_default="false"),
    Column("state", String(20), nullable=False),
    Column("prior_requests", Integer, nullable=False, server_default="0"),
    Column("record_actor", Text, nullable=False),
    Column("record_roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("overturn_actor", Text, nullable=False, server_default=""),
    Column("overturn_roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("overturn_time", DateTime(timezone=True)),
    Column("overturn_reason", Text, nullable=False, server_default=""),
    Index("unreasonable_requests_create_time", "create_time", "id"),
)


def department_from_row(r) -> Department:
    return Department(
        dept_id=r.dept_id, name=r.name, matters=tuple(Matter(m["code"], m["label"]) for m in r.matters),
        districts=tuple(r.districts), supervisor=r.supervisor, phone=r.phone,
    )


class DepartmentRepository:
    def __init__(self, conn):
        self.conn = conn

    def get(self, dept_id: str) -> Department | None:
        row = self.conn.execute(select(departments).where(departments.c.dept_id == dept_id)).first()
        return department_from_row(row) if row else None

    def all(self) -> list[Department]:
        return [department_from_row(r) for r in self.conn.execute(select(departments).order_by(departments.c.dept_id))]

    def upsert(self, d: Department) -> None:
        values = dict(
            dept_id=d.dept_id, name=d.name, matters=[{"code": m.code, "label": m.label} for m in d.matters],
            districts=list(d.districts), supervisor=d.supervisor, phone=d.phone,
        )
        stmt = insert(departments).values(**values)
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["dept_id"], set_={k: stmt.excluded[k] for k in values if k != "dept_id"}))


_ORDER_COLUMNS = [c.name for c in work_orders.columns]
_PART_COLUMNS = [c.name for c in assignments.columns if c.name not in ("seq", "work_order_id")]


def _order_values(o: WorkOrder) -> dict:
    values = {c: getattr(o, c) for c in _ORDER_COLUMNS}
    values["report"] = o.report or None  # unique when set
    return values


def load_orders(conn, rows) -> list[WorkOrder]:
    """Work orders from their rows, with their assignments and timelines (two more statements)."""
    orders = [WorkOrder(**{c: getattr(r, c) for c in _ORDER_COLUMNS}) for r in rows]
    for o in orders:
        o.report = o.report or ""
    if not orders:
        return []
    by_id = {o.id: o for o in orders}
    for a in conn.execute(select(assignments).where(assignments.c.work_order_id.in_(by_id))
                          .order_by(assignments.c.seq)):
        by_id[a.work_order_id].assignments.append(
            Assignment(seq=a.seq, **{c: getattr(a, c) for c in _PART_COLUMNS}))
    for e in conn.execute(select(order_timeline).where(order_timeline.c.work_order_id.in_(by_id))
                          .order_by(order_timeline.c.seq)):
        by_id[e.work_order_id].timeline.append(
            OrderEntry(e.action, e.actor, list(e.roles), e.time, e.detail, e.reason, e.department))
    for o in orders:
        o.mark_announced()
    return orders


class WorkOrderRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, order: WorkOrder) -> bool:
        """Stores a new order; False when its 110 report already has one (nothing written)."""
        values = _order_values(order)
        stmt = insert_once(work_orders, tuple(values), ("report",) if order.report else None, "id")
        if self.conn.execute(stmt, values).first() is None:
            return False
        self._save_children(order)
        return True

    def save(self, order: WorkOrder) -> None:
        values = _order_values(order)
        values.pop("id")
        self.conn.execute(work_orders.update().where(work_orders.c.id == order.id).values(**values))
        self._save_children(order)

    def _save_children(self, order: WorkOrder) -> None:
        for a in order.assignments:
            values = {c: getattr(a, c) for c in _PART_COLUMNS}
            if a.seq is None:
                a.seq = self.conn.execute(assignments.insert().values(work_order_id=order.id, **values)
                                          .returning(assignments.c.seq)).scalar_one()
            else:
                self.conn.execute(assignments.update().where(assignments.c.seq == a.seq).values(**values))
        if order.new_entries:
            self.conn.execute(order_timeline.insert(), [
                dict(work_order_id=order.id, action=e.action, actor=e.actor, roles=e.roles, time=e.time,
                     detail=e.detail, reason=e.reason, department=e.department) for e in order.new_entries])
            order.new_entries = []

    def get(self, order_id: str, *, for_update: bool = False) -> WorkOrder | None:
        q = select(work_orders).where(work_orders.c.id == order_id)
        if for_update:
            q = q.with_for_update()
        found = load_orders(self.conn, self.conn.execute(q).all())
        return found[0] if found else None

    def by_transferred_report(self, report: str) -> WorkOrder | None:
        rows = self.conn.execute(select(work_orders).where(work_orders.c.transferred_report == report)
                                 .with_for_update()).all()
        found = load_orders(self.conn, rows)
        return found[0] if found else None

    def due(self, now: datetime, limit: int = 500) -> list[str]:
        """Ids of open orders past their deadline and not yet flagged."""
        c = work_orders.c
        return list(self.conn.execute(
            select(c.id).where(c.overdue.is_(False), c.deadline < now,
                               c.status.in_(["RECEIVED", "ASSIGNED", "ACCEPTED", "IN_PROGRESS", "REJECTED",
                                             "REOPENED", "PRELIMINARY_POLICE"]))
            .order_by(c.deadline).limit(limit)).scalars())

    def count_from(self, phone: str, since: datetime, matter_code: str = "", exclude: str = "") -> int:
        c = work_orders.c
        q = select(func.count()).select_from(work_orders).where(c.citizen_phone == phone, c.request_time >= since)
        if matter_code:
            q = q.where(c.matter_code == matter_code)
        if exclude:
            q = q.where(c.id != exclude)
        return self.conn.execute(q).scalar_one()

    def add_review(self, order_id: str, dept_id: str, satisfaction: str, comment: str, time: datetime) -> None:
        self.conn.execute(reviews.insert().values(work_order_id=order_id, dept_id=dept_id,
                                                  satisfaction=satisfaction, comment=comment, time=time))

    def last_entry_seq(self, order_id: str, action: str) -> int | None:
        """The sequence number of the order's latest entry with `action` (the order locked, so it is
        the one this transaction appended)."""
        t = order_timeline.c
        return self.conn.execute(select(func.max(t.seq)).where(t.work_order_id == order_id,
                                                               t.action == action)).scalar_one()


_CU_COLUMNS = [c.name for c in citizen_updates.columns if c.name != "seq"]


class CitizenUpdateRepository:
    def __init__(self, conn):
        self.conn = conn

    def get(self, client: str, client_update_id: str) -> CitizenUpdate | None:
        c = citizen_updates.c
        row = self.conn.execute(select(citizen_updates).where(c.client == client,
                                                              c.client_update_id == client_update_id)).first()
        return CitizenUpdate(**{k: getattr(row, k) for k in _CU_COLUMNS}) if row else None

    def add(self, u: CitizenUpdate) -> bool:
        """Stores a new update; False when the app's update id is taken already (nothing written)."""
        stmt = insert(citizen_updates).values(**{k: getattr(u, k) for k in _CU_COLUMNS})
        stmt = stmt.on_conflict_do_nothing(constraint="citizen_updates_client_update_id")
        return self.conn.execute(stmt.returning(citizen_updates.c.seq)).first() is not None

    def closed_before(self, when: datetime, limit: int = 500) -> list[CitizenUpdate]:
        """Updates with their contact still kept, on orders closed before `when`, locked."""
        c, o = citizen_updates.c, work_orders.c
        rows = self.conn.execute(
            select(citizen_updates).join(work_orders, o.id == c.work_order_id)
            .where(c.contact_erase_time.is_(None), o.close_time < when)
            .order_by(c.seq).limit(limit).with_for_update(of=citizen_updates, skip_locked=True)).all()
        return [CitizenUpdate(**{k: getattr(r, k) for k in _CU_COLUMNS}) for r in rows]

    def save_erased(self, u: CitizenUpdate) -> None:
        c = citizen_updates.c
        self.conn.execute(citizen_updates.update().where(c.client == u.client, c.client_update_id == u.client_update_id)
                          .values(first_name=u.first_name, last_name=u.last_name, email=u.email, phone=u.phone,
                                  description=u.description, contact_erase_time=u.contact_erase_time))


_UR_COLUMNS = [c.name for c in unreasonable.columns]


def record_from_row(r) -> UnreasonableRecord:
    return UnreasonableRecord(**{c: getattr(r, c) for c in _UR_COLUMNS})


class UnreasonableRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, r: UnreasonableRecord) -> None:
        self.conn.execute(unreasonable.insert().values(**{c: getattr(r, c) for c in _UR_COLUMNS}))

    def save(self, r: UnreasonableRecord) -> None:
        values = {c: getattr(r, c) for c in _UR_COLUMNS if c != "id"}
        self.conn.execute(unreasonable.update().where(unreasonable.c.id == r.id).values(**values))

    def get(self, record_id: str, *, for_update: bool = False) -> UnreasonableRecord | None:
        q = select(unreasonable).where(unreasonable.c.id == record_id)
        if for_update:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return record_from_row(row) if row else None

    def count_from(self, phone: str, since: datetime) -> int:
        c = unreasonable.c
        return self.conn.execute(select(func.count()).select_from(unreasonable)
                                 .where(c.citizen_phone == phone, c.create_time >= since)).scalar_one()


class Repositories:
    """Referral's repositories on one transaction's connection (`uow.repos`)."""

    def __init__(self, conn):
        self.departments = DepartmentRepository(conn)
        self.work_orders = WorkOrderRepository(conn)
        self.unreasonable = UnreasonableRepository(conn)
        self.citizen_updates = CitizenUpdateRepository(conn)
