"""An order in 先期处置 follows its police case (services/referral12345/domain/police_cases.py): the
timeline in Chinese, the status only where the police's outcome settles the request."""
from __future__ import annotations

from datetime import datetime, timezone

from smart110.dispatch.v1 import dispatch_service_pb2 as dpb

from services.referral12345 import mapping
from services.referral12345.domain import SYSTEM, PoliceCaseNews, WorkOrder, order_id_of

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=timezone.utc)
CASE = "cases/C1"


def handed_to_police() -> WorkOrder:
    order = WorkOrder.receive(dict(source="HOTLINE_12345", matter_code="", description="半夜有人倾倒不明液体",
                                   urgency=3), actor=SYSTEM, now=T0)
    order.hand_to_police("S01", "大智路派出所", "职责待厘清", SYSTEM, T0)
    order.pull_events()
    return order


def news(order: WorkOrder, what: str, **kw) -> PoliceCaseNews:
    return PoliceCaseNews(order_id=order.id, case_name=CASE, what=what, **kw)


def test_a_case_names_its_order_and_a_110_reports_case_names_none():
    assert order_id_of("workOrders/abc") == "abc"
    assert order_id_of("reports/abc") is None and order_id_of("workOrders/") is None


def test_a_command_closing_resolves_the_order_once_and_a_redelivery_changes_nothing():
    order = handed_to_police()
    assert order.follow_police_case(news(order, "CLOSED", outcome="ASSISTANCE_GIVEN", notes="已清理现场"), SYSTEM, T0)
    assert (order.timeline[-1].action, order.timeline[-1].detail) == ("POLICE_CLOSED", "警情已办结：求助已处置（已清理现场）")
    assert order.status == "RESOLVED"
    [event] = order.pull_events()
    assert event.action == "POLICE_CLOSED" and event.order.status == "RESOLVED"
    assert not order.follow_police_case(news(order, "CLOSED", outcome="ASSISTANCE_GIVEN", notes="已清理现场"), SYSTEM, T0)
    assert not order.pull_events()


def test_a_case_handed_on_or_cancelled_leaves_the_order_with_the_12345_desk():
    referred = handed_to_police()
    referred.follow_police_case(news(referred, "REPORTED_BACK", unit="江岸巡01", outcome="REFERRED", closes=True),
                                SYSTEM, T0)
    assert [e.detail for e in referred.timeline[-2:]] == ["民警已回告：江岸巡01，移交处理",
                                                         "警情已办结：移交处理，工单待12345派单至承办单位"]
    assert referred.status == "PRELIMINARY_POLICE"

    cancelled = handed_to_police()
    cancelled.follow_police_case(news(cancelled, "CANCELLED", reason="CALLER_WITHDREW"), SYSTEM, T0)
    assert cancelled.timeline[-1].detail == "警情已撤销：报警人撤警，工单仍待12345派单至承办单位"
    assert cancelled.status == "PRELIMINARY_POLICE"


def test_an_order_assigned_meanwhile_keeps_its_status_and_records_the_police_outcome():
    order = handed_to_police()
    order.status = "ASSIGNED"  # the desk found the department while the police were on it
    order.follow_police_case(news(order, "CLOSED", outcome="MEDIATED"), SYSTEM, T0)
    assert order.status == "ASSIGNED" and order.timeline[-1].detail == "警情已办结：调解处理"


def test_dispatch_events_of_a_110_reports_case_or_of_an_offer_are_no_news():
    summary = dpb.DispatchCase(name=CASE, report="reports/r1", status=dpb.CASE_STATUS_DISPATCHED)
    accepted = dpb.AssignmentChanged(case_name=CASE, assignment=dpb.Assignment(
        state=dpb.ASSIGNMENT_STATE_ACCEPTED, call_sign="江岸巡01", case_summary=summary))
    assert mapping.police_case_news(accepted) is None
    summary.report = "workOrders/w1"
    accepted.assignment.case_summary.CopyFrom(summary)
    assert mapping.police_case_news(accepted) == PoliceCaseNews(order_id="w1", case_name=CASE, what="ACCEPTED",
                                                                unit="江岸巡01")
    accepted.assignment.state = dpb.ASSIGNMENT_STATE_OFFERED
    assert mapping.police_case_news(accepted) is None
    level = dpb.CaseUpdated(dispatch_case=summary, action="ESCALATED")
    assert mapping.police_case_news(level) is None
    # The last report-back closes the case: that report-back's own event tells the outcome.
    summary.status = dpb.CASE_STATUS_CLOSED
    assert mapping.police_case_news(dpb.CaseUpdated(dispatch_case=summary, action="CLOSED")) is None
    summary.outcome, summary.close_notes = dpb.OUTCOME_MEDIATED, "双方和解"
    assert mapping.police_case_news(dpb.CaseUpdated(dispatch_case=summary, action="CLOSED")).outcome == "MEDIATED"
