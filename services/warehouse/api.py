"""WarehouseService gRPC servicer: validate, scope to the caller's jurisdiction, query the rollups, map.

A filter for a station or district outside the caller's jurisdiction is PERMISSION_DENIED
(OUT_OF_JURISDICTION); without one, a caller sees what its jurisdiction covers (a station's officer
their station, a district commander the district, command the city).
"""
from __future__ import annotations

from datetime import datetime, timedelta

import h3
from google.api import httpbody_pb2
from sampledata import city
from smart110.warehouse.v1 import warehouse_service_pb2 as pb
from smart110.warehouse.v1 import warehouse_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime
from services.runtime.db import read_snapshot
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.runtime.policy import current_jurisdiction, org
from services.runtime.timeutil import from_pb
from services.runtime.validation import Violations

from . import domain, mapping, parquet, queries
from .domain import exchange

MAX_BOX_DEGREES = 5.0
MAX_TYPES = 50
MAX_TOP = 100
DEFAULT_TOP = 10
DEFAULT_EXPORT_ROWS = 100_000
MAX_EXPORT_ROWS = 1_000_000
CSV_TYPE = "text/csv; charset=utf-8"
EXPORT_FORMATS = (pb.EXPORT_FORMAT_UNSPECIFIED, pb.EXPORT_FORMAT_CSV, pb.EXPORT_FORMAT_PARQUET)


def _window(v: Violations, start_pb, end_pb, *, max_days: int, start_field: str = "start_time",
            end_field: str = "end_time") -> tuple[datetime | None, datetime | None]:
    start, end = from_pb(start_pb), from_pb(end_pb)
    v.check(start is not None, start_field, "is required")
    v.check(end is not None, end_field, "is required")
    if start is not None and end is not None:
        if v.check(end > start, end_field, f"must be after {start_field}"):
            v.check(end - start <= timedelta(days=max_days), end_field,
                    f"the window may be at most {max_days} days")
    return start, end


def _box(v: Violations, box, field: str, *, required: bool) -> tuple[float, float, float, float] | None:
    sw, ne = box.south_west, box.north_east
    given = any((sw.longitude, sw.latitude, ne.longitude, ne.latitude))
    if not given:
        if required:
            v.add(field, "is required: south_west and north_east corners")
        return None
    ok = v.check(-180 <= sw.longitude <= 180 and -180 <= ne.longitude <= 180, f"{field}.longitude",
                 "must be within -180..180")
    ok = v.check(-90 <= sw.latitude <= 90 and -90 <= ne.latitude <= 90, f"{field}.latitude",
                 "must be within -90..90") and ok
    if not ok:
        return None
    if v.check(ne.longitude > sw.longitude and ne.latitude > sw.latitude, f"{field}.north_east",
               "must be north-east of south_west"):
        v.check(ne.longitude - sw.longitude <= MAX_BOX_DEGREES and ne.latitude - sw.latitude <= MAX_BOX_DEGREES,
                field, f"may be at most {MAX_BOX_DEGREES:g} degrees on a side")
    return sw.longitude, sw.latitude, ne.longitude, ne.latitude


def _types(v: Violations, types, field: str = "incident_types") -> tuple[str, ...]:
    out = tuple(t for t in types)
    v.check(len(out) <= MAX_TYPES, field, f"at most {MAX_TYPES} types")
    v.check(all(t and len(t) <= 40 and t.replace("_", "").isalnum() and t.isascii() for t in out), field,
            "each must be an incident type code such as FIGHT")
    return out


def _area(v: Violations, station_id: str, district_id: str) -> tuple[str, str]:
    directory = org()
    if station_id and district_id:
        v.add("district_id", "give a station or a district, not both")
    if station_id:
        v.check(directory.knows_station(station_id), "station_id", "is not a station of this city")
    if district_id:
        v.check(directory.knows_district(district_id), "district_id", "is not a district of this city")
    return station_id, district_id


_GRID_STATIONS = {g.grid_id: g.station_id for g in city.grids()}


def _cell(v: Violations, cell: str, field: str = "cell") -> tuple[int, int] | None:
    """(resolution, cell) of an H3 cell given in hexadecimal, resolution 7 to 9."""
    if not cell:
        return None
    if not v.check(len(cell) <= 20 and h3.is_valid_cell(cell), field, "is not an H3 cell (hexadecimal)"):
        return None
    resolution = h3.get_resolution(cell)
    if not v.check(resolution in domain.RESOLUTIONS, field, "must be of resolution 7, 8 or 9"):
        return None
    return resolution, h3.str_to_int(cell)


def _limit(v: Violations, value: int, *, default: int, most: int, field: str = "limit") -> int:
    v.check(0 <= value <= most, field, f"must be within 0..{most} (0 for the default, {default})")
    return value or default


def _stations(station_id: str, district_id: str) -> frozenset[str] | None:
    """The stations a read covers: None for the whole city, refusing what the caller may not see."""
    j = current_jurisdiction()
    if district_id:
        wanted = org().stations_of(district_id)
        if j.everything:
            return wanted
        if not wanted <= j.stations:
            raise PermissionDenied(f"district {district_id} is outside your jurisdiction",
                                   reason="OUT_OF_JURISDICTION", metadata={"field": "district_id"})
        return wanted
    return j.stations_for(station_id)


class WarehouseServicer(pb_grpc.WarehouseServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt

    def GetHeatMap(self, request, context):
        v = Violations()
        box = _box(v, request.box, "box", required=True)
        start, end = _window(v, request.start_time, request.end_time, max_days=3 * 366)
        types = _types(v, request.incident_types)
        resolution = request.resolution or domain.HEAT_RESOLUTION
        v.check(resolution in (7, 8), "resolution", "must be 8 (default) or 7")
        station_id, _ = _area(v, request.station_id, "")
        v.raise_if_any()
        stations = _stations(station_id, "")
        first, last = domain.whole_days(start, end)
        with read_snapshot(self.rt.engine) as conn:
            cells = queries.heat_map(conn, box=box, first=first, last=last, types=types, stations=stations,
                                     resolution=resolution)
        return mapping.heat_map_to_pb(cells, resolution=resolution, start=domain.day_start(first),
                                      end=domain.day_start(last))

    def GetTrend(self, request, context):
        v = Violations()
        start, end = _window(v, request.start_time, request.end_time, max_days=3 * 366)
        types = _types(v, request.incident_types)
        granularity = mapping.GRANULARITY_OF.get(request.granularity or pb.GRANULARITY_DAY)
        v.check(granularity is not None, "granularity", "must be GRANULARITY_HOUR, _DAY or _WEEK")
        station_id, district_id = _area(v, request.station_id, request.district_id)
        if granularity and start and end and end > start:
            a, b = domain.aligned(start, end, granularity)
            v.check((b - a) / domain.bucket_step(granularity) <= 2000, "granularity",
                    "the window holds more than 2000 buckets of this size")
        v.raise_if_any()
        stations = _stations(station_id, district_id)
        with read_snapshot(self.rt.engine) as conn:
            result = queries.trend(conn, start=start, end=end, granularity=granularity, types=types,
                                   stations=stations)
        return mapping.trend_to_pb(result)

    def GetStationKpis(self, request, context):
        v = Violations()
        start, end = _window(v, request.start_time, request.end_time, max_days=3 * 366)
        station_id, district_id = _area(v, request.station_id, request.district_id)
        v.raise_if_any()
        stations = _stations(station_id, district_id)
        first, last = (domain.bucket_start(start, "HOUR"), domain.aligned(start, end, "HOUR")[1])
        with read_snapshot(self.rt.engine) as conn:
            counts = queries.kpi_counts(conn, start=first, end=last, stations=stations)
        if not station_id and not district_id and stations is not None and len(stations) == 1:
            station_id = next(iter(stations))  # a station's people: their station
        district = district_id or (org().district_of.get(station_id, "") if station_id else "")
        return mapping.kpis_to_pb(counts, station_id=station_id, district_id=district, start=first, end=last)

    def CheckThreshold(self, request, context):
        v = Violations()
        start, end = _window(v, request.start_time, request.end_time, max_days=31)
        types = _types(v, request.incident_types)
        station_id, district_id = _area(v, request.station_id, request.district_id)
        box = _box(v, request.box, "box", required=False)
        grid_station = _GRID_STATIONS.get(request.grid_id, "")
        if request.grid_id:
            v.check(bool(grid_station), "grid_id", "is not a grid of this city")
        cell = _cell(v, request.cell)
        given = [f for f, on in (("station_id", station_id), ("district_id", district_id), ("box", box is not None),
                                 ("grid_id", request.grid_id), ("cell", request.cell)) if on]
        if len(given) > 1:
            v.add(given[-1], "give one area at most: a station, a district, a box, a grid or a cell")
        v.check(request.threshold >= 0, "threshold", "must not be negative")
        v.raise_if_any()
        # A grid is its station's: the caller must see that station.
        stations = _stations(station_id or grid_station, district_id)
        with read_snapshot(self.rt.engine) as conn:
            count = queries.threshold_count(conn, start=start, end=end, types=types, stations=stations, box=box,
                                            grid=request.grid_id, cell=cell, counted_only=request.counted_only)
        return pb.ThresholdCheck(count=count, threshold=request.threshold,
                                 exceeded=request.threshold > 0 and count >= request.threshold)

    def GetTopTypes(self, request, context):
        v = Violations()
        start, end = _window(v, request.start_time, request.end_time, max_days=3 * 366)
        station_id, district_id = _area(v, request.station_id, request.district_id)
        box = _box(v, request.box, "box", required=False)
        if box is not None and (station_id or district_id):
            v.add("box", "give a station, a district or a box, not more than one")
        limit = _limit(v, request.limit, default=DEFAULT_TOP, most=MAX_TOP)
        v.raise_if_any()
        stations = _stations(station_id, district_id)
        first, last = domain.whole_days(start, end)
        with read_snapshot(self.rt.engine) as conn:
            counts = queries.type_counts(conn, first=first, last=last, stations=stations, box=box)
        return mapping.top_types_to_pb(counts, limit=limit, start=domain.day_start(first),
                                       end=domain.day_start(last))

    def GetTopPlaces(self, request, context):
        v = Violations()
        start, end = _window(v, request.start_time, request.end_time, max_days=3 * 366)
        station_id, district_id = _area(v, request.station_id, request.district_id)
        box = _box(v, request.box, "box", required=False)
        types = _types(v, request.incident_types)
        resolution = request.resolution or domain.HEAT_RESOLUTION
        v.check(resolution in (7, 8), "resolution", "must be 8 (default) or 7")
        limit = _limit(v, request.limit, default=DEFAULT_TOP, most=MAX_TOP)
        v.raise_if_any()
        stations = _stations(station_id, district_id)
        first, last = domain.whole_days(start, end)
        with read_snapshot(self.rt.engine) as conn:
            cells = queries.heat_map(conn, box=box, first=first, last=last, types=types, stations=stations,
                                     resolution=resolution)
        return mapping.top_places_to_pb(cells, limit=limit, resolution=resolution, start=domain.day_start(first),
                                        end=domain.day_start(last))

    def ExportReports(self, request, context):
        """The slice as CSV or Parquet chunks (exchange layout); refused whole, before any row, when it is
        too large."""
        v = Violations()
        start, end = _window(v, request.start_time, request.end_time, max_days=366)
        station_id, district_id = _area(v, request.station_id, request.district_id)
        types = _types(v, request.incident_types)
        v.check(not request.category or request.category in exchange.CATEGORIES, "category",
                "must be one of " + ", ".join(exchange.CATEGORIES))
        limit = _limit(v, request.limit, default=DEFAULT_EXPORT_ROWS, most=MAX_EXPORT_ROWS)
        v.check(request.format in EXPORT_FORMATS, "format", "must be EXPORT_FORMAT_CSV (default) or _PARQUET")
        v.raise_if_any()
        stations = _stations(station_id, district_id)
        where = dict(start=start, end=end, types=types, stations=stations, category=request.category)
        with read_snapshot(self.rt.engine) as conn:
            if queries.slice_exceeds(conn, limit=limit, **where):
                raise FailedPrecondition(
                    f"the slice holds more than {limit} reports: narrow the window or the filters, or raise "
                    f"limit (at most {MAX_EXPORT_ROWS})", reason="SLICE_TOO_LARGE",
                    metadata={"field": "limit", "limit": str(limit)})
            if request.format == pb.EXPORT_FORMAT_PARQUET:
                rows = queries.export_rows(conn, header=exchange.HEADER, batch=parquet.ROW_GROUP, **where)
                for chunk in parquet.stream(parquet.export_schema(exchange.HEADER), rows):
                    yield httpbody_pb2.HttpBody(content_type=parquet.CONTENT_TYPE, data=chunk)
                return
            for chunk in queries.export_csv(conn, header=exchange.HEADER, **where):
                yield httpbody_pb2.HttpBody(content_type=CSV_TYPE, data=chunk)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)
