"""Enforcement warnings (执法问题自动预警): raised once per officer, kind and cause, rectified once."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition
from services.runtime.model import Aggregate, DomainEvent, TimelineEntry

from .rules import OfficerOnFact, new_id

# Who raises and rectifies warnings: scoring itself, whatever the event or request behind it.
SCORING = AuthContext(subject="scoring", roles=frozenset({"service"}))


@dataclass
class EnforcementWarning(Aggregate):
    """A warning to an officer: OPEN when raised (once per officer, kind and cause), then RECTIFIED."""

    id: str
    kind: str
    officer_id: str
    station_id: str
    case_name: str
    status: str
    detail: str
    source_event_id: str
    # What the warning is about (an assignment, a review, a month), so that the same cause warns once.
    cause: str
    raise_time: datetime
    rectify_time: datetime | None = None
    timeline: list[TimelineEntry] = field(default_factory=list)
    # Timeline entries added since the warning was loaded; the repository appends them.
    new_entries: list[TimelineEntry] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"warnings/{self.id}"

    @classmethod
    def issue(cls, *, kind: str, officer: OfficerOnFact, case_name: str, cause: str, detail: str,
              source_event_id: str, now: datetime) -> "EnforcementWarning":
        warning = cls(id=new_id(), kind=kind, officer_id=officer.officer_id, station_id=officer.station_id,
                      case_name=case_name, status="OPEN", detail=detail, source_event_id=source_event_id,
                      cause=cause, raise_time=now)
        warning._log("RAISED", now, detail)
        warning.record(WarningRaised(warning.snapshot()))
        return warning

    def rectify(self, *, reason: str, now: datetime) -> None:
        if self.status != "OPEN":
            raise FailedPrecondition(f"{self.name} is {self.status}, not open", reason="WARNING_NOT_OPEN")
        self.status, self.rectify_time = "RECTIFIED", now
        self._log("RECTIFIED", now, reason)
        self.record(WarningRectified(self.snapshot()))

    def snapshot(self) -> "EnforcementWarning":
        return replace(self, timeline=list(self.timeline), new_entries=[])

    def _log(self, action: str, now: datetime, detail: str) -> None:
        entry = TimelineEntry(action, actor=SCORING.subject, roles=sorted(SCORING.roles), time=now, detail=detail)
        self.timeline.append(entry)
        self.new_entries.append(entry)


@dataclass(frozen=True)
class WarningRaised(DomainEvent):
    warning: EnforcementWarning


@dataclass(frozen=True)
class WarningRectified(DomainEvent):
    warning: EnforcementWarning


