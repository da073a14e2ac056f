"""Duplicate reports merged into one master incident (重复警情合并).

A new report is a duplicate of an open incident when both are police or both
non-police matters and either
- they lie close together (within `NEAR_METRES`) and were received close in
  time (within `NEAR_WINDOW`), with compatible incident types, or
- the same caller reports again within `CALLER_WINDOW` (compatible types, or
  one of them unclassified: callers ringing again to ask where the police
  are rarely repeat the words), or
- neither has a point and they give the same address text within
  `NEAR_WINDOW` with compatible types.
The master is the earliest open report found (a report that is itself
merged points to its master, so chains never form). Times are the reports'
receive times, so replayed or back-dated reports merge as they would have.

Pure: the rules and the search area; the store finds the candidates
(`ReportRepository.open_candidates`) one area at a time (`lock_key`).
"""
from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

NEAR_METRES = 300.0
NEAR_WINDOW = timedelta(minutes=30)
CALLER_WINDOW = timedelta(minutes=60)
# Incident types that describe the same kind of event seen by different people.
COMPATIBLE_GROUPS = (
    {"FIGHT", "ASSAULT", "DISPUTE", "DOMESTIC_VIOLENCE"},
    {"FIRE", "GAS_LEAK", "EXPLOSION"},
    {"TRAFFIC_ACCIDENT", "CONGESTION", "DRUNK_DRIVING"},
    {"ROBBERY", "THEFT"},
    {"MISSING_PERSON", "DROWNING_RISK", "TRAPPED"},
    {"NOISE", "DISPUTE"},
)
# Types that say nothing of the event: compatible with any type from the same caller.
VAGUE_TYPES = {"OTHER", "SILENT_ALARM", ""}
# Statuses of an incident that is still being handled.
OPEN_STATUSES = ("RECEIVED", "CLASSIFIED", "ASSIGNING", "DISPATCHED", "REFERRED")
MERGEABLE_CATEGORIES = ("POLICE", "NON_POLICE")
# How far either side of a new report's receive time a report it repeats may lie, and how many
# candidates are looked at, at most (the earliest first).
SEARCH_WINDOW = max(NEAR_WINDOW, CALLER_WINDOW)
MAX_CANDIDATES = 200


def compatible(a: str, b: str) -> bool:
    return a == b or any(a in g and b in g for g in COMPATIBLE_GROUPS)


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Haversine distance in metres."""
    r = 6_371_000.0
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * r * math.asin(math.sqrt(h))


@dataclass(frozen=True)
class Candidate:
    report_id: str
    category: str
    incident_type: str
    caller_phone: str
    lon: float | None
    lat: float | None
    address_text: str
    receive_time: datetime
    station_id: str = ""
    description: str = ""


@dataclass(frozen=True)
class DuplicateOf:
    master_id: str
    reason: str  # in Chinese, for the timeline and the report


@dataclass(frozen=True)
class Repeat:
    """An open incident a new report repeats, with the rule that matched (shown to the call-taker
    before the report is filed)."""

    candidate: Candidate
    reason: str  # in Chinese
    distance_m: float | None


def matches(new: Candidate, candidates: list[Candidate]) -> list[Repeat]:
    """Every open incident `new` repeats, the earliest first (by receive time, then id)."""
    if new.category not in MERGEABLE_CATEGORIES:
        return []
    found: list[Repeat] = []
    for c in candidates:
        if c.report_id == new.report_id or c.category != new.category:
            continue
        gap = abs(new.receive_time - c.receive_time)
        minutes = gap.total_seconds() / 60
        same_kind = compatible(new.incident_type, c.incident_type)
        d = distance_m(new.lon, new.lat, c.lon, c.lat) if None not in (new.lon, c.lon) else None
        if new.caller_phone and new.caller_phone == c.caller_phone and gap <= CALLER_WINDOW and (
                same_kind or new.incident_type in VAGUE_TYPES or c.incident_type in VAGUE_TYPES):
            found.append(Repeat(c, f"同一来电人 {minutes:.0f} 分钟内再次报警", d))
            continue
        if not same_kind or gap > NEAR_WINDOW:
            continue
        if d is not None:
            if d <= NEAR_METRES:
                found.append(Repeat(c, f"与该警情相距 {d:.0f} 米、间隔 {minutes:.0f} 分钟，类型相同或相近", d))
        elif new.lon is None and c.lon is None and new.address_text and new.address_text == c.address_text:
            found.append(Repeat(c, f"地址相同、间隔 {minutes:.0f} 分钟，类型相同或相近", None))
    return sorted(found, key=lambda r: (r.candidate.receive_time, r.candidate.report_id))


def match(new: Candidate, candidates: list[Candidate]) -> DuplicateOf | None:
    """The open incident `new` repeats, if any: the earliest that matches a rule."""
    found = matches(new, candidates)
    if not found:
        return None
    return DuplicateOf(found[0].candidate.report_id, found[0].reason)


def near_box(new: Candidate) -> tuple[float, float, float, float] | None:
    """(min lon, max lon, min lat, max lat) of the reports near enough to repeat `new`; None without a point."""
    if new.lon is None:
        return None
    dlat = NEAR_METRES / 111_320.0
    dlon = dlat / max(math.cos(math.radians(new.lat)), 0.2)
    return new.lon - dlon, new.lon + dlon, new.lat - dlat, new.lat + dlat


def lock_key(new: Candidate, *, area: str = "") -> int:
    """Reports of one area (station) or, without one, of one caller are checked one at a time, so two
    witnesses calling at once still make one incident: the key they are serialised on."""
    return zlib.crc32(f"intake-duplicates:{area or new.caller_phone or new.address_text}".encode())


def candidate_of(report) -> Candidate:
    c = report.classification
    return Candidate(report.id, c.category, c.incident_type, report.caller_phone, report.lon, report.lat,
                     report.address_text, report.receive_time, report.station_id, report.description)
