"""The read side: cases and units as the API shows them, lists, the situation map (一张图), the
phones' snapshot, recommendations on demand, and the follow-up and response-circle statistics.

Each function takes a connection (the servicer reads in one snapshot) and returns domain objects
or the read models below; nothing here writes. Lists page with `services.runtime.keyset.after_key`.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, or_, select

from services.runtime.keyset import after_key
from services.runtime.validation import paginate

from . import domain
from .domain import (
    ACTIVE_STATUSES, WAITING_STATUSES, AccessGrant, Assignment, Box, Context, DispatchCase, Shift, Unit,
)
from .store import (
    UnitRepository, access_grants, assignment_from_row, assignments, case_followup_officers, case_followups, case_from_row,
    case_timeline, cases, cases_with_parts, evidence, evidence_from_row, grant_from_row, on_duty_at, shift_from_row, shifts,
    unit_columns, unit_from_row, unit_timeline, units,
)
from .store import unit_history as unit_history_table

MAX_CASES = 500
MAX_UNITS = 2000
# The assignments a unit's phone shows: offers and work still under way.
ACTIVE_ASSIGNMENT_STATES = ("OFFERED", "ACCEPTED", "EN_ROUTE", "ON_SCENE")


@dataclass
class Page:
    items: list
    next_page_token: str = ""


# -- cases ------------------------------------------------------------------------------------------

def evidence_file(conn, case_id: str, assignment_id: str, evidence_id: str) -> tuple[domain.Evidence, bytes] | None:
    """One uploaded evidence file and its bytes (DownloadEvidence)."""
    row = conn.execute(select(evidence).where(
        evidence.c.id == evidence_id, evidence.c.case_id == case_id, evidence.c.assignment_id == assignment_id)).first()
    return None if row is None else (evidence_from_row(row), bytes(row.content))


def case(conn, case_id: str, *, whole: bool = True) -> DispatchCase | None:
    """A case with its assignments and follow-up; `whole`: its timeline and hand-offs too (GetCase)."""
    row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
    if row is None:
        return None
    (found,) = cases_with_parts(conn, [row], with_stop_payments=whole)
    if whole:
        found.timeline = case_timeline.of(conn, case_id)
    return found


def cases_page(conn, *, size: int, after: tuple[datetime, str] | None, station_ids: frozenset[str] | None = None,
               status: str = "",
               report: str = "", levels: list[str] | None = None, flagged: bool = False) -> Page:
    """Cases newest first, with their assignments, hand-offs and follow-ups (no timelines); of
    `station_ids` (a case's own station, a border case's neighbour or one of its units' stations), None:
    every station."""
    q = select(cases)
    if station_ids is not None:
        wanted = sorted(station_ids)
        q = q.where(or_(cases.c.station_id.in_(wanted), cases.c.shared_station_ids.overlap(wanted),
                        cases.c.id.in_(select(assignments.c.case_id).where(assignments.c.station_id.in_(wanted)))))
    if flagged:
        q = q.where(cases.c.id.in_(select(case_followups.c.case_id).where(case_followups.c.flagged)))
    if status:
        q = q.where(cases.c.status == status)
    if report:
        q = q.where(cases.c.report == report)
    if levels:
        q = q.where(cases.c.level.in_(levels))
    rows = conn.execute(after_key(q, cases.c.create_time, cases.c.id, after, size)).all()
    page, token = paginate(rows, size, lambda r: {"t": r.create_time.isoformat(), "id": r.id})
    return Page(cases_with_parts(conn, page), token)


def active_cases(conn, *, box: Box | None = None, station_ids: frozenset[str] | None = None, levels=None,
                 limit: int = MAX_CASES) -> list[DispatchCase]:
    """Cases on the map (not yet reported back), newest first, with their hand-offs and follow-ups;
    of `station_ids` (None: every station)."""
    q = select(cases).where(cases.c.status.in_(ACTIVE_STATUSES))
    if box is not None:
        q = q.where(cases.c.lon.between(box.west, box.east), cases.c.lat.between(box.south, box.north))
    if station_ids is not None:
        # The stations' own cases, the border cases shared with them (边界警情) and the cases their
        # units are helping with (跨所协作).
        q = q.where(or_(cases.c.station_id.in_(sorted(station_ids)),
                        cases.c.shared_station_ids.overlap(sorted(station_ids)),
                        cases.c.id.in_(helped_case_ids(station_ids))))
    if levels:
        q = q.where(cases.c.level.in_(list(levels)))
    q = q.order_by(cases.c.create_time.desc(), cases.c.id.desc()).limit(limit)
    return cases_with_parts(conn, conn.execute(q).all(), with_assignments=False)


def helped_case_ids(station_ids: frozenset[str]):
    """Cases of other stations that a unit of these stations is assigned to now (a subquery)."""
    return select(assignments.c.case_id).where(assignments.c.station_id.in_(sorted(station_ids)),
                                               assignments.c.state.in_(ACTIVE_ASSIGNMENT_STATES))


def helped_cases(conn, station_ids: frozenset[str]) -> set[str]:
    """Names of the active cases a unit of these stations is assigned to now."""
    q = select(cases.c.id).where(cases.c.status.in_(ACTIVE_STATUSES), cases.c.id.in_(helped_case_ids(station_ids)))
    return {f"cases/{i}" for i in conn.execute(q).scalars()}


def active_assignments_of_unit(conn, unit_id: str) -> list[tuple[DispatchCase, Assignment]]:
    """The unit's offers and assignments still under way (what its phone should show), with their cases."""
    q = select(assignments).where(assignments.c.unit_id == unit_id,
                                  assignments.c.state.in_(ACTIVE_ASSIGNMENT_STATES))
    found = [assignment_from_row(r) for r in conn.execute(q.order_by(assignments.c.offer_time))]
    ids = sorted({a.case_id for a in found})
    by_id = {r.id: case_from_row(r) for r in conn.execute(select(cases).where(cases.c.id.in_(ids)))} if ids else {}
    return [(by_id[a.case_id], a) for a in found]


def recommendations(conn, ctx: Context, case: DispatchCase, at: datetime):
    """(picks, gaps) for a case now, leaving out the units already on it (RecommendUnits)."""
    repo = UnitRepository(conn)
    return domain.search(
        lambda kinds, box: repo.candidates(kinds, station_id=case.station_id, box=box, at=at,
                                           stations=ctx.district_stations(case.station_id)),
        needs=ctx.matrix.needs(case.incident_type, at), station_id=case.station_id, lon=case.lon, lat=case.lat,
        stale_before=ctx.stale_before(at), m=ctx.matrix, exclude={a.unit_id for a in case.assignments if a.live})


# -- units and the roster ---------------------------------------------------------------------------------

def unit(conn, unit_id: str, *, at: datetime, stale_before: datetime | None = None, timeline: bool = False
         ) -> Unit | None:
    row = conn.execute(select(*unit_columns(at)).where(units.c.unit_id == unit_id)).first()
    if row is None:
        return None
    found = unit_from_row(row, stale_before)
    if timeline:
        found.timeline = unit_timeline.of(conn, unit_id)
    return found


def units_page(conn, *, size: int, after: str | None, at: datetime, stale_before: datetime | None,
               station_ids: frozenset[str] | None = None, kind: str = "", status: str = "") -> Page:
    """Units by id, of `station_ids` (None: every station); status OFF_DUTY: those no shift covers now,
    another status: on duty in it."""
    q = select(*unit_columns(at)).order_by(units.c.unit_id).limit(size + 1)
    if after:
        q = q.where(units.c.unit_id > after)
    if station_ids is not None:
        q = q.where(units.c.station_id.in_(sorted(station_ids)))
    if kind:
        q = q.where(units.c.kind == kind)
    if status == "OFF_DUTY":
        q = q.where(~on_duty_at(at))
    elif status:
        q = q.where(units.c.status == status, on_duty_at(at))
    rows = [unit_from_row(r, stale_before) for r in conn.execute(q)]
    page, token = paginate(rows, size, lambda u: {"id": u.unit_id})
    return Page(page, token)


def unit_history(conn, unit_id: str, *, limit: int = 1000) -> list[dict]:
    """The unit's statuses and positions as the database recorded them (oldest first, the newest `limit`)."""
    h = unit_history_table
    rows = conn.execute(select(h).where(h.c.unit_id == unit_id).order_by(h.c.seq.desc()).limit(limit)).all()
    return [dict(r._mapping) for r in reversed(rows)]


def shifts_page(conn, unit_id: str, *, size: int, after: tuple[datetime, str] | None) -> Page:
    """A unit's shifts by start time."""
    q = after_key(select(shifts).where(shifts.c.unit_id == unit_id), shifts.c.start_time, shifts.c.shift_id, after,
                  size, descending=False)
    found: list[Shift] = [shift_from_row(r) for r in conn.execute(q)]
    page, token = paginate(found, size, lambda s: {"t": s.start_time.isoformat(), "id": s.shift_id})
    return Page(page, token)


def units_on_duty(conn, *, box: Box | None, station_ids: frozenset[str] | None = None, at: datetime,
                  stale_before: datetime | None, limit: int = MAX_UNITS) -> list[Unit]:
    """Units on duty (by the roster) at `at`, of `station_ids` (None: every station)."""
    q = select(*unit_columns(at)).where(on_duty_at(at))
    if box is not None:
        q = q.where(units.c.lon.between(box.west, box.east), units.c.lat.between(box.south, box.north))
    if station_ids is not None:
        q = q.where(units.c.station_id.in_(sorted(station_ids)))
    return [unit_from_row(r, stale_before) for r in conn.execute(q.order_by(units.c.unit_id).limit(limit))]


def last_unit_change(conn) -> int:
    """The sequence of the latest recorded unit change (unit_history), 0 for none."""
    return conn.execute(select(func.coalesce(func.max(unit_history_table.c.seq), 0))).scalar()


def unit_changes(conn, *, after: int, station_ids: frozenset[str] | None, box: Box | None, at: datetime,
                 stale_before: datetime | None, limit: int = 500) -> list[tuple[int, datetime, Unit]]:
    """(sequence, record time, the unit as recorded) of unit changes after `after`, oldest first, of
    units of `station_ids` (None: every station) whose recorded position lies in `box`."""
    h = unit_history_table.c
    q = (select(h.seq, h.recorded_time, h.status, h.lon, h.lat, h.position_time, units.c.unit_id, units.c.call_sign,
                units.c.kind, units.c.station_id, on_duty_at(at).label("on_duty"))
         .join(units, units.c.unit_id == h.unit_id).where(h.seq > after))
    if station_ids is not None:
        q = q.where(units.c.station_id.in_(sorted(station_ids)))
    if box is not None:
        q = q.where(h.lon.between(box.west, box.east), h.lat.between(box.south, box.north))
    out = []
    for r in conn.execute(q.order_by(h.seq).limit(limit)):
        stale = stale_before is not None and (r.position_time is None or r.position_time < stale_before)
        out.append((r.seq, r.recorded_time, Unit(r.unit_id, r.call_sign, r.kind, r.station_id, [], "", [], r.status,
                                                 r.lon, r.lat, r.position_time, bool(r.on_duty), stale)))
    return out


# -- the situation map (一张图) ---------------------------------------------------------------------------

@dataclass
class StationCounts:
    station_id: str
    cases_by_status: dict[str, int] = field(default_factory=dict)
    units_by_status: dict[str, int] = field(default_factory=dict)


@dataclass
class Situation:
    cases: list[DispatchCase]
    units: list[Unit]
    stations: list[StationCounts]
    cases_truncated: bool
    units_truncated: bool


def situation(conn, *, box: Box | None, station_ids: frozenset[str] | None, at: datetime,
              stale_before: datetime | None) -> Situation:
    """Active cases and on-duty units in a box and of `station_ids` (None: every station), counted per
    station and status."""
    found = active_cases(conn, box=box, station_ids=station_ids, limit=MAX_CASES + 1)
    on_duty = units_on_duty(conn, box=box, station_ids=station_ids, at=at, stale_before=stale_before,
                            limit=MAX_UNITS + 1)
    shown_cases, shown_units = found[:MAX_CASES], on_duty[:MAX_UNITS]
    case_counts: dict[str, Counter] = {}
    unit_counts: dict[str, Counter] = {}
    for c in shown_cases:
        case_counts.setdefault(c.station_id, Counter())[c.status] += 1
    for u in shown_units:
        unit_counts.setdefault(u.station_id, Counter())[u.status] += 1
    stations = [StationCounts(s, dict(case_counts.get(s, {})), dict(unit_counts.get(s, {})))
                for s in sorted(set(case_counts) | set(unit_counts))]
    return Situation(shown_cases, shown_units, stations, len(found) > MAX_CASES, len(on_duty) > MAX_UNITS)


# -- follow-up statistics (回访) ---------------------------------------------------------------------------

@dataclass
class Satisfaction:
    """Follow-ups counted for a station, or for an officer of it."""

    station_id: str
    satisfied: int
    basically_satisfied: int
    unsatisfied: int
    officer_id: str = ""
    officer_name: str = ""

    @property
    def total(self) -> int:
        return self.satisfied + self.basically_satisfied + self.unsatisfied

    @property
    def rate(self) -> float:
        return (self.satisfied + self.basically_satisfied) / self.total if self.total else 0.0


@dataclass
class FollowUpStats:
    stations: list[Satisfaction]
    officers: list[Satisfaction]


def _counts(satisfaction):
    return [func.count().filter(satisfaction == s).label(s.lower()) for s in domain.SATISFACTION_LABELS]


def follow_up_stats(conn, *, station_ids: frozenset[str] | None, start: datetime | None, end: datetime | None
                    ) -> FollowUpStats:
    f = case_followups
    window = []
    if start is not None:
        window.append(f.c.rate_time >= start)
    if end is not None:
        window.append(f.c.rate_time < end)
    by_station = select(f.c.station_id, *_counts(f.c.satisfaction)).where(*window).group_by(f.c.station_id)
    if station_ids is not None:
        by_station = by_station.where(f.c.station_id.in_(sorted(station_ids)))
    o = case_followup_officers
    by_officer = (select(o.c.station_id, o.c.officer_id, func.max(o.c.officer_name).label("officer_name"),
                         *_counts(f.c.satisfaction))
                  .join(f, f.c.case_id == o.c.case_id).where(*window)
                  .group_by(o.c.station_id, o.c.officer_id))
    if station_ids is not None:
        by_officer = by_officer.where(o.c.station_id.in_(sorted(station_ids)))
    return FollowUpStats(
        stations=[Satisfaction(r.station_id, r.satisfied, r.basically_satisfied, r.unsatisfied)
                  for r in conn.execute(by_station.order_by(f.c.station_id))],
        officers=[Satisfaction(r.station_id, r.satisfied, r.basically_satisfied, r.unsatisfied, r.officer_id,
                               r.officer_name)
                  for r in conn.execute(by_officer.order_by(o.c.station_id, o.c.officer_id))],
    )


# -- response circles (1-3-5 minute 快速反应圈) ---------------------------------------------------------------

@dataclass
class Tally:
    arrived: int = 0
    within: int = 0
    seconds: float = 0.0
    overdue: int = 0

    def add(self, arrived: int, within: int, seconds: float, overdue: int) -> None:
        self.arrived += arrived
        self.within += within
        self.seconds += seconds
        self.overdue += overdue

    def mean(self) -> float:
        return self.seconds / self.arrived if self.arrived else 0.0


@dataclass
class CircleLine:
    """A station's (or, with no station, everyone's) arrivals against target, and per target tier."""

    station_id: str
    tally: Tally
    tiers: dict[int, Tally]


@dataclass
class ResponseCircles:
    stations: list[CircleLine]
    total: CircleLine


def response_circle_stats(conn, *, station_ids: frozenset[str] | None, start: datetime | None,
                          end: datetime | None, now: datetime) -> ResponseCircles:
    """How many cases had a unit on scene within their grid's target, the mean arrival time, and the
    cases still waiting past their target, per station and target tier."""
    c = cases.c
    seconds = func.extract("epoch", c.arrive_time - c.report_time)
    arrived = c.arrive_time.is_not(None)
    past_target = c.report_time + func.make_interval(0, 0, 0, 0, 0, 0, c.arrival_target_s) < now
    q = (select(c.station_id, c.arrival_target_s,
                func.count().filter(arrived).label("arrived"),
                func.count().filter(arrived, seconds <= c.arrival_target_s).label("within"),
                func.coalesce(func.sum(seconds).filter(arrived), 0).label("seconds"),
                func.count().filter(~arrived, c.status.in_(WAITING_STATUSES), past_target).label("overdue"))
         .where(c.arrival_target_s > 0)
         .group_by(c.station_id, c.arrival_target_s))
    if station_ids is not None:
        q = q.where(c.station_id.in_(sorted(station_ids)))
    if start is not None:
        q = q.where(c.report_time >= start)
    if end is not None:
        q = q.where(c.report_time < end)
    per_station: dict[str, Tally] = defaultdict(Tally)
    per_tier: dict[str, dict[int, Tally]] = defaultdict(lambda: defaultdict(Tally))
    total, total_tiers = Tally(), defaultdict(Tally)
    for r in conn.execute(q):
        figures = (r.arrived, r.within, float(r.seconds), r.overdue)
        per_station[r.station_id].add(*figures)
        per_tier[r.station_id][r.arrival_target_s].add(*figures)
        total.add(*figures)
        total_tiers[r.arrival_target_s].add(*figures)
    return ResponseCircles(
        stations=[CircleLine(s, per_station[s], per_tier[s]) for s in sorted(per_station)],
        total=CircleLine("", total, total_tiers))


# -- access grants bound to a case (权随案走) ------------------------------------------------------------

def grant(conn, case_id: str, grant_id: str) -> AccessGrant | None:
    row = conn.execute(select(access_grants).where(access_grants.c.id == grant_id,
                                                   access_grants.c.case_id == case_id)).first()
    return grant_from_row(row) if row is not None else None


def grants_page(conn, *, size: int, after: tuple[datetime, str] | None, station_ids: frozenset[str] | None,
                grantee: str = "", case_id: str = "", state: str = "") -> Page:
    """Grants newest first: asked for by officers of `station_ids` or on their cases (None: every
    station), of one grantee, one case, one state."""
    g = access_grants.c
    q = select(access_grants)
    if station_ids is not None:
        wanted = sorted(station_ids)
        q = q.where(or_(g.grantee_station_id.in_(wanted), g.case_station_id.in_(wanted)))
    if grantee:
        q = q.where(g.grantee == grantee)
    if case_id:
        q = q.where(g.case_id == case_id)
    if state:
        q = q.where(g.state == state)
    rows = conn.execute(after_key(q, g.request_time, g.id, after, size)).all()
    page, token = paginate(rows, size, lambda r: {"t": r.request_time.isoformat(), "id": r.id})
    return Page([grant_from_row(r) for r in page], token)


@dataclass
class StationGrants:
    station_id: str
    counts: dict[str, int]
    median_held_seconds: float
    median_decision_seconds: float
    incident_types: list[tuple[str, int]]
    uses: int


def grant_stats(conn, *, station_ids: frozenset[str] | None, start: datetime | None, end: datetime | None
                ) -> list[StationGrants]:
    """Per grantee station: requests by outcome, median hold and decision times, case types, uses."""
    g = access_grants.c
    window = []
    if station_ids is not None:
        window.append(g.grantee_station_id.in_(sorted(station_ids)))
    if start is not None:
        window.append(g.request_time >= start)
    if end is not None:
        window.append(g.request_time < end)
    held = func.extract("epoch", g.end_time - g.grant_time)
    decided = func.extract("epoch", func.coalesce(g.grant_time, g.end_time) - g.request_time)
    was_decided = or_(g.grant_time.is_not(None), g.state == "DENIED")
    q = (select(g.grantee_station_id,
                func.count().label("requested"),
                func.count().filter(g.auto_granted).label("auto_granted"),
                func.count().filter(g.grant_time.is_not(None), ~g.auto_granted).label("approved"),
                *[func.count().filter(g.state == s).label(s.lower())
                  for s in ("DENIED", "REVOKED", "EXPIRED", "ACTIVE", "PENDING")],
                func.percentile_cont(0.5).within_group(held).filter(g.grant_time.is_not(None),
                                                                    g.end_time.is_not(None)).label("held"),
                func.percentile_cont(0.5).within_group(decided).filter(was_decided).label("decision"),
                func.coalesce(func.sum(g.uses), 0).label("uses"))
         .where(*window).group_by(g.grantee_station_id).order_by(g.grantee_station_id))
    types: dict[str, list[tuple[str, int]]] = defaultdict(list)
    by_type = (select(g.grantee_station_id, g.incident_type, func.count().label("n")).where(*window)
               .group_by(g.grantee_station_id, g.incident_type)
               .order_by(g.grantee_station_id, func.count().desc(), g.incident_type))
    for r in conn.execute(by_type):
        types[r.grantee_station_id].append((r.incident_type, r.n))
    return [StationGrants(r.grantee_station_id,
                          {k: getattr(r, k) for k in ("requested", "auto_granted", "approved", "denied", "revoked",
                                                      "expired", "active", "pending")},
                          float(r.held or 0), float(r.decision or 0), types[r.grantee_station_id], int(r.uses))
            for r in conn.execute(q)]
