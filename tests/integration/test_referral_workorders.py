"""Referral work orders against a real Postgres, intake and referral on real gRPC sockets:
110 → 12345 referral from the intake feed, routing, joint rescue, lifecycle, deadlines, overdue."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf import field_mask_pb2

from smart110.common.v1 import common_pb2, events_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as pb
from services.intake import queries as intake_queries
from services.runtime.timeutil import from_pb, to_pb
from tests.conftest import eventually
from tests import support
from tests.integration.referral_support import (
    HANYANG_S15, JIANGAN_S01, JIANGHAN_S06, QIAOKOU_S10, QIAOKOU_S12, WUCHANG_S18, XINZHOU_S23, actions,
    order_for_report, phone, report_110, rid, serving_suite, sweep_at, ticket,
)

CHINA = timezone(timedelta(hours=8))
AGENT = support.caller(["hotline_agent"], sub="agent-07")
SUPERVISOR = support.caller(["supervisor"], sub="supervisor-01")


def dept(dept_id: str):
    return support.caller(["department"], station=dept_id, sub=f"staff-{dept_id}")


@pytest.fixture(scope="module")
def suite(admin_url):
    with serving_suite(admin_url) as s:
        yield s


def feed_events(suite, types: list[str]) -> list[events_pb2.Event]:
    return list(suite.referral.StreamEvents(events_pb2.StreamEventsRequest(stop_at_end=True, types=types),
                                            timeout=10))


def payloads_for(suite, order_name: str):
    out = []
    for e in feed_events(suite, ["referral.WorkOrderCreated", "referral.WorkOrderUpdated"]):
        if e.subject != order_name:
            continue
        msg = pb.WorkOrderCreated() if e.type.endswith("Created") else pb.WorkOrderUpdated()
        e.payload.Unpack(msg)
        out.append((e.type, msg))
    return out


# -- from 110 -----------------------------------------------------------------------

def test_non_police_report_becomes_one_work_order_routed_with_its_reason(suite):
    number = phone()
    report = report_110(suite, "楼下有辆白色轿车违章停车，堵住了小区出口，车主电话打不通", caller_phone=number)
    assert report.classification.category == intake_pb.CATEGORY_NON_POLICE

    order = eventually(lambda: order_for_report(suite, report.name))
    assert order.source == pb.WORK_ORDER_SOURCE_REPORT_110
    assert order.matter_code == "ILLEGAL_PARKING" and order.category == "城市管理"
    assert order.status == pb.WORK_ORDER_STATUS_ASSIGNED
    assert order.district == "江岸区"
    [part] = order.assignments
    assert part.department == "departments/D01" and part.department_display_name == "江城市城市管理执法局"
    assert part.role == pb.DEPARTMENT_ROLE_LEAD
    assert "违章停车" in part.routing_reason and "江城市公安局交通管理局" in part.routing_reason
    assert (order.citizen.name, order.citizen.phone_number) == ("李女士", number), "for 12345's follow-up"
    assert actions(order) == ["CREATED", "ROUTING", "ASSIGNED"]
    # Intake's events carried no caller: referral read the contact, and intake recorded the read.
    announced = [e for e in suite.intake.StreamEvents(events_pb2.StreamEventsRequest(
        stop_at_end=True, types=["intake.IncidentReported"]), timeout=10) if e.subject == report.name]
    assert announced and number.encode() not in announced[0].payload.value
    with suite.intake_rt.engine.connect() as conn:
        reads = [(v["roles"], v["method"], v["purpose"]) for v in
                 intake_queries.personal_data_views(conn, report.name.split("/")[1])]
    assert reads == [(["service"], "GetCallerContact", "WORK_ORDER")], "read once, by a service, for the order"

    # The events intake follows carry the originating report and the order's status.
    events = payloads_for(suite, order.name)
    assert [t for t, _ in events] == ["referral.WorkOrderCreated", "referral.WorkOrderUpdated"]
    assert all(m.work_order.report == report.name for _, m in events)
    assert events[-1][1].action == "ASSIGNED"
    assert events[-1][1].work_order.status == pb.WORK_ORDER_STATUS_ASSIGNED


def test_a_redelivered_intake_event_changes_nothing(suite):
    report = report_110(suite, "小区路灯坏了一个多星期，晚上黑漆漆的", where=JIANGHAN_S06)
    order = eventually(lambda: order_for_report(suite, report.name))
    assert order.matter_code == "STREET_LIGHT"
    consumer = suite.referral_rt.consumers[0]
    event = next(e for e in suite.intake.StreamEvents(events_pb2.StreamEventsRequest(
        stop_at_end=True, types=["intake.IncidentReported"]), timeout=10) if e.subject == report.name)
    assert consumer.apply(event) is False, "the inbox knows the event"
    again = events_pb2.Event()
    again.CopyFrom(event)
    again.event_id = "00000000-0000-4000-8000-" + rid()[:12]
    assert consumer.apply(again) is True, "a new event id reaches the handler"
    listed = suite.referral.ListWorkOrders(pb.ListWorkOrdersRequest(report=report.name), timeout=10).work_orders
    assert [o.name for o in listed] == [order.name], "still exactly one order for the report"
    with suite.intake_rt.engine.connect() as conn:
        reads = [v for v in intake_queries.personal_data_views(conn, report.name.split("/")[1])
                 if v["method"] == "GetCallerContact"]
    assert len(reads) == 1, "the caller is read once, for the order, not again for each delivery"


def test_duplicate_report_merged_into_another_gets_no_order(suite):
    caller = phone()
    report = report_110(suite, "路边井盖丢了，很危险", where=QIAOKOU_S10, caller_phone=caller)
    first = eventually(lambda: order_for_report(suite, report.name))
    again = report_110(suite, "井盖还是没人管，刚才又有人差点掉进去", where=QIAOKOU_S10, caller_phone=caller)
    assert again.merged_into == report.name, "intake merged the repeat call into the first report"
    announced = next(e for e in suite.intake.StreamEvents(events_pb2.StreamEventsRequest(
        stop_at_end=True, types=["intake.IncidentReported"]), timeout=10) if e.subject == again.name)
    eventually(lambda: suite.referral_rt.consumers[0].cursor() >= announced.sequence)
    assert order_for_report(suite, again.name) is None
    assert order_for_report(suite, report.name).name == first.name


def created_for(suite, report_name: str) -> list[str]:
    """The work orders announced as created for a report."""
    out = []
    for e in feed_events(suite, ["referral.WorkOrderCreated"]):
        msg = pb.WorkOrderCreated()
        e.payload.Unpack(msg)
        if msg.work_order.report == report_name:
            out.append(msg.work_order.name)
    return out


# Places of these reports alone: a report near another test's of a like kind would be merged into it.
JIANGHAN_NORTH = (JIANGHAN_S06[0], JIANGHAN_S06[1] + 0.01)
HANYANG_SOUTH = (HANYANG_S15[0], HANYANG_S15[1] - 0.01)


def merged_repeat(suite, text: str, again_text: str, where) -> tuple[intake_pb.Report, intake_pb.Report]:
    """A report and a second call about it that intake merged into it, both consumed by referral."""
    caller = phone()
    report = report_110(suite, text, where=where, caller_phone=caller)
    eventually(lambda: order_for_report(suite, report.name))
    again = report_110(suite, again_text, where=where, caller_phone=caller)
    assert again.merged_into == report.name, "intake merged the repeat call into the first report"
    announced = next(e for e in suite.intake.StreamEvents(events_pb2.StreamEventsRequest(
        stop_at_end=True, types=["intake.IncidentReported"]), timeout=10) if e.subject == again.name)
    eventually(lambda: suite.referral_rt.consumers[0].cursor() >= announced.sequence)
    assert order_for_report(suite, again.name) is None
    return report, again


def unmerge(suite, report: intake_pb.Report, reason: str) -> None:
    request = intake_pb.UnmergeReportRequest(request_id=rid(), name=report.name, reason=reason)
    alone = suite.intake.UnmergeReport(request, metadata=support.caller(["call_taker"], sub="ct-2001"), timeout=10)
    assert not alone.merged_into


def test_an_unmerged_non_police_report_gets_its_own_order_once(suite):
    report, again = merged_repeat(suite, "楼下路灯坏了一整排，晚上黑漆漆的", "路灯还是不亮，隔壁那条街的也坏了",
                                  JIANGHAN_NORTH)
    unmerge(suite, again, "回访核实为另一条街的路灯故障")
    order = eventually(lambda: order_for_report(suite, again.name))
    assert order.source == pb.WORK_ORDER_SOURCE_REPORT_110 and order.report == again.name
    assert order.name != order_for_report(suite, report.name).name
    # Once referral has consumed the un-merge, there is that one order and no other.
    last = [e for e in suite.intake.StreamEvents(events_pb2.StreamEventsRequest(
        stop_at_end=True, types=["intake.ReportUpdated"]), timeout=10) if e.subject == again.name][-1]
    eventually(lambda: suite.referral_rt.consumers[0].cursor() >= last.sequence)
    assert created_for(suite, again.name) == [order.name]


def test_an_unmerged_gas_leak_gets_its_own_joint_rescue_order(suite):
    report, again = merged_repeat(suite, "小区门口燃气管道被挖断了，燃气味很大",
                                  "燃气泄漏还在，味道越来越大，旁边是幼儿园", HANYANG_SOUTH)
    assert again.classification.incident_type == "GAS_LEAK"
    unmerge(suite, again, "核实为另一处燃气管道破损")
    order = eventually(lambda: order_for_report(suite, again.name))
    assert order.joint_rescue and order.urgency == 1 and order.status == pb.WORK_ORDER_STATUS_ASSIGNED
    assert created_for(suite, again.name) == [order.name]


def test_a_second_order_for_a_referred_report_already_exists(suite):
    report = report_110(suite, "小区门口乱停车，把人行道全占了", where=QIAOKOU_S12)
    eventually(lambda: order_for_report(suite, report.name))
    w = ticket("小区门口乱停车，把人行道全占了", "ILLEGAL_PARKING", where=QIAOKOU_S12)
    w.source, w.report = pb.WORK_ORDER_SOURCE_REPORT_110, report.name
    with pytest.raises(grpc.RpcError) as err:
        suite.referral.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=w),
                                       metadata=AGENT, timeout=10)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert support.error_reason(err.value) == "REPORT_ALREADY_REFERRED"


def test_a_report_corrected_to_non_police_is_referred_then(suite):
    report = report_110(suite, "小区门口有一辆白色面包车，车里有个男的鬼鬼祟祟一直盯着我们楼，不知道想干嘛",
                        where=HANYANG_S15)
    assert report.classification.category == intake_pb.CATEGORY_POLICE
    corrected = intake_pb.Report(name=report.name, classification=intake_pb.Classification(
        category=intake_pb.CATEGORY_NON_POLICE, incident_type="ILLEGAL_PARKING", priority=4))
    suite.intake.UpdateReport(intake_pb.UpdateReportRequest(
        request_id=rid(), report=corrected, reason="核实为车辆长期占用公共车位，属非警务求助",
        update_mask=field_mask_pb2.FieldMask(paths=["classification"])),
        metadata=support.caller(["call_taker"], station="S15"), timeout=10)
    order = eventually(lambda: order_for_report(suite, report.name))
    assert order.matter_code == "ILLEGAL_PARKING" and order.status == pb.WORK_ORDER_STATUS_ASSIGNED
    assert order.district == "汉阳区"


def test_police_report_is_not_referred(suite):
    report = report_110(suite, "小区门口有两个人打架，其中一人拿着棍子", where=WUCHANG_S18)
    assert report.classification.category == intake_pb.CATEGORY_POLICE
    # The non-police report filed after it is referred; by then the fight has been consumed too.
    later = report_110(suite, "停水两天了，物业也不管", where=QIAOKOU_S12)
    eventually(lambda: order_for_report(suite, later.name))
    assert order_for_report(suite, report.name) is None


def test_cut_gas_main_is_a_level_one_order_to_several_departments_at_once(suite):
    report = report_110(suite, "路口施工队把燃气管挖断了，燃气泄漏味道很大，周边有居民楼和学校", where=HANYANG_S15,
                        name="赵师傅")
    assert report.classification.category == intake_pb.CATEGORY_POLICE
    assert report.classification.incident_type == "GAS_LEAK" and report.classification.priority == 1

    order = eventually(lambda: order_for_report(suite, report.name))
    assert order.urgency == 1 and order.category == "紧急抢险" and order.joint_rescue
    assert order.status == pb.WORK_ORDER_STATUS_ASSIGNED
    parts = {a.department_display_name: a for a in order.assignments}
    assert list(parts) == ["江城燃气集团", "江城市城市管理执法局", "江城市住房和城乡建设局"]
    assert parts["江城燃气集团"].role == pb.DEPARTMENT_ROLE_LEAD
    assert parts["江城市城市管理执法局"].role == parts["江城市住房和城乡建设局"].role == pb.DEPARTMENT_ROLE_COOPERATING
    assert all("一级抢险" in a.routing_reason for a in order.assignments)
    limit = from_pb(order.deadline) - from_pb(order.request_time)
    assert limit == timedelta(minutes=30), "level-1 rescue: a deadline in minutes"
    assert all(a.deadline == order.deadline for a in order.assignments)

    # In the county, the county's gas company leads instead.
    county = report_110(suite, "村口燃气管道被挖掘机挖断，闻到很浓的燃气味", where=XINZHOU_S23)
    county_order = eventually(lambda: order_for_report(suite, county.name))
    assert county_order.assignments[0].department_display_name == "新洲县天然气有限公司"


# -- lifecycle ---------------------------------------------------------------------

def step(call, request_type, order, department, metadata, **kw):
    return call(request_type(request_id=rid(), name=order.name, department=department, **kw),
                metadata=metadata, timeout=10)


def fix(suite, order, dept_id: str, feedback: str) -> pb.WorkOrder:
    r = suite.referral
    d = f"departments/{dept_id}"
    order = step(r.AcceptWorkOrder, pb.AcceptWorkOrderRequest, order, d, dept(dept_id))
    assert order.status == pb.WORK_ORDER_STATUS_ACCEPTED
    order = step(r.StartWorkOrder, pb.StartWorkOrderRequest, order, d, dept(dept_id))
    assert order.status == pb.WORK_ORDER_STATUS_IN_PROGRESS
    order = step(r.ResolveWorkOrder, pb.ResolveWorkOrderRequest, order, d, dept(dept_id), feedback=feedback)
    assert order.status == pb.WORK_ORDER_STATUS_RESOLVED
    return order


def review(suite, order, satisfaction, comment=""):
    return suite.referral.ReviewWorkOrder(pb.ReviewWorkOrderRequest(
        request_id=rid(), name=order.name, satisfaction=satisfaction, comment=comment), metadata=AGENT, timeout=10)


def test_parking_complaint_reopened_when_unsatisfied_and_closed_after_the_second_fix(suite):
    r = suite.referral
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "小区门口消防车道上长期有私家车违章停车，影响通行", "ILLEGAL_PARKING")), metadata=AGENT, timeout=10)
    assert order.status == pb.WORK_ORDER_STATUS_ASSIGNED
    assert order.assignments[0].department == "departments/D01"

    order = fix(suite, order, "D01", "已派执法队员到场，对违停车辆张贴违停告知单")
    order = review(suite, order, common_pb2.SATISFACTION_UNSATISFIED, "只贴了告知单，第二天车又停回来了，问题没解决")
    assert order.status == pb.WORK_ORDER_STATUS_REOPENED
    assert order.reopen_count == 1
    assert order.satisfaction_comment == "只贴了告知单，第二天车又停回来了，问题没解决"
    assert not order.HasField("escalated_to")

    order = r.AssignWorkOrder(pb.AssignWorkOrderRequest(request_id=rid(), name=order.name), metadata=AGENT, timeout=10)
    assert order.status == pb.WORK_ORDER_STATUS_ASSIGNED
    current = [a for a in order.assignments if a.state == pb.DEPARTMENT_ASSIGNMENT_STATE_ASSIGNED]
    assert [a.department for a in current] == ["departments/D01"]
    assert from_pb(order.deadline) > from_pb(order.assignments[0].deadline), "a reopened order gets a fresh limit"

    order = fix(suite, order, "D01", "已对违停车辆依法拖移，并在消防车道加装隔离桩")
    order = review(suite, order, common_pb2.SATISFACTION_SATISFIED)
    assert order.status == pb.WORK_ORDER_STATUS_CLOSED
    assert order.HasField("close_time")
    assert actions(order) == ["CREATED", "ASSIGNED", "ACCEPTED", "STARTED", "RESOLVED", "REVIEWED", "REOPENED",
                              "ASSIGNED", "ACCEPTED", "STARTED", "RESOLVED", "REVIEWED", "CLOSED"]
    reopened = next(e for e in order.timeline if e.action == "REOPENED")
    assert "第二天车又停回来了" in reopened.detail and reopened.stamp.actor == "agent-07"
    accepted = next(e for e in order.timeline if e.action == "ACCEPTED")
    assert accepted.department == "departments/D01" and accepted.stamp.roles == ["department"]

    updates = [m.action for t, m in payloads_for(suite, order.name) if t.endswith("Updated")]
    assert updates == ["ASSIGNED", "ACCEPTED", "STARTED", "RESOLVED", "REOPENED", "ASSIGNED", "ACCEPTED",
                       "STARTED", "RESOLVED", "CLOSED"]


def test_repeated_reopens_escalate_to_the_departments_supervisor(suite):
    r = suite.referral
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "隔壁工地每天夜里十二点以后还在施工噪音很大，严重影响休息", "CONSTRUCTION_NOISE")), metadata=AGENT, timeout=10)
    lead = order.assignments[0].department.removeprefix("departments/")
    for n, words in enumerate(["夜里还在施工", "昨晚凌晨一点还在打桩"], start=1):
        order = fix(suite, order, lead, "已责令施工单位夜间停止施工")
        order = review(suite, order, common_pb2.SATISFACTION_UNSATISFIED, words)
        assert order.reopen_count == n
        if n == 1:
            order = r.AssignWorkOrder(pb.AssignWorkOrderRequest(request_id=rid(), name=order.name),
                                      metadata=AGENT, timeout=10)
    department = r.GetDepartment(pb.GetDepartmentRequest(name=f"departments/{lead}"), timeout=10)
    assert order.escalated_to.name == department.supervisor.name
    assert order.escalated_to.phone_number == department.supervisor.phone_number
    assert actions(order)[-1] == "ESCALATED"
    assert payloads_for(suite, order.name)[-1][1].action == "ESCALATED"


def test_department_rejects_with_reason_and_the_order_is_reassigned(suite):
    r = suite.referral
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "解放大道主干道上有货车长时间违章停车，造成交通拥堵", "ILLEGAL_PARKING")), metadata=AGENT, timeout=10)
    with pytest.raises(grpc.RpcError) as no_reason:
        r.RejectWorkOrder(pb.RejectWorkOrderRequest(request_id=rid(), name=order.name, department="departments/D01"),
                          metadata=dept("D01"), timeout=10)
    assert no_reason.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert support.field_violations(no_reason.value) == ["reason"]

    order = r.RejectWorkOrder(pb.RejectWorkOrderRequest(
        request_id=rid(), name=order.name, department="departments/D01",
        reason="车辆停放在城市主干道机动车道，属公安交管部门职责", suggested_department="departments/D14"),
        metadata=dept("D01"), timeout=10)
    assert order.status == pb.WORK_ORDER_STATUS_REJECTED
    assert order.assignments[0].reject_reason == "车辆停放在城市主干道机动车道，属公安交管部门职责"

    order = r.AssignWorkOrder(pb.AssignWorkOrderRequest(request_id=rid(), name=order.name), metadata=AGENT, timeout=10)
    assert order.status == pb.WORK_ORDER_STATUS_ASSIGNED
    assert order.assignments[-1].department == "departments/D14"
    assert "江城市公安局交通管理局" in order.assignments[-1].routing_reason
    assert [a.state for a in order.assignments] == [pb.DEPARTMENT_ASSIGNMENT_STATE_REJECTED,
                                                    pb.DEPARTMENT_ASSIGNMENT_STATE_ASSIGNED]
    assert actions(order)[-2:] == ["REJECTED", "ASSIGNED"]


def test_illegal_transitions_and_other_departments_are_refused(suite):
    r = suite.referral
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "小区垃圾没人清，已经堆了三天，臭气熏天", "GARBAGE")), metadata=AGENT, timeout=10)
    d01 = "departments/D01"
    with pytest.raises(grpc.RpcError) as early:
        step(r.ResolveWorkOrder, pb.ResolveWorkOrderRequest, order, d01, dept("D01"), feedback="已清运")
    assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as not_resolved:
        review(suite, order, common_pb2.SATISFACTION_SATISFIED)
    assert not_resolved.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert support.error_reason(not_resolved.value) == "ILLEGAL_TRANSITION"
    with pytest.raises(grpc.RpcError) as other:
        step(r.AcceptWorkOrder, pb.AcceptWorkOrderRequest, order, d01, dept("D09"))
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as not_theirs:
        step(r.AcceptWorkOrder, pb.AcceptWorkOrderRequest, order, "departments/D09", dept("D09"))
    assert not_theirs.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as reassign:
        r.AssignWorkOrder(pb.AssignWorkOrderRequest(request_id=rid(), name=order.name), metadata=AGENT, timeout=10)
    assert reassign.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as agent_accepts:
        step(r.AcceptWorkOrder, pb.AcceptWorkOrderRequest, order, d01, AGENT)
    assert agent_accepts.value.code() == grpc.StatusCode.PERMISSION_DENIED
    unchanged = r.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), timeout=10)
    assert unchanged.status == pb.WORK_ORDER_STATUS_ASSIGNED and actions(unchanged) == ["CREATED", "ASSIGNED"]


def test_unclear_responsibility_goes_to_the_local_station_first_then_to_the_department(suite):
    r = suite.referral
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "小区后面的空地上半夜有人倾倒不明液体，气味刺鼻，不知道该归哪个部门管", urgency=3)),
        metadata=AGENT, timeout=10)
    located = suite.intake.LocateJurisdiction(intake_pb.LocateJurisdictionRequest(
        point=common_pb2.GeoPoint(longitude=JIANGAN_S01[0], latitude=JIANGAN_S01[1])), timeout=10)
    assert order.status == pb.WORK_ORDER_STATUS_PRELIMINARY_POLICE
    assert order.preliminary_station == f"stations/{located.station_id}"
    assert "职责待厘清" in order.preliminary_reason
    assert not order.assignments

    order = r.AssignWorkOrder(pb.AssignWorkOrderRequest(
        request_id=rid(), name=order.name, departments=["departments/D10"],
        reason="派出所先期处置查明为企业偷排废液，属生态环境部门职责"), metadata=AGENT, timeout=10)
    assert order.status == pb.WORK_ORDER_STATUS_ASSIGNED
    assert order.assignments[0].department_display_name == "江城市生态环境局"
    assert order.preliminary_station == f"stations/{located.station_id}", "the first handler stays on record"
    assert actions(order) == ["CREATED", "PRELIMINARY_POLICE", "ASSIGNED"]


def test_an_order_nobody_can_place_stays_with_the_12345_desk_on_record(suite):
    order = suite.referral.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "想反映一下我们这边的一个问题，具体情况比较复杂", where=None)), metadata=AGENT, timeout=10)
    assert order.status == pb.WORK_ORDER_STATUS_RECEIVED
    assert actions(order) == ["CREATED", "AWAITING_ASSIGNMENT"]
    assert "12345派单席" in order.timeline[-1].detail
    with pytest.raises(grpc.RpcError) as no_place:
        suite.referral.AssignWorkOrder(pb.AssignWorkOrderRequest(
            request_id=rid(), name=order.name, preliminary_police=True), metadata=AGENT, timeout=10)
    assert no_place.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_agent_can_hand_an_order_to_the_police_station_by_hand(suite):
    r = suite.referral
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "楼下商铺门口有人摆摊占道经营，双方发生争执", "STREET_VENDOR")), metadata=AGENT, timeout=10)
    order = step(r.RejectWorkOrder, pb.RejectWorkOrderRequest, order, "departments/D01", dept("D01"),
                 reason="现场已发生肢体冲突，需公安先行处置")
    with pytest.raises(grpc.RpcError) as both:
        r.AssignWorkOrder(pb.AssignWorkOrderRequest(request_id=rid(), name=order.name, preliminary_police=True,
                                                    departments=["departments/D01"]), metadata=AGENT, timeout=10)
    assert support.field_violations(both.value) == ["departments"]
    order = r.AssignWorkOrder(pb.AssignWorkOrderRequest(request_id=rid(), name=order.name, preliminary_police=True,
                                                        reason="职责交叉，先由派出所先期处置"),
                              metadata=AGENT, timeout=10)
    assert order.status == pb.WORK_ORDER_STATUS_PRELIMINARY_POLICE and order.preliminary_station


# -- deadlines and overdue ------------------------------------------------------------

def test_ordinary_deadlines_count_working_days_and_skip_the_weekend(suite):
    r = suite.referral
    friday = datetime(2026, 11, 20, 10, 0, tzinfo=CHINA)
    w = ticket("小区电梯故障，老人上下楼很不方便", "ELEVATOR_FAULT", urgency=4)
    w.request_time.CopyFrom(to_pb(friday))
    routine = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=w), metadata=AGENT, timeout=10)
    assert from_pb(routine.deadline) == datetime(2026, 11, 27, 10, 0, tzinfo=CHINA)
    w.urgency = 3
    sooner = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=w), metadata=AGENT, timeout=10)
    assert from_pb(sooner.deadline) == datetime(2026, 11, 25, 10, 0, tzinfo=CHINA)


def test_sweeper_flags_overdue_orders_once_with_an_event(suite):
    r = suite.referral
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "路面塌陷出现一个大坑，车辆经过很危险", "ROAD_DAMAGE", urgency=2)), metadata=AGENT, timeout=10)
    deadline = from_pb(order.deadline)
    rt = suite.referral_rt
    assert order.name not in sweep_at(rt, deadline - timedelta(minutes=1))
    assert order.name in sweep_at(rt, deadline + timedelta(minutes=1))
    assert order.name not in sweep_at(rt, deadline + timedelta(hours=5))
    flagged = r.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), timeout=10)
    assert flagged.overdue and actions(flagged)[-1] == "OVERDUE"
    assert "江城市交通运输局" in flagged.timeline[-1].detail
    overdue = r.ListWorkOrders(pb.ListWorkOrdersRequest(overdue_only=True, matter_code="ROAD_DAMAGE"), timeout=10)
    assert order.name in [o.name for o in overdue.work_orders]
    assert [m.action for t, m in payloads_for(suite, order.name) if t.endswith("Updated")][-1] == "OVERDUE"


def test_deadline_figures_count_open_orders_by_lead_department(suite):
    from prometheus_client import REGISTRY

    from services.referral12345 import queries, workers
    from services.runtime import metrics

    order = suite.referral.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "人行道上的井盖丢了，晚上很危险", "ROAD_DAMAGE", urgency=2)), metadata=AGENT, timeout=10)
    lead = next(a.department for a in order.assignments if a.role == pb.DEPARTMENT_ROLE_LEAD)
    dept_id = lead.removeprefix("departments/")
    deadline = from_pb(order.deadline)

    def figures(at):
        with suite.referral_rt.engine.connect() as conn:
            return queries.deadline_figures(conn, now=at)

    long_before = figures(deadline - timedelta(days=365))
    assert long_before[dept_id][0] >= 1 and long_before[dept_id][1:] == (0, 0)
    assert figures(deadline - timedelta(minutes=30))[dept_id][2] >= 1
    after = figures(deadline + timedelta(minutes=1))
    assert after[dept_id][1] >= 1 and after[dept_id][1] <= after[dept_id][0]
    # The periodic job puts the figures into the gauges, one series per department.
    published = workers.publish_deadline_figures(suite.referral_rt)
    assert REGISTRY.get_sample_value("smart110_work_orders_open", {
        "service": metrics.service(), "department": dept_id}) == published[dept_id][0]


def test_resolved_orders_are_not_flagged_overdue(suite):
    r = suite.referral
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "公交车司机态度恶劣，到站不停车", "BUS_SERVICE", urgency=2)), metadata=AGENT, timeout=10)
    order = fix(suite, order, "D02", "已约谈涉事驾驶员并给予处理")
    later = from_pb(order.deadline) + timedelta(days=1)
    assert order.name not in sweep_at(suite.referral_rt, later)


# -- bad input, unknown ids, idempotency ------------------------------------------------

def test_bad_input_names_every_field(suite):
    with pytest.raises(grpc.RpcError) as err:
        suite.referral.CreateWorkOrder(pb.CreateWorkOrderRequest(work_order=pb.WorkOrder(
            matter_code="NO_SUCH_MATTER", citizen=pb.Citizen(phone_number="12345"))), metadata=AGENT, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(support.field_violations(err.value)) == {
        "request_id", "work_order.source", "work_order.matter_code", "work_order.description",
        "work_order.urgency", "work_order.citizen.phone_number"}


def test_unknown_ids_are_not_found(suite):
    r = suite.referral
    for call in (lambda: r.GetWorkOrder(pb.GetWorkOrderRequest(name="workOrders/20260101-000000000000"), timeout=10),
                 lambda: r.AssignWorkOrder(pb.AssignWorkOrderRequest(request_id=rid(), name="workOrders/nope"),
                                           metadata=AGENT, timeout=10)):
        with pytest.raises(grpc.RpcError) as err:
            call()
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "自来水发黄有异味", "WATER_QUALITY")), metadata=AGENT, timeout=10)
    with pytest.raises(grpc.RpcError) as err:
        r.AssignWorkOrder(pb.AssignWorkOrderRequest(request_id=rid(), name=order.name,
                                                    departments=["departments/D99"], reason="试派"),
                          metadata=AGENT, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_same_request_id_gives_the_first_answer_and_other_content_conflicts(suite):
    r = suite.referral
    request_id = rid()
    w = ticket("菜市场有商家缺斤短两，价格欺诈", "PRICE_GOUGING")
    first = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=request_id, work_order=w), metadata=AGENT, timeout=10)
    again = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=request_id, work_order=w), metadata=AGENT, timeout=10)
    assert again == first
    w.description = "超市卖过期食品"
    with pytest.raises(grpc.RpcError) as err:
        r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=request_id, work_order=w), metadata=AGENT, timeout=10)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    listed = r.ListWorkOrders(pb.ListWorkOrdersRequest(query="缺斤短两", page_size=500), timeout=10).work_orders
    assert sum(1 for o in listed if o.name == first.name) == 1
    accept = pb.AcceptWorkOrderRequest(request_id=rid(), name=first.name, department="departments/D06")
    one = r.AcceptWorkOrder(accept, metadata=dept("D06"), timeout=10)
    two = r.AcceptWorkOrder(accept, metadata=dept("D06"), timeout=10)
    assert one == two and actions(two).count("ACCEPTED") == 1


def test_lists_mask_citizens_and_departments_see_only_their_orders(suite):
    r = suite.referral
    number = phone()
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        "单位拖欠工资三个月不发", "WAGE_ARREARS", caller_phone=number, name="刘建国")), metadata=AGENT, timeout=10)
    assert order.citizen.phone_number == number
    listed = r.ListWorkOrders(pb.ListWorkOrdersRequest(department="departments/D07", page_size=500),
                              metadata=dept("D07"), timeout=10).work_orders
    mine = next(o for o in listed if o.name == order.name)
    assert mine.citizen.phone_number == number[:3] + "****" + number[-4:] and mine.citizen.name == "刘**"
    with pytest.raises(grpc.RpcError) as other:
        r.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), metadata=dept("D01"), timeout=10)
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as other_list:
        r.ListWorkOrders(pb.ListWorkOrdersRequest(department="departments/D07"), metadata=dept("D01"), timeout=10)
    assert support.field_violations(other_list.value) == ["department"]


def test_confidential_citizen_is_hidden_from_the_department(suite):
    r = suite.referral
    w = ticket("举报某餐馆后厨卫生条件极差，使用变质食材", "FOOD_SAFETY", name="陈女士")
    w.citizen.confidential = True
    order = r.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=w), metadata=AGENT, timeout=10)
    seen = r.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), metadata=dept("D06"), timeout=10)
    assert seen.citizen.confidential and not seen.citizen.phone_number and not seen.citizen.name
    assert r.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), metadata=AGENT, timeout=10).citizen.name == "陈女士"
    police = r.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), metadata=support.caller(["commander"], station="S01"),
                            timeout=10)
    assert police.citizen.confidential and not police.citizen.phone_number and not police.citizen.name


def test_the_police_side_finds_a_referred_reports_order_by_the_report(suite):
    report = report_110(suite, "小区里的下水道堵了，污水漫到路上", where=(JIANGHAN_S06[0] + 0.01, JIANGHAN_S06[1]))
    order = eventually(lambda: order_for_report(suite, report.name))
    for roles in (["commander"], ["station_chief"], ["dispatcher"], ["call_taker"]):
        md = support.caller(roles, station="S06", sub=f"p-{roles[0]}")
        listed = suite.referral.ListWorkOrders(pb.ListWorkOrdersRequest(report=report.name), metadata=md,
                                               timeout=10).work_orders
        assert [o.name for o in listed] == [order.name], roles
        assert suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=order.name), metadata=md,
                                           timeout=10).report == report.name
    # A department that was not given the order still finds nothing.
    other = suite.referral.ListWorkOrders(pb.ListWorkOrdersRequest(report=report.name), metadata=dept("D07"),
                                          timeout=10).work_orders
    assert order.assignments[0].department != "departments/D07" and list(other) == []


def test_police_readers_see_the_work_orders_of_their_own_jurisdiction(suite):
    """A station's police read the 12345 orders of their own station's area; another station's order
    is, for them, not there; city command and the 12345 desk see every order."""
    near = report_110(suite, "小区路灯坏了一个星期了没人修")
    far = report_110(suite, "路边垃圾桶满了好几天没人清运", where=HANYANG_S15)
    here = eventually(lambda: order_for_report(suite, near.name))
    there = eventually(lambda: order_for_report(suite, far.name))
    assert here.name != there.name
    chief = support.caller(["station_chief"], station="S01", sub="chief-s01")
    listed = {o.name for o in suite.referral.ListWorkOrders(pb.ListWorkOrdersRequest(page_size=100), metadata=chief,
                                                            timeout=10).work_orders}
    assert here.name in listed and there.name not in listed
    assert suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=here.name), metadata=chief, timeout=10).name \
        == here.name
    with pytest.raises(grpc.RpcError) as err:
        suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=there.name), metadata=chief, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    for everyone in (support.caller(["commander"], sub="cmd-01"), AGENT):
        names = {o.name for o in suite.referral.ListWorkOrders(pb.ListWorkOrdersRequest(page_size=100),
                                                               metadata=everyone, timeout=10).work_orders}
        assert {here.name, there.name} <= names
