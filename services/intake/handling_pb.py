"""Protobuf for consultations, knowledge entries and the follow-up fields of a report."""
from __future__ import annotations

from smart110.intake.v1 import intake_service_pb2 as pb

from services.runtime.enums import enum_value
from services.runtime.timeutil import to_pb

from .knowledge import Consultation, Entry, Match


def knowledge_entry_to_pb(e: Entry) -> pb.KnowledgeEntry:
    msg = pb.KnowledgeEntry(entry_id=e.entry_id, topic=e.topic, question=e.question, answer=e.answer,
                            keywords=list(e.keywords), source=e.source,
                            source_consultation=e.source_consultation)
    if e.create_time is not None:
        msg.create_time.CopyFrom(to_pb(e.create_time))
    return msg


def match_to_pb(m: Match) -> pb.ScoredKnowledgeEntry:
    return pb.ScoredKnowledgeEntry(entry=knowledge_entry_to_pb(m.entry), score=m.score)


def consultation_to_pb(c: Consultation) -> pb.Consultation:
    msg = pb.Consultation(
        name=c.name, report=f"reports/{c.report_id}", question=c.question,
        status=enum_value(pb.ConsultationStatus, c.status, "CONSULTATION_STATUS_"), topic=c.topic, answer=c.answer,
        knowledge_entry_id=c.entry_id, score=c.score, answered_at_once=c.answered_at_once, expert=c.expert,
        expert_name=c.expert_name, station_id=c.station_id,
        suggestions=[
            pb.ScoredKnowledgeEntry(entry=pb.KnowledgeEntry(entry_id=s["entry_id"], topic=s.get("topic", ""),
                                                            question=s.get("question", ""),
                                                            answer=s.get("answer", "")),
                                    score=s["score"])
            for s in c.suggestions
        ],
    )
    for field, value in (("create_time", c.create_time), ("claim_time", c.claim_time),
                         ("answer_time", c.answer_time)):
        if value is not None:
            getattr(msg, field).CopyFrom(to_pb(value))
    return msg


def fill_handling(msg: pb.Report, r) -> None:
    """The report's consultation, duplicates, merge reason and follow-up links."""
    if r.consultation is not None:
        msg.consultation.CopyFrom(consultation_to_pb(r.consultation))
    msg.duplicates.extend(f"reports/{d}" for d in r.duplicates)
    msg.merge_reason = r.merge_reason
    msg.dispatch_case = r.dispatch_case
    msg.work_order = r.work_order
    msg.satisfaction_comment = r.satisfaction_comment
