"""Time stamps (received, answered, classified, handed off), the citizen's rating and the
intake statistics, against a real Postgres over a real gRPC socket. Times that matter are
injected: receive times on the reports, the answer time through the service's clock, acceptance
times on the dispatch events its consumer is given."""
from __future__ import annotations

from datetime import timedelta

import grpc
from google.protobuf import timestamp_pb2

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as pb
from services.runtime.timeutil import to_pb
from tests.integration.intake_support import (
    CALL_TAKER, HANKOU, WUCHANG, actions, error_of, events_about, intake, metadata_for, report, rid, served,
    submit, time_slot,
)

__all__ = ["intake", "served"]  # the fixtures
SUPERVISOR = metadata_for(["supervisor"], "sup-01", "督察王刚")


def ts(value) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def test_answer_report_stamps_the_answer_time_once(intake):
    rt, stub = intake
    r = submit(stub, report("有人在小区里偷电动车", point=WUCHANG, at=time_slot()))
    assert r.HasField("receive_time") and r.HasField("classify_time") and not r.HasField("answer_time")
    request = pb.AnswerReportRequest(request_id=rid(), name=r.name)
    answered = stub.AnswerReport(request, metadata=CALL_TAKER)
    assert answered.HasField("answer_time") and actions(answered)[-1] == "ANSWERED"
    assert answered.answer_time.ToDatetime() >= r.receive_time.ToDatetime()
    assert stub.AnswerReport(request, metadata=CALL_TAKER) == answered
    code, _, reason = error_of(lambda: stub.AnswerReport(pb.AnswerReportRequest(request_id=rid(), name=r.name),
                                                         metadata=CALL_TAKER))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason == "ALREADY_ANSWERED"
    assert [getattr(e, "action", "") for _, e in events_about(rt, r.name)] == ["", "ANSWERED"]
    code, fields, _ = error_of(lambda: stub.AnswerReport(pb.AnswerReportRequest(request_id="", name="x"),
                                                         metadata=CALL_TAKER))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and set(fields) == {"request_id", "name"}
    code, _, _ = error_of(lambda: stub.AnswerReport(pb.AnswerReportRequest(request_id=rid(), name="reports/none"),
                                                    metadata=CALL_TAKER))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _, _ = error_of(lambda: stub.AnswerReport(pb.AnswerReportRequest(request_id=rid(), name=r.name),
                                                    metadata=metadata_for(["expert"])))
    assert code == grpc.StatusCode.PERMISSION_DENIED


def test_a_report_is_rated_once(intake):
    rt, stub = intake
    r = submit(stub, report("邻居家装修太吵，晚上十一点还在砸墙", point=HANKOU, at=time_slot()))
    rated = stub.RateReport(pb.RateReportRequest(
        request_id=rid(), name=r.name, satisfaction=common_pb2.SATISFACTION_BASICALLY_SATISFIED,
        comment="接警员态度很好，就是等了一会儿"), metadata=CALL_TAKER)
    assert rated.satisfaction == common_pb2.SATISFACTION_BASICALLY_SATISFIED
    assert rated.satisfaction_comment == "接警员态度很好，就是等了一会儿"
    assert actions(rated)[-1] == "RATED" and "基本满意" in rated.timeline[-1].detail
    code, _, reason = error_of(lambda: stub.RateReport(pb.RateReportRequest(
        request_id=rid(), name=r.name, satisfaction=common_pb2.SATISFACTION_SATISFIED), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.FAILED_PRECONDITION and reason == "ALREADY_RATED"
    assert [getattr(e, "action", "") for _, e in events_about(rt, r.name)] == ["", "RATED"]
    code, fields, _ = error_of(lambda: stub.RateReport(pb.RateReportRequest(
        request_id=rid(), name=r.name, comment="很" * 501), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and set(fields) == {"satisfaction", "comment"}


def test_statistics_per_channel_hour_and_station(intake, served):
    rt, stub = intake
    t = time_slot()
    fight = submit(stub, report("小区门口有两个人打架，其中一人拿着棍子", point=HANKOU, at=t))
    repeat = submit(stub, report("楼下有人打架", point=(HANKOU[0] + 0.001, HANKOU[1]), at=t + timedelta(minutes=3)))
    theft = submit(stub, report("我的手机在公交车上被偷了", point=WUCHANG, at=t + timedelta(minutes=10)))
    consult = submit(stub, report("请问无犯罪记录证明在哪里开？需要本人去吗？", point=None, address="江城市",
                                  channel=pb.CHANNEL_WECHAT, at=t + timedelta(minutes=70)))
    assert repeat.merged_into == fight.name and consult.status == pb.REPORT_STATUS_ANSWERED
    receive = {r.name: r.receive_time.ToDatetime().replace(tzinfo=t.tzinfo) for r in (fight, theft)}
    clock, now = served.clock, served.clock()
    try:
        for r, answer_after, accept_after in ((fight, 2, 20), (theft, 5, 45)):
            rid_ = r.name.split("/")[1]
            clock.set(receive[r.name] + timedelta(seconds=answer_after))
            stub.AnswerReport(pb.AnswerReportRequest(request_id=rid(), name=r.name), metadata=CALL_TAKER)
            clock.set(receive[r.name])
            case = dispatch_pb.DispatchCase(name=f"cases/stats-{rid_}", report=r.name,
                                            status=dispatch_pb.CASE_STATUS_PENDING)
            served.deliver("dispatch", "dispatch.CaseCreated", case.name, dispatch_pb.CaseCreated(dispatch_case=case))
            accepted = dispatch_pb.Assignment(
                name=f"{case.name}/assignments/a1", unit="units/U-S01-001", state=dispatch_pb.ASSIGNMENT_STATE_ACCEPTED,
                accept_time=to_pb(receive[r.name] + timedelta(seconds=accept_after)))
            served.deliver("dispatch", "dispatch.AssignmentChanged", accepted.name,
                           dispatch_pb.AssignmentChanged(assignment=accepted, case_name=case.name))
    finally:
        clock.set(now)
    for r in (fight, theft):
        assert actions(stub.GetReport(pb.GetReportRequest(name=r.name), metadata=CALL_TAKER))[-3:] == [
            "ANSWERED", "CASE_OPENED", "HANDED_OFF"]
    for r, how in ((fight, common_pb2.SATISFACTION_SATISFIED), (theft, common_pb2.SATISFACTION_BASICALLY_SATISFIED),
                   (consult, common_pb2.SATISFACTION_UNSATISFIED)):
        stub.RateReport(pb.RateReportRequest(request_id=rid(), name=r.name, satisfaction=how), metadata=CALL_TAKER)

    window = dict(start_time=ts(t), end_time=ts(t + timedelta(hours=3)))
    s = stub.GetIntakeStatistics(pb.GetIntakeStatisticsRequest(**window), metadata=SUPERVISOR)
    assert s.reports == 4 and s.merged == 1 and s.repeat_report_rate == 0.25
    assert s.answered_within_3s == 0.25  # the fight only; the consultation's answer came later than 3 s
    assert s.handed_off_within_30s == 0.5  # of the two police incidents, the fight only
    phone, = [c for c in s.channels if c.channel == pb.CHANNEL_PHONE]
    assert (phone.reports, phone.answered, phone.police_reports, phone.handed_off, phone.merged) == (3, 2, 2, 2, 1)
    assert phone.answered_within_3s == round(1 / 3, 4) and phone.handed_off_within_30s == 0.5
    wechat, = [c for c in s.channels if c.channel == pb.CHANNEL_WECHAT]
    assert (wechat.reports, wechat.answered, wechat.police_reports) == (1, 1, 0)
    assert [(h.hour_start.ToDatetime(), h.reports) for h in s.hours] == [
        (t.replace(tzinfo=None), 3), ((t + timedelta(hours=1)).replace(tzinfo=None), 1)]
    stations = {b.station_id: b for b in s.stations}
    assert stations[fight.station_id].reports == 2 and stations[fight.station_id].repeat_report_rate == 0.5
    assert stations[theft.station_id].reports == 1 and fight.station_id != theft.station_id
    sat = s.satisfaction
    assert (sat.rated, sat.satisfied, sat.basically_satisfied, sat.unsatisfied) == (3, 1, 1, 1)
    assert sat.satisfied_rate == s.satisfied_rate == round(1 / 3, 4) and sat.satisfaction_rate == round(2 / 3, 4)
    assert (s.consultations.consultations, s.consultations.answered_at_once) == (1, 1)
    assert s.consultations.answered_at_once_rate == 1.0

    one = stub.GetIntakeStatistics(pb.GetIntakeStatisticsRequest(station_id=theft.station_id, **window),
                                   metadata=SUPERVISOR)
    assert one.reports == 1 and one.handed_off_within_30s == 0.0 and one.answered_within_3s == 0.0


def test_statistics_input_and_roles(intake):
    _, stub = intake
    t = time_slot()
    code, fields, _ = error_of(lambda: stub.GetIntakeStatistics(pb.GetIntakeStatisticsRequest(
        start_time=ts(t), end_time=ts(t - timedelta(hours=1))), metadata=SUPERVISOR))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["end_time"]
    code, _, _ = error_of(lambda: stub.GetIntakeStatistics(pb.GetIntakeStatisticsRequest(),
                                                           metadata=metadata_for(["expert"])))
    assert code == grpc.StatusCode.PERMISSION_DENIED
    empty = stub.GetIntakeStatistics(pb.GetIntakeStatisticsRequest(
        start_time=ts(t), end_time=ts(t + timedelta(hours=3))), metadata=SUPERVISOR)
    assert empty.reports == 0 and empty.repeat_report_rate == 0.0 and not empty.channels
