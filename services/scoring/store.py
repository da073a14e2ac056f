"""Scoring tables and the repositories of the write side, in the `scoring` schema.

The ledger (`ledger_entries`) is append-only: the first migration installs a
trigger that refuses UPDATE, DELETE and TRUNCATE on it, and nothing here
issues either. A correction is a new entry.
"""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Identity, Index, Integer, MetaData, Numeric, String, Table, Text,
    func, or_, select, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from services.runtime.app import RuntimeTables
from services.runtime.audit import Timeline, timeline_table
from services.runtime.db import insert_once

from .domain import (
    Case, EnforcementWarning, Fact, LedgerEntry, OfficerOnFact, ReportBackObligation, Review, Rule, RuleSet,
)

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


# -- rows <-> domain ----------------------------------------------------------------------

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


def rule_set_from_row(r) -> RuleSet:
    return RuleSet(version=r.version, description=r.description, rules=[rule_from_json(x) for x in r.rules],
                   effective_time=r.effective_time, published=r.published, create_actor=r.create_actor,
                   create_roles=list(r.create_roles), create_time=r.create_time, publish_actor=r.publish_actor,
                   publish_roles=list(r.publish_roles), publish_time=r.publish_time)


def fact_from_row(r) -> Fact:
    return Fact(fact_id=r.fact_id, event_id=r.event_id, event_type=r.event_type, subject=r.subject,
                occur_time=r.occur_time, station_id=r.station_id,
                officers=[OfficerOnFact(**o) for o in r.officers], data=r.data)


_ENTRY_COLUMNS = [c.name for c in ledger_entries.c if c.name != "seq"]


def entry_values(e: LedgerEntry) -> dict:
    return {name: getattr(e, name) for name in _ENTRY_COLUMNS}


def entry_from_row(r) -> LedgerEntry:
    values = {name: getattr(r, name) for name in _ENTRY_COLUMNS}
    values["correction_roles"] = list(values["correction_roles"])
    return LedgerEntry(**values)


def warning_from_row(r) -> EnforcementWarning:
    return EnforcementWarning(id=r.id, kind=r.kind, officer_id=r.officer_id, station_id=r.station_id,
                              case_name=r.case_name, status=r.status, detail=r.detail,
                              source_event_id=r.source_event_id, cause=r.cause, raise_time=r.raise_time,
                              rectify_time=r.rectify_time)


_REVIEW_COLUMNS = [c.name for c in reviews.c if c.name != "seq"]


def review_from_row(r, entry_ids: list[str] | None = None) -> Review:
    values = {name: getattr(r, name) for name in _REVIEW_COLUMNS}
    for name in ("officer_ids", "missing_evidence", "procedure_flaws", "roles"):
        values[name] = list(values[name])
    return Review(**values, ledger_entries=list(entry_ids or []))


def case_from_row(r) -> Case:
    return Case(case_name=r.case_name, report=r.report, station_id=r.station_id, grid_id=r.grid_id,
                incident_type=r.incident_type)


# -- rule sets -----------------------------------------------------------------------

class RuleSetRepository:
    def __init__(self, conn):
        self.conn = conn

    def get(self, version: int, *, for_update: bool = False) -> RuleSet | None:
        q = select(rule_sets).where(rule_sets.c.version == version)
        if for_update:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return rule_set_from_row(row) if row else None

    def published(self) -> list[RuleSet]:
        return [rule_set_from_row(r) for r in self.conn.execute(select(rule_sets).where(rule_sets.c.published))]

    def next_version(self) -> int:
        """The version the next rule set gets: versions are handed out in creation order, and the table
        lock (held to the end of the transaction) keeps two creations apart."""
        self.conn.execute(text(f"LOCK TABLE {SCHEMA}.rule_sets IN SHARE ROW EXCLUSIVE MODE"))
        return self.conn.execute(select(func.coalesce(func.max(rule_sets.c.version), 0))).scalar_one() + 1

    def add(self, rs: RuleSet) -> None:
        self.conn.execute(rule_sets.insert().values(**rule_set_values(rs)))

    def save(self, rs: RuleSet) -> None:
        self.conn.execute(rule_sets.update().where(rule_sets.c.version == rs.version).values(
            published=rs.published, publish_actor=rs.publish_actor, publish_roles=rs.publish_roles,
            publish_time=rs.publish_time))


# -- facts -----------------------------------------------------------------------------

class FactRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, f: Fact) -> bool:
        """Keeps a fact; False when it was already kept."""
        values = dict(fact_id=f.fact_id, event_id=f.event_id, event_type=f.event_type, subject=f.subject,
                      occur_time=f.occur_time, station_id=f.station_id,
                      officers=[vars(o) for o in f.officers], data=f.data)
        created = self.conn.execute(insert_once(facts, tuple(values), (), "fact_id"), values).first()
        if not created:
            return False
        if f.officers:
            self.conn.execute(insert_once(fact_officers, ("fact_id", "officer_id", "station_id", "occur_time")), [
                dict(fact_id=f.fact_id, officer_id=o.officer_id, station_id=o.station_id or f.station_id,
                     occur_time=f.occur_time) for o in f.officers])
        return True

    def exists_for_subject(self, event_type: str, subject: str) -> bool:
        return self.conn.execute(select(facts.c.fact_id).where(
            facts.c.event_type == event_type, facts.c.subject == subject).limit(1)).first() is not None

    def waiting_ratings(self, case_name: str, report: str) -> list[Fact]:
        """Ratings of the case (or its report) kept before any officer could be named."""
        rows = self.conn.execute(select(facts).where(
            facts.c.event_type.in_(("dispatch.CaseUpdated", "intake.ReportUpdated")),
            facts.c.officers == text("'[]'::jsonb"),
            or_(facts.c.data["case_name"].astext == case_name, facts.c.subject == (report or case_name))))
        return [fact_from_row(r) for r in rows]

    def in_period(self, start: datetime, end: datetime, *, officer_id: str = "", station_id: str = "") -> list[Fact]:
        ids = select(fact_officers.c.fact_id).where(
            fact_officers.c.occur_time >= start, fact_officers.c.occur_time < end)
        if officer_id:
            ids = ids.where(fact_officers.c.officer_id == officer_id)
        if station_id:
            ids = ids.where(fact_officers.c.station_id == station_id)
        q = select(facts).where(facts.c.fact_id.in_(ids)).order_by(facts.c.occur_time, facts.c.fact_id)
        return [fact_from_row(r) for r in self.conn.execute(q)]


# -- ledger -------------------------------------------------------------------------------

class LedgerRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, entry: LedgerEntry) -> bool:
        """Appends one entry; False when a rule entry for the same fact, rule and officer exists."""
        values = entry_values(entry)
        row = self.conn.execute(insert_once(ledger_entries, tuple(values), (), "id"), values).first()
        return row is not None

    def get(self, entry_id: str, *, lock: bool = False) -> LedgerEntry | None:
        """An entry; with `lock`, corrections of the same entry wait for each other (to the end of the
        transaction), whether or not it exists."""
        if lock:
            self.conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(entry_id))))
        row = self.conn.execute(select(ledger_entries).where(ledger_entries.c.id == entry_id)).first()
        return entry_from_row(row) if row else None

    def is_reversed(self, entry_id: str) -> bool:
        return self.conn.execute(select(ledger_entries.c.id).where(
            ledger_entries.c.reverses == entry_id, ledger_entries.c.kind == "REVERSAL")).first() is not None

    def points_of_rule(self, rule_id: str, officer_id: str, station_id: str, start: datetime,
                       end: datetime) -> Decimal:
        """What a rule gave an officer (or, for station entries, a station) in [start, end)."""
        q = select(func.coalesce(func.sum(ledger_entries.c.points), 0)).where(
            ledger_entries.c.rule_id == rule_id, ledger_entries.c.officer_id == officer_id,
            ledger_entries.c.occur_time >= start, ledger_entries.c.occur_time < end)
        if not officer_id:
            q = q.where(ledger_entries.c.station_id == station_id)
        return Decimal(self.conn.execute(q).scalar_one())

    def quality_points(self, officer_id: str, after: datetime, until: datetime) -> Decimal:
        """An officer's quality points in (after, until]."""
        c = ledger_entries.c
        return Decimal(self.conn.execute(select(func.coalesce(func.sum(c.points), 0)).where(
            c.officer_id == officer_id, c.dimension == "QUALITY", c.occur_time > after,
            c.occur_time <= until)).scalar_one())


# -- cases --------------------------------------------------------------------------------

class CaseRepository:
    def __init__(self, conn):
        self.conn = conn

    def upsert(self, case: Case) -> None:
        """Records what an event says of a case; what it leaves empty keeps its known value."""
        values = {k: v for k, v in dict(report=case.report, station_id=case.station_id, grid_id=case.grid_id,
                                        incident_type=case.incident_type).items() if v}
        columns = tuple(values)
        self.conn.execute(insert_once(cases, ("case_name", *columns), ("case_name",), update=columns),
                          {"case_name": case.case_name, **values})

    def get(self, case_name: str) -> Case | None:
        row = self.conn.execute(select(cases).where(cases.c.case_name == case_name)).first()
        return case_from_row(row) if row else None

    def by_report(self, report: str) -> Case | None:
        row = self.conn.execute(select(cases).where(cases.c.report == report)).first()
        return case_from_row(row) if row else None

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


class GridRepository:
    """The 1-3-5 minute circle's arrival targets per community grid (reference data)."""

    def __init__(self, conn):
        self.conn = conn

    def put(self, targets: list[tuple[str, str, int]]) -> None:
        """(grid_id, station_id, arrival_target_s) rows, added or updated."""
        stmt = insert(grid_targets).values([
            dict(grid_id=grid_id, station_id=station_id, arrival_target_s=target)
            for grid_id, station_id, target in targets])
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["grid_id"], set_={
            "station_id": stmt.excluded.station_id, "arrival_target_s": stmt.excluded.arrival_target_s}))


# -- report-back obligations ------------------------------------------------------------------

class ObligationRepository:
    def __init__(self, conn):
        self.conn = conn

    def open(self, ob: ReportBackObligation) -> None:
        """Starts tracking an accepted assignment's report-back; an assignment accepted again keeps the first."""
        self.conn.execute(insert(report_back_obligations).values(
            assignment=ob.assignment, case_name=ob.case_name, station_id=ob.station_id,
            officers=[vars(o) for o in ob.officers], due_time=ob.due_time,
            source_event_id=ob.source_event_id).on_conflict_do_nothing())

    def _pending(self, assignment: str):
        t = report_back_obligations
        return t.update().where(t.c.assignment == assignment, t.c.done_time.is_(None))

    def reschedule(self, assignment: str, due_time: datetime) -> None:
        self.conn.execute(self._pending(assignment).values(due_time=due_time))

    def fulfil(self, assignment: str, at: datetime) -> None:
        self.conn.execute(self._pending(assignment).values(done_time=at))

    def cancel(self, assignment: str) -> None:
        self.conn.execute(self._pending(assignment).values(cancelled=True))

    def overdue(self, now: datetime) -> list[ReportBackObligation]:
        """Pending obligations past due and not yet warned, oldest first, claimed (SKIP LOCKED: one
        replica's sweep does not wait for another's)."""
        t = report_back_obligations
        rows = self.conn.execute(select(t).where(
            t.c.done_time.is_(None), t.c.cancelled.is_(False), t.c.warned.is_(False), t.c.due_time < now)
            .order_by(t.c.due_time).with_for_update(skip_locked=True)).all()
        return [ReportBackObligation(assignment=r.assignment, case_name=r.case_name, station_id=r.station_id,
                                     officers=[OfficerOnFact(**o) for o in r.officers], due_time=r.due_time,
                                     source_event_id=r.source_event_id) for r in rows]

    def mark_warned(self, assignment: str) -> None:
        t = report_back_obligations
        self.conn.execute(t.update().where(t.c.assignment == assignment).values(warned=True))


# -- warnings ------------------------------------------------------------------------------

class WarningRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, w: EnforcementWarning) -> bool:
        """Stores a new warning and its timeline; False when the same cause already warned the officer."""
        row = self.conn.execute(insert(warnings).values(
            id=w.id, kind=w.kind, officer_id=w.officer_id, station_id=w.station_id, case_name=w.case_name,
            status=w.status, detail=w.detail, source_event_id=w.source_event_id, cause=w.cause,
            raise_time=w.raise_time, rectify_time=w.rectify_time,
        ).on_conflict_do_nothing().returning(warnings.c.id)).first()
        if row is None:
            return False
        self._append_timeline(w)
        return True

    def open_ones(self, kind: str, *, cause: str = "", case_name: str = "") -> list[EnforcementWarning]:
        """Open warnings of a kind about a cause (or, without one, about a case), locked for a change."""
        q = select(warnings).where(warnings.c.kind == kind, warnings.c.status == "OPEN")
        q = q.where(warnings.c.cause == cause) if cause else q.where(warnings.c.case_name == case_name)
        rows = self.conn.execute(q.with_for_update()).all()
        return [warning_from_row(r) for r in rows]

    def save(self, w: EnforcementWarning) -> None:
        self.conn.execute(warnings.update().where(warnings.c.id == w.id).values(
            status=w.status, rectify_time=w.rectify_time))
        self._append_timeline(w)

    def _append_timeline(self, w: EnforcementWarning) -> None:
        warning_timeline.add(self.conn, w.id, w.new_entries)
        w.new_entries = []


# -- reviews -------------------------------------------------------------------------------

class ReviewRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, r: Review) -> None:
        self.conn.execute(reviews.insert().values(**{name: getattr(r, name) for name in _REVIEW_COLUMNS}))


class OutboxEvents:
    """The ids of events this service published (an event's id is the source of what it scores)."""

    def __init__(self, conn):
        self.conn = conn

    def event_id(self, sequence: int) -> str:
        t = runtime_tables.outbox
        return str(self.conn.execute(select(t.c.event_id).where(t.c.sequence == sequence)).scalar_one())


class Repositories:
    """Scoring's repositories on one transaction's connection (`uow.repos`)."""

    def __init__(self, conn):
        self.rule_sets = RuleSetRepository(conn)
        self.facts = FactRepository(conn)
        self.ledger = LedgerRepository(conn)
        self.cases = CaseRepository(conn)
        self.grids = GridRepository(conn)
        self.obligations = ObligationRepository(conn)
        self.warnings = WarningRepository(conn)
        self.reviews = ReviewRepository(conn)
        self.events = OutboxEvents(conn)
