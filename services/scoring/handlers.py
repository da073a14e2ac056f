"""Scoring use cases: one function each; state, ledger entries and their events in one transaction.

Consumed events become facts (kept for recomputation), then ledger entries
under the rule set in force when the scored thing happened, then warnings.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, or_, select, text
from sqlalchemy.dialects.postgresql import insert

from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from smart110.scoring.v1 import scoring_service_pb2 as pb

from services.runtime.audit import TimelineEntry
from services.runtime.auth import AuthContext
from services.runtime.enums import enum_name
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.runtime.outbox import Outbox
from services.runtime.timeutil import from_pb

from . import domain
from .domain import Fact, OfficerOnFact, RuleEngine, RuleSet
from .mapping import entry_to_pb, payload_json, review_to_pb, rule_set_to_pb, warning_to_pb
from .store import (
    CaseRepository, FactRepository, LedgerRepository, RuleSetRepository, facts, ledger_entries, new_id,
    report_back_obligations, reviews, warning_timeline, warnings,
)

SERVICE_ACTOR = dict(actor="scoring", roles=["service"])


# -- scoring a fact ------------------------------------------------------------------

def score_fact(conn, *, outbox: Outbox, fact: Fact, now: datetime) -> list[dict]:
    """Keeps a fact and writes the entries the rule set in force gives it. A kept fact scores nothing again."""
    if not FactRepository(conn).add(fact):
        return []
    rule_set = domain.in_force(RuleSetRepository(conn).published(), fact.occur_time)
    if rule_set is None:
        return []
    ledger = LedgerRepository(conn)

    def already(rule_id, officer_id, station_id, month):
        end = (month + timedelta(days=32)).replace(day=1)
        return ledger.points_of_rule(rule_id, officer_id, station_id, month, end)

    written = []
    for draft in RuleEngine(rule_set).apply(fact, already):
        row = ledger.add(dict(
            kind="RULE", officer_id=draft.officer_id, station_id=draft.station_id, dimension=draft.dimension,
            points=draft.points, reason_code=draft.reason_code, subject=draft.subject, event_id=draft.event_id,
            event_type=draft.event_type, fact_id=draft.fact_id, rule_id=draft.rule_id,
            rule_set_version=draft.rule_set_version, explanation=draft.explanation, occur_time=draft.occur_time,
            create_time=now))
        if row is not None:
            written.append(row)
            outbox.publish(conn, "scoring.LedgerEntryRecorded", f"ledgerEntries/{row['id']}",
                           pb.LedgerEntryRecorded(ledger_entry=entry_to_pb(row)))
    for officer_id, station_id in {(r["officer_id"], r["station_id"]) for r in written
                                   if r["dimension"] == "QUALITY" and r["points"] < 0 and r["officer_id"]}:
        check_quality_falling(conn, outbox=outbox, officer_id=officer_id, station_id=station_id,
                              at=fact.occur_time, source_event_id=fact.event_id, now=now)
    return written


def preview(rule_set: RuleSet, fact_list: list[Fact]) -> list[domain.EntryDraft]:
    """What a rule set would write for these facts, in time order, monthly caps counted among them."""
    engine = RuleEngine(rule_set)
    given: dict[tuple, Decimal] = {}
    out = []
    for fact in sorted(fact_list, key=lambda f: (f.occur_time, f.fact_id)):
        drafts = engine.apply(fact, lambda rule_id, officer_id, station_id, month:
                              given.get((rule_id, officer_id or station_id, month), Decimal(0)))
        for d in drafts:
            key = (d.rule_id, d.officer_id or d.station_id, domain.month_start(d.occur_time))
            given[key] = given.get(key, Decimal(0)) + d.points
        out += drafts
    return out


# -- dispatch events -------------------------------------------------------------------

def _officers(refs, station_id: str) -> list[OfficerOnFact]:
    return [OfficerOnFact(o.officer_id, o.station_id or station_id, o.display_name) for o in refs if o.officer_id]


def on_case_created(conn, *, payload: dispatch_pb.CaseCreated) -> None:
    c = payload.dispatch_case
    CaseRepository(conn).upsert(c.name, report=c.report, station_id=c.station_id, grid_id=c.grid_id,
                                incident_type=c.incident_type)


def on_case_updated(conn, *, outbox: Outbox, event, payload: dispatch_pb.CaseUpdated, now: datetime) -> None:
    c = payload.dispatch_case
    cases = CaseRepository(conn)
    cases.upsert(c.name, report=c.report, station_id=c.station_id, grid_id=c.grid_id, incident_type=c.incident_type)
    if c.satisfaction == 0:
        return
    # Dispatch names the officers rated with the follow-up (回访); else those scoring saw report back.
    rated = _officers(c.follow_up.officers, c.station_id) if c.HasField("follow_up") else []
    when = from_pb(c.follow_up.stamp.time) if c.HasField("follow_up") and c.follow_up.HasField("stamp") else None
    _score_rating(conn, outbox=outbox, event_id=event.event_id, event_type="dispatch.CaseUpdated",
                  subject=c.name, case_name=c.name, data=payload_json(payload), officers=rated,
                  occur_time=when or from_pb(c.update_time) or from_pb(event.occur_time) or now, now=now)


def on_report_updated(conn, *, outbox: Outbox, event, payload: intake_pb.ReportUpdated, now: datetime) -> None:
    r = payload.report
    if r.satisfaction == 0:
        return
    cases = CaseRepository(conn)
    case = (cases.get(r.dispatch_case) if r.dispatch_case else None) or cases.by_report(r.name)
    _score_rating(conn, outbox=outbox, event_id=event.event_id, event_type="intake.ReportUpdated",
                  subject=r.name, case_name=case.case_name if case else "", data=payload_json(payload),
                  occur_time=from_pb(r.update_time) or from_pb(event.occur_time) or now, now=now)


def _score_rating(conn, *, outbox, event_id, event_type, subject, case_name, data, occur_time, now,
                  officers: list[OfficerOnFact] | None = None) -> None:
    # Only the first rating of a report or case scores; later updates carry it along unchanged.
    if FactRepository(conn).exists_for_subject(event_type, subject):
        return
    cases = CaseRepository(conn)
    if not officers and case_name:
        officers = cases.officers(case_name, reported_back_only=True) or cases.officers(case_name)
    officers = officers or []
    case = cases.get(case_name) if case_name else None
    data = dict(data, case_name=case_name, derived={"case_name": case_name})
    score_fact(conn, outbox=outbox, now=now, fact=Fact(
        fact_id=f"{subject}#{event_type}", event_id=event_id, event_type=event_type, subject=subject,
        occur_time=occur_time, station_id=case.station_id if case else "", officers=officers, data=data))


def score_waiting_ratings(conn, *, outbox: Outbox, case_name: str, report: str, officers: list[OfficerOnFact],
                          now: datetime) -> None:
    """A rating that arrived before anyone reported back (the feeds are not ordered with each other) scores
    the officers once they do: one fact per officer, so each is scored once however many report back."""
    waiting = conn.execute(select(facts).where(
        facts.c.event_type.in_(("dispatch.CaseUpdated", "intake.ReportUpdated")),
        facts.c.officers == text("'[]'::jsonb"),
        or_(facts.c.data["case_name"].astext == case_name, facts.c.subject == (report or case_name)))).all()
    for row in waiting:
        for o in officers:
            score_fact(conn, outbox=outbox, now=now, fact=Fact(
                fact_id=f"{row.fact_id}@{o.officer_id}", event_id=row.event_id, event_type=row.event_type,
                subject=row.subject, occur_time=row.occur_time, station_id=o.station_id, officers=[o],
                data=dict(row.data, case_name=case_name)))


def on_assignment_changed(conn, *, outbox: Outbox, event, payload: dispatch_pb.AssignmentChanged,
                          now: datetime) -> None:
    a = payload.assignment
    state = enum_name(dispatch_pb.AssignmentState, a.state, "ASSIGNMENT_STATE_")
    outcome = enum_name(dispatch_pb.Outcome, a.outcome, "OUTCOME_")
    cases = CaseRepository(conn)
    summary = a.case_summary if a.HasField("case_summary") else dispatch_pb.DispatchCase()
    cases.upsert(payload.case_name, station_id=payload.station_id, incident_type=payload.incident_type,
                 grid_id=payload.grid_id or summary.grid_id, report=summary.report)
    case = cases.get(payload.case_name)
    officers = _officers(payload.officers or a.officers, a.station_id or payload.station_id)
    times = {k: from_pb(getattr(a, f"{k}_time")) if a.HasField(f"{k}_time") else None
             for k in ("offer", "accept", "arrive", "clear", "report_back")}
    # Dispatch states the grid's target (1-3-5 minute circle); else scoring's copy of the grids.
    target = a.arrival_target_seconds or cases.arrival_target(case.grid_id) or domain.DEFAULT_ARRIVAL_TARGET_S
    incident_type = payload.incident_type or case.incident_type
    derived = domain.assignment_measurements(
        state=state, outcome=outcome, incident_type=incident_type, offer=times["offer"], accept=times["accept"],
        arrive=times["arrive"], clear=times["clear"], report_back=times["report_back"],
        evidence_count=len(a.evidence), arrival_target_s=target)
    derived["grid_id"] = case.grid_id
    # Dispatch's own measure runs from the report's receipt (the citizen's wait), not from the offer.
    derived["arrival_seconds_from_report"] = a.arrival_seconds or None
    derived["arrival_target_met_from_report"] = a.arrival_target_met
    occur_time = {"ACCEPTED": times["accept"], "ON_SCENE": times["arrive"], "CLEARED": times["clear"],
                  "REPORTED_BACK": times["report_back"]}.get(state) or from_pb(event.occur_time) or now

    if state in ("ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED", "REPORTED_BACK"):
        cases.add_officers(payload.case_name, officers, reported_back=state == "REPORTED_BACK")
    _track_report_back(conn, outbox=outbox, payload=payload, state=state, times=times, officers=officers,
                       event_id=event.event_id, now=now)

    if state not in ("ACCEPTED", "ON_SCENE", "REPORTED_BACK"):
        return
    data = payload_json(payload)
    data["assignment"].pop("case_summary", None)
    data["derived"] = derived
    score_fact(conn, outbox=outbox, now=now, fact=Fact(
        fact_id=f"{a.name}#{state}", event_id=event.event_id, event_type="dispatch.AssignmentChanged",
        subject=a.name, occur_time=occur_time, station_id=payload.station_id, officers=officers, data=data))

    if state == "REPORTED_BACK":
        score_waiting_ratings(conn, outbox=outbox, case_name=payload.case_name, report=case.report,
                              officers=officers, now=now)
        for o in officers:
            if derived["evidence_required"] and derived["evidence_count"] == 0:
                raise_warning(conn, outbox=outbox, kind="MISSING_EVIDENCE", officer=o, case_name=payload.case_name,
                              cause=a.name, source_event_id=event.event_id, now=now,
                              detail=f"{payload.case_name}以{outcome}结案回告但未上传任何证据材料，请补充现场照片、笔录等证据")
            if derived["outcome_contradicts_type"]:
                raise_warning(conn, outbox=outbox, kind="OUTCOME_CONTRADICTS_TYPE", officer=o,
                              case_name=payload.case_name, cause=a.name, source_event_id=event.event_id, now=now,
                              detail=f"{payload.case_name}警情类型为{incident_type}，回告结果为{outcome}，"
                                     "处置结果与警情类型矛盾，请核实定性")


def _track_report_back(conn, *, outbox, payload, state, times, officers, event_id, now) -> None:
    """Keeps the report-back obligation of an assignment for the overdue sweeper."""
    t = report_back_obligations
    name = payload.assignment.name
    if state == "ACCEPTED":
        conn.execute(insert(t).values(
            assignment=name, case_name=payload.case_name, station_id=payload.station_id,
            officers=[vars(o) for o in officers], due_time=domain.report_back_due(times["accept"] or now, None),
            source_event_id=event_id).on_conflict_do_nothing())
    elif state == "CLEARED" and times["clear"] is not None:
        conn.execute(t.update().where(t.c.assignment == name, t.c.done_time.is_(None)).values(
            due_time=domain.report_back_due(times["accept"], times["clear"])))
    elif state == "REPORTED_BACK":
        conn.execute(t.update().where(t.c.assignment == name, t.c.done_time.is_(None)).values(
            done_time=times["report_back"] or now))
        rectify_warnings(conn, outbox=outbox, kind="OVERDUE_REPORT_BACK", cause=name, now=now,
                         reason=f"{name}已完成回告")
    elif state in ("DECLINED", "EXPIRED"):
        conn.execute(t.update().where(t.c.assignment == name, t.c.done_time.is_(None)).values(cancelled=True))


# -- referral events ---------------------------------------------------------------------

def on_work_order(conn, *, outbox: Outbox, event, work_order: referral_pb.WorkOrder, action: str,
                  now: datetime) -> None:
    """Police preliminary handling (先期处置) of a 12345 work order scores the station that took it."""
    if work_order.status != referral_pb.WORK_ORDER_STATUS_PRELIMINARY_POLICE or not work_order.preliminary_station:
        return
    station_id = work_order.preliminary_station.removeprefix("stations/")
    data = payload_json(referral_pb.WorkOrderUpdated(work_order=work_order, action=action))
    data["derived"] = {"station_id": station_id}
    score_fact(conn, outbox=outbox, now=now, fact=Fact(
        fact_id=f"{work_order.name}#PRELIMINARY_POLICE", event_id=event.event_id,
        event_type="referral.WorkOrderUpdated", subject=work_order.name,
        occur_time=from_pb(work_order.update_time) or from_pb(event.occur_time) or now, station_id=station_id,
        officers=[OfficerOnFact("", station_id, "")], data=data))


# -- warnings -------------------------------------------------------------------------------

def raise_warning(conn, *, outbox: Outbox, kind: str, officer: OfficerOnFact, case_name: str, cause: str,
                  detail: str, source_event_id: str, now: datetime) -> dict | None:
    """Stores and announces a warning; None when the same cause already warned this officer."""
    row = conn.execute(insert(warnings).values(
        id=new_id(), kind=kind, officer_id=officer.officer_id, station_id=officer.station_id,
        case_name=case_name, status="OPEN", detail=detail, source_event_id=source_event_id, cause=cause,
        raise_time=now).on_conflict_do_nothing().returning(*warnings.c)).first()
    if row is None:
        return None
    warning_timeline.add(conn, row.id, [TimelineEntry("RAISED", time=now, detail=detail, **SERVICE_ACTOR)])
    outbox.publish(conn, "scoring.WarningRaised", f"warnings/{row.id}",
                   pb.WarningRaised(warning=warning_to_pb(row)))
    return row._asdict()


def rectify_warnings(conn, *, outbox: Outbox, kind: str, now: datetime, reason: str, cause: str = "",
                     case_name: str = "") -> int:
    q = warnings.update().where(warnings.c.kind == kind, warnings.c.status == "OPEN")
    q = q.where(warnings.c.cause == cause) if cause else q.where(warnings.c.case_name == case_name)
    rows = conn.execute(q.values(status="RECTIFIED", rectify_time=now).returning(*warnings.c)).all()
    for row in rows:
        warning_timeline.add(conn, row.id, [TimelineEntry("RECTIFIED", time=now, detail=reason, **SERVICE_ACTOR)])
        outbox.publish(conn, "scoring.WarningUpdated", f"warnings/{row.id}",
                       pb.WarningUpdated(warning=warning_to_pb(row), action="RECTIFIED"))
    return len(rows)


def sweep_overdue_report_backs(conn, *, outbox: Outbox, now: datetime) -> list[dict]:
    """Warns every officer of an assignment whose report-back (回告) is past its limit. `now` is injected."""
    t = report_back_obligations
    due = conn.execute(select(t).where(t.c.done_time.is_(None), t.c.cancelled.is_(False), t.c.warned.is_(False),
                                       t.c.due_time < now).order_by(t.c.due_time)
                       .with_for_update(skip_locked=True)).all()
    raised = []
    for ob in due:
        late = int((now - ob.due_time).total_seconds() // 60)
        for o in ob.officers:
            w = raise_warning(
                conn, outbox=outbox, kind="OVERDUE_REPORT_BACK", officer=OfficerOnFact(**o),
                case_name=ob.case_name, cause=ob.assignment, source_event_id=ob.source_event_id, now=now,
                detail=f"{ob.case_name}处警任务{ob.assignment}已超过回告时限{late}分钟仍未回告，请立即回告处置结果")
            if w:
                raised.append(w)
        conn.execute(t.update().where(t.c.assignment == ob.assignment).values(warned=True))
    return raised


def check_quality_falling(conn, *, outbox: Outbox, officer_id: str, station_id: str, at: datetime,
                          source_event_id: str, now: datetime) -> dict | None:
    c = ledger_entries.c

    def quality(start, end) -> Decimal:
        return Decimal(conn.execute(select(func.coalesce(func.sum(c.points), 0)).where(
            c.officer_id == officer_id, c.dimension == "QUALITY", c.occur_time > start,
            c.occur_time <= end)).scalar_one())

    recent = quality(at - domain.QUALITY_WINDOW, at)
    before = quality(at - 2 * domain.QUALITY_WINDOW, at - domain.QUALITY_WINDOW)
    if recent > before - domain.QUALITY_DROP:
        return None
    month = domain.month_start(at)
    return raise_warning(
        conn, outbox=outbox, kind="QUALITY_FALLING", officer=OfficerOnFact(officer_id, station_id),
        case_name="", cause=f"QUALITY:{month:%Y-%m}", source_event_id=source_event_id, now=now,
        detail=f"民警{officer_id}近30天质量积分{domain.signed(recent)}分，较前30天{domain.signed(before)}分"
               f"下降{domain.signed(before - recent).lstrip('+')}分，请关注执法质量")


# -- reviews ------------------------------------------------------------------------------

def create_review(conn, *, outbox: Outbox, fields: dict, actor: AuthContext, now: datetime) -> pb.Review:
    cases = CaseRepository(conn)
    case = cases.get(fields["case_name"])
    if case is None:
        raise NotFound(fields["case_name"], f"{fields['case_name']} is not known to scoring")
    if actor.has_role("legal_officer") and not actor.has_role("commander", "service") and actor.station \
            and case.station_id != actor.station:
        raise PermissionDenied(f"{case.case_name} belongs to station {case.station_id}", reason="OTHER_STATION")
    known = {o.officer_id: o for o in cases.officers(case.case_name)}
    if fields["officer_ids"]:
        unknown = [o for o in fields["officer_ids"] if o not in known]
        if unknown:
            raise FailedPrecondition(f"officers {', '.join(unknown)} did not work on {case.case_name}",
                                     reason="OFFICER_NOT_ON_CASE")
        officers = [known[o] for o in fields["officer_ids"]]
    else:
        officers = cases.officers(case.case_name, reported_back_only=True)
        if not officers:
            raise FailedPrecondition(f"no officer has reported back on {case.case_name} yet; name the officers",
                                     reason="NO_OFFICER_REPORTED_BACK")
    review_id = new_id()
    values = dict(id=review_id, case_name=case.case_name, officer_ids=[o.officer_id for o in officers],
                  station_id=case.station_id, evidence=fields["evidence"],
                  missing_evidence=fields["missing_evidence"], procedure=fields["procedure"],
                  procedure_flaws=fields["procedure_flaws"], classification=fields["classification"],
                  corrected_incident_type=fields["corrected_incident_type"], comment=fields["comment"],
                  actor=actor.subject, roles=sorted(actor.roles), create_time=now)
    row = conn.execute(reviews.insert().values(**values).returning(*reviews.c)).one()
    review = review_to_pb(row, [])
    seq = outbox.publish(conn, "scoring.ReviewCreated", review.name, pb.ReviewCreated(review=review))
    event_id = str(conn.execute(select(outbox.table.c.event_id).where(outbox.table.c.sequence == seq)).scalar_one())
    data = payload_json(pb.ReviewCreated(review=review))
    data["derived"] = {"missing_evidence": "、".join(fields["missing_evidence"]) or "未列明",
                       "procedure_flaws": "、".join(fields["procedure_flaws"]) or "未列明",
                       "incident_type": case.incident_type}
    written = score_fact(conn, outbox=outbox, now=now, fact=Fact(
        fact_id=review.name, event_id=event_id, event_type="scoring.ReviewCreated", subject=review.name,
        occur_time=now, station_id=case.station_id, officers=officers, data=data))
    if fields["evidence"] == "MISSING":
        what = "、".join(fields["missing_evidence"]) or "证据材料"
        for o in officers:
            raise_warning(conn, outbox=outbox, kind="MISSING_EVIDENCE", officer=o, case_name=case.case_name,
                          cause=review.name, source_event_id=event_id, now=now,
                          detail=f"{case.case_name}经法制审核缺少{what}，请在规定时间内补充")
    elif fields["evidence"] == "COMPLETE":
        rectify_warnings(conn, outbox=outbox, kind="MISSING_EVIDENCE", case_name=case.case_name, now=now,
                         reason=f"{review.name}审核证据齐全")
    return review_to_pb(row, [r["id"] for r in written])


def review_entry_ids(conn, review_names: list[str]) -> dict[str, list[str]]:
    if not review_names:
        return {}
    rows = conn.execute(select(ledger_entries.c.subject, ledger_entries.c.id).where(
        ledger_entries.c.subject.in_(review_names), ledger_entries.c.kind == "RULE").order_by(ledger_entries.c.seq))
    out: dict[str, list[str]] = {}
    for r in rows:
        out.setdefault(r.subject, []).append(r.id)
    return out


# -- corrections ----------------------------------------------------------------------------

def reverse_entry(conn, *, outbox: Outbox, entry_id: str, reason: str, corrected_points: Decimal | None,
                  actor: AuthContext, now: datetime) -> pb.ReverseLedgerEntryResponse:
    ledger = LedgerRepository(conn)
    # Serialise corrections of the same entry.
    conn.execute(select(func.pg_advisory_xact_lock(func.hashtext(entry_id))))
    original = ledger.get(entry_id)
    if original is None:
        raise NotFound(f"ledgerEntries/{entry_id}")
    if original.kind == "REVERSAL":
        raise FailedPrecondition("a reversal cannot be reversed", reason="REVERSAL_NOT_REVERSIBLE")
    if ledger.reversal_of(entry_id) is not None:
        raise FailedPrecondition(f"ledgerEntries/{entry_id} is already reversed", reason="ALREADY_REVERSED")
    # A station chief or a station's legal officer corrects only that station's entries.
    if not actor.has_role("commander", "service") and actor.station and original.station_id != actor.station:
        raise PermissionDenied(f"ledgerEntries/{entry_id} belongs to station {original.station_id}",
                               reason="OTHER_STATION")
    base = dict(officer_id=original.officer_id, station_id=original.station_id, dimension=original.dimension,
                reason_code=original.reason_code, subject=original.subject, event_id=original.event_id,
                event_type=original.event_type, fact_id=original.fact_id, reverses=entry_id,
                correction_actor=actor.subject, correction_roles=sorted(actor.roles), correction_time=now,
                correction_reason=reason, occur_time=original.occur_time, create_time=now)
    reversal = ledger.add(dict(base, kind="REVERSAL", points=-original.points,
                               explanation=f"更正：撤销积分条目{entry_id}（{domain.signed(-original.points)}分），"
                                           f"原因：{reason}"))
    out = pb.ReverseLedgerEntryResponse(reversal=entry_to_pb(reversal))
    rows = [reversal]
    if corrected_points is not None:
        replacement = ledger.add(dict(base, kind="REPLACEMENT", points=corrected_points,
                                      explanation=f"更正：积分条目{entry_id}改为{domain.signed(corrected_points)}分，"
                                                  f"原因：{reason}；原记录：{original.explanation}"))
        out.replacement.CopyFrom(entry_to_pb(replacement))
        rows.append(replacement)
    for row in rows:
        outbox.publish(conn, "scoring.LedgerEntryRecorded", f"ledgerEntries/{row['id']}",
                       pb.LedgerEntryRecorded(ledger_entry=entry_to_pb(row)))
    return out


# -- rule sets ----------------------------------------------------------------------------------

def create_rule_set(conn, *, outbox: Outbox, rule_set: RuleSet, actor: AuthContext, now: datetime) -> pb.RuleSet:
    rule_set.create_actor, rule_set.create_roles, rule_set.create_time = actor.subject, sorted(actor.roles), now
    rule_set.published = False
    RuleSetRepository(conn).add(rule_set)
    msg = rule_set_to_pb(rule_set)
    outbox.publish(conn, "scoring.RuleSetUpdated", msg.name, pb.RuleSetUpdated(rule_set=msg, action="CREATED"))
    return msg


def publish_rule_set(conn, *, outbox: Outbox, version: int, actor: AuthContext, now: datetime) -> pb.RuleSet:
    repo = RuleSetRepository(conn)
    rs = repo.get(version, for_update=True)
    if rs is None:
        raise NotFound(f"ruleSets/{version}")
    if rs.published:
        raise FailedPrecondition(f"ruleSets/{version} is already published", reason="ALREADY_PUBLISHED")
    if rs.effective_time < now:
        raise FailedPrecondition(
            f"ruleSets/{version} takes effect in the past ({rs.effective_time.isoformat()}); a new version never "
            "rewrites history: create one with an effective time from now on", reason="EFFECTIVE_TIME_IN_PAST")
    repo.publish(version, actor=actor.subject, roles=sorted(actor.roles), when=now)
    msg = rule_set_to_pb(repo.get(version))
    outbox.publish(conn, "scoring.RuleSetUpdated", msg.name, pb.RuleSetUpdated(rule_set=msg, action="PUBLISHED"))
    return msg
