"""The sample rule set, version 1 (documented in RULES.md), loaded by the first migration."""
from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

from .domain import Rule, RuleSet

AC = "dispatch.AssignmentChanged"
RV = "scoring.ReviewCreated"
ACCEPTED = 'assignment.state == "ASSIGNMENT_STATE_ACCEPTED"'
ON_SCENE = 'assignment.state == "ASSIGNMENT_STATE_ON_SCENE"'
REPORTED = 'assignment.state == "ASSIGNMENT_STATE_REPORTED_BACK"'
RATED_CASE = 'dispatch_case.satisfaction == '
RATED_REPORT = 'report.satisfaction == '


def _r(rule_id, dimension, event_type, condition, points, reason, description, template, cap=0) -> Rule:
    return Rule(rule_id=rule_id, description=description, dimension=dimension, event_type=event_type,
                condition=condition, points=Decimal(str(points)), reason_code=reason,
                explanation_template=template, monthly_cap=Decimal(str(cap)))


SAMPLE_RULES = [
    # Quantity (数量): work taken on and finished.
    _r("QTY-ACCEPT", "QUANTITY", AC, ACCEPTED, 1, "JOB_ACCEPTED",
       "接单处警一次加1分，每月最多60分",
       "{case_name}接单处警，{points}分", cap=60),
    _r("QTY-REPORT-BACK", "QUANTITY", AC, REPORTED, 1, "CASE_REPORTED_BACK",
       "完成回告一起加1分",
       "{case_name}完成回告（处置结果：{derived.outcome}），{points}分"),
    _r("QTY-CASE-OPENED", "QUANTITY", AC,
       REPORTED + ' && assignment.outcome in ["OUTCOME_CRIMINAL_CASE", "OUTCOME_ADMINISTRATIVE_CASE"]',
       2, "CASE_OPENED", "处警后依法立案（刑事或行政）加2分",
       "{case_name}处警后立案（{derived.outcome}），{points}分"),
    _r("QTY-PRELIMINARY", "QUANTITY", "referral.WorkOrderUpdated",
       'work_order.status == "WORK_ORDER_STATUS_PRELIMINARY_POLICE"', 1, "PRELIMINARY_HANDLING",
       "派出所对职责不清的12345工单先期处置加1分（记入派出所）",
       "12345工单{work_order.name}由派出所先期处置，{points}分"),
    # Efficiency (效率): acceptance, arrival and report-back against targets.
    _r("EFF-ACCEPT-FAST", "EFFICIENCY", AC, ACCEPTED + " && derived.accept_seconds <= 60", 0.5,
       "ACCEPTED_WITHIN_1_MIN", "派警后1分钟内接单加0.5分",
       "{case_name}派警后{derived.accept_seconds}秒接单，{points}分"),
    _r("EFF-ARRIVE-ON-TARGET", "EFFICIENCY", AC,
       ON_SCENE + " && derived.arrive_seconds <= derived.arrival_target_seconds", 1, "ARRIVED_WITHIN_TARGET",
       "在网格到场时限（1-3-5分钟圈）内到达现场加1分",
       "{case_name}派警后{derived.arrive_seconds}秒到场，未超过{derived.arrival_target_seconds}秒时限，{points}分"),
    _r("EFF-ARRIVE-LATE", "EFFICIENCY", AC,
       ON_SCENE + " && derived.arrive_seconds > derived.arrival_target_seconds", -1, "ARRIVED_LATE",
       "超过网格到场时限到达现场扣1分",
       "{case_name}派警后{derived.arrive_seconds}秒到场，超过{derived.arrival_target_seconds}秒时限，{points}分"),
    _r("EFF-REPORT-BACK-ON-TIME", "EFFICIENCY", AC, REPORTED + " && derived.report_back_on_time", 1,
       "REPORT_BACK_ON_TIME", "在时限内回告（清场后30分钟内）加1分",
       "{case_name}按时回告（用时{derived.report_back_minutes}分钟），{points}分"),
    _r("EFF-REPORT-BACK-LATE", "EFFICIENCY", AC, REPORTED + " && !derived.report_back_on_time", -2,
       "REPORT_BACK_LATE", "超过时限回告扣2分",
       "{case_name}超时回告（用时{derived.report_back_minutes}分钟，时限"
       "{derived.report_back_limit_seconds}秒），{points}分"),
    # Quality (质量): citizens' follow-up, legal officers' reviews, outcomes.
    _r("QUA-CASE-SATISFIED", "QUALITY", "dispatch.CaseUpdated",
       RATED_CASE + '"SATISFACTION_SATISFIED"', 1, "CITIZEN_SATISFIED",
       "群众回访满意加1分", "{dispatch_case.name}群众回访满意，{points}分"),
    _r("QUA-CASE-UNSATISFIED", "QUALITY", "dispatch.CaseUpdated",
       RATED_CASE + '"SATISFACTION_UNSATISFIED"', -2, "CITIZEN_UNSATISFIED",
       "群众回访不满意扣2分", "{dispatch_case.name}群众回访不满意，{points}分"),
    _r("QUA-REPORT-SATISFIED", "QUALITY", "intake.ReportUpdated",
       RATED_REPORT + '"SATISFACTION_SATISFIED"', 0.5, "REPORTER_SATISFIED",
       "报警人对接处警满意加0.5分", "报警{report.name}报警人评价满意，{points}分"),
    _r("QUA-REPORT-UNSATISFIED", "QUALITY", "intake.ReportUpdated",
       RATED_REPORT + '"SATISFACTION_UNSATISFIED"', -1, "REPORTER_UNSATISFIED",
       "报警人对接处警不满意扣1分", "报警{report.name}报警人评价不满意，{points}分"),
    _r("QUA-EVIDENCE-COMPLETE", "QUALITY", RV, 'review.evidence == "EVIDENCE_VERDICT_COMPLETE"', 1,
       "EVIDENCE_COMPLETE", "法制审核证据齐全加1分", "{review.case_name}经法制审核证据齐全，{points}分"),
    _r("QUA-EVIDENCE-MISSING", "QUALITY", RV, 'review.evidence == "EVIDENCE_VERDICT_MISSING"', -3,
       "EVIDENCE_MISSING", "法制审核发现证据缺失扣3分",
       "{review.case_name}经法制审核证据缺失（{derived.missing_evidence}），{points}分"),
    _r("QUA-PROCEDURE-CORRECT", "QUALITY", RV, 'review.procedure == "PROCEDURE_VERDICT_CORRECT"', 1,
       "PROCEDURE_CORRECT", "法制审核程序规范加1分", "{review.case_name}经法制审核程序规范，{points}分"),
    _r("QUA-PROCEDURE-FLAWED", "QUALITY", RV, 'review.procedure == "PROCEDURE_VERDICT_FLAWED"', -3,
       "PROCEDURE_FLAWED", "法制审核发现程序瑕疵扣3分",
       "{review.case_name}经法制审核程序存在瑕疵（{derived.procedure_flaws}），{points}分"),
    _r("QUA-CLASSIFICATION-CORRECT", "QUALITY", RV,
       'review.classification == "CLASSIFICATION_VERDICT_CORRECT"', 0.5, "CLASSIFICATION_CORRECT",
       "法制审核定性准确加0.5分", "{review.case_name}经法制审核警情定性准确，{points}分"),
    _r("QUA-CLASSIFICATION-WRONG", "QUALITY", RV,
       'review.classification == "CLASSIFICATION_VERDICT_WRONG"', -2, "CLASSIFICATION_WRONG",
       "法制审核发现定性错误扣2分",
       "{review.case_name}经法制审核警情定性错误（应为{review.corrected_incident_type}），{points}分"),
    _r("QUA-OUTCOME-CONTRADICTS", "QUALITY", AC, REPORTED + " && derived.outcome_contradicts_type", -2,
       "OUTCOME_CONTRADICTS_TYPE", "处置结果与警情类型矛盾（如打架斗殴以“未发现问题”结案）扣2分",
       "{case_name}警情类型{derived.incident_type}以{derived.outcome}结案，结果与类型矛盾，{points}分"),
]

SAMPLE_RULE_SET = RuleSet(
    version=1,
    description="执法办案积分示例规则（第1版）：数量、质量、效率三个维度",
    rules=SAMPLE_RULES,
    effective_time=datetime(2020, 1, 1, tzinfo=timezone.utc),
    published=True,
    create_actor="scoring", create_roles=["service"], create_time=datetime(2020, 1, 1, tzinfo=timezone.utc),
    publish_actor="scoring", publish_roles=["service"], publish_time=datetime(2020, 1, 1, tzinfo=timezone.utc),
)
