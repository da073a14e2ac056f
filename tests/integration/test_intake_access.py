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


def _point_just_inside(a, b) -> tuple[float, float]:
    """A point about 5 m inside station `a`, off the middle of its border with station `b`."""
    shared = a.polygon.boundary.intersection(b.polygon.boundary)
    line = max(getattr(shared, "geoms", [shared]), key=lambda g: g.length)
    mid = line.interpolate(0.5, normalized=True)
    c = a.polygon.centroid
    dx, dy = c.x - mid.x, c.y - mid.y
    norm = (dx * dx + dy * dy) ** 0.5
    return round(mid.x + dx / norm * 5e-5, 7), round(mid.y + dy / norm * 5e-5, 7)


def test_a_border_case_is_seen_by_the_neighbouring_station_as_its_own(intake, two_stations):
    """边界警情: a report a few metres from the line is routed to the station it lies in and shared
    with the one across the line, which reads and lists it; a third station does not."""
    from sampledata import city

    _rt, stub = intake
    stations = {s.station_id: s for s in city.stations()}
    a, b = stations["S01"], next(s for s in city.stations() if s.station_id != "S01"
                                 and s.polygon.boundary.intersection(stations["S01"].polygon.boundary).length > 0)
    filed = submit(stub, report("两辆车在路口刮擦，司机吵起来了", point=_point_just_inside(a, b)))
    assert filed.station_id == a.station_id and filed.border_case
    assert list(filed.shared_station_ids) == [b.station_id]
    neighbour = metadata_for(["station_chief"], station=b.station_id)
    assert stub.GetReport(pb.GetReportRequest(name=filed.name), metadata=neighbour).name == filed.name
    listed = stub.ListReports(pb.ListReportsRequest(page_size=100), metadata=neighbour).reports
    assert filed.name in {r.name for r in listed}
    third = next(s for s in stations if s not in (a.station_id, b.station_id, *filed.shared_station_ids))
    with pytest.raises(grpc.RpcError) as err:
        stub.GetReport(pb.GetReportRequest(name=filed.name), metadata=metadata_for(["station_chief"], station=third))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    routed = [e.detail for e in stub.GetReport(pb.GetReportRequest(name=filed.name), metadata=neighbour).timeline
              if e.action == "ROUTED"]
    assert routed and f"同步相邻派出所 {b.station_id}" in routed[-1]
