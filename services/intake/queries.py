"""Intake's read side: a report read back, lists of reports and consultations (keyset pages), the
intake statistics, and the read models each process keeps in memory (the jurisdiction index, the
address gazetteer, the knowledge base's search index), loaded on first use."""
from __future__ import annotations

import threading
import time
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Engine

from services.runtime.db import read_snapshot
from services.runtime.keyset import after_key

from .domain import Address, Figures, GridArea, JurisdictionIndex, Report, StationArea, Statistics, \
    geometry_from_geojson
from .domain.statistics import ANSWER_TARGET, HAND_OFF_TARGET
from .gazetteer import Gazetteer
from .knowledge import REFRESH_CHECK_SECONDS, Consultation, Entry, KnowledgeIndex
from .store import (
    ReportRepository, addresses, classification_examples, consultation_from_row, consultations, grids,
    knowledge_entries, report_from_row, reports, stations,
)
from .store import personal_data_views as personal_data_views_table

# -- reports -----------------------------------------------------------------------


def get_report(conn, report_id: str) -> Report | None:
    """The whole report (timeline, consultation, duplicates, follow-up links), as GetReport shows it."""
    return ReportRepository(conn).get(report_id)


def list_reports(conn, *, size: int, after: tuple[datetime, str] | None, filters: dict) -> list[Report]:
    """Reports newest first (by receive time), `size + 1` of them after `after`; without their timelines."""
    q = select(reports)
    if filters.get("stations") is not None:
        wanted = sorted(filters["stations"])
        q = q.where(or_(reports.c.station_id.in_(wanted), reports.c.shared_station_ids.overlap(wanted)))
    for column in ("channel", "category", "incident_type", "priority", "status"):
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
    q = after_key(q, reports.c.receive_time, reports.c.id, after, size)
    return [report_from_row(row, []) for row in conn.execute(q)]


def personal_data_views(conn, report_id: str) -> list[dict]:
    """Who saw the report's caller data unmasked, oldest first."""
    v = personal_data_views_table
    return [dict(r._mapping) for r in conn.execute(select(v).where(v.c.report_id == report_id).order_by(v.c.seq))]


# -- consultations -----------------------------------------------------------------

def get_consultation(conn, report_id: str) -> Consultation | None:
    row = conn.execute(select(consultations).where(consultations.c.report_id == report_id)).first()
    return consultation_from_row(row) if row else None


def list_consultations(conn, *, statuses: tuple[str, ...], expert: str, size: int,
                       after: tuple[datetime, str] | None) -> list[Consultation]:
    """The expert queue, oldest first, `size + 1` consultations after `after`."""
    q = select(consultations).where(consultations.c.status.in_(statuses))
    if expert:
        q = q.where(consultations.c.expert == expert)
    q = after_key(q, consultations.c.create_time, consultations.c.report_id, after, size, descending=False)
    return [consultation_from_row(r) for r in conn.execute(q)]


# -- statistics --------------------------------------------------------------------

_police = and_(reports.c.category == "POLICE", reports.c.merged_into == "")
_COLUMNS = (
    func.count().label("reports"),
    func.count().filter(reports.c.answer_time.isnot(None)).label("answered"),
    func.count().filter(reports.c.answer_time - reports.c.receive_time <= ANSWER_TARGET).label("answered_in_time"),
    func.count().filter(_police).label("police"),
    func.count().filter(and_(_police, reports.c.hand_off_time.isnot(None))).label("handed_off"),
    func.count().filter(and_(_police, reports.c.hand_off_time - reports.c.receive_time <= HAND_OFF_TARGET)
                        ).label("handed_off_in_time"),
    func.count().filter(reports.c.merged_into != "").label("merged"),
)


def _figures(row) -> Figures:
    return Figures(**{k: int(getattr(row, k)) for k in Figures.__dataclass_fields__})


def intake_statistics(conn, *, start: datetime | None, end: datetime | None,
                      station_ids: frozenset[str] | None) -> Statistics:
    """Figures over the reports of `station_ids` (None: the whole city)."""
    where = []
    if start is not None:
        where.append(reports.c.receive_time >= start)
    if end is not None:
        where.append(reports.c.receive_time < end)
    if station_ids is not None:
        where.append(reports.c.station_id.in_(sorted(station_ids)))

    def grouped(key):
        q = select(key.label("key"), *_COLUMNS).where(*where).group_by(key).order_by(key)
        return [(row.key, _figures(row)) for row in conn.execute(q)]

    total = _figures(conn.execute(select(*_COLUMNS).where(*where)).one())
    hour = func.date_trunc("hour", reports.c.receive_time)
    satisfaction = {
        row.satisfaction: int(row.n) for row in conn.execute(
            select(reports.c.satisfaction, func.count().label("n"))
            .where(*where, reports.c.satisfaction != "").group_by(reports.c.satisfaction))
    }
    status = {
        (row.status, row.answered_at_once): int(row.n) for row in conn.execute(
            select(consultations.c.status, consultations.c.answered_at_once, func.count().label("n"))
            .select_from(consultations.join(reports, reports.c.id == consultations.c.report_id))
            .where(*where).group_by(consultations.c.status, consultations.c.answered_at_once))
    }
    consult = {
        "consultations": sum(status.values()),
        "answered_at_once": status.get(("ANSWERED", True), 0),
        "answered_by_expert": status.get(("ANSWERED", False), 0),
        "waiting": sum(n for (s, _), n in status.items() if s != "ANSWERED"),
    }
    return Statistics(
        total=total,
        channels=dict(grouped(reports.c.channel)),
        hours=grouped(hour),
        stations={k: v for k, v in grouped(reports.c.station_id) if k},
        satisfaction=satisfaction,
        consultations=consult,
    )


# -- what each process keeps in memory ---------------------------------------------

def labelled_examples(conn) -> list[dict]:
    """Call-takers' corrections, oldest first, as training examples (the latest correction of a
    report is the one that counts)."""
    t = classification_examples
    rows = conn.execute(select(t).order_by(t.c.seq)).all()
    latest = {row.report_id: row for row in rows}
    return [{"report_id": r.report_id, "text": r.text, "channel": r.channel, "category": r.category,
             "incident_type": r.incident_type, "priority": r.priority, "corrected_by": r.corrected_by,
             "classifier_version": r.classifier_version} for r in latest.values()]


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


def load_addresses(conn) -> list[Address]:
    return [
        Address(r.code, r.full_address, r.district, r.street, r.community, r.road, r.house_number, r.building,
                r.lon, r.lat, r.station_id, r.grid_id)
        for r in conn.execute(select(addresses).order_by(addresses.c.code))
    ]


def load_entries(conn) -> list[Entry]:
    return [Entry(r.entry_id, r.topic, r.question, r.answer, tuple(r.keywords), r.source, r.source_consultation,
                  r.create_time)
            for r in conn.execute(select(knowledge_entries).order_by(knowledge_entries.c.seq))]


def latest_entry_seq(conn) -> int:
    return conn.execute(select(func.coalesce(func.max(knowledge_entries.c.seq), 0))).scalar_one()


class JurisdictionCache:
    """The jurisdiction index, built from the stations table on first use."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._index: JurisdictionIndex | None = None
        self._lock = threading.Lock()

    def get(self) -> JurisdictionIndex:
        with self._lock:
            if self._index is None or len(self._index) == 0:
                with read_snapshot(self.engine) as conn:
                    self._index = JurisdictionIndex(*load_areas(conn))
            return self._index


class GazetteerCache:
    """The address gazetteer, built from the addresses table on first use."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self._gazetteer: Gazetteer | None = None
        self._lock = threading.Lock()

    def get(self) -> Gazetteer:
        with self._lock:
            if self._gazetteer is None or len(self._gazetteer) == 0:
                with read_snapshot(self.engine) as conn:
                    self._gazetteer = Gazetteer(load_addresses(conn))
            return self._gazetteer


class KnowledgeBase:
    """The knowledge base's search index in one process, rebuilt when the table has gained entries."""

    def __init__(self, engine: Engine, clock=time.monotonic):
        self.engine = engine
        self.clock = clock
        self._lock = threading.Lock()
        self._rebuild = threading.Lock()
        self._index = KnowledgeIndex([])
        self._seq = -1
        self._checked = float("-inf")

    def index(self) -> KnowledgeIndex:
        """The current index, checked against the table at most every REFRESH_CHECK_SECONDS."""
        with self._lock:
            if self._seq < 0:  # first use: everyone waits for the one load
                self._load()
                return self._index
            if self.clock() - self._checked < REFRESH_CHECK_SECONDS:
                return self._index
            self._checked = self.clock()  # meanwhile other callers keep the current index
        self._load()
        return self._index

    def _load(self) -> None:
        with self.engine.connect() as conn:
            seq = latest_entry_seq(conn)
            if seq == self._seq:
                return
            built = KnowledgeIndex(load_entries(conn))
        with self._rebuild:
            if seq > self._seq:
                self._index, self._seq = built, seq
        self._checked = self.clock()

    def invalidate(self) -> None:
        with self._lock:
            self._checked = float("-inf")
