"""Dispatch tables and repositories, in the `dispatch` schema: the write side.

The repositories load and save the aggregates of `domain`: a case with its assignments, its
follow-up and (when asked) its timeline and stop-payment hand-offs; a unit; a hand-off as the
sender works on it. A case repository remembers what it loaded, so that saving a case writes
what changed: its row's changed columns, the timeline entries it appended, its new and
changed assignments, its new hand-offs and follow-up. `Repositories(conn)` gives them all on
one transaction's connection (`uow.repos`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime

from sqlalchemy import (
    BigInteger, Boolean, Column, DateTime, Float, ForeignKey, Identity, Index, Integer, LargeBinary, MetaData, String,
    Table, Text,
    and_, exists, func, literal, or_, select, text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert
from sqlalchemy.exc import IntegrityError

from services.runtime import metrics
from services.runtime.app import RuntimeTables
from services.runtime.audit import Timeline, timeline_table
from services.runtime.db import insert_once
from services.runtime.errors import AlreadyExists

from .domain import (
    AccessGrant, Assignment, DispatchCase, Evidence, FollowUp, RatedOfficer, Recommendation, Shift, StopPayment,
    TimelineEntry, Unit,
)

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
    # The grids a community officer is responsible for (revision 0012).
    Column("grid_ids", ARRAY(Text), nullable=False, server_default="{}"),
    Index("units_kind_status", "kind", "status"),
    Index("units_grids", "grid_ids", postgresql_using="gin"),
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
    # From a silent alarm (无声报警): no voice call-back, approach quietly (revision 0008).
    Column("silent", Boolean, nullable=False, server_default="false"),
    # The report's channel, for the SLA figures by channel (revision 0014; "" before it).
    Column("channel", String(30), nullable=False, server_default=""),
    # A border case's neighbouring stations (边界警情), which see it as their own (revision 0009).
    Column("shared_station_ids", ARRAY(Text), nullable=False, server_default="{}"),
    # Closed or cancelled by the command (revision 0010): the outcome or the reason, with notes; and
    # when automatic offers stopped because nobody took the case.
    Column("outcome", String(30), nullable=False, server_default=""),
    Column("cancel_reason", String(30), nullable=False, server_default=""),
    Column("close_notes", Text, nullable=False, server_default=""),
    Column("offers_exhausted_time", DateTime(timezone=True)),
    # When a follow-up review reopened the case (revision 0011).
    Column("reopen_time", DateTime(timezone=True)),
    Index("cases_create_time", "create_time", "id"),
    Index("cases_station_status", "station_id", "status"),
    Index("cases_shared_stations", "shared_station_ids", postgresql_using="gin"),
    # The sweeper's scan for cases nobody took after automatic offers stopped.
    Index("cases_unanswered", "offers_exhausted_time",
          postgresql_where=text("offers_exhausted_time IS NOT NULL AND accept_time IS NULL")),
)

case_timeline = Timeline(timeline_table(metadata, "case_timeline", "case_id", "cases.id"), "case_id")
unit_timeline = Timeline(timeline_table(metadata, "unit_timeline", "unit_id", "units.unit_id"), "unit_id")

# Every status and position a unit had (状态与轨迹留痕): written by the database itself (trigger
# units_record_history, revision 0006) on each insert or change of `units`, and append-only.
unit_history = Table(
    "unit_history", metadata,
    Column("seq", BigInteger, Identity(always=True), primary_key=True),
    Column("unit_id", String(30), nullable=False),
    Column("recorded_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("status", String(20), nullable=False),
    Column("lon", Float, nullable=False),
    Column("lat", Float, nullable=False),
    Column("position_time", DateTime(timezone=True)),
    Column("position_accuracy_m", Float, nullable=False, server_default="0"),
    Index("unit_history_unit_seq", "unit_id", "seq"),
)

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


# -- Evidence for a report-back (现场证据, revision 0015) ------------------------------
# The bytes themselves (JPEG or PNG, at most 5 MB: domain/evidence.py), one row a file, under its
# assignment; ReportBack records the metadata in the assignment's `evidence`.
evidence = Table(
    "evidence", metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey(f"{SCHEMA}.cases.id"), nullable=False),
    Column("assignment_id", String(40), nullable=False),
    Column("content_type", String(40), nullable=False),
    Column("size_bytes", Integer, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("file_name", Text, nullable=False, server_default=""),
    Column("content", LargeBinary, nullable=False),
    Column("uploaded_by", Text, nullable=False),
    Column("create_time", DateTime(timezone=True), nullable=False),
    Index("evidence_assignment", "case_id", "assignment_id"),
)


# -- Emergency stop-payment hand-offs (紧急止付) ----------------------------------
# A durable outbox of requests to the anti-fraud centre: a row is written in
# the transaction that decides the hand-off and stays until the centre's
# result is final (services/dispatch/workers.py delivers it).
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
    # The station chief's review of an unsatisfied follow-up (revision 0011): OPEN, REOPENED, ANSWERED.
    Column("review_state", String(20), nullable=False, server_default=""),
    Column("reviewed_by", Text, nullable=False, server_default=""),
    Column("review_time", DateTime(timezone=True)),
    Column("review_answer", Text, nullable=False, server_default=""),
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


# -- Access grants bound to a case (权随案走) ---------------------------------------
# Each request, decision, use and end is also an entry on the case's timeline.
access_grants = Table(
    "access_grants", metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey(f"{SCHEMA}.cases.id"), nullable=False),
    Column("case_station_id", String(20), nullable=False),
    Column("incident_type", String(40), nullable=False),
    Column("case_level", String(20), nullable=False),
    Column("grantee", Text, nullable=False),
    Column("grantee_station_id", String(20), nullable=False),
    Column("grantee_roles", ARRAY(Text), nullable=False, server_default="{}"),
    Column("scope", String(30), nullable=False),
    Column("station_ids", ARRAY(Text), nullable=False),
    Column("reason", Text, nullable=False),
    Column("hours", Integer, nullable=False),
    Column("state", String(20), nullable=False),
    Column("request_time", DateTime(timezone=True), nullable=False),
    Column("auto_granted", Boolean, nullable=False, server_default="false"),
    Column("decided_by", Text, nullable=False, server_default=""),
    Column("decision_reason", Text, nullable=False, server_default=""),
    Column("grant_time", DateTime(timezone=True)),
    Column("expire_time", DateTime(timezone=True)),
    Column("end_time", DateTime(timezone=True)),
    Column("end_reason", Text, nullable=False, server_default=""),
    Column("uses", Integer, nullable=False, server_default="0"),
    Column("last_use_time", DateTime(timezone=True)),
    Column("version", Integer, nullable=False),
    Index("access_grants_case", "case_id"),
    # What a read outside the jurisdiction looks for: the caller's open grants.
    Index("access_grants_grantee_open", "grantee", postgresql_where=text("state IN ('PENDING', 'ACTIVE')")),
    Index("access_grants_station_time", "grantee_station_id", "request_time"),
    Index("access_grants_request_time", "request_time", "id"),
)


def on_duty_at(at: datetime):
    """SQL: the unit has a shift covering `at`."""
    return exists().where(shifts.c.unit_id == units.c.unit_id, shifts.c.start_time <= at, shifts.c.end_time > at)


# -- rows <-> domain ----------------------------------------------------------------------------

def unit_from_row(r, stale_before: datetime | None) -> Unit:
    """A unit from a row of `units` with an `on_duty` column."""
    stale = stale_before is not None and (r.position_time is None or r.position_time < stale_before)
    return Unit(r.unit_id, r.call_sign, r.kind, r.station_id, list(r.skills), r.vehicle, list(r.officers),
                r.status, r.lon, r.lat, r.position_time, bool(r.on_duty), stale, grid_ids=list(r.grid_ids))


def unit_columns(at: datetime) -> list:
    """The columns a unit is read with at `at`."""
    return [units, on_duty_at(at).label("on_duty")]


def case_values(c: DispatchCase) -> dict:
    return dict(
        id=c.id, report=c.report, station_id=c.station_id, grid_id=c.grid_id, incident_type=c.incident_type,
        priority=c.priority, level=c.level, status=c.status, lon=c.lon, lat=c.lat, address_text=c.address_text,
        summary=c.summary, recommendations=[vars(r) for r in c.recommendations], report_time=c.report_time,
        create_time=c.create_time, update_time=c.update_time, arrival_target_s=c.arrival_target_s,
        accept_time=c.accept_time, arrive_time=c.arrive_time, close_time=c.close_time, silent=c.silent,
        shared_station_ids=list(c.shared_station_ids), outcome=c.outcome, cancel_reason=c.cancel_reason,
        close_notes=c.close_notes, offers_exhausted_time=c.offers_exhausted_time, reopen_time=c.reopen_time,
        channel=c.channel,
    )


def case_from_row(r, *, timeline: list[TimelineEntry] | None = None, assigned: list[Assignment] | None = None,
                  stop_payments: list[StopPayment] | None = None, follow_up: FollowUp | None = None) -> DispatchCase:
    """A case from a row of `cases`, with what else was read of it."""
    return DispatchCase(
        id=r.id, report=r.report, station_id=r.station_id, grid_id=r.grid_id, incident_type=r.incident_type,
        priority=r.priority, level=r.level, status=r.status, lon=r.lon, lat=r.lat, address_text=r.address_text,
        summary=r.summary, recommendations=[Recommendation(**x) for x in r.recommendations],
        report_time=r.report_time, create_time=r.create_time, update_time=r.update_time, timeline=timeline or [],
        arrival_target_s=r.arrival_target_s, accept_time=r.accept_time, arrive_time=r.arrive_time,
        close_time=r.close_time, assignments=assigned or [], stop_payments=stop_payments or [], follow_up=follow_up,
        silent=r.silent, shared_station_ids=list(r.shared_station_ids), outcome=r.outcome,
        cancel_reason=r.cancel_reason, close_notes=r.close_notes, offers_exhausted_time=r.offers_exhausted_time,
        reopen_time=r.reopen_time, channel=r.channel,
    )


_ASSIGNMENT_FIELDS = [f.name for f in dataclass_fields(Assignment)]
_GRANT_FIELDS = [f.name for f in dataclass_fields(AccessGrant) if not f.name.startswith("_")]


def grant_from_row(r) -> AccessGrant:
    m = r._mapping
    g = AccessGrant(**{k: m[k] for k in _GRANT_FIELDS})
    g.grantee_roles, g.station_ids = list(g.grantee_roles), list(g.station_ids)
    return g


def grant_values(g: AccessGrant) -> dict:
    return {k: getattr(g, k) for k in _GRANT_FIELDS}
_STOP_PAYMENT_FIELDS = [f.name for f in dataclass_fields(StopPayment)]


def assignment_from_row(r) -> Assignment:
    m = r._mapping
    return Assignment(**{k: m[k] for k in _ASSIGNMENT_FIELDS})


def stop_payment_from_row(r) -> StopPayment:
    m = r._mapping
    sp = StopPayment(**{k: m[k] for k in _STOP_PAYMENT_FIELDS})
    sp.banks, sp.requested_roles = list(sp.banks), list(sp.requested_roles)
    return sp


def shift_from_row(r) -> Shift:
    return Shift(shift_id=r.shift_id, unit_id=r.unit_id, start_time=r.start_time, end_time=r.end_time, area=r.area,
                 create_time=r.create_time)


# -- a case's parts, read for many cases at once -------------------------------------------------

def assignments_of(conn, case_ids: list[str], *, lock: bool = False) -> dict[str, list[Assignment]]:
    out: dict[str, list[Assignment]] = {}
    if case_ids:
        q = select(assignments).where(assignments.c.case_id.in_(case_ids)).order_by(
            assignments.c.offer_time, assignments.c.id)
        if lock:
            q = q.with_for_update()
        for r in conn.execute(q):
            out.setdefault(r.case_id, []).append(assignment_from_row(r))
    return out


def stop_payments_of(conn, case_ids: list[str]) -> dict[str, list[StopPayment]]:
    out: dict[str, list[StopPayment]] = {}
    if case_ids:
        rows = conn.execute(select(stop_payments).where(stop_payments.c.case_id.in_(case_ids))
                            .order_by(stop_payments.c.create_time, stop_payments.c.id))
        for r in rows:
            out.setdefault(r.case_id, []).append(stop_payment_from_row(r))
    return out


def follow_ups_of(conn, case_ids: list[str]) -> dict[str, FollowUp]:
    if not case_ids:
        return {}
    found = {r.case_id: r for r in conn.execute(select(case_followups).where(case_followups.c.case_id.in_(case_ids)))}
    if not found:
        return {}
    officers: dict[str, list[RatedOfficer]] = {}
    rows = conn.execute(select(case_followup_officers).where(case_followup_officers.c.case_id.in_(list(found)))
                        .order_by(case_followup_officers.c.officer_id))
    for r in rows:
        officers.setdefault(r.case_id, []).append(RatedOfficer(r.officer_id, r.officer_name, r.station_id, r.unit_id))
    return {case_id: FollowUp(satisfaction=r.satisfaction, comment=r.comment, actor=r.actor, roles=list(r.roles),
                              rate_time=r.rate_time, flagged=r.flagged, officers=officers.get(case_id, []),
                              review_state=r.review_state, reviewed_by=r.reviewed_by, review_time=r.review_time,
                              review_answer=r.review_answer)
            for case_id, r in found.items()}


def _review(f: FollowUp) -> dict:
    return dict(review_state=f.review_state, reviewed_by=f.reviewed_by, review_time=f.review_time,
                review_answer=f.review_answer)


def cases_with_parts(conn, rows, *, with_assignments: bool = True, with_stop_payments: bool = True
                     ) -> list[DispatchCase]:
    """Cases from rows of `cases` with their follow-ups and (by default) assignments and hand-offs."""
    ids = [r.id for r in rows]
    by_case = assignments_of(conn, ids) if with_assignments else {}
    payments = stop_payments_of(conn, ids) if with_stop_payments else {}
    follow_ups = follow_ups_of(conn, ids)
    return [case_from_row(r, assigned=by_case.get(r.id, []), stop_payments=payments.get(r.id, []),
                          follow_up=follow_ups.get(r.id)) for r in rows]


# -- repositories ---------------------------------------------------------------------------------

@dataclass
class _Stored:
    """What the database holds of a case, as its repository last read or wrote it."""

    row: dict
    entries: int
    assignments: dict[str, int] = field(default_factory=dict)  # id -> version
    stop_payments: set[str] = field(default_factory=set)
    follow_up: bool = False
    review: dict | None = None


class CaseRepository:
    """Cases with their assignments and follow-up; their timelines and hand-offs when asked."""

    def __init__(self, conn):
        self.conn = conn
        self._stored: dict[str, _Stored] = {}

    def get(self, case_id: str, *, lock: bool = False, timeline: bool = False, stop_payments: bool = False
            ) -> DispatchCase | None:
        """The case (locked with its assignments for a change when `lock`)."""
        q = select(cases).where(cases.c.id == case_id)
        if lock:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        if row is None:
            return None
        case = case_from_row(
            row, timeline=case_timeline.of(self.conn, case_id) if timeline else [],
            assigned=assignments_of(self.conn, [case_id], lock=lock).get(case_id, []),
            stop_payments=stop_payments_of(self.conn, [case_id]).get(case_id, []) if stop_payments else [],
            follow_up=follow_ups_of(self.conn, [case_id]).get(case_id))
        self._remember(case)
        return case

    def brief(self, case_id: str) -> DispatchCase | None:
        """The case's own row only (what a hand-off to the anti-fraud centre names)."""
        row = self.conn.execute(select(cases).where(cases.c.id == case_id)).first()
        return case_from_row(row) if row is not None else None

    def id_by_report(self, report: str) -> str | None:
        """The case opened for a report, if any."""
        return self.conn.execute(select(cases.c.id).where(cases.c.report == report)).scalar()

    def add(self, c: DispatchCase) -> bool:
        """Stores a new case with its timeline, assignments and hand-offs; False when the report
        already has one (nothing is written)."""
        values = case_values(c)
        created = self.conn.execute(insert_once(cases, tuple(values), ("report",), "id"), values).first()
        if not created:
            c.pull_measures()
            return False
        self._stored[c.id] = _Stored(row=case_values(c), entries=0)
        self.save(c)
        return True

    def save(self, c: DispatchCase) -> None:
        """Writes what changed in a case this repository loaded or added."""
        stored = self._stored[c.id]
        values = case_values(c)
        changed = {k: v for k, v in values.items() if stored.row.get(k) != v}
        if changed:
            self.conn.execute(cases.update().where(cases.c.id == c.id).values(**changed))
        case_timeline.add(self.conn, c.id, c.timeline[stored.entries:])
        for a in c.assignments:
            if a.id not in stored.assignments:
                self.conn.execute(assignments.insert().values(**{k: getattr(a, k) for k in _ASSIGNMENT_FIELDS}))
            elif stored.assignments[a.id] != a.version:
                values_a = {k: getattr(a, k) for k in _ASSIGNMENT_FIELDS if k not in ("id", "case_id")}
                self.conn.execute(assignments.update().where(assignments.c.id == a.id).values(**values_a))
        for sp in c.stop_payments:
            if sp.id not in stored.stop_payments:
                self.conn.execute(stop_payments.insert().values(**{k: getattr(sp, k) for k in _STOP_PAYMENT_FIELDS}))
        if c.follow_up is not None and not stored.follow_up:
            self._add_follow_up(c.id, c.station_id, c.follow_up)
        elif c.follow_up is not None and stored.review != _review(c.follow_up):
            self.conn.execute(case_followups.update().where(case_followups.c.case_id == c.id)
                              .values(**_review(c.follow_up)))
        for stage, seconds in c.pull_measures():
            metrics.observe_sla_after_commit(self.conn, stage, seconds, priority=c.priority, channel=c.channel)
        self._remember(c)

    def _add_follow_up(self, case_id: str, station_id: str, f: FollowUp) -> None:
        self.conn.execute(case_followups.insert().values(
            case_id=case_id, station_id=station_id, satisfaction=f.satisfaction, comment=f.comment, actor=f.actor,
            roles=f.roles, rate_time=f.rate_time, flagged=f.flagged, **_review(f)))
        if f.officers:
            self.conn.execute(insert(case_followup_officers), [
                dict(case_id=case_id, officer_id=o.officer_id, officer_name=o.name, station_id=o.station_id,
                     unit_id=o.unit_id) for o in f.officers])

    def _remember(self, c: DispatchCase) -> None:
        self._stored[c.id] = _Stored(row=case_values(c), entries=len(c.timeline),
                                     assignments={a.id: a.version for a in c.assignments},
                                     stop_payments={sp.id for sp in c.stop_payments},
                                     follow_up=c.follow_up is not None,
                                     review=_review(c.follow_up) if c.follow_up is not None else None)

    def unanswered_since(self, before: datetime, limit: int = 100) -> list[str]:
        """Ids of open cases below county level nobody took, whose automatic offers stopped before
        `before`, skipping rows another sweeper holds."""
        q = (select(cases.c.id)
             .where(cases.c.offers_exhausted_time <= before, cases.c.accept_time.is_(None),
                    cases.c.status.not_in(("CLOSED", "CANCELLED")), cases.c.level == "STATION")
             .order_by(cases.c.offers_exhausted_time).limit(limit).with_for_update(skip_locked=True))
        return list(self.conn.execute(q).scalars())

    def due_offers(self, now: datetime, limit: int = 100) -> list[tuple[str, str]]:
        """(case_id, assignment_id) of offers past their expiry, skipping rows another sweeper holds."""
        q = (select(assignments.c.case_id, assignments.c.id)
             .where(assignments.c.state == "OFFERED", assignments.c.offer_expire_time <= now)
             .order_by(assignments.c.offer_expire_time).limit(limit).with_for_update(skip_locked=True))
        return [(r.case_id, r.id) for r in self.conn.execute(q)]


class UnitRepository:
    """Units as seen at a time: on duty by the roster, position stale by age."""

    def __init__(self, conn):
        self.conn = conn
        self._entries: dict[str, int] = {}
        self._stored: dict[str, dict] = {}

    def get(self, unit_id: str, *, at: datetime, stale_before: datetime | None = None, lock: bool = False
            ) -> Unit | None:
        q = select(*unit_columns(at)).where(units.c.unit_id == unit_id)
        if lock:
            q = q.with_for_update(of=units)
        row = self.conn.execute(q).first()
        if row is None:
            return None
        unit = unit_from_row(row, stale_before)
        self._entries[unit_id] = len(unit.timeline)
        self._stored[unit_id] = self._static(unit)
        return unit

    @staticmethod
    def _static(u: Unit) -> dict:
        return dict(call_sign=u.call_sign, kind=u.kind, station_id=u.station_id, skills=list(u.skills),
                    vehicle=u.vehicle, officers=[dict(o) for o in u.officers], grid_ids=list(u.grid_ids))

    def save(self, unit: Unit) -> None:
        """Writes a unit's changed static data and its new timeline entries; a call sign another
        unit has is ALREADY_EXISTS."""
        changed = {k: v for k, v in self._static(unit).items() if self._stored[unit.unit_id][k] != v}
        if changed:
            try:
                with self.conn.begin_nested():
                    self.conn.execute(units.update().where(units.c.unit_id == unit.unit_id).values(**changed))
            except IntegrityError as exc:
                raise AlreadyExists(f"call sign {unit.call_sign!r} is taken", reason="CALL_SIGN_TAKEN") from exc
        unit_timeline.add(self.conn, unit.unit_id, unit.timeline[self._entries[unit.unit_id]:])
        self._entries[unit.unit_id] = len(unit.timeline)
        self._stored[unit.unit_id] = self._static(unit)

    def available(self, *, at: datetime, kinds: set[str] | None = None) -> list[Unit]:
        """Units that can take an offer now: on duty and available, of the given kinds."""
        q = select(*unit_columns(at)).where(units.c.status == "AVAILABLE", on_duty_at(at))
        if kinds is not None:
            q = q.where(units.c.kind.in_(sorted(kinds)))
        return [unit_from_row(r, None) for r in self.conn.execute(q)]

    def candidates(self, kinds: set[str], *, station_id: str, box: tuple[float, float, float, float] | None,
                   at: datetime, stations: frozenset[str] | None = None) -> list[Unit]:
        """What ranking needs of available on-duty units of `kinds`: all of the station's, and
        the others inside `box` (min lon, min lat, max lon, max lat; None: all), of `stations`
        only when given (the district's: automatic offers do not cross districts)."""
        c = units.c
        q = select(c.unit_id, c.call_sign, c.kind, c.station_id, c.status, c.lon, c.lat, c.position_time).where(
            c.status == "AVAILABLE", c.kind.in_(sorted(kinds)), on_duty_at(at))
        if stations is not None:
            q = q.where(c.station_id.in_(sorted(stations)))
        if box is not None:
            q = q.where(or_(c.station_id == station_id, and_(c.lon.between(box[0], box[2]),
                                                            c.lat.between(box[1], box[3]))))
        return [Unit(r.unit_id, r.call_sign, r.kind, r.station_id, [], "", [], r.status, r.lon, r.lat,
                     r.position_time, True) for r in self.conn.execute(q)]

    def claim_for_offer(self, unit_id: str, *, at: datetime, stale_before: datetime | None = None) -> Unit | None:
        """Marks an available on-duty unit as offered and returns it; None when someone else took it first."""
        row = self.conn.execute(
            units.update().where(units.c.unit_id == unit_id, units.c.status == "AVAILABLE", on_duty_at(at))
            .values(status="OFFERED").returning(*units.c, literal(True).label("on_duty"))).first()
        return unit_from_row(row, stale_before) if row else None

    def grid_officer(self, grid_id: str, *, at: datetime, stale_before: datetime | None = None) -> Unit | None:
        """The grid's community officer (网格责任民警), on duty and available now; None when there is none."""
        if not grid_id:
            return None
        row = self.conn.execute(
            select(*unit_columns(at)).where(units.c.kind == "COMMUNITY_OFFICER", units.c.grid_ids.any(grid_id),
                                            units.c.status == "AVAILABLE", on_duty_at(at))
            .order_by(units.c.unit_id).limit(1)).first()
        return unit_from_row(row, stale_before) if row is not None else None

    def assignment_state(self, unit_id: str) -> str:
        """The state of the assignment the unit holds now (offered, accepted, en route, on scene); ""
        for none."""
        return self.conn.execute(
            select(assignments.c.state).where(assignments.c.unit_id == unit_id,
                                              assignments.c.state.in_(("OFFERED", "ACCEPTED", "EN_ROUTE", "ON_SCENE")))
            .order_by(assignments.c.offer_time.desc()).limit(1)).scalar() or ""

    def set_status(self, unit_id: str, status: str) -> None:
        self.conn.execute(units.update().where(units.c.unit_id == unit_id).values(status=status))

    def move(self, unit_id: str, lon: float, lat: float, fix_time: datetime, accuracy_m: float) -> bool:
        """Records a position unless a newer fix is already stored; False for an unknown unit."""
        return self.place(unit_id, lon, lat, fix_time, accuracy_m) is not None

    def place(self, unit_id: str, lon: float, lat: float, fix_time: datetime, accuracy_m: float) -> bool | None:
        """Records a position: True when stored, False when a newer fix is already stored (nothing
        changes), None for an unknown unit."""
        row = self.conn.execute(
            units.update().where(units.c.unit_id == unit_id,
                                 or_(units.c.position_time.is_(None), units.c.position_time <= fix_time))
            .values(lon=lon, lat=lat, position_time=fix_time, position_accuracy_m=accuracy_m)
            .returning(units.c.unit_id)).first()
        if row:
            return True
        return False if self.conn.execute(select(units.c.unit_id).where(units.c.unit_id == unit_id)).first() else None

    def upsert(self, values: dict) -> None:
        stmt = insert(units).values(**values)
        # Seeding refreshes static data but never a live status or position.
        static = ("call_sign", "kind", "station_id", "skills", "vehicle", "officers", "grid_ids")
        self.conn.execute(stmt.on_conflict_do_update(
            index_elements=["unit_id"], set_={k: stmt.excluded[k] for k in static if k in values}))


class ShiftRepository:
    def __init__(self, conn):
        self.conn = conn

    def add(self, s: Shift) -> bool:
        """Stores a shift; False when its id exists already."""
        return self.conn.execute(insert(shifts).values(
            shift_id=s.shift_id, unit_id=s.unit_id, start_time=s.start_time, end_time=s.end_time, area=s.area,
            create_time=s.create_time).on_conflict_do_nothing().returning(shifts.c.shift_id)).first() is not None

    def overlapping(self, unit_id: str, start: datetime, end: datetime) -> list[Shift]:
        return [shift_from_row(r) for r in self.conn.execute(select(shifts).where(
            shifts.c.unit_id == unit_id, shifts.c.start_time < end, shifts.c.end_time > start))]


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


class StopPaymentRepository:
    """Hand-offs as the sender works on them (a case queues new ones; `CaseRepository` writes those)."""

    def __init__(self, conn):
        self.conn = conn

    def claim_next(self, *, sender: str, now: datetime, lease_until: datetime, skip: set[str] | None = None
                   ) -> StopPayment | None:
        """Takes the next due hand-off nobody has in hand, leased to `sender` until `lease_until`."""
        sp = stop_payments.c
        q = (select(stop_payments)
             .where(sp.next_attempt_time <= now, or_(sp.lease_until.is_(None), sp.lease_until <= now))
             .order_by(sp.next_attempt_time, sp.id)
             .limit(1).with_for_update(skip_locked=True))
        if skip:
            q = q.where(sp.id.not_in(skip))
        row = self.conn.execute(q).first()
        if row is None:
            return None
        self.conn.execute(stop_payments.update().where(sp.id == row.id)
                          .values(claimed_by=sender, lease_until=lease_until))
        found = stop_payment_from_row(row)
        found.claimed_by, found.lease_until = sender, lease_until
        return found

    def get(self, stop_payment_id: str, *, lock: bool = False) -> StopPayment | None:
        q = select(stop_payments).where(stop_payments.c.id == stop_payment_id)
        if lock:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return stop_payment_from_row(row) if row else None

    def save(self, s: StopPayment) -> None:
        values = {k: getattr(s, k) for k in _STOP_PAYMENT_FIELDS if k not in ("id", "case_id", "idempotency_key")}
        self.conn.execute(stop_payments.update().where(stop_payments.c.id == s.id).values(**values))

    def next_due(self) -> datetime | None:
        """When the next hand-off is due; a row another sender has in hand only when its lease ends."""
        return self.conn.execute(
            select(func.min(func.greatest(stop_payments.c.next_attempt_time, stop_payments.c.lease_until)))
            .where(stop_payments.c.next_attempt_time.is_not(None))
        ).scalar()


class GrantRepository:
    """Access grants; saving one writes its row and its entries on the case's timeline."""

    def __init__(self, conn):
        self.conn = conn

    def get(self, case_id: str, grant_id: str, *, lock: bool = False) -> AccessGrant | None:
        q = select(access_grants).where(access_grants.c.id == grant_id, access_grants.c.case_id == case_id)
        if lock:
            q = q.with_for_update()
        row = self.conn.execute(q).first()
        return grant_from_row(row) if row is not None else None

    def add(self, g: AccessGrant) -> None:
        self.conn.execute(access_grants.insert().values(**grant_values(g)))
        case_timeline.add(self.conn, g.case_id, g.pull_entries())

    def save(self, g: AccessGrant) -> None:
        values = {k: v for k, v in grant_values(g).items() if k not in ("id", "case_id")}
        self.conn.execute(access_grants.update().where(access_grants.c.id == g.id).values(**values))
        case_timeline.add(self.conn, g.case_id, g.pull_entries())

    def holding(self, grantee: str, station_ids: frozenset[str], now: datetime, *, lock: bool = False
                ) -> list[AccessGrant]:
        """The grantee's active grants that open any of these stations, on cases not closed or cancelled."""
        g = access_grants.c
        q = (select(access_grants).join(cases, cases.c.id == g.case_id)
             .where(g.grantee == grantee, g.state == "ACTIVE", g.expire_time > now,
                    cases.c.status.not_in(("CLOSED", "CANCELLED")),
                    g.station_ids.overlap(sorted(station_ids)))
             .order_by(g.expire_time.desc(), g.id))
        if lock:
            q = q.with_for_update(of=access_grants)
        return [grant_from_row(r) for r in self.conn.execute(q)]

    def due(self, now: datetime, limit: int = 100) -> list[tuple[AccessGrant, bool]]:
        """(grant, its case is closed) of open grants that should end now, skipping rows another
        sweeper holds."""
        g = access_grants.c
        pending_until = g.request_time + func.make_interval(0, 0, 0, 0, g.hours)
        ended = cases.c.status.in_(("CLOSED", "CANCELLED"))
        q = (select(access_grants, ended.label("case_closed"))
             .join(cases, cases.c.id == g.case_id)
             .where(g.state.in_(("PENDING", "ACTIVE")),
                    or_(ended, and_(g.state == "ACTIVE", g.expire_time <= now),
                        and_(g.state == "PENDING", pending_until <= now)))
             .order_by(g.request_time, g.id).limit(limit).with_for_update(of=access_grants, skip_locked=True))
        return [(grant_from_row(r), bool(r.case_closed)) for r in self.conn.execute(q)]


_EVIDENCE_META = [c for c in evidence.c if c.name != "content"]


def evidence_from_row(r) -> Evidence:
    return Evidence(id=r.id, case_id=r.case_id, assignment_id=r.assignment_id, content_type=r.content_type,
                    size_bytes=r.size_bytes, sha256=r.sha256, file_name=r.file_name, uploaded_by=r.uploaded_by,
                    create_time=r.create_time)


class EvidenceRepository:
    """Evidence files: added with their bytes, read back as metadata (or the bytes, by the read side)."""

    def __init__(self, conn):
        self.conn = conn

    def add(self, e: Evidence, content: bytes) -> None:
        values = {f.name: getattr(e, f.name) for f in dataclass_fields(e)}
        self.conn.execute(evidence.insert().values(**values, content=content))

    def of_assignment(self, case_id: str, assignment_id: str) -> dict[str, Evidence]:
        """The assignment's uploads by name."""
        rows = self.conn.execute(select(*_EVIDENCE_META).where(
            evidence.c.case_id == case_id, evidence.c.assignment_id == assignment_id))
        return {x.name: x for x in map(evidence_from_row, rows)}


class Repositories:
    """Dispatch's repositories on one transaction's connection (`uow.repos`)."""

    def __init__(self, conn):
        self.cases = CaseRepository(conn)
        self.units = UnitRepository(conn)
        self.shifts = ShiftRepository(conn)
        self.grids = GridRepository(conn)
        self.stop_payments = StopPaymentRepository(conn)
        self.grants = GrantRepository(conn)
        self.evidence = EvidenceRepository(conn)
