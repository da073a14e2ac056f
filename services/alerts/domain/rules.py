"""Rules (预警规则): what raises alerts. Rules are data, versioned: every change is a new version,
and an alert names the version that raised it."""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.runtime.auth import AuthContext
from services.runtime.errors import Aborted, FailedPrecondition
from services.runtime.validation import Violations

from .common import LEVELS, Stamp
from .keywords import Cues, KeywordMatcher, TermSpec

RULE_KINDS = ("KEYWORD", "VOLUME", "ANOMALY", "STRENGTH_GAP", "EXTERNAL_SIGNAL", "OBLIGATION", "ENFORCEMENT")
AREA_KINDS = ("STATION", "GRID", "H3")

# The fields an update may change (the rest is the rule's identity or set by the server).
UPDATABLE = {"display_name", "enabled", "level", "description", "terms", "window", "threshold", "area_kind",
             "h3_resolution", "areas", "incident_types", "signal_types", "parameters", "suggested_action",
             "recipients", "escalate_after"}
RECIPIENT = re.compile(r"^(stations/[A-Za-z0-9-]+(/chief)?|roles/[a-z_]+|units/[A-Za-z0-9-]+|screens/[A-Za-z0-9-]+|"
                       r"command/[a-z]+|officers/[A-Za-z0-9-]+)$")
# Parameters that are whole numbers when given.
COUNT_PARAMETERS = ("history_weeks", "min_count", "min_incidents", "ring", "cold_ring", "report_back_seconds")


@dataclass
class KeywordTerm:
    term: str
    grade: str = ""  # the level of the alert it raises, over the rule's ("" = the rule's)
    exclusions: list[str] = field(default_factory=list)


@dataclass
class Rule:
    """One version of a rule. Enumerations are their plain names ("KEYWORD", "RED", "H3");
    a number no name stands for is kept as its digits, for validation to refuse."""

    display_name: str = ""
    kind: str = ""
    enabled: bool = False
    level: str = ""
    description: str = ""
    terms: list[KeywordTerm] = field(default_factory=list)
    # Durations in seconds; None: not given (kept apart from an explicit 0).
    window: float | None = None
    threshold: float = 0.0
    area_kind: str = ""
    h3_resolution: int = 0
    areas: list[str] = field(default_factory=list)
    incident_types: list[str] = field(default_factory=list)
    signal_types: list[str] = field(default_factory=list)
    parameters: dict[str, str] = field(default_factory=dict)
    suggested_action: str = ""
    recipients: list[str] = field(default_factory=list)
    escalate_after: float | None = None
    # Set by the server.
    id: str = ""
    version: int = 0
    version_stamp: Stamp | None = None
    create_time: datetime | None = None
    update_time: datetime | None = None
    # Set on the latest version of a deleted rule.
    delete_time: datetime | None = None

    @property
    def name(self) -> str:
        return f"rules/{self.id}"

    @property
    def window_s(self) -> float:
        return self.window or 0.0

    @property
    def escalate_after_s(self) -> float:
        return self.escalate_after or 0.0

    def patched(self, patch: "Rule", paths: list[str]) -> "Rule":
        """This rule with the fields named in `paths` (an update mask) taken from `patch`."""
        return replace(self, **{p: _copy(getattr(patch, p)) for p in paths})

    def created(self, *, rule_id: str, actor: AuthContext, now: datetime, reason: str) -> "Rule":
        return replace(self, id=rule_id, version=1, version_stamp=Stamp.of(actor, now, reason or "新建规则"),
                       create_time=now, update_time=now, delete_time=None)

    def revised(self, patch: "Rule", paths: list[str], *, expected_version: int, actor: AuthContext, now: datetime,
                reason: str) -> "Rule":
        """The next version with the masked fields changed. The changed rule must be valid, the rule
        not deleted, and (when given) `expected_version` the version in force."""
        merged = self.patched(patch, paths)
        check = Violations()
        validate_rule(merged, check)
        check.raise_if_any()
        if self.delete_time is not None:
            raise FailedPrecondition(f"rules/{self.id} was deleted", reason="RULE_DELETED")
        if expected_version and expected_version != self.version:
            raise Aborted(f"rules/{self.id} is at version {self.version}, not {expected_version}",
                          reason="VERSION_MISMATCH", metadata={"current_version": str(self.version)})
        return replace(merged, version=self.version + 1, version_stamp=Stamp.of(actor, now, reason or "修改规则"),
                       update_time=now)

    def deleted(self, *, actor: AuthContext, now: datetime, reason: str) -> "Rule":
        """The last version: disabled, with its delete time."""
        if self.delete_time is not None:
            raise FailedPrecondition(f"rules/{self.id} is already deleted", reason="RULE_DELETED")
        return replace(self, enabled=False, version=self.version + 1,
                       version_stamp=Stamp.of(actor, now, reason or "删除规则"), update_time=now, delete_time=now)


def _copy(value):
    if isinstance(value, list):
        return [replace(v) if isinstance(v, KeywordTerm) else v for v in value]
    if isinstance(value, dict):
        return dict(value)
    return value


def validate_rule(rule: Rule, v: Violations, prefix: str = "rule", paths: set[str] | None = None) -> None:
    """Checks a rule (or, with `paths`, only the fields an update changes)."""
    def on(name: str) -> bool:
        return paths is None or name in paths

    kind = rule.kind
    if on("display_name"):
        v.require(rule.display_name.strip(), f"{prefix}.display_name")
    if paths is None:
        v.check(kind in RULE_KINDS, f"{prefix}.kind", "is required: KEYWORD, VOLUME, ANOMALY, STRENGTH_GAP, "
                                                      "EXTERNAL_SIGNAL, OBLIGATION or ENFORCEMENT")
    if on("level"):
        v.check(rule.level in LEVELS[1:], f"{prefix}.level", "is required: BLUE, YELLOW, ORANGE or RED")
    if on("terms"):
        if kind == "KEYWORD":
            v.check(len(rule.terms) > 0, f"{prefix}.terms", "a KEYWORD rule needs at least one term")
        for i, t in enumerate(rule.terms):
            v.check(bool(t.term.strip()), f"{prefix}.terms[{i}].term", "must not be empty")
            v.check(t.grade in LEVELS, f"{prefix}.terms[{i}].grade", "must be an alert level")
            for j, ex in enumerate(t.exclusions):
                v.check(t.term in ex, f"{prefix}.terms[{i}].exclusions[{j}]",
                        "must contain the term it cancels (e.g. 剧本杀 for 杀)")
    if on("window"):
        if kind in ("VOLUME", "STRENGTH_GAP"):
            v.check(rule.window_s > 0, f"{prefix}.window", f"a {kind} rule needs a positive window")
        v.check(rule.window_s >= 0, f"{prefix}.window", "must not be negative")
    if on("threshold"):
        if kind in ("VOLUME", "ANOMALY", "STRENGTH_GAP"):
            v.check(rule.threshold > 0, f"{prefix}.threshold", f"a {kind} rule needs a positive threshold")
        v.check(rule.threshold >= 0, f"{prefix}.threshold", "must not be negative")
    if on("area_kind") and kind in ("VOLUME", "ANOMALY"):
        v.check(rule.area_kind != "", f"{prefix}.area_kind", "is required: STATION, GRID or H3")
    if on("h3_resolution"):
        v.check(rule.h3_resolution == 0 or 6 <= rule.h3_resolution <= 10, f"{prefix}.h3_resolution",
                "must be 6 to 10")
        if kind == "ANOMALY" and rule.area_kind == "H3":
            v.check(rule.h3_resolution in (0, 8), f"{prefix}.h3_resolution",
                    "anomaly history is kept at H3 resolution 8")
    if on("escalate_after"):
        v.check(rule.escalate_after_s >= 0, f"{prefix}.escalate_after", "must not be negative")
    if on("recipients"):
        for i, r in enumerate(rule.recipients):
            v.check(bool(RECIPIENT.match(r)), f"{prefix}.recipients[{i}]",
                    "must be stations/{id}, stations/{id}/chief, roles/{role}, units/{id}, screens/{id} "
                    "or command/{name}")
    if on("parameters"):
        for key, value in rule.parameters.items():
            if key in COUNT_PARAMETERS:
                v.check(value.isdigit() and int(value) > 0, f"{prefix}.parameters[{key}]",
                        "must be a positive whole number")


def build_matcher(keyword_rules: list[Rule]) -> KeywordMatcher:
    """One automaton over the terms of every keyword rule, each term with its rule's cues."""
    specs = []
    for rule in keyword_rules:
        cues = Cues.from_parameters(dict(rule.parameters))
        for t in rule.terms:
            specs.append(TermSpec(rule.id, rule.version, t.term, t.grade or rule.level, tuple(t.exclusions), cues))
    return KeywordMatcher(specs)


class RuleSet:
    """The rules in force, by kind, with the keyword automaton of the keyword rules."""

    def __init__(self, rules: list[Rule]):
        self.by_kind: dict[str, list[Rule]] = {}
        for r in rules:
            self.by_kind.setdefault(r.kind, []).append(r)
        keyword_rules = self.by_kind.get("KEYWORD", [])
        self.matcher = build_matcher(keyword_rules)
        self.keyword_rules = {r.id: r for r in keyword_rules}

    def of_kind(self, kind: str) -> list[Rule]:
        return list(self.by_kind.get(kind, []))
