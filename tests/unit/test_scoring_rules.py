"""Scoring rules as data: the condition language, the sample rule set, measurements and periods."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.scoring import domain
from services.scoring.domain import Fact, OfficerOnFact, RuleEngine, RuleSet
from services.scoring.domain.rules import render
from services.scoring.expr import ExpressionError, compile_condition, evaluate, truthy
from services.scoring.sample_rules import SAMPLE_RULE_SET, SAMPLE_RULES

DATA = {"assignment": {"state": "ASSIGNMENT_STATE_REPORTED_BACK", "outcome": "OUTCOME_MEDIATED", "evidence": [1, 2]},
        "derived": {"report_back_seconds": 900.0, "limit": 1800, "on_time": True, "missing": None}}


@pytest.mark.parametrize("condition, expected", [
    ('assignment.state == "ASSIGNMENT_STATE_REPORTED_BACK"', True),
    ("assignment.state == 'ASSIGNMENT_STATE_ACCEPTED'", False),
    ("derived.report_back_seconds <= derived.limit && derived.on_time", True),
    ("derived.report_back_seconds * 2 > derived.limit - 1", True),
    ('assignment.outcome in ["OUTCOME_MEDIATED", "OUTCOME_REFERRED"]', True),
    ("!(derived.on_time) || size(assignment.evidence) == 2", True),
    ("has(derived.missing) || has(derived.nothing.deeper)", False),
    ("derived.missing > 3", False),
    ("derived.missing == null", True),
    ("-derived.limit < 0", True),
    ("", True),
])
def test_conditions(condition, expected):
    assert truthy(evaluate(compile_condition(condition), DATA)) is expected


@pytest.mark.parametrize("bad", ["a ==", "a = 1", "(a == 1", "a.1", "has(1)", "a == @", "size(a"])
def test_conditions_that_do_not_parse_name_the_problem(bad):
    with pytest.raises(ExpressionError):
        compile_condition(bad)


def test_the_sample_rule_set_is_valid_and_covers_every_dimension_and_source():
    assert domain.rule_violations(SAMPLE_RULES, "rules") == []
    assert {r.dimension for r in SAMPLE_RULES} == set(domain.DIMENSIONS)
    assert {r.event_type for r in SAMPLE_RULES} == set(domain.EVENT_TYPES)
    assert all(r.explanation_template.endswith("{points}分") for r in SAMPLE_RULES)


def test_rule_violations_name_each_field():
    bad = domain.Rule(rule_id="x", description="", dimension="", event_type="nope", condition="a ==",
                      points=Decimal(0), reason_code="lower", explanation_template="", monthly_cap=Decimal(-1))
    fields = {f for f, _ in domain.rule_violations([bad, bad], "rs")}
    assert fields == {f"rs[{i}].{f}" for i in (0, 1) for f in (
        "rule_id", "description", "dimension", "event_type", "condition", "points", "reason_code",
        "explanation_template", "monthly_cap")}


def measure(**kw):
    t = datetime(2028, 1, 1, tzinfo=timezone.utc)
    args = dict(state="REPORTED_BACK", outcome="MEDIATED", incident_type="FIGHT", offer=t,
                accept=t + timedelta(seconds=40), arrive=t + timedelta(seconds=170), clear=t + timedelta(minutes=20),
                report_back=t + timedelta(minutes=45), evidence_count=1, arrival_target_s=180)
    args.update(kw)
    return domain.assignment_measurements(**args)


def test_measurements_of_an_assignment():
    m = measure()
    assert (m["accept_seconds"], m["arrive_seconds"], m["arrived_within_target"]) == (40, 170, True)
    assert (m["report_back_seconds"], m["report_back_minutes"], m["report_back_on_time"]) == (1500, 25, True)
    late = measure(report_back=datetime(2028, 1, 1, 0, 51, tzinfo=timezone.utc))
    assert late["report_back_on_time"] is False and late["report_back_limit_seconds"] == 1800
    # Never cleared: the limit runs from acceptance, four hours.
    uncleared = measure(clear=None, report_back=datetime(2028, 1, 1, 3, tzinfo=timezone.utc))
    assert uncleared["report_back_on_time"] is True and uncleared["report_back_limit_seconds"] == 4 * 3600
    assert measure(outcome="NO_ISSUE_FOUND")["outcome_contradicts_type"] is True
    assert measure(incident_type="DISPUTE", outcome="NO_ISSUE_FOUND")["outcome_contradicts_type"] is False


def test_explanations_show_the_labels_of_codes_and_conditions_still_see_the_codes():
    rule = next(r for r in SAMPLE_RULES if r.rule_id == "QUA-OUTCOME-CONTRADICTS")
    engine = RuleEngine(RuleSet(version=1, description="", rules=[rule], effective_time=datetime.min))
    fact = Fact(fact_id="f", event_id="e", event_type=rule.event_type, subject="cases/c/assignments/a",
                occur_time=datetime(2028, 1, 10, 9, tzinfo=timezone.utc), station_id="S01",
                officers=[OfficerOnFact("P1", "S01")],
                data={"case_name": "cases/c", "assignment": {"state": "ASSIGNMENT_STATE_REPORTED_BACK",
                                                             "outcome": "OUTCOME_NO_ISSUE_FOUND"},
                      "derived": {"outcome": "NO_ISSUE_FOUND", "incident_type": "FIGHT",
                                  "outcome_contradicts_type": True}})
    [entry] = engine.apply(fact, lambda *_: Decimal(0))
    assert entry.explanation == "cases/c警情类型打架斗殴以现场无警情结案，结果与类型矛盾，-2分"
    assert render("{assignment.outcome}／{review.corrected_incident_type}／{report.satisfaction}",
                  {"assignment": {"outcome": "OUTCOME_CRIMINAL_CASE"},
                   "review": {"corrected_incident_type": "THEFT"},
                   "report": {"satisfaction": "SATISFACTION_BASICALLY_SATISFIED"}}, Decimal(0)) == "刑事立案／盗窃／基本满意"
    # A code no table knows yet is shown as it is rather than dropped.
    assert render("{derived.outcome}", {"derived": {"outcome": "NEW_OUTCOME"}}, Decimal(0)) == "NEW_OUTCOME"


def test_monthly_cap_and_explanations():
    rule = next(r for r in SAMPLE_RULES if r.rule_id == "QTY-ACCEPT")
    engine = RuleEngine(RuleSet(version=7, description="", rules=[rule], effective_time=datetime.min))
    fact = Fact(fact_id="f", event_id="e", event_type=rule.event_type, subject="cases/c/assignments/a",
                occur_time=datetime(2028, 1, 31, 20, tzinfo=timezone.utc), station_id="S01",
                officers=[OfficerOnFact("P1", "S01")],
                data={"case_name": "cases/c", "assignment": {"state": "ASSIGNMENT_STATE_ACCEPTED"}})
    seen = []

    def used(rule_id, officer, station, month):
        seen.append(month)
        return Decimal("59.5")

    [entry] = engine.apply(fact, used)
    assert entry.points == Decimal("0.50") and entry.explanation == "cases/c接单处警，+0.5分"
    assert entry.rule_set_version == 7
    # 20:00 UTC on 31 January is already February in China.
    assert seen == [datetime(2028, 2, 1, tzinfo=domain.CST)]
    assert engine.apply(fact, lambda *a: Decimal(60)) == []


def test_rule_set_in_force_and_periods():
    t = datetime(2028, 1, 1, tzinfo=timezone.utc)
    later = RuleSet(version=2, description="", rules=[], effective_time=t, published=True)
    draft = RuleSet(version=3, description="", rules=[], effective_time=t, published=False)
    sets = [SAMPLE_RULE_SET, later, draft]
    assert domain.in_force(sets, t - timedelta(seconds=1)).version == 1
    assert domain.in_force(sets, t).version == 2
    starts = domain.buckets(datetime(2028, 1, 3, tzinfo=domain.CST), datetime(2028, 1, 20, tzinfo=domain.CST),
                            "WEEK")
    assert [s.astimezone(domain.CST).day for s in starts] == [3, 10, 17]
    start, end = domain.default_period(datetime(2028, 2, 29, 20, tzinfo=timezone.utc))
    assert (start.astimezone(domain.CST).month, end.astimezone(domain.CST).month) == (3, 4)
