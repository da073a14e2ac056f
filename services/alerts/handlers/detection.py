"""Detection use cases: a report arriving from intake (recorded for windows and rollups, then every
rule looks at it), a report corrected or merged, a partner's risk signal, an enforcement warning
from scoring. What the rules find is raised as alerts."""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.scoring.v1 import scoring_service_pb2 as scoring_pb

from services.runtime.consumer import Subscription
from services.runtime.errors import Unavailable
from services.runtime.ids import new_id
from services.runtime.uow import UnitOfWork

from .. import domain, mapping
from ..domain import (
    Alert, AnomalyWindow, CellCounts, EnforcementWarning, GapWindow, HourCounts, Incident, Report, Signal,
    UnitPosition, WindowCount,
)
from .alerts import raise_alert

log = logging.getLogger("smart110.alerts")


def rule_asks(rules, report: Report, incident: Incident) -> tuple[list[tuple], list[tuple]]:
    """The volume rules (rule, area) and anomaly rules (rule, area, window) a counted report is matched
    by, in the rules' order: what their counts are asked for."""
    t = incident.receive_time
    volumes, anomalies = [], []
    for rule in rules.of_kind("VOLUME"):
        area = domain.rule_area(rule, incident)
        if domain.applies(rule, report.incident_type, area):
            volumes.append((rule, area))
    for rule in rules.of_kind("ANOMALY"):
        area = domain.anomaly_area(rule, incident)
        if domain.applies(rule, report.incident_type, area):
            anomalies.append((rule, area, AnomalyWindow.of(rule, t)))
    return volumes, anomalies


def _window_asks(volumes, anomalies, t) -> tuple[list[WindowCount], list[HourCounts]]:
    return ([WindowCount(area, rule.h3_resolution or 8, domain.volume_window(rule, t)[0], tuple(rule.incident_types))
             for rule, area in volumes],
            [HourCounts.of(area, window) for _, area, window in anomalies])


def report_received(uow: UnitOfWork, *, report: Report, units: list[UnitPosition] | None,
                    figures: dict | None = None) -> list[Alert]:
    """One report from the intake feed: recorded, counted, and matched by every rule in force.

    `units` are the available units (None: unknown, dispatch did not answer; the strength-gap
    rules are then skipped, the others do not wait for it). A report seen before raises nothing.

    `figures` are the volume and anomaly counts the warehouse gave before the transaction ({ask key:
    figure}, clients.WarehouseCounts). Alerts' own counts (and what the strength-gap rules count) are
    asked of the repository at once (`counts`: one statement for all of them), after the report is
    recorded and rolled up; each rule takes the larger of the two figures, so neither a warehouse that
    is behind nor a history alerts never saw hides a surge.
    """
    repos = uow.repos
    t = report.receive_time or uow.now()
    incident = Incident.of(report, t)
    counted = report.counted
    if not repos.incidents.record_counted(incident, domain.rollup_keys(incident) if counted else []):
        return []
    rules = uow.context.rules.current(repos)
    # A duplicate merged into its master incident still matches keywords (folding into the
    # master's alert) but is not counted again.
    findings = domain.keyword_findings(report, rules)
    volumes, anomalies = rule_asks(rules, report, incident) if counted else ([], [])
    gaps: list[tuple] = []  # (rule, window)
    if counted and report.category == "POLICE" and incident.cells:
        gap_rules = rules.of_kind("STRENGTH_GAP")
        if gap_rules and units is None:
            # Police strength unknown (dispatch never answered yet): the other rules must not wait on it.
            log.warning("police strength unavailable; strength-gap rules skipped for %s", report.name)
            gap_rules = []
        for rule in gap_rules:
            window = GapWindow.of(rule, incident)
            if window.applies(rule, incident):
                gaps.append((rule, window))
    figures = figures or {}
    window_asks, hour_asks = _window_asks(volumes, anomalies, t)
    # Alerts' own tables are always counted too: the warehouse reads the same feed on its own and may
    # be behind on the latest reports (most of all in a surge, when these rules matter), while alerts'
    # tables lack what came before alerts did (a loaded history). Each report is in one or both, so
    # the larger figure of the two is the nearer one.
    counts = repos.incidents.counts(
        t, window_asks, hour_asks,
        [CellCounts(window.resolution, window.since(t), tuple(window.cells), tuple(rule.incident_types))
         for rule, window in gaps])
    for (rule, area), ask, n in zip(volumes, window_asks, counts.windows):
        n = max(n, figures.get(ask.key, 0))
        found = domain.volume_finding(rule, report, area, n, t)
        if found:
            findings.append(found)
    for (rule, area, window), ask, own in zip(anomalies, hour_asks, counts.hours):
        hourly, first_hour = _larger_hours(own, figures.get(ask.key))
        if not window.enough(hourly):
            continue
        found = domain.anomaly_finding(rule, report, area, window, hourly, first_hour)
        if found:
            findings.append(found)
    for (rule, window), by_cell in zip(gaps, counts.cells):
        found = domain.gap_finding(rule, report, window, by_cell, units, t)
        if found:
            findings.append(found)
    return [raise_alert(uow, f) for f in findings]


def _larger_hours(own, theirs):
    """Hourly counts ({hour: n}, first hour) of alerts' own tables and the warehouse's: per hour the
    larger, and the earlier first hour."""
    if theirs is None:
        return own
    (mine, my_first), (other, other_first) = own, theirs
    hourly = {h: max(mine.get(h, 0), other.get(h, 0)) for h in mine.keys() | other.keys()}
    firsts = [f for f in (my_first, other_first) if f is not None]
    return hourly, (min(firsts) if firsts else None)


def report_updated(uow: UnitOfWork, *, report: Report, action: str) -> list[Alert]:
    """A report changed at intake: merged or un-merged repeats stop or start counting in windows; a
    corrected text is matched again (a term it now contains raises, one already alerted on does not).

    Hourly rollups keep the report where it was first counted: history is what was known at the time.
    """
    repos = uow.repos
    if action in ("MERGED", "UNMERGED"):
        repos.incidents.set_merged(report.id, report.merged_into)
        return []
    if action != "CORRECTED":
        return []
    repos.incidents.correct(report.id, category=report.category, incident_type=report.incident_type,
                            station_id=report.station_id, grid_id=report.grid_id)
    raised = []
    for f in domain.keyword_findings(report, uow.context.rules.current(repos)):
        if not repos.alerts.open_mentioning(f.fingerprint, report.name):
            raised.append(raise_alert(uow, f))
    return raised


def ingest_signal(uow: UnitOfWork, *, signal: Signal) -> Signal:
    """Stores a partner's signal and raises the alerts its EXTERNAL_SIGNAL rules call for.

    A repeat of the same (source, external_id) returns the signal first stored. The signal is
    stored as its message (mapping.signal_body), as it always was.
    """
    repos = uow.repos
    if signal.external_id:
        existing = repos.signals.body_by_external_id(signal.source, signal.external_id)
        if existing is not None:
            return mapping.signal_from_body(existing)
    now = uow.now()
    stored = replace(signal, name=f"signals/{new_id(now, prefix='g')}", receive_time=now, alerts=list(signal.alerts))
    if not repos.signals.add(stored, mapping.signal_body(stored)):
        return ingest_signal(uow, signal=signal)
    raised = [raise_alert(uow, f).name for f in domain.signal_findings(repos.rules.active("EXTERNAL_SIGNAL"), stored)]
    if raised:
        stored.alerts.extend(raised)
        repos.signals.save_alerts(stored, raised, mapping.signal_body(stored))
    return stored


def warning_raised(uow: UnitOfWork, *, warning: EnforcementWarning) -> list[Alert]:
    """An enforcement warning from scoring (执法预警) becomes an alert to the officer's station."""
    return [raise_alert(uow, f) for f in domain.warning_findings(uow.repos.rules.active("ENFORCEMENT"), warning)]


# -- the feeds ----------------------------------------------------------------------

@dataclass(frozen=True)
class Prepared:
    """What a report's rules need from other services, asked before the transaction."""

    units: list[UnitPosition] | None  # None: dispatch did not answer, or not a police report
    figures: dict  # the warehouse's counts, {ask key: figure}


def police_strength(context, event, payload: intake_pb.IncidentReported) -> list[UnitPosition] | None:
    """The available units, for a police report's strength-gap rules (None when dispatch does not answer)."""
    if payload.report.classification.category != intake_pb.CATEGORY_POLICE:
        return None
    try:
        return context.units()
    except Unavailable:
        return None


def warehouse_figures(context, report: Report) -> dict:
    """The warehouse's counts for the volume and anomaly rules the report is matched by, by the rules
    in force at the last event (a rule changed since is counted from alerts' own tables this once)."""
    if context.counts is None or not report.counted or report.receive_time is None:
        return {}
    rules = context.rules.last()
    incident = Incident.of(report, report.receive_time)
    volumes, anomalies = rule_asks(rules, report, incident)
    if not volumes and not anomalies:
        return {}
    windows, hours = _window_asks(volumes, anomalies, report.receive_time)
    return context.counts([*windows, *hours], report.receive_time)


def prepare_report(context, event, payload: intake_pb.IncidentReported) -> Prepared:
    """Before the transaction: police strength (dispatch) and the rules' counts (warehouse)."""
    return Prepared(police_strength(context, event, payload),
                    warehouse_figures(context, mapping.report_from_pb(payload.report)))


def on_incident_reported(uow: UnitOfWork, event, payload: intake_pb.IncidentReported, prepared=None) -> None:
    prepared = prepared or Prepared(None, {})
    report_received(uow, report=mapping.report_from_pb(payload.report), units=prepared.units,
                    figures=prepared.figures)


def on_report_updated(uow: UnitOfWork, event, payload: intake_pb.ReportUpdated) -> None:
    report_updated(uow, report=mapping.report_from_pb(payload.report), action=payload.action)


def on_warning_raised(uow: UnitOfWork, event, payload: scoring_pb.WarningRaised) -> None:
    warning_raised(uow, warning=mapping.warning_from_pb(payload.warning))


INTAKE = {
    "intake.IncidentReported": Subscription(intake_pb.IncidentReported, on_incident_reported, prepare=prepare_report),
    "intake.ReportUpdated": Subscription(intake_pb.ReportUpdated, on_report_updated),
}
SCORING = {
    "scoring.WarningRaised": Subscription(scoring_pb.WarningRaised, on_warning_raised),
}
