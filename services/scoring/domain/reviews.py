"""Legal officers' reviews (法制审核) of cases: written once, announced, then scored."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.runtime.model import DomainEvent

from .cases import Case
from .rules import OfficerOnFact, new_id

@dataclass(frozen=True)
class Findings:
    """A review's verdicts (plain names: COMPLETE, MISSING; CORRECT, FLAWED; CORRECT, WRONG)."""

    evidence: str
    procedure: str
    classification: str
    missing_evidence: list[str] = field(default_factory=list)
    procedure_flaws: list[str] = field(default_factory=list)
    corrected_incident_type: str = ""
    comment: str = ""


@dataclass
class Review:
    id: str
    case_name: str
    officer_ids: list[str]
    station_id: str
    evidence: str
    missing_evidence: list[str]
    procedure: str
    procedure_flaws: list[str]
    classification: str
    corrected_incident_type: str
    comment: str
    actor: str
    roles: list[str]
    create_time: datetime
    # Ids of the ledger entries the review wrote (rule entries, in order).
    ledger_entries: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"reviews/{self.id}"

    @classmethod
    def file(cls, *, case: Case, officers: list[OfficerOnFact], findings: Findings, actor: AuthContext,
             now: datetime) -> "Review":
        return cls(id=new_id(), case_name=case.case_name, officer_ids=[o.officer_id for o in officers],
                   station_id=case.station_id, evidence=findings.evidence,
                   missing_evidence=list(findings.missing_evidence), procedure=findings.procedure,
                   procedure_flaws=list(findings.procedure_flaws), classification=findings.classification,
                   corrected_incident_type=findings.corrected_incident_type, comment=findings.comment,
                   actor=actor.subject, roles=sorted(actor.roles), create_time=now)

    def measurements(self, case: Case) -> dict:
        """What rules on scoring.ReviewCreated read under `derived`."""
        return {"missing_evidence": "、".join(self.missing_evidence) or "未列明",
                "procedure_flaws": "、".join(self.procedure_flaws) or "未列明",
                "incident_type": case.incident_type}


@dataclass(frozen=True)
class ReviewCreated(DomainEvent):
    review: Review  # as filed, before it is scored


def check_reviewer(case: Case, actor: AuthContext) -> None:
    """A legal officer with a station reviews only that station's cases."""
    if actor.has_role("legal_officer") and not actor.has_role("commander", "service") and actor.station \
            and case.station_id != actor.station:
        raise PermissionDenied(f"{case.case_name} belongs to station {case.station_id}", reason="OTHER_STATION")


def named_officers(case: Case, named: list[str], worked: list[OfficerOnFact]) -> list[OfficerOnFact]:
    """The officers a review names, each of whom must have worked on the case."""
    known = {o.officer_id: o for o in worked}
    unknown = [o for o in named if o not in known]
    if unknown:
        raise FailedPrecondition(f"officers {', '.join(unknown)} did not work on {case.case_name}",
                                 reason="OFFICER_NOT_ON_CASE")
    return [known[o] for o in named]

