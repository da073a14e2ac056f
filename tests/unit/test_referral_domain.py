"""Referral domain rules without I/O: time limits, routing, the order's state machine,
unreasonable-request rules and anonymisation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sampledata import city
from services.referral12345 import rules
from services.referral12345.domain import (
    Department, Matter, WorkOrder, add_working_days, anonymise, classify_request, deadline_for,
    infer_matter, route_linkage, route_ordinary,
)
from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition

CHINA = timezone(timedelta(hours=8))
AGENT = AuthContext(subject="agent", roles=frozenset({"hotline_agent"}))
STAFF = AuthContext(subject="staff", roles=frozenset({"department"}))
DEPARTMENTS = [Department(d.dept_id, d.name, tuple(Matter(m.code, m.label) for m in d.matters), tuple(d.districts),
                          d.supervisor, d.phone) for d in city.departments()]
KNOWN = {m.code for d in DEPARTMENTS for m in d.matters}


def test_working_days_skip_saturday_and_sunday_in_china_time():
    friday_evening = datetime(2026, 11, 20, 17, 30, tzinfo=CHINA)
    assert add_working_days(friday_evening, 1) == datetime(2026, 11, 23, 17, 30, tzinfo=CHINA)
    saturday = datetime(2026, 11, 21, 9, 0, tzinfo=CHINA)
    assert add_working_days(saturday, 1) == datetime(2026, 11, 23, 9, 0, tzinfo=CHINA)
    assert add_working_days(friday_evening, 5) == datetime(2026, 11, 27, 17, 30, tzinfo=CHINA)


def test_deadlines_by_urgency():
    t = datetime(2026, 11, 23, 10, 0, tzinfo=CHINA)
    assert deadline_for(t, 1) - t == timedelta(minutes=30)
    assert deadline_for(t, 2) - t == timedelta(hours=2)
    assert deadline_for(t, 3) == datetime(2026, 11, 26, 10, 0, tzinfo=CHINA)
    assert deadline_for(t, 4) == datetime(2026, 11, 30, 10, 0, tzinfo=CHINA)


def test_routing_prefers_the_local_department_and_says_why():
    [noise] = route_ordinary("NOISE", "汉阳区", DEPARTMENTS)
    assert noise.department.name == "汉阳区各街道办事处"
    assert noise.reason == "事项“噪音扰民”由汉阳区各街道办事处属地办理（汉阳区）"
    [parking] = route_ordinary("ILLEGAL_PARKING", "武昌区", DEPARTMENTS)
    assert parking.department.dept_id == "D01" and "江城市公安局交通管理局" in parking.reason
    [other] = route_ordinary("ILLEGAL_PARKING", "武昌区", DEPARTMENTS, frozenset({"D01"}))
    assert other.department.dept_id == "D14"
    assert route_ordinary("NOISE", "", DEPARTMENTS) == [], "area-bound matters need the area"


def test_gas_leak_linkage_names_lead_and_cooperating_departments():
    routes = route_linkage(rules.LINKAGE["GAS_LEAK"], "江岸区", DEPARTMENTS)
    assert [(r.department.name, r.role) for r in routes] == [
        ("江城燃气集团", "LEAD"), ("江城市城市管理执法局", "COOPERATING"), ("江城市住房和城乡建设局", "COOPERATING")]


def test_matter_inferred_from_type_or_words():
    assert infer_matter("ILLEGAL_PARKING", "", KNOWN)[0] == "ILLEGAL_PARKING"
    assert infer_matter("PUBLIC_UTILITIES", "我们这栋楼停电一整天了", KNOWN)[0] == "POWER_OUTAGE"
    assert infer_matter("", "不知道归谁管的事情", KNOWN)[0] == ""


def order(**kw) -> WorkOrder:
    t = datetime(2026, 11, 23, 10, 0, tzinfo=timezone.utc)
    base = dict(id="x", source="HOTLINE_12345", matter_code="GARBAGE", description="垃圾没人清", urgency=4,
                status="RECEIVED", request_time=t, create_time=t, update_time=t)
    return WorkOrder(**{**base, **kw})


def test_state_machine_refuses_illegal_moves():
    o = order()
    t = o.create_time
    with pytest.raises(FailedPrecondition):
        o.accept("D01", STAFF, t)
    o.assign(route_ordinary("GARBAGE", "江岸区", DEPARTMENTS), AGENT, t)
    with pytest.raises(FailedPrecondition):
        o.start("D01", STAFF, t)
    with pytest.raises(FailedPrecondition):
        o.review("SATISFIED", "", None, AGENT, t)
    o.accept("D01", STAFF, t)
    o.start("D01", STAFF, t)
    o.resolve("D01", "已清运", [], STAFF, t)
    assert o.status == "RESOLVED"
    o.review("UNSATISFIED", "没清干净", ("负责人", "027-1"), AGENT, t)
    assert o.status == "REOPENED" and o.escalated_to_name == ""
    o.assign(route_ordinary("GARBAGE", "江岸区", DEPARTMENTS), AGENT, t)
    for step in (o.accept, o.start):
        step("D01", STAFF, t)
    o.resolve("D01", "再次清运", [], STAFF, t)
    o.review("UNSATISFIED", "还是没清", ("负责人", "027-1"), AGENT, t)
    assert o.reopen_count == 2 and o.escalated_to_name == "负责人"


def test_joint_order_resolves_only_when_every_department_has():
    o = order(matter_code="GAS_LEAK", urgency=1)
    t = o.create_time
    o.assign(route_linkage(rules.LINKAGE["GAS_LEAK"], "江岸区", DEPARTMENTS), AGENT, t)
    ids = [a.dept_id for a in o.assignments]
    for d in ids:
        o.accept(d, STAFF, t)
    assert o.status == "ACCEPTED"
    for d in ids:
        o.start(d, STAFF, t)
    o.resolve(ids[0], "已关阀抢修", [], STAFF, t)
    assert o.status == "IN_PROGRESS"
    for d in ids[1:]:
        o.resolve(d, "已处置", [], STAFF, t)
    assert o.status == "RESOLVED"


@pytest.mark.parametrize("text,category", [
    ("帮我查询一下我老公的银行流水", "OTHERS_PRIVATE_DATA"),
    ("请大师来给我们小区看风水", "SUPERSTITION_OR_PUBLIC_ORDER"),
    ("能不能帮我消除违章记录", "CONTRARY_TO_LAW"),
    ("要求政府给我安排编制", "OUTSIDE_GOVERNMENT_POWERS"),
])
def test_unreasonable_rules(text, category):
    verdict = classify_request(text)
    assert verdict.unreasonable and verdict.category == category
    assert verdict.standard_reply == rules.STANDARD_REPLY[category]


def test_repeated_same_matter_is_proposed_as_malicious_only_past_the_threshold():
    assert not classify_request("噪音扰民", 9, rules.MALICIOUS_REPEAT_THRESHOLD - 1).unreasonable
    assert classify_request("噪音扰民", 9, rules.MALICIOUS_REPEAT_THRESHOLD).category == "MALICIOUS_REPEATED"


def test_anonymise_removes_names_numbers_ids_plates_and_addresses():
    text = "我叫刘大海，手机13912345678，身份证420102198001011234，车牌鄂A·12345，住中山大道88号3栋，幸福花园小区，李先生作证"
    out = anonymise(text, "刘大海")
    for secret in ("刘大海", "13912345678", "420102198001011234", "鄂A", "中山大道88号", "幸福花园", "李先生"):
        assert secret not in out, secret
