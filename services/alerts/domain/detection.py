"""Detection: what the rules find in reports (keywords, volumes, anomalies, police-strength gaps),
in partners' risk signals and in scoring's enforcement warnings; and the heat map against the
cold map (警情热力图与警力冰点图). Plain values in, findings out: the counts come from the caller."""
from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .alerts import Finding
from .common import Area, cell_center, cell_of, disk, h3_cells, hour_of, max_level, window_text
from .keywords import strongest_by_rule
from .rules import Rule, RuleSet
from services.runtime.model import Box
from services.runtime.labels import incident_types_text

# Available units as (lon, lat, station_id), from dispatch.
UnitPosition = tuple[float, float, str]


# -- reports ----------------------------------------------------------------------

@dataclass
class Report:
    """What alerts needs of an intake report."""

    name: str
    description: str = ""
    station_id: str = ""
    grid_id: str = ""
    category: str = ""  # POLICE, ..., INVALID; "" not yet classified
    incident_type: str = ""
    merged_into: str = ""
    receive_time: datetime | None = None
    point: tuple[float, float] | None = None  # lon, lat
    address_text: str = ""
    # A border case's neighbouring stations (边界警情), as intake names them.
    shared_station_ids: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.name.split("/", 1)[1]

    @property
    def incident_name(self) -> str:
        """The incident the report is about: the master incident it was merged into, else itself."""
        return self.merged_into or self.name

    @property
    def counted(self) -> bool:
        """Whether it counts in windows and rollups: a duplicate merged into its master incident
        (重复警情) is the same incident, and an invalid call is none."""
        return self.category not in ("INVALID", "") and not self.merged_into


@dataclass
class Incident:
    """A report as recorded for windows, rollups and the heat map."""

    report_id: str
    receive_time: datetime
    station_id: str
    grid_id: str
    category: str
    incident_type: str
    merged_into: str
    lon: float | None
    lat: float | None
    cells: list[str]  # H3 cells at resolutions 6..10

    @classmethod
    def of(cls, report: Report, t: datetime) -> "Incident":
        lon, lat = report.point if report.point is not None else (None, None)
        return cls(report.id, t, report.station_id, report.grid_id, report.category, report.incident_type,
                   report.merged_into, lon, lat, h3_cells(lon, lat))


def rollup_keys(incident: Incident) -> list[tuple[str, str, str, datetime]]:
    """The hourly counts an incident adds one to: (area kind, area id, incident type or "", hour)."""
    hour = hour_of(incident.receive_time)
    areas = [("STATION", incident.station_id), ("GRID", incident.grid_id),
             ("H3", incident.cells[2] if incident.cells else "")]
    return [(kind, area, itype, hour) for kind, area in areas if area
            for itype in dict.fromkeys(("", incident.incident_type))]


def rule_area(rule: Rule, incident: Incident) -> Area | None:
    """The area of the rule's kind the incident lies in (None when it has none)."""
    kind = rule.area_kind or "STATION"
    station, grid, cells = incident.station_id, incident.grid_id, incident.cells
    if kind == "STATION":
        return Area("STATION", station, f"{station}辖区", station, grid) if station else None
    if kind == "GRID":
        return Area.grid(grid, station) if grid else None
    if not cells:
        return None
    return Area.cell(cells[(rule.h3_resolution or 8) - 6], station, grid)


def applies(rule: Rule, incident_type: str, area: Area | None) -> bool:
    if area is None:
        return False
    if rule.incident_types and incident_type not in rule.incident_types:
        return False
    return not rule.areas or area.id in rule.areas


def keyword_findings(report: Report, rules: RuleSet) -> list[Finding]:
    """Every keyword rule's strongest term in the report's text, one finding per rule.

    A keyword alert is about its incident: the report, or the master incident a repeat call was
    merged into (重复警情). A later, unrelated report with the same word is another incident and
    raises an alert of its own."""
    text = report.description
    findings = []
    for rule_id, hits in strongest_by_rule(rules.matcher.match(text)).items():
        rule = rules.keyword_rules[rule_id]
        area = (Area.grid(report.grid_id, report.station_id) if report.grid_id
                else Area.station(report.station_id))
        if rule.areas and area.id not in rule.areas and report.station_id not in rule.areas:
            continue
        if rule.incident_types and report.incident_type not in rule.incident_types:
            continue
        top = hits[0]
        terms = list(dict.fromkeys(h.term for h in hits))
        level = max_level(rule.level, top.spec.grade)
        if report.point is not None:
            area.center = report.point
        area.shared_station_ids = tuple(report.shared_station_ids)
        where = report.address_text or area.name
        findings.append(Finding(
            rule=rule, level=level, key=("incident", report.incident_name), area=area, subject=report.name,
            summary=f"{where}接报涉“{'、'.join(terms)}”警情：{text[:80]}",
            labels={"term": top.term, "incident_type": report.incident_type, "incident": report.incident_name},
            suggested_action=rule.suggested_action or "立即核实警情，按预案就近调派警力处置"))
    return findings


# -- volume ---------------------------------------------------------------------------

def volume_window(rule: Rule, t: datetime) -> tuple[datetime, datetime]:
    return t - timedelta(seconds=rule.window_s), t


def volume_finding(rule: Rule, report: Report, area: Area, count: int, t: datetime) -> Finding | None:
    """More than `threshold` reports in the area within the window."""
    if count <= rule.threshold:
        return None
    window = rule.window_s
    kinds = incident_types_text(rule.incident_types)
    return Finding(
        rule=rule, level=rule.level, key=(area.kind, area.id), area=area, subject=report.name,
        summary=f"{area.name}{window_text(window)}内接报{kinds}警情{count}起，超过阈值{rule.threshold:g}起",
        labels={"incident_type": report.incident_type, "window_count": str(count)},
        auto_resolve_time=t + timedelta(seconds=window))


# -- anomaly --------------------------------------------------------------------------

def anomaly(current: int, history: list[int], sigmas: float, min_count: int) -> tuple[bool, float, float]:
    """Whether `current` is far above the history of the same hour: (anomalous, mean, standard deviation).

    The deviation has a floor of 1 report so that a flat history (all zeros)
    does not turn every single report into an anomaly.
    """
    if not history:
        return False, 0.0, 0.0
    mean = sum(history) / len(history)
    std = math.sqrt(sum((h - mean) ** 2 for h in history) / len(history))
    return current >= min_count and current > mean + sigmas * max(std, 1.0), mean, std


def anomaly_area(rule: Rule, incident: Incident) -> Area | None:
    """Anomaly history is kept per station, grid and H3 cell at resolution 8."""
    area = rule_area(rule, incident)
    if area is not None and area.kind == "H3":
        area = Area.cell(incident.cells[2], incident.station_id, incident.grid_id)
    return area


@dataclass(frozen=True)
class AnomalyWindow:
    """The hour a report falls in and the same hour of past weeks."""

    hour: datetime
    history: list[datetime]
    min_count: int
    incident_types: list[str]  # [""]: every type

    @classmethod
    def of(cls, rule: Rule, t: datetime) -> "AnomalyWindow":
        hour = hour_of(t)
        weeks = int(rule.parameters.get("history_weeks", "4") or 4)
        return cls(hour, [hour - timedelta(weeks=k) for k in range(1, weeks + 1)],
                   int(rule.parameters.get("min_count", "5") or 5), list(rule.incident_types) or [""])

    @property
    def hours(self) -> list[datetime]:
        return [self.hour] + self.history

    def enough(self, counts: dict[datetime, int]) -> bool:
        """Whether the current hour has enough reports to be looked at against history at all."""
        return counts.get(self.hour, 0) >= self.min_count


def anomaly_finding(rule: Rule, report: Report, area: Area, window: AnomalyWindow, counts: dict[datetime, int],
                    first_hour: datetime | None) -> Finding | None:
    """This hour's reports far above the same hour of past weeks (since the area's first report:
    a new system has no history)."""
    current = counts.get(window.hour, 0)
    if current < window.min_count:
        return None
    history = [h for h in window.history if first_hour is not None and h >= first_hour]
    hit, mean, std = anomaly(current, [counts.get(h, 0) for h in history], rule.threshold, window.min_count)
    if not hit:
        return None
    return Finding(
        rule=rule, level=rule.level, key=(area.kind, area.id), area=area, subject=report.name,
        summary=(f"{area.name}{window.hour:%H}时接报警情{current}起，远高于近{len(history)}周同时段均值"
                 f"{mean:.1f}起（标准差{std:.1f}）"),
        labels={"incident_type": report.incident_type, "hour_count": str(current)},
        auto_resolve_time=window.hour + timedelta(hours=2))


# -- police strength ---------------------------------------------------------------------

@dataclass
class GapFinding:
    hot: list[tuple[str, int, int]]  # (cell, incidents, units) hottest first
    cold: list[tuple[str, int, int]]  # (cell, incidents, units) most units first


def strength_gap(cell: str, incidents: Counter, units: Counter, *, threshold: float, min_incidents: int,
                 ring: int = 1, cold_ring: int = 3) -> GapFinding | None:
    """Heat map against cold map (警情热力图与警力冰点图) around `cell`.

    The neighbourhood (the cell and its ring of neighbours) is hot when its
    incidents per available unit reach the threshold. Cold cells are those
    further out with units to spare and few incidents: where units can come
    from (警力跟着警情走).
    """
    near = disk(cell, ring)
    n_incidents = sum(incidents.get(c, 0) for c in near)
    n_units = sum(units.get(c, 0) for c in near)
    if n_incidents < min_incidents or n_incidents / max(n_units, 1) < threshold:
        return None
    hot = sorted(((c, incidents.get(c, 0), units.get(c, 0)) for c in near if incidents.get(c, 0)),
                 key=lambda x: (-x[1], x[2], x[0]))
    cold = []
    for c in disk(cell, cold_ring):
        if c in near:
            continue
        u = units.get(c, 0)
        if u and incidents.get(c, 0) / u < threshold / 2:
            cold.append((c, incidents.get(c, 0), u))
    cold.sort(key=lambda x: (-x[2], x[1], x[0]))
    return GapFinding(hot=hot, cold=cold[:5])


@dataclass(frozen=True)
class GapWindow:
    """Where and when a strength-gap rule counts around an incident."""

    resolution: int
    cell: str
    area: Area
    seconds: float
    ring: int
    cold_ring: int

    @classmethod
    def of(cls, rule: Rule, incident: Incident) -> "GapWindow":
        res = rule.h3_resolution or 8
        cell = incident.cells[res - 6]
        return cls(res, cell, Area.cell(cell, incident.station_id, incident.grid_id), rule.window_s or 3600,
                   int(rule.parameters.get("ring", "1") or 1), int(rule.parameters.get("cold_ring", "3") or 3))

    def applies(self, rule: Rule, incident: Incident) -> bool:
        return applies(rule, incident.incident_type, self.area) or bool(
            rule.areas and incident.station_id in rule.areas)

    @property
    def cells(self) -> list[str]:
        """Every cell the rule looks at: out to the cold ring."""
        return disk(self.cell, self.cold_ring)

    def since(self, t: datetime) -> datetime:
        return t - timedelta(seconds=self.seconds)


def gap_finding(rule: Rule, report: Report, window: GapWindow, incidents: Counter, units: list[UnitPosition],
                t: datetime) -> Finding | None:
    """Incidents outrun available units around the report's cell: which cells are hot, and which
    cold cells units can come from."""
    cell = window.cell
    unit_cells = Counter(cell_of(lon, lat, window.resolution) for lon, lat, *_ in units)
    found = strength_gap(cell, incidents, unit_cells, threshold=rule.threshold or 2.0,
                         min_incidents=int(rule.parameters.get("min_incidents", "3") or 3),
                         ring=window.ring, cold_ring=window.cold_ring)
    if found is None:
        return None
    n_inc = sum(x[1] for x in found.hot)
    n_units = sum(unit_cells.get(c, 0) for c in disk(cell, window.ring))
    hot_desc = "、".join(f"{c}（{i}起/{u}警力）" for c, i, u in found.hot[:3])
    if found.cold:
        cold_desc = "、".join(f"{c}（可用警力{u}个）" for c, _, u in found.cold[:3])
        action = f"警力跟着警情走：建议从冷区{cold_desc}抽调警力支援热区{found.hot[0][0]}"
    else:
        action = "周边无富余警力，建议请求上级调派增援"
    return Finding(
        rule=rule, level=rule.level, key=("H3", found.hot[0][0]), area=window.area, subject=report.name,
        summary=f"警力缺口：{window_text(window.seconds)}内热区{hot_desc}，周边共警情{n_inc}起、可用警力{n_units}个",
        labels={"incident_type": report.incident_type}, suggested_action=action,
        hot_cells=[c for c, _, _ in found.hot], cold_cells=[c for c, _, _ in found.cold],
        auto_resolve_time=t + timedelta(seconds=window.seconds))


# -- what the rules count, for one report ---------------------------------------------------

@dataclass(frozen=True)
class WindowCount:
    """A volume rule's count: counted incidents (valid, not merged) in the area within (start, end],
    of the incident types (all when empty). An H3 area is a cell at `resolution`."""

    area: Area
    resolution: int
    start: datetime
    incident_types: tuple[str, ...] = ()

    @property
    def key(self) -> tuple:
        """What tells two asks apart (an Area is not hashable)."""
        return ("W", self.area.kind, self.area.id, self.resolution, self.start, self.incident_types)


@dataclass(frozen=True)
class HourCounts:
    """An anomaly rule's hourly counts: the area's counts of those hours and incident types ("" counts
    every type), and, when the current `hour` has at least `min_count`, the area's first hour."""

    area: Area
    incident_types: tuple[str, ...]
    hours: tuple[datetime, ...]
    hour: datetime
    min_count: int

    @classmethod
    def of(cls, area: Area, window: "AnomalyWindow") -> "HourCounts":
        return cls(area, tuple(window.incident_types), tuple(window.hours), window.hour, window.min_count)

    @property
    def key(self) -> tuple:
        return ("H", self.area.kind, self.area.id, self.incident_types, self.hours)


@dataclass(frozen=True)
class CellCounts:
    """A strength-gap rule's counts: counted police incidents within (start, end] per cell of those
    cells at `resolution`, of the incident types (all when empty)."""

    resolution: int
    start: datetime
    cells: tuple[str, ...]
    incident_types: tuple[str, ...] = ()


@dataclass
class RuleCounts:
    """The counts asked for, in the order asked: one number per window; per hourly ask its counts
    by hour and the area's first hour (None when the current hour is below its minimum count, or the
    area has no history); per cells ask the incidents per cell."""

    windows: list[int] = field(default_factory=list)
    hours: list[tuple[dict[datetime, int], datetime | None]] = field(default_factory=list)
    cells: list[Counter] = field(default_factory=list)


# -- the heat map -------------------------------------------------------------------------



@dataclass(frozen=True)
class HeatCell:
    cell: str
    center: tuple[float, float]  # lon, lat
    incident_count: int
    available_units: int
    gap: float  # incidents per available unit (per 1 when none)
    station_id: str


def heat_map(incidents: list[tuple[str, str, int]], units: list[UnitPosition], *, resolution: int, station: str = "",
             bounds: Box | None = None) -> list[HeatCell]:
    """Incidents per cell (as counted: (cell, station, n)) against the available units in it,
    widest gap first. Units are taken from the station (when given) and within the bounds."""
    inc: Counter = Counter()
    cell_station: dict[str, str] = {}
    for cell, cell_station_id, n in incidents:
        inc[cell] += n
        cell_station.setdefault(cell, cell_station_id)
    free: Counter = Counter()
    for lon, lat, unit_station in units:
        if station and unit_station != station:
            continue
        if bounds is not None and not bounds.contains(lon, lat):
            continue
        cell = cell_of(lon, lat, resolution)
        free[cell] += 1
        cell_station.setdefault(cell, unit_station)
    cells = [HeatCell(cell, cell_center(cell), inc[cell], free[cell], inc[cell] / max(free[cell], 1),
                      cell_station.get(cell, "")) for cell in sorted(set(inc) | set(free))]
    cells.sort(key=lambda c: (-c.gap, c.cell))
    return cells


# -- partner signals -------------------------------------------------------------------------

@dataclass
class Place:
    point: tuple[float, float] | None = None  # lon, lat
    accuracy_m: float = 0.0
    source: str = ""  # GNSS, CELL, ...


@dataclass
class Signal:
    """A partner's risk signal (a bank's abnormal cash withdrawal, the anti-fraud centre's warning)."""

    source: str
    signal_type: str
    name: str = ""  # signals/{id}, set when stored
    external_id: str = ""
    location: Place | None = None
    address_text: str = ""
    person_masked: str = ""
    risk_score: float = 0.0
    description: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    observe_time: datetime | None = None
    receive_time: datetime | None = None
    alerts: list[str] = field(default_factory=list)
    station_id: str = ""

    @property
    def id(self) -> str:
        return self.name.split("/", 1)[1] if self.name else ""


# Partners' signal types in words, for the alert's text (an unknown type is shown as sent).
SIGNAL_TYPE_LABELS = {"ABNORMAL_CASH_WITHDRAWAL": "异常大额取现", "FRAUD_VICTIM_WARNING": "疑似电信诈骗受害人预警"}


def signal_findings(rules: list[Rule], signal: Signal) -> list[Finding]:
    """One finding per EXTERNAL_SIGNAL rule the signal meets (its type, its risk, its station)."""
    findings = []
    for rule in rules:
        if rule.signal_types and signal.signal_type not in rule.signal_types:
            continue
        if signal.risk_score < rule.threshold:
            continue
        if rule.areas and signal.station_id not in rule.areas:
            continue
        center = signal.location.point if signal.location is not None else None
        area = Area.station(signal.station_id, center=center)
        person = signal.person_masked or signal.external_id or signal.id
        amount = signal.attributes.get("amount")
        what = signal.description or SIGNAL_TYPE_LABELS.get(signal.signal_type, signal.signal_type)
        findings.append(Finding(
            rule=rule, level=rule.level, key=(signal.signal_type, signal.station_id, person), area=area,
            subject=signal.name,
            summary=(f"{signal.source}风险提示：{what}" + (f"（金额{amount}元）" if amount else "")
                     + f"，当事人{person}，住址{signal.address_text or '未知'}"),
            labels={"signal_type": signal.signal_type},
            suggested_action=rule.suggested_action or "属地派出所立即联系当事人核实，必要时上门劝阻（反诈止付）"))
    return findings


# -- enforcement warnings --------------------------------------------------------------------

@dataclass
class EnforcementWarning:
    """An enforcement warning from scoring (执法预警)."""

    name: str
    officer_id: str = ""
    station_id: str = ""
    case_name: str = ""
    detail: str = ""


def warning_findings(rules: list[Rule], warning: EnforcementWarning) -> list[Finding]:
    """The warning as an alert to the officer's station, once per ENFORCEMENT rule covering it."""
    return [Finding(
        rule=rule, level=rule.level, key=("warning", warning.name), area=Area.station(warning.station_id),
        subject=warning.case_name or warning.name,
        summary=f"执法预警（民警{warning.officer_id}）：{warning.detail}",
        labels={"officer_id": warning.officer_id, "warning": warning.name},
    ) for rule in rules if not rule.areas or warning.station_id in rule.areas]

