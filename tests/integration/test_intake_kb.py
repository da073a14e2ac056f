"""Consultations answered at once (即问即复) and the expert queue (为民服务圈),
against a real Postgres over a real gRPC socket."""
from __future__ import annotations

import grpc
from sqlalchemy import func, select

from sampledata import city, knowledge as seed
from smart110.intake.v1 import intake_service_pb2 as pb
from services.intake import knowledge, store
from tests.integration.intake_support import (
    CALL_TAKER, actions, error_of, events_about, intake, metadata_for, report, rid, served, submit, time_slot,
)

__all__ = ["intake", "served"]  # the fixtures
EXPERT_A = metadata_for(["expert"], "expert-zhou", "户政专家周敏")
EXPERT_B = metadata_for(["expert"], "expert-wu", "交管专家吴强")


def test_seeded_knowledge_base_has_every_topic_and_seeding_twice_adds_nothing(intake):
    rt, _ = intake
    from services.intake.__main__ import SPEC

    SPEC.seed(rt)
    with rt.engine.connect() as conn:
        rows = conn.execute(select(store.knowledge_entries.c.topic, func.count()).where(
            store.knowledge_entries.c.source == "SEED").group_by(store.knowledge_entries.c.topic)).all()
    counts = dict(rows)
    assert set(counts) == {"户政", "出入境", "交管", "治安", "反诈", "消防", "其他"}
    assert sum(counts.values()) == len(seed.entries()) >= 150


def test_search_returns_the_best_answers_with_scores(intake):
    _, stub = intake
    found = stub.SearchKnowledge(pb.SearchKnowledgeRequest(query="身份证掉了去哪里补办"), metadata=CALL_TAKER)
    assert found.results[0].entry.entry_id == "KB-HZ-001"
    assert "补领" in found.results[0].entry.answer
    scores = [r.score for r in found.results]
    assert scores == sorted(scores, reverse=True) and scores[0] >= found.answer_threshold > 0
    fraud = stub.SearchKnowledge(pb.SearchKnowledgeRequest(query="有人打电话说我涉嫌洗钱，让我转到安全账户",
                                                           topic="反诈", page_size=2), metadata=CALL_TAKER)
    assert len(fraud.results) <= 2 and {r.entry.topic for r in fraud.results} == {"反诈"}
    assert fraud.results[0].entry.entry_id == "KB-FZ-001"
    weather = stub.SearchKnowledge(pb.SearchKnowledgeRequest(query="请问明天天气怎么样"), metadata=CALL_TAKER)
    assert all(r.score < weather.answer_threshold for r in weather.results)


def test_search_input_is_checked(intake):
    _, stub = intake
    code, fields, _ = error_of(lambda: stub.SearchKnowledge(
        pb.SearchKnowledgeRequest(query="  ", topic="天气", page_size=-1), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and set(fields) == {"query", "topic", "page_size"}


def test_sample_consultations_are_answered_at_once_and_never_dispatched(intake):
    rt, stub = intake
    at = time_slot()
    samples = [r for r in city.sample_reports() if r["expected_category"] == "CONSULTATION"]
    answered = 0
    for sample in samples:
        r = submit(stub, report(sample["description"], point=None, address="江城市江岸区", at=at))
        if r.classification.category != pb.CATEGORY_CONSULTATION:
            continue  # the classification rules decide what is a consultation; see test_intake_classification
        answered += 1
        last = r
        assert r.status == pb.REPORT_STATUS_ANSWERED, sample["description"]
        c = r.consultation
        assert c.answered_at_once and c.status == pb.CONSULTATION_STATUS_ANSWERED
        assert c.knowledge_entry_id.startswith("KB-") and c.answer and c.score >= knowledge.ANSWER_THRESHOLD
        assert r.HasField("answer_time") and "CONSULTATION_ANSWERED" in actions(r)
        # The event says it is answered: dispatch opens cases for police matters only.
        [(kind, event)] = events_about(rt, r.name)
        assert kind == "intake.IncidentReported"
        assert event.report.status == pb.REPORT_STATUS_ANSWERED
        assert event.report.classification.category == pb.CATEGORY_CONSULTATION
        assert event.report.consultation.knowledge_entry_id == c.knowledge_entry_id
    assert answered >= 4
    again = stub.GetReport(pb.GetReportRequest(name=last.name), metadata=CALL_TAKER)
    assert again.consultation == last.consultation and again.status == pb.REPORT_STATUS_ANSWERED


def test_unanswered_consultation_is_queued_claimed_and_answered_by_an_expert_into_the_knowledge_base(intake):
    rt, stub = intake
    question = "请问公积金贷款买二手房，公积金中心需要派出所开什么证明？"
    r = submit(stub, report(question, at=time_slot()))
    assert r.classification.category == pb.CATEGORY_CONSULTATION
    assert r.status == pb.REPORT_STATUS_CLASSIFIED
    assert r.consultation.status == pb.CONSULTATION_STATUS_QUEUED and not r.consultation.answered_at_once
    assert "CONSULTATION_QUEUED" in actions(r) and not r.HasField("answer_time")
    name = r.consultation.name
    assert name == "consultations/" + r.name.split("/")[1]

    def queued_names(**kw):
        names, token = [], ""
        while True:
            page = stub.ListConsultations(pb.ListConsultationsRequest(page_size=50, page_token=token, **kw),
                                          metadata=EXPERT_A)
            names += [c.name for c in page.consultations]
            token = page.next_page_token
            if not token:
                return names

    assert name in queued_names()
    # Only an expert claims, once; nobody else answers it.
    code, _, _ = error_of(lambda: stub.ClaimConsultation(pb.ClaimConsultationRequest(request_id=rid(), name=name),
                                                         metadata=CALL_TAKER))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    code, _, reason = error_of(lambda: stub.AnswerConsultation(pb.AnswerConsultationRequest(
        request_id=rid(), name=name, answer="……", topic="其他"), metadata=EXPERT_A))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason == "CONSULTATION_NOT_CLAIMED"
    claim = pb.ClaimConsultationRequest(request_id=rid(), name=name)
    claimed = stub.ClaimConsultation(claim, metadata=EXPERT_A)
    assert claimed.status == pb.CONSULTATION_STATUS_CLAIMED and claimed.expert == "expert-zhou"
    assert claimed.expert_name == "户政专家周敏"
    assert stub.ClaimConsultation(claim, metadata=EXPERT_A) == claimed  # a retry changes nothing
    code, _, reason = error_of(lambda: stub.ClaimConsultation(
        pb.ClaimConsultationRequest(request_id=rid(), name=name), metadata=EXPERT_B))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason == "CONSULTATION_CLAIMED"
    assert name in queued_names(status=pb.CONSULTATION_STATUS_CLAIMED, expert="expert-zhou")

    answer = ("办理公积金贷款一般不需要派出所开具证明。如公积金中心要求提供婚姻或户籍情况，"
              "可在“江城警务”小程序在线开具户籍证明；婚姻状况请到民政部门查询。")
    code, fields, _ = error_of(lambda: stub.AnswerConsultation(pb.AnswerConsultationRequest(
        request_id=rid(), name=name, answer=" ", topic="公积金"), metadata=EXPERT_A))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and set(fields) == {"answer", "topic"}
    code, _, _ = error_of(lambda: stub.AnswerConsultation(pb.AnswerConsultationRequest(
        request_id=rid(), name=name, answer=answer, topic="户政"), metadata=EXPERT_B))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    answered = stub.AnswerConsultation(pb.AnswerConsultationRequest(
        request_id=rid(), name=name, answer=answer, topic="户政", question="公积金贷款需要派出所开证明吗？",
        keywords=["公积金", "贷款", "证明"]), metadata=EXPERT_A)
    assert answered.status == pb.CONSULTATION_STATUS_ANSWERED and answered.answer == answer
    assert answered.knowledge_entry_id.startswith("KB-EX-") and not answered.answered_at_once
    assert name not in queued_names()
    code, _, reason = error_of(lambda: stub.AnswerConsultation(pb.AnswerConsultationRequest(
        request_id=rid(), name=name, answer=answer, topic="户政"), metadata=EXPERT_A))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason == "CONSULTATION_ANSWERED"

    after = stub.GetReport(pb.GetReportRequest(name=r.name), metadata=CALL_TAKER)
    assert after.status == pb.REPORT_STATUS_ANSWERED and after.HasField("answer_time")
    assert after.consultation.answer == answer
    assert actions(after)[-2:] == ["CONSULTATION_CLAIMED", "CONSULTATION_ANSWERED"]
    assert [(k, getattr(e, "action", "")) for k, e in events_about(rt, r.name)] == [
        ("intake.IncidentReported", ""), ("intake.ReportUpdated", "CONSULTATION_CLAIMED"),
        ("intake.ReportUpdated", "CONSULTATION_ANSWERED")]
    [(kind, added)] = events_about(rt, f"knowledge/{answered.knowledge_entry_id}")
    assert kind == "intake.KnowledgeEntryAdded" and added.entry.answer == answer

    # The answer joined the knowledge base: the next citizen with that question is answered at once.
    found = stub.SearchKnowledge(pb.SearchKnowledgeRequest(query=question), metadata=CALL_TAKER)
    assert found.results[0].entry.entry_id == answered.knowledge_entry_id
    assert found.results[0].entry.source == "EXPERT"
    next_one = submit(stub, report("请问公积金贷款要派出所开证明吗？", at=time_slot()))
    assert next_one.status == pb.REPORT_STATUS_ANSWERED
    assert next_one.consultation.knowledge_entry_id == answered.knowledge_entry_id


def test_unknown_consultation_is_not_found(intake):
    _, stub = intake
    code, _, _ = error_of(lambda: stub.ClaimConsultation(
        pb.ClaimConsultationRequest(request_id=rid(), name="consultations/nope"), metadata=EXPERT_A))
    assert code == grpc.StatusCode.NOT_FOUND
    code, fields, _ = error_of(lambda: stub.GetConsultation(
        pb.GetConsultationRequest(name="reports/x"), metadata=EXPERT_A))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["name"]


def test_a_report_corrected_into_a_consultation_joins_the_queue_and_leaves_it_when_corrected_back(intake):
    rt, stub = intake
    r = submit(stub, report("河边有几个小孩在野泳，水很深，也没个大人看着", at=time_slot()))
    assert r.classification.category != pb.CATEGORY_CONSULTATION and not r.HasField("consultation")

    def correct(category, incident_type, why):
        return stub.UpdateReport(pb.UpdateReportRequest(
            request_id=rid(), reason=why,
            report=pb.Report(name=r.name, classification=pb.Classification(category=category,
                                                                           incident_type=incident_type)),
            update_mask={"paths": ["classification.category", "classification.incident_type"]}),
            metadata=CALL_TAKER)

    queued = correct(pb.CATEGORY_CONSULTATION, "CONSULTATION_OTHER", "来电人只是咨询")
    assert queued.consultation.status == pb.CONSULTATION_STATUS_QUEUED
    assert actions(queued)[-2:] == ["CORRECTED", "CONSULTATION_QUEUED"]
    listed = stub.ListConsultations(pb.ListConsultationsRequest(page_size=500), metadata=EXPERT_A).consultations
    assert queued.consultation.name in [c.name for c in listed]
    _, event = events_about(rt, r.name)[-1]
    assert event.action == "CORRECTED" and event.report.consultation.status == pb.CONSULTATION_STATUS_QUEUED

    back = correct(pb.CATEGORY_POLICE, r.classification.incident_type or "OTHER", "回拨核实有人落水")
    assert not back.HasField("consultation") and actions(back)[-1] == "CONSULTATION_WITHDRAWN"
    code, _, _ = error_of(lambda: stub.GetConsultation(
        pb.GetConsultationRequest(name=queued.consultation.name), metadata=EXPERT_A))
    assert code == grpc.StatusCode.NOT_FOUND
