"""Scoring's use cases on a fake unit of work: in-memory repositories, the real event mapping, a FakeOutbox.

What the database adds (uniqueness of a fact, of a rule entry per fact, rule and officer, of a warning per
officer, kind and cause) the fakes keep too, so that the use cases' once-only behaviour is tested here.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from google.protobuf import timestamp_pb2

from smart110.common.v1 import common_pb2, events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dpb
from smart110.intake.v1 import intake_service_pb2 as ipb
from smart110.referral.v1 import referral_service_pb2 as rpb
from smart110.scoring.v1 import scoring_service_pb2 as pb

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.scoring import domain, handlers, mapping
from services.scoring.domain import Case, Findings, OfficerOnFact, RuleSet
from services.scoring.sample_rules import SAMPLE_RULE_SET
from tests.support import Clock, fake_unit_of_work

UTC = timezone.utc
T0 = datetime(2028, 4, 3, 9, tzinfo=UTC)
RATINGS = ("dispatch.CaseUpdated", "intake.ReportUpdated")


# -- in-memory repositories ------------------------------------------------------------------

class RuleSets:
    def __init__(self, *rule_sets: RuleSet):
        self.by_version = {rs.version: rs for rs in rule_sets}

    def get(self, version, *, for_update=False):
        return self.by_version.get(version)

    def published(self):
        return [rs for rs in self.by_version.values() if rs.published]

    def next_version(self):
        return max(self.by_version, default=0) + 1

    def add(self, rs):
        self.by_version[rs.version] = rs

    def save(self, rs):
        self.by_version[rs.version] = rs


class Facts:
    def __init__(self):
        self.by_id = {}

    def add(self, f):
        if f.fact_id in self.by_id:
            return False
        self.by_id[f.fact_id] = f
        return True

    def exists_for_subject(self, event_type, subject):
        return any(f.event_type == event_type and f.subject == subject for f in self.by_id.values())

    def waiting_ratings(self, case_name, report):
        return [f for f in self.by_id.values() if f.event_type in RATINGS and not f.officers
                and (f.data.get("case_name") == case_name or f.subject == (report or case_name))]


class Ledger:
    def __init__(self):
        self.entries = []

    def add(self, e):
        for x in self.entries:
            if e.kind == "RULE" and x.kind == "RULE" and (x.fact_id, x.rule_id, x.officer_id) == (
                    e.fact_id, e.rule_id, e.officer_id):
                return False
            if e.kind == "REVERSAL" and x.kind == "REVERSAL" and x.reverses == e.reverses:
                return False
        self.entries.append(e)
        return True

    def get(self, entry_id, *, lock=False):
        return next((e for e in self.entries if e.id == entry_id), None)

    def is_reversed(self, entry_id):
        return any(e.kind == "REVERSAL" and e.reverses == entry_id for e in self.entries)

    def points_of_rule(self, rule_id, officer_id, station_id, start, end):
        return sum((e.points for e in self.entries if e.rule_id == rule_id and e.officer_id == officer_id
                    and (officer_id or e.station_id == station_id) and start <= e.occur_time < end), Decimal(0))

    def quality_points(self, officer_id, after, until):
        return sum((e.points for e in self.entries if e.officer_id == officer_id and e.dimension == "QUALITY"
                    and after < e.occur_time <= until), Decimal(0))

    def rules(self, officer_id=None):
        return sorted((e.rule_id, e.points) for e in self.entries if officer_id is None or e.officer_id == officer_id)


class Cases:
    def __init__(self, grids=None):
        self.by_name = {}
        self.officers_on = {}
        self.grids = grids or {}

    def upsert(self, case):
        known = self.by_name.get(case.case_name, Case(case.case_name))
        self.by_name[case.case_name] = Case(case.case_name, **{
            k: getattr(case, k) or getattr(known, k) for k in ("report", "station_id", "grid_id", "incident_type")})

    def get(self, case_name):
        return self.by_name.get(case_name)

    def by_report(self, report):
        return next((c for c in self.by_name.values() if c.report == report), None)

    def add_officers(self, case_name, officers, *, reported_back):
        for o in officers:
            _, before = self.officers_on.get((case_name, o.officer_id), (o, False))
            self.officers_on[(case_name, o.officer_id)] = (o, before or reported_back)

    def officers(self, case_name, *, reported_back_only=False):
        return [o for (c, _), (o, back) in sorted(self.officers_on.items())
                if c == case_name and (back or not reported_back_only)]

    def arrival_target(self, grid_id):
        return self.grids.get(grid_id)


class Obligations:
    def __init__(self):
        self.rows = {}

    def open(self, ob):
        self.rows.setdefault(ob.assignment, dict(ob=ob, done=None, cancelled=False, warned=False))

    def _pending(self, assignment):
        row = self.rows.get(assignment)
        return row if row and row["done"] is None else None

    def reschedule(self, assignment, due_time):
        if row := self._pending(assignment):
            row["ob"] = replace(row["ob"], due_time=due_time)

    def fulfil(self, assignment, at):
        if row := self._pending(assignment):
            row["done"] = at

    def cancel(self, assignment):
        if row := self._pending(assignment):
            row["cancelled"] = True

    def overdue(self, now):
        due = [r["ob"] for r in self.rows.values() if r["done"] is None and not r["cancelled"] and not r["warned"]
               and r["ob"].due_time < now]
        return sorted(due, key=lambda ob: ob.due_time)

    def mark_warned(self, assignment):
        self.rows[assignment]["warned"] = True


class Warnings:
    def __init__(self):
        self.by_id = {}
        self.timelines = {}

    def add(self, w):
        if any((x.kind, x.officer_id, x.cause) == (w.kind, w.officer_id, w.cause) for x in self.by_id.values()):
            return False
        self.by_id[w.id] = w
        self._append(w)
        return True

    def open_ones(self, kind, *, cause="", case_name=""):
        return [w for w in self.by_id.values() if w.kind == kind and w.status == "OPEN"
                and (w.cause == cause if cause else w.case_name == case_name)]

    def save(self, w):
        self.by_id[w.id] = w
        self._append(w)

    def _append(self, w):
        self.timelines.setdefault(w.id, []).extend(w.new_entries)
        w.new_entries = []

    def of(self, officer_id):
        return [w for w in self.by_id.values() if w.officer_id == officer_id]


class Reviews:
    def __init__(self):
        self.added = []

    def add(self, r):
        self.added.append(r)


class Events:
    def event_id(self, sequence):
        return f"event-{sequence}"


class Repos:
    def __init__(self, *rule_sets, grids=None):
        self.rule_sets = RuleSets(*(rule_sets or (SAMPLE_RULE_SET,)))
        self.facts = Facts()
        self.ledger = Ledger()
        self.cases = Cases(grids)
        self.grids = None
        self.obligations = Obligations()
        self.warnings = Warnings()
        self.reviews = Reviews()
        self.events = Events()


COMMANDER = AuthContext("cmd-1", frozenset({"commander"}))


def unit(repos, at=T0, actor=None):
    return fake_unit_of_work(repos, event_mapping=mapping.event_to_message, clock=Clock(at), actor=actor)


def published(uow) -> list[str]:
    uow.flush()
    return uow.outbox.types()


# -- dispatch events, through the domain's terms ---------------------------------------------------

OFFICER = OfficerOnFact("P1", "S01", "张警官")


def change(state: str, *, outcome="", evidence=1, at: timedelta, assignment="cases/c1/assignments/a1", **times):
    offer = T0
    return domain.AssignmentChange(
        event_id=f"e-{state}", assignment=assignment, case_name="cases/c1", station_id="S01",
        incident_type="FIGHT", grid_id="G1", report="reports/r1", state=state, outcome=outcome,
        officers=[OFFICER], times=dict(dict.fromkeys(("offer", "accept", "arrive", "clear", "report_back")),
                                       offer=offer, **times),
        evidence_count=evidence, arrival_target_s=0, arrival_seconds=None, arrival_target_met=False,
        data={"assignment": {"state": f"ASSIGNMENT_STATE_{state}", "outcome": f"OUTCOME_{outcome}" if outcome
                             else "OUTCOME_UNSPECIFIED"}, "case_name": "cases/c1"},
        event_time=T0 + at)


def run_case(repos, *, outcome="MEDIATED", evidence=1, report_back_after=timedelta(minutes=35)):
    """Accept at 30 s, on scene at 150 s, cleared at 20 min, reported back."""
    accept, arrive, clear = T0 + timedelta(seconds=30), T0 + timedelta(seconds=150), T0 + timedelta(minutes=20)
    steps = [
        change("ACCEPTED", at=timedelta(seconds=30), accept=accept),
        change("ON_SCENE", at=timedelta(seconds=150), accept=accept, arrive=arrive),
        change("CLEARED", at=timedelta(minutes=20), accept=accept, arrive=arrive, clear=clear),
        change("REPORTED_BACK", outcome=outcome, evidence=evidence, at=report_back_after, accept=accept,
               arrive=arrive, clear=clear, report_back=T0 + report_back_after),
    ]
    types = []
    for step in steps:
        uow = unit(repos, at=step.event_time)
        handlers.assignment_changed(uow, change=step)
        types.append(published(uow))
    return types


def test_a_handled_assignment_scores_once_per_state_and_tracks_its_report_back():
    repos = Repos(grids={"G1": 180})
    types = run_case(repos)
    assert types[0] == ["scoring.LedgerEntryRecorded"] * 2  # accepted; fast acceptance
    assert types[2] == [], "clearing the scene scores nothing"
    assert repos.ledger.rules("P1") == [
        ("EFF-ACCEPT-FAST", Decimal("0.50")), ("EFF-ARRIVE-ON-TARGET", Decimal("1.00")),
        ("EFF-REPORT-BACK-ON-TIME", Decimal("1.00")), ("QTY-ACCEPT", Decimal("1.00")),
        ("QTY-REPORT-BACK", Decimal("1.00"))]
    on_target = next(e for e in repos.ledger.entries if e.rule_id == "EFF-ARRIVE-ON-TARGET")
    assert "未超过180秒时限" in on_target.explanation and on_target.occur_time == T0 + timedelta(seconds=150)
    row = repos.obligations.rows["cases/c1/assignments/a1"]
    assert row["done"] == T0 + timedelta(minutes=35) and row["ob"].due_time == T0 + timedelta(minutes=50)
    assert repos.cases.officers("cases/c1", reported_back_only=True) == [OFFICER]

    # The same report-back again (a publisher that resent it) adds nothing.
    again = unit(repos, at=T0 + timedelta(hours=1))
    handlers.assignment_changed(again, change=change("REPORTED_BACK", outcome="MEDIATED", at=timedelta(hours=1),
                                                     report_back=T0 + timedelta(minutes=35)))
    assert published(again) == [] and len(repos.ledger.entries) == 5


def test_a_contradicting_outcome_without_evidence_deducts_and_warns_each_officer_once():
    repos = Repos()
    types = run_case(repos, outcome="CRIMINAL_CASE", evidence=0)
    # FIGHT closed as a criminal case contradicts nothing; no evidence for a criminal case warns.
    assert types[3].count("scoring.WarningRaised") == 1
    [w] = repos.warnings.of("P1")
    assert (w.kind, w.cause, w.source_event_id, w.status) == (
        "MISSING_EVIDENCE", "cases/c1/assignments/a1", "e-REPORTED_BACK", "OPEN")
    assert "以刑事立案结案回告但未上传任何证据材料" in w.detail and "CRIMINAL_CASE" not in w.detail
    assert [e.action for e in repos.warnings.timelines[w.id]] == ["RAISED"]

    repos = Repos()
    run_case(repos, outcome="NO_ISSUE_FOUND")
    [w] = repos.warnings.of("P1")
    assert w.kind == "OUTCOME_CONTRADICTS_TYPE"
    assert "警情类型为打架斗殴，回告结果为现场无警情" in w.detail and "FIGHT" not in w.detail
    assert ("QUA-OUTCOME-CONTRADICTS", Decimal("-2.00")) in repos.ledger.rules("P1")


def test_the_sweeper_warns_of_an_overdue_report_back_once_and_the_report_back_rectifies_it():
    repos = Repos()
    accept = T0 + timedelta(seconds=30)
    for step in (change("ACCEPTED", at=timedelta(seconds=30), accept=accept),
                 change("CLEARED", at=timedelta(minutes=20), accept=accept, clear=T0 + timedelta(minutes=20))):
        handlers.assignment_changed(unit(repos, at=step.event_time), change=step)
    due = T0 + timedelta(minutes=50)

    assert handlers.sweep_overdue_report_backs(unit(repos, at=due)) == []
    sweep = unit(repos, at=due + timedelta(minutes=7))
    [w] = handlers.sweep_overdue_report_backs(sweep)
    assert (w.kind, w.officer_id, w.case_name) == ("OVERDUE_REPORT_BACK", "P1", "cases/c1")
    assert "超过回告时限7分钟" in w.detail
    assert published(sweep) == ["scoring.WarningRaised"]
    assert handlers.sweep_overdue_report_backs(unit(repos, at=due + timedelta(hours=1))) == [], "warns once"

    late = unit(repos, at=T0 + timedelta(hours=2))
    handlers.assignment_changed(late, change=change(
        "REPORTED_BACK", outcome="MEDIATED", at=timedelta(hours=2), accept=accept, clear=T0 + timedelta(minutes=20),
        report_back=T0 + timedelta(hours=2)))
    types = published(late)
    assert types[0] == "scoring.WarningUpdated", "the rectification comes first, then the report-back's entries"
    assert (w.status, w.rectify_time) == ("RECTIFIED", T0 + timedelta(hours=2))
    assert [e.action for e in repos.warnings.timelines[w.id]] == ["RAISED", "RECTIFIED"]
    _, subject, payload = late.outbox.events[0]
    assert subject == w.name and payload.action == "RECTIFIED" and payload.warning.status == \
        pb.WARNING_STATUS_RECTIFIED
    assert ("EFF-REPORT-BACK-LATE", Decimal("-2.00")) in repos.ledger.rules("P1")


def test_a_rating_scores_the_officers_who_reported_back_and_a_rating_ahead_of_them_waits():
    repos = Repos()
    # The reporter rates before dispatch's events arrive: kept, scoring nobody yet.
    early = domain.Rating(event_id="e-r", event_type="intake.ReportUpdated", subject="reports/r1", case_name="",
                          data={"report": {"name": "reports/r1", "satisfaction": "SATISFACTION_SATISFIED"}},
                          occur_time=T0 + timedelta(hours=3))
    uow = unit(repos)
    assert handlers.score_report_rating(uow, rating=early) == []
    assert published(uow) == [] and list(repos.facts.by_id) == ["reports/r1#intake.ReportUpdated"]

    handlers.record_case(unit(repos), case=Case("cases/c1", report="reports/r1", station_id="S01"))
    run_case(repos)
    assert ("QUA-REPORT-SATISFIED", Decimal("0.50")) in repos.ledger.rules("P1")
    rated = next(e for e in repos.ledger.entries if e.rule_id == "QUA-REPORT-SATISFIED")
    assert rated.occur_time == T0 + timedelta(hours=3) and rated.fact_id == "reports/r1#intake.ReportUpdated@P1"

    # The case's follow-up scores the officers who reported back, once.
    follow_up = domain.Rating(event_id="e-f", event_type="dispatch.CaseUpdated", subject="cases/c1",
                              case_name="cases/c1",
                              data={"dispatch_case": {"name": "cases/c1", "satisfaction": "SATISFACTION_UNSATISFIED"}},
                              occur_time=None)
    uow = unit(repos, at=T0 + timedelta(hours=5))
    [entry] = handlers.score_case_rating(uow, rating=follow_up)
    assert (entry.rule_id, entry.points, entry.occur_time) == ("QUA-CASE-UNSATISFIED", Decimal("-2.00"),
                                                               T0 + timedelta(hours=5))
    assert handlers.score_case_rating(unit(repos), rating=replace(follow_up, event_id="e-g")) == []


def test_quality_falling_fast_warns_once_a_month():
    repos = Repos()
    handlers.record_case(unit(repos), case=Case("cases/c1", station_id="S01"))
    repos.cases.add_officers("cases/c1", [OFFICER], reported_back=True)
    types = []
    for i in range(3):  # three unsatisfied follow-ups: -6 against 0 the month before
        uow = unit(repos, at=T0 + timedelta(days=i))
        handlers.score_case_rating(uow, rating=domain.Rating(
            event_id=f"e{i}", event_type="dispatch.CaseUpdated", subject=f"cases/c{i}", case_name="cases/c1",
            data={"dispatch_case": {"satisfaction": "SATISFACTION_UNSATISFIED"}}, occur_time=T0 + timedelta(days=i)))
        types.append(published(uow))
    assert types == [["scoring.LedgerEntryRecorded"], ["scoring.LedgerEntryRecorded"],
                     ["scoring.LedgerEntryRecorded", "scoring.WarningRaised"]]
    [w] = repos.warnings.of("P1")
    assert (w.kind, w.cause) == ("QUALITY_FALLING", "QUALITY:2028-04") and "下降6分" in w.detail


def test_preliminary_handling_scores_the_station():
    repos = Repos()
    uow = unit(repos)
    handling = domain.PreliminaryHandling(event_id="e-w", work_order="workOrders/w1", station_id="S07",
                                          data={"work_order": {"name": "workOrders/w1",
                                                               "status": "WORK_ORDER_STATUS_PRELIMINARY_POLICE"}},
                                          occur_time=None)
    [entry] = handlers.score_preliminary_handling(uow, handling=handling)
    assert (entry.rule_id, entry.officer_id, entry.station_id, entry.occur_time) == ("QTY-PRELIMINARY", "", "S07", T0)
    assert entry.explanation == "12345工单workOrders/w1由派出所先期处置，+1分"
    assert handlers.score_preliminary_handling(unit(repos), handling=handling) == []


# -- reviews --------------------------------------------------------------------------------------

LEGAL = AuthContext("L-1", frozenset({"legal_officer"}), station="S01")
MISSING = Findings(evidence="MISSING", procedure="CORRECT", classification="CORRECT", missing_evidence=["现场照片"])
COMPLETE = Findings(evidence="COMPLETE", procedure="CORRECT", classification="CORRECT")


def test_a_review_is_announced_then_scored_and_warns_of_missing_evidence_until_complete():
    repos = Repos()
    run_case(repos)
    uow = unit(repos, at=T0 + timedelta(days=1), actor=LEGAL)
    review = handlers.create_review(uow, case_name="cases/c1", officer_ids=[], findings=MISSING)
    types = published(uow)
    assert types == ["scoring.ReviewCreated"] + ["scoring.LedgerEntryRecorded"] * 3 + ["scoring.WarningRaised"]
    assert repos.reviews.added == [review] and review.officer_ids == ["P1"] and len(review.ledger_entries) == 3
    _, subject, announced = uow.outbox.events[0]
    assert subject == review.name and list(announced.review.ledger_entries) == [], "announced before it scored"
    scored = [e for e in repos.ledger.entries if e.subject == review.name]
    assert {e.event_id for e in scored} == {"event-1"}, "the entries' source is the review's own event"
    assert [e.id for e in scored] == review.ledger_entries
    missing = next(e for e in scored if e.rule_id == "QUA-EVIDENCE-MISSING")
    assert missing.explanation == "cases/c1经法制审核证据缺失（现场照片），-3分"
    [w] = repos.warnings.of("P1")
    assert (w.kind, w.cause, w.source_event_id) == ("MISSING_EVIDENCE", review.name, "event-1")

    later = unit(repos, at=T0 + timedelta(days=3), actor=LEGAL)
    handlers.create_review(later, case_name="cases/c1", officer_ids=["P1"], findings=COMPLETE)
    assert published(later)[-1] == "scoring.WarningUpdated" and w.status == "RECTIFIED"


def test_what_a_review_refuses():
    repos = Repos()
    with pytest.raises(NotFound):
        handlers.create_review(unit(repos, actor=LEGAL), case_name="cases/nope", officer_ids=[], findings=COMPLETE)
    handlers.record_case(unit(repos), case=Case("cases/c1", station_id="S01"))
    with pytest.raises(FailedPrecondition) as err:
        handlers.create_review(unit(repos, actor=LEGAL), case_name="cases/c1", officer_ids=[], findings=COMPLETE)
    assert err.value.reason == "NO_OFFICER_REPORTED_BACK"
    with pytest.raises(FailedPrecondition) as err:
        handlers.create_review(unit(repos, actor=LEGAL), case_name="cases/c1", officer_ids=["P9"], findings=COMPLETE)
    assert err.value.reason == "OFFICER_NOT_ON_CASE"
    other = AuthContext("L-2", frozenset({"legal_officer"}), station="S02")
    with pytest.raises(PermissionDenied):
        handlers.create_review(unit(repos, actor=other), case_name="cases/c1", officer_ids=[], findings=COMPLETE)
    assert repos.reviews.added == []


# -- corrections --------------------------------------------------------------------------------------

def test_a_correction_publishes_its_reversal_and_replacement_and_is_done_once():
    repos = Repos()
    run_case(repos)
    original = next(e for e in repos.ledger.entries if e.rule_id == "EFF-ARRIVE-ON-TARGET")
    uow = unit(repos, at=T0 + timedelta(days=1), actor=COMMANDER)
    c = handlers.reverse_entry(uow, entry_id=original.id, reason="核实", corrected_points=Decimal("0.50"))
    assert published(uow) == ["scoring.LedgerEntryRecorded"] * 2
    assert [subject for _, subject, _ in uow.outbox.events] == [c.reversal.name, c.replacement.name]
    assert (c.reversal.points, c.replacement.points) == (Decimal("-1.00"), Decimal("0.50"))
    assert mapping.correction_to_pb(c).replacement.points == 0.5
    with pytest.raises(FailedPrecondition) as err:
        handlers.reverse_entry(unit(repos, actor=COMMANDER), entry_id=original.id, reason="again",
                               corrected_points=None)
    assert err.value.reason == "ALREADY_REVERSED"
    with pytest.raises(FailedPrecondition) as err:
        handlers.reverse_entry(unit(repos, actor=COMMANDER), entry_id=c.reversal.id, reason="x",
                               corrected_points=None)
    assert err.value.reason == "REVERSAL_NOT_REVERSIBLE"
    with pytest.raises(NotFound):
        handlers.reverse_entry(unit(repos, actor=COMMANDER), entry_id="nope", reason="x", corrected_points=None)


# -- rule sets ---------------------------------------------------------------------------------------------

def test_rule_sets_are_numbered_in_order_created_then_published_each_announced():
    repos = Repos()
    uow = unit(repos, actor=COMMANDER)
    rs = handlers.create_rule_set(uow, description="第2版", rules=SAMPLE_RULE_SET.rules[:3],
                                  effective_time=T0 + timedelta(days=30))
    assert (rs.version, rs.published, rs.create_actor) == (2, False, "cmd-1")
    uow.flush()
    [(event_type, subject, payload)] = uow.outbox.events
    assert (event_type, subject, payload.action, payload.rule_set.published) == (
        "scoring.RuleSetUpdated", "ruleSets/2", "CREATED", False)

    uow = unit(repos, at=T0 + timedelta(days=1), actor=COMMANDER)
    handlers.publish_rule_set(uow, version=2)
    uow.flush()
    [(_, _, payload)] = uow.outbox.events
    assert payload.action == "PUBLISHED" and payload.rule_set.publish_stamp.actor == "cmd-1"
    assert repos.rule_sets.get(2).published
    with pytest.raises(FailedPrecondition):
        handlers.publish_rule_set(unit(repos, actor=COMMANDER), version=2)
    with pytest.raises(NotFound):
        handlers.publish_rule_set(unit(repos, actor=COMMANDER), version=7)

    # Events from the effective time on score under version 2, which has only three rules.
    uow = unit(repos, at=T0 + timedelta(days=31))
    handlers.score_preliminary_handling(uow, handling=domain.PreliminaryHandling(
        event_id="e", work_order="workOrders/w9", station_id="S07", data={}, occur_time=T0 + timedelta(days=31)))
    assert repos.ledger.entries == []


# -- the feeds: EVENT_HANDLERS with protobuf payloads --------------------------------------------------------

def ts(t: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(t)
    return out


def feed_event(event_type: str, when: datetime) -> events_pb2.Event:
    return events_pb2.Event(event_id=f"id-{event_type}", type=event_type, occur_time=ts(when))


def test_event_handlers_name_the_feeds_and_translate_their_payloads():
    assert {source: sorted(subs) for source, subs in handlers.EVENT_HANDLERS.items()} == {
        "dispatch": ["dispatch.AssignmentChanged", "dispatch.CaseCreated", "dispatch.CaseUpdated"],
        "intake": ["intake.ReportUpdated"],
        "referral": ["referral.WorkOrderCreated", "referral.WorkOrderUpdated"],
    }
    repos = Repos()
    d = handlers.EVENT_HANDLERS["dispatch"]
    d["dispatch.CaseCreated"].handler(unit(repos), feed_event("dispatch.CaseCreated", T0), dpb.CaseCreated(
        dispatch_case=dpb.DispatchCase(name="cases/c1", report="reports/r1", station_id="S01", incident_type="FIGHT")))
    assert repos.cases.get("cases/c1") == Case("cases/c1", "reports/r1", "S01", "", "FIGHT")

    assignment = dpb.Assignment(name="cases/c1/assignments/a1", state=dpb.ASSIGNMENT_STATE_ACCEPTED,
                                offer_time=ts(T0), accept_time=ts(T0 + timedelta(seconds=20)),
                                case_summary=dpb.DispatchCase(grid_id="G7", report="reports/r1"))
    uow = unit(repos)
    d["dispatch.AssignmentChanged"].handler(uow, feed_event("dispatch.AssignmentChanged", T0), dpb.AssignmentChanged(
        assignment=assignment, case_name="cases/c1", station_id="S01",
        officers=[common_pb2.OfficerRef(officer_id="P1", display_name="张警官")]))
    assert published(uow) == ["scoring.LedgerEntryRecorded"] * 2
    fact = repos.facts.by_id["cases/c1/assignments/a1#ACCEPTED"]
    assert "case_summary" not in fact.data["assignment"] and fact.data["derived"]["accept_seconds"] == 20.0
    assert fact.officers == [OfficerOnFact("P1", "S01", "张警官")] and repos.cases.get("cases/c1").grid_id == "G7"

    rated = dpb.DispatchCase(name="cases/c1", station_id="S01", satisfaction=common_pb2.SATISFACTION_SATISFIED)
    unrated = dpb.CaseUpdated(dispatch_case=dpb.DispatchCase(name="cases/c1"))
    d["dispatch.CaseUpdated"].handler(unit(repos), feed_event("dispatch.CaseUpdated", T0), unrated)
    assert not repos.facts.exists_for_subject("dispatch.CaseUpdated", "cases/c1")
    d["dispatch.CaseUpdated"].handler(unit(repos), feed_event("dispatch.CaseUpdated", T0 + timedelta(hours=1)),
                                      dpb.CaseUpdated(dispatch_case=rated))
    assert repos.facts.by_id["cases/c1#dispatch.CaseUpdated"].occur_time == T0 + timedelta(hours=1)

    report = ipb.ReportUpdated(report=ipb.Report(name="reports/r1", satisfaction=common_pb2.SATISFACTION_SATISFIED))
    handlers.EVENT_HANDLERS["intake"]["intake.ReportUpdated"].handler(
        unit(repos), feed_event("intake.ReportUpdated", T0), report)
    assert repos.facts.by_id["reports/r1#intake.ReportUpdated"].data["case_name"] == "cases/c1"

    r = handlers.EVENT_HANDLERS["referral"]
    other = rpb.WorkOrder(name="workOrders/w1", status=rpb.WORK_ORDER_STATUS_ASSIGNED)
    r["referral.WorkOrderCreated"].handler(unit(repos), feed_event("referral.WorkOrderCreated", T0),
                                           rpb.WorkOrderCreated(work_order=other))
    police = rpb.WorkOrder(name="workOrders/w2", status=rpb.WORK_ORDER_STATUS_PRELIMINARY_POLICE,
                           preliminary_station="stations/S07")
    r["referral.WorkOrderUpdated"].handler(unit(repos), feed_event("referral.WorkOrderUpdated", T0),
                                           rpb.WorkOrderUpdated(work_order=police, action="PRELIMINARY"))
    assert "workOrders/w1#PRELIMINARY_POLICE" not in repos.facts.by_id
    fact = repos.facts.by_id["workOrders/w2#PRELIMINARY_POLICE"]
    assert fact.data["action"] == "PRELIMINARY" and fact.data["derived"] == {"station_id": "S07"}
