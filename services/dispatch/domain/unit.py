"""Units (警力) and their duty roster (勤务报备).

A unit is dispatchable only while one of its shifts covers the time. The sample
city gets a roster of 24-hour duty shifts (24小时值班) for today and tomorrow, in
the city's time zone, so it has units on duty when it starts. Positions come from
officers' phones and vehicles (AVL); an older fix never overwrites a newer one.
A unit's changes (by a dispatcher, a commander or its station's chief) are kept in
its timeline and announced as `dispatch.UnitUpdated`.
"""
from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.runtime.model import Aggregate, DomainEvent, TimelineEntry

EARTH_RADIUS_M = 6_371_000.0
CITY_TZ = timezone(timedelta(hours=8))

KIND_LABELS = {
    "COMMUNITY_OFFICER": "社区民警", "PATROL_CAR": "巡逻车", "FOOT_PATROL": "步巡组",
    "CRIMINAL_INVESTIGATION": "刑侦", "PUBLIC_SECURITY": "治安", "ECONOMIC_CRIME": "经侦",
    "NARCOTICS": "禁毒", "TRAFFIC": "交警", "SPECIAL_POLICE": "特警", "DRONE": "无人机",
    "LEGAL_OFFICER": "法制员", "ANTI_FRAUD": "反诈中心",
}
# Roles that may act on any unit's assignments (besides the unit's own officers).
COMMAND_ROLES = ("dispatcher", "commander", "service")
# Roles that keep the roster: the station's chief for their own station, command for any.
ROSTER_ROLES = ("dispatcher", "commander", "service")
UNIT_FIELDS = ("call_sign", "kind", "station_id", "skills", "vehicle", "officers", "grid_ids")
STATUS_LABELS = {
    "OFF_DUTY": "未上岗", "AVAILABLE": "可接警", "OFFERED": "待接单", "EN_ROUTE": "出警途中", "ON_SCENE": "现场处置",
    "BUSY": "忙碌", "AT_STATION": "在所", "OUT_OF_SERVICE": "暂停勤务", "TRANSPORTING": "押送/送医途中",
    "EMERGENCY": "紧急求助",
}
# What an officer may say from the phone (SetUnitStatus).
REPORTABLE_STATUSES = ("AVAILABLE", "BUSY", "AT_STATION", "OUT_OF_SERVICE", "TRANSPORTING", "EMERGENCY")
# A phone's fix may run ahead of the service's clock by this much.
MAX_FIX_AHEAD_S = 60


def distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def entry(actor: AuthContext, at: datetime, action: str, detail: str = "", reason: str = "") -> TimelineEntry:
    """A timeline entry by `actor`."""
    return TimelineEntry(action=action, actor=actor.subject or "anonymous", roles=sorted(actor.roles), time=at,
                         detail=detail, reason=reason)


def is_units_officer(actor: AuthContext, officer_ids: set[str], station_id: str) -> bool:
    """The caller is one of the unit's officers (role officer, their police number, no other station)."""
    return actor.has_role("officer") and actor.subject in officer_ids and actor.station in ("", station_id)


def may_act_for(actor: AuthContext, officer_ids: set[str], station_id: str) -> bool:
    """A dispatcher (command role), or one of the unit's own officers."""
    return actor.has_role(*COMMAND_ROLES) or is_units_officer(actor, officer_ids, station_id)


def officer_ids(officers: list[dict]) -> set[str]:
    return {o["officer_id"] for o in officers}


@dataclass(frozen=True)
class Shift:
    shift_id: str
    unit_id: str
    start_time: datetime
    end_time: datetime
    area: str
    create_time: datetime

    @property
    def name(self) -> str:
        return f"units/{self.unit_id}/shifts/{self.shift_id}"

    def covers(self, at: datetime) -> bool:
        return self.start_time <= at < self.end_time

    def overlaps(self, start: datetime, end: datetime) -> bool:
        return self.start_time < end and self.end_time > start


def authorize_roster(actor: AuthContext, station_id: str) -> None:
    if actor.has_role(*ROSTER_ROLES):
        return
    if actor.has_role("station_chief") and actor.station == station_id:
        return
    raise PermissionDenied(f"only a dispatcher, a commander or the chief of {station_id} may change its units",
                           reason="ROSTER_ROLE_REQUIRED")


def duty_roster(unit_ids: list[str], now: datetime) -> list[Shift]:
    """The sample city's roster: 24-hour shifts for today and tomorrow (city time) for every unit."""
    midnight = now.astimezone(CITY_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    return [Shift(shift_id=f"{day:%Y%m%d}-{unit_id}", unit_id=unit_id, start_time=day,
                  end_time=day + timedelta(days=1), area="", create_time=now)
            for day in (midnight, midnight + timedelta(days=1)) for unit_id in unit_ids]


@dataclass(frozen=True)
class PositionFix:
    """One position a phone or vehicle reports."""

    unit_id: str
    lon: float | None
    lat: float | None
    fix_time: datetime
    accuracy_m: float

    def plausible(self, now: datetime) -> bool:
        """A fix of a named unit, on the globe (not at 0,0), not from the future."""
        return bool(self.unit_id) and self.lon is not None and -180 <= self.lon <= 180 \
            and -90 <= self.lat <= 90 and (self.lon, self.lat) != (0.0, 0.0) and self.accuracy_m >= 0 \
            and (self.fix_time - now).total_seconds() <= MAX_FIX_AHEAD_S


@dataclass(frozen=True)
class UnitUpdated(DomainEvent):
    unit: "Unit"
    action: str
    actor: AuthContext
    time: datetime
    reason: str = ""
    shift: Shift | None = None


@dataclass
class Unit(Aggregate):
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
    # Entries of this unit's timeline (those loaded, then those added).
    timeline: list[TimelineEntry] = field(default_factory=list)
    # The grids a community officer (社区民警) is responsible for (网格责任民警).
    grid_ids: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"units/{self.unit_id}"

    def may_be_acted_for_by(self, actor: AuthContext) -> bool:
        return may_act_for(actor, officer_ids(self.officers), self.station_id)

    def snapshot(self) -> "Unit":
        return replace(self, skills=list(self.skills), officers=[dict(o) for o in self.officers], timeline=[],
                       grid_ids=list(self.grid_ids))

    def update(self, values: dict, *, paths: list[str], actor: AuthContext, at: datetime) -> None:
        """Changes the unit's static data (UpdateUnit): the caller keeps the roster of its station and,
        when it moves, of the new one."""
        authorize_roster(actor, self.station_id)
        if "station_id" in values:
            authorize_roster(actor, values["station_id"])
        for name, value in values.items():
            setattr(self, name, value)
        self.timeline.append(entry(actor, at, "UPDATED", "修改：" + "、".join(paths)))
        self.record(UnitUpdated(self.snapshot(), "UPDATED", actor, at, ",".join(paths)))

    def change_status(self, status: str, *, reason: str, actor: AuthContext, at: datetime, working: str) -> None:
        """An officer says what the unit is doing (状态上报); `working` is the state of the assignment the
        unit holds ("" for none). Offered, en route and on scene follow the assignments; the panic
        button (EMERGENCY) is always taken."""
        if not self.may_be_acted_for_by(actor):
            raise PermissionDenied(f"only an officer of {self.name} or a dispatcher may set its status",
                                   reason="NOT_ASSIGNED_OFFICER")
        if status == self.status:
            raise FailedPrecondition(f"{self.name} is already {status}", reason="SAME_STATUS",
                                     metadata={"status": status})
        if status != "EMERGENCY":
            if working == "OFFERED":
                raise FailedPrecondition(f"{self.name} has an offer to answer first (accept or decline it)",
                                         reason="UNIT_OFFERED")
            if working and status != "TRANSPORTING":
                raise FailedPrecondition(f"{self.name} is on an assignment ({working}); its status follows it",
                                         reason="ON_ASSIGNMENT", metadata={"assignment_state": working})
        previous, self.status = self.status, status
        action = "EMERGENCY" if status == "EMERGENCY" else "STATUS_CHANGED"
        detail = f"状态：{STATUS_LABELS.get(previous, previous)} → {STATUS_LABELS[status]}"
        self.timeline.append(entry(actor, at, action, detail, reason))
        self.record(UnitUpdated(self.snapshot(), action, actor, at, reason))

    def add_shift(self, *, start: datetime, end: datetime, area: str, actor: AuthContext, at: datetime,
                  existing: list[Shift]) -> Shift:
        """A shift of the duty roster (CreateShift); `existing` are the unit's shifts overlapping it."""
        authorize_roster(actor, self.station_id)
        if existing:
            clash = existing[0]
            raise FailedPrecondition(f"units/{self.unit_id} already has a shift from {clash.start_time.isoformat()} "
                                     f"to {clash.end_time.isoformat()}", reason="SHIFT_OVERLAPS",
                                     metadata={"shift": clash.name})
        shift = Shift(shift_id=uuid.uuid4().hex[:12], unit_id=self.unit_id, start_time=start, end_time=end, area=area,
                      create_time=at)
        self.on_duty = self.on_duty or shift.covers(at)
        where = f"，区域{area}" if area else ""
        self.timeline.append(entry(actor, at, "SHIFT_ADDED", f"勤务报备：{start.isoformat()} 至 {end.isoformat()}{where}"))
        self.record(UnitUpdated(self.snapshot(), "SHIFT_ADDED", actor, at, "", shift))
        return shift
