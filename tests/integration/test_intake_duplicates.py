"""Duplicate reports merged into one master incident, and merges undone, against a real
Postgres over a real gRPC socket."""
from __future__ import annotations

from datetime import timedelta

import grpc

from smart110.intake.v1 import intake_service_pb2 as pb
from tests.integration.intake_support import (
    CALL_TAKER, HANKOU, WUCHANG, actions, caller, error_of, events_about, intake, metadata_for, report, rid, served,
    submit, time_slot,
)

__all__ = ["intake", "served"]  # the fixtures
# About 100 m east of HANKOU; about 2 km away.
NEAR = (HANKOU[0] + 0.001, HANKOU[1])
FAR = (HANKOU[0] + 0.02, HANKOU[1])


def get(stub, name: str) -> pb.Report:
    return stub.GetReport(pb.GetReportRequest(name=name), metadata=CALL_TAKER)


def test_neighbours_reporting_the_same_fight_make_one_incident(intake):
    rt, stub = intake
    t = time_slot()
    first = submit(stub, report("小区门口有两个人打架，其中一人拿着棍子", point=HANKOU, at=t))
    second = submit(stub, report("楼下好多人在打架，有人头被打破了", point=NEAR, at=t + timedelta(minutes=6)))
    assert first.status == pb.REPORT_STATUS_CLASSIFIED and not first.merged_into
    assert second.status == pb.REPORT_STATUS_MERGED and second.merged_into == first.name
    assert "相距" in second.merge_reason and actions(second)[-1] == "MERGED"
    # The event makes the merge visible, so dispatch opens no second case.
    [(kind, event)] = events_about(rt, second.name)
    assert kind == "intake.IncidentReported" and event.report.merged_into == first.name
    assert event.report.status == pb.REPORT_STATUS_MERGED
    master = get(stub, first.name)
    assert list(master.duplicates) == [second.name]
    assert actions(master)[-1] == "DUPLICATE_LINKED"
    assert [getattr(e, "action", "") for _, e in events_about(rt, first.name)] == ["", "DUPLICATE_LINKED"]
    # A third witness merges into the master, not into the duplicate.
    third = submit(stub, report("广场边上有人斗殴", point=NEAR, at=t + timedelta(minutes=12)))
    assert third.merged_into == first.name
    assert list(get(stub, first.name).duplicates) == [second.name, third.name]


def test_the_same_caller_ringing_again_is_merged(intake):
    _, stub = intake
    t = time_slot()
    phone = caller()
    first = submit(stub, report("我家被盗了，门锁被撬，电脑被偷了", point=WUCHANG, at=t, phone=phone))
    again = submit(stub, report("我刚才报过警，警察怎么还没到？", point=None, address="武昌区中南路", phone=phone,
                                at=t + timedelta(minutes=20)))
    assert again.merged_into == first.name and "同一来电人" in again.merge_reason
    late = submit(stub, report("我刚才报过警，警察怎么还没到？", point=None, address="武昌区中南路", phone=phone,
                               at=t + timedelta(minutes=90)))
    assert not late.merged_into


def test_different_places_times_or_kinds_stay_separate(intake):
    _, stub = intake
    t = time_slot()
    fight = submit(stub, report("路口有人打架", point=HANKOU, at=t))
    far = submit(stub, report("路口有人打架", point=FAR, at=t + timedelta(minutes=2)))
    later = submit(stub, report("路口有人打架", point=NEAR, at=t + timedelta(minutes=45)))
    fire = submit(stub, report("对面楼着火了，冒黑烟", point=NEAR, at=t + timedelta(minutes=3)))
    consult = submit(stub, report("请问身份证丢了怎么补办？", point=NEAR, at=t + timedelta(minutes=4)))
    for r in (far, later, fire, consult):
        assert not r.merged_into and r.status != pb.REPORT_STATUS_MERGED, r.description
    assert not get(stub, fight.name).duplicates


def test_a_call_taker_merges_and_unmerges_with_reasons(intake):
    rt, stub = intake
    t = time_slot()
    master = submit(stub, report("商场门口有人抢包后往地铁站方向跑了", point=HANKOU, at=t))
    other = submit(stub, report("有个小偷在偷电动车电瓶", point=FAR, at=t + timedelta(minutes=5)))
    assert not other.merged_into
    merge = pb.MergeReportRequest(request_id=rid(), name=other.name, master=master.name,
                                  reason="同一嫌疑人逃跑途中所为，接警员核实为同一警情")
    merged = stub.MergeReport(merge, metadata=CALL_TAKER)
    assert merged.status == pb.REPORT_STATUS_MERGED and merged.merged_into == master.name
    assert merged.timeline[-1].action == "MERGED" and merged.timeline[-1].stamp.actor == "ct-1001"
    assert merged.timeline[-1].stamp.reason == merge.reason
    assert stub.MergeReport(merge, metadata=CALL_TAKER) == merged  # a retry changes nothing
    code, _, reason = error_of(lambda: stub.MergeReport(pb.MergeReportRequest(
        request_id=rid(), name=other.name, master=master.name, reason="再次合并"), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason == "ALREADY_MERGED"
    third = submit(stub, report("有人在超市偷东西", point=WUCHANG, at=t + timedelta(minutes=7)))
    code, _, reason = error_of(lambda: stub.MergeReport(pb.MergeReportRequest(
        request_id=rid(), name=third.name, master=other.name, reason="同一警情"), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason == "MASTER_IS_MERGED"
    code, _, reason = error_of(lambda: stub.MergeReport(pb.MergeReportRequest(
        request_id=rid(), name=master.name, master=third.name, reason="同一警情"), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason == "REPORT_IS_MASTER"

    unmerge = pb.UnmergeReportRequest(request_id=rid(), name=other.name, reason="回访核实为另一起盗窃")
    alone = stub.UnmergeReport(unmerge, metadata=CALL_TAKER)
    assert alone.status == pb.REPORT_STATUS_CLASSIFIED and not alone.merged_into and not alone.merge_reason
    assert alone.timeline[-1].action == "UNMERGED" and alone.timeline[-1].stamp.reason == unmerge.reason
    assert actions(get(stub, master.name))[-2:] == ["DUPLICATE_LINKED", "DUPLICATE_UNLINKED"]
    assert not get(stub, master.name).duplicates
    # The un-merged report is its own incident again: its event says so, for dispatch to open a case.
    kinds = [(k, getattr(e, "action", "")) for k, e in events_about(rt, other.name)]
    assert kinds == [("intake.IncidentReported", ""), ("intake.ReportUpdated", "MERGED"),
                     ("intake.ReportUpdated", "UNMERGED")]
    last = events_about(rt, other.name)[-1][1]
    assert last.report.classification.category == pb.CATEGORY_POLICE and not last.report.merged_into
    code, _, reason = error_of(lambda: stub.UnmergeReport(pb.UnmergeReportRequest(
        request_id=rid(), name=other.name, reason="再撤一次"), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason == "NOT_MERGED"


def test_merge_input_roles_and_unknown_reports(intake):
    _, stub = intake
    code, fields, _ = error_of(lambda: stub.MergeReport(pb.MergeReportRequest(
        request_id="", name="reports/a", master="reports/a"), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and set(fields) == {"request_id", "master", "reason"}
    code, fields, _ = error_of(lambda: stub.UnmergeReport(pb.UnmergeReportRequest(
        request_id=rid(), name="cases/a", reason="x" * 501), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and set(fields) == {"name", "reason"}
    r = submit(stub, report("有人在小区里偷车", point=WUCHANG, at=time_slot()))
    code, _, _ = error_of(lambda: stub.MergeReport(pb.MergeReportRequest(
        request_id=rid(), name=r.name, master="reports/none", reason="同一警情"), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _, _ = error_of(lambda: stub.MergeReport(pb.MergeReportRequest(
        request_id=rid(), name=r.name, master="reports/none", reason="同一警情"),
        metadata=metadata_for(["expert"])))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    question = submit(stub, report("请问身份证丢了怎么补办？", point=WUCHANG, at=time_slot()))
    code, _, reason = error_of(lambda: stub.MergeReport(pb.MergeReportRequest(
        request_id=rid(), name=question.name, master=r.name, reason="同一人"), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason == "CATEGORY_MISMATCH"


def test_witnesses_calling_at_the_same_moment_still_make_one_incident(intake):
    from concurrent.futures import ThreadPoolExecutor

    _, stub = intake
    t = time_slot()
    words = ["商场门口有人打架", "商场那边打起来了", "商场门口有人打人", "商场外面两伙人斗殴", "快来，商场门口有人打架"]
    with ThreadPoolExecutor(len(words)) as pool:
        made = list(pool.map(lambda w: submit(stub, report(w, point=WUCHANG, at=t)), words))
    masters = [r for r in made if not r.merged_into]
    assert len(masters) == 1
    assert {r.merged_into for r in made if r.merged_into} == {masters[0].name}
