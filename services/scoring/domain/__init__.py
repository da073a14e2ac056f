"""Scoring's domain, by aggregate. Nothing here knows gRPC or SQL.

- `rules`: rules as data, facts, the rule engine, points and periods; the `RuleSet` aggregate
  (drafted, published once, never in the past);
- `cases`: what scoring learns from dispatch's, intake's and referral's events, the measurements
  rules read, report-back (回告) obligations;
- `ledger`: the `LedgerEntry` aggregate, written once (by a rule or a correction) and never changed;
  a correction is a reversal, and perhaps a replacement, of an entry;
- `enforcement`: the `EnforcementWarning` aggregate, raised once per officer and cause, rectified
  once, with its timeline;
- `reviews`: a legal officer's `Review`, written once and announced before it is scored (its event
  is the source of its ledger entries).

Each aggregate records the events of its changes; the unit of work publishes them at commit.
Everything is importable from `services.scoring.domain`.
"""
from .rules import (
    DIMENSIONS, CST, EVENT_TYPES, money, Rule, RuleSet, RuleSetCreated, RuleSetPublished, rule_violations,
    OfficerOnFact, Fact, EntryDraft, signed, render, month_start, RuleEngine, in_force, preview, month_end,
    default_period, buckets, bucket_of, new_id,
)
from .cases import (
    REPORT_BACK_AFTER_CLEAR, REPORT_BACK_AFTER_ACCEPT, DEFAULT_ARRIVAL_TARGET_S, CONTRADICTING_OUTCOMES,
    OUTCOMES_NEEDING_EVIDENCE, outcome_contradicts, assignment_measurements, report_back_due, Case,
    AssignmentChange, WORKING_STATES, SCORED_STATES, Rating, PreliminaryHandling, ReportBackObligation,
    overdue_minutes,
)
from .ledger import (
    QUALITY_WINDOW, QUALITY_DROP, LedgerEntry, Correction, LedgerEntryRecorded, quality_falling,
)
from .enforcement import (
    SCORING, EnforcementWarning, WarningRaised, WarningRectified,
)
from .reviews import (
    Findings, Review, ReviewCreated, check_reviewer, named_officers,
)
