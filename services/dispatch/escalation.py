"""Case levels and who sees a case (同步同息感知).

A case's level (station, county, city, province) says which command centres
follow it: a centre sees the cases of its level and above, as they change.
A case opens at a level set by its type and priority (data below) and is
escalated or de-escalated with a reason.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime.audit import TimelineEntry
from services.runtime.enums import enum_value
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.runtime.outbox import Outbox

from .store import CaseRepository, case_timeline, cases

LEVELS = ("STATION", "COUNTY", "CITY", "PROVINCE")
LEVEL_LABELS = {"STATION": "派出所级", "COUNTY": "分局（县）级", "CITY": "市级", "PROVINCE": "省级"}

# The level a case opens at: the higher of its type's and its priority's.
INITIAL_LEVEL_BY_TYPE = {
    "HOMICIDE": "CITY",
    "KIDNAPPING": "CITY",
    "EXPLOSION": "CITY",
    "HOSTAGE": "CITY",
    "TERRORISM": "PROVINCE",
    "ROBBERY": "COUNTY",
    "FIRE": "COUNTY",
    "GAS_LEAK": "COUNTY",
    "DROWNING_RISK": "COUNTY",
}
INITIAL_LEVEL_BY_PRIORITY = {1: "COUNTY"}

ESCALATE_ROLES = ("commander", "dispatcher", "station_chief")
# A station cannot take a case off a higher centre's screen.
DEESCALATE_ROLES = ("commander", "dispatcher")
WATCH_ROLES = ("commander", "dispatcher", "station_chief", "supervisor")


def rank(level: str) -> int:
    return LEVELS.index(level)


def initial_level(incident_type: str, priority: int) -> str:
    by_type = INITIAL_LEVEL_BY_TYPE.get(incident_type, "STATION")
    by_priority = INITIAL_LEVEL_BY_PRIORITY.get(priority, "STATION")
    return max(by_type, by_priority, key=rank)


def levels_from(min_level: str) -> list[str]:
    """The levels a centre of `min_level` sees: its own and above."""
    return list(LEVELS[rank(min_level):]) if min_level else list(LEVELS)


def change_level(conn, *, outbox: Outbox, case_id: str, level: str, reason: str, actor: str, roles: list[str],
                 station: str, now: datetime) -> pb.DispatchCase:
    """Escalates or de-escalates a case, kept in its timeline and announced as dispatch.CaseUpdated."""
    from .caseinfo import announce, case_message

    row = conn.execute(select(cases).where(cases.c.id == case_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"cases/{case_id}")
    if "commander" not in roles and "dispatcher" not in roles and row.station_id != station:
        raise PermissionDenied(f"cases/{case_id} belongs to station {row.station_id}, not {station or 'yours'}",
                               reason="OTHER_STATION", metadata={"station_id": row.station_id})
    if row.status == "CLOSED":
        raise FailedPrecondition(f"cases/{case_id} is closed; its level cannot change", reason="CASE_CLOSED")
    if level == row.level:
        raise FailedPrecondition(f"cases/{case_id} is already at level {level}", reason="SAME_LEVEL",
                                 metadata={"level": level})
    up = rank(level) > rank(row.level)
    if not up and not set(roles) & set(DEESCALATE_ROLES):
        raise PermissionDenied("only a commander or dispatcher may de-escalate a case",
                               reason="ROLE_REQUIRED", metadata={"required_roles": ",".join(DEESCALATE_ROLES)})
    action = "ESCALATED" if up else "DEESCALATED"
    before = case_message(conn, CaseRepository(conn).get(case_id, with_timeline=False))
    conn.execute(update(cases).where(cases.c.id == case_id).values(level=level, update_time=now))
    verb = "升级" if up else "降级"
    entries = [TimelineEntry(action, actor, roles, now,
                             detail=f"由{LEVEL_LABELS[row.level]}{verb}为{LEVEL_LABELS[level]}", reason=reason)]
    case_timeline.add(conn, case_id, entries)
    return announce(conn, outbox, CaseRepository(conn).get(case_id), action, before=before, entries=entries,
                    previous_level=enum_value(pb.CaseLevel, row.level, "CASE_LEVEL_"))


# -- what a watching centre sees ---------------------------------------------------

def in_area(msg: pb.DispatchCase, station_ids: set[str], bounds) -> bool:
    if station_ids and msg.station_id not in station_ids:
        return False
    if bounds is not None:
        if not msg.location.HasField("point"):
            return False
        p = msg.location.point
        return (bounds.south_west.longitude <= p.longitude <= bounds.north_east.longitude
                and bounds.south_west.latitude <= p.latitude <= bounds.north_east.latitude)
    return True


def view_of(msg: pb.DispatchCase, previous_level: int, levels: set[int]) -> bool | None:
    """True: the case is in view; False: this change took it out of view; None: never was, skip."""
    if msg.level in levels:
        return True
    if previous_level in levels:
        return False
    return None
