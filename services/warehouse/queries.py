"""The warehouse's read side: heat maps, top types and places, trends, KPIs and threshold counts, from
the rollups; the export of a slice, from the facts.

Whole months of a heat map come from the month x cell rollup and the days around them from the
day x cell rollup; trends and KPIs from the hour x station x type rollup. A threshold window to the
second takes its whole hours from the hourly rollup and the minutes at either end from the fact table
(two partitions at most, narrowed by the BRIN index). `stations` None means every station (the
caller sees the whole city); otherwise only those stations' rows count.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timezone

import psycopg
from sqlalchemy import text

from sampledata import city

from . import domain
from .domain import CITY_TIME, MEASURES

S = "warehouse"


def _filters(params: dict, *, types, stations, box=None, lng="longitude", lat="latitude") -> str:
    sql = ""
    if types:
        sql += " AND incident_type = ANY(:types)"
        params["types"] = list(types)
    if stations is not None:
        sql += " AND station_id = ANY(:stations)"
        params["stations"] = sorted(stations)
    if box is not None:
        sql += f" AND {lng} BETWEEN :west AND :east AND {lat} BETWEEN :south AND :north"
        params.update(west=box[0], south=box[1], east=box[2], north=box[3])
    return sql


def _cell_rows(conn, *, first: date, last: date, types=(), stations=None, box=None,
               by: str = "cell") -> list[tuple]:
    """(key, reports) summed over city days [first, last) from the cell rollups: whole months from the
    month x cell rollup, the days around them from the day x cell one. `by` is "cell" or "incident_type"
    (the typed rollups)."""
    months, edges = domain.split_months(first, last)
    parts, params = [], {}
    where = _filters(params, types=types, stations=stations, box=box)
    # Without a type filter, the rollups of every type: one row per cell and station, not per type too.
    monthly, daily = (("rollup_monthly_cells", "rollup_daily_cells") if types or by != "cell"
                      else ("rollup_monthly_cell_totals", "rollup_daily_cell_totals"))
    if months is not None:
        params.update(m0=months[0], m1=months[1])
        parts.append(f"SELECT {by} AS k, reports FROM {S}.{monthly} WHERE month >= :m0 AND month < :m1{where}")
    for i, (d0, d1) in enumerate(edges):
        params.update({f"d{i}0": d0, f"d{i}1": d1})
        parts.append(f"SELECT {by} AS k, reports FROM {S}.{daily} WHERE day >= :d{i}0 AND day < :d{i}1{where}")
    if not parts:
        return []
    return conn.execute(text(f"SELECT k, sum(reports) FROM ({' UNION ALL '.join(parts)}) c "
                             f"GROUP BY k HAVING sum(reports) > 0"), params).all()


def heat_map(conn, *, box: tuple[float, float, float, float] | None, first: date, last: date, types=(),
             stations=None, resolution: int = domain.HEAT_RESOLUTION) -> list[tuple[int, int]]:
    """(cell, reports) for city days [first, last) in the box (west, south, east, north; None for
    anywhere), most first."""
    rows = _cell_rows(conn, first=first, last=last, types=types, stations=stations, box=box)
    counts: dict[int, int] = defaultdict(int)
    for cell, n in rows:
        counts[cell if resolution == domain.HEAT_RESOLUTION else domain.coarser(cell, resolution)] += int(n)
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


def type_counts(conn, *, first: date, last: date, stations=None, box=None) -> list[tuple[str, int]]:
    """(incident type, reports) for city days [first, last), most first: from the day x station x type
    rollup, or with a box from the cell x type rollups (located reports only)."""
    if box is not None:
        rows = _cell_rows(conn, first=first, last=last, stations=stations, box=box, by="incident_type")
    else:
        params = {"d0": first, "d1": last}
        where = _filters(params, types=(), stations=stations)
        rows = conn.execute(text(
            f"SELECT incident_type, sum(reports) FROM {S}.rollup_daily WHERE day >= :d0 AND day < :d1{where} "
            f"GROUP BY 1 HAVING sum(reports) > 0"), params).all()
    return sorted(((k, int(n)) for k, n in rows), key=lambda kv: (-kv[1], kv[0]))


_TRUNC = {"HOUR": "hour", "DAY": "day", "WEEK": "week"}


def counts_by_bucket(conn, *, start: datetime, end: datetime, granularity: str, types=(),
                     stations=None) -> dict[datetime, int]:
    """Reports per city hour / day / week (bucket start in UTC) over [start, end): whole hours for
    HOUR (the hourly rollup), whole city days for DAY and WEEK (the daily rollup)."""
    params = {"g": _TRUNC[granularity]}
    where = _filters(params, types=types, stations=stations)
    if granularity == "HOUR":
        params.update(a=start, b=end)
        sql = (f"SELECT date_trunc(:g, hour AT TIME ZONE 'Asia/Shanghai') AS b, sum(reports) FROM {S}.rollup_hourly "
               f"WHERE hour >= :a AND hour < :b{where} GROUP BY 1")
    else:
        params.update(a=start.astimezone(CITY_TIME).date(), b=end.astimezone(CITY_TIME).date())
        sql = (f"SELECT date_trunc(:g, day) AS b, sum(reports) FROM {S}.rollup_daily "
               f"WHERE day >= :a AND day < :b{where} GROUP BY 1")
    rows = conn.execute(text(sql), params).all()
    return {datetime(b.year, b.month, b.day, b.hour, tzinfo=CITY_TIME).astimezone(timezone.utc): int(n)
            for b, n in rows}


@dataclass(frozen=True)
class Bucket:
    start: datetime
    count: int
    last_year_count: int
    previous_count: int


@dataclass(frozen=True)
class TrendResult:
    granularity: str
    start: datetime
    end: datetime
    buckets: list[Bucket]
    total: int
    last_year_total: int
    previous_total: int


def trend(conn, *, start: datetime, end: datetime, granularity: str, types=(), stations=None) -> TrendResult:
    """Buckets of the window (aligned to whole buckets) with 同比 and 环比, in two reads of the rollup:
    this window with the one of the same length before it, and the same window a year before."""
    start, end = domain.aligned(start, end, granularity)
    step = domain.bucket_step(granularity)
    span = end - start
    now = counts_by_bucket(conn, start=start - span, end=end, granularity=granularity, types=types,
                           stations=stations)
    ly_start = domain.same_bucket_last_year(start, granularity)
    ly_end = domain.same_bucket_last_year(end, granularity)
    last_year = counts_by_bucket(conn, start=ly_start, end=ly_end, granularity=granularity, types=types,
                                 stations=stations)
    out = []
    for b in domain.buckets(start, end, granularity):
        ly = domain.same_bucket_last_year(b, granularity)
        ly = domain.bucket_start(ly, granularity)
        out.append(Bucket(b, now.get(b, 0), last_year.get(ly, 0), now.get(b - step, 0)))
    return TrendResult(
        granularity=granularity, start=start, end=end, buckets=out, total=sum(b.count for b in out),
        last_year_total=sum(last_year.values()),
        previous_total=sum(n for t, n in now.items() if start - span <= t < start))


def kpi_counts(conn, *, start: datetime, end: datetime, stations=None) -> dict[str, int]:
    """The measures summed over whole hours [start, end): the whole city days inside from the daily
    rollup, the hours around them from the hourly one."""
    first_day = domain.bucket_start(start, "DAY")
    if first_day < start:
        first_day += domain.bucket_step("DAY")
    last_day = domain.bucket_start(end, "DAY")
    parts, params = [], {}
    where = _filters(params, types=(), stations=stations)
    sums = ", ".join(f"{m}" for m in MEASURES)
    if first_day < last_day:
        params.update(d0=first_day.astimezone(CITY_TIME).date(), d1=last_day.astimezone(CITY_TIME).date())
        parts.append(f"SELECT {sums} FROM {S}.rollup_daily WHERE day >= :d0 AND day < :d1{where}")
        hours = [(start, first_day), (last_day, end)]
    else:
        hours = [(start, end)]
    for i, (a, b) in enumerate(h for h in hours if h[0] < h[1]):
        params.update({f"h{i}0": a, f"h{i}1": b})
        parts.append(f"SELECT {sums} FROM {S}.rollup_hourly WHERE hour >= :h{i}0 AND hour < :h{i}1{where}")
    if not parts:
        return {m: 0 for m in MEASURES}
    row = conn.execute(text(
        f"SELECT {', '.join(f'coalesce(sum({m}), 0)' for m in MEASURES)} FROM ({' UNION ALL '.join(parts)}) k"),
        params).one()
    return {m: int(v) for m, v in zip(MEASURES, row)}


_INVALID_TYPES = sorted(k for k, c in {t.code: t.category for t in city.INCIDENT_TYPES.values()}.items()
                       if c == "INVALID")


def threshold_count(conn, *, start: datetime, end: datetime, types=(), stations=None,
                    box: tuple[float, float, float, float] | None = None, grid: str = "",
                    cell: tuple[int, int] | None = None, counted_only: bool = False) -> int:
    """Reports received in [start, end) to the second. A box, a grid or a cell ((resolution, cell)) is
    counted from the facts (BRIN on the window); otherwise whole hours come from the hourly rollup.
    `counted_only`: not merged, classified and not invalid (the rollup has no category: the invalid
    types of the taxonomy stand for it)."""
    area = dict(box=box, grid=grid, cell=cell, counted_only=counted_only)
    if box is not None or grid or cell is not None:
        return _fact_count(conn, start, end, types=types, stations=stations, **area)
    first, last = domain.whole_hours(start, end)
    if first >= last:
        return _fact_count(conn, start, end, types=types, stations=stations, **area)
    params = {"a": first, "b": last}
    where = _filters(params, types=types, stations=stations)
    measure = "reports"
    if counted_only:
        measure = "reports - repeats"
        where += " AND incident_type <> '' AND NOT (incident_type = ANY(:invalid))"
        params["invalid"] = _INVALID_TYPES
    hours = conn.execute(text(f"SELECT coalesce(sum({measure}), 0) FROM {S}.rollup_hourly "
                              f"WHERE hour >= :a AND hour < :b{where}"), params).scalar()
    edges = 0
    if start < first:
        edges += _fact_count(conn, start, first, types=types, stations=stations, **area)
    if last < end:
        edges += _fact_count(conn, last, end, types=types, stations=stations, **area)
    return int(hours) + edges


def _fact_count(conn, start: datetime, end: datetime, *, types=(), stations=None, box=None, grid: str = "",
                cell: tuple[int, int] | None = None, counted_only: bool = False) -> int:
    params = {"a": start, "b": end}
    where = _filters(params, types=types, stations=stations, box=box)
    if grid:
        where += " AND grid_id = :grid"
        params["grid"] = grid
    if cell is not None:
        where += f" AND h3_r{int(cell[0])} = :cell"
        params["cell"] = cell[1]
    if counted_only:
        where += " AND NOT merged AND category <> '' AND category <> 'INVALID'"
    return int(conn.execute(text(f"SELECT count(*) FROM {S}.report_facts "
                                 f"WHERE receive_time >= :a AND receive_time < :b{where}"), params).scalar())


# -- the export (ExportReports): a slice of the fact table in the exchange layout ------------------

def _local(column: str) -> str:
    return (f"to_char({column} AT TIME ZONE 'Asia/Shanghai', 'YYYY-MM-DD\"T\"HH24:MI:SS\"+08:00\"')")


_EXPORT_SELECT = {
    "report_id": "report", "receive_time": _local("receive_time"), "category": "category",
    "incident_type": "incident_type", "priority": "NULLIF(priority, 0)", "channel": "channel",
    "station_id": "station_id", "grid_id": "grid_id", "district_id": "district_id", "longitude": "longitude",
    "latitude": "latitude", "answer_time": _local("answer_time"), "hand_off_time": _local("hand_off_time"),
    "arrival_time": _local("arrival_time"), "close_time": _local("close_time"),
    "merged": "CASE WHEN merged THEN 'true' ELSE 'false' END",
    "referred": "CASE WHEN referred THEN 'true' ELSE 'false' END", "satisfaction": "satisfaction",
}


def _slice_where(params: dict, *, start, end, types, stations, category) -> str:
    params.update(a=start, b=end)
    where = "receive_time >= :a AND receive_time < :b" + _filters(params, types=types, stations=stations)
    if category:
        where += " AND category = :category"
        params["category"] = category
    return where


def slice_exceeds(conn, *, start: datetime, end: datetime, types=(), stations=None, category: str = "",
                  limit: int) -> bool:
    """Whether the slice holds more than `limit` rows (reads at most limit + 1 of them)."""
    params = {"n": limit + 1}
    where = _slice_where(params, start=start, end=end, types=types, stations=stations, category=category)
    n = conn.execute(text(f"SELECT count(*) FROM (SELECT 1 FROM {S}.report_facts WHERE {where} LIMIT :n) s"),
                     params).scalar()
    return int(n) > limit


def export_csv(conn, *, start: datetime, end: datetime, types=(), stations=None, category: str = "",
               header: tuple[str, ...], chunk_bytes: int = 256 * 1024):
    """The slice as CSV (a header line, then receive-time order), in chunks of about `chunk_bytes`:
    COPY ... TO STDOUT on the caller's connection, so no row is held in Python for long."""
    params: dict = {}
    where = _slice_where(params, start=start, end=end, types=types, stations=stations, category=category)
    select = ", ".join(f"{_EXPORT_SELECT[c]} AS {c}" for c in header)
    stmt = text(f"SELECT {select} FROM {S}.report_facts WHERE {where} ORDER BY receive_time, report")
    # COPY takes no bind parameters: the driver quotes the values into the statement client-side.
    compiled = stmt.compile(dialect=conn.dialect)
    raw = conn.connection.dbapi_connection
    sql = psycopg.ClientCursor(raw).mogrify(compiled.string, {k: params[k] for k in compiled.params})
    buf = bytearray()
    with raw.cursor() as cur:
        with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, HEADER true, ENCODING 'UTF8')") as copy:
            for data in copy:
                buf += data
                if len(buf) >= chunk_bytes:
                    yield bytes(buf)
                    buf.clear()
    if buf:
        yield bytes(buf)


_EXPORT_TYPED = {**_EXPORT_SELECT, "receive_time": "receive_time", "answer_time": "answer_time",
                 "hand_off_time": "hand_off_time", "arrival_time": "arrival_time", "close_time": "close_time",
                 "merged": "merged", "referred": "referred"}


def export_rows(conn, *, start: datetime, end: datetime, types=(), stations=None, category: str = "",
                header: tuple[str, ...], batch: int):
    """The slice's rows as typed tuples in `header` order (times, numbers and flags as such, for
    Parquet), receive-time order, `batch` rows at a time from a server-side cursor."""
    params: dict = {}
    where = _slice_where(params, start=start, end=end, types=types, stations=stations, category=category)
    select = ", ".join(f"{_EXPORT_TYPED[c]} AS {c}" for c in header)
    result = conn.execute(text(f"SELECT {select} FROM {S}.report_facts WHERE {where} ORDER BY receive_time, report"),
                          params, execution_options={"stream_results": True, "yield_per": batch})
    for rows in result.partitions(batch):
        yield [tuple(r) for r in rows]
