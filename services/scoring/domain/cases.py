"""What scoring learns of cases, assignments, ratings and work orders from the other services' events,
the measurements rules read under `derived`, and report-back (回告) obligations."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .rules import OfficerOnFact

# Report-back (回告) limits: within 30 minutes of clearing the scene, and in
# any case within 4 hours of accepting the job.
REPORT_BACK_AFTER_CLEAR = timedelta(minutes=30)
REPORT_BACK_AFTER_ACCEPT = timedelta(hours=4)
# The 1-3-5 minute circle's outermost target, for a grid scoring does not know.
DEFAULT_ARRIVAL_TARGET_S = 300

# Outcomes (回告结果) that contradict an incident type: a fight or a robbery
# does not end with "no issue found", a robbery or drug case is not mediated.
CONTRADICTING_OUTCOMES = {
    "FIGHT": {"NO_ISSUE_FOUND"},
    "ROBBERY": {"NO_ISSUE_FOUND", "MEDIATED"},
    "DOMESTIC_VIOLENCE": {"NO_ISSUE_FOUND"},
    "DRUGS": {"NO_ISSUE_FOUND", "MEDIATED"},
    "DRUNK_DRIVING": {"NO_ISSUE_FOUND", "MEDIATED"},
    "GAMBLING": {"MEDIATED"},
    "TELECOM_FRAUD": {"MEDIATED"},
}
# Outcomes that open a criminal or administrative case need evidence.
OUTCOMES_NEEDING_EVIDENCE = {"CRIMINAL_CASE", "ADMINISTRATIVE_CASE"}


def outcome_contradicts(incident_type: str, outcome: str) -> bool:
    return outcome in CONTRADICTING_OUTCOMES.get(incident_type, set())


# -- derived measurements --------------------------------------------------------

def _seconds(later: datetime | None, earlier: datetime | None) -> float | None:
    if later is None or earlier is None:
        return None
    return round((later - earlier).total_seconds(), 1)


def assignment_measurements(*, state: str, outcome: str, incident_type: str, offer: datetime | None,
                            accept: datetime | None, arrive: datetime | None, clear: datetime | None,
                            report_back: datetime | None, evidence_count: int,
                            arrival_target_s: int) -> dict:
    """What the rules on dispatch.AssignmentChanged read under `derived`."""
    start_of_report_back = clear or accept
    limit = REPORT_BACK_AFTER_CLEAR if clear else REPORT_BACK_AFTER_ACCEPT
    rb = _seconds(report_back, start_of_report_back)
    return {
        "state": state,
        "outcome": outcome,
        "incident_type": incident_type,
        "accept_seconds": _seconds(accept, offer),
        "arrive_seconds": _seconds(arrive, offer),
        "arrival_target_seconds": arrival_target_s,
        "arrived_within_target": (_seconds(arrive, offer) is not None
                                  and _seconds(arrive, offer) <= arrival_target_s),
        "report_back_seconds": rb,
        "report_back_minutes": None if rb is None else round(rb / 60, 1),
        "report_back_limit_seconds": int(limit.total_seconds()),
        "report_back_on_time": rb is not None and rb <= limit.total_seconds(),
        "evidence_count": evidence_count,
        "outcome_contradicts_type": outcome_contradicts(incident_type, outcome),
        "evidence_required": outcome in OUTCOMES_NEEDING_EVIDENCE,
    }


def report_back_due(accept: datetime | None, clear: datetime | None) -> datetime | None:
    if clear is not None:
        return clear + REPORT_BACK_AFTER_CLEAR
    if accept is not None:
        return accept + REPORT_BACK_AFTER_ACCEPT
    return None


# -- what scoring learns from the other services' events -----------------------------------

@dataclass(frozen=True)
class Case:
    """Scoring's picture of a dispatch case, from dispatch's events ("" where not known yet)."""

    case_name: str
    report: str = ""
    station_id: str = ""
    grid_id: str = ""
    incident_type: str = ""


@dataclass(frozen=True)
class AssignmentChange:
    """One unit's assignment on a case moved (dispatch.AssignmentChanged)."""

    event_id: str
    assignment: str
    case_name: str
    station_id: str
    incident_type: str
    grid_id: str
    report: str
    state: str  # plain names: ACCEPTED, REPORTED_BACK
    outcome: str  # MEDIATED, CRIMINAL_CASE
    officers: list[OfficerOnFact]
    times: dict  # offer, accept, arrive, clear, report_back -> datetime | None
    evidence_count: int
    arrival_target_s: int  # the grid's target as dispatch states it; 0 when it does not
    arrival_seconds: int | None  # dispatch's own measure, from the report's receipt
    arrival_target_met: bool
    data: dict  # the payload as rules read it, without the case summary
    event_time: datetime | None


# Assignment states that put officers on a case, and those that are scored.
WORKING_STATES = ("ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED", "REPORTED_BACK")
SCORED_STATES = ("ACCEPTED", "ON_SCENE", "REPORTED_BACK")


@dataclass(frozen=True)
class Rating:
    """A citizen's satisfaction rating carried by an event: the follow-up (回访) of a case, or a report's."""

    event_id: str
    event_type: str  # dispatch.CaseUpdated or intake.ReportUpdated
    subject: str  # the case or report rated
    case_name: str  # the case rated, or the case the report names ("" when it names none)
    data: dict
    occur_time: datetime | None
    officers: list[OfficerOnFact] = field(default_factory=list)  # named by dispatch with the follow-up


@dataclass(frozen=True)
class PreliminaryHandling:
    """A station took a 12345 work order for police preliminary handling (先期处置)."""

    event_id: str
    work_order: str
    station_id: str
    data: dict
    occur_time: datetime | None


@dataclass(frozen=True)
class ReportBackObligation:
    """An accepted assignment's duty to report back (回告) by `due_time`."""

    assignment: str
    case_name: str
    station_id: str
    officers: list[OfficerOnFact]
    due_time: datetime
    source_event_id: str = ""


def overdue_minutes(obligation: ReportBackObligation, now: datetime) -> int:
    return int((now - obligation.due_time).total_seconds() // 60)


