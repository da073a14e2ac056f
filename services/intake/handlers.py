"""Intake use cases: one function each, on a unit of work; the report's state, its timeline and the
events it records in one transaction.

A report is recorded (located, classified, merged into the incident it repeats or answered from the
knowledge base), corrected by the call-taker, answered, rated, merged and un-merged; its consultation
is claimed and answered by an expert; it follows the dispatch case and the 12345 work order it became.
`EVENT_HANDLERS` at the end names the feeds and event types intake consumes; `Context` is what the
service's wiring keeps in `rt.context`.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb

from services.runtime.consumer import Subscription
from services.runtime.errors import NotFound
from services.runtime.ids import new_id
from services.runtime.uow import UnitOfWork

from . import duplicates, knowledge, mapping
from .domain import JurisdictionIndex, Report, report_id_of
from .gazetteer import Gazetteer
from .knowledge import Consultation, KnowledgeIndex
from .queries import GazetteerCache, JurisdictionCache, KnowledgeBase


@dataclass
class Context:
    """Intake's dependencies: the read models each process keeps (see queries.py)."""

    areas: JurisdictionCache
    addresses: GazetteerCache
    knowledge: KnowledgeBase


def _load(uow: UnitOfWork, report_id: str, *, name: str = "", lock: bool = True, scoped: bool = True,
          history: bool = True) -> Report:
    """The report; one outside the caller's jurisdiction is not found (`scoped=False`: the system's
    own step, or the expert queue, which is not a station's). `history=False`: without its timeline
    and duplicates, for a change that only sets fields and appends entries (`ReportRepository.get`)."""
    report = uow.repos.reports.get(report_id, lock=lock, history=history)
    name = name or f"reports/{report_id}"
    if report is None:
        raise NotFound(name)
    if scoped:
        uow.in_scope(name, *report.stations)
    return report


# -- intake ---------------------------------------------------------------------------

def report_incident(uow: UnitOfWork, *, fields: dict, index: JurisdictionIndex, gazetteer: Gazetteer,
                    knowledge: KnowledgeIndex | None = None) -> Report:
    """Records a report from any channel (the fields were validated by the caller): located (point, else
    gazetteer), classified, merged into the open incident it repeats, or, a consultation, answered at
    once from the knowledge base or queued for an expert; then announced as intake.IncidentReported."""
    now, actor, reports = uow.now(), uow.actor, uow.repos.reports
    report = Report.received(new_id(now), fields, actor=actor, now=now)
    report.locate(index, gazetteer, actor=actor, now=now)
    recent = reports.recent_invalid_calls(report.caller_phone, report.repeat_invalid_since) \
        if report.caller_phone else 0
    report.classify_by_rules(recent_invalid_calls=recent, actor=actor, now=now)
    master = None
    found = _find_master(uow, report)
    if found is not None:
        report.merge_at_intake(found, actor=actor, now=now)
        # The master only gains a duplicate and an entry: its history is not read.
        master = _load(uow, found.master_id, scoped=False, history=False)
        master.link_duplicate(report.id, actor=actor, now=now)
    elif report.is_consultation and knowledge is not None:
        report.consult(_consult(report, knowledge, now=now), actor=actor, now=now)
    elif report.asks_about_a_service and knowledge is not None:
        report.answer_question(_consult(report, knowledge, now=now), actor=actor, now=now)
    report.reported()
    # The new report and what changed of its master, in one statement.
    reports.add(report, saving=(master,) if master is not None else ())
    if report.consultation is not None and report.consultation.answered_at_once:
        _observe_answer(uow, report, (report.answer_time - report.receive_time).total_seconds())
    uow.collect(master, report)
    return report


@dataclass(frozen=True)
class Preview:
    """A report as it would be filed now, located and classified but not recorded, and the open
    incidents in the caller's jurisdiction it repeats (`master`: the one it would be merged into)."""

    report: Report
    repeats: list[duplicates.Repeat]
    master: str


def preview_report(uow: UnitOfWork, *, fields: dict, index: JurisdictionIndex, gazetteer: Gazetteer) -> Preview:
    """What ReportIncident would make of these fields now (the call-taker's console asks as they
    type): located, classified by the same rules, and checked for the incidents it repeats by the
    duplicate rules. Nothing is written and no event is recorded."""
    now, actor, reports = uow.now(), uow.actor, uow.repos.reports
    report = Report.received(new_id(now), fields, actor=actor, now=now)
    report.locate(index, gazetteer, actor=actor, now=now)
    recent = reports.recent_invalid_calls(report.caller_phone, report.repeat_invalid_since) \
        if report.caller_phone else 0
    report.classify_by_rules(recent_invalid_calls=recent, actor=actor, now=now)
    new = duplicates.candidate_of(report)
    found = duplicates.matches(new, reports.open_candidates(new))
    master = found[0].candidate.report_id if found else ""
    return Preview(report, [r for r in found if uow.scope.sees(r.candidate.station_id)], master)


def _observe_answer(uow: UnitOfWork, report: Report, seconds: float) -> None:
    """The answer time of a report, by its priority and channel (counted once the transaction commits)."""
    priority = report.classification.priority if report.classification is not None else None
    uow.repos.sla.observe("answer", seconds, priority=priority, channel=report.channel)


def _find_master(uow: UnitOfWork, report: Report) -> duplicates.DuplicateOf | None:
    """The open incident the report repeats. Reports of one area (station) or, without one, of one
    caller are checked one at a time, so two witnesses calling at once still make one incident."""
    new = duplicates.candidate_of(report)
    if new.category not in duplicates.MERGEABLE_CATEGORIES:
        return None
    uow.repos.reports.lock_duplicate_search(duplicates.lock_key(new, area=report.station_id))
    return duplicates.match(new, uow.repos.reports.open_candidates(new))


def _consult(report: Report, index: KnowledgeIndex, *, now) -> Consultation:
    return knowledge.consult(report.description, index, report_id=report.id, station_id=report.station_id, now=now)


def update_report(uow: UnitOfWork, *, report_id: str, paths: list[str], changes: dict, reason: str,
                  index: JurisdictionIndex, gazetteer: Gazetteer) -> Report:
    """A call-taker's field-masked correction, kept in the timeline as CORRECTED (old → new); a
    changed classification is also kept as a labelled example for the classifier's next training."""
    report = _load(uow, report_id)
    before = replace(report.classification)
    if report.correct(paths=paths, changes=changes, reason=reason, index=index, gazetteer=gazetteer,
                      actor=uow.actor, now=uow.now()):
        uow.repos.reports.save(report)
        example = report.labelled_example(before, reason=reason, actor=uow.actor, now=uow.now())
        if example is not None:
            uow.repos.examples.add(example)
        uow.collect(report)
    return report


# -- the call answered, the citizen's rating -----------------------------------------------

def answer_report(uow: UnitOfWork, *, report_id: str) -> Report:
    """Stamps the time a call-taker answered the report (once)."""
    report = _load(uow, report_id)
    seconds = report.answer(actor=uow.actor, now=uow.now())
    uow.repos.reports.save(report)
    _observe_answer(uow, report, seconds)
    uow.collect(report)
    return report


def rate_report(uow: UnitOfWork, *, report_id: str, satisfaction: str, comment: str) -> Report:
    """Records the citizen's satisfaction with the intake, once per report."""
    report = _load(uow, report_id)
    report.rate(satisfaction=satisfaction, comment=comment, actor=uow.actor, now=uow.now())
    uow.repos.reports.save(report)
    uow.collect(report)
    return report


# -- personal data seen unmasked (个人信息查看留痕) ------------------------------------------

def record_personal_data_view(uow: UnitOfWork, *, report: Report, method: str, purpose: str = "",
                              reference: str = "") -> None:
    """Keeps who saw this report's caller phone number or name unmasked, and when: a person
    (GetReport) or a service (GetCallerContact, with its purpose and what it read it for). A report
    without a phone number or name shows nothing personal and records nothing."""
    fields = [f for f, value in (("caller.phone_number", report.caller_phone), ("caller.name", report.caller_name))
              if value]
    if fields:
        uow.repos.views.record(report_id=report.id, actor=uow.actor, at=uow.now(), method=method, fields=fields,
                               purpose=purpose, reference=reference)


# -- merge and un-merge by a call-taker ------------------------------------------------

def merge_report(uow: UnitOfWork, *, report_id: str, master_id: str, reason: str) -> Report:
    """The call-taker merges a report into `master`; one merged automatically into another incident
    (the earliest it repeats) moves to the one the call-taker chose."""
    reports = uow.repos.reports
    merged_into = _load(uow, report_id, lock=False, history=False).merged_into
    leaving_id = merged_into if merged_into and merged_into != master_id else ""
    # All locked in id order, so two opposite merges cannot deadlock.
    reports.lock(*sorted({report_id, master_id} | ({leaving_id} if leaving_id else set())))
    report = _load(uow, report_id, lock=False)
    master = _load(uow, master_id, lock=False)
    leaving = _load(uow, report.merged_into, lock=False, scoped=False) \
        if report.merged_into and report.merged_into == leaving_id else None
    report.merge_into(master, reason=reason, actor=uow.actor, now=uow.now(), leaving=leaving)
    changed = (master, report) if leaving is None else (leaving, master, report)
    for r in changed:
        reports.save(r)
    uow.collect(*changed)
    return report


def unmerge_report(uow: UnitOfWork, *, report_id: str, reason: str) -> Report:
    """The report becomes its own incident again; its ReportUpdated "UNMERGED" asks for handling."""
    report = _load(uow, report_id)
    master = _load(uow, report.master_to_leave(), scoped=False)
    report.unmerge(master, reason=reason, actor=uow.actor, now=uow.now())
    uow.repos.reports.save(master)
    uow.repos.reports.save(report)
    uow.collect(master, report)
    return report


# -- the expert queue (为民服务圈) -----------------------------------------------------------

def claim_consultation(uow: UnitOfWork, *, report_id: str) -> Consultation:
    report = _load(uow, report_id, name=f"consultations/{report_id}", scoped=False)
    c = report.claim_consultation(actor=uow.actor, now=uow.now())
    uow.repos.reports.save(report)
    uow.collect(report)
    return c


def answer_consultation(uow: UnitOfWork, *, report_id: str, text: str, topic: str, question: str,
                        keywords: list[str]) -> Consultation:
    """The expert's answer goes to the citizen and joins the knowledge base (`KB-EX-…`)."""
    now = uow.now()
    report = _load(uow, report_id, name=f"consultations/{report_id}", scoped=False)
    first_answer = report.answer_time is None
    entry = report.answer_consultation(text=text, topic=topic, question=question, keywords=keywords,
                                       entry_id=new_id(now, prefix="KB-EX-", digits=8), actor=uow.actor, now=now)
    uow.repos.knowledge.add(entry, author=uow.actor.subject)
    uow.repos.reports.save(report)
    if first_answer:
        _observe_answer(uow, report, (now - report.receive_time).total_seconds())
    uow.collect(report)
    return report.consultation


# -- following the dispatch case and the 12345 work order ---------------------------------

def case_opened(uow: UnitOfWork, *, case_name: str, report_name: str) -> Report | None:
    """dispatch.CaseCreated: the report (the case names it) is linked to its case and counts as dispatched."""
    report = _report_named(uow, report_name)
    if report is not None:
        report.case_opened(case_name, now=uow.now())
        _keep(uow, report)
    return report


def assignment_accepted(uow: UnitOfWork, *, case_name: str, unit: str, accept_time) -> Report | None:
    """dispatch.AssignmentChanged ACCEPTED: the first acceptance stamps the hand-off to an officer,
    the report found through its case link."""
    report = uow.repos.reports.get_by_case(case_name, history=False)
    if report is not None:
        report.assignment_accepted(unit, accept_time, now=uow.now())
        _keep(uow, report)
    return report


def assignment_on_scene(uow: UnitOfWork, *, case_name: str, unit: str, arrive_time) -> Report | None:
    """dispatch.AssignmentChanged ON_SCENE: the first unit on scene stamps the arrival, the report found
    through its case link."""
    report = uow.repos.reports.get_by_case(case_name, history=False)
    if report is not None:
        report.assignment_on_scene(unit, arrive_time, now=uow.now())
        _keep(uow, report)
    return report


def case_changed(uow: UnitOfWork, *, case_name: str, report_name: str, closed: bool) -> Report | None:
    """dispatch.CaseUpdated: a closed case closes its report."""
    report = uow.repos.reports.get_by_case(case_name, history=False)
    if report is None:
        report_id = report_id_of(report_name)
        report = uow.repos.reports.get(report_id, lock=True, history=False) if report_id else None
    if report is not None:
        report.case_changed(case_name, closed=closed, now=uow.now())
        _keep(uow, report)
    return report


def work_order_changed(uow: UnitOfWork, *, work_order: str, report_name: str, closed: bool) -> Report | None:
    """referral WorkOrderCreated/Updated: the report follows its 12345 work order."""
    report = _report_named(uow, report_name)
    if report is not None:
        report.work_order_changed(work_order, closed=closed, now=uow.now())
        _keep(uow, report)
    return report


def joint_order_opened(uow: UnitOfWork, *, work_order: str, report_name: str) -> Report | None:
    """referral WorkOrderCreated for a joint rescue (联动抢险): the report is linked and says so, but
    keeps following its police case."""
    report = _report_named(uow, report_name)
    if report is not None:
        report.joint_order_opened(work_order, now=uow.now())
        _keep(uow, report)
    return report


def _report_named(uow: UnitOfWork, name: str) -> Report | None:
    """The report another service's event names, locked; without its history: what the events
    tell only sets fields and appends entries."""
    report_id = report_id_of(name)
    return uow.repos.reports.get(report_id, lock=True, history=False) if report_id else None


def _keep(uow: UnitOfWork, report: Report) -> None:
    uow.repos.reports.save(report)
    uow.collect(report)


# -- the feeds intake consumes --------------------------------------------------------------

def _case_created(uow: UnitOfWork, event, payload: dispatch_pb.CaseCreated) -> None:
    case = mapping.case_news(payload.dispatch_case)
    case_opened(uow, case_name=case.case_name, report_name=case.report_name)


def _case_updated(uow: UnitOfWork, event, payload: dispatch_pb.CaseUpdated) -> None:
    case = mapping.case_news(payload.dispatch_case)
    case_changed(uow, case_name=case.case_name, report_name=case.report_name, closed=case.closed)


def _assignment_changed(uow: UnitOfWork, event, payload: dispatch_pb.AssignmentChanged) -> None:
    news = mapping.assignment_news(payload)
    if news.accepted:
        assignment_accepted(uow, case_name=news.case_name, unit=news.unit, accept_time=news.accept_time)
    elif news.on_scene:
        assignment_on_scene(uow, case_name=news.case_name, unit=news.unit, arrive_time=news.arrive_time)


def _work_order(uow: UnitOfWork, event, payload) -> None:
    """A work order from a 110 report: the report is REFERRED, CLOSED when the order closes, REFERRED
    again when it is reopened; a joint-rescue order beside a police case (a cut gas main) is only
    linked and noted in the timeline, the report following its case."""
    order = mapping.work_order_news(payload)
    if not order.from_110_report or not order.report_name:
        return
    if order.transferred_to_110:
        return  # a new 110 report carries on; this one stays as it is
    if order.joint_rescue:
        # Departments work beside the police (a cut gas main): the report follows its case.
        if order.created:
            joint_order_opened(uow, work_order=order.work_order, report_name=order.report_name)
        return
    work_order_changed(uow, work_order=order.work_order, report_name=order.report_name, closed=order.closed)


EVENT_HANDLERS = {
    "dispatch": {
        "dispatch.CaseCreated": Subscription(dispatch_pb.CaseCreated, _case_created),
        "dispatch.CaseUpdated": Subscription(dispatch_pb.CaseUpdated, _case_updated),
        "dispatch.AssignmentChanged": Subscription(dispatch_pb.AssignmentChanged, _assignment_changed),
    },
    "referral": {
        "referral.WorkOrderCreated": Subscription(referral_pb.WorkOrderCreated, _work_order),
        "referral.WorkOrderUpdated": Subscription(referral_pb.WorkOrderUpdated, _work_order),
    },
}
