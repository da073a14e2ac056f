"""Referral domain rules without I/O: time limits, routing, the order's state machine and the events
it records, 110 reports and when they are referred, unreasonable-request rules and records, and
anonymisation."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sampledata import city
from services.referral12345 import rules
import re

from services.referral12345.domain import (
    SYSTEM, Department, Matter, Place, PoliceReport, UnreasonableRecord, UnreasonableRequestRecorded, WorkOrder,
    WorkOrderCreated, WorkOrderUpdated, add_working_days, anonymise, classify_request, deadline_for, infer_matter,
    needs_order, open311_statuses, referable, referral_of, route_linkage, route_ordinary, to_refer,
    to_refer_after,
)
from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition

CHINA = timezone(timedelta(hours=8))
AGENT = AuthContext(subject="agent", roles=frozenset({"hotline_agent"}))
STAFF = AuthContext(subject="staff", roles=frozenset({"department"}))
SUPERVISOR = AuthContext(subject="supervisor", roles=frozenset({"supervisor"}))
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


def test_deadlines_skip_public_holidays_and_count_make_up_working_days():
    # Level 4, five working days: from the eve of the National Day week to the Tuesday after it, with
    # Saturday 10-10 (调休) counted; from before the Spring Festival to 02-26, Saturday 02-14 counted.
    assert deadline_for(datetime(2026, 9, 30, 10, 0, tzinfo=CHINA), 4) == datetime(2026, 10, 13, 10, 0, tzinfo=CHINA)
    assert deadline_for(datetime(2026, 2, 12, 10, 0, tzinfo=CHINA), 4) == datetime(2026, 2, 26, 10, 0, tzinfo=CHINA)
    # Level 3, three working days from Thursday 10-08: Friday, the make-up Saturday, Monday.
    assert deadline_for(datetime(2026, 10, 8, 15, 0, tzinfo=CHINA), 3) == datetime(2026, 10, 12, 15, 0, tzinfo=CHINA)


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
    # The reasons are read by people: matters by their Chinese labels, never their codes.
    assert infer_matter("ILLEGAL_PARKING", "", KNOWN)[1] == "事项取自接警分类“违章停车”"
    assert infer_matter("PUBLIC_UTILITIES", "我们这栋楼停电一整天了", KNOWN)[1] == "诉求内容含“停电”，归入事项“停电”"


def test_an_order_nobody_handles_says_which_matter_in_chinese():
    o = order(matter_code="WAGE_ARREARS", district="无此区")
    o.route([], None, AGENT, o.create_time)
    assert o.timeline[-1].action == "AWAITING_ASSIGNMENT"
    assert o.timeline[-1].detail.startswith("事项“拖欠工资”在无此区暂无明确承办单位") and "WAGE_ARREARS" not in \
        o.timeline[-1].detail


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


# -- the events a work order records ------------------------------------------------------------

T = datetime(2026, 11, 23, 10, 0, tzinfo=CHINA)
JIANGAN = Place("S01", "大智路派出所", "江岸区")


def received(**kw) -> WorkOrder:
    """A new 12345 ticket in 江岸区."""
    fields = dict(source="HOTLINE_12345", matter_code="GARBAGE", description="垃圾没人清", urgency=4,
                  district="江岸区", lon=114.374283, lat=30.57589, citizen_phone="13912345678")
    return WorkOrder.receive({**fields, **kw}, actor=AGENT, now=T)


def actions(events) -> list[str]:
    return ["CREATED" if isinstance(e, WorkOrderCreated) else e.action for e in events]


def test_a_received_order_records_its_creation_with_the_entries_made_with_it():
    o = WorkOrder.receive(dict(source="HOTLINE_12345", matter_code="GARBAGE", description="垃圾没人清", urgency=4,
                               citizen_phone="13912345678"), actor=AGENT, now=T, caller_history=(5, 2))
    assert re.fullmatch(r"20261123-[0-9a-f]{12}", o.id)
    assert o.status == "RECEIVED" and o.category == "城市管理" and o.deadline == deadline_for(T, 4)
    assert o.repeat_caller and o.prior_requests == 5
    [event] = o.pull_events()
    assert isinstance(event, WorkOrderCreated)
    assert [e.action for e in event.entries] == ["CREATED", "REPEAT_CALLER"]
    assert event.entries[0].detail == "12345热线受理；时限四级（一般）"
    assert event.entries[0].actor == "agent" and event.entries[0].roles == ["hotline_agent"]
    assert event.order.name == o.name and event.order.timeline == [] and event.order.status == "RECEIVED"
    assert o.pull_events() == [], "pulled once"


def test_each_change_records_an_update_with_the_order_before_and_after_and_the_entries_since():
    o = received()
    o.pull_events()
    o.note("ROUTING", SYSTEM, T, "为何如此派单")
    assert o.pull_events() == [], "a note is no event of its own"
    o.route(DEPARTMENTS, JIANGAN, AGENT, T)
    [assigned] = o.pull_events()
    assert isinstance(assigned, WorkOrderUpdated) and assigned.action == "ASSIGNED"
    assert [e.action for e in assigned.entries] == ["ROUTING", "ASSIGNED"], "the note goes with the next event"
    assert assigned.before.status == "RECEIVED" and assigned.order.status == "ASSIGNED"
    o.accept("D01", STAFF, T + timedelta(minutes=5))
    [accepted] = o.pull_events()
    assert accepted.before.status == "ASSIGNED" and [e.action for e in accepted.entries] == ["ACCEPTED"]
    # What an event carries is the order as that change left it, whatever changes after.
    assert assigned.order.status == "ASSIGNED" and assigned.order.assignments[0].state == "ASSIGNED"
    assert o.assignments[0].state == "ACCEPTED"


def test_a_refused_change_records_nothing():
    o = received()
    o.pull_events()
    with pytest.raises(FailedPrecondition):
        o.accept("D01", STAFF, T)
    with pytest.raises(FailedPrecondition):
        o.review("SATISFIED", "", None, AGENT, T)
    assert o.pull_events() == []


def test_the_follow_up_records_reopened_escalated_or_closed():
    o = received()
    o.pull_events()
    done = []
    for n, satisfaction in enumerate(("UNSATISFIED", "UNSATISFIED", "SATISFIED")):
        o.route(DEPARTMENTS, None, AGENT, T)
        for step in (o.accept, o.start):
            step("D01", STAFF, T)
        o.resolve("D01", "已清运", [], STAFF, T)
        o.review(satisfaction, "没清干净" if satisfaction == "UNSATISFIED" else "", ("负责人", "027-1"), AGENT, T)
        done.append(actions(o.pull_events()))
    assert done == [["ASSIGNED", "ACCEPTED", "STARTED", "RESOLVED", "REOPENED"],
                    ["ASSIGNED", "ACCEPTED", "STARTED", "RESOLVED", "ESCALATED"],
                    ["ASSIGNED", "ACCEPTED", "STARTED", "RESOLVED", "CLOSED"]]


def test_a_transfer_to_110_records_one_update_with_the_reports_first_status():
    o = received()
    o.route(DEPARTMENTS, None, AGENT, T)
    o.pull_events()
    filed = PoliceReport("reports/r1", "REPORT_STATUS_CLASSIFIED", category="POLICE", incident_type="FIGHT",
                         priority=1)
    o.transfer_to_110(filed, "涉嫌持刀伤人", AGENT, T)
    [event] = o.pull_events()
    assert event.action == "TRANSFERRED_TO_110"
    assert [e.action for e in event.entries] == ["TRANSFERRED_TO_110", "POLICE_PROGRESS"]
    assert event.entries[1].detail == "110接警单 reports/r1：110已接报（已分类）；定为警情“打架斗殴”，1级"
    assert all(a.state == "WITHDRAWN" for a in o.assignments)
    assert not o.record_110_progress(filed, "CLASSIFIED", SYSTEM, T), "the same status again"
    assert o.pull_events() == []
    assigning = PoliceReport("reports/r1", "REPORT_STATUS_ASSIGNING")
    assert o.record_110_progress(assigning, "CASE_OPENED", SYSTEM, T)
    dispatched = PoliceReport("reports/r1", "REPORT_STATUS_DISPATCHED")
    assert o.record_110_progress(dispatched, "HANDED_OFF", SYSTEM, T)
    # On scene: the status stays, the news is kept all the same.
    assert o.record_110_progress(dispatched, "ON_SCENE", SYSTEM, T)
    assert not o.record_110_progress(dispatched, "RATED", SYSTEM, T), "nothing the citizen's order shows"
    assert o.record_110_progress(PoliceReport("reports/r1", "REPORT_STATUS_CLOSED"), "CLOSED", SYSTEM, T)
    events = o.pull_events()
    assert [e.action for e in events] == ["POLICE_PROGRESS"] * 4
    assert [e.entries[0].detail for e in events] == [
        "110接警单 reports/r1：已生成处警单，正在派警（派警中）", "110接警单 reports/r1：民警已接单（已派警）",
        "110接警单 reports/r1：民警已到达现场（已派警）", "110接警单 reports/r1：110警情已办结（已办结）"]
    assert o.transferred_report_status == "REPORT_STATUS_CLOSED"


def test_an_order_is_transferable_only_while_open_and_placed():
    o = received()
    o.check_transferable()
    placeless = received(lon=None, lat=None, address_text="")
    with pytest.raises(FailedPrecondition) as err:
        placeless.check_transferable()
    assert err.value.reason == "NO_LOCATION"
    o.transfer_to_110(PoliceReport("reports/r1", "REPORT_STATUS_CLASSIFIED"), "警情", AGENT, T)
    with pytest.raises(FailedPrecondition) as again:
        o.check_transferable()
    assert again.value.reason == "ILLEGAL_TRANSITION"


def test_overdue_is_recorded_once_past_the_deadline():
    o = received(urgency=2)
    o.pull_events()
    assert not o.mark_overdue(SYSTEM, o.deadline - timedelta(minutes=1))
    assert o.mark_overdue(SYSTEM, o.deadline + timedelta(minutes=1))
    assert not o.mark_overdue(SYSTEM, o.deadline + timedelta(hours=1))
    assert [e.action for e in o.pull_events()] == ["OVERDUE"]


def test_closing_as_unreasonable_and_overturning_each_record_an_update():
    o = received()
    o.close_as_unreasonable("unreasonableRequests/u1", "索要他人隐私", "依法不予受理", AGENT, T)
    o.reopen_overturned("实为正常诉求", SUPERVISOR, T)
    assert actions(o.pull_events()) == ["CREATED", "CLOSED_UNREASONABLE", "OVERTURNED"]
    assert o.status == "RECEIVED" and o.close_time is None


def test_an_unreasonable_record_records_its_recording_and_its_overturning():
    fields = dict(work_order="", description="我想查询我丈夫的工资", citizen_phone="", citizen_name="",
                  category="OTHERS_PRIVATE_DATA", reason="索要他人隐私", standard_reply="", typical_case=False)
    r = UnreasonableRecord.create(fields, prior_requests=2, actor=AGENT, now=T)
    assert r.standard_reply == rules.STANDARD_REPLY["OTHERS_PRIVATE_DATA"]
    assert r.record_actor == "agent" and r.record_roles == ["hotline_agent"]
    r.overturn("实为欠薪", SUPERVISOR, T)
    assert [(type(e), e.action, e.record is r) for e in r.pull_events()] == [
        (UnreasonableRequestRecorded, "RECORDED", True), (UnreasonableRequestRecorded, "OVERTURNED", True)]
    assert r.overturn_roles == ["supervisor"]
    with pytest.raises(FailedPrecondition):
        r.overturn("再次", SUPERVISOR, T)
    assert r.pull_events() == []


# -- 110 reports ----------------------------------------------------------------------------------

def police_report(category="NON_POLICE", incident_type="ILLEGAL_PARKING", **kw) -> PoliceReport:
    return PoliceReport("reports/r1", "REPORT_STATUS_CLASSIFIED", category=category, incident_type=incident_type,
                        **{**dict(priority=3, channel="PHONE", description="门口违章停车"), **kw})


def test_which_reports_need_an_order_and_when_they_are_referred():
    assert needs_order(police_report()) and needs_order(police_report("POLICE", "GAS_LEAK"))
    assert not needs_order(police_report("POLICE", "FIGHT")) and not needs_order(police_report("CONSULTATION", ""))
    assert to_refer(police_report()) and not to_refer(police_report(merged_into="reports/r0"))
    assert to_refer_after("CORRECTED", police_report()) and to_refer_after("UNMERGED", police_report())
    assert not to_refer_after("DISPATCHED", police_report()) and not to_refer_after("", police_report())
    assert referable(police_report()) and not referable(police_report(channel="HOTLINE_12345"))


def test_the_terms_of_a_referred_report():
    ordinary = referral_of(police_report(), KNOWN)
    assert (ordinary.matter_code, ordinary.urgency, ordinary.linkage) == ("ILLEGAL_PARKING", 3, None)
    rescue = referral_of(police_report("POLICE", "GAS_LEAK"), KNOWN)
    assert rescue.linkage is rules.LINKAGE["GAS_LEAK"] and rescue.urgency == rules.LINKAGE["GAS_LEAK"].urgency
    assert rescue.why == "警情类型“燃气泄漏”需城市部门联动抢险"


def test_open311_status_filters():
    assert open311_statuses([]) == []
    assert open311_statuses(["closed"]) == ["CLOSED", "TRANSFERRED_TO_110"]
    assert "RESOLVED" in open311_statuses(["open"]) and "CLOSED" not in open311_statuses(["open"])


# -- figures per department ----------------------------------------------------------

def _part(order, state, at, *, dept="D26", resolved=None, deadline=None):
    return dict(dept_id=dept, work_order_id=order, state=state, assign_time=at, resolve_time=resolved,
                deadline=deadline)


def _review(order, satisfaction, at, dept="D26"):
    return dict(dept_id=dept, work_order_id=order, satisfaction=satisfaction, time=at)


def test_an_order_satisfied_after_one_reopen_counts_as_satisfied_and_reopened_once():
    from services.referral12345.domain import department_figures
    t = datetime(2026, 11, 23, 10, 0, tzinfo=CHINA)
    parts = [_part("o1", "RESOLVED", t, resolved=t + timedelta(hours=1)),
             _part("o1", "RESOLVED", t + timedelta(hours=3), resolved=t + timedelta(hours=4))]
    # Listed out of time order: the last follow-up decides, whatever order the rows come in.
    reviews = [_review("o1", "SATISFIED", t + timedelta(hours=5)), _review("o1", "UNSATISFIED", t + timedelta(hours=2))]
    [f] = department_figures(parts, reviews, DEPARTMENTS)
    assert (f.assigned, f.resolved, f.reviewed, f.satisfied, f.reopened) == (1, 1, 1, 1, 1)
    assert f.satisfaction_rate == 1.0 and f.reopen_rate == 1.0


def test_rates_count_orders_by_their_final_outcome():
    from services.referral12345.domain import department_figures
    t = datetime(2026, 11, 23, 10, 0, tzinfo=CHINA)
    h = timedelta(hours=1)
    parts = [_part(o, "RESOLVED", t, resolved=t + h) for o in ("a", "b", "c")]
    reviews = [
        _review("a", "SATISFIED", t + 2 * h),
        # b: reopened twice, still unsatisfied at the last follow-up.
        _review("b", "UNSATISFIED", t + 2 * h), _review("b", "UNSATISFIED", t + 3 * h),
        # c: reopened, then basically satisfied.
        _review("c", "UNSATISFIED", t + 2 * h), _review("c", "BASICALLY_SATISFIED", t + 4 * h),
    ]
    [f] = department_figures(parts, reviews, DEPARTMENTS)
    assert (f.reviewed, f.satisfied, f.reopened) == (3, 2, 2)
    assert f.satisfaction_rate == pytest.approx(2 / 3) and f.reopen_rate == pytest.approx(2 / 3)
