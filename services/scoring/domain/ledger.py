"""The append-only points ledger: entries written once, by a rule or a correction."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.runtime.model import Aggregate, DomainEvent

from .rules import EntryDraft, money, new_id, signed

# Quality falling fast: the last 30 days' quality points at least this far
# below the 30 days before.
QUALITY_WINDOW = timedelta(days=30)
QUALITY_DROP = Decimal("5")


@dataclass
class LedgerEntry(Aggregate):
    """One entry of the append-only points ledger: written by a rule (RULE) or a correction
    (REVERSAL, REPLACEMENT); never changed afterwards."""

    id: str
    kind: str
    officer_id: str  # "" for a station entry
    station_id: str
    dimension: str
    points: Decimal
    reason_code: str
    explanation: str
    occur_time: datetime
    create_time: datetime
    subject: str = ""
    event_id: str = ""
    event_type: str = ""
    fact_id: str = ""
    rule_id: str = ""
    rule_set_version: int = 0
    reverses: str = ""
    correction_actor: str = ""
    correction_roles: list[str] = field(default_factory=list)
    correction_time: datetime | None = None
    correction_reason: str = ""

    @property
    def name(self) -> str:
        return f"ledgerEntries/{self.id}"

    @classmethod
    def by_rule(cls, draft: EntryDraft, *, now: datetime) -> "LedgerEntry":
        entry = cls(id=new_id(), kind="RULE", officer_id=draft.officer_id, station_id=draft.station_id,
                    dimension=draft.dimension, points=money(draft.points), reason_code=draft.reason_code,
                    explanation=draft.explanation, occur_time=draft.occur_time, create_time=now,
                    subject=draft.subject, event_id=draft.event_id, event_type=draft.event_type,
                    fact_id=draft.fact_id, rule_id=draft.rule_id, rule_set_version=draft.rule_set_version)
        entry.record(LedgerEntryRecorded(entry))
        return entry

    def correct(self, *, reason: str, corrected_points: Decimal | None, already_reversed: bool,
                actor: AuthContext, now: datetime) -> "Correction":
        """A reversal of this entry and, with `corrected_points`, its replacement (who, when and why kept)."""
        if self.kind == "REVERSAL":
            raise FailedPrecondition("a reversal cannot be reversed", reason="REVERSAL_NOT_REVERSIBLE")
        if already_reversed:
            raise FailedPrecondition(f"{self.name} is already reversed", reason="ALREADY_REVERSED")
        # A station chief or a station's legal officer corrects only that station's entries.
        if not actor.has_role("commander", "service") and actor.station and self.station_id != actor.station:
            raise PermissionDenied(f"{self.name} belongs to station {self.station_id}", reason="OTHER_STATION")
        base = dict(officer_id=self.officer_id, station_id=self.station_id, dimension=self.dimension,
                    reason_code=self.reason_code, subject=self.subject, event_id=self.event_id,
                    event_type=self.event_type, fact_id=self.fact_id, reverses=self.id,
                    correction_actor=actor.subject, correction_roles=sorted(actor.roles), correction_time=now,
                    correction_reason=reason, occur_time=self.occur_time, create_time=now)
        reversal = LedgerEntry(id=new_id(), kind="REVERSAL", points=money(-self.points),
                               explanation=f"更正：撤销积分条目{self.id}（{signed(-self.points)}分），原因：{reason}",
                               **base)
        reversal.record(LedgerEntryRecorded(reversal))
        replacement = None
        if corrected_points is not None:
            replacement = LedgerEntry(
                id=new_id(), kind="REPLACEMENT", points=money(corrected_points),
                explanation=f"更正：积分条目{self.id}改为{signed(corrected_points)}分，原因：{reason}；"
                            f"原记录：{self.explanation}", **base)
            replacement.record(LedgerEntryRecorded(replacement))
        return Correction(reversal, replacement)


@dataclass(frozen=True)
class Correction:
    reversal: LedgerEntry
    replacement: LedgerEntry | None = None

    @property
    def entries(self) -> list[LedgerEntry]:
        return [self.reversal] + ([self.replacement] if self.replacement is not None else [])


@dataclass(frozen=True)
class LedgerEntryRecorded(DomainEvent):
    entry: LedgerEntry


def quality_falling(recent: Decimal, before: Decimal) -> bool:
    """The last 30 days' quality points at least QUALITY_DROP below the 30 days before."""
    return recent <= before - QUALITY_DROP


