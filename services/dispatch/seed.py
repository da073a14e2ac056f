"""Dispatch's sample data: the sample city's grids (with their 1-3-5 minute arrival targets) and
units, available at their home position, with a duty roster of 24-hour shifts for today and
tomorrow (city time) by the runtime's clock."""
from __future__ import annotations

from sampledata import city

from services.runtime.app import Runtime

from .domain import duty_roster
from .store import GridRepository, ShiftRepository, UnitRepository


def seed(rt: Runtime) -> None:
    """Loads the grids, units and roster (idempotent: a live status or position is never reset)."""
    at = rt.clock()
    with rt.engine.begin() as conn:
        grids = GridRepository(conn)
        for g in city.grids():
            grids.upsert(g.grid_id, g.station_id, g.arrival_target_s)
        repo = UnitRepository(conn)
        for u in city.units():
            repo.upsert(dict(
                unit_id=u.unit_id, call_sign=u.call_sign, kind=u.kind, station_id=u.station_id,
                skills=list(u.skills), vehicle=u.plate,
                officers=[{"officer_id": o.officer_id, "name": o.name} for o in u.officers],
                status="AVAILABLE", lon=u.home[0], lat=u.home[1], position_time=at,
                # The grids a community officer covers (revision 0012); other units name none.
                **({"grid_ids": list(u.grid_ids)} if u.grid_ids else {}),
            ))
        seed_roster(conn, [u.unit_id for u in city.units()], at)


def seed_roster(conn, unit_ids: list[str], at) -> None:
    """24-hour shifts for today and tomorrow (city time) for every unit that has none then; idempotent."""
    shifts = ShiftRepository(conn)
    for shift in duty_roster(unit_ids, at):
        if not shifts.overlapping(shift.unit_id, shift.start_time, shift.end_time):
            shifts.add(shift)
