"""Scoring domain: rules as data, facts, the rule engine, the ledger, warnings, reviews and periods.

Nothing here knows gRPC or SQL. A *fact* is what scoring keeps of an event
(its payload in proto3 JSON plus derived measurements, and the officers it
concerns); a *rule set* turns facts into ledger entries. Because facts are
kept, any rule set can be applied again to any period (recomputation).

Aggregates, each recording the events of its changes (published by the unit
of work at commit):
- `RuleSet`: created as a draft, published once, never in the past;
- `LedgerEntry`: written once (by a rule or a correction), never changed; a
  correction is a reversal, and perhaps a replacement, of an entry;
- `EnforcementWarning`: raised once per officer and cause, rectified once,
  with its timeline.
A `Review` is a legal officer's finding: written once, announced before it
is scored (its event is the source of its ledger entries).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.runtime.model import Aggregate, DomainEvent, TimelineEntry

from .expr import ExpressionError, compile_condition, evaluate, lookup, truthy

DIMENSIONS = ("QUANTITY", "QUALITY", "EFFICIENCY")
# Local time of the province: month and week boundaries (no daylight saving).
CST = timezone(timedelta(hours=8), "CST")

# Report-back (回告) limits: within 30 minutes of clearing the scene, and in
# any case within 4 hours of accepting the job.
REPORT_BACK_AFTER_CLEAR = timedelta(minutes=30)
REPORT_BACK_AFTER_ACCEPT = timedelta(hours=4)
# The 1-3-5 minute circle's outermost target, for a grid scoring does not know.
DEFAULT_ARRIVAL_TARGET_S = 300
# Quality falling fast: the last 30 days' quality points at least this far
# below the 30 days before.
QUALITY_WINDOW = timedelta(days=30)
QUALITY_DROP = Decimal("5")

EVENT_TYPES = (
    "dispatch.AssignmentChanged", "dispatch.CaseUpdated", "intake.ReportUpdated",
    "referral.WorkOrderUpdated", "scoring.ReviewCreated",
)

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


def money(value) -> Decimal:
    """Points are exact decimals with two places."""
    return Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Rule:
    rule_id: str
    description: str
    dimension: str
    event_type: str
    condition: str
    points: Decimal
    reason_code: str
    explanation_template: str
    monthly_cap: Decimal = Decimal("0")


@dataclass
class RuleSet(Aggregate):
    """A versioned set of rules: a draft until published; a published version never changes."""

    version: int
    description: str
    rules: list[Rule]
    effective_time: datetime
    published: bool = False
    create_actor: str = ""
    create_roles: list[str] = field(default_factory=list)
    create_time: datetime | None = None
    publish_actor: str = ""
    publish_roles: list[str] = field(default_factory=list)
    publish_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"ruleSets/{self.version}"

    @classmethod
    def draft(cls, *, version: int, description: str, rules: list[Rule], effective_time: datetime,
              actor: AuthContext, now: datetime) -> "RuleSet":
        """A new, unpublished version (versions are handed out in creation order by the store)."""
        rule_set = cls(version=version, description=description, rules=list(rules), effective_time=effective_time,
                       published=False, create_actor=actor.subject, create_roles=sorted(actor.roles),
                       create_time=now)
        rule_set.record(RuleSetCreated(replace(rule_set)))
        return rule_set

    def publish(self, *, actor: AuthContext, now: datetime) -> None:
        """Puts the version in force from its effective time, which may not lie in the past."""
        if self.published:
            raise FailedPrecondition(f"{self.name} is already published", reason="ALREADY_PUBLISHED")
        if self.effective_time < now:
            raise FailedPrecondition(
                f"{self.name} takes effect in the past ({self.effective_time.isoformat()}); a new version never "
                "rewrites history: create one with an effective time from now on", reason="EFFECTIVE_TIME_IN_PAST")
        self.published = True
        self.publish_actor, self.publish_roles, self.publish_time = actor.subject, sorted(actor.roles), now
        self.record(RuleSetPublished(replace(self)))


@dataclass(frozen=True)
class RuleSetCreated(DomainEvent):
    rule_set: RuleSet  # as created


@dataclass(frozen=True)
class RuleSetPublished(DomainEvent):
    rule_set: RuleSet  # as published


_RULE_ID = re.compile(r"^[A-Z][A-Z0-9-]{1,63}$")
_REASON = re.compile(r"^[A-Z][A-Z0-9_]{1,63}$")


def rule_violations(rules: list[Rule], prefix: str) -> list[tuple[str, str]]:
    """What is wrong with a list of rules, as (field, description) pairs."""
    out = []
    if not rules:
        out.append((prefix, "needs at least one rule"))
    seen = set()
    for i, r in enumerate(rules):
        f = f"{prefix}[{i}]"
        if not _RULE_ID.match(r.rule_id):
            out.append((f"{f}.rule_id", "must be 2-64 of A-Z, 0-9 and -, starting with a letter"))
        elif r.rule_id in seen:
            out.append((f"{f}.rule_id", f"{r.rule_id} appears twice"))
        seen.add(r.rule_id)
        if r.dimension not in DIMENSIONS:
            out.append((f"{f}.dimension", "is required"))
        if r.event_type not in EVENT_TYPES:
            out.append((f"{f}.event_type", "must be one of " + ", ".join(EVENT_TYPES)))
        if not _REASON.match(r.reason_code):
            out.append((f"{f}.reason_code", "must be UPPER_SNAKE_CASE"))
        if r.points == 0:
            out.append((f"{f}.points", "must not be 0"))
        if abs(r.points) > 100:
            out.append((f"{f}.points", "must be between -100 and 100"))
        if r.monthly_cap < 0:
            out.append((f"{f}.monthly_cap", "must not be negative"))
        if not r.description.strip():
            out.append((f"{f}.description", "is required"))
        if not r.explanation_template.strip():
            out.append((f"{f}.explanation_template", "is required"))
        try:
            compile_condition(r.condition)
        except ExpressionError as exc:
            out.append((f"{f}.condition", str(exc)))
    return out


@dataclass(frozen=True)
class OfficerOnFact:
    officer_id: str  # "" for a station-level fact (no officer named in the event)
    station_id: str
    display_name: str = ""


@dataclass
class Fact:
    """What scoring keeps of one scored event."""

    fact_id: str
    event_id: str
    event_type: str
    subject: str
    occur_time: datetime
    station_id: str
    officers: list[OfficerOnFact]
    data: dict  # payload JSON + "derived"


@dataclass
class EntryDraft:
    officer_id: str
    station_id: str
    dimension: str
    points: Decimal
    reason_code: str
    rule_id: str
    rule_set_version: int
    explanation: str
    subject: str
    event_id: str
    event_type: str
    fact_id: str
    occur_time: datetime


_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.]*)\}")


def signed(points: Decimal) -> str:
    text = f"{points:f}".rstrip("0").rstrip(".") if "." in f"{points:f}" else f"{points:f}"
    return ("+" if points > 0 else "") + text


def render(template: str, data: dict, points: Decimal) -> str:
    def fill(m):
        if m.group(1) == "points":
            return signed(points)
        value = lookup(data, m.group(1).split("."))
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return "" if value is None else str(value)

    return _FIELD.sub(fill, template)


def month_start(t: datetime) -> datetime:
    local = t.astimezone(CST)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


class RuleEngine:
    """Applies one rule set to facts. `already(rule_id, officer, month_start)`
    gives the points the rule has already given the officer that month (for
    monthly caps)."""

    def __init__(self, rule_set: RuleSet):
        self.rule_set = rule_set
        self.compiled = [(r, compile_condition(r.condition)) for r in rule_set.rules]

    def apply(self, fact: Fact, already) -> list[EntryDraft]:
        out = []
        for rule, cond in self.compiled:
            if rule.event_type != fact.event_type or not truthy(evaluate(cond, fact.data)):
                continue
            for officer in fact.officers:
                points = rule.points
                if rule.monthly_cap > 0:
                    used = abs(already(rule.rule_id, officer.officer_id, officer.station_id,
                                       month_start(fact.occur_time)))
                    room = rule.monthly_cap - used
                    if room <= 0:
                        continue
                    points = min(abs(points), room) * (1 if points > 0 else -1)
                data = dict(fact.data, officer={"officer_id": officer.officer_id,
                                                "display_name": officer.display_name})
                out.append(EntryDraft(
                    officer_id=officer.officer_id, station_id=officer.station_id or fact.station_id,
                    dimension=rule.dimension, points=money(points), reason_code=rule.reason_code,
                    rule_id=rule.rule_id, rule_set_version=self.rule_set.version,
                    explanation=render(rule.explanation_template, data, money(points)),
                    subject=fact.subject, event_id=fact.event_id, event_type=fact.event_type,
                    fact_id=fact.fact_id, occur_time=fact.occur_time))
        return out


def in_force(rule_sets: list[RuleSet], when: datetime) -> RuleSet | None:
    """The published rule set that scores an event happening at `when`."""
    live = [rs for rs in rule_sets if rs.published and rs.effective_time <= when]
    return max(live, key=lambda rs: (rs.effective_time, rs.version), default=None)


def preview(rule_set: RuleSet, facts: list[Fact]) -> list[EntryDraft]:
    """What a rule set would write for these facts, in time order, monthly caps counted among them."""
    engine = RuleEngine(rule_set)
    given: dict[tuple, Decimal] = {}
    out = []
    for fact in sorted(facts, key=lambda f: (f.occur_time, f.fact_id)):
        drafts = engine.apply(fact, lambda rule_id, officer_id, station_id, month:
                              given.get((rule_id, officer_id or station_id, month), Decimal(0)))
        for d in drafts:
            key = (d.rule_id, d.officer_id or d.station_id, month_start(d.occur_time))
            given[key] = given.get(key, Decimal(0)) + d.points
        out += drafts
    return out


def month_end(month: datetime) -> datetime:
    """The start of the month after the one `month` (a month_start) begins."""
    return (month + timedelta(days=32)).replace(day=1)


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


# -- periods -----------------------------------------------------------------------

def default_period(now: datetime) -> tuple[datetime, datetime]:
    start = month_start(now)
    end = (start + timedelta(days=32)).replace(day=1)
    return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


def buckets(start: datetime, end: datetime, granularity: str) -> list[datetime]:
    """Bucket starts covering [start, end), aligned to local days, weeks (Monday) or months."""
    local = start.astimezone(CST).replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "WEEK":
        local -= timedelta(days=local.weekday())
    elif granularity == "MONTH":
        local = local.replace(day=1)
    out = []
    t = local
    while t < end and len(out) < 1000:
        out.append(t.astimezone(timezone.utc))
        if granularity == "DAY":
            t += timedelta(days=1)
        elif granularity == "WEEK":
            t += timedelta(days=7)
        else:
            t = (t + timedelta(days=32)).replace(day=1)
    return out


def bucket_of(t: datetime, starts: list[datetime]) -> int:
    idx = -1
    for i, s in enumerate(starts):
        if s <= t:
            idx = i
        else:
            break
    return idx


# -- ids --------------------------------------------------------------------------------

def new_id() -> str:
    """The id of a ledger entry, a warning or a review: 32 random hex digits (as since the first release)."""
    return uuid.uuid4().hex


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


# -- the ledger -------------------------------------------------------------------------------

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


# -- enforcement warnings (执法问题自动预警) --------------------------------------------------------

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


# -- legal officers' reviews (法制审核) -------------------------------------------------------------

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


def unknown_case(case_name: str) -> NotFound:
    return NotFound(case_name, f"{case_name} is not known to scoring")
