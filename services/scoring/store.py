"""Scoring tables and repositories, in the `scoring` schema.

The ledger (`ledger_entries`) is append-only: the first migration installs a
trigger that refuses UPDATE, DELETE and TRUNCATE on it, and nothing here
issues either. A correction is a new entry.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Identity, Index, Integer, MetaData, Numeric, String, Table, Text,
    and_, func, or_, select, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from services.runtime.app import RuntimeTables
from services.runtime.audit import Timeline, timeline_table

from .domain import Fact, OfficerOnFact, Rule, RuleSet, money

SCHEMA = "scoring"
metadata = MetaData(schema=SCHEMA)
runtime_tables = RuntimeTables.add_to(metadata)

rule_sets = Table(
    "rule_sets", metadata,
    Column("version", BigInteger, primary_key=True),
    Column("description", Text, nullable=False, server_default=""),
    Column("rules", JSONB, nullable=False),
    Column("effective_time", DateTime(timezone=True), nullable=False),
    Column("published", Boolean, nullable=False, server_default="false"),
    Column("create_actor", Text, nullable=False),
    Column("create_roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("publish_actor", Text, nullable=False, server_default=""),
    Column("publish_roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("publish_time", DateTime(timezone=True)),
)

# The raw scoring facts: each scored event's payload (proto3 JSON) and the
# measurements derived from it, so any rule set can be applied again.
facts = Table(
    "facts", metadata,
    Column("fact_id", String(120), primary_key=True),
    Column("event_id", String(60), nullable=False),
    Column("event_type", String(120), nullable=False),
    Column("subject", String(200), nullable=False),
    Column("occur_time", DateTime(timezone=True), nullable=False),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("officers", JSONB, nullable=False, server_default="[]"),
    Column("data", JSONB, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("facts_occur_time", "occur_time"),
    Index("facts_subject", "subject"),
)

fact_officers = Table(
    "fact_officers", metadata,
    Column("fact_id", String(120), primary_key=True),
    Column("officer_id", String(40), primary_key=True),
    Column("station_id", String(20), nullable=False),
    Column("occur_time", DateTime(timezone=True), nullable=False),
    Index("fact_officers_officer", "officer_id", "occur_time"),
    Index("fact_officers_station", "station_id", "occur_time"),
)

ledger_entries = Table(
    "ledger_entries", metadata,
    Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),
    Column("id", String(40), primary_key=True),
    # RULE (written by a rule), REVERSAL or REPLACEMENT (a correction).
    Column("kind", String(20), nullable=False),
    Column("officer_id", String(40), nullable=False),
    Column("station_id", String(20), nullable=False),
    Column("dimension", String(20), nullable=False),
    Column("points", Numeric(10, 2), nullable=False),
    Column("reason_code", String(64), nullable=False),
    Column("subject", String(200), nullable=False, server_default=""),
    Column("event_id", String(60), nullable=False, server_default=""),
    Column("event_type", String(120), nullable=False, server_default=""),
    Column("fact_id", String(120), nullable=False, server_default=""),
    Column("rule_id", String(64), nullable=False, server_default=""),
    Column("rule_set_version", BigInteger, nullable=False, server_default="0"),
    Column("explanation", Text, nullable=False),
    Column("reverses", String(40), nullable=False, server_default=""),
    Column("correction_actor", Text, nullable=False, server_default=""),
    Column("correction_roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("correction_time", DateTime(timezone=True)),
    Column("correction_reason", Text, nullable=False, server_default=""),
    Column("occur_time", DateTime(timezone=True), nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    # A replayed event writes nothing new: one entry per fact, rule and officer.
    Index("ledger_once_per_fact_rule_officer", "fact_id", "rule_id", "officer_id", unique=True,
          postgresql_where=text("kind = 'RULE'")),
    # An entry is reversed at most once.
    Index("ledger_one_reversal", "reverses", unique=True, postgresql_where=text("kind = 'REVERSAL'")),
    Index("ledger_officer_time", "officer_id", "occur_time"),
    Index("ledger_station_time", "station_id", "occur_time"),
    Index("ledger_subject", "subject"),
)

# Scoring's own picture of dispatch cases, from dispatch's events.
cases = Table(
    "cases", metadata,
    Column("case_name", String(80), primary_key=True),
    Column("report", String(80), nullable=False, server_default=""),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("grid_id", String(30), nullable=False, server_default=""),
    Column("incident_type", String(40), nullable=False, server_default=""),
    Index("cases_report", "report"),
)

case_officers = Table(
    "case_officers", metadata,
    Column("case_name", String(80), primary_key=True),
    Column("officer_id", String(40), primary_key=True),
    Column("station_id", String(20), nullable=False),
    Column("display_name", Text, nullable=False, server_default=""),
    Column("reported_back", Boolean, nullable=False, server_default="false"),
)

# The 1-3-5 minute response circle per community grid (reference data).
grid_targets = Table(
    "grid_targets", metadata,
    Column("grid_id", String(30), primary_key=True),
    Column("station_id", String(20), nullable=False),
    Column("arrival_target_s", Integer, nullable=False),
)

# Report-back (回告) obligations of accepted assignments, for the sweeper.
report_back_obligations = Table(
    "report_back_obligations", metadata,
    Column("assignment", String(120), primary_key=True),
    Column("case_name", String(80), nullable=False),
    Column("station_id", String(20), nullable=False),
    Column("officers", JSONB, nullable=False, server_default="[]"),
    Column("due_time", DateTime(timezone=True), nullable=False),
    Column("done_time", DateTime(timezone=True)),
    Column("cancelled", Boolean, nullable=False, server_default="false"),
    Column("warned", Boolean, nullable=False, server_default="false"),
    Column("source_event_id", String(60), nullable=False, server_default=""),
    Index("obligations_open_due", "due_time", postgresql_where=text("done_time IS NULL AND NOT cancelled")),
)

reviews = Table(
    "reviews", metadata,
    Column("seq", BigInteger, Identity(always=True), nullable=False, unique=True),
    Column("id", String(40), primary_key=True),
    Column("case_name", String(80), nullable=False, index=True),
    Column("officer_ids", ARRAY(Text), nullable=False),
    Column("station_id", String(20), nullable=False),
    Column("evidence", String(20), nullable=False),
    Column("missing_evidence", ARRAY(Text), nullable=False, server_default="{}"),
    Column("procedure", String(20), nullable=False),
    Column("procedure_flaws", ARRAY(Text), nullable=False, server_default="{}"),
    Column("classification", String(20), nullable=False),
    Column("corrected_incident_type", String(40), nullable=False, server_default=""),
    Column("comment", Text, nullable=False, server_default=""),
    Column("actor", Text, nullable=False),
    Column("roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Index("reviews_create_time", "create_time", "id"),
)

warnings = Table(
    "warnings", metadata,
    Column("id", String(40), primary_key=True),
    Column("kind", String(40), nullable=False),
    Column("officer_id", String(40), nullable=False),
    Column("station_id", String(20), nullable=False),
    Column("case_name", String(80), nullable=False, server_default=""),
    Column("status", String(20), nullable=False),
    Column("detail", Text, nullable=False),
    Column("source_event_id", String(60), nullable=False, server_default=""),
    # What the warning is about (an assignment, a review, a month), so the
    # same cause warns once.
    Column("cause", String(200), nullable=False),
    Column("raise_time", DateTime(timezone=True), nullable=False),
    Column("rectify_time", DateTime(timezone=True)),
    Index("warnings_once", "kind", "officer_id", "cause", unique=True),
    Index("warnings_raise_time", "raise_time", "id"),
    Index("warnings_station_time", "station_id", "raise_time"),
)

warning_timeline = Timeline(timeline_table(metadata, "warning_timeline", "warning_id", "warnings.id"),
                            "warning_id")


def new_id() -> str:
    return uuid.uuid4().hex


# -- rule sets -----------------------------------------------------------------------

def rule_to_json(r: Rule) -> dict:
    return dict(rule_id=r.rule_id, description=r.description, dimension=r.dimension, event_type=r.event_type,
                condition=r.condition, points=str(r.points), reason_code=r.reason_code,
                explanation_template=r.explanation_template, monthly_cap=str(r.monthly_cap))


def rule_from_json(d: dict) -> Rule:
    return Rule(rule_id=d["rule_id"], description=d["description"], dimension=d["dimension"],
                event_type=d["event_type"], condition=d["condition"], points=Decimal(d["points"]),
                reason_code=d["reason_code"], explanation_template=d["explanation_template"],
                monthly_cap=Decimal(d.get("monthly_cap", "0")))


def rule_set_values(rs: RuleSet) -> dict:
    return dict(version=rs.version, description=rs.description, rules=[rule_to_json(r) for r in rs.rules],
                effective_time=rs.effective_time, published=rs.published, create_actor=rs.create_actor,
                create_roles=rs.create_roles, create_time=rs.create_time, publish_actor=rs.publish_actor,
                publish_roles=rs.publish_roles, publish_time=rs.publish_time)


def _to_rule_set(r) -> RuleSet:
    return RuleSet(version=r.version, description=r.description, rules=[rule_from_json(x) for x in r.rules],
                   effective_time=r.effective_time, published=r.published, create_actor=r.create_actor,
                   create_roles=list(r.create_roles), create_time=r.create_time, publish_actor=r.publish_actor,
                   publish_roles=list(r.publish_roles), publish_time=r.publish_time)


class RuleSetRepository:
    def __init__(self, conn):
        self.conn = conn

    def get(self, version: int, *, for_update: bool = False) -> RuleSet | None:
        q = select(rule_sets).where(rule_sets.c.version == version)
        if for_update:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return _to_rule_set(row) if row else None

    def published(self) -> list[RuleSet]:
        return [_to_rule_set(r) for r in self.conn.execute(select(rule_sets).where(rule_sets.c.published))]

    def list(self, *, limit: int, before: int | None, published_only: bool) -> list[RuleSet]:
        q = select(rule_sets).order_by(rule_sets.c.version.desc()).limit(limit)
        if before is not None:
            q = q.where(rule_sets.c.version < before)
        if published_only:
            q = q.where(rule_sets.c.published)
        return [_to_rule_set(r) for r in self.conn.execute(q)]

    def add(self, rs: RuleSet) -> RuleSet:
        # Versions are handed out in creation order; the table lock keeps two creations apart.
        self.conn.execute(text("LOCK TABLE rule_sets IN SHARE ROW EXCLUSIVE MODE"))
        rs.version = self.conn.execute(select(func.coalesce(func.max(rule_sets.c.version), 0))).scalar_one() + 1
        self.conn.execute(rule_sets.insert().values(**rule_set_values(rs)))
        return rs

    def publish(self, version: int, *, actor: str, roles: list[str], when: datetime) -> None:
        self.conn.execute(rule_sets.update().where(rule_sets.c.version == version).values(
            published=True, publish_actor=actor, publish_roles=roles, publish_time=when))


# -- facts -----------------------------------------------------------------------------

def _to_fact(r) -> Fact:
    return Fact(fact_id=r.fact_id, event_id=r.event_id, event_type=r.event_type, subject=r.subject,
                occur_time=r.occur_time, station_id=r.station_id,
                officers=[OfficerOnFact(**o) for o in r.officers], data=r.data)


class FactRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, f: Fact) -> bool:
        """Keeps a fact; False when it was already kept."""
        created = self.conn.execute(insert(facts).values(
            fact_id=f.fact_id, event_id=f.event_id, event_type=f.event_type, subject=f.subject,
            occur_time=f.occur_time, station_id=f.station_id,
            officers=[vars(o) for o in f.officers], data=f.data,
        ).on_conflict_do_nothing().returning(facts.c.fact_id)).first()
        if not created:
            return False
        if f.officers:
            self.conn.execute(insert(fact_officers).on_conflict_do_nothing(), [
                dict(fact_id=f.fact_id, officer_id=o.officer_id, station_id=o.station_id or f.station_id,
                     occur_time=f.occur_time) for o in f.officers])
        return True

    def exists_for_subject(self, event_type: str, subject: str) -> bool:
        return self.conn.execute(select(facts.c.fact_id).where(
            facts.c.event_type == event_type, facts.c.subject == subject).limit(1)).first() is not None

    def in_period(self, start: datetime, end: datetime, *, officer_id: str = "", station_id: str = "") -> list[Fact]:
        ids = select(fact_officers.c.fact_id).where(
            fact_officers.c.occur_time >= start, fact_officers.c.occur_time < end)
        if officer_id:
            ids = ids.where(fact_officers.c.officer_id == officer_id)
        if station_id:
            ids = ids.where(fact_officers.c.station_id == station_id)
        q = select(facts).where(facts.c.fact_id.in_(ids)).order_by(facts.c.occur_time, facts.c.fact_id)
        return [_to_fact(r) for r in self.conn.execute(q)]


# -- ledger -------------------------------------------------------------------------------

class LedgerRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, values: dict) -> dict | None:
        """Appends one entry; None when a rule entry for the same fact, rule and officer exists."""
        values = dict(values, id=values.get("id") or new_id(), points=money(values["points"]))
        row = self.conn.execute(insert(ledger_entries).values(**values).on_conflict_do_nothing()
                                .returning(*ledger_entries.c)).first()
        return row._asdict() if row else None

    def get(self, entry_id: str):
        return self.conn.execute(select(ledger_entries).where(ledger_entries.c.id == entry_id)).first()

    def reversal_of(self, entry_id: str):
        return self.conn.execute(select(ledger_entries).where(
            ledger_entries.c.reverses == entry_id, ledger_entries.c.kind == "REVERSAL")).first()

    def reversed_by(self, entry_ids: list[str]) -> dict[str, str]:
        if not entry_ids:
            return {}
        rows = self.conn.execute(select(ledger_entries.c.reverses, ledger_entries.c.id).where(
            ledger_entries.c.reverses.in_(entry_ids), ledger_entries.c.kind == "REVERSAL"))
        return {r.reverses: r.id for r in rows}

    def points_of_rule(self, rule_id: str, officer_id: str, station_id: str, start: datetime,
                       end: datetime) -> Decimal:
        q = select(func.coalesce(func.sum(ledger_entries.c.points), 0)).where(
            ledger_entries.c.rule_id == rule_id, ledger_entries.c.officer_id == officer_id,
            ledger_entries.c.occur_time >= start, ledger_entries.c.occur_time < end)
        if not officer_id:
            q = q.where(ledger_entries.c.station_id == station_id)
        return Decimal(self.conn.execute(q).scalar_one())

    def _filtered(self, q, *, officer_id="", station_id="", dimension="", reason_code="", subject="",
                  rule_set_version=0, start=None, end=None, subject_ids=None):
        c = ledger_entries.c
        if officer_id:
            q = q.where(c.officer_id == officer_id)
        if station_id:
            q = q.where(c.station_id == station_id)
        if dimension:
            q = q.where(c.dimension == dimension)
        if reason_code:
            q = q.where(c.reason_code == reason_code)
        if subject:
            q = q.where(c.subject == subject)
        if rule_set_version:
            q = q.where(c.rule_set_version == rule_set_version)
        if start is not None:
            q = q.where(c.occur_time >= start)
        if end is not None:
            q = q.where(c.occur_time < end)
        return q

    def list(self, *, limit: int, after: tuple[datetime, int] | None, **filters) -> list:
        q = self._filtered(select(ledger_entries), **filters)
        if after:
            t, seq = after
            q = q.where(or_(ledger_entries.c.occur_time < t,
                            and_(ledger_entries.c.occur_time == t, ledger_entries.c.seq < seq)))
        q = q.order_by(ledger_entries.c.occur_time.desc(), ledger_entries.c.seq.desc()).limit(limit)
        return list(self.conn.execute(q))

    def sums(self, group_by: list[str], **filters) -> list:
        """Points and entry counts per group and dimension."""
        cols = [ledger_entries.c[g] for g in group_by]
        q = select(*cols, ledger_entries.c.dimension, func.sum(ledger_entries.c.points).label("points"),
                   func.count().label("entries"))
        q = self._filtered(q, **filters).group_by(*cols, ledger_entries.c.dimension)
        return list(self.conn.execute(q))

    def by_reason(self, **filters) -> list:
        q = select(ledger_entries.c.reason_code, ledger_entries.c.dimension, ledger_entries.c.rule_id,
                   func.sum(ledger_entries.c.points).label("points"), func.count().label("entries"))
        q = self._filtered(q, **filters).group_by(ledger_entries.c.reason_code, ledger_entries.c.dimension,
                                                  ledger_entries.c.rule_id)
        return list(self.conn.execute(q))

    def times(self, **filters) -> list:
        q = self._filtered(select(ledger_entries.c.occur_time, ledger_entries.c.dimension,
                                  ledger_entries.c.points), **filters)
        return list(self.conn.execute(q))


# -- cases --------------------------------------------------------------------------------

class CaseRepository:
    def __init__(self, conn):
        self.conn = conn

    def upsert(self, case_name: str, **values) -> None:
        values = {k: v for k, v in values.items() if v}
        stmt = insert(cases).values(case_name=case_name, **values)
        if values:
            stmt = stmt.on_conflict_do_update(index_elements=["case_name"], set_=values)
        else:
            stmt = stmt.on_conflict_do_nothing()
        self.conn.execute(stmt)

    def get(self, case_name: str):
        return self.conn.execute(select(cases).where(cases.c.case_name == case_name)).first()

    def by_report(self, report: str):
        return self.conn.execute(select(cases).where(cases.c.report == report)).first()

    def add_officers(self, case_name: str, officers: list[OfficerOnFact], *, reported_back: bool) -> None:
        if not officers:
            return
        stmt = insert(case_officers).values([
            dict(case_name=case_name, officer_id=o.officer_id, station_id=o.station_id,
                 display_name=o.display_name, reported_back=reported_back) for o in officers])
        set_ = {"reported_back": case_officers.c.reported_back | stmt.excluded.reported_back}
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["case_name", "officer_id"], set_=set_))

    def officers(self, case_name: str, *, reported_back_only: bool = False) -> list[OfficerOnFact]:
        q = select(case_officers).where(case_officers.c.case_name == case_name).order_by(case_officers.c.officer_id)
        if reported_back_only:
            q = q.where(case_officers.c.reported_back)
        return [OfficerOnFact(r.officer_id, r.station_id, r.display_name) for r in self.conn.execute(q)]

    def arrival_target(self, grid_id: str) -> int | None:
        if not grid_id:
            return None
        return self.conn.execute(select(grid_targets.c.arrival_target_s).where(
            grid_targets.c.grid_id == grid_id)).scalar()
