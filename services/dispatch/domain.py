"""Dispatch domain (派警/处警): units, cases and the recommendation of units.
Plain Python; knows nothing of gRPC or SQL."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from services.runtime.audit import TimelineEntry

# Straight-line speed used to estimate travel time, metres per second, with a
# road-network detour factor. Cars in city traffic ~30 km/h, on foot ~5 km/h.
SPEED_MPS = {"PATROL_CAR": 8.3, "FOOT_PATROL": 1.4, "COMMUNITY_OFFICER": 4.0, "DRONE": 12.0}
DEFAULT_SPEED_MPS = 6.0
DETOUR_FACTOR = 1.4
EARTH_RADIUS_M = 6_371_000.0


@dataclass
class Unit:
    unit_id: str
    call_sign: str
    kind: str
    station_id: str
    skills: list[str]
    vehicle: str
    officers: list[dict]
    status: str
    lon: float
    lat: float
    position_time: datetime | None
    on_duty: bool

    @property
    def name(self) -> str:
        return f"units/{self.unit_id}"


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


@dataclass
class DispatchCase:
    id: str
    report: str
    station_id: str
    grid_id: str
    incident_type: str
    priority: int
    level: str
    status: str
    lon: float | None
    lat: float | None
    address_text: str
    summary: str
    recommendations: list[Recommendation]
    report_time: datetime
    create_time: datetime
    update_time: datetime
    timeline: list[TimelineEntry] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"cases/{self.id}"


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def eta_seconds(kind: str, metres: float) -> int:
    return int(round(metres * DETOUR_FACTOR / SPEED_MPS.get(kind, DEFAULT_SPEED_MPS)))


# Units that can be first on scene for an ordinary police matter.
FIRST_RESPONDERS = ("PATROL_CAR", "COMMUNITY_OFFICER", "FOOT_PATROL")


def recommend_first_responder(units: list[Unit], *, station_id: str, lon: float | None, lat: float | None,
                              limit: int = 3) -> list[Recommendation]:
    """The nearest available on-duty first responders, the station's own first.

    The full capability matrix (specialists per incident type, neighbouring
    stations when clearly faster) builds on this ranking.
    """
    candidates = [u for u in units
                  if u.on_duty and u.status == "AVAILABLE" and u.kind in FIRST_RESPONDERS]
    own = [u for u in candidates if u.station_id == station_id] or candidates
    picks: list[Recommendation] = []
    ranked = []
    for u in own:
        d = distance_m(u.lon, u.lat, lon, lat) if lon is not None else 0.0
        ranked.append((eta_seconds(u.kind, d), d, u))
    ranked.sort(key=lambda t: (t[0], t[2].unit_id))
    for i, (eta, d, u) in enumerate(ranked[:limit]):
        where = "辖区内" if u.station_id == station_id else "邻近派出所"
        reason = f"{where}{'最近' if i == 0 else '次近'}的空闲{KIND_LABELS.get(u.kind, u.kind)}，" \
                 f"直线距离约{d:.0f}米，预计{max(1, round(eta / 60))}分钟到达"
        picks.append(Recommendation(u.unit_id, u.call_sign, u.kind, u.station_id,
                                    "PRIMARY" if i == 0 else "SUPPORT", d, eta, reason))
    return picks


KIND_LABELS = {
    "COMMUNITY_OFFICER": "社区民警", "PATROL_CAR": "巡逻车", "FOOT_PATROL": "步巡组",
    "CRIMINAL_INVESTIGATION": "刑侦", "PUBLIC_SECURITY": "治安", "ECONOMIC_CRIME": "经侦",
    "NARCOTICS": "禁毒", "TRAFFIC": "交警", "SPECIAL_POLICE": "特警", "DRONE": "无人机",
    "LEGAL_OFFICER": "法制员", "ANTI_FRAUD": "反诈中心",
}
