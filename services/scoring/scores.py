"""The read side: scores, trends, rankings, explanations, recomputation and warning statistics."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from decimal import Decimal

from sqlalchemy import distinct, func, literal_column, select, union

from smart110.scoring.v1 import scoring_service_pb2 as pb

from services.runtime.enums import enum_value
from services.runtime.timeutil import to_pb

from . import domain
from .domain import RuleSet
from .handlers import preview
from .mapping import dimension_pb, dimension_scores
from .store import (
    FactRepository, LedgerRepository, RuleSetRepository, case_officers, cases, fact_officers, facts, grid_targets,
    ledger_entries, warnings,
)


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


def _totals(rows) -> tuple[Decimal, dict[str, Decimal], dict[str, int]]:
    points: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    for r in rows:
        points[r.dimension] += Decimal(r.points)
        counts[r.dimension] += r.entries
    return sum(points.values(), Decimal(0)), points, counts


def score(conn, *, officer_id: str = "", station_id: str = "", start: datetime, end: datetime,
          granularity: str = "", station_scope: str = "") -> pb.Score:
    """The recorded score. `station_scope` limits an officer's score to one station's entries."""
    ledger = LedgerRepository(conn)
    flt = dict(officer_id=officer_id, station_id=station_id or station_scope)
    total, points, counts = _totals(ledger.sums([], start=start, end=end, **flt))
    prev_start = start - (end - start)
    prev_total, prev_points, prev_counts = _totals(ledger.sums([], start=prev_start, end=start, **flt))
    msg = pb.Score(
        name=f"officers/{officer_id}/score" if officer_id else f"stations/{station_id}/score",
        officer_id=officer_id, station_id=station_id, start_time=to_pb(start), end_time=to_pb(end),
        total=float(total), dimensions=dimension_scores(points, counts), previous_total=float(prev_total),
        previous_dimensions=dimension_scores(prev_points, prev_counts))
    if officer_id:
        msg.display_name = display_names(conn, [officer_id]).get(officer_id, "")
        stations = officer_stations(conn, officer_id)
        msg.station_id = station_scope or (next(iter(stations)) if len(stations) == 1 else "")
    else:
        officers = conn.execute(select(func.count(distinct(ledger_entries.c.officer_id))).where(
            ledger_entries.c.station_id == station_id, ledger_entries.c.officer_id != "",
            ledger_entries.c.occur_time >= start, ledger_entries.c.occur_time < end)).scalar_one()
        msg.officer_count = officers
        msg.mean_per_officer = float(domain.money(total / officers)) if officers else float(total)
    if granularity:
        msg.trend.extend(_trend(ledger.times(start=start, end=end, **flt), start, end, granularity))
    return msg


def _trend(rows, start, end, granularity) -> list[pb.ScorePoint]:
    starts = domain.buckets(start, end, granularity)
    per: list[dict[str, Decimal]] = [defaultdict(Decimal) for _ in starts]
    cnt: list[dict[str, int]] = [defaultdict(int) for _ in starts]
    for r in rows:
        i = domain.bucket_of(r.occur_time, starts)
        if i >= 0:
            per[i][r.dimension] += Decimal(r.points)
            cnt[i][r.dimension] += 1
    return [pb.ScorePoint(start_time=to_pb(max(s, start)), total=float(sum(per[i].values(), Decimal(0))),
                          dimensions=dimension_scores(per[i], cnt[i])) for i, s in enumerate(starts)]


def rule_descriptions(conn) -> dict[str, str]:
    out = {}
    for rs in sorted(RuleSetRepository(conn).list(limit=10_000, before=None, published_only=False),
                     key=lambda r: r.version):
        for r in rs.rules:
            out[r.rule_id] = r.description
    return out


def reasons(conn, *, start, end, officer_id="", station_id="", dimension="") -> list[pb.ReasonSummary]:
    desc = rule_descriptions(conn)
    merged: dict[tuple, list] = {}
    for r in LedgerRepository(conn).by_reason(officer_id=officer_id, station_id=station_id, dimension=dimension,
                                              start=start, end=end):
        key = (r.reason_code, r.dimension)
        item = merged.setdefault(key, [0, Decimal(0), ""])
        item[0] += r.entries
        item[1] += Decimal(r.points)
        item[2] = item[2] or desc.get(r.rule_id, "")
    return [pb.ReasonSummary(reason_code=k[0], dimension=dimension_pb(k[1]), entries=v[0], points=float(v[1]),
                             description=v[2] or "人工更正")
            for k, v in sorted(merged.items(), key=lambda kv: (-abs(kv[1][1]), kv[0]))]


def rankings(conn, *, scope: str, station_id: str, dimension: str, start: datetime,
             end: datetime) -> list[pb.Ranking]:
    current = _ranked(conn, scope=scope, station_id=station_id, dimension=dimension, start=start, end=end)
    previous = _ranked(conn, scope=scope, station_id=station_id, dimension=dimension,
                       start=start - (end - start), end=start)
    prev_rank = {r.subject: r.rank for r in previous}
    for r in current:
        if r.subject in prev_rank:
            r.rank_change = prev_rank[r.subject] - r.rank
    return current


def _ranked(conn, *, scope, station_id, dimension, start, end) -> list[pb.Ranking]:
    ledger = LedgerRepository(conn)
    key = "officer_id" if scope == "OFFICERS" else "station_id"
    rows = ledger.sums([key, "station_id"] if key == "officer_id" else [key], start=start, end=end,
                       station_id=station_id)
    groups: dict[str, dict] = {}
    for r in rows:
        subject = getattr(r, key)
        if scope == "OFFICERS" and not subject:
            continue
        g = groups.setdefault(subject, {"points": defaultdict(Decimal), "counts": defaultdict(int), "stations": set()})
        g["points"][r.dimension] += Decimal(r.points)
        g["counts"][r.dimension] += r.entries
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
        value = g["points"][dimension] if dimension else sum(g["points"].values(), Decimal(0))
        if scope == "STATIONS" and officers_per_station.get(subject):
            value = domain.money(value / officers_per_station[subject])
        stations = sorted(g["stations"])
        items.append(pb.Ranking(
            subject=f"{'officers' if scope == 'OFFICERS' else 'stations'}/{subject}",
            display_name=names.get(subject, ""), station_id=stations[0] if len(stations) == 1 else "",
            points=float(value), dimensions=dimension_scores(g["points"], g["counts"])))
    items.sort(key=lambda r: (-r.points, r.subject))
    for i, r in enumerate(items):
        r.rank = items[i - 1].rank if i and items[i - 1].points == r.points else i + 1
    return items


def recompute(conn, *, rule_set: RuleSet, officer_id: str, station_id: str, start: datetime,
              end: datetime) -> tuple[pb.Score, list[pb.ReasonSummary]]:
    """What the period would score under `rule_set`, from the kept facts. Writes nothing."""
    fact_list = FactRepository(conn).in_period(start, end, officer_id=officer_id, station_id=station_id)
    drafts = [d for d in preview(rule_set, fact_list)
              if (not officer_id or d.officer_id == officer_id) and (not station_id or d.station_id == station_id)]
    points: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    by_reason: dict[tuple, list] = {}
    desc = {r.rule_id: r.description for r in rule_set.rules}
    for d in drafts:
        points[d.dimension] += d.points
        counts[d.dimension] += 1
        item = by_reason.setdefault((d.reason_code, d.dimension), [0, Decimal(0), desc.get(d.rule_id, "")])
        item[0] += 1
        item[1] += d.points
    total = sum(points.values(), Decimal(0))
    msg = pb.Score(
        name=f"officers/{officer_id}/score" if officer_id else f"stations/{station_id}/score",
        officer_id=officer_id, station_id=station_id, start_time=to_pb(start), end_time=to_pb(end),
        total=float(total), dimensions=dimension_scores(points, counts), rule_set_version=rule_set.version)
    if station_id:
        officers = {d.officer_id for d in drafts if d.officer_id}
        msg.officer_count = len(officers)
        msg.mean_per_officer = float(domain.money(total / len(officers))) if officers else float(total)
    summaries = [pb.ReasonSummary(reason_code=k[0], dimension=dimension_pb(k[1]), entries=v[0], points=float(v[1]),
                                  description=v[2])
                 for k, v in sorted(by_reason.items(), key=lambda kv: (-abs(kv[1][1]), kv[0]))]
    return msg, summaries


def warning_statistics(conn, *, start: datetime, end: datetime, station_id: str, granularity: str,
                       kinds: list[str]) -> list[pb.StationWarnings]:
    starts = domain.buckets(start, end, granularity)
    wq = select(warnings.c.station_id, warnings.c.kind, warnings.c.raise_time).where(
        warnings.c.raise_time >= start, warnings.c.raise_time < end)
    if station_id:
        wq = wq.where(warnings.c.station_id == station_id)
    if kinds:
        wq = wq.where(warnings.c.kind.in_(kinds))
    # Cases the station's officers reported back: one per case and station.
    cq = select(fact_officers.c.station_id, facts.c.data["case_name"].astext.label("case_name"),
                func.min(facts.c.occur_time).label("first_time")).join(facts, facts.c.fact_id == fact_officers.c.fact_id).where(
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
            points.append(pb.WarningRatePoint(
                start_time=to_pb(max(t, start)), warnings=n, cases=c, warning_rate=round(n / c, 4) if c else 0.0,
                by_kind=[pb.WarningKindCount(kind=enum_value(pb.WarningKind, k, "WARNING_KIND_"), count=v)
                         for k, v in sorted(s["w"][i].items())]))
        total_w = sum(p.warnings for p in points)
        total_c = sum(p.cases for p in points)
        with_cases = [p for p in points if p.cases]
        change = 0.0
        if len(with_cases) >= 2 and with_cases[0].warning_rate:
            change = round((with_cases[-1].warning_rate - with_cases[0].warning_rate) / with_cases[0].warning_rate, 4)
        out.append(pb.StationWarnings(station_id=sid, warnings=total_w, cases=total_c,
                                      warning_rate=round(total_w / total_c, 4) if total_c else 0.0,
                                      points=points, rate_change=change))
    return out
