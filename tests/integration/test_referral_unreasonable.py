"""Unreasonable and non-compliant requests (不合理不合规诉求), repeated callers and department
figures, against a real Postgres with intake and referral on real gRPC sockets."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest

from smart110.common.v1 import common_pb2, events_pb2
from smart110.referral.v1 import referral_service_pb2 as pb
from services.referral12345 import rules
from services.runtime.timeutil import to_pb
from tests import support
from tests.integration.referral_support import (
    actions, phone, rid, serving_suite, ticket,
)

AGENT = support.caller(["hotline_agent"], sub="agent-21")
SUPERVISOR = support.caller(["supervisor"], sub="supervisor-03")


@pytest.fixture(scope="module")
def suite(admin_url):
    with serving_suite(admin_url) as s:
        yield s


def classify(suite, text: str, number: str = "", matter: str = "") -> pb.RequestClassification:
    return suite.referral.ClassifyRequest(pb.ClassifyRequestRequest(description=text, phone_number=number,
                                                                    matter_code=matter), metadata=AGENT, timeout=10)


def test_checking_a_husbands_salary_is_refused_as_a_privacy_matter_with_the_standard_reply(suite):
    r = suite.referral
    number = phone()
    text = "我想查询我丈夫的工资，他每个月到底挣多少钱，单位不肯告诉我"
    verdict = classify(suite, text, number)
    assert verdict.unreasonable
    assert verdict.category == pb.UNREASONABLE_CATEGORY_OTHERS_PRIVATE_DATA
    assert verdict.reason == "要求查询丈夫的工资，属索要他人隐私"
    assert verdict.standard_reply == rules.STANDARD_REPLY["OTHERS_PRIVATE_DATA"]
    assert "个人信息保护法" in verdict.standard_reply and "感谢您的理解与支持" in verdict.standard_reply
    assert verdict.rule_ids == ["ur-privacy"]

    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        text, caller_phone=number, name="吴女士")), metadata=AGENT, timeout=10)
    record = r.RecordUnreasonableRequest(pb.RecordUnreasonableRequestRequest(
        request_id=rid(), unreasonable_request=pb.UnreasonableRequest(
            work_order=order.name, category=verdict.category, reason=verdict.reason, typical_case=True)),
        metadata=AGENT, timeout=10)
    assert record.state == pb.UNREASONABLE_REQUEST_STATE_RECORDED
    assert record.standard_reply == verdict.standard_reply, "the category's standard reply when none is given"
    assert record.description == text and record.citizen.phone_number == number
    assert record.record_stamp.actor == "agent-21"

    closed = r.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), timeout=10)
    assert closed.status == pb.WORK_ORDER_STATUS_CLOSED and closed.unreasonable_request == record.name
    assert actions(closed)[-1] == "CLOSED_UNREASONABLE"
    assert "索要他人隐私" in closed.timeline[-1].detail and "个人信息保护法" in closed.timeline[-1].detail

    events = [e for e in r.StreamEvents(events_pb2.StreamEventsRequest(
        stop_at_end=True, types=["referral.UnreasonableRequestRecorded"]), timeout=10) if e.subject == record.name]
    payload = pb.UnreasonableRequestRecorded()
    events[0].payload.Unpack(payload)
    assert payload.action == "RECORDED"
    assert payload.unreasonable_request.category == pb.UNREASONABLE_CATEGORY_OTHERS_PRIVATE_DATA


@pytest.mark.parametrize("text,category,reason_part", [
    ("我家最近老是闹鬼，要求政府派人来做法事驱鬼", pb.UNREASONABLE_CATEGORY_SUPERSTITION_OR_PUBLIC_ORDER, "驱鬼"),
    ("我被交警罚了两百，你们必须帮我撤销罚单，我不想交", pb.UNREASONABLE_CATEGORY_CONTRARY_TO_LAW, "撤销罚单"),
    ("我朋友借了我五万块不还，要求政府帮我追讨私人借款", pb.UNREASONABLE_CATEGORY_OUTSIDE_GOVERNMENT_POWERS, "追讨私人借款"),
    ("帮我查一下邻居的手机号，他家狗总是乱叫", pb.UNREASONABLE_CATEGORY_OTHERS_PRIVATE_DATA, "邻居"),
])
def test_each_category_is_told_apart_with_its_reason(suite, text, category, reason_part):
    verdict = classify(suite, text)
    assert verdict.unreasonable and verdict.category == category
    assert reason_part in verdict.reason
    key = pb.UnreasonableCategory.Name(category).removeprefix("UNREASONABLE_CATEGORY_")
    assert verdict.standard_reply == rules.STANDARD_REPLY[key]


@pytest.mark.parametrize("text", [
    "我想查询一下我自己的社保缴费记录",
    "公司拖欠我三个月工资不发，请政府帮忙协调",
    "小区门口违章停车严重，请城管来管一管",
])
def test_ordinary_requests_are_not_flagged(suite, text):
    verdict = classify(suite, text)
    assert not verdict.unreasonable and verdict.category == pb.UNREASONABLE_CATEGORY_UNSPECIFIED


def test_repeated_calls_about_one_matter_are_flagged_and_then_proposed_as_malicious(suite):
    r = suite.referral
    number = phone()
    orders = [r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        f"楼上邻居家装修噪音扰民，第{n}次反映", "NOISE", caller_phone=number)), metadata=AGENT, timeout=10)
        for n in range(1, 4)]
    assert [o.repeat_caller for o in orders] == [False, False, True]
    assert [o.prior_requests for o in orders] == [0, 1, 2]
    assert "REPEAT_CALLER" in actions(orders[2])
    # Another matter from the same number is not a repeat.
    other = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "小区垃圾清运不及时", "GARBAGE", caller_phone=number)), metadata=AGENT, timeout=10)
    assert not other.repeat_caller and other.prior_requests == 3

    assert not classify(suite, "楼上装修噪音扰民", number, "NOISE").unreasonable
    for n in range(4, 6):
        r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
            f"楼上邻居家装修噪音扰民，第{n}次反映", "NOISE", caller_phone=number)), metadata=AGENT, timeout=10)
    verdict = classify(suite, "楼上装修噪音扰民", number, "NOISE")
    assert verdict.unreasonable and verdict.category == pb.UNREASONABLE_CATEGORY_MALICIOUS_REPEATED
    assert verdict.prior_requests == 6 and "5次" in verdict.reason


def test_supervisor_overturns_a_record_and_it_becomes_an_ordinary_order(suite):
    r = suite.referral
    text = "老板以借款名义拖欠工资三万元不还，要求政府帮我要回借款"
    verdict = classify(suite, text)
    assert verdict.category == pb.UNREASONABLE_CATEGORY_OUTSIDE_GOVERNMENT_POWERS
    record = r.RecordUnreasonableRequest(pb.RecordUnreasonableRequestRequest(
        request_id=rid(), unreasonable_request=pb.UnreasonableRequest(
            description=text, category=verdict.category, reason=verdict.reason,
            citizen=pb.Citizen(phone_number=phone(), name="孙先生"))), metadata=AGENT, timeout=10)
    assert not record.work_order

    with pytest.raises(grpc.RpcError) as agent:
        r.OverturnUnreasonableRequest(pb.OverturnUnreasonableRequestRequest(
            request_id=rid(), name=record.name, reason="实为欠薪"), metadata=AGENT, timeout=10)
    assert agent.value.code() == grpc.StatusCode.PERMISSION_DENIED

    overturned = r.OverturnUnreasonableRequest(pb.OverturnUnreasonableRequestRequest(
        request_id=rid(), name=record.name, reason="经核实所谓借款实为拖欠劳动报酬，属人社部门职责"),
        metadata=SUPERVISOR, timeout=10)
    assert overturned.state == pb.UNREASONABLE_REQUEST_STATE_OVERTURNED
    assert overturned.overturn_stamp.actor == "supervisor-03"
    assert overturned.overturn_stamp.reason.startswith("经核实")
    order = r.GetWorkOrder(pb.GetWorkOrderRequest(name=overturned.work_order), timeout=10)
    assert order.matter_code == "WAGE_ARREARS" and order.status == pb.WORK_ORDER_STATUS_ASSIGNED
    assert order.assignments[0].department_display_name == "江城市人力资源和社会保障局"
    assert "OVERTURNED" in actions(order)

    with pytest.raises(grpc.RpcError) as twice:
        r.OverturnUnreasonableRequest(pb.OverturnUnreasonableRequestRequest(
            request_id=rid(), name=record.name, reason="再次改判"), metadata=SUPERVISOR, timeout=10)
    assert twice.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_overturning_a_closed_order_reopens_it_for_routing(suite):
    r = suite.referral
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "要求政府帮我还信用卡，家里实在困难，孩子生病住院", "")), metadata=AGENT, timeout=10)
    record = r.RecordUnreasonableRequest(pb.RecordUnreasonableRequestRequest(
        request_id=rid(), unreasonable_request=pb.UnreasonableRequest(
            work_order=order.name, category=pb.UNREASONABLE_CATEGORY_OUTSIDE_GOVERNMENT_POWERS,
            reason="要求政府代还个人债务")), metadata=AGENT, timeout=10)
    r.OverturnUnreasonableRequest(pb.OverturnUnreasonableRequestRequest(
        request_id=rid(), name=record.name, reason="家庭因病致困，可按临时救助办理"), metadata=SUPERVISOR, timeout=10)
    reopened = r.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), timeout=10)
    assert reopened.status != pb.WORK_ORDER_STATUS_CLOSED
    assert [a for a in actions(reopened) if a in ("CLOSED_UNREASONABLE", "OVERTURNED")] == [
        "CLOSED_UNREASONABLE", "OVERTURNED"]


def test_typical_cases_are_published_without_names_numbers_or_addresses(suite):
    r = suite.referral
    number = phone()
    text = f"我是王建华，电话{number}，住在解放大道1024号3栋2单元，帮我查一下前妻的家庭住址"
    r.RecordUnreasonableRequest(pb.RecordUnreasonableRequestRequest(
        request_id=rid(), unreasonable_request=pb.UnreasonableRequest(
            description=text, citizen=pb.Citizen(phone_number=number, name="王建华"),
            category=pb.UNREASONABLE_CATEGORY_OTHERS_PRIVATE_DATA, reason="王建华要求查询前妻的家庭住址，属索要他人隐私",
            typical_case=True)), metadata=AGENT, timeout=10)
    cases = r.ListTypicalCases(pb.ListTypicalCasesRequest(
        category=pb.UNREASONABLE_CATEGORY_OTHERS_PRIVATE_DATA, page_size=500), timeout=10).typical_cases
    case = next(c for c in cases if "前妻的家庭住址" in c.summary)
    assert "王建华" not in case.summary + case.reason
    assert number not in case.summary and "1024" not in case.summary and "解放大道" not in case.summary
    assert case.reason == "某市民要求查询前妻的家庭住址，属索要他人隐私"
    assert case.standard_reply == rules.STANDARD_REPLY["OTHERS_PRIVATE_DATA"]
    assert not case.name.removeprefix("typicalCases/").startswith(datetime.now(timezone.utc).strftime("%Y"))


def test_recording_checks_its_input(suite):
    with pytest.raises(grpc.RpcError) as err:
        suite.referral.RecordUnreasonableRequest(pb.RecordUnreasonableRequestRequest(
            unreasonable_request=pb.UnreasonableRequest(citizen=pb.Citizen(phone_number="110"))),
            metadata=AGENT, timeout=10)
    assert set(support.field_violations(err.value)) == {
        "request_id", "unreasonable_request.description", "unreasonable_request.category",
        "unreasonable_request.reason", "unreasonable_request.citizen.phone_number"}
    with pytest.raises(grpc.RpcError) as missing:
        suite.referral.RecordUnreasonableRequest(pb.RecordUnreasonableRequestRequest(
            request_id=rid(), unreasonable_request=pb.UnreasonableRequest(
                work_order="workOrders/20260101-000000000000", reason="x",
                category=pb.UNREASONABLE_CATEGORY_CONTRARY_TO_LAW)), metadata=AGENT, timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


# -- figures per department ----------------------------------------------------------

def test_department_rates_completion_on_time_satisfaction_and_reopen(suite):
    r = suite.referral
    start = datetime.now(timezone.utc) - timedelta(seconds=1)
    d26 = "departments/D26"
    staff = support.caller(["department"], station="D26")

    def order(text):
        return r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
            text, "TELECOM_SERVICE")), metadata=AGENT, timeout=10)

    def fix(o):
        for call, req in ((r.AcceptWorkOrder, pb.AcceptWorkOrderRequest), (r.StartWorkOrder, pb.StartWorkOrderRequest)):
            o = call(req(request_id=rid(), name=o.name, department=d26), metadata=staff, timeout=10)
        return r.ResolveWorkOrder(pb.ResolveWorkOrderRequest(request_id=rid(), name=o.name, department=d26,
                                                             feedback="已督促运营商整改"), metadata=staff, timeout=10)

    def review(o, s, comment=""):
        return r.ReviewWorkOrder(pb.ReviewWorkOrderRequest(request_id=rid(), name=o.name, satisfaction=s,
                                                           comment=comment), metadata=AGENT, timeout=10)

    a = order("家里宽带三天断网，运营商一直不来修")
    assert a.assignments[0].department == d26
    review(fix(a), common_pb2.SATISFACTION_SATISFIED)
    b = order("手机被运营商乱扣费，客服推诿不处理")
    review(fix(b), common_pb2.SATISFACTION_UNSATISFIED, "钱还没退回来")
    b = r.AssignWorkOrder(pb.AssignWorkOrderRequest(request_id=rid(), name=b.name), metadata=AGENT, timeout=10)
    review(fix(b), common_pb2.SATISFACTION_BASICALLY_SATISFIED)
    c = order("小区手机信号很差，基站迟迟不建")
    r.RejectWorkOrder(pb.RejectWorkOrderRequest(request_id=rid(), name=c.name, department=d26,
                                                reason="基站选址属规划部门职责"), metadata=staff, timeout=10)

    stats = r.GetDepartmentStatistics(pb.GetDepartmentStatisticsRequest(
        department=d26, start_time=to_pb(start), end_time=to_pb(datetime.now(timezone.utc) + timedelta(minutes=1))),
        timeout=10)
    [f] = stats.departments
    assert f.department == d26 and f.department_display_name == "江城市通信管理办公室"
    assert (f.assigned, f.rejected, f.resolved) == (3, 1, 2)
    assert f.completion_rate == 1.0
    assert f.on_time_rate == 1.0
    # Per order by its outcome: b, reopened once and then basically satisfied, is satisfied and reopened once.
    assert f.satisfaction_rate == 1.0
    assert f.reopen_rate == 0.5
    assert f.mean_resolve_seconds > 0

    with pytest.raises(grpc.RpcError) as unknown:
        r.GetDepartmentStatistics(pb.GetDepartmentStatisticsRequest(department="departments/D77"), timeout=10)
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_department_whose_only_order_ended_satisfied_after_a_reopen_is_fully_satisfied(suite):
    r = suite.referral
    start = datetime.now(timezone.utc)
    d26 = "departments/D26"
    staff = support.caller(["department"], station="D26")

    def fix(o):
        for call, req in ((r.AcceptWorkOrder, pb.AcceptWorkOrderRequest), (r.StartWorkOrder, pb.StartWorkOrderRequest)):
            o = call(req(request_id=rid(), name=o.name, department=d26), metadata=staff, timeout=10)
        return r.ResolveWorkOrder(pb.ResolveWorkOrderRequest(request_id=rid(), name=o.name, department=d26,
                                                             feedback="已协调运营商处理"), metadata=staff, timeout=10)

    def review(o, s):
        return r.ReviewWorkOrder(pb.ReviewWorkOrderRequest(request_id=rid(), name=o.name, satisfaction=s,
                                                           comment="" if s != common_pb2.SATISFACTION_UNSATISFIED
                                                           else "问题没解决"), metadata=AGENT, timeout=10)

    o = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "宽带装机预约一周无人上门", "TELECOM_SERVICE")), metadata=AGENT, timeout=10)
    reopened = review(fix(o), common_pb2.SATISFACTION_UNSATISFIED)
    assert reopened.status == pb.WORK_ORDER_STATUS_REOPENED
    o = r.AssignWorkOrder(pb.AssignWorkOrderRequest(request_id=rid(), name=o.name), metadata=AGENT, timeout=10)
    closed = review(fix(o), common_pb2.SATISFACTION_SATISFIED)
    assert closed.status == pb.WORK_ORDER_STATUS_CLOSED and closed.reopen_count == 1

    [f] = r.GetDepartmentStatistics(pb.GetDepartmentStatisticsRequest(
        department=d26, start_time=to_pb(start), end_time=to_pb(datetime.now(timezone.utc) + timedelta(minutes=1))),
        timeout=10).departments
    assert (f.assigned, f.resolved) == (1, 1)
    assert f.satisfaction_rate == 1.0 and f.reopen_rate == 1.0
