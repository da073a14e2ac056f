"""IntakeService RPCs for what follows intake: the call answered, merges,
ratings, the knowledge base and expert queue, statistics. Mixed into
`IntakeServicer`; proto -> command -> handler -> proto, nothing else."""
from __future__ import annotations

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as pb

from services.runtime import auth
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name, enum_value
from services.runtime.errors import NotFound
from services.runtime.timeutil import from_pb, now, to_pb
from services.runtime.validation import (
    Violations, decode_page_token, name_id, paginate, resource_id, time_keyset,
)

from . import handling, knowledge
from .handling_pb import consultation_to_pb, match_to_pb
from .mapping import report_to_pb
from .statistics import Figures, intake_statistics, share

CALL_TAKER_ROLES = ("call_taker", "commander", "service")
RATING_ROLES = ("call_taker", "hotline_agent", "supervisor", "service")
STATISTICS_ROLES = ("supervisor", "commander", "station_chief", "call_taker", "service")
CONSULTATION_READERS = ("expert", "call_taker", "commander", "supervisor", "service")
MAX_REASON_CHARS = 500
MAX_ANSWER_CHARS = 2000
MAX_QUERY_CHARS = 500
MAX_KEYWORDS = 10
DEFAULT_SEARCH_RESULTS = 5
MAX_SEARCH_RESULTS = 50


def _reason(value: str, v: Violations, *, required: bool) -> str:
    text = value.strip()
    if required:
        v.require(text, "reason", "is required: say why, it is kept in the report's timeline")
    v.check(len(text) <= MAX_REASON_CHARS, "reason", f"must be at most {MAX_REASON_CHARS} characters")
    return text


def _figures_into(msg, f: Figures) -> None:
    msg.reports = f.reports
    msg.answered_within_3s = f.answered_share
    msg.handed_off_within_30s = f.handed_off_share
    msg.merged = f.merged
    msg.repeat_report_rate = f.repeat_rate


class HandlingRpcs:
    """Needs `self.rt` (Runtime) and `self.knowledge` (knowledge.KnowledgeBase)."""

    # -- the call answered, rating --------------------------------------------
    def AnswerReport(self, request: pb.AnswerReportRequest, context) -> pb.Report:
        actor = auth.current()
        actor.require_role(*CALL_TAKER_ROLES)
        report_id = name_id(request.name, "reports", request_id=request.request_id)
        return self.rt.idempotent("AnswerReport", request, pb.Report, lambda conn: report_to_pb(
            handling.answer_report(conn, outbox=self.rt.outbox, report_id=report_id, actor=actor, now=now())))

    def RateReport(self, request: pb.RateReportRequest, context) -> pb.Report:
        actor = auth.current()
        actor.require_role(*RATING_ROLES)
        v = Violations()
        v.request_id(request.request_id)
        report_id = resource_id(request.name, "reports", v)
        satisfaction = enum_name(common_pb2.Satisfaction, request.satisfaction, "SATISFACTION_")
        v.require(satisfaction, "satisfaction", "is required: SATISFIED, BASICALLY_SATISFIED or UNSATISFIED")
        comment = request.comment.strip()
        v.check(len(comment) <= MAX_REASON_CHARS, "comment", f"must be at most {MAX_REASON_CHARS} characters")
        v.raise_if_any()
        return self.rt.idempotent("RateReport", request, pb.Report, lambda conn: report_to_pb(
            handling.rate_report(conn, outbox=self.rt.outbox, report_id=report_id, satisfaction=satisfaction,
                                 comment=comment, actor=actor, now=now())))

    # -- merges -------------------------------------------------------------------
    def MergeReport(self, request: pb.MergeReportRequest, context) -> pb.Report:
        actor = auth.current()
        actor.require_role(*CALL_TAKER_ROLES)
        v = Violations()
        v.request_id(request.request_id)
        report_id = resource_id(request.name, "reports", v)
        master_id = resource_id(request.master, "reports", v, field="master")
        if report_id and master_id:
            v.check(report_id != master_id, "master", "must be another report than name")
        reason = _reason(request.reason, v, required=True)
        v.raise_if_any()
        return self.rt.idempotent("MergeReport", request, pb.Report, lambda conn: report_to_pb(
            handling.merge_report(conn, outbox=self.rt.outbox, report_id=report_id, master_id=master_id,
                                  reason=reason, actor=actor, now=now())))

    def UnmergeReport(self, request: pb.UnmergeReportRequest, context) -> pb.Report:
        actor = auth.current()
        actor.require_role(*CALL_TAKER_ROLES)
        v = Violations()
        v.request_id(request.request_id)
        report_id = resource_id(request.name, "reports", v)
        reason = _reason(request.reason, v, required=True)
        v.raise_if_any()
        return self.rt.idempotent("UnmergeReport", request, pb.Report, lambda conn: report_to_pb(
            handling.unmerge_report(conn, outbox=self.rt.outbox, report_id=report_id, reason=reason, actor=actor,
                                    now=now())))

    # -- knowledge base (即问即复) ------------------------------------------------
    def SearchKnowledge(self, request: pb.SearchKnowledgeRequest, context) -> pb.SearchKnowledgeResponse:
        v = Violations()
        query = request.query.strip()
        v.require(query, "query", "is required: the citizen's question")
        v.check(len(query) <= MAX_QUERY_CHARS, "query", f"must be at most {MAX_QUERY_CHARS} characters")
        v.check(not request.topic or request.topic in knowledge.TOPICS, "topic",
                "must be one of " + "、".join(knowledge.TOPICS) + ", or empty for all")
        v.check(0 <= request.page_size <= MAX_SEARCH_RESULTS, "page_size",
                f"must be between 0 and {MAX_SEARCH_RESULTS}")
        v.raise_if_any()
        matches = self.knowledge.index().search(query, topic=request.topic,
                                                limit=request.page_size or DEFAULT_SEARCH_RESULTS)
        return pb.SearchKnowledgeResponse(results=[match_to_pb(m) for m in matches],
                                          answer_threshold=knowledge.ANSWER_THRESHOLD)

    # -- the expert queue (为民服务圈) ------------------------------------------------
    def ListConsultations(self, request: pb.ListConsultationsRequest, context) -> pb.ListConsultationsResponse:
        auth.current().require_role(*CONSULTATION_READERS)
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        status = enum_name(pb.ConsultationStatus, request.status, "CONSULTATION_STATUS_")
        statuses = (status,) if status else ("QUEUED", "CLAIMED")
        with read_snapshot(self.rt.engine) as conn:
            rows = knowledge.list_consultations(conn, statuses=statuses, expert=request.expert.strip(),
                                                limit=size + 1, after=after)
        page, token = paginate(rows, size, lambda c: {"t": c.create_time.isoformat(), "id": c.report_id})
        return pb.ListConsultationsResponse(consultations=[consultation_to_pb(c) for c in page],
                                            next_page_token=token)

    def GetConsultation(self, request: pb.GetConsultationRequest, context) -> pb.Consultation:
        auth.current().require_role(*CONSULTATION_READERS)
        report_id = name_id(request.name, "consultations")
        with read_snapshot(self.rt.engine) as conn:
            c = knowledge.get_consultation(conn, report_id)
        if c is None:
            raise NotFound(request.name)
        return consultation_to_pb(c)

    def ClaimConsultation(self, request: pb.ClaimConsultationRequest, context) -> pb.Consultation:
        actor = auth.current()
        actor.require_role(*knowledge.EXPERT_ROLES)
        report_id = name_id(request.name, "consultations", request_id=request.request_id)
        return self.rt.idempotent("ClaimConsultation", request, pb.Consultation, lambda conn: consultation_to_pb(
            handling.claim_consultation(conn, outbox=self.rt.outbox, report_id=report_id, actor=actor, now=now())))

    def AnswerConsultation(self, request: pb.AnswerConsultationRequest, context) -> pb.Consultation:
        actor = auth.current()
        actor.require_role(*knowledge.EXPERT_ROLES)
        v = Violations()
        v.request_id(request.request_id)
        report_id = resource_id(request.name, "consultations", v)
        text = request.answer.strip()
        v.require(text, "answer", "is required: the answer to the citizen")
        v.check(len(text) <= MAX_ANSWER_CHARS, "answer", f"must be at most {MAX_ANSWER_CHARS} characters")
        v.check(request.topic in knowledge.TOPICS, "topic", "is required: one of " + "、".join(knowledge.TOPICS))
        question = request.question.strip()
        v.check(len(question) <= MAX_QUERY_CHARS, "question", f"must be at most {MAX_QUERY_CHARS} characters")
        keywords = [k.strip() for k in request.keywords]
        v.check(len(keywords) <= MAX_KEYWORDS, "keywords", f"must be at most {MAX_KEYWORDS}")
        v.check(all(0 < len(k) <= 20 for k in keywords), "keywords", "must each be 1 to 20 characters")
        v.raise_if_any()
        result = self.rt.idempotent("AnswerConsultation", request, pb.Consultation, lambda conn: consultation_to_pb(
            handling.answer_consultation(conn, outbox=self.rt.outbox, report_id=report_id, text=text,
                                         topic=request.topic, question=question, keywords=keywords, actor=actor,
                                         now=now())))
        self.knowledge.invalidate()  # the answer is searchable at once in this process
        return result

    # -- statistics -------------------------------------------------------------------
    def GetIntakeStatistics(self, request: pb.GetIntakeStatisticsRequest, context) -> pb.IntakeStatistics:
        auth.current().require_role(*STATISTICS_ROLES)
        v = Violations()
        start = from_pb(request.start_time) if request.HasField("start_time") else None
        end = from_pb(request.end_time) if request.HasField("end_time") else None
        if start and end:
            v.check(start < end, "end_time", "must be after start_time")
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            s = intake_statistics(conn, start=start, end=end, station_id=request.station_id.strip())
        out = pb.IntakeStatistics(reports=s.total.reports, repeat_report_rate=s.total.repeat_rate,
                                  answered_within_3s=s.total.answered_share,
                                  handed_off_within_30s=s.total.handed_off_share, merged=s.total.merged)
        for channel, f in s.channels.items():
            out.channels.add(channel=enum_value(pb.Channel, channel, "CHANNEL_"), reports=f.reports,
                             answered_within_3s=f.answered_share, handed_off_within_30s=f.handed_off_share,
                             answered=f.answered, police_reports=f.police, handed_off=f.handed_off,
                             merged=f.merged, repeat_report_rate=f.repeat_rate)
        for hour, f in s.hours:
            bucket = out.hours.add(hour_start=to_pb(hour))
            _figures_into(bucket, f)
        for station, f in s.stations.items():
            bucket = out.stations.add(station_id=station)
            _figures_into(bucket, f)
        rated = sum(s.satisfaction.values())
        counts = {k: s.satisfaction.get(k, 0) for k in ("SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED")}

        out.satisfaction.CopyFrom(pb.SatisfactionStatistics(
            rated=rated, satisfied=counts["SATISFIED"], basically_satisfied=counts["BASICALLY_SATISFIED"],
            unsatisfied=counts["UNSATISFIED"], satisfied_rate=share(counts["SATISFIED"], rated),
            basically_satisfied_rate=share(counts["BASICALLY_SATISFIED"], rated),
            unsatisfied_rate=share(counts["UNSATISFIED"], rated),
            satisfaction_rate=share(counts["SATISFIED"] + counts["BASICALLY_SATISFIED"], rated)))
        out.satisfied_rate = out.satisfaction.satisfied_rate
        c = s.consultations
        out.consultations.CopyFrom(pb.ConsultationStatistics(
            consultations=c["consultations"], answered_at_once=c["answered_at_once"],
            answered_by_expert=c["answered_by_expert"], waiting=c["waiting"],
            answered_at_once_rate=share(c["answered_at_once"], c["consultations"])))
        return out
