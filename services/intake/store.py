"""Intake's write side, in the `intake` schema: the tables, and the repositories that load and save
the report aggregate (its row, timeline, consultation and what followed intake), add knowledge
entries, and count SLA figures once a transaction commits. `Repositories(conn)` gives them to a
unit of work (`uow.repos`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Identity, Index, Integer, MetaData, String, Table, Text,
    and_, bindparam, func, or_, select, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, aggregate_order_by, insert

from services.runtime.app import RuntimeTables
from services.runtime.audit import Timeline, timeline_table
from services.runtime.db import compiled_once
from services.runtime.metrics import observe_sla_after_commit
from services.runtime.model import TimelineEntry

from . import duplicates
from .domain import Address, AddressMatch, Attachment, Classification, LabelledExample, Report
from .duplicates import Candidate
from .knowledge import Consultation, Entry

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
    # A border case's neighbouring stations (边界警情), which see the report as their own.
    Column("shared_station_ids", ARRAY(Text), nullable=False, server_default="{}"),
    Column("merged_into", String(40), nullable=False, server_default=""),
    Column("receive_time", DateTime(timezone=True), nullable=False),
    Column("answer_time", DateTime(timezone=True)),
    Column("classify_time", DateTime(timezone=True)),
    Column("hand_off_time", DateTime(timezone=True)),
    Column("on_scene_time", DateTime(timezone=True)),
    Column("satisfaction", String(30), nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Column("update_time", DateTime(timezone=True), nullable=False),
    Column("address_code", String(21), nullable=False, server_default=""),
    Column("address_match", JSONB),
    Column("classifier_version", String(60), nullable=False, server_default=""),
    Column("classification_confidence", Float),
    Column("needs_confirmation", Boolean, nullable=False, server_default="false"),
    Index("reports_receive_time", "receive_time", "id"),
    Index("reports_station_time", "station_id", "receive_time"),
    Index("reports_shared_stations", "shared_station_ids", postgresql_using="gin"),
)

# Call-takers' corrections of classifications: labelled examples for the classifier's training.
classification_examples = Table(
    "classification_examples", metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("report_id", String(40), nullable=False),
    Column("text", Text, nullable=False),
    Column("channel", String(30), nullable=False),
    Column("category", String(20), nullable=False),
    Column("incident_type", String(40), nullable=False),
    Column("priority", Integer, nullable=False),
    Column("previous_category", String(20), nullable=False),
    Column("previous_type", String(40), nullable=False),
    Column("previous_priority", Integer, nullable=False),
    Column("classifier_version", String(60), nullable=False, server_default=""),
    Column("corrected_by", Text, nullable=False, server_default=""),
    Column("reason", Text, nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Index("classification_examples_report", "report_id", "seq"),
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

# Who saw a caller's phone number or name unmasked (个人信息查看留痕): one row per view, append-only.
personal_data_views = Table(
    "personal_data_views", metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("report_id", String(40), nullable=False),
    Column("actor", Text, nullable=False),
    Column("roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("view_time", DateTime(timezone=True), nullable=False),
    Column("method", String(60), nullable=False),
    Column("fields", ARRAY(Text), nullable=False, server_default="{}"),
    # A service's read (GetCallerContact): why, and what for (e.g. a stop-payment hand-off's name).
    Column("purpose", String(40), nullable=False, server_default=""),
    Column("reference", Text, nullable=False, server_default=""),
    Index("personal_data_views_report", "report_id", "seq"),
    Index("personal_data_views_actor", "actor", "view_time"),
)

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


# -- reports ---------------------------------------------------------------------

def _report_values(r: Report) -> dict:
    c = r.classification
    return dict(
        id=r.id, channel=r.channel, caller_phone=r.caller_phone, caller_name=r.caller_name,
        lon=r.lon, lat=r.lat, accuracy_m=r.accuracy_m, location_source=r.location_source,
        address_text=r.address_text, description=r.description,
        attachments=[dict(vars(a)) for a in r.attachments], language=r.language,
        category=c.category, incident_type=c.incident_type, priority=c.priority,
        classification_reason=c.reason, rule_ids=c.rule_ids, corrected=c.corrected,
        classifier_version=c.classifier_version, classification_confidence=c.confidence,
        needs_confirmation=c.needs_confirmation, status=r.status, station_id=r.station_id, grid_id=r.grid_id, border_case=r.border_case,
        shared_station_ids=list(r.shared_station_ids), merged_into=r.merged_into, receive_time=r.receive_time,
        answer_time=r.answer_time,
        classify_time=r.classify_time, hand_off_time=r.hand_off_time, on_scene_time=r.on_scene_time,
        satisfaction=r.satisfaction, create_time=r.create_time, update_time=r.update_time,
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


def report_from_row(row, entries: list[TimelineEntry]) -> Report:
    """A report from its row and timeline, without what followed intake (see `ReportRepository.get`)."""
    return Report(
        id=row.id, channel=row.channel, caller_phone=row.caller_phone, caller_name=row.caller_name,
        lon=row.lon, lat=row.lat, accuracy_m=row.accuracy_m, location_source=row.location_source,
        address_text=row.address_text, description=row.description,
        attachments=[Attachment(**a) for a in row.attachments], language=row.language,
        classification=Classification(row.category, row.incident_type, row.priority, row.classification_reason,
                                      list(row.rule_ids), row.corrected,
                                      1.0 if row.classification_confidence is None else row.classification_confidence,
                                      row.needs_confirmation, row.classifier_version),
        status=row.status, station_id=row.station_id, grid_id=row.grid_id, border_case=row.border_case,
        shared_station_ids=list(row.shared_station_ids), merged_into=row.merged_into, receive_time=row.receive_time,
        answer_time=row.answer_time,
        classify_time=row.classify_time, hand_off_time=row.hand_off_time, on_scene_time=row.on_scene_time,
        satisfaction=row.satisfaction,
        create_time=row.create_time, update_time=row.update_time, timeline=entries,
        address_code=row.address_code, address_match=_match_from(row.address_match),
    )


def _handling_values(r: Report) -> dict:
    return dict(merge_reason=r.merge_reason, dispatch_case=r.dispatch_case, work_order=r.work_order,
                satisfaction_comment=r.satisfaction_comment, rate_time=r.rate_time)


NO_HANDLING = dict(merge_reason="", dispatch_case="", work_order="", satisfaction_comment="", rate_time=None)


def consultation_from_row(row) -> Consultation:
    return Consultation(
        report_id=row.report_id, question=row.question, status=row.status, topic=row.topic, answer=row.answer,
        entry_id=row.entry_id, score=row.score, answered_at_once=row.answered_at_once, expert=row.expert,
        expert_name=row.expert_name, suggestions=list(row.suggestions), station_id=row.station_id,
        create_time=row.create_time, claim_time=row.claim_time, answer_time=row.answer_time,
    )


def _consultation_values(c: Consultation | None) -> dict | None:
    if c is None:
        return None
    return dict(question=c.question, status=c.status, topic=c.topic, answer=c.answer, entry_id=c.entry_id,
                score=c.score, answered_at_once=c.answered_at_once, expert=c.expert, expert_name=c.expert_name,
                suggestions=c.suggestions, station_id=c.station_id, create_time=c.create_time,
                claim_time=c.claim_time, answer_time=c.answer_time)


class _Columns:
    """Attribute access to a dict (a consultation's columns read under labels)."""

    def __init__(self, values: dict):
        self.__dict__.update(values)


def _candidate(row) -> Candidate:
    return Candidate(row.id, row.category, row.incident_type, row.caller_phone, row.lon, row.lat,
                     row.address_text, row.receive_time, row.station_id, row.description)


@dataclass
class _Stored:
    """What a report was when this repository read or wrote it: `save` writes only what changed since."""

    row: dict
    entries: int
    handling: dict
    consultation: dict | None


# -- the statements of the report aggregate, built once ----------------------------------------
#
# A report is read in one statement (its row, handling row, consultation and, when asked for, its
# duplicates' ids; the timeline in a second one), and written in one: the report's own INSERT or
# UPDATE with the other tables' writes as data-modifying CTEs (WITH w1 AS (INSERT ...) UPDATE ...).
# Each shape of statement is built once and run with its parameters.

_HANDLING_COLUMNS = tuple(c.name for c in report_handling.c if c.name != "report_id")
_CONSULTATION_COLUMNS = tuple(c.name for c in consultations.c if c.name != "report_id")


def _bind(column: Column, name: str):
    # None is SQL NULL in a JSONB column too (address_match), as a literal None in values() is.
    kind = JSONB(none_as_null=True) if isinstance(column.type, JSONB) else column.type
    return bindparam(name, type_=kind)


def _binds(table: Table, names, prefix: str) -> dict:
    return {n: _bind(table.c[n], prefix + n) for n in names}


@lru_cache(maxsize=512)
def _part(key: tuple):
    """One write of a report (see `_write`), by its shape: (parameter prefix, kind, detail)."""
    p, kind, detail = key
    if kind == "report+":
        return reports.insert().values(_binds(reports, [c.name for c in reports.c], p + "r_"))
    if kind == "report":
        return (reports.update().where(reports.c.id == bindparam(p + "r_key", type_=reports.c.id.type))
                .values(_binds(reports, detail, p + "r_")))
    if kind == "timeline":
        return timeline.insert_statement(detail, prefix=p)
    if kind == "handling":
        stmt = insert(report_handling).values(report_id=_bind(report_handling.c.report_id, p + "h_key"),
                                              **_binds(report_handling, detail, p + "h_"))
        return stmt.on_conflict_do_update(index_elements=["report_id"], set_={k: stmt.excluded[k] for k in detail})
    key_param = _bind(consultations.c.report_id, p + "c_key")
    if kind == "consultation+":
        return consultations.insert().values(report_id=key_param,
                                             **_binds(consultations, _CONSULTATION_COLUMNS, p + "c_"))
    if kind == "consultation":
        return (consultations.update().where(consultations.c.report_id == key_param)
                .values(_binds(consultations, _CONSULTATION_COLUMNS, p + "c_")))
    if kind == "consultation-":
        return consultations.delete().where(consultations.c.report_id == key_param)
    raise ValueError(f"no report write {key!r}")


@lru_cache(maxsize=512)
def _combined(keys: tuple):
    """The writes `keys` in one statement (the first, with the others as data-modifying CTEs), compiled
    once: a handling upsert (INSERT … ON CONFLICT) leaves SQLAlchemy no cache key, so it would be
    compiled again at every save of a report."""
    first, *others = (_part(k) for k in keys)
    return compiled_once(first.add_cte(*(o.cte(f"w{i}") for i, o in enumerate(others, 1))) if others else first)


def _prefixed(values: dict, prefix: str) -> dict:
    return {prefix + k: v for k, v in values.items()}


_duplicate = reports.alias("duplicate")
_DUPLICATE_IDS = (select(func.array_agg(aggregate_order_by(_duplicate.c.id, _duplicate.c.receive_time,
                                                           _duplicate.c.id)))
                  .where(_duplicate.c.merged_into == reports.c.id).scalar_subquery())


@lru_cache(maxsize=16)
def _read(by: str, lock: bool, history: bool):
    """A report's row with its handling row and consultation (and, with `history`, its duplicates'
    ids), found by id or by the dispatch case linked to it; `lock`: its row locked (FOR UPDATE)."""
    columns = [reports,
               *(report_handling.c[n].label(f"h_{n}") for n in ("report_id", *_HANDLING_COLUMNS)),
               *(consultations.c[n].label(f"c_{n}") for n in ("report_id", *_CONSULTATION_COLUMNS))]
    if history:
        columns.append(_DUPLICATE_IDS.label("duplicate_ids"))
    q = select(*columns).select_from(
        reports.outerjoin(report_handling, report_handling.c.report_id == reports.c.id)
        .outerjoin(consultations, consultations.c.report_id == reports.c.id))
    if by == "id":
        q = q.where(reports.c.id == bindparam("key", type_=reports.c.id.type))
    else:
        # The first report linked to the case (one, in practice), as `report_of_case` finds it.
        q = q.where(report_handling.c.dispatch_case == bindparam("key", type_=report_handling.c.dispatch_case.type))
        q = q.limit(1)
    return q.with_for_update(of=reports) if lock else q


_RECENT_INVALID = select(func.count()).select_from(reports).where(
    reports.c.caller_phone == bindparam("phone", type_=reports.c.caller_phone.type),
    reports.c.receive_time >= bindparam("since", type_=reports.c.receive_time.type),
    reports.c.category == "INVALID")
_REPORT_OF_CASE = select(report_handling.c.report_id).where(
    report_handling.c.dispatch_case == bindparam("case", type_=report_handling.c.dispatch_case.type))
_LOCK_ROW = select(reports.c.id).where(reports.c.id == bindparam("key", type_=reports.c.id.type)).with_for_update()
_LOCK_SEARCH = text("SELECT pg_advisory_xact_lock(:k)")


@lru_cache(maxsize=8)
def _candidates_query(near_point: bool, same_caller: bool, same_address: bool):
    """Open, unmerged reports near a point, from a caller or at an address without a point."""
    near = []
    if near_point:
        near.append(and_(reports.c.lon.between(bindparam("min_lon"), bindparam("max_lon")),
                         reports.c.lat.between(bindparam("min_lat"), bindparam("max_lat"))))
    if same_caller:
        near.append(reports.c.caller_phone == bindparam("phone", type_=reports.c.caller_phone.type))
    if same_address:
        near.append(and_(reports.c.lon.is_(None),
                         reports.c.address_text == bindparam("address", type_=reports.c.address_text.type)))
    time_type = reports.c.receive_time.type
    return select(reports.c.id, reports.c.category, reports.c.incident_type, reports.c.caller_phone, reports.c.lon,
                  reports.c.lat, reports.c.address_text, reports.c.receive_time, reports.c.station_id,
                  reports.c.description).where(
        reports.c.receive_time.between(bindparam("start", type_=time_type), bindparam("end", type_=time_type)),
        reports.c.merged_into == "",
        reports.c.status.in_(duplicates.OPEN_STATUSES),
        reports.c.category == bindparam("category", type_=reports.c.category.type),
        reports.c.id != bindparam("report_id", type_=reports.c.id.type),
        or_(*near),
    ).order_by(reports.c.receive_time).limit(duplicates.MAX_CANDIDATES)


class ReportRepository:
    """Reports as aggregates: the `reports` row, the timeline, the consultation and the report's
    `report_handling` row (merge reason, case and work order links, the rating comment)."""

    def __init__(self, conn):
        self.conn = conn
        self._stored: dict[str, _Stored] = {}

    def get(self, report_id: str, *, lock: bool = False, history: bool = True) -> Report | None:
        """The whole report; `lock`: its row locked until the transaction ends (the consultation and the
        handling row are only ever written with the report's row locked).

        `history=False`: without its timeline and duplicates, for a change that only sets fields and
        appends entries (the timeline is append-only: `save` adds the new entries without the old
        ones). Its `timeline` then holds the entries appended since, its `duplicates` is empty; what
        events carry is the same (they leave both lists out)."""
        row = self.conn.execute(_read("id", lock, history), {"key": report_id}).first()
        return self._loaded(row, history)

    def get_by_case(self, case_name: str, *, history: bool = True) -> Report | None:
        """The report a dispatch case was opened for, once the case is linked, its row locked; one
        statement where `report_of_case` and `get` take two."""
        row = self.conn.execute(_read("case", True, history), {"key": case_name}).first()
        return self._loaded(row, history)

    def _loaded(self, row, history: bool) -> Report | None:
        if row is None:
            return None
        report = report_from_row(row, timeline.of(self.conn, row.id) if history else [])
        m = row._mapping
        if m["c_report_id"] is not None:
            report.consultation = consultation_from_row(
                _Columns({"report_id": m["c_report_id"], **{n: m[f"c_{n}"] for n in _CONSULTATION_COLUMNS}}))
        if m["h_report_id"] is not None:
            for n in _HANDLING_COLUMNS:
                setattr(report, n, m[f"h_{n}"])
        if history:
            report.duplicates = list(m["duplicate_ids"] or [])
        self._remember(report)
        return report

    def lock(self, *report_ids: str) -> None:
        """Locks reports' rows in the order given (callers give a fixed order, so two cannot deadlock)."""
        for report_id in report_ids:
            self.conn.execute(_LOCK_ROW, {"key": report_id})

    def add(self, report: Report, *, saving: tuple[Report, ...] = ()) -> None:
        """One statement: the row, the timeline, the consultation and the handling row; with what
        changed of the reports `saving` (see `save`), read before, in the same statement."""
        parts = self._added(report, "")
        for i, other in enumerate(saving):
            parts += self._saved(other, f"s{i}_")
        self._write(parts)

    def save(self, report: Report) -> None:
        """Writes what changed since the report was read, in one statement: its row's changed columns,
        the new timeline entries, its consultation and its handling row."""
        self._write(self._saved(report, ""))

    def _added(self, report: Report, p: str) -> list[tuple]:
        row = _report_values(report)
        parts = [((p, "report+", None), _prefixed(row, p + "r_"))]
        parts += self._entries(report.id, report.timeline, p)
        consultation = _consultation_values(report.consultation)
        if consultation is not None:
            parts.append(((p, "consultation+", None), {p + "c_key": report.id, **_prefixed(consultation, p + "c_")}))
        handling_now = _handling_values(report)
        handling = {k: v for k, v in handling_now.items() if v != NO_HANDLING[k]}
        if handling:
            parts.append(self._handling(report.id, handling, p))
        self._stored[report.id] = _Stored(row, len(report.timeline), handling_now, consultation)
        return parts

    def _saved(self, report: Report, p: str) -> list[tuple]:
        stored = self._stored[report.id]
        row = _report_values(report)
        parts = []
        changed = {k: v for k, v in row.items() if stored.row[k] != v}
        if changed:
            parts.append(((p, "report", tuple(changed)), {p + "r_key": report.id, **_prefixed(changed, p + "r_")}))
        handling_now = _handling_values(report)
        handling = {k: v for k, v in handling_now.items() if stored.handling[k] != v}
        if handling:
            parts.append(self._handling(report.id, handling, p))
        consultation = _consultation_values(report.consultation)
        if consultation != stored.consultation:
            kind = ("consultation+" if stored.consultation is None else
                    "consultation-" if consultation is None else "consultation")
            parts.append(((p, kind, None), {p + "c_key": report.id, **_prefixed(consultation or {}, p + "c_")}))
        parts += self._entries(report.id, report.timeline[stored.entries:], p)
        self._stored[report.id] = _Stored(row, len(report.timeline), handling_now, consultation)
        return parts

    @staticmethod
    def _entries(report_id: str, entries: list[TimelineEntry], p: str) -> list[tuple]:
        # More entries than one statement takes go in as several (a report never gains as many at once).
        step = 1000
        return [((p, "timeline", len(entries[i:i + step])), timeline.insert_params(report_id, entries[i:i + step], p))
                for i in range(0, len(entries), step)]

    @staticmethod
    def _handling(report_id: str, values: dict, p: str) -> tuple:
        return (p, "handling", tuple(values)), {p + "h_key": report_id, **_prefixed(values, p + "h_")}

    def _write(self, parts: list[tuple]) -> None:
        """Runs reports' writes as one statement (`_combined`)."""
        if not parts:
            return
        prefixes = [k[0] for k, _ in parts if k[1] == "timeline"]
        if len(prefixes) != len(set(prefixes)):
            # A report's timeline parts share parameter names: each write runs on its own, in order.
            for key, params in parts:
                self.conn.execute(_combined((key,)), params)
            return
        params: dict = {}
        for _, p in parts:
            params.update(p)
        self.conn.execute(_combined(tuple(k for k, _ in parts)), params)

    def _remember(self, report: Report) -> None:
        self._stored[report.id] = _Stored(_report_values(report), len(report.timeline), _handling_values(report),
                                          _consultation_values(report.consultation))

    def recent_invalid_calls(self, phone: str, since: datetime) -> int:
        """Invalid reports (prank, misdial, harassment) from one number since a time."""
        return self.conn.execute(_RECENT_INVALID, {"phone": phone, "since": since}).scalar_one()

    def report_of_case(self, case_name: str) -> str | None:
        """The report a dispatch case was opened for, once the case is linked."""
        return self.conn.execute(_REPORT_OF_CASE, {"case": case_name}).scalar()

    def lock_duplicate_search(self, key: int) -> None:
        """Serialises duplicate searches of one area (`duplicates.lock_key`) until the transaction ends."""
        self.conn.execute(_LOCK_SEARCH, {"k": key})

    def open_candidates(self, new: Candidate) -> list[Candidate]:
        """Open, unmerged reports that could be the incident `new` repeats (bounding box, caller or address)."""
        box = duplicates.near_box(new)
        same_caller = bool(new.caller_phone)
        same_address = bool(new.address_text and new.lon is None)
        if box is None and not same_caller and not same_address:
            return []
        window = duplicates.SEARCH_WINDOW
        params = {"start": new.receive_time - window, "end": new.receive_time + window, "category": new.category,
                  "report_id": new.report_id}
        if same_caller:
            params["phone"] = new.caller_phone
        if same_address:
            params["address"] = new.address_text
        if box is not None:
            params.update(zip(("min_lon", "max_lon", "min_lat", "max_lat"), box))
        q = _candidates_query(box is not None, same_caller, same_address)
        return [_candidate(r) for r in self.conn.execute(q, params)]


# -- the knowledge base ----------------------------------------------------------

class KnowledgeRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, e: Entry, *, author: str) -> None:
        self.conn.execute(knowledge_entries.insert().values(
            entry_id=e.entry_id, topic=e.topic, question=e.question, answer=e.answer, keywords=list(e.keywords),
            source=e.source, source_consultation=e.source_consultation, author=author, create_time=e.create_time))

    def add_seeds(self, seeds: list[Entry], now: datetime) -> int:
        """Loads seed entries, new ones only (idempotent); returns how many were added."""
        rows = [dict(entry_id=s.entry_id, topic=s.topic, question=s.question, answer=s.answer,
                     keywords=list(s.keywords), source="SEED", create_time=now) for s in seeds]
        if not rows:
            return 0
        result = self.conn.execute(insert(knowledge_entries).values(rows).on_conflict_do_nothing(
            index_elements=["entry_id"]).returning(knowledge_entries.c.entry_id))
        return len(result.fetchall())


# -- stations, grids and the gazetteer (sample data) -----------------------------

class ExampleRepository:
    """Labelled examples from call-takers' corrections (write side; training reads them through queries)."""

    def __init__(self, conn):
        self.conn = conn

    def add(self, e: LabelledExample) -> None:
        self.conn.execute(classification_examples.insert().values(**vars(e)))


class PlaceRepository:
    def __init__(self, conn):
        self.conn = conn

    def put_station(self, values: dict) -> None:
        stmt = insert(stations).values(**values)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["station_id"], set_={
            k: stmt.excluded[k] for k in values if k != "station_id"}))

    def put_grid(self, values: dict) -> None:
        stmt = insert(grids).values(**values)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["grid_id"], set_={
            k: stmt.excluded[k] for k in values if k != "grid_id"}))

    def put_addresses(self, rows: list[dict]) -> None:
        for start in range(0, len(rows), 1000):
            stmt = insert(addresses).values(rows[start:start + 1000])
            self.conn.execute(stmt.on_conflict_do_update(index_elements=["code"], set_={
                k: stmt.excluded[k] for k in rows[0] if k != "code"}))


class SlaFigures:
    """Service-level figures (the answer time) counted once the transaction commits, so a retried or
    rolled-back unit of work counts nothing twice."""

    def __init__(self, conn):
        self.conn = conn

    def observe(self, stage: str, seconds: float, *, priority=None, channel: str = "") -> None:
        observe_sla_after_commit(self.conn, stage, seconds, priority=priority, channel=channel)


class PersonalDataViews:
    """Records each unmasked view of a caller's personal data."""

    def __init__(self, conn):
        self.conn = conn

    def record(self, *, report_id: str, actor, at: datetime, method: str, fields: list[str], purpose: str = "",
               reference: str = "") -> None:
        self.conn.execute(personal_data_views.insert().values(
            report_id=report_id, actor=actor.subject, roles=sorted(actor.roles), station_id=actor.station or "",
            view_time=at, method=method, fields=fields, purpose=purpose, reference=reference))


class Repositories:
    """Intake's repositories on one transaction's connection (`uow.repos`)."""

    def __init__(self, conn):
        self.reports = ReportRepository(conn)
        self.views = PersonalDataViews(conn)
        self.knowledge = KnowledgeRepository(conn)
        self.examples = ExampleRepository(conn)
        self.places = PlaceRepository(conn)
        self.sla = SlaFigures(conn)
