"""The alerts (预警) domain, pure: no database, no gRPC, no protobuf.

- `common`: levels, audit stamps, areas, H3 cells;
- `keywords`: the keyword automaton and the cues that dismiss a term (negation, hypotheticals, news);
- `rules`: the versioned rule and its checks, the rules in force;
- `spec`: a rule version's stored content (the Rule message's JSON form, written without protobuf);
- `alerts`: the alert aggregate (fire, repeat, acknowledge, escalate, silence, resolve), routing,
  silences, who sees what;
- `detection`: findings in reports (keyword, volume, anomaly, strength gap), signals and warnings;
  the heat map;
- `obligations`: obligations and the warnings they come with;
- `cap`: CAP 1.2 documents.

The names most callers need are here as well.
"""
from .alerts import (
    OPEN_STATES, STATES, Alert, AlertChanged, AlertFilter, Finding, Matcher,
    Notification, Silence, channel_for, ensure_visible, next_recipient, route, silence_holding, silence_state,
    silenced_by, )
from .cap import CAP_NS, CapInput, CapSender, cap_feed, cap_input, cap_xml
from .common import (
    LEVEL_CN, LEVELS, SYSTEM, Area, Stamp, cell_center, fingerprint, h3_cells, hour_of, level_rank, max_level,
)
from .detection import (
    AnomalyWindow, Box, CellCounts, EnforcementWarning, GapFinding, GapWindow, HeatCell, HourCounts, Incident, Place,
    Report, RuleCounts, Signal, UnitPosition, WindowCount, anomaly, anomaly_area, anomaly_finding, applies,
    gap_finding, heat_map, keyword_findings, rollup_keys, rule_area, signal_findings, strength_gap, volume_finding,
    volume_window, warning_findings,
)
from .keywords import DEFAULT_CUE_SET, Cues, KeywordHit, KeywordMatcher, TermSpec, dismissed_by_context, \
    strongest_by_rule
from .obligations import (
    ASSIGN_UNIT_SECONDS, OPEN_ASSIGNMENT_STATES, REPORT_BACK_SECONDS, Assignment, Case, Obligation, WorkOrder,
    assign_unit_description, obligation_finding,
    obligation_kinds, obligation_state, report_back_description, report_back_due, report_back_seconds,
)
from .rules import RULE_KINDS, UPDATABLE, KeywordTerm, Rule, RuleSet, build_matcher, validate_rule
from .spec import rule_from_spec, rule_spec

__all__ = [
    "OPEN_STATES", "STATES", "Alert", "AlertChanged", "AlertFilter", "Finding",
    "Matcher", "Notification", "Silence", "channel_for", "ensure_visible", "next_recipient", "route",
    "silence_holding", "silence_state", "silenced_by",
    "CAP_NS", "CapInput", "CapSender", "cap_feed", "cap_input", "cap_xml",
    "LEVEL_CN", "LEVELS", "SYSTEM", "Area", "Stamp", "cell_center", "fingerprint", "h3_cells", "hour_of",
    "level_rank", "max_level",
    "AnomalyWindow", "Box", "CellCounts", "EnforcementWarning", "GapFinding", "GapWindow", "HeatCell",
    "HourCounts", "Incident", "Place", "Report", "RuleCounts", "Signal", "UnitPosition", "WindowCount", "anomaly",
    "anomaly_area", "anomaly_finding", "applies", "gap_finding",
    "heat_map", "keyword_findings", "rollup_keys", "rule_area", "signal_findings", "strength_gap", "volume_finding",
    "volume_window", "warning_findings",
    "DEFAULT_CUE_SET", "Cues", "KeywordHit", "KeywordMatcher", "TermSpec", "dismissed_by_context",
    "strongest_by_rule",
    "ASSIGN_UNIT_SECONDS", "OPEN_ASSIGNMENT_STATES", "REPORT_BACK_SECONDS", "Assignment", "Case", "Obligation",
    "WorkOrder", "assign_unit_description", "obligation_finding",
    "obligation_kinds", "obligation_state", "report_back_description", "report_back_due", "report_back_seconds",
    "RULE_KINDS", "UPDATABLE", "KeywordTerm", "Rule", "RuleSet", "build_matcher", "validate_rule",
    "rule_from_spec", "rule_spec",
]
