"""Who sees which reports (管辖范围) and who saw a caller's personal data (个人信息查看留痕), end to end on
intake's port."""
from __future__ import annotations

import grpc
import pytest

from smart110.intake.v1 import intake_service_pb2 as pb
from services.intake import queries
from tests.integration.intake_support import HANKOU, WUCHANG, intake, metadata_for, report, rid, served, submit

__all__ = ["intake", "served"]  # the fixtures


@pytest.fixture(scope="module")
def two_stations(intake):
    """One report in 江岸区 and one in 武昌区, filed by the city centre."""
    rt, stub = intake
    from services.intake.__main__ import SPEC

    SPEC.seed(rt)
    here = submit(stub, report("小区门口有人打架，快来人", point=HANKOU))
    there = submit(stub, report("我家电动车被偷了", point=WUCHANG))
    assert here.station_id and there.station_id and here.station_id != there.station_id
    return here, there


def test_a_station_sees_its_own_reports_and_another_station_s_are_not_there(intake, two_stations):
    _rt, stub = intake
    here, there = two_stations
    for roles in (["officer"], ["call_taker"], ["station_chief"]):
        md = metadata_for(roles, station=here.station_id)
        assert stub.GetReport(pb.GetReportRequest(name=here.name), metadata=md).name == here.name
        with pytest.raises(grpc.RpcError) as err:
            stub.GetReport(pb.GetReportRequest(name=there.name), metadata=md)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, "the same answer as for an unknown id"
        if roles == ["officer"]:
            continue  # officers read reports; listing them is the centre's and the station chief's
        listed = stub.ListReports(pb.ListReportsRequest(page_size=100), metadata=md).reports
        assert listed and {r.station_id for r in listed} == {here.station_id}
        with pytest.raises(grpc.RpcError) as err:  # a filter for another station is refused, not widened
            stub.ListReports(pb.ListReportsRequest(station_id=there.station_id), metadata=md)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    city = metadata_for(["call_taker"])
    assert {r.station_id for r in stub.ListReports(pb.ListReportsRequest(page_size=100), metadata=city).reports} \
        >= {here.station_id, there.station_id}


def test_another_station_cannot_change_a_report(intake, two_stations):
    _rt, stub = intake
    here, there = two_stations
    md = metadata_for(["call_taker"], station=here.station_id)
    with pytest.raises(grpc.RpcError) as err:
        stub.AnswerReport(pb.AnswerReportRequest(request_id=rid(), name=there.name), metadata=md)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_unmasked_views_of_a_caller_are_recorded(intake, two_stations):
    rt, stub = intake
    here, _there = two_stations
    chief = metadata_for(["station_chief"], sub="chief-audit", station=here.station_id)
    seen = stub.GetReport(pb.GetReportRequest(name=here.name), metadata=chief)
    assert "*" not in seen.caller.phone_number, "a station chief sees the number to call back"
    officer = metadata_for(["officer"], sub="officer-audit", station=here.station_id)
    masked = stub.GetReport(pb.GetReportRequest(name=here.name), metadata=officer)
    assert "*" in masked.caller.phone_number
    with rt.engine.connect() as conn:
        views = [v for v in queries.personal_data_views(conn, here.name.split("/")[1])
                 if v["actor"] in ("chief-audit", "officer-audit")]
    assert [(v["actor"], v["method"], v["station_id"]) for v in views] == [
        ("chief-audit", "GetReport", here.station_id)], "only the unmasked view is recorded"
    assert views[0]["fields"] == ["caller.phone_number"] and views[0]["roles"] == ["station_chief"]
