"""IntakeService RPCs of the consultation face: the knowledge base answered at once (即问即复) and the
expert queue (为民服务圈). Mixed into `IntakeServicer`; validate, call a handler or a query, map."""
from __future__ import annotations

from smart110.intake.v1 import intake_service_pb2 as pb

from services.runtime import auth
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name
from services.runtime.errors import NotFound
from services.runtime.validation import Violations, decode_page_token, name_id, paginate, resource_id, time_keyset

from . import handlers, knowledge, mapping, queries

CONSULTATION_READERS = ("expert", "call_taker", "commander", "supervisor", "service")
MAX_ANSWER_CHARS = 2000
MAX_QUERY_CHARS = 500
MAX_KEYWORDS = 10
DEFAULT_SEARCH_RESULTS = 5
MAX_SEARCH_RESULTS = 50


class ConsultationRpcs:
    """Needs `self.rt` (Runtime) and `self.caches` (its context, a `handlers.Context`)."""

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
        matches = self.caches.knowledge.index().search(query, topic=request.topic,
                                                           limit=request.page_size or DEFAULT_SEARCH_RESULTS)
        return pb.SearchKnowledgeResponse(results=[mapping.match_to_pb(m) for m in matches],
                                          answer_threshold=knowledge.ANSWER_THRESHOLD)

    def ListConsultations(self, request: pb.ListConsultationsRequest, context) -> pb.ListConsultationsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        status = enum_name(pb.ConsultationStatus, request.status, "CONSULTATION_STATUS_")
        statuses = (status,) if status else ("QUEUED", "CLAIMED")
        with read_snapshot(self.rt.engine) as conn:
            rows = queries.list_consultations(conn, statuses=statuses, expert=request.expert.strip(), size=size,
                                              after=after)
        page, token = paginate(rows, size, lambda c: {"t": c.create_time.isoformat(), "id": c.report_id})
        return pb.ListConsultationsResponse(consultations=[mapping.consultation_to_pb(c) for c in page],
                                            next_page_token=token)

    def GetConsultation(self, request: pb.GetConsultationRequest, context) -> pb.Consultation:
        report_id = name_id(request.name, "consultations")
        with read_snapshot(self.rt.engine) as conn:
            c = queries.get_consultation(conn, report_id)
        if c is None:
            raise NotFound(request.name)
        return mapping.consultation_to_pb(c)

    def ClaimConsultation(self, request: pb.ClaimConsultationRequest, context) -> pb.Consultation:
        actor = auth.current()
        report_id = name_id(request.name, "consultations", request_id=request.request_id)
        return self.rt.idempotent_work("ClaimConsultation", request, pb.Consultation,
                                       lambda uow: handlers.claim_consultation(uow, report_id=report_id),
                                       actor=actor, respond=mapping.consultation_to_pb)

    def AnswerConsultation(self, request: pb.AnswerConsultationRequest, context) -> pb.Consultation:
        actor = auth.current()
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
        result = self.rt.idempotent_work(
            "AnswerConsultation", request, pb.Consultation,
            lambda uow: handlers.answer_consultation(uow, report_id=report_id, text=text, topic=request.topic,
                                                     question=question, keywords=keywords),
            actor=actor, respond=mapping.consultation_to_pb)
        self.caches.knowledge.invalidate()  # the answer is searchable at once in this process
        return result
