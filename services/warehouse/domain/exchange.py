"""The warehouse's CSV layout for reports (报警记录交换格式): what ExportReports writes and
`python -m services.warehouse load --from-csv FILE` imports, so a history exported from an existing 110
system in this layout, or a slice exported here, loads through the bulk load's COPY path.

RFC 4180 CSV in UTF-8 (a BOM is allowed), a header line naming the columns (any order; the optional ones
may be left out), then one line per report. Times are ISO 8601 with an offset
(`2026-03-10T10:00:00+08:00`, or `Z`); a time without an offset is refused, not guessed. Empty means
unknown. No column holds personal data (no caller name, phone or address text): the fact table keeps none.

`parse_row` checks one line against the city (stations, grids, the incident type codes) and turns it into
a fact row, or says which fields are wrong; the loader reports a bad line with its line number and skips
it (see services/warehouse/seed.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from sampledata import city

from . import ReportFact

# (column, required, what it holds) — the README's table is this one.
COLUMNS = (
    ("report_id", True, "the report's id in the exporting system (at most 80 characters; not checked for "
                        "uniqueness: import a file once)"),
    ("receive_time", True, "when the report was received (接警时间)"),
    ("category", True, "POLICE, NON_POLICE, CONSULTATION or INVALID (警情类别)"),
    ("incident_type", True, "the incident type code of the city's taxonomy, e.g. FIGHT (警情类型)"),
    ("priority", False, "1 (highest) to 4; empty for none"),
    ("channel", False, "PHONE, SMS, WECHAT, WEIBO, QQ, APP, MINI_PROGRAM, KIOSK, VIDEO, SILENT_ALARM"),
    ("station_id", True, "the station the report belongs to (派出所), e.g. S01"),
    ("grid_id", False, "the grid (网格) of the station the place lies in"),
    ("district_id", False, "the station's district; when given it must be the station's"),
    ("longitude", False, "WGS-84 degrees of the incident place; with latitude, or both empty"),
    ("latitude", False, "WGS-84 degrees"),
    ("answer_time", False, "when the call was answered (接听)"),
    ("hand_off_time", False, "when it was handed off to an officer (派警)"),
    ("arrival_time", False, "when the police arrived on scene (到场)"),
    ("close_time", False, "when the case was closed (结案)"),
    ("merged", False, "true if merged into an earlier report of the same incident (重复报警)"),
    ("referred", False, "true if referred to 12345 (转办)"),
    ("satisfaction", False, "SATISFIED, BASICALLY_SATISFIED, UNSATISFIED or empty (回访满意度)"),
)
HEADER = tuple(c for c, _, _ in COLUMNS)
REQUIRED = frozenset(c for c, required, _ in COLUMNS if required)
CATEGORIES = ("POLICE", "NON_POLICE", "CONSULTATION", "INVALID")
CHANNELS = frozenset({"PHONE", "SMS", "WECHAT", "WEIBO", "QQ", "APP", "MINI_PROGRAM", "KIOSK", "VIDEO",
                      "SILENT_ALARM"})
SATISFACTION = frozenset({"SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED"})
TRUE, FALSE = frozenset({"true", "t", "1", "yes"}), frozenset({"false", "f", "0", "no", ""})
NULL = "\\N"


@dataclass(frozen=True)
class BadRow:
    line: int
    problems: tuple[tuple[str, str], ...]  # (column, what is wrong)

    def __str__(self) -> str:
        return f"line {self.line}: " + "; ".join(f"{c} {why}" for c, why in self.problems)


@lru_cache(maxsize=1)
def _city():
    stations = {s.station_id: s.district_id for s in city.stations()}
    grids = {g.grid_id: (g.station_id, g.arrival_target_s) for g in city.grids()}
    types = {t.code: t.category for t in city.INCIDENT_TYPES.values()}
    return stations, grids, types


def header_problems(header: list[str] | None) -> list[str]:
    """What is wrong with a file's header line (empty when it will do)."""
    if not header:
        return ["the file is empty: a header line naming the columns is expected"]
    names = [h.strip() for h in header]
    out = [f"unknown column {n!r}" for n in names if n not in HEADER]
    out += [f"required column {c!r} is missing" for c in HEADER if c in REQUIRED and c not in names]
    out += [f"column {n!r} appears twice" for n in sorted({n for n in names if names.count(n) > 1})]
    return out


def _time(value: str, column: str, problems: list) -> datetime | None:
    if not value:
        return None
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        problems.append((column, "must be an ISO 8601 time with an offset, e.g. 2026-03-10T10:00:00+08:00"))
        return None
    if t.tzinfo is None:
        problems.append((column, "has no UTC offset (e.g. +08:00)"))
        return None
    return t.astimezone(timezone.utc)


def _number(value: str, column: str, low: float, high: float, problems: list) -> float | None:
    if not value:
        return None
    try:
        x = float(value)
    except ValueError:
        problems.append((column, "must be a number"))
        return None
    if not low <= x <= high:
        problems.append((column, f"must be within {low:g}..{high:g}"))
        return None
    return x


def parse_row(line: int, row: dict[str, str]) -> ReportFact | BadRow:
    """One line of the layout (column -> text) as a fact, or what is wrong with it."""
    stations, grids, types = _city()
    v = {k: (row.get(k) or "").strip() for k in HEADER}
    problems: list[tuple[str, str]] = []
    for c in sorted(REQUIRED):
        if not v[c]:
            problems.append((c, "is required"))
    rid = v["report_id"]
    if rid and (len(rid) > 80 or not rid.isprintable()):
        problems.append(("report_id", "must be at most 80 printable characters"))
    receive = _time(v["receive_time"], "receive_time", problems)
    category, kind = v["category"], v["incident_type"]
    if category and category not in CATEGORIES:
        problems.append(("category", "must be one of " + ", ".join(CATEGORIES)))
    if kind and kind not in types:
        problems.append(("incident_type", "is not an incident type code of the city's taxonomy"))
    elif kind and category in CATEGORIES and types[kind] != category:
        problems.append(("category", f"{kind} is a {types[kind]} type"))
    priority = 0
    if v["priority"]:
        if v["priority"].isdigit() and 1 <= int(v["priority"]) <= 4:
            priority = int(v["priority"])
        else:
            problems.append(("priority", "must be 1 to 4, or empty"))
    if v["channel"] and v["channel"] not in CHANNELS:
        problems.append(("channel", "is not a known channel"))
    station, grid, district = v["station_id"], v["grid_id"], v["district_id"]
    if station and station not in stations:
        problems.append(("station_id", "is not a station of this city"))
    elif station and district and stations[station] != district:
        problems.append(("district_id", f"is not the district of station {station}"))
    target = None
    if grid:
        if grid not in grids:
            problems.append(("grid_id", "is not a grid of this city"))
        elif station in stations and grids[grid][0] != station:
            problems.append(("grid_id", f"is not a grid of station {station}"))
        else:
            target = grids[grid][1]
    lng = _number(v["longitude"], "longitude", -180, 180, problems)
    lat = _number(v["latitude"], "latitude", -90, 90, problems)
    if (v["longitude"] == "") != (v["latitude"] == ""):
        problems.append(("latitude" if v["longitude"] else "longitude", "give longitude and latitude, or neither"))
    times = {c: _time(v[c], c, problems) for c in ("answer_time", "hand_off_time", "arrival_time", "close_time")}
    for c, t in times.items():
        if t is not None and receive is not None and t < receive:
            problems.append((c, "is before receive_time"))
    flags = {}
    for c in ("merged", "referred"):
        text = v[c].lower()
        if text not in TRUE | FALSE:
            problems.append((c, "must be true or false"))
        flags[c] = text in TRUE
    if v["satisfaction"] and v["satisfaction"] not in SATISFACTION:
        problems.append(("satisfaction", "must be SATISFIED, BASICALLY_SATISFIED, UNSATISFIED or empty"))
    if problems:
        return BadRow(line, tuple(problems))
    return ReportFact.located(
        longitude=lng, latitude=lat, report=rid, receive_time=receive, category=category, incident_type=kind,
        priority=priority, channel=v["channel"], station_id=station, grid_id=grid, district_id=stations[station],
        arrival_target_s=target, merged=flags["merged"], referred=flags["referred"],
        satisfaction=v["satisfaction"], **times)


def _copy_text(value) -> str:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def copy_line(fact: ReportFact, columns: tuple[str, ...], load_id: int) -> str:
    """The fact as one line of COPY text in `columns` order (store.FACT_COLUMNS)."""
    return "\t".join(_copy_text(load_id if c == "load_id" else getattr(fact, c)) for c in columns) + "\n"
