"""Unit recommendation (警力推荐): the capability matrix and the nearest suitable units.

The matrix (capabilities.json) says which capabilities an incident type needs
and in which role; for each need the nearest available on-duty unit of a
matching kind is picked by estimated travel time (great-circle distance times
a road factor, over a per-kind speed). The jurisdiction's own units come
first; another station's unit is taken only when it is clearly faster (the
neighbour rule), or when the station has none. Each pick carries its reason
in Chinese. Distances are computed for all candidates at once with numpy, so
a city of thousands of units costs well under a millisecond per need.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from typing import Callable

import numpy as np

from .unit import EARTH_RADIUS_M, KIND_LABELS, Unit

MATRIX_PATH = Path(__file__).parent.parent / "capabilities.json"
# Units are first looked for within this distance of the incident (plus all of
# the station's own); the answer is exact whenever every pick is faster than
# anything outside could be, else all units are ranked.
SEARCH_RADIUS_M = 3000.0


@dataclass
class Recommendation:
    unit_id: str
    call_sign: str
    kind: str
    station_id: str
    role: str
    distance_m: float
    eta_seconds: int
    reason: str
    capability: str = ""
    position_stale: bool = False
    cross_station: bool = False


@dataclass(frozen=True)
class Need:
    capability: str
    label: str
    kinds: tuple[str, ...]
    role: str


@dataclass(frozen=True)
class Matrix:
    capabilities: dict
    incident_types: dict
    default: list
    road_factor: float
    speed_mps: dict
    default_speed_mps: float
    stale_penalty_s: int
    min_faster_share: float
    min_faster_seconds: int
    night_from: int
    night_to: int
    utc_offset_hours: int

    @classmethod
    def from_dict(cls, d: dict) -> "Matrix":
        travel, rule, night = d["travel"], d["neighbour_rule"], d["night"]
        return cls(
            capabilities=d["capabilities"], incident_types=d["incident_types"], default=d["default"],
            road_factor=travel["road_factor"], speed_mps=travel["speed_mps"],
            default_speed_mps=travel["default_speed_mps"], stale_penalty_s=travel["stale_position_penalty_s"],
            min_faster_share=rule["min_faster_share"], min_faster_seconds=rule["min_faster_seconds"],
            night_from=night["from_hour"], night_to=night["to_hour"], utc_offset_hours=night["utc_offset_hours"],
        )

    def is_night(self, at: datetime) -> bool:
        hour = (at.astimezone(timezone.utc) + timedelta(hours=self.utc_offset_hours)).hour
        if self.night_from > self.night_to:
            return hour >= self.night_from or hour < self.night_to
        return self.night_from <= hour < self.night_to

    def needs(self, incident_type: str, at: datetime) -> list[Need]:
        """The needs of an incident type at a time of day, in the matrix's order."""
        night = self.is_night(at)
        out = []
        for row in self.incident_types.get(incident_type, self.default):
            when = row.get("when")
            if when == "night" and not night or when == "day" and night:
                continue
            out.append(self.need(row["capability"], row["role"]))
        return out

    def need(self, capability: str, role: str) -> Need:
        cap = self.capabilities[capability]
        return Need(capability, cap["label"], tuple(cap["kinds"]), role)

    def capability_of_kind(self, kind: str) -> str:
        """The narrowest capability a unit kind provides (for units added by hand)."""
        best = ""
        for name, cap in self.capabilities.items():
            if kind in cap["kinds"] and (not best or len(cap["kinds"]) < len(self.capabilities[best]["kinds"])):
                best = name
        return best

    def speed(self, kind: str) -> float:
        return self.speed_mps.get(kind, self.default_speed_mps)

    def all_kinds(self, needs: list[Need]) -> set[str]:
        return {k for n in needs for k in n.kinds}


@cache
def matrix() -> Matrix:
    return Matrix.from_dict(json.loads(MATRIX_PATH.read_text(encoding="utf-8")))


def distances_m(lons: np.ndarray, lats: np.ndarray, lon: float, lat: float) -> np.ndarray:
    """Great-circle distances (haversine) from many points to one, vectorised."""
    p1, p2 = np.radians(lats), np.radians(lat)
    dp, dl = p2 - p1, np.radians(lon - lons)
    a = np.sin(dp / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


def minutes(seconds: float) -> str:
    return f"{max(1, round(seconds / 60))}分钟"


@dataclass
class _Candidate:
    unit: Unit
    distance_m: float
    eta_s: int
    stale: bool


class _Ranked:
    """One need's candidates with their travel estimates, as arrays (no per-unit Python work)."""

    def __init__(self, pool: list[Unit], lon: float | None, lat: float | None, m: Matrix,
                 stale_before: datetime | None, station_id: str):
        n = len(pool)
        self.pool = pool
        if lon is None or lat is None:
            self.dist = np.zeros(n)
        else:
            self.dist = distances_m(np.fromiter((u.lon for u in pool), float, n),
                                    np.fromiter((u.lat for u in pool), float, n), lon, lat)
        speeds = np.fromiter((m.speed(u.kind) for u in pool), float, n)
        self.stale = np.fromiter((is_stale(u, stale_before) for u in pool), bool, n)
        self.eta = np.rint(self.dist * m.road_factor / speeds) + self.stale * m.stale_penalty_s
        self.own = np.fromiter((u.station_id == station_id for u in pool), bool, n)

    def best(self, mask: np.ndarray) -> _Candidate | None:
        """The fastest candidate under `mask` (ties to the lower unit id)."""
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return None
        etas = self.eta[idx]
        ties = idx[etas == etas.min()]
        i = min(ties, key=lambda j: self.pool[j].unit_id)
        return _Candidate(self.pool[i], float(self.dist[i]), int(self.eta[i]), bool(self.stale[i]))


def is_stale(u: Unit, stale_before: datetime | None) -> bool:
    """A position with no fix time, or older than the threshold, is stale."""
    if stale_before is None:
        return False
    return u.position_time is None or u.position_time < stale_before


def _reason(pick: _Candidate, label: str, station_id: str, own_best: _Candidate | None, located: bool,
            penalty_s: int) -> str:
    u = pick.unit
    where = f"约{pick.distance_m:.0f}米，预计{minutes(pick.eta_s)}到达" if located else "报警位置未知，按辖区派警"
    if u.station_id == station_id:
        text = f"辖区内最近的空闲{label}（{KIND_LABELS.get(u.kind, u.kind)}{u.call_sign}），{where}"
    elif own_best is not None:
        text = (f"邻近派出所{u.station_id}的{label}{u.call_sign}明显更快：预计{minutes(pick.eta_s)}到达，"
                f"辖区内最近的{own_best.unit.call_sign}需{minutes(own_best.eta_s)}")
    else:
        text = f"辖区内暂无空闲{label}，调派{u.station_id}最近的{u.call_sign}，{where}"
    if pick.stale:
        text += f"（位置信息已过时，预计时间已加{penalty_s}秒）"
    return text


def recommend(units: list[Unit], *, needs: list[Need], station_id: str, lon: float | None, lat: float | None,
              stale_before: datetime | None, exclude: set[str] = frozenset(), m: Matrix | None = None,
              ) -> tuple[list[Recommendation], list[Need]]:
    """One unit per need: (picks, needs nobody could cover).

    `units` are the available on-duty units; `exclude` the unit ids that must
    not be picked (already on the case, declined it).
    """
    m = m or matrix()
    taken = set(exclude)
    picks: list[Recommendation] = []
    gaps: list[Need] = []
    by_kind: dict[str, list[Unit]] = {}
    for u in units:
        by_kind.setdefault(u.kind, []).append(u)
    located = lon is not None and lat is not None
    for need in needs:
        pool = [u for k in need.kinds for u in by_kind.get(k, ()) if u.unit_id not in taken]
        if not pool:
            gaps.append(need)
            continue
        ranked = _Ranked(pool, lon, lat, m, stale_before, station_id)
        own, other = ranked.best(ranked.own), ranked.best(~ranked.own)
        pick = own or other
        if own is not None and other is not None and located and _clearly_faster(other, own, m):
            pick = other
        taken.add(pick.unit.unit_id)
        picks.append(Recommendation(
            unit_id=pick.unit.unit_id, call_sign=pick.unit.call_sign, kind=pick.unit.kind,
            station_id=pick.unit.station_id, role=need.role, distance_m=round(pick.distance_m, 1),
            eta_seconds=pick.eta_s,
            reason=_reason(pick, need.label, station_id, own if pick is not own else None, located,
                           m.stale_penalty_s),
            capability=need.capability, position_stale=pick.stale,
            cross_station=pick.unit.station_id != station_id,
        ))
    return picks, gaps


def _clearly_faster(other: _Candidate, own: _Candidate, m: Matrix) -> bool:
    saved = own.eta_s - other.eta_s
    return saved > m.min_faster_seconds and saved > own.eta_s * m.min_faster_share


# (min lon, min lat, max lon, max lat) of the first look; None: everywhere.
SearchBox = tuple[float, float, float, float]


def search(candidates: Callable[[set[str], SearchBox | None], list[Unit]], *, needs: list[Need], station_id: str,
           lon: float | None, lat: float | None, stale_before: datetime | None, m: Matrix,
           exclude: set[str] = frozenset()) -> tuple[list[Recommendation], list[Need]]:
    """(picks, gaps) for an incident at (lon, lat) of `station_id`'s jurisdiction.

    `candidates(kinds, box)` gives the available on-duty units of those kinds: all of the
    station's and the others inside the box (all of them for None). The units near the
    incident are ranked first; when a pick could be beaten by a unit outside the box, or a
    need stays uncovered, all units are ranked.
    """
    kinds = m.all_kinds(needs)
    kw = dict(needs=needs, station_id=station_id, lon=lon, lat=lat, stale_before=stale_before, exclude=exclude, m=m)
    if lon is not None and kinds:
        dlat = SEARCH_RADIUS_M / 111_320.0
        dlon = dlat / max(math.cos(math.radians(lat)), 0.01)
        box = (lon - dlon, lat - dlat, lon + dlon, lat + dlat)
        picks, gaps = recommend(candidates(kinds, box), **kw)
        # No unit of a need's kinds outside the box can arrive sooner than this.
        bound = {n.capability: SEARCH_RADIUS_M * m.road_factor / max(m.speed(k) for k in n.kinds) for n in needs}
        if not gaps and all(p.eta_seconds <= bound[p.capability] for p in picks):
            return picks, gaps
    return recommend(candidates(kinds, None), **kw)
