"""Dispatch domain (派警/处警): units, cases and the recommendation of units.
Plain Python; knows nothing of gRPC or SQL."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime

from services.runtime.audit import TimelineEntry

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
    # Derived when read: a shift of the duty roster covers the time of reading,
    # and the last fix is older than the staleness threshold.
    on_duty: bool
    position_stale: bool = False

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
    capability: str = ""
    position_stale: bool = False
    cross_station: bool = False


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
    arrival_target_s: int = 0
    accept_time: datetime | None = None
    arrive_time: datetime | None = None
    close_time: datetime | None = None
    assignments: list["Assignment"] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"cases/{self.id}"

    @property
    def accept_seconds(self) -> int:
        return seconds_between(self.report_time, self.accept_time)


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def seconds_between(start: datetime | None, end: datetime | None) -> int:
    if start is None or end is None:
        return 0
    return max(0, int(round((end - start).total_seconds())))


KIND_LABELS = {
    "COMMUNITY_OFFICER": "社区民警", "PATROL_CAR": "巡逻车", "FOOT_PATROL": "步巡组",
    "CRIMINAL_INVESTIGATION": "刑侦", "PUBLIC_SECURITY": "治安", "ECONOMIC_CRIME": "经侦",
    "NARCOTICS": "禁毒", "TRAFFIC": "交警", "SPECIAL_POLICE": "特警", "DRONE": "无人机",
    "LEGAL_OFFICER": "法制员", "ANTI_FRAUD": "反诈中心",
}


@dataclass
class Assignment:
    """One unit's part in a case, from the offer to the report-back (回告)."""

    id: str
    case_id: str
    unit_id: str
    call_sign: str
    kind: str
    station_id: str  # the unit's station
    officers: list[dict]
    role: str
    capability: str
    state: str
    version: int
    reason: str
    arrival_target_s: int
    offer_time: datetime
    offer_expire_time: datetime | None
    update_time: datetime
    accept_time: datetime | None = None
    en_route_time: datetime | None = None
    arrive_time: datetime | None = None
    clear_time: datetime | None = None
    report_back_time: datetime | None = None
    decline_reason: str = ""
    outcome: str = ""
    notes: str = ""
    evidence: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"cases/{self.case_id}/assignments/{self.id}"

    @property
    def unit(self) -> str:
        return f"units/{self.unit_id}"


# The assignment lifecycle: offered -> accepted -> en route -> on scene ->
# cleared -> reported back; an offer may instead be declined, expire, or be
# cancelled when the case closes first.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "OFFERED": ("ACCEPTED", "DECLINED", "EXPIRED", "CANCELLED"),
    "ACCEPTED": ("EN_ROUTE",),
    "EN_ROUTE": ("ON_SCENE",),
    "ON_SCENE": ("CLEARED",),
    "CLEARED": ("REPORTED_BACK",),
}
ADVANCE_TARGETS = ("EN_ROUTE", "ON_SCENE", "CLEARED")
ENDED_OFFER = ("DECLINED", "EXPIRED", "CANCELLED")
# Where a unit is while it holds an assignment in a state; None: unchanged.
UNIT_STATUS_FOR = {
    "OFFERED": "OFFERED", "ACCEPTED": "BUSY", "EN_ROUTE": "EN_ROUTE", "ON_SCENE": "ON_SCENE",
    "CLEARED": "AVAILABLE", "DECLINED": "AVAILABLE", "EXPIRED": "AVAILABLE", "CANCELLED": "AVAILABLE",
    "REPORTED_BACK": None,
}
STATE_LABELS = {
    "OFFERED": "派单", "ACCEPTED": "接单", "DECLINED": "拒单", "EXPIRED": "超时未接单", "CANCELLED": "撤销派单",
    "EN_ROUTE": "出警途中", "ON_SCENE": "到达现场", "CLEARED": "处置完毕", "REPORTED_BACK": "回告",
}
OUTCOME_LABELS = {
    "CRIMINAL_CASE": "刑事立案", "ADMINISTRATIVE_CASE": "行政案件", "MEDIATED": "调解处理",
    "NO_ISSUE_FOUND": "现场无警情", "REFERRED": "移交处理", "ASSISTANCE_GIVEN": "求助已处置",
}


def can_move(state: str, target: str) -> bool:
    return target in TRANSITIONS.get(state, ())


def case_status(current: str, assignments: list[Assignment]) -> str:
    """A case's status follows its assignments.

    Pending until a unit accepts; dispatched, then on scene as the furthest
    unit gets there; cleared once every unit that took the case has left the
    scene; reported back once some have reported back and the rest cleared;
    closed when all have reported back.
    """
    taken = [a for a in assignments if a.state not in ("OFFERED",) + ENDED_OFFER]
    if not taken:
        return "PENDING" if current not in ("CLOSED",) else current
    states = {a.state for a in taken}
    if states == {"REPORTED_BACK"}:
        return "CLOSED"
    if "ON_SCENE" in states:
        return "ON_SCENE"
    if states & {"ACCEPTED", "EN_ROUTE"}:
        return "DISPATCHED"
    if "REPORTED_BACK" in states:
        return "REPORTED_BACK"
    return "CLEARED"
