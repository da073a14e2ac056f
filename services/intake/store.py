"""Intake's write side, in the `intake` schema: the tables, and the repositories that load and save
the report aggregate (its row, timeline, consultation and what followed intake), add knowledge
entries, and count SLA figures once a transaction commits. `Repositories(conn)` gives them to a
unit of work (`uow.repos`)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Identity, Index, Integer, MetaData, String, Table, Text,
    and_, func, or_, select, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from services.runtime.app import RuntimeTables
from services.runtime.audit import Timeline, timeline_table
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


def _candidate(row) -> Candidate:
    return Candidate(row.id, row.category, row.incident_type, row.caller_phone, row.lon, row.lat,
                     row.address_text, row.receive_time)


@dataclass
class _Stored:
    """What a report was when this repository read or wrote it: `save` writes only what changed since."""

    row: dict
    entries: int
    handling: dict
    consultation: dict | None


class ReportRepository:
    """Reports as aggregates: the `reports` row, the timeline, the consultation and the report's
    `report_handling` row (merge reason, case and work order links, the rating comment)."""

    def __init__(self, conn):
        self.conn = conn
        self._stored: dict[str, _Stored] = {}

    def get(self, report_id: str, *, lock: bool = False) -> Report | None:
        """The whole report; `lock`: its row (and its consultation's) locked until the transaction ends."""
        q = select(reports).where(reports.c.id == report_id)
        if lock:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        if row is None:
            return None
        report = report_from_row(row, timeline.of(self.conn, report_id))
        c = select(consultations).where(consultations.c.report_id == report_id)
        found = self.conn.execute(c.with_for_update() if lock else c).first()
        report.consultation = consultation_from_row(found) if found is not None else None
        handling = self.conn.execute(select(report_handling).where(report_handling.c.report_id == report_id)).first()
        if handling is not None:
            report.merge_reason = handling.merge_reason
            report.dispatch_case = handling.dispatch_case
            report.work_order = handling.work_order
            report.satisfaction_comment = handling.satisfaction_comment
            report.rate_time = handling.rate_time
        report.duplicates = list(self.conn.execute(
            select(reports.c.id).where(reports.c.merged_into == report_id).order_by(reports.c.receive_time, reports.c.id)
        ).scalars())
        self._remember(report)
        return report

    def lock(self, *report_ids: str) -> None:
        """Locks reports' rows in the order given (callers give a fixed order, so two cannot deadlock)."""
        for report_id in report_ids:
            self.conn.execute(select(reports.c.id).where(reports.c.id == report_id).with_for_update())

    def add(self, report: Report) -> None:
        self.conn.execute(reports.insert().values(**_report_values(report)))
        timeline.add(self.conn, report.id, report.timeline)
        if report.consultation is not None:
            self.conn.execute(consultations.insert().values(report_id=report.id,
                                                            **_consultation_values(report.consultation)))
        handling = {k: v for k, v in _handling_values(report).items() if v != NO_HANDLING[k]}
        if handling:
            self._put_handling(report.id, handling)
        self._remember(report)

    def save(self, report: Report) -> None:
        """Writes what changed since the report was read: its row's changed columns, the new timeline
        entries, its consultation and its handling row."""
        stored = self._stored[report.id]
        row = _report_values(report)
        changed = {k: v for k, v in row.items() if stored.row[k] != v}
        if changed:
            self.conn.execute(reports.update().where(reports.c.id == report.id).values(**changed))
        handling = {k: v for k, v in _handling_values(report).items() if stored.handling[k] != v}
        if handling:
            self._put_handling(report.id, handling)
        consultation = _consultation_values(report.consultation)
        if consultation != stored.consultation:
            if stored.consultation is None:
                self.conn.execute(consultations.insert().values(report_id=report.id, **consultation))
            elif consultation is None:
                self.conn.execute(consultations.delete().where(consultations.c.report_id == report.id))
            else:
                self.conn.execute(consultations.update().where(consultations.c.report_id == report.id)
                                  .values(**consultation))
        timeline.add(self.conn, report.id, report.timeline[stored.entries:])
        self._remember(report)

    def _put_handling(self, report_id: str, values: dict) -> None:
        stmt = insert(report_handling).values(report_id=report_id, **values)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["report_id"], set_=values))

    def _remember(self, report: Report) -> None:
        self._stored[report.id] = _Stored(_report_values(report), len(report.timeline), _handling_values(report),
                                          _consultation_values(report.consultation))

    def recent_invalid_calls(self, phone: str, since: datetime) -> int:
        """Invalid reports (prank, misdial, harassment) from one number since a time."""
        return self.conn.execute(
            select(func.count()).select_from(reports).where(
                reports.c.caller_phone == phone, reports.c.receive_time >= since, reports.c.category == "INVALID")
        ).scalar_one()

    def report_of_case(self, case_name: str) -> str | None:
        """The report a dispatch case was opened for, once the case is linked."""
        return self.conn.execute(
            select(report_handling.c.report_id).where(report_handling.c.dispatch_case == case_name)).scalar()

    def lock_duplicate_search(self, key: int) -> None:
        """Serialises duplicate searches of one area (`duplicates.lock_key`) until the transaction ends."""
        self.conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})

    def open_candidates(self, new: Candidate) -> list[Candidate]:
        """Open, unmerged reports that could be the incident `new` repeats (bounding box, caller or address)."""
        near = []
        box = duplicates.near_box(new)
        if box is not None:
            min_lon, max_lon, min_lat, max_lat = box
            near.append(and_(reports.c.lon.between(min_lon, max_lon), reports.c.lat.between(min_lat, max_lat)))
        if new.caller_phone:
            near.append(reports.c.caller_phone == new.caller_phone)
        if new.address_text and new.lon is None:
            near.append(and_(reports.c.lon.is_(None), reports.c.address_text == new.address_text))
        if not near:
            return []
        window = duplicates.SEARCH_WINDOW
        q = select(reports.c.id, reports.c.category, reports.c.incident_type, reports.c.caller_phone, reports.c.lon,
                   reports.c.lat, reports.c.address_text, reports.c.receive_time).where(
            reports.c.receive_time.between(new.receive_time - window, new.receive_time + window),
            reports.c.merged_into == "",
            reports.c.status.in_(duplicates.OPEN_STATUSES),
            reports.c.category == new.category,
            reports.c.id != new.report_id,
            or_(*near),
        ).order_by(reports.c.receive_time).limit(duplicates.MAX_CANDIDATES)
        return [_candidate(r) for r in self.conn.execute(q)]


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
