"""Duty roster (勤务报备) and unit positions.

A unit is dispatchable only while one of its shifts covers the time. The
sample city gets a roster of 24-hour duty shifts (24小时值班) for today and
tomorrow, in the city's time zone, so it has units on duty when it starts.
Positions come from officers' phones and vehicles (AVL); an older fix never
overwrites a newer one.
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.runtime.timeutil import to_pb

from .store import ShiftRepository, UnitRepository

CITY_TZ = timezone(timedelta(hours=8))
# Roles that keep the roster: the station's chief for their own station, command for any.
ROSTER_ROLES = ("dispatcher", "commander", "service")


def shift_to_pb(row) -> pb.Shift:
    return pb.Shift(name=f"units/{row.unit_id}/shifts/{row.shift_id}", start_time=to_pb(row.start_time),
                    end_time=to_pb(row.end_time), area=row.area)


def authorize_roster(actor: AuthContext, station_id: str) -> None:
    if actor.has_role(*ROSTER_ROLES):
        return
    if actor.has_role("station_chief") and actor.station == station_id:
        return
    raise PermissionDenied(f"only a dispatcher, a commander or the chief of {station_id} may change its units",
                           reason="ROSTER_ROLE_REQUIRED")


def create_shift(conn, *, unit_id: str, start: datetime, end: datetime, area: str, actor: AuthContext,
                 now: datetime) -> pb.Shift:
    unit = UnitRepository(conn, now=now).get(unit_id, lock=True)
    if unit is None:
        raise NotFound(f"units/{unit_id}")
    authorize_roster(actor, unit.station_id)
    repo = ShiftRepository(conn)
    clash = repo.overlapping(unit_id, start, end)
    if clash:
        raise FailedPrecondition(f"units/{unit_id} already has a shift from {clash[0].start_time.isoformat()} "
                                 f"to {clash[0].end_time.isoformat()}", reason="SHIFT_OVERLAPS",
                                 metadata={"shift": f"units/{unit_id}/shifts/{clash[0].shift_id}"})
    values = dict(shift_id=uuid.uuid4().hex[:12], unit_id=unit_id, start_time=start, end_time=end, area=area,
                  create_time=now)
    repo.add(values)
    return shift_to_pb(type("Row", (), values))


def seed_roster(conn, unit_ids: list[str], now: datetime) -> None:
    """24-hour shifts for today and tomorrow (city time) for every unit; idempotent."""
    midnight = now.astimezone(CITY_TZ).replace(hour=0, minute=0, second=0, microsecond=0)
    repo = ShiftRepository(conn)
    for day in (midnight, midnight + timedelta(days=1)):
        for unit_id in unit_ids:
            start, end = day, day + timedelta(days=1)
            if not repo.overlapping(unit_id, start, end):
                repo.add(dict(shift_id=f"{day:%Y%m%d}-{unit_id}", unit_id=unit_id, start_time=start, end_time=end,
                              area="", create_time=now))
