"""What happens to a report after it is recorded: consultations answered at
once or queued, duplicates merged and un-merged, the call answered, the
citizen's rating, and the report following its dispatch case or 12345 work
order. One function per use case; each writes the state, the timeline and
the event in the caller's transaction: it reads the report (locked) before
changing it, so `announce` can say what changed."""
from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert

from smart110.intake.v1 import intake_service_pb2 as pb

from services.runtime.audit import TimelineEntry
from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, NotFound
from services.runtime.metrics import observe_sla_after_commit
from services.runtime.outbox import Outbox

from . import duplicates, knowledge
from .domain import Report
from .store import ReportRepository, report_handling, reports, timeline

SYSTEM = AuthContext(subject="intake", roles=frozenset({"service"}))
# A report a call-taker may still merge: recorded, not yet handed anywhere.
MERGEABLE_STATUSES = ("RECEIVED", "CLASSIFIED")


def _stamp(actor: AuthContext, now: datetime) -> dict:
    return dict(actor=actor.subject, roles=sorted(actor.roles), time=now)


# -- reading -------------------------------------------------------------------

def attach(conn, report: Report) -> Report:
    """Fills in the consultation, the duplicates and the follow-up links of a report read back."""
    report.consultation = knowledge.get_consultation(conn, report.id)
    row = conn.execute(select(report_handling).where(report_handling.c.report_id == report.id)).first()
    if row is not None:
        report.merge_reason = row.merge_reason
        report.dispatch_case = row.dispatch_case
        report.work_order = row.work_order
        report.satisfaction_comment = row.satisfaction_comment
    report.duplicates = list(conn.execute(
        select(reports.c.id).where(reports.c.merged_into == report.id).order_by(reports.c.receive_time, reports.c.id)
    ).scalars())
    return report


def load(conn, report_id: str, *, name: str = "", lock: bool = False) -> Report:
    if lock:
        conn.execute(select(reports.c.id).where(reports.c.id == report_id).with_for_update())
    report = ReportRepository(conn).get(report_id)
    if report is None:
        raise NotFound(name or f"reports/{report_id}")
    return report


def _set(conn, report_id: str, **values) -> None:
    conn.execute(reports.update().where(reports.c.id == report_id).values(**values))


def _set_handling(conn, report_id: str, **values) -> None:
    stmt = insert(report_handling).values(report_id=report_id, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["report_id"], set_=values))


def announce(conn, outbox: Outbox, before: Report, action: str, entries: list[TimelineEntry]) -> Report:
    """Appends the change's timeline entries and publishes intake.ReportUpdated: the report as it
    now stands, the fields that changed since `before` (read before the change) and the entries."""
    from .mapping import report_event_pb, report_updated_pb

    timeline.add(conn, before.id, entries)
    report = load(conn, before.id)
    outbox.publish(conn, "intake.ReportUpdated", report.name, report_updated_pb(
        report, action, before=report_event_pb(before), new_entries=entries))
    return report


# -- at intake -----------------------------------------------------------------

def before_store(conn, report: Report, *, index: knowledge.KnowledgeIndex | None, actor: AuthContext,
                 now: datetime) -> None:
    """A duplicate is merged into its master; a consultation is answered at once or queued."""
    stamp = _stamp(actor, now)
    found = duplicates.find_master(conn, duplicates.candidate_of(report), area=report.station_id)
    if found is not None:
        report.status = "MERGED"
        report.merged_into = found.master_id
        report.merge_reason = f"自动合并：{found.reason}"
        report.timeline.append(TimelineEntry(
            "MERGED", detail=f"合并至主警情 reports/{found.master_id}：{found.reason}", **stamp))
        return
    if report.classification.category != "CONSULTATION" or index is None:
        return
    c = knowledge.consult(report.description, index, report_id=report.id, station_id=report.station_id, now=now)
    report.consultation = c
    if c.status == "ANSWERED":
        report.status = "ANSWERED"
        report.answer_time = report.answer_time or now
        report.timeline.append(TimelineEntry(
            "CONSULTATION_ANSWERED", detail=f"即问即复：知识库条目 {c.entry_id}（{c.topic}），匹配度 {c.score:.2f}",
            **stamp))
    else:
        report.timeline.append(TimelineEntry(
            "CONSULTATION_QUEUED",
            detail=f"知识库无足够匹配（最高 {c.score:.2f}），转为民服务圈专家答复", **stamp))


def after_store(conn, report: Report, *, outbox: Outbox, actor: AuthContext, now: datetime) -> None:
    if report.consultation is not None:
        knowledge.add_consultation(conn, report.consultation)
        if report.consultation.answered_at_once:
            observe_sla_after_commit(conn, "answer", (report.answer_time - report.receive_time).total_seconds())
    if report.merged_into:
        _set_handling(conn, report.id, merge_reason=report.merge_reason)
        master = load(conn, report.merged_into, lock=True)
        _set(conn, master.id, update_time=now)
        announce(conn, outbox, master, "DUPLICATE_LINKED", [TimelineEntry(
            "DUPLICATE_LINKED", detail=f"重复警情 reports/{report.id} 已合并至本警情", **_stamp(actor, now))])


def category_corrected(conn, report: Report, *, old_category: str, actor: AuthContext,
                       now: datetime) -> list[TimelineEntry]:
    """A report corrected into a consultation joins the expert queue; one corrected out of it leaves.

    Returns the timeline entries it added."""
    new_category = report.classification.category
    if new_category == old_category:
        return []
    current = knowledge.get_consultation(conn, report.id, for_update=True)
    entries = []
    if new_category == "CONSULTATION" and current is None:
        report.consultation = knowledge.Consultation(
            report_id=report.id, question=report.description, status="QUEUED", station_id=report.station_id,
            create_time=now)
        knowledge.add_consultation(conn, report.consultation)
        entries = [TimelineEntry("CONSULTATION_QUEUED", detail="更正为咨询，转为民服务圈专家答复", **_stamp(actor, now))]
    elif old_category == "CONSULTATION" and current is not None and current.status != "ANSWERED":
        knowledge.withdraw_consultation(conn, report.id)
        report.consultation = None
        entries = [TimelineEntry("CONSULTATION_WITHDRAWN", detail="更正为非咨询，撤出专家答复队列", **_stamp(actor, now))]
    timeline.add(conn, report.id, entries)
    return entries


# -- call answered, rating -----------------------------------------------------

def answer_report(conn, *, outbox: Outbox, report_id: str, actor: AuthContext, now: datetime) -> Report:
    """Stamps the time a call-taker answered the report (once)."""
    report = load(conn, report_id, lock=True)
    if report.answer_time is not None:
        raise FailedPrecondition(f"{report.name} was already answered at {report.answer_time.isoformat()}",
                                 reason="ALREADY_ANSWERED")
    answered = max(now, report.receive_time)
    seconds = (answered - report.receive_time).total_seconds()
    _set(conn, report_id, answer_time=answered, update_time=now)
    observe_sla_after_commit(conn, "answer", seconds)
    return announce(conn, outbox, report, "ANSWERED", [TimelineEntry(
        "ANSWERED", detail=f"接警员应答，用时 {seconds:.1f} 秒", **_stamp(actor, now))])


SATISFACTION_WORDS = {"SATISFIED": "满意", "BASICALLY_SATISFIED": "基本满意", "UNSATISFIED": "不满意"}


def rate_report(conn, *, outbox: Outbox, report_id: str, satisfaction: str, comment: str, actor: AuthContext,
                now: datetime) -> Report:
    """Records the citizen's satisfaction with the intake, once per report."""
    report = load(conn, report_id, lock=True)
    if report.satisfaction:
        raise FailedPrecondition(f"{report.name} was already rated {report.satisfaction}", reason="ALREADY_RATED")
    _set(conn, report_id, satisfaction=satisfaction, update_time=now)
    _set_handling(conn, report_id, satisfaction_comment=comment, rate_time=now)
    detail = f"群众评价：{SATISFACTION_WORDS[satisfaction]}" + (f"（{comment}）" if comment else "")
    return announce(conn, outbox, report, "RATED", [TimelineEntry("RATED", detail=detail, **_stamp(actor, now))])


# -- merge and un-merge by a call-taker ------------------------------------------

def merge_report(conn, *, outbox: Outbox, report_id: str, master_id: str, reason: str, actor: AuthContext,
                 now: datetime) -> Report:
    # Lock both in id order so two opposite merges cannot deadlock.
    for rid in sorted((report_id, master_id)):
        conn.execute(select(reports.c.id).where(reports.c.id == rid).with_for_update())
    report = load(conn, report_id)
    master = load(conn, master_id, name=f"reports/{master_id}")
    if report.merged_into:
        raise FailedPrecondition(f"{report.name} is already merged into reports/{report.merged_into}",
                                 reason="ALREADY_MERGED", metadata={"master": f"reports/{report.merged_into}"})
    if master.merged_into:
        raise FailedPrecondition(
            f"{master.name} is itself merged into reports/{master.merged_into}; merge into that report",
            reason="MASTER_IS_MERGED", metadata={"master": f"reports/{master.merged_into}"})
    if report.duplicates:
        raise FailedPrecondition(f"{report.name} is the master of {len(report.duplicates)} reports; "
                                 "merge those into the new master first", reason="REPORT_IS_MASTER")
    category = report.classification.category
    if category not in duplicates.MERGEABLE_CATEGORIES or master.classification.category != category:
        raise FailedPrecondition(
            f"only police or non-police reports of the same category merge; {report.name} is {category}, "
            f"{master.name} is {master.classification.category}", reason="CATEGORY_MISMATCH")
    if report.status not in MERGEABLE_STATUSES:
        raise FailedPrecondition(f"{report.name} is {report.status} and already handled; it cannot be merged",
                                 reason="REPORT_IN_HANDLING", metadata={"status": report.status})
    stamp = _stamp(actor, now)
    _set(conn, report_id, status="MERGED", merged_into=master_id, update_time=now)
    _set_handling(conn, report_id, merge_reason=f"接警员合并：{reason}")
    _set(conn, master_id, update_time=now)
    announce(conn, outbox, master, "DUPLICATE_LINKED", [TimelineEntry(
        "DUPLICATE_LINKED", detail=f"重复警情 {report.name} 已合并至本警情", reason=reason, **stamp)])
    return announce(conn, outbox, report, "MERGED", [TimelineEntry(
        "MERGED", detail=f"合并至主警情 {master.name}", reason=reason, **stamp)])


def unmerge_report(conn, *, outbox: Outbox, report_id: str, reason: str, actor: AuthContext,
                   now: datetime) -> Report:
    """The report becomes its own incident again; its ReportUpdated "UNMERGED" asks for handling."""
    report = load(conn, report_id, lock=True)
    if not report.merged_into:
        raise FailedPrecondition(f"{report.name} is not merged", reason="NOT_MERGED")
    master_id = report.merged_into
    master = load(conn, master_id, lock=True)
    stamp = _stamp(actor, now)
    _set(conn, report_id, status="CLASSIFIED", merged_into="", update_time=now)
    _set_handling(conn, report_id, merge_reason="")
    _set(conn, master_id, update_time=now)
    announce(conn, outbox, master, "DUPLICATE_UNLINKED", [TimelineEntry(
        "DUPLICATE_UNLINKED", detail=f"{report.name} 撤销合并，作为独立警情处理", reason=reason, **stamp)])
    return announce(conn, outbox, report, "UNMERGED", [TimelineEntry(
        "UNMERGED", detail=f"撤销合并，与 reports/{master_id} 分开，作为独立警情处理", reason=reason, **stamp)])


# -- the expert queue (为民服务圈) -------------------------------------------------

def claim_consultation(conn, *, outbox: Outbox, report_id: str, actor: AuthContext,
                       now: datetime) -> knowledge.Consultation:
    # The report first, then its consultation, as a correction locks them.
    report = load(conn, report_id, name=f"consultations/{report_id}", lock=True)
    c = knowledge.require(knowledge.get_consultation(conn, report_id, for_update=True), f"consultations/{report_id}")
    entry = knowledge.claim(c, actor, now)
    knowledge.save_consultation(conn, c)
    _set(conn, report_id, update_time=now)
    announce(conn, outbox, report, "CONSULTATION_CLAIMED", [entry])
    return c


def answer_consultation(conn, *, outbox: Outbox, report_id: str, text: str, topic: str, question: str,
                        keywords: list[str], actor: AuthContext, now: datetime) -> knowledge.Consultation:
    """The expert's answer goes to the citizen and joins the knowledge base."""
    report = load(conn, report_id, name=f"consultations/{report_id}", lock=True)
    c = knowledge.require(knowledge.get_consultation(conn, report_id, for_update=True), f"consultations/{report_id}")
    entry_id = f"KB-EX-{now:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    step = knowledge.answer(c, actor, text=text, entry_id=entry_id, topic=topic, now=now)
    entry = knowledge.add_entry(conn, entry_id=entry_id, topic=topic, question=question or c.question, text=text,
                                keywords=keywords, consultation=c.name, author=actor.subject, now=now)
    knowledge.save_consultation(conn, c)
    values = dict(status="ANSWERED", update_time=now)
    if report.answer_time is None:
        values["answer_time"] = now
        observe_sla_after_commit(conn, "answer", (now - report.receive_time).total_seconds())
    _set(conn, report_id, **values)
    announce(conn, outbox, report, "CONSULTATION_ANSWERED", [step])
    from .handling_pb import knowledge_entry_to_pb

    outbox.publish(conn, "intake.KnowledgeEntryAdded", f"knowledge/{entry_id}",
                   pb.KnowledgeEntryAdded(entry=knowledge_entry_to_pb(entry)))
    return c


# -- following the dispatch case and the 12345 work order ------------------------

def _report_of_case(conn, case_name: str) -> str | None:
    return conn.execute(select(report_handling.c.report_id).where(report_handling.c.dispatch_case == case_name)
                        ).scalar()


def _report_id(name: str) -> str | None:
    return name[len("reports/"):] if name.startswith("reports/") and len(name) > len("reports/") else None


def _exists(conn, report_id: str | None) -> bool:
    return bool(report_id) and conn.execute(select(reports.c.id).where(reports.c.id == report_id)).first() is not None


def _move(conn, outbox: Outbox, report: Report, status: str, action: str, detail: str, now: datetime,
          **values) -> None:
    _set(conn, report.id, status=status, update_time=now, **values)
    announce(conn, outbox, report, action, [TimelineEntry(action, detail=detail, **_stamp(SYSTEM, now))])


def case_opened(conn, *, outbox: Outbox, case_name: str, report_name: str, now: datetime) -> None:
    """dispatch.CaseCreated: the report is linked to its case and counts as dispatched."""
    report_id = _report_id(report_name)
    if not _exists(conn, report_id):
        return
    report = load(conn, report_id, lock=True)
    _set_handling(conn, report_id, dispatch_case=case_name)
    if report.status in MERGEABLE_STATUSES:
        _move(conn, outbox, report, "DISPATCHED", "DISPATCHED", f"已生成处警单 {case_name}", now)


def assignment_accepted(conn, *, outbox: Outbox, case_name: str, unit: str, accept_time: datetime | None,
                        now: datetime) -> None:
    """dispatch.AssignmentChanged ACCEPTED: the first acceptance stamps the hand-off to an officer."""
    report_id = _report_of_case(conn, case_name)
    if report_id is None:
        return
    report = load(conn, report_id, lock=True)
    if report.hand_off_time is not None:
        return
    handed = accept_time or now
    seconds = (handed - report.receive_time).total_seconds()
    status = "DISPATCHED" if report.status in MERGEABLE_STATUSES else report.status
    _move(conn, outbox, report, status, "HANDED_OFF", f"民警接单（{unit}），距接报 {seconds:.0f} 秒", now,
          hand_off_time=handed)


def case_changed(conn, *, outbox: Outbox, case_name: str, report_name: str, closed: bool, now: datetime) -> None:
    """dispatch.CaseUpdated: a closed case closes its report."""
    report_id = _report_of_case(conn, case_name) or _report_id(report_name)
    if not _exists(conn, report_id):
        return
    report = load(conn, report_id, lock=True)
    _set_handling(conn, report_id, dispatch_case=case_name)
    if closed and report.status not in ("CLOSED", "MERGED"):
        _move(conn, outbox, report, "CLOSED", "CLOSED", f"处警单 {case_name} 已办结", now)


def work_order_changed(conn, *, outbox: Outbox, work_order: str, report_name: str, closed: bool,
                       now: datetime) -> None:
    """referral WorkOrderCreated/Updated: the report follows its 12345 work order."""
    report_id = _report_id(report_name)
    if not _exists(conn, report_id):
        return
    report = load(conn, report_id, lock=True)
    _set_handling(conn, report_id, work_order=work_order)
    if report.status == "MERGED":
        return
    if closed and report.status != "CLOSED":
        _move(conn, outbox, report, "CLOSED", "CLOSED", f"12345工单 {work_order} 已办结", now)
    elif not closed and report.status != "REFERRED":
        _move(conn, outbox, report, "REFERRED", "REFERRED", f"已转12345工单 {work_order}", now)


def joint_order_opened(conn, *, outbox: Outbox, work_order: str, report_name: str, now: datetime) -> None:
    """referral WorkOrderCreated for a joint rescue (联动抢险): city departments join a police incident.

    The report is linked to the order and says so in its timeline, but it keeps
    following its police case: the order closing does not close the report.
    """
    report_id = _report_id(report_name)
    if not _exists(conn, report_id):
        return
    report = load(conn, report_id, lock=True)
    _set_handling(conn, report_id, work_order=work_order)
    announce(conn, outbox, report, "JOINT_RESCUE", [TimelineEntry(
        "JOINT_RESCUE", detail=f"已同步派发联动抢险工单 {work_order}（12345 部门协同处置）", **_stamp(SYSTEM, now))])
