"""Referral tables and repository, in the `referral` schema."""
from __future__ import annotations

from sqlalchemy import Column, MetaData, String, Table, Text, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from services.runtime.app import RuntimeTables

from .domain import Department, Matter

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

TABLES = ["departments"] + runtime_tables.names


def _to_department(r) -> Department:
    return Department(
        dept_id=r.dept_id, name=r.name, matters=tuple(Matter(m["code"], m["label"]) for m in r.matters),
        districts=tuple(r.districts), supervisor=r.supervisor, phone=r.phone,
    )


class DepartmentRepository:
    def __init__(self, conn):
        self.conn = conn

    def get(self, dept_id: str) -> Department | None:
        row = self.conn.execute(select(departments).where(departments.c.dept_id == dept_id)).first()
        return _to_department(row) if row else None

    def list(self, *, limit: int, after: str | None, matter_code: str = "", district: str = "") -> list[Department]:
        q = select(departments).order_by(departments.c.dept_id).limit(limit)
        if after:
            q = q.where(departments.c.dept_id > after)
        if matter_code:
            q = q.where(departments.c.matters.contains([{"code": matter_code}]))
        if district:
            # An empty district list means the whole city.
            q = q.where(or_(func.cardinality(departments.c.districts) == 0, departments.c.districts.any(district)))
        return [_to_department(r) for r in self.conn.execute(q)]

    def all(self) -> list[Department]:
        return [_to_department(r) for r in self.conn.execute(select(departments).order_by(departments.c.dept_id))]

    def upsert(self, d: Department) -> None:
        values = dict(
            dept_id=d.dept_id, name=d.name, matters=[{"code": m.code, "label": m.label} for m in d.matters],
            districts=list(d.districts), supervisor=d.supervisor, phone=d.phone,
        )
        stmt = insert(departments).values(**values)
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["dept_id"], set_={k: stmt.excluded[k] for k in values if k != "dept_id"}))
