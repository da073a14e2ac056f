"""The situation map (一张图): active cases and units in a bounding box, with
counts per station and status, for a big screen or the call-taker console."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from sqlalchemy import select

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime.validation import Violations

from .mapping import case_to_pb, unit_to_pb
from .store import _to_case, _to_unit, cases, on_duty_at, units

# A case is on the map until the citizen has been told the outcome (回告).
ACTIVE_STATUSES = ("PENDING", "DISPATCHED", "ON_SCENE", "CLEARED")
MAX_CASES = 500
MAX_UNITS = 2000
# A map view larger than this is a mistake, not a map (the province is ~5° across).
MAX_SPAN_DEGREES = 10.0


@dataclass(frozen=True)
class Box:
    west: float
    south: float
    east: float
    north: float


def check_box(bounds: common_pb2.BoundingBox, v: Violations, field: str = "bounds") -> Box | None:
    """A validated box, recording violations for missing corners, bad coordinates or inverted corners."""
    ok = True
    for corner in ("south_west", "north_east"):
        if not bounds.HasField(corner):
            v.add(f"{field}.{corner}", "is required")
            ok = False
            continue
        p = getattr(bounds, corner)
        ok &= v.check(-180 <= p.longitude <= 180, f"{field}.{corner}.longitude", "must be -180 to 180")
        ok &= v.check(-90 <= p.latitude <= 90, f"{field}.{corner}.latitude", "must be -90 to 90")
    if not ok:
        return None
    box = Box(bounds.south_west.longitude, bounds.south_west.latitude,
              bounds.north_east.longitude, bounds.north_east.latitude)
    ok &= v.check(box.west < box.east, f"{field}.north_east.longitude", "must be east of south_west.longitude")
    ok &= v.check(box.south < box.north, f"{field}.north_east.latitude", "must be north of south_west.latitude")
    if ok:
        ok &= v.check(box.east - box.west <= MAX_SPAN_DEGREES and box.north - box.south <= MAX_SPAN_DEGREES,
                      field, f"must span at most {MAX_SPAN_DEGREES:g} degrees each way")
    return box if ok else None


def active_cases(conn, *, box: Box | None = None, station_ids=(), levels=None, limit: int = MAX_CASES):
    q = select(cases).where(cases.c.status.in_(ACTIVE_STATUSES))
    if box is not None:
        q = q.where(cases.c.lon.between(box.west, box.east), cases.c.lat.between(box.south, box.north))
    if station_ids:
        q = q.where(cases.c.station_id.in_(list(station_ids)))
    if levels:
        q = q.where(cases.c.level.in_(list(levels)))
    q = q.order_by(cases.c.create_time.desc(), cases.c.id.desc()).limit(limit)
    return [_to_case(r, []) for r in conn.execute(q)]


def units_in(conn, *, box: Box | None, station_id: str = "", at, stale_before, limit: int = MAX_UNITS):
    """Units on duty (by the roster) at `at`."""
    q = select(units, on_duty_at(at).label("on_duty")).where(on_duty_at(at))
    if box is not None:
        q = q.where(units.c.lon.between(box.west, box.east), units.c.lat.between(box.south, box.north))
    if station_id:
        q = q.where(units.c.station_id == station_id)
    return [_to_unit(r, stale_before) for r in conn.execute(q.order_by(units.c.unit_id).limit(limit))]


def situation(conn, *, box: Box | None, station_id: str, at, stale_before) -> pb.Situation:
    from .caseinfo import fill

    found = active_cases(conn, box=box, station_ids=[station_id] if station_id else (), limit=MAX_CASES + 1)
    on_duty = units_in(conn, box=box, station_id=station_id, at=at, stale_before=stale_before,
                       limit=MAX_UNITS + 1)
    shown_cases, shown_units = found[:MAX_CASES], on_duty[:MAX_UNITS]
    case_counts: dict[str, Counter] = {}
    unit_counts: dict[str, Counter] = {}
    for c in shown_cases:
        case_counts.setdefault(c.station_id, Counter())["CASE_STATUS_" + c.status] += 1
    for u in shown_units:
        unit_counts.setdefault(u.station_id, Counter())["UNIT_STATUS_" + u.status] += 1
    stations = [pb.StationSituation(station_id=s, cases_by_status=dict(case_counts.get(s, {})),
                                    units_by_status=dict(unit_counts.get(s, {})))
                for s in sorted(set(case_counts) | set(unit_counts))]
    return pb.Situation(cases=fill(conn, [case_to_pb(c) for c in shown_cases]),
                        units=[unit_to_pb(u) for u in shown_units], stations=stations,
                        cases_truncated=len(found) > MAX_CASES, units_truncated=len(on_duty) > MAX_UNITS)
