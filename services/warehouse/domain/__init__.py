"""The incident warehouse (警情数据大水库): a report's fact row, what it adds to the rollups, and the
windows the analytics read.

Pure: no database, gRPC or protobuf. A fact is one report with its outcome, as intake, dispatch and
referral tell it; its `measures` are what it contributes to the hour x station x type rollup, its
cell keys what it contributes to the day (and month) x H3 cell x type rollups. An update of a fact
moves its contribution: the old one is taken away at the old keys, the new one added at the new
keys (`rollup_changes`), so the rollups stay equal to a GROUP BY over the facts.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta, timezone

import h3

CITY_TIME = timezone(timedelta(hours=8))  # China Standard Time: the city's days, weeks and months
RESOLUTIONS = (7, 8, 9)
HEAT_RESOLUTION = 8  # the cells of the day x cell rollup
ANSWER_TARGET = timedelta(seconds=3)  # 3 秒接警
HAND_OFF_TARGET = timedelta(seconds=30)  # 30 秒派警
DEFAULT_ARRIVAL_TARGET_S = 300  # the outer ring of the 1-3-5 minute circle
SATISFIED = frozenset({"SATISFIED", "BASICALLY_SATISFIED"})
# Partitions of the fact table created ahead of the current month by the maintenance job.
MONTHS_AHEAD = 3

# The rollups with every measure (KPIs, trends): hour and city day x station x type.
MEASURE_ROLLUPS = ("hourly", "daily")
CELL_ROLLUPS = ("daily_cells", "monthly_cells", "daily_cell_totals", "monthly_cell_totals")
MEASURES = ("reports", "answered", "answered_3s", "handed_off", "handed_off_30s", "arrived",
            "arrived_on_target", "repeats", "rated", "satisfied", "referred", "closed")


@dataclass(frozen=True)
class Outcome:
    """What dispatch or referral tells of a report's handling; None/False for what it does not say."""

    report: str
    hand_off_time: datetime | None = None
    arrival_time: datetime | None = None
    close_time: datetime | None = None
    arrival_target_s: int | None = None
    referred: bool = False
    dispatch_case: str = ""
    work_order: str = ""

    def merged_with(self, later: "Outcome") -> "Outcome":
        """This outcome with what a later one says on top."""
        return Outcome(
            report=self.report,
            hand_off_time=later.hand_off_time or self.hand_off_time,
            arrival_time=later.arrival_time or self.arrival_time,
            close_time=later.close_time or self.close_time,
            arrival_target_s=later.arrival_target_s or self.arrival_target_s,
            referred=self.referred or later.referred,
            dispatch_case=later.dispatch_case or self.dispatch_case,
            work_order=later.work_order or self.work_order,
        )


@dataclass(frozen=True)
class ReportFact:
    """One report with its outcome: a row of the fact table."""

    report: str
    receive_time: datetime
    category: str = ""
    incident_type: str = ""
    priority: int = 0
    channel: str = ""
    station_id: str = ""
    grid_id: str = ""
    district_id: str = ""
    longitude: float | None = None
    latitude: float | None = None
    h3_r7: int | None = None
    h3_r8: int | None = None
    h3_r9: int | None = None
    answer_time: datetime | None = None
    hand_off_time: datetime | None = None
    arrival_time: datetime | None = None
    close_time: datetime | None = None
    arrival_target_s: int | None = None
    merged: bool = False
    referred: bool = False
    satisfaction: str = ""
    dispatch_case: str = ""
    work_order: str = ""
    update_time: datetime | None = None

    @classmethod
    def located(cls, *, longitude: float | None, latitude: float | None, **kw) -> "ReportFact":
        """A fact with its H3 cells at resolutions 7-9 worked out from the point (none without one)."""
        return cls(longitude=longitude, latitude=latitude, **cells_of(longitude, latitude), **kw)

    def with_outcome(self, o: Outcome) -> "ReportFact":
        """The fact with what dispatch or referral said of its handling."""
        return replace(
            self,
            hand_off_time=o.hand_off_time or self.hand_off_time,
            arrival_time=o.arrival_time or self.arrival_time,
            close_time=o.close_time or self.close_time,
            arrival_target_s=o.arrival_target_s or self.arrival_target_s,
            referred=self.referred or o.referred,
            dispatch_case=o.dispatch_case or self.dispatch_case,
            work_order=o.work_order or self.work_order,
        )

    def updated_by(self, newer: "ReportFact") -> "ReportFact":
        """Intake's newer view of the report, keeping the outcome other feeds gave that it lacks.

        The receive time (the partition key) stays the first one's.
        """
        kept = {f.name: getattr(self, f.name) for f in fields(self)}
        for f in fields(newer):
            value = getattr(newer, f.name)
            if f.name in ("report", "receive_time"):
                continue
            if f.name in ("merged",):
                kept[f.name] = value
            elif f.name == "referred":
                kept[f.name] = kept[f.name] or value
            elif value not in (None, ""):
                kept[f.name] = value
        return ReportFact(**kept)

    # -- what the fact adds to the rollups ------------------------------------------------------

    @property
    def hour(self) -> datetime:
        return self.receive_time.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)

    @property
    def day(self) -> date:
        return self.receive_time.astimezone(CITY_TIME).date()

    @property
    def month(self) -> date:
        return self.day.replace(day=1)

    def measures(self) -> dict[str, int]:
        """What this fact adds to its hour x station x type rollup row."""
        answered = self.answer_time is not None
        handed_off = self.hand_off_time is not None
        arrived = self.arrival_time is not None
        target = timedelta(seconds=self.arrival_target_s or DEFAULT_ARRIVAL_TARGET_S)
        hand_off_from = self.answer_time or self.receive_time
        return {
            "reports": 1,
            "answered": int(answered),
            "answered_3s": int(answered and self.answer_time - self.receive_time <= ANSWER_TARGET),
            "handed_off": int(handed_off),
            "handed_off_30s": int(handed_off and self.hand_off_time - hand_off_from <= HAND_OFF_TARGET),
            "arrived": int(arrived),
            "arrived_on_target": int(arrived and self.arrival_time - self.receive_time <= target),
            "repeats": int(self.merged),
            "rated": int(bool(self.satisfaction)),
            "satisfied": int(self.satisfaction in SATISFIED),
            "referred": int(self.referred),
            "closed": int(self.close_time is not None),
        }

    def hour_key(self) -> tuple[datetime, str, str]:
        return self.hour, self.station_id, self.incident_type

    def day_key(self) -> tuple[date, str, str]:
        return self.day, self.station_id, self.incident_type

    def cell_keys(self) -> dict[str, tuple] | None:
        """The fact's row in each cell rollup at HEAT_RESOLUTION: (day | month, cell, station, type), and
        without the type for the heat maps of every type; None without a point."""
        if self.h3_r8 is None:
            return None
        return {"daily_cells": (self.day, self.h3_r8, self.station_id, self.incident_type),
                "monthly_cells": (self.month, self.h3_r8, self.station_id, self.incident_type),
                "daily_cell_totals": (self.day, self.h3_r8, self.station_id),
                "monthly_cell_totals": (self.month, self.h3_r8, self.station_id)}


@dataclass(frozen=True)
class RollupChange:
    """One row's worth of change to a rollup: add `delta` at `key` (negative numbers take away)."""

    rollup: str  # one of MEASURE_ROLLUPS or CELL_ROLLUPS
    key: tuple
    delta: dict[str, int] = field(default_factory=dict)


def rollup_changes(before: ReportFact | None, after: ReportFact) -> list[RollupChange]:
    """What moving a fact from `before` (None: new) to `after` does to the rollups; nothing when it
    changes nothing they count."""
    out: list[RollupChange] = []
    old = before.measures() if before else None
    new = after.measures()
    for rollup in MEASURE_ROLLUPS:
        new_key = after.hour_key() if rollup == "hourly" else after.day_key()
        old_key = None if before is None else before.hour_key() if rollup == "hourly" else before.day_key()
        if old_key != new_key:
            if old_key is not None:
                out.append(RollupChange(rollup, old_key, {k: -v for k, v in old.items()}))
            out.append(RollupChange(rollup, new_key, new))
        else:
            delta = {k: new[k] - old[k] for k in MEASURES if new[k] != old[k]}
            if delta:
                out.append(RollupChange(rollup, new_key, delta))
    old_cells = (before.cell_keys() if before else None) or {}
    new_cells = after.cell_keys() or {}
    for rollup in CELL_ROLLUPS:
        old_key, new_key = old_cells.get(rollup), new_cells.get(rollup)
        if old_key == new_key:
            continue
        if old_key is not None:
            out.append(RollupChange(rollup, old_key, {"reports": -1}))
        if new_key is not None:
            out.append(RollupChange(rollup, new_key, {"reports": 1}))
    return out


def cells_of(longitude: float | None, latitude: float | None) -> dict[str, int | None]:
    """The point's H3 cells at resolutions 7-9, as 64-bit integers."""
    if longitude is None or latitude is None:
        return {f"h3_r{r}": None for r in RESOLUTIONS}
    return {f"h3_r{r}": h3.str_to_int(h3.latlng_to_cell(latitude, longitude, r)) for r in RESOLUTIONS}


def cell_name(cell: int) -> str:
    return h3.int_to_str(cell)


def cell_center(cell: int) -> tuple[float, float]:
    """(longitude, latitude) of a cell's centre."""
    lat, lng = h3.cell_to_latlng(h3.int_to_str(cell))
    return lng, lat


def coarser(cell: int, resolution: int) -> int:
    return h3.str_to_int(h3.cell_to_parent(h3.int_to_str(cell), resolution))


def satisfaction_name(raw: str) -> str:
    """"SATISFACTION_SATISFIED" -> "SATISFIED"; "" for unspecified."""
    name = raw.removeprefix("SATISFACTION_")
    return "" if name in ("", "UNSPECIFIED") else name


# -- partitions (by month of receive time) -------------------------------------------------------

@dataclass(frozen=True)
class Partition:
    name: str
    start: datetime  # inclusive, UTC midnight of the month's first day
    end: datetime  # exclusive


def month_partition(t: datetime) -> Partition:
    """The fact table's partition holding a receive time. Months are UTC months: a partition's bounds
    stay fixed whatever the session's time zone."""
    t = t.astimezone(timezone.utc)
    start = datetime(t.year, t.month, 1, tzinfo=timezone.utc)
    end = datetime(t.year + (t.month == 12), t.month % 12 + 1, 1, tzinfo=timezone.utc)
    return Partition(f"report_facts_{start:%Y%m}", start, end)


def partitions_between(start: datetime, end: datetime) -> list[Partition]:
    """Every month partition from the one holding `start` to the one holding `end`."""
    out = [month_partition(start)]
    while out[-1].end <= end:
        out.append(month_partition(out[-1].end))
    return out


def partition_of_month(month: str) -> Partition:
    """The partition of a month written YYYY-MM (ValueError otherwise)."""
    t = datetime.strptime(month.strip(), "%Y-%m").replace(tzinfo=timezone.utc)
    return month_partition(t)


def partition_named(name: str) -> Partition:
    """The partition of a name report_facts_YYYYMM (ValueError otherwise)."""
    if not name.startswith("report_facts_"):
        raise ValueError(f"not a month partition: {name!r}")
    stamp = name.removeprefix("report_facts_")
    return partition_of_month(f"{stamp[:4]}-{stamp[4:]}")


def partitions_to_archive(attached: list[str], now: datetime, keep_months: int) -> list[Partition]:
    """The attached month partitions wholly older than the `keep_months` months before now's month."""
    horizon = month_partition(now).start
    for _ in range(keep_months):
        horizon = month_partition(horizon - timedelta(days=1)).start
    out = []
    for name in attached:
        try:
            p = partition_named(name)
        except ValueError:
            continue
        if p.end <= horizon:
            out.append(p)
    return sorted(out, key=lambda p: p.start)


def partitions_ahead(now: datetime, months: int = MONTHS_AHEAD) -> list[Partition]:
    """The current month's partition and the `months` after it: what the maintenance job keeps ready."""
    out = [month_partition(now)]
    for _ in range(months):
        out.append(month_partition(out[-1].end))
    return out


# -- windows --------------------------------------------------------------------------------------

GRANULARITIES = ("HOUR", "DAY", "WEEK")


def bucket_start(t: datetime, granularity: str) -> datetime:
    """The start of the city hour, day or week (Monday) holding `t`, in UTC."""
    local = t.astimezone(CITY_TIME)
    if granularity == "HOUR":
        local = local.replace(minute=0, second=0, microsecond=0)
    else:
        local = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if granularity == "WEEK":
            local -= timedelta(days=local.weekday())
    return local.astimezone(timezone.utc)


def bucket_step(granularity: str) -> timedelta:
    return {"HOUR": timedelta(hours=1), "DAY": timedelta(days=1), "WEEK": timedelta(weeks=1)}[granularity]


def aligned(start: datetime, end: datetime, granularity: str) -> tuple[datetime, datetime]:
    """The window rounded out to whole buckets."""
    first = bucket_start(start, granularity)
    last = bucket_start(end, granularity)
    if last < end:
        last += bucket_step(granularity)
    return first, last


def buckets(start: datetime, end: datetime, granularity: str) -> list[datetime]:
    step = bucket_step(granularity)
    out, t = [], start
    while t < end:
        out.append(t)
        t += step
    return out


def year_before(t: datetime) -> datetime:
    """The same moment a year before (同比); 29 February goes to 28 February."""
    local = t.astimezone(CITY_TIME)
    try:
        back = local.replace(year=local.year - 1)
    except ValueError:
        back = local.replace(year=local.year - 1, day=28)
    return back.astimezone(timezone.utc)


def same_bucket_last_year(t: datetime, granularity: str) -> datetime:
    """The bucket a year before: the same hour or day of the calendar, the week 52 weeks before."""
    if granularity == "WEEK":
        return t - timedelta(weeks=52)
    return year_before(t)


def change_ratio(now: int, before: int) -> float:
    """(now - before) / before, 0 when there was nothing before."""
    return (now - before) / before if before else 0.0


def share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def whole_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The city days [first, last) covering the window."""
    first = start.astimezone(CITY_TIME).date()
    last_local = end.astimezone(CITY_TIME)
    last = last_local.date()
    if last_local != datetime(last.year, last.month, last.day, tzinfo=CITY_TIME):
        last += timedelta(days=1)
    return first, last


def day_start(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=CITY_TIME).astimezone(timezone.utc)


def split_months(first: date, last: date) -> tuple[tuple[date, date] | None, list[tuple[date, date]]]:
    """Days [first, last) as whole months (first days of the months [from, to)) and the days outside them."""
    month_from = first if first.day == 1 else _next_month(first)
    month_to = last.replace(day=1)
    if month_from >= month_to:
        return None, [(first, last)]
    edges = [(first, month_from)] if first < month_from else []
    if month_to < last:
        edges.append((month_to, last))
    return (month_from, month_to), edges


def _next_month(d: date) -> date:
    return date(d.year + (d.month == 12), d.month % 12 + 1, 1)


def whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The whole UTC hours inside [start, end): (first, last), first >= start, last <= end."""
    first = start.replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(hours=1)
    last = end.replace(minute=0, second=0, microsecond=0)
    return first, max(first, last)
