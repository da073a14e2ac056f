"""Scoring's aggregates, pure: rule sets (draft, publish), ledger entries (written once, corrected by reversal),
enforcement warnings (raised, rectified, with their timeline), reviews; no database."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.scoring import domain
from services.scoring.domain import (
    Case, EnforcementWarning, EntryDraft, Fact, Findings, LedgerEntry, OfficerOnFact, Review, Rule, RuleSet,
)
from services.scoring.sample_rules import SAMPLE_RULES

T = datetime(2028, 5, 6, 9, tzinfo=timezone.utc)
COMMANDER = AuthContext("cmd-1", frozenset({"commander"}))
CHIEF_S01 = AuthContext("chief-1", frozenset({"station_chief"}), station="S01")


def draft(**kw) -> EntryDraft:
    values = dict(officer_id="P1", station_id="S01", dimension="EFFICIENCY", points=Decimal("-1"),
                  reason_code="ARRIVED_LATE", rule_id="EFF-ARRIVE-LATE", rule_set_version=1,
                  explanation="cases/c派警后400秒到场，超过180秒时限，-1分", subject="cases/c/assignments/a",
                  event_id="e-1", event_type="dispatch.AssignmentChanged", fact_id="cases/c/assignments/a#ON_SCENE",
                  occur_time=T)
    values.update(kw)
    return EntryDraft(**values)


# -- rule sets ------------------------------------------------------------------------------

def test_a_rule_set_is_drafted_then_published_once_and_each_step_is_an_event():
    rs = RuleSet.draft(version=2, description="第2版", rules=SAMPLE_RULES[:2], effective_time=T + timedelta(days=1),
                       actor=COMMANDER, now=T)
    assert (rs.name, rs.published, rs.create_actor, rs.create_roles, rs.create_time) == (
        "ruleSets/2", False, "cmd-1", ["commander"], T)
    [created] = rs.pull_events()
    assert isinstance(created, domain.RuleSetCreated) and created.rule_set.published is False

    rs.publish(actor=COMMANDER, now=T + timedelta(hours=1))
    assert rs.published and (rs.publish_actor, rs.publish_time) == ("cmd-1", T + timedelta(hours=1))
    [published] = rs.pull_events()
    assert isinstance(published, domain.RuleSetPublished) and published.rule_set.published
    assert created.rule_set.published is False, "an event keeps the state it announced"

    with pytest.raises(FailedPrecondition) as err:
        rs.publish(actor=COMMANDER, now=T + timedelta(hours=2))
    assert err.value.reason == "ALREADY_PUBLISHED" and rs.pull_events() == []


def test_a_rule_set_never_takes_effect_in_the_past():
    rs = RuleSet.draft(version=3, description="", rules=SAMPLE_RULES[:1], effective_time=T, actor=COMMANDER, now=T)
    rs.pull_events()
    with pytest.raises(FailedPrecondition) as err:
        rs.publish(actor=COMMANDER, now=T + timedelta(seconds=1))
    assert err.value.reason == "EFFECTIVE_TIME_IN_PAST" and not rs.published and rs.pull_events() == []
    rs.publish(actor=COMMANDER, now=T)  # effective from now on is fine
    assert rs.published


# -- the ledger -----------------------------------------------------------------------------

def test_a_rule_entry_keeps_its_source_and_announces_itself():
    entry = LedgerEntry.by_rule(draft(points=Decimal("0.5")), now=T + timedelta(minutes=1))
    assert re.fullmatch(r"[0-9a-f]{32}", entry.id) and entry.name == f"ledgerEntries/{entry.id}"
    assert (entry.kind, entry.points, entry.rule_id, entry.fact_id, entry.create_time) == (
        "RULE", Decimal("0.50"), "EFF-ARRIVE-LATE", "cases/c/assignments/a#ON_SCENE", T + timedelta(minutes=1))
    assert entry.pull_events() == [domain.LedgerEntryRecorded(entry)]


def test_a_correction_is_a_reversal_and_a_replacement_with_who_and_why():
    original = LedgerEntry.by_rule(draft(), now=T)
    original.pull_events()
    later = T + timedelta(days=1)
    c = original.correct(reason="道路施工", corrected_points=Decimal("0.50"), already_reversed=False,
                         actor=CHIEF_S01, now=later)
    assert (c.reversal.kind, c.reversal.points, c.reversal.reverses) == ("REVERSAL", Decimal("1.00"), original.id)
    assert c.reversal.explanation == f"更正：撤销积分条目{original.id}（+1分），原因：道路施工"
    assert (c.replacement.kind, c.replacement.points, c.replacement.rule_id) == ("REPLACEMENT", Decimal("0.50"), "")
    assert c.replacement.explanation.startswith(f"更正：积分条目{original.id}改为+0.5分，原因：道路施工；原记录：")
    for e in c.entries:
        assert (e.correction_actor, e.correction_roles, e.correction_time, e.correction_reason) == (
            "chief-1", ["station_chief"], later, "道路施工")
        assert (e.occur_time, e.create_time, e.fact_id, e.officer_id) == (T, later, original.fact_id, "P1")
        assert e.pull_events() == [domain.LedgerEntryRecorded(e)]
    assert original.pull_events() == [], "the original is never changed"
    cancel = original.correct(reason="x", corrected_points=None, already_reversed=False, actor=COMMANDER, now=later)
    assert cancel.replacement is None and cancel.entries == [cancel.reversal]


def test_what_cannot_be_corrected():
    original = LedgerEntry.by_rule(draft(station_id="S02"), now=T)
    with pytest.raises(FailedPrecondition) as err:
        original.correct(reason="x", corrected_points=None, already_reversed=True, actor=COMMANDER, now=T)
    assert err.value.reason == "ALREADY_REVERSED"
    with pytest.raises(PermissionDenied) as err:
        original.correct(reason="x", corrected_points=None, already_reversed=False, actor=CHIEF_S01, now=T)
    assert err.value.reason == "OTHER_STATION"
    reversal = original.correct(reason="x", corrected_points=None, already_reversed=False, actor=COMMANDER,
                                now=T).reversal
    with pytest.raises(FailedPrecondition) as err:
        reversal.correct(reason="y", corrected_points=None, already_reversed=False, actor=COMMANDER, now=T)
    assert err.value.reason == "REVERSAL_NOT_REVERSIBLE"


def test_quality_falls_at_five_points_below_the_month_before():
    assert domain.quality_falling(Decimal("-3"), Decimal("2"))
    assert not domain.quality_falling(Decimal("-2.99"), Decimal("2"))


def test_preview_counts_monthly_caps_among_the_facts_in_time_order():
    accept = next(r for r in SAMPLE_RULES if r.rule_id == "QTY-ACCEPT")
    capped = Rule(**{**vars(accept), "monthly_cap": Decimal("1.5")})
    rs = RuleSet(version=9, description="", rules=[capped], effective_time=T)

    def fact(i, at):
        return Fact(fact_id=f"f{i}", event_id=f"e{i}", event_type=accept.event_type, subject=f"a{i}", occur_time=at,
                    station_id="S01", officers=[OfficerOnFact("P1", "S01")],
                    data={"case_name": f"cases/{i}", "assignment": {"state": "ASSIGNMENT_STATE_ACCEPTED"}})

    facts = [fact(3, T + timedelta(days=2)), fact(1, T), fact(2, T + timedelta(days=1)),
             fact(4, T + timedelta(days=40))]
    drafts = domain.preview(rs, facts)
    assert [(d.fact_id, d.points) for d in drafts] == [
        ("f1", Decimal("1.00")), ("f2", Decimal("0.50")), ("f4", Decimal("1.00"))]
    assert domain.month_end(domain.month_start(T)) == datetime(2028, 6, 1, tzinfo=domain.CST)


# -- enforcement warnings ----------------------------------------------------------------------

def test_a_warning_is_raised_open_and_rectified_once_with_its_timeline():
    officer = OfficerOnFact("P1", "S01", "张警官")
    w = EnforcementWarning.issue(kind="OVERDUE_REPORT_BACK", officer=officer, case_name="cases/c", cause="a-1",
                                 detail="已超过回告时限", source_event_id="e-1", now=T)
    assert (w.status, w.officer_id, w.station_id, w.raise_time, w.rectify_time) == ("OPEN", "P1", "S01", T, None)
    assert [(e.action, e.actor, e.roles, e.time, e.detail) for e in w.timeline] == [
        ("RAISED", "scoring", ["service"], T, "已超过回告时限")]
    assert w.new_entries == w.timeline
    [raised] = w.pull_events()
    assert isinstance(raised, domain.WarningRaised) and raised.warning.id == w.id

    later = T + timedelta(hours=3)
    w.rectify(reason="a-1已完成回告", now=later)
    assert (w.status, w.rectify_time) == ("RECTIFIED", later)
    assert [e.action for e in w.timeline] == ["RAISED", "RECTIFIED"] and w.timeline[1].detail == "a-1已完成回告"
    [rectified] = w.pull_events()
    assert isinstance(rectified, domain.WarningRectified) and rectified.warning.status == "RECTIFIED"
    assert raised.warning.status == "OPEN" and raised.warning.rectify_time is None

    with pytest.raises(FailedPrecondition) as err:
        w.rectify(reason="again", now=later)
    assert err.value.reason == "WARNING_NOT_OPEN" and w.pull_events() == []


def test_warnings_get_ids_of_their_own():
    officer = OfficerOnFact("P1", "S01")
    ids = {EnforcementWarning.issue(kind="MISSING_EVIDENCE", officer=officer, case_name="", cause="c", detail="d",
                                    source_event_id="", now=T).id for _ in range(3)}
    assert len(ids) == 3 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


# -- reviews ------------------------------------------------------------------------------------

CASE = Case("cases/c1", report="reports/r1", station_id="S01", grid_id="G1", incident_type="FIGHT")
LEGAL_S01 = AuthContext("L-1", frozenset({"legal_officer"}), station="S01")


def test_a_review_covers_the_officers_and_measures_its_findings():
    officers = [OfficerOnFact("P1", "S01"), OfficerOnFact("P2", "S01")]
    findings = Findings(evidence="MISSING", procedure="FLAWED", classification="CORRECT",
                        missing_evidence=["现场照片", "询问笔录"], comment="补充证据")
    r = Review.file(case=CASE, officers=officers, findings=findings, actor=LEGAL_S01, now=T)
    assert (r.name, r.case_name, r.officer_ids, r.station_id, r.actor, r.roles, r.create_time) == (
        f"reviews/{r.id}", "cases/c1", ["P1", "P2"], "S01", "L-1", ["legal_officer"], T)
    assert r.measurements(CASE) == {"missing_evidence": "现场照片、询问笔录", "procedure_flaws": "未列明",
                                    "incident_type": "FIGHT"}
    assert r.ledger_entries == []


def test_who_may_review_and_whom():
    domain.check_reviewer(CASE, LEGAL_S01)
    domain.check_reviewer(CASE, AuthContext("L-0", frozenset({"legal_officer"})))  # a legal officer of no station
    domain.check_reviewer(CASE, AuthContext("svc", frozenset({"legal_officer", "service"}), station="S09"))
    with pytest.raises(PermissionDenied) as err:
        domain.check_reviewer(CASE, AuthContext("L-9", frozenset({"legal_officer"}), station="S09"))
    assert err.value.reason == "OTHER_STATION"
    worked = [OfficerOnFact("P1", "S01"), OfficerOnFact("P2", "S01")]
    assert domain.named_officers(CASE, ["P2"], worked) == [worked[1]]
    with pytest.raises(FailedPrecondition) as err:
        domain.named_officers(CASE, ["P2", "P9"], worked)
    assert err.value.reason == "OFFICER_NOT_ON_CASE" and "P9" in err.value.message


def test_report_back_obligations_and_overdue_minutes():
    ob = domain.ReportBackObligation(assignment="a", case_name="c", station_id="S01", officers=[],
                                     due_time=domain.report_back_due(T, T + timedelta(minutes=10)))
    assert ob.due_time == T + timedelta(minutes=40)
    assert domain.overdue_minutes(ob, ob.due_time + timedelta(minutes=5, seconds=59)) == 5
