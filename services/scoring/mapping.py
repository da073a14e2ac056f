"""Protobuf <-> domain for scoring: the messages of the API, the events scoring consumes (into the
domain's terms) and publishes (`event_to_message`, the domain event -> outbox mapping)."""
from __future__ import annotations

from decimal import Decimal

from google.protobuf.json_format import MessageToDict

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from smart110.scoring.v1 import scoring_service_pb2 as pb

from services.runtime.audit import timeline_to_pb
from services.runtime.enums import enum_name, enum_value
from services.runtime.timeutil import from_pb, to_pb

from . import domain
from .domain import (
    AssignmentChange, Case, EnforcementWarning, Findings, LedgerEntry, OfficerOnFact, PreliminaryHandling, Rating,
    Review, Rule, RuleSet, money,
)
from .queries import Ranking, Reason, Recomputed, Score, StationWarnings, Tally


def payload_json(message) -> dict:
    """An event payload as rules see it: proto3 JSON, proto field names, enum names, defaults present."""
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def dimension_pb(name: str) -> int:
    return enum_value(pb.Dimension, name, "DIMENSION_")


def dimension_name(value: int) -> str:
    return enum_name(pb.Dimension, value, "DIMENSION_")


# -- the ledger --------------------------------------------------------------------------------

def entry_to_pb(e: LedgerEntry, reversed_by: str = "") -> pb.LedgerEntry:
    msg = pb.LedgerEntry(
        name=e.name, officer_id=e.officer_id, station_id=e.station_id, dimension=dimension_pb(e.dimension),
        points=float(e.points), reason_code=e.reason_code,
        source=pb.LedgerSource(subject=e.subject, event_id=e.event_id, event_type=e.event_type),
        rule_id=e.rule_id, rule_set_version=e.rule_set_version, explanation=e.explanation,
        reverses=f"ledgerEntries/{e.reverses}" if e.reverses else "",
        reversed_by=f"ledgerEntries/{reversed_by}" if reversed_by else "",
        occur_time=to_pb(e.occur_time), create_time=to_pb(e.create_time),
    )
    if e.correction_time is not None:
        msg.correction.CopyFrom(common_pb2.AuditStamp(
            actor=e.correction_actor, roles=list(e.correction_roles), time=to_pb(e.correction_time),
            reason=e.correction_reason))
    return msg


def correction_to_pb(c: domain.Correction) -> pb.ReverseLedgerEntryResponse:
    out = pb.ReverseLedgerEntryResponse(reversal=entry_to_pb(c.reversal))
    if c.replacement is not None:
        out.replacement.CopyFrom(entry_to_pb(c.replacement))
    return out


# -- rule sets -----------------------------------------------------------------------------------

def rule_to_pb(r: Rule) -> pb.ScoringRule:
    return pb.ScoringRule(
        rule_id=r.rule_id, description=r.description, dimension=dimension_pb(r.dimension),
        event_type=r.event_type, condition=r.condition, points=float(r.points), reason_code=r.reason_code,
        explanation_template=r.explanation_template, monthly_cap=float(r.monthly_cap))


def rule_from_pb(r: pb.ScoringRule) -> Rule:
    return Rule(rule_id=r.rule_id, description=r.description, dimension=dimension_name(r.dimension),
                event_type=r.event_type, condition=r.condition, points=money(r.points), reason_code=r.reason_code,
                explanation_template=r.explanation_template, monthly_cap=money(r.monthly_cap))


def rule_set_to_pb(rs: RuleSet) -> pb.RuleSet:
    msg = pb.RuleSet(name=rs.name, version=rs.version, description=rs.description,
                     rules=[rule_to_pb(r) for r in rs.rules], effective_time=to_pb(rs.effective_time),
                     published=rs.published)
    if rs.create_time:
        msg.create_stamp.CopyFrom(common_pb2.AuditStamp(actor=rs.create_actor, roles=rs.create_roles,
                                                        time=to_pb(rs.create_time)))
    if rs.publish_time:
        msg.publish_stamp.CopyFrom(common_pb2.AuditStamp(actor=rs.publish_actor, roles=rs.publish_roles,
                                                         time=to_pb(rs.publish_time)))
    return msg


# -- reviews ---------------------------------------------------------------------------------------

def findings_from_pb(r: pb.Review) -> Findings:
    return Findings(
        evidence=enum_name(pb.EvidenceVerdict, r.evidence, "EVIDENCE_VERDICT_"),
        missing_evidence=[x.strip() for x in r.missing_evidence if x.strip()],
        procedure=enum_name(pb.ProcedureVerdict, r.procedure, "PROCEDURE_VERDICT_"),
        procedure_flaws=[x.strip() for x in r.procedure_flaws if x.strip()],
        classification=enum_name(pb.ClassificationVerdict, r.classification, "CLASSIFICATION_VERDICT_"),
        corrected_incident_type=r.corrected_incident_type, comment=r.comment)


def review_to_pb(r: Review) -> pb.Review:
    return pb.Review(
        name=r.name, case_name=r.case_name, officer_ids=list(r.officer_ids), station_id=r.station_id,
        evidence=enum_value(pb.EvidenceVerdict, r.evidence, "EVIDENCE_VERDICT_"),
        missing_evidence=list(r.missing_evidence),
        procedure=enum_value(pb.ProcedureVerdict, r.procedure, "PROCEDURE_VERDICT_"),
        procedure_flaws=list(r.procedure_flaws),
        classification=enum_value(pb.ClassificationVerdict, r.classification, "CLASSIFICATION_VERDICT_"),
        corrected_incident_type=r.corrected_incident_type, comment=r.comment,
        review_stamp=common_pb2.AuditStamp(actor=r.actor, roles=list(r.roles), time=to_pb(r.create_time),
                                           reason=r.comment),
        ledger_entries=[f"ledgerEntries/{i}" for i in r.ledger_entries],
    )


def review_data(r: Review) -> dict:
    """A review as rules on scoring.ReviewCreated read it (its event's payload)."""
    return payload_json(pb.ReviewCreated(review=review_to_pb(r)))


# -- warnings ----------------------------------------------------------------------------------------

def warning_to_pb(w: EnforcementWarning, *, with_timeline: bool = False) -> pb.EnforcementWarning:
    msg = pb.EnforcementWarning(
        name=w.name, kind=enum_value(pb.WarningKind, w.kind, "WARNING_KIND_"),
        officer_id=w.officer_id, station_id=w.station_id, case_name=w.case_name,
        status=enum_value(pb.WarningStatus, w.status, "WARNING_STATUS_"), detail=w.detail,
        source_event_id=w.source_event_id, raise_time=to_pb(w.raise_time))
    if w.rectify_time is not None:
        msg.rectify_time.CopyFrom(to_pb(w.rectify_time))
    if with_timeline:
        timeline_to_pb(w.timeline, msg.timeline)
    return msg


def warning_statistics_to_pb(stations: list[StationWarnings]) -> list[pb.StationWarnings]:
    return [pb.StationWarnings(
        station_id=s.station_id, warnings=s.warnings, cases=s.cases, warning_rate=s.warning_rate,
        rate_change=s.rate_change,
        points=[pb.WarningRatePoint(
            start_time=to_pb(p.start), warnings=p.warnings, cases=p.cases, warning_rate=p.warning_rate,
            by_kind=[pb.WarningKindCount(kind=enum_value(pb.WarningKind, k, "WARNING_KIND_"), count=n)
                     for k, n in p.by_kind]) for p in s.points])
        for s in stations]


# -- scores ------------------------------------------------------------------------------------------

def dimension_scores(points: dict[str, Decimal], counts: dict[str, int]) -> list[pb.DimensionScore]:
    return [pb.DimensionScore(dimension=dimension_pb(d), points=float(points.get(d, Decimal(0))),
                              entries=counts.get(d, 0))
            for d in domain.DIMENSIONS]


def _dimensions(t: Tally) -> list[pb.DimensionScore]:
    return dimension_scores(t.points, t.counts)


def score_to_pb(s: Score) -> pb.Score:
    msg = pb.Score(
        name=s.name, officer_id=s.officer_id, station_id=s.station_id, display_name=s.display_name,
        start_time=to_pb(s.start), end_time=to_pb(s.end), total=float(s.tally.total),
        dimensions=_dimensions(s.tally), officer_count=s.officer_count,
        mean_per_officer=float(s.mean_per_officer), rule_set_version=s.rule_set_version,
        trend=[pb.ScorePoint(start_time=to_pb(p.start), total=float(p.tally.total), dimensions=_dimensions(p.tally))
               for p in s.trend])
    if s.previous is not None:
        msg.previous_total = float(s.previous.total)
        msg.previous_dimensions.extend(_dimensions(s.previous))
    return msg


def reasons_to_pb(reasons: list[Reason]) -> list[pb.ReasonSummary]:
    return [pb.ReasonSummary(reason_code=r.reason_code, dimension=dimension_pb(r.dimension), entries=r.entries,
                             points=float(r.points), description=r.description) for r in reasons]


def ranking_to_pb(r: Ranking) -> pb.Ranking:
    return pb.Ranking(rank=r.rank, subject=r.subject, display_name=r.display_name, station_id=r.station_id,
                      points=float(r.points), dimensions=_dimensions(r.tally), rank_change=r.rank_change)


def recomputed_to_pb(r: Recomputed) -> pb.RecomputedScore:
    return pb.RecomputedScore(recomputed=score_to_pb(r.recomputed), recorded=score_to_pb(r.recorded),
                              reasons=reasons_to_pb(r.reasons))


# -- the events scoring consumes -------------------------------------------------------------------------

def _officers(refs, station_id: str) -> list[OfficerOnFact]:
    return [OfficerOnFact(o.officer_id, o.station_id or station_id, o.display_name) for o in refs if o.officer_id]


def case_from_pb(c: dispatch_pb.DispatchCase) -> Case:
    return Case(case_name=c.name, report=c.report, station_id=c.station_id, grid_id=c.grid_id,
                incident_type=c.incident_type)


def case_rating(event, payload: dispatch_pb.CaseUpdated) -> Rating | None:
    """The citizen follow-up (回访) an updated case carries; None before it is rated."""
    c = payload.dispatch_case
    if c.satisfaction == 0:
        return None
    # Dispatch names the officers rated with the follow-up; else those scoring saw report back.
    followed = c.HasField("follow_up")
    when = from_pb(c.follow_up.stamp.time) if followed and c.follow_up.HasField("stamp") else None
    return Rating(event_id=event.event_id, event_type="dispatch.CaseUpdated", subject=c.name, case_name=c.name,
                  data=payload_json(payload), occur_time=when or from_pb(c.update_time) or from_pb(event.occur_time),
                  officers=_officers(c.follow_up.officers, c.station_id) if followed else [])


def report_rating(event, payload: intake_pb.ReportUpdated) -> Rating | None:
    """The reporter's rating an updated report carries; None before it is rated."""
    r = payload.report
    if r.satisfaction == 0:
        return None
    return Rating(event_id=event.event_id, event_type="intake.ReportUpdated", subject=r.name,
                  case_name=r.dispatch_case, data=payload_json(payload),
                  occur_time=from_pb(r.update_time) or from_pb(event.occur_time))


_TIMES = ("offer", "accept", "arrive", "clear", "report_back")


def assignment_change(event, payload: dispatch_pb.AssignmentChanged) -> AssignmentChange:
    a = payload.assignment
    summary = a.case_summary if a.HasField("case_summary") else dispatch_pb.DispatchCase()
    data = payload_json(payload)
    data["assignment"].pop("case_summary", None)
    return AssignmentChange(
        event_id=event.event_id, assignment=a.name, case_name=payload.case_name, station_id=payload.station_id,
        incident_type=payload.incident_type, grid_id=payload.grid_id or summary.grid_id, report=summary.report,
        state=enum_name(dispatch_pb.AssignmentState, a.state, "ASSIGNMENT_STATE_"),
        outcome=enum_name(dispatch_pb.Outcome, a.outcome, "OUTCOME_"),
        officers=_officers(payload.officers or a.officers, a.station_id or payload.station_id),
        times={k: from_pb(getattr(a, f"{k}_time")) if a.HasField(f"{k}_time") else None for k in _TIMES},
        evidence_count=len(a.evidence), arrival_target_s=a.arrival_target_seconds,
        arrival_seconds=a.arrival_seconds or None, arrival_target_met=a.arrival_target_met,
        data=data, event_time=from_pb(event.occur_time))


def preliminary_handling(event, work_order: referral_pb.WorkOrder, action: str) -> PreliminaryHandling | None:
    """A work order a station took for preliminary handling (先期处置); None for any other."""
    if work_order.status != referral_pb.WORK_ORDER_STATUS_PRELIMINARY_POLICE or not work_order.preliminary_station:
        return None
    return PreliminaryHandling(
        event_id=event.event_id, work_order=work_order.name,
        station_id=work_order.preliminary_station.removeprefix("stations/"),
        data=payload_json(referral_pb.WorkOrderUpdated(work_order=work_order, action=action)),
        occur_time=from_pb(work_order.update_time) or from_pb(event.occur_time))


# -- the events scoring publishes ------------------------------------------------------------------------

def event_to_message(event: domain.DomainEvent) -> tuple[str, str, object]:
    """A domain event as its outbox message: (event type, subject, payload)."""
    if isinstance(event, domain.LedgerEntryRecorded):
        return ("scoring.LedgerEntryRecorded", event.entry.name,
                pb.LedgerEntryRecorded(ledger_entry=entry_to_pb(event.entry)))
    if isinstance(event, domain.WarningRaised):
        return "scoring.WarningRaised", event.warning.name, pb.WarningRaised(warning=warning_to_pb(event.warning))
    if isinstance(event, domain.WarningRectified):
        return ("scoring.WarningUpdated", event.warning.name,
                pb.WarningUpdated(warning=warning_to_pb(event.warning), action="RECTIFIED"))
    if isinstance(event, domain.ReviewCreated):
        return "scoring.ReviewCreated", event.review.name, pb.ReviewCreated(review=review_to_pb(event.review))
    if isinstance(event, domain.RuleSetCreated):
        return ("scoring.RuleSetUpdated", event.rule_set.name,
                pb.RuleSetUpdated(rule_set=rule_set_to_pb(event.rule_set), action="CREATED"))
    if isinstance(event, domain.RuleSetPublished):
        return ("scoring.RuleSetUpdated", event.rule_set.name,
                pb.RuleSetUpdated(rule_set=rule_set_to_pb(event.rule_set), action="PUBLISHED"))
    raise TypeError(f"scoring publishes no {type(event).__name__}")
