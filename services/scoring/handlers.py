"""Scoring use cases: one function each, on a unit of work; state, ledger entries and their events
in one transaction.

Consumed events become facts (kept for recomputation), then ledger entries under the rule set in
force when the scored thing happened, then warnings. `EVENT_HANDLERS` at the end names the feeds
and event types scoring consumes.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb

from services.runtime import labels
from services.runtime.consumer import Subscription
from services.runtime.errors import FailedPrecondition, NotFound
from services.runtime.uow import UnitOfWork, publish_all

from . import domain, mapping
from .domain import (
    AssignmentChange, Case, Correction, EnforcementWarning, Fact, Findings, LedgerEntry, OfficerOnFact,
    PreliminaryHandling, Rating, ReportBackObligation, Review, Rule, RuleEngine, RuleSet,
)


# -- scoring a fact ------------------------------------------------------------------

def score_fact(uow: UnitOfWork, *, fact: Fact) -> list[LedgerEntry]:
    """Keeps a fact and writes the entries the rule set in force gives it. A kept fact scores nothing again."""
    repos = uow.repos
    if not repos.facts.add(fact):
        return []
    rule_set = domain.in_force(repos.rule_sets.published(), fact.occur_time)
    if rule_set is None:
        return []

    def already(rule_id, officer_id, station_id, month):
        return repos.ledger.points_of_rule(rule_id, officer_id, station_id, month, domain.month_end(month))

    written = []
    for draft in RuleEngine(rule_set).apply(fact, already):
        entry = LedgerEntry.by_rule(draft, now=uow.now())
        if repos.ledger.add(entry):
            written.append(entry)
            uow.collect(entry)
    for officer_id, station_id in {(e.officer_id, e.station_id) for e in written
                                   if e.dimension == "QUALITY" and e.points < 0 and e.officer_id}:
        check_quality_falling(uow, officer_id=officer_id, station_id=station_id, at=fact.occur_time,
                              source_event_id=fact.event_id)
    return written


def check_quality_falling(uow: UnitOfWork, *, officer_id: str, station_id: str, at: datetime,
                          source_event_id: str) -> EnforcementWarning | None:
    """Warns an officer whose quality points fall fast (once a month)."""
    ledger = uow.repos.ledger
    recent = ledger.quality_points(officer_id, at - domain.QUALITY_WINDOW, at)
    before = ledger.quality_points(officer_id, at - 2 * domain.QUALITY_WINDOW, at - domain.QUALITY_WINDOW)
    if not domain.quality_falling(recent, before):
        return None
    month = domain.month_start(at)
    return raise_warning(
        uow, kind="QUALITY_FALLING", officer=OfficerOnFact(officer_id, station_id), case_name="",
        cause=f"QUALITY:{month:%Y-%m}", source_event_id=source_event_id,
        detail=f"民警{officer_id}近30天质量积分{domain.signed(recent)}分，较前30天{domain.signed(before)}分"
               f"下降{domain.signed(before - recent).lstrip('+')}分，请关注执法质量")


# -- dispatch events -------------------------------------------------------------------

def record_case(uow: UnitOfWork, *, case: Case) -> None:
    """Keeps what an event says of a dispatch case."""
    uow.repos.cases.upsert(case)


def score_case_rating(uow: UnitOfWork, *, rating: Rating) -> list[LedgerEntry]:
    """The citizen follow-up (回访) of a case scores the officers rated (or those who reported back)."""
    return _score_rating(uow, rating)


def score_report_rating(uow: UnitOfWork, *, rating: Rating) -> list[LedgerEntry]:
    """The reporter's rating of a report scores the officers of the case opened for it."""
    cases = uow.repos.cases
    case = (cases.get(rating.case_name) if rating.case_name else None) or cases.by_report(rating.subject)
    return _score_rating(uow, replace(rating, case_name=case.case_name if case else ""))


def _score_rating(uow: UnitOfWork, rating: Rating) -> list[LedgerEntry]:
    repos = uow.repos
    # Only the first rating of a report or case scores; later updates carry it along unchanged.
    if repos.facts.exists_for_subject(rating.event_type, rating.subject):
        return []
    case_name = rating.case_name
    officers = rating.officers
    if not officers and case_name:
        officers = repos.cases.officers(case_name, reported_back_only=True) or repos.cases.officers(case_name)
    case = repos.cases.get(case_name) if case_name else None
    data = dict(rating.data, case_name=case_name, derived={"case_name": case_name})
    return score_fact(uow, fact=Fact(
        fact_id=f"{rating.subject}#{rating.event_type}", event_id=rating.event_id, event_type=rating.event_type,
        subject=rating.subject, occur_time=rating.occur_time or uow.now(),
        station_id=case.station_id if case else "", officers=officers or [], data=data))


def score_waiting_ratings(uow: UnitOfWork, *, case_name: str, report: str,
                          officers: list[OfficerOnFact]) -> None:
    """A rating that arrived before anyone reported back (the feeds are not ordered with each other) scores
    the officers once they do: one fact per officer, so each is scored once however many report back."""
    for waiting in uow.repos.facts.waiting_ratings(case_name, report):
        for o in officers:
            score_fact(uow, fact=Fact(
                fact_id=f"{waiting.fact_id}@{o.officer_id}", event_id=waiting.event_id,
                event_type=waiting.event_type, subject=waiting.subject, occur_time=waiting.occur_time,
                station_id=o.station_id, officers=[o], data=dict(waiting.data, case_name=case_name)))


def assignment_changed(uow: UnitOfWork, *, change: AssignmentChange) -> None:
    """An assignment moved: officers join the case, the report-back obligation is kept, the scored states
    score, and a report-back may warn."""
    cases = uow.repos.cases
    cases.upsert(Case(change.case_name, report=change.report, station_id=change.station_id, grid_id=change.grid_id,
                      incident_type=change.incident_type))
    case = cases.get(change.case_name)
    times = change.times
    # Dispatch states the grid's target (1-3-5 minute circle); else scoring's copy of the grids.
    target = change.arrival_target_s or cases.arrival_target(case.grid_id) or domain.DEFAULT_ARRIVAL_TARGET_S
    incident_type = change.incident_type or case.incident_type
    derived = domain.assignment_measurements(
        state=change.state, outcome=change.outcome, incident_type=incident_type, offer=times["offer"],
        accept=times["accept"], arrive=times["arrive"], clear=times["clear"], report_back=times["report_back"],
        evidence_count=change.evidence_count, arrival_target_s=target)
    derived["grid_id"] = case.grid_id
    # Dispatch's own measure runs from the report's receipt (the citizen's wait), not from the offer.
    derived["arrival_seconds_from_report"] = change.arrival_seconds
    derived["arrival_target_met_from_report"] = change.arrival_target_met
    occur_time = {"ACCEPTED": times["accept"], "ON_SCENE": times["arrive"], "CLEARED": times["clear"],
                  "REPORTED_BACK": times["report_back"]}.get(change.state) or change.event_time or uow.now()

    if change.state in domain.WORKING_STATES:
        cases.add_officers(change.case_name, change.officers, reported_back=change.state == "REPORTED_BACK")
    _track_report_back(uow, change)

    if change.state not in domain.SCORED_STATES:
        return
    score_fact(uow, fact=Fact(
        fact_id=f"{change.assignment}#{change.state}", event_id=change.event_id,
        event_type="dispatch.AssignmentChanged", subject=change.assignment, occur_time=occur_time,
        station_id=change.station_id, officers=change.officers, data=dict(change.data, derived=derived)))

    if change.state == "REPORTED_BACK":
        score_waiting_ratings(uow, case_name=change.case_name, report=case.report, officers=change.officers)
        outcome, kind = labels.outcome_label(change.outcome), labels.incident_type_label(incident_type)
        for o in change.officers:
            if derived["evidence_required"] and derived["evidence_count"] == 0:
                raise_warning(uow, kind="MISSING_EVIDENCE", officer=o, case_name=change.case_name,
                              cause=change.assignment, source_event_id=change.event_id,
                              detail=f"{change.case_name}以{outcome}结案回告但未上传任何证据材料，请补充现场照片、笔录等证据")
            if derived["outcome_contradicts_type"]:
                raise_warning(uow, kind="OUTCOME_CONTRADICTS_TYPE", officer=o, case_name=change.case_name,
                              cause=change.assignment, source_event_id=change.event_id,
                              detail=f"{change.case_name}警情类型为{kind}，回告结果为{outcome}，"
                                     "处置结果与警情类型矛盾，请核实定性")


def _track_report_back(uow: UnitOfWork, change: AssignmentChange) -> None:
    """Keeps the report-back obligation of an assignment for the overdue sweeper."""
    obligations = uow.repos.obligations
    times = change.times
    if change.state == "ACCEPTED":
        obligations.open(ReportBackObligation(
            assignment=change.assignment, case_name=change.case_name, station_id=change.station_id,
            officers=change.officers, due_time=domain.report_back_due(times["accept"] or uow.now(), None),
            source_event_id=change.event_id))
    elif change.state == "CLEARED" and times["clear"] is not None:
        obligations.reschedule(change.assignment, domain.report_back_due(times["accept"], times["clear"]))
    elif change.state == "REPORTED_BACK":
        obligations.fulfil(change.assignment, times["report_back"] or uow.now())
        rectify_warnings(uow, kind="OVERDUE_REPORT_BACK", cause=change.assignment,
                         reason=f"{change.assignment}已完成回告")
    elif change.state in ("DECLINED", "EXPIRED"):
        obligations.cancel(change.assignment)


# -- referral events ---------------------------------------------------------------------

def score_preliminary_handling(uow: UnitOfWork, *, handling: PreliminaryHandling) -> list[LedgerEntry]:
    """Police preliminary handling (先期处置) of a 12345 work order scores the station that took it."""
    return score_fact(uow, fact=Fact(
        fact_id=f"{handling.work_order}#PRELIMINARY_POLICE", event_id=handling.event_id,
        event_type="referral.WorkOrderUpdated", subject=handling.work_order,
        occur_time=handling.occur_time or uow.now(), station_id=handling.station_id,
        officers=[OfficerOnFact("", handling.station_id, "")],
        data=dict(handling.data, derived={"station_id": handling.station_id})))


# -- warnings -------------------------------------------------------------------------------

def raise_warning(uow: UnitOfWork, *, kind: str, officer: OfficerOnFact, case_name: str, cause: str,
                  detail: str, source_event_id: str) -> EnforcementWarning | None:
    """Stores and announces a warning; None when the same cause already warned this officer."""
    warning = EnforcementWarning.issue(kind=kind, officer=officer, case_name=case_name, cause=cause, detail=detail,
                                       source_event_id=source_event_id, now=uow.now())
    if not uow.repos.warnings.add(warning):
        return None
    uow.collect(warning)
    return warning


def rectify_warnings(uow: UnitOfWork, *, kind: str, reason: str, cause: str = "",
                     case_name: str = "") -> list[EnforcementWarning]:
    """Rectifies the open warnings of a kind about a cause (or, without one, about a case)."""
    found = uow.repos.warnings.open_ones(kind, cause=cause, case_name=case_name)
    for warning in found:
        warning.rectify(reason=reason, now=uow.now())
        uow.repos.warnings.save(warning)
        uow.collect(warning)
    return found


def sweep_overdue_report_backs(uow: UnitOfWork) -> list[EnforcementWarning]:
    """Warns every officer of an assignment whose report-back (回告) is past its limit at `uow.now()`."""
    now = uow.now()
    raised = []
    for ob in uow.repos.obligations.overdue(now):
        late = domain.overdue_minutes(ob, now)
        for o in ob.officers:
            w = raise_warning(
                uow, kind="OVERDUE_REPORT_BACK", officer=o, case_name=ob.case_name, cause=ob.assignment,
                source_event_id=ob.source_event_id,
                detail=f"{ob.case_name}处警任务{ob.assignment}已超过回告时限{late}分钟仍未回告，请立即回告处置结果")
            if w:
                raised.append(w)
        uow.repos.obligations.mark_warned(ob.assignment)
    return raised


# -- reviews ------------------------------------------------------------------------------

def create_review(uow: UnitOfWork, *, case_name: str, officer_ids: list[str], findings: Findings) -> Review:
    """A legal officer's review (法制审核) of a case: announced, scored for the officers it covers, and
    warning of missing evidence (or rectifying such warnings once the evidence is complete)."""
    repos = uow.repos
    case = repos.cases.get(case_name)
    if case is None:
        raise NotFound(case_name, f"{case_name} is not known to scoring")
    domain.check_reviewer(case, uow.actor)
    if officer_ids:
        officers = domain.named_officers(case, officer_ids, repos.cases.officers(case.case_name))
    else:
        officers = repos.cases.officers(case.case_name, reported_back_only=True)
        if not officers:
            raise FailedPrecondition(f"no officer has reported back on {case.case_name} yet; name the officers",
                                     reason="NO_OFFICER_REPORTED_BACK")
    review = Review.file(case=case, officers=officers, findings=findings, actor=uow.actor, now=uow.now())
    repos.reviews.add(review)
    # Announced at once: its event is the source of the entries it writes.
    publish_all(uow, [domain.ReviewCreated(replace(review))])
    event_id = repos.events.event_id(uow.sequences[-1])
    data = dict(mapping.review_data(review), derived=review.measurements(case))
    written = score_fact(uow, fact=Fact(
        fact_id=review.name, event_id=event_id, event_type="scoring.ReviewCreated", subject=review.name,
        occur_time=review.create_time, station_id=case.station_id, officers=officers, data=data))
    if findings.evidence == "MISSING":
        what = "、".join(findings.missing_evidence) or "证据材料"
        for o in officers:
            raise_warning(uow, kind="MISSING_EVIDENCE", officer=o, case_name=case.case_name, cause=review.name,
                          source_event_id=event_id, detail=f"{case.case_name}经法制审核缺少{what}，请在规定时间内补充")
    elif findings.evidence == "COMPLETE":
        rectify_warnings(uow, kind="MISSING_EVIDENCE", case_name=case.case_name,
                         reason=f"{review.name}审核证据齐全")
    review.ledger_entries = [e.id for e in written]
    return review


# -- corrections ----------------------------------------------------------------------------

def reverse_entry(uow: UnitOfWork, *, entry_id: str, reason: str, corrected_points: Decimal | None) -> Correction:
    """Corrects a ledger entry: a reversal and, with corrected points, a replacement (never an update)."""
    ledger = uow.repos.ledger
    original = ledger.get(entry_id, lock=True)  # corrections of the same entry wait for each other
    if original is None:
        raise NotFound(f"ledgerEntries/{entry_id}")
    correction = original.correct(reason=reason, corrected_points=corrected_points,
                                  already_reversed=original.kind != "REVERSAL" and ledger.is_reversed(entry_id),
                                  actor=uow.actor, now=uow.now())
    for entry in correction.entries:
        if not ledger.add(entry):  # only a concurrent reversal could have got there first; the lock prevents it
            raise FailedPrecondition(f"ledgerEntries/{entry_id} is already reversed", reason="ALREADY_REVERSED")
        uow.collect(entry)
    return correction


# -- rule sets ----------------------------------------------------------------------------------

def create_rule_set(uow: UnitOfWork, *, description: str, rules: list[Rule], effective_time: datetime) -> RuleSet:
    repos = uow.repos
    rule_set = RuleSet.draft(version=repos.rule_sets.next_version(), description=description, rules=rules,
                             effective_time=effective_time, actor=uow.actor, now=uow.now())
    repos.rule_sets.add(rule_set)
    uow.collect(rule_set)
    return rule_set


def publish_rule_set(uow: UnitOfWork, *, version: int) -> RuleSet:
    repos = uow.repos
    rule_set = repos.rule_sets.get(version, for_update=True)
    if rule_set is None:
        raise NotFound(f"ruleSets/{version}")
    rule_set.publish(actor=uow.actor, now=uow.now())
    repos.rule_sets.save(rule_set)
    uow.collect(rule_set)
    return rule_set


# -- the feeds scoring consumes -----------------------------------------------------------------

def _case_created(uow: UnitOfWork, event, payload: dispatch_pb.CaseCreated) -> None:
    record_case(uow, case=mapping.case_from_pb(payload.dispatch_case))


def _case_updated(uow: UnitOfWork, event, payload: dispatch_pb.CaseUpdated) -> None:
    record_case(uow, case=mapping.case_from_pb(payload.dispatch_case))
    rating = mapping.case_rating(event, payload)
    if rating is not None:
        score_case_rating(uow, rating=rating)


def _assignment_changed(uow: UnitOfWork, event, payload: dispatch_pb.AssignmentChanged) -> None:
    assignment_changed(uow, change=mapping.assignment_change(event, payload))


def _report_updated(uow: UnitOfWork, event, payload: intake_pb.ReportUpdated) -> None:
    rating = mapping.report_rating(event, payload)
    if rating is not None:
        score_report_rating(uow, rating=rating)


def _work_order_created(uow: UnitOfWork, event, payload: referral_pb.WorkOrderCreated) -> None:
    handling = mapping.preliminary_handling(event, payload.work_order, "CREATED")
    if handling is not None:
        score_preliminary_handling(uow, handling=handling)


def _work_order_updated(uow: UnitOfWork, event, payload: referral_pb.WorkOrderUpdated) -> None:
    handling = mapping.preliminary_handling(event, payload.work_order, payload.action)
    if handling is not None:
        score_preliminary_handling(uow, handling=handling)


EVENT_HANDLERS = {
    "dispatch": {
        "dispatch.CaseCreated": Subscription(dispatch_pb.CaseCreated, _case_created),
        "dispatch.CaseUpdated": Subscription(dispatch_pb.CaseUpdated, _case_updated),
        "dispatch.AssignmentChanged": Subscription(dispatch_pb.AssignmentChanged, _assignment_changed),
    },
    "intake": {"intake.ReportUpdated": Subscription(intake_pb.ReportUpdated, _report_updated)},
    "referral": {
        "referral.WorkOrderCreated": Subscription(referral_pb.WorkOrderCreated, _work_order_created),
        "referral.WorkOrderUpdated": Subscription(referral_pb.WorkOrderUpdated, _work_order_updated),
    },
}
