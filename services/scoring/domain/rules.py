"""Rules as data and what they apply to: rules, rule sets (an aggregate: drafted, then published once),
facts, the rule engine, points, periods.

A *fact* is what scoring keeps of an event (its payload in proto3 JSON plus derived measurements,
and the officers it concerns); a *rule set* turns facts into ledger entries. Because facts are
kept, any rule set can be applied again to any period (recomputation).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

from services.runtime import labels
from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition
from services.runtime.model import Aggregate, DomainEvent

from ..expr import ExpressionError, compile_condition, evaluate, lookup, truthy

DIMENSIONS = ("QUANTITY", "QUALITY", "EFFICIENCY")
# Local time of the province: month and week boundaries (no daylight saving).
CST = timezone(timedelta(hours=8), "CST")

EVENT_TYPES = (
    "dispatch.AssignmentChanged", "dispatch.CaseUpdated", "intake.ReportUpdated",
    "referral.WorkOrderUpdated", "scoring.ReviewCreated",
)


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


# Explanations are read by people: a placeholder whose field holds a code shows its Chinese label
# (`{derived.outcome}` → 刑事立案, `{review.corrected_incident_type}` → 打架斗殴), by the field's name.
# Conditions still see the codes.
LABELLED_FIELDS = {
    "outcome": labels.outcome_label,
    "incident_type": labels.incident_type_label,
    "corrected_incident_type": labels.incident_type_label,
    "satisfaction": labels.satisfaction_label,
    "category": labels.category_label,
}


def render(template: str, data: dict, points: Decimal) -> str:
    def fill(m):
        if m.group(1) == "points":
            return signed(points)
        path = m.group(1).split(".")
        value = lookup(data, path)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, str) and path[-1] in LABELLED_FIELDS:
            return LABELLED_FIELDS[path[-1]](value)
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

