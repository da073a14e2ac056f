"""Domain and rows <-> protobuf for scoring."""
from __future__ import annotations

from decimal import Decimal

from google.protobuf.json_format import MessageToDict

from smart110.common.v1 import common_pb2
from smart110.scoring.v1 import scoring_service_pb2 as pb

from services.runtime.enums import enum_name, enum_value
from services.runtime.timeutil import to_pb

from .domain import Rule, RuleSet, money


def payload_json(message) -> dict:
    """An event payload as rules see it: proto3 JSON, proto field names, enum names, defaults present."""
    return MessageToDict(message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)


def dimension_pb(name: str) -> int:
    return enum_value(pb.Dimension, name, "DIMENSION_")


def dimension_name(value: int) -> str:
    return enum_name(pb.Dimension, value, "DIMENSION_")


def entry_to_pb(row, reversed_by: str = "") -> pb.LedgerEntry:
    r = row if isinstance(row, dict) else row._asdict()
    msg = pb.LedgerEntry(
        name=f"ledgerEntries/{r['id']}", officer_id=r["officer_id"], station_id=r["station_id"],
        dimension=dimension_pb(r["dimension"]), points=float(r["points"]), reason_code=r["reason_code"],
        source=pb.LedgerSource(subject=r["subject"], event_id=r["event_id"], event_type=r["event_type"]),
        rule_id=r["rule_id"], rule_set_version=r["rule_set_version"], explanation=r["explanation"],
        reverses=f"ledgerEntries/{r['reverses']}" if r["reverses"] else "",
        reversed_by=f"ledgerEntries/{reversed_by}" if reversed_by else "",
        occur_time=to_pb(r["occur_time"]), create_time=to_pb(r["create_time"]),
    )
    if r["correction_time"] is not None:
        msg.correction.CopyFrom(common_pb2.AuditStamp(
            actor=r["correction_actor"], roles=list(r["correction_roles"]), time=to_pb(r["correction_time"]),
            reason=r["correction_reason"]))
    return msg


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


def review_to_pb(r, entry_ids: list[str]) -> pb.Review:
    return pb.Review(
        name=f"reviews/{r.id}", case_name=r.case_name, officer_ids=list(r.officer_ids), station_id=r.station_id,
        evidence=enum_value(pb.EvidenceVerdict, r.evidence, "EVIDENCE_VERDICT_"),
        missing_evidence=list(r.missing_evidence),
        procedure=enum_value(pb.ProcedureVerdict, r.procedure, "PROCEDURE_VERDICT_"),
        procedure_flaws=list(r.procedure_flaws),
        classification=enum_value(pb.ClassificationVerdict, r.classification, "CLASSIFICATION_VERDICT_"),
        corrected_incident_type=r.corrected_incident_type, comment=r.comment,
        review_stamp=common_pb2.AuditStamp(actor=r.actor, roles=list(r.roles), time=to_pb(r.create_time),
                                           reason=r.comment),
        ledger_entries=[f"ledgerEntries/{i}" for i in entry_ids],
    )


def warning_to_pb(w) -> pb.EnforcementWarning:
    r = w if isinstance(w, dict) else w._asdict()
    msg = pb.EnforcementWarning(
        name=f"warnings/{r['id']}", kind=enum_value(pb.WarningKind, r["kind"], "WARNING_KIND_"),
        officer_id=r["officer_id"], station_id=r["station_id"], case_name=r["case_name"],
        status=enum_value(pb.WarningStatus, r["status"], "WARNING_STATUS_"), detail=r["detail"],
        source_event_id=r["source_event_id"], raise_time=to_pb(r["raise_time"]))
    if r["rectify_time"] is not None:
        msg.rectify_time.CopyFrom(to_pb(r["rectify_time"]))
    return msg


def dimension_scores(points: dict[str, Decimal], counts: dict[str, int]) -> list[pb.DimensionScore]:
    return [pb.DimensionScore(dimension=dimension_pb(d), points=float(points.get(d, Decimal(0))),
                              entries=counts.get(d, 0))
            for d in ("QUANTITY", "QUALITY", "EFFICIENCY")]
