"""The read side: ledger and review lists, rule sets, scores, trends, rankings, explanations,
recomputation, warnings and warning statistics.

Each function takes a connection (the servicer reads in one snapshot) and returns domain objects or
the read models below; nothing here writes. Lists page with `services.runtime.keyset.after_key`.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from sqlalchemy import distinct, func, literal_column, select, union

from services.runtime.keyset import after_key
from services.runtime.validation import encode_page_token, paginate

from . import domain
from .domain import EnforcementWarning, LedgerEntry, Review, RuleSet
from .store import (
    FactRepository, case_officers, cases, entry_from_row, fact_officers, facts, grid_targets, ledger_entries,
    review_from_row, reviews, rule_set_from_row, rule_sets, warning_from_row, warning_timeline, warnings,
)


@dataclass
class Page:
    items: list
    next_page_token: str = ""


# -- the ledger -------------------------------------------------------------------------------

@dataclass
class LedgerLine:
    """A ledger entry as listed: with the reversal that corrected it, if any."""

    entry: LedgerEntry
    reversed_by: str = ""


def _ledger_filtered(q, *, officer_id="", station_id="", dimension="", reason_code="", subject="",
                     rule_set_version=0, start=None, end=None):
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


def _reversed_by(conn, entry_ids: list[str]) -> dict[str, str]:
    if not entry_ids:
        return {}
    rows = conn.execute(select(ledger_entries.c.reverses, ledger_entries.c.id).where(
        ledger_entries.c.reverses.in_(entry_ids), ledger_entries.c.kind == "REVERSAL"))
    return {r.reverses: r.id for r in rows}


def ledger_entries_page(conn, *, size: int, after: tuple[datetime, str] | None, **filters) -> Page:
    """Entries newest first (by occurrence), `size` to a page; `after` is the last one's (time, seq)."""
    key = (after[0], int(after[1])) if after else None
    q = after_key(_ledger_filtered(select(ledger_entries), **filters), ledger_entries.c.occur_time,
                  ledger_entries.c.seq, key, size)
    rows, token = paginate(conn.execute(q).all(), size, lambda r: {"t": r.occur_time.isoformat(), "id": r.seq})
    rev = _reversed_by(conn, [r.id for r in rows])
    return Page([LedgerLine(entry_from_row(r), rev.get(r.id, "")) for r in rows], token)


def ledger_entry(conn, entry_id: str) -> LedgerLine | None:
    row = conn.execute(select(ledger_entries).where(ledger_entries.c.id == entry_id)).first()
    if row is None:
        return None
    return LedgerLine(entry_from_row(row), _reversed_by(conn, [entry_id]).get(entry_id, ""))


# -- reviews -----------------------------------------------------------------------------------

def review_entry_ids(conn, review_names: list[str]) -> dict[str, list[str]]:
    """The rule entries each review wrote, in order."""
    if not review_names:
        return {}
    rows = conn.execute(select(ledger_entries.c.subject, ledger_entries.c.id).where(
        ledger_entries.c.subject.in_(review_names), ledger_entries.c.kind == "RULE").order_by(ledger_entries.c.seq))
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r.subject, []).append(r.id)
    return out


def review(conn, review_id: str) -> Review | None:
    row = conn.execute(select(reviews).where(reviews.c.id == review_id)).first()
    if row is None:
        return None
    name = f"reviews/{review_id}"
    return review_from_row(row, review_entry_ids(conn, [name]).get(name, []))


def reviews_page(conn, *, size: int, after: tuple[datetime, str] | None, case_name: str = "", officer_id: str = "",
                 station_id: str = "", start: datetime | None = None, end: datetime | None = None) -> Page:
    """Reviews newest first; `after` is the last one's (create time, id)."""
    c = reviews.c
    q = select(reviews)
    if case_name:
        q = q.where(c.case_name == case_name)
    if officer_id:
        q = q.where(c.officer_ids.any(officer_id))
    if station_id:
        q = q.where(c.station_id == station_id)
    if start is not None:
        q = q.where(c.create_time >= start)
    if end is not None:
        q = q.where(c.create_time < end)
    rows, token = paginate(conn.execute(after_key(q, c.create_time, c.id, after, size)).all(), size,
                           lambda r: {"t": r.create_time.isoformat(), "id": r.id})
    entries = review_entry_ids(conn, [f"reviews/{r.id}" for r in rows])
    return Page([review_from_row(r, entries.get(f"reviews/{r.id}", [])) for r in rows], token)


# -- rule sets ---------------------------------------------------------------------------------

def rule_set(conn, version: int) -> RuleSet | None:
    row = conn.execute(select(rule_sets).where(rule_sets.c.version == version)).first()
    return rule_set_from_row(row) if row else None


def _rule_sets(conn, *, limit: int, before: int | None = None, published_only: bool = False) -> list[RuleSet]:
    q = select(rule_sets).order_by(rule_sets.c.version.desc()).limit(limit)
    if before is not None:
        q = q.where(rule_sets.c.version < before)
    if published_only:
        q = q.where(rule_sets.c.published)
    return [rule_set_from_row(r) for r in conn.execute(q)]


def rule_sets_page(conn, *, size: int, before: int | None, published_only: bool) -> Page:
    """Rule sets, newest version first; `before` is the last one's version."""
    rows, token = paginate(_rule_sets(conn, limit=size + 1, before=before, published_only=published_only), size,
                           lambda r: {"v": r.version})
    return Page(rows, token)


def rule_descriptions(conn) -> dict[str, str]:
    """Each rule id's description, as its latest version has it."""
    out = {}
    for rs in sorted(_rule_sets(conn, limit=10_000), key=lambda r: r.version):
        for r in rs.rules:
            out[r.rule_id] = r.description
    return out


# -- who is known ---------------------------------------------------------------------------------

def officer_known(conn, officer_id: str) -> bool:
    for col in (case_officers.c.officer_id, ledger_entries.c.officer_id, fact_officers.c.officer_id):
        if conn.execute(select(col).where(col == officer_id).limit(1)).first():
            return True
    return False


def officer_stations(conn, officer_id: str) -> set[str]:
    q = union(select(case_officers.c.station_id).where(case_officers.c.officer_id == officer_id),
              select(ledger_entries.c.station_id).where(ledger_entries.c.officer_id == officer_id))
    return {r[0] for r in conn.execute(q)}


def station_known(conn, station_id: str) -> bool:
    for col in (grid_targets.c.station_id, cases.c.station_id, ledger_entries.c.station_id):
        if conn.execute(select(col).where(col == station_id).limit(1)).first():
            return True
    return False


def display_names(conn, officer_ids: list[str]) -> dict[str, str]:
    if not officer_ids:
        return {}
    rows = conn.execute(select(case_officers.c.officer_id, func.max(case_officers.c.display_name)).where(
        case_officers.c.officer_id.in_(officer_ids)).group_by(case_officers.c.officer_id))
    return {r[0]: r[1] for r in rows}


# -- scores ------------------------------------------------------------------------------------------

@dataclass
class Tally:
    """Points and entry counts per dimension."""

    points: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, dimension: str, points, entries: int) -> None:
        self.points[dimension] += Decimal(points)
        self.counts[dimension] += entries

    @property
    def total(self) -> Decimal:
        return sum(self.points.values(), Decimal(0))


@dataclass
class ScorePoint:
    start: datetime
    tally: Tally


@dataclass
class Score:
    officer_id: str
    station_id: str
    start: datetime
    end: datetime
    tally: Tally
    # The period of the same length just before (recorded scores only).
    previous: Tally | None = None
    display_name: str = ""
    officer_count: int = 0
    mean_per_officer: Decimal = Decimal(0)
    trend: list[ScorePoint] = field(default_factory=list)
    rule_set_version: int = 0

    @property
    def name(self) -> str:
        return f"officers/{self.officer_id}/score" if self.officer_id else f"stations/{self.station_id}/score"


@dataclass
class Reason:
    reason_code: str
    dimension: str
    entries: int
    points: Decimal
    description: str


def _sums(conn, group_by: list[str], **filters) -> list:
    """Points and entry counts per group and dimension."""
    cols = [ledger_entries.c[g] for g in group_by]
    q = select(*cols, ledger_entries.c.dimension, func.sum(ledger_entries.c.points).label("points"),
               func.count().label("entries"))
    q = _ledger_filtered(q, **filters).group_by(*cols, ledger_entries.c.dimension)
    return list(conn.execute(q))


def _tally(rows) -> Tally:
    tally = Tally()
    for r in rows:
        tally.add(r.dimension, r.points, r.entries)
    return tally


def score(conn, *, officer_id: str = "", station_id: str = "", start: datetime, end: datetime,
          granularity: str = "", station_scope: str = "") -> Score:
    """The recorded score. `station_scope` limits an officer's score to one station's entries."""
    flt = dict(officer_id=officer_id, station_id=station_id or station_scope)
    out = Score(officer_id=officer_id, station_id=station_id, start=start, end=end,
                tally=_tally(_sums(conn, [], start=start, end=end, **flt)),
                previous=_tally(_sums(conn, [], start=start - (end - start), end=start, **flt)))
    if officer_id:
        out.display_name = display_names(conn, [officer_id]).get(officer_id, "")
        stations = officer_stations(conn, officer_id)
        out.station_id = station_scope or (next(iter(stations)) if len(stations) == 1 else "")
    else:
        officers = conn.execute(select(func.count(distinct(ledger_entries.c.officer_id))).where(
            ledger_entries.c.station_id == station_id, ledger_entries.c.officer_id != "",
            ledger_entries.c.occur_time >= start, ledger_entries.c.occur_time < end)).scalar_one()
        out.officer_count = officers
        out.mean_per_officer = domain.money(out.tally.total / officers) if officers else out.tally.total
    if granularity:
        rows = conn.execute(_ledger_filtered(select(ledger_entries.c.occur_time, ledger_entries.c.dimension,
                                                    ledger_entries.c.points), start=start, end=end, **flt))
        out.trend = _trend(rows, start, end, granularity)
    return out


def _trend(rows, start: datetime, end: datetime, granularity: str) -> list[ScorePoint]:
    starts = domain.buckets(start, end, granularity)
    per = [Tally() for _ in starts]
    for r in rows:
        i = domain.bucket_of(r.occur_time, starts)
        if i >= 0:
            per[i].add(r.dimension, r.points, 1)
    return [ScorePoint(max(s, start), per[i]) for i, s in enumerate(starts)]


def _by_reason(merged: dict[tuple, list]) -> list[Reason]:
    return [Reason(reason_code=k[0], dimension=k[1], entries=v[0], points=v[1], description=v[2])
            for k, v in sorted(merged.items(), key=lambda kv: (-abs(kv[1][1]), kv[0]))]


def reasons(conn, *, start, end, officer_id="", station_id="", dimension="") -> list[Reason]:
    """Why a score is what it is: entries and points per reason code, the largest first."""
    desc = rule_descriptions(conn)
    q = select(ledger_entries.c.reason_code, ledger_entries.c.dimension, ledger_entries.c.rule_id,
               func.sum(ledger_entries.c.points).label("points"), func.count().label("entries"))
    q = _ledger_filtered(q, officer_id=officer_id, station_id=station_id, dimension=dimension, start=start,
                         end=end).group_by(ledger_entries.c.reason_code, ledger_entries.c.dimension,
                                           ledger_entries.c.rule_id)
    merged: dict[tuple, list] = {}
    for r in conn.execute(q):
        item = merged.setdefault((r.reason_code, r.dimension), [0, Decimal(0), ""])
        item[0] += r.entries
        item[1] += Decimal(r.points)
        item[2] = item[2] or desc.get(r.rule_id, "")
    for item in merged.values():
        item[2] = item[2] or "人工更正"
    return _by_reason(merged)


# -- rankings ------------------------------------------------------------------------------------------

@dataclass
class Ranking:
    subject: str  # officers/{id} or stations/{id}
    display_name: str
    station_id: str
    points: Decimal  # the ranked value
    tally: Tally
    rank: int = 0
    rank_change: int = 0


def rankings_page(conn, *, scope: str, station_id: str, dimension: str, start: datetime, end: datetime,
                  size: int, offset: int) -> Page:
    """Officers or stations by points, best first, with the places gained since the previous period."""
    current = _ranked(conn, scope=scope, station_id=station_id, dimension=dimension, start=start, end=end)
    previous = _ranked(conn, scope=scope, station_id=station_id, dimension=dimension,
                       start=start - (end - start), end=start)
    prev_rank = {r.subject: r.rank for r in previous}
    for r in current:
        if r.subject in prev_rank:
            r.rank_change = prev_rank[r.subject] - r.rank
    token = encode_page_token({"o": offset + size}) if offset + size < len(current) else ""
    return Page(current[offset:offset + size], token)


def _ranked(conn, *, scope, station_id, dimension, start, end) -> list[Ranking]:
    key = "officer_id" if scope == "OFFICERS" else "station_id"
    rows = _sums(conn, [key, "station_id"] if key == "officer_id" else [key], start=start, end=end,
                 station_id=station_id)
    groups: dict[str, dict] = {}
    for r in rows:
        subject = getattr(r, key)
        if scope == "OFFICERS" and not subject:
            continue
        g = groups.setdefault(subject, {"tally": Tally(), "stations": set()})
        g["tally"].add(r.dimension, r.points, r.entries)
        g["stations"].add(r.station_id)
    officers_per_station = {}
    if scope == "STATIONS":
        officers_per_station = dict(conn.execute(
            select(ledger_entries.c.station_id, func.count(distinct(ledger_entries.c.officer_id)))
            .where(ledger_entries.c.officer_id != "", ledger_entries.c.occur_time >= start,
                   ledger_entries.c.occur_time < end).group_by(ledger_entries.c.station_id)).all())
    names = display_names(conn, list(groups)) if scope == "OFFICERS" else {}
    items = []
    for subject, g in groups.items():
        tally = g["tally"]
        value = tally.points[dimension] if dimension else tally.total
        if scope == "STATIONS" and officers_per_station.get(subject):
            value = domain.money(value / officers_per_station[subject])
        stations = sorted(g["stations"])
        items.append(Ranking(
            subject=f"{'officers' if scope == 'OFFICERS' else 'stations'}/{subject}",
            display_name=names.get(subject, ""), station_id=stations[0] if len(stations) == 1 else "",
            points=value, tally=tally))
    # Ranked as published (double precision): equal values share a rank.
    items.sort(key=lambda r: (-float(r.points), r.subject))
    for i, r in enumerate(items):
        r.rank = items[i - 1].rank if i and float(items[i - 1].points) == float(r.points) else i + 1
    return items


# -- recomputation -------------------------------------------------------------------------------------

@dataclass
class Recomputed:
    recomputed: Score
    recorded: Score
    reasons: list[Reason]


def recompute(conn, *, rule_set: RuleSet, officer_id: str, station_id: str, start: datetime, end: datetime,
              station_scope: str = "") -> Recomputed:
    """What the period would score under `rule_set`, from the kept facts, beside the recorded score.
    Writes nothing."""
    scope_station = station_id or station_scope
    fact_list = FactRepository(conn).in_period(start, end, officer_id=officer_id, station_id=scope_station)
    drafts = [d for d in domain.preview(rule_set, fact_list)
              if (not officer_id or d.officer_id == officer_id)
              and (not scope_station or d.station_id == scope_station)]
    tally = Tally()
    by_reason: dict[tuple, list] = {}
    desc = {r.rule_id: r.description for r in rule_set.rules}
    for d in drafts:
        tally.add(d.dimension, d.points, 1)
        item = by_reason.setdefault((d.reason_code, d.dimension), [0, Decimal(0), desc.get(d.rule_id, "")])
        item[0] += 1
        item[1] += d.points
    recorded = score(conn, officer_id=officer_id, station_id=station_id, start=start, end=end,
                     station_scope=station_scope)
    out = Score(officer_id=officer_id, station_id=scope_station, start=start, end=end, tally=tally,
                display_name=recorded.display_name, rule_set_version=rule_set.version)
    if scope_station:
        officers = {d.officer_id for d in drafts if d.officer_id}
        out.officer_count = len(officers)
        out.mean_per_officer = domain.money(tally.total / len(officers)) if officers else tally.total
    return Recomputed(out, recorded, _by_reason(by_reason))


# -- warnings ------------------------------------------------------------------------------------------

def warning(conn, warning_id: str) -> EnforcementWarning | None:
    row = conn.execute(select(warnings).where(warnings.c.id == warning_id)).first()
    if row is None:
        return None
    found = warning_from_row(row)
    found.timeline = warning_timeline.of(conn, warning_id)
    return found


def warnings_page(conn, *, size: int, after: tuple[datetime, str] | None, kind: str = "", status: str = "",
                  officer_id: str = "", station_id: str = "", case_name: str = "", start: datetime | None = None,
                  end: datetime | None = None) -> Page:
    """Warnings newest first; `after` is the last one's (raise time, id)."""
    c = warnings.c
    q = select(warnings)
    for col, value in ((c.kind, kind), (c.status, status), (c.officer_id, officer_id), (c.station_id, station_id),
                       (c.case_name, case_name)):
        if value:
            q = q.where(col == value)
    if start is not None:
        q = q.where(c.raise_time >= start)
    if end is not None:
        q = q.where(c.raise_time < end)
    rows, token = paginate(conn.execute(after_key(q, c.raise_time, c.id, after, size)).all(), size,
                           lambda r: {"t": r.raise_time.isoformat(), "id": r.id})
    return Page([warning_from_row(r) for r in rows], token)


@dataclass
class RatePoint:
    start: datetime
    warnings: int
    cases: int
    warning_rate: float
    by_kind: list[tuple[str, int]]


@dataclass
class StationWarnings:
    station_id: str
    warnings: int
    cases: int
    warning_rate: float
    points: list[RatePoint]
    rate_change: float


def warning_statistics(conn, *, start: datetime, end: datetime, station_id: str, granularity: str,
                       kinds: list[str]) -> list[StationWarnings]:
    """Warnings per station and bucket against the cases its officers reported back, and the rate's change."""
    starts = domain.buckets(start, end, granularity)
    wq = select(warnings.c.station_id, warnings.c.kind, warnings.c.raise_time).where(
        warnings.c.raise_time >= start, warnings.c.raise_time < end)
    if station_id:
        wq = wq.where(warnings.c.station_id == station_id)
    if kinds:
        wq = wq.where(warnings.c.kind.in_(kinds))
    # Cases the station's officers reported back: one per case and station.
    cq = select(fact_officers.c.station_id, facts.c.data["case_name"].astext.label("case_name"),
                func.min(facts.c.occur_time).label("first_time")).join(
        facts, facts.c.fact_id == fact_officers.c.fact_id).where(
        facts.c.event_type == "dispatch.AssignmentChanged",
        facts.c.data["derived"]["state"].astext == literal_column("'REPORTED_BACK'"),
        facts.c.occur_time >= start, facts.c.occur_time < end,
    ).group_by(literal_column("1"), literal_column("2"))
    if station_id:
        cq = cq.where(fact_officers.c.station_id == station_id)
    per: dict[str, dict] = {}

    def slot(sid):
        return per.setdefault(sid, {"w": [defaultdict(int) for _ in starts], "c": [0 for _ in starts]})

    for r in conn.execute(wq):
        i = domain.bucket_of(r.raise_time, starts)
        if i >= 0:
            slot(r.station_id)["w"][i][r.kind] += 1
    for r in conn.execute(cq):
        i = domain.bucket_of(r.first_time, starts)
        if i >= 0:
            slot(r.station_id)["c"][i] += 1
    out = []
    for sid in sorted(per):
        s = per[sid]
        points = []
        for i, t in enumerate(starts):
            n = sum(s["w"][i].values())
            c = s["c"][i]
            points.append(RatePoint(start=max(t, start), warnings=n, cases=c,
                                    warning_rate=round(n / c, 4) if c else 0.0,
                                    by_kind=sorted(s["w"][i].items())))
        total_w = sum(p.warnings for p in points)
        total_c = sum(p.cases for p in points)
        with_cases = [p for p in points if p.cases]
        change = 0.0
        if len(with_cases) >= 2 and with_cases[0].warning_rate:
            change = round((with_cases[-1].warning_rate - with_cases[0].warning_rate) / with_cases[0].warning_rate, 4)
        out.append(StationWarnings(station_id=sid, warnings=total_w, cases=total_c,
                                   warning_rate=round(total_w / total_c, 4) if total_c else 0.0,
                                   points=points, rate_change=change))
    return out
