"""Recommendation against a real Postgres: the capability matrix, the neighbour rule, duty and stale positions.

Each test moves a few seeded units next to a point of its own, far from the
rest of the city, so the picks are decided by the rules under test.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest
from sqlalchemy import delete

from google.protobuf import field_mask_pb2
from smart110.common.v1.common_pb2 import GeoPoint
from services.dispatch import queries
from services.dispatch.store import shifts
from services.runtime.timeutil import to_pb
from tests import support
from tests.integration.dispatch_harness import dispatch_service, field_violations, pb


@pytest.fixture(scope="module")
def h(admin_url):
    with dispatch_service(admin_url) as harness:
        yield harness


def place(h, unit_id: str, lon: float, lat: float, *, age_s: float = 0) -> None:
    h.set_unit(unit_id, lon=lon, lat=lat, position_time=h.clock() - timedelta(seconds=age_s), status="AVAILABLE")


def first_of(h, station: str, kind: str) -> str:
    return h.units_of(station, kind)[0].unit_id


def test_matrix_picks_each_needed_capability_with_a_reason(h):
    lon, lat = 115.0, 31.5
    car, cop = first_of(h, "S05", "PATROL_CAR"), first_of(h, "S05", "COMMUNITY_OFFICER")
    place(h, car, lon + 0.003, lat)
    place(h, cop, lon + 0.002, lat)
    case = h.case_of(h.report(incident_type="FIGHT", station="S05", grid="S05-G01", lon=lon, lat=lat))
    picks = [(r.unit, r.capability, r.role) for r in case.recommendations]
    assert picks == [(f"units/{car}", "PATROL", pb.ASSIGNMENT_ROLE_PRIMARY),
                     (f"units/{cop}", "COMMUNITY", pb.ASSIGNMENT_ROLE_SUPPORT)]
    for r in case.recommendations:
        assert r.reason.startswith("辖区内最近的空闲") and "米" in r.reason and not r.cross_station
        assert 0 < r.distance_m < 400 and r.eta_seconds > 0


def test_robbery_brings_criminal_investigation_and_telecom_fraud_the_anti_fraud_centre(h):
    lon, lat = 115.5, 31.5
    robbery = h.case_of(h.report(incident_type="ROBBERY", station="S10", grid="S10-G01", lon=lon, lat=lat))
    kinds = {r.capability: r.kind for r in robbery.recommendations}
    assert kinds == {"PATROL_CAR": pb.UNIT_KIND_PATROL_CAR, "CRIMINAL_INVESTIGATION": pb.UNIT_KIND_CRIMINAL_INVESTIGATION}
    fraud = h.case_of(h.report(incident_type="TELECOM_FRAUD", station="S10", grid="S10-G01", lon=lon, lat=lat))
    assert {r.kind for r in fraud.recommendations} == {pb.UNIT_KIND_ANTI_FRAUD, pb.UNIT_KIND_COMMUNITY_OFFICER}


def test_neighbours_unit_only_when_clearly_faster(h):
    lon, lat = 116.0, 31.5
    for u in h.units_of("S07", "PATROL_CAR") + h.units_of("S07", "FOOT_PATROL"):
        place(h, u.unit_id, lon + 0.05, lat)  # ~5 km
    neighbour = first_of(h, "S08", "PATROL_CAR")
    place(h, neighbour, lon + 0.002, lat)  # ~200 m
    case = h.case_of(h.report(incident_type="SUSPICIOUS_PERSON", station="S07", grid="S07-G01", lon=lon, lat=lat))
    (pick,) = case.recommendations
    assert pick.unit == f"units/{neighbour}" and pick.cross_station and pick.station_id == "S08"
    assert "邻近派出所S08" in pick.reason and "明显更快" in pick.reason

    lon2 = lon + 0.3
    own = first_of(h, "S07", "FOOT_PATROL")
    other = h.units_of("S08", "PATROL_CAR")[1].unit_id
    place(h, own, lon2 + 0.0004, lat)  # ~40 m on foot: ~40 s
    place(h, other, lon2 + 0.0001, lat)  # ~10 m by car: faster, but by less than 60 s
    case = h.case_of(h.report(incident_type="SUSPICIOUS_PERSON", station="S07", grid="S07-G01", lon=lon2, lat=lat))
    assert case.recommendations[0].unit == f"units/{own}" and not case.recommendations[0].cross_station


def test_off_duty_units_are_never_picked_until_a_shift_covers_them(h):
    lon, lat = 116.5, 31.5
    near, far = h.units_of("S09", "PATROL_CAR")[:2]
    place(h, near.unit_id, lon + 0.001, lat)
    place(h, far.unit_id, lon + 0.01, lat)
    with h.rt.engine.begin() as conn:
        conn.execute(delete(shifts).where(shifts.c.unit_id == near.unit_id))
    got = h.stub.GetUnit(pb.GetUnitRequest(name=near.name))
    assert not got.on_duty and got.status == pb.UNIT_STATUS_OFF_DUTY
    off = h.stub.ListUnits(pb.ListUnitsRequest(station_id="S09", status=pb.UNIT_STATUS_OFF_DUTY)).units
    assert [u.name for u in off] == [near.name]
    case = h.case_of(h.report(incident_type="ROBBERY", station="S09", grid="S09-G01", lon=lon, lat=lat))
    assert case.recommendations[0].unit == far.name

    now = h.clock()
    shift = h.stub.CreateShift(pb.CreateShiftRequest(
        request_id=uuid.uuid4().hex, parent=near.name,
        shift=pb.Shift(start_time=to_pb(now - timedelta(hours=1)), end_time=to_pb(now + timedelta(hours=8)),
                       area="S09-G01")), metadata=support.caller(["station_chief"], station="S09", sub="chief-s09"))
    assert shift.name.startswith(f"{near.name}/shifts/")
    assert h.stub.GetUnit(pb.GetUnitRequest(name=near.name)).on_duty
    listed = h.stub.ListShifts(pb.ListShiftsRequest(parent=near.name)).shifts
    assert [s.name for s in listed] == [shift.name]
    case = h.case_of(h.report(incident_type="ROBBERY", station="S09", grid="S09-G01", lon=lon, lat=lat))
    assert case.recommendations[0].unit == near.name
    added = [b for _, b in h.events(["dispatch.UnitUpdated"]) if b.unit.name == near.name]
    assert [(b.action, b.stamp.actor) for b in added] == [("SHIFT_ADDED", "chief-s09")]
    history = h.stub.GetUnit(pb.GetUnitRequest(name=near.name)).timeline
    assert [(e.action, e.stamp.actor) for e in history] == [("SHIFT_ADDED", "chief-s09")]
    assert "勤务报备" in history[0].detail


def test_roster_rules(h):
    unit = h.units_of("S11", "PATROL_CAR")[0]
    now = h.clock()
    with pytest.raises(grpc.RpcError) as err:  # overlaps the seeded 24-hour shift
        h.stub.CreateShift(pb.CreateShiftRequest(request_id=uuid.uuid4().hex, parent=unit.name, shift=pb.Shift(
            start_time=to_pb(now), end_time=to_pb(now + timedelta(hours=2)))))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as err:
        h.stub.CreateShift(pb.CreateShiftRequest(parent="units/", shift=pb.Shift(
            start_time=to_pb(now), end_time=to_pb(now - timedelta(hours=2)))))
    assert field_violations(err.value) == {"request_id", "parent", "shift.end_time"}
    with pytest.raises(grpc.RpcError) as err:  # another station's chief
        h.stub.CreateShift(pb.CreateShiftRequest(request_id=uuid.uuid4().hex, parent=unit.name, shift=pb.Shift(
            start_time=to_pb(now + timedelta(days=3)), end_time=to_pb(now + timedelta(days=3, hours=8)))),
            metadata=support.caller(["station_chief"], station="S01", sub="t-dispatcher"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND, "another station's unit is, for him, not there"
    with pytest.raises(grpc.RpcError) as err:
        h.stub.ListShifts(pb.ListShiftsRequest(parent="units/U-NOPE"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_stale_positions_are_marked_and_pay_a_penalty(h):
    lon, lat = 117.0, 31.5
    stale, fresh = h.units_of("S12", "PATROL_CAR")[:2]
    place(h, stale.unit_id, lon + 0.001, lat, age_s=3600)  # nearest, but an hour old
    place(h, fresh.unit_id, lon + 0.004, lat)
    assert h.stub.GetUnit(pb.GetUnitRequest(name=stale.name)).position_stale
    assert not h.stub.GetUnit(pb.GetUnitRequest(name=fresh.name)).position_stale
    case = h.case_of(h.report(incident_type="SUSPICIOUS_PERSON", station="S12", grid="S12-G01", lon=lon, lat=lat))
    assert case.recommendations[0].unit == fresh.name and not case.recommendations[0].position_stale


def test_positions_stream_in_from_phones_and_vehicles(h):
    unit = h.units_of("S13", "PATROL_CAR")[0]
    h.set_unit(unit.unit_id, position_time=h.clock() - timedelta(hours=2))
    now = h.clock()
    fixes = [
        pb.ReportPositionsRequest(unit=unit.name, position=GeoPoint(longitude=114.31, latitude=30.59),
                                  fix_time=to_pb(now - timedelta(seconds=5)), accuracy_m=8),
        pb.ReportPositionsRequest(unit=unit.name, position=GeoPoint(longitude=114.32, latitude=30.59),
                                  fix_time=to_pb(now), accuracy_m=5),
        # Older than what is stored: accepted but it does not move the unit back.
        pb.ReportPositionsRequest(unit=unit.name, position=GeoPoint(longitude=114.0, latitude=30.0),
                                  fix_time=to_pb(now - timedelta(seconds=60))),
        pb.ReportPositionsRequest(unit="units/U-NOPE", position=GeoPoint(longitude=114.3, latitude=30.5)),
        pb.ReportPositionsRequest(unit=unit.name, position=GeoPoint(longitude=200, latitude=30.5)),
        pb.ReportPositionsRequest(unit=unit.name),
    ]
    result = h.stub.ReportPositions(iter(fixes),
        metadata=support.caller(["officer"], station=unit.station_id, sub=unit.officers[0].officer_id))
    assert (result.accepted, result.rejected) == (3, 3)
    # Every position the unit actually took is kept, in order (the older fix did not move it).
    with h.rt.engine.connect() as conn:
        trail = [(r["lon"], r["lat"]) for r in queries.unit_history(conn, unit.unit_id)]
    assert trail[-2:] == [(114.31, 30.59), (114.32, 30.59)] and (114.0, 30.0) not in trail
    got = h.stub.GetUnit(pb.GetUnitRequest(name=unit.name))
    assert (got.position.longitude, got.position.latitude) == (114.32, 30.59) and not got.position_stale
    foreign = h.stub.ReportPositions(iter(fixes[:1]),
        metadata=support.caller(["officer"], station="S13", sub="P-someone-else"))
    assert (foreign.accepted, foreign.rejected) == (0, 1)


def test_one_position_from_a_browser_without_a_stream(h):
    """ReportPosition, the unary face of ReportPositions the phone view uses: the same checks, as errors."""
    unit = h.units_of("S15", "PATROL_CAR")[0]
    h.set_unit(unit.unit_id, position_time=h.clock() - timedelta(hours=2))
    officer = support.caller(["officer"], station=unit.station_id, sub=unit.officers[0].officer_id)
    now = h.clock()

    def report(metadata=officer, **kw):
        return h.stub.ReportPosition(pb.ReportPositionRequest(**kw), metadata=metadata, timeout=10)

    got = report(unit=unit.name, position=GeoPoint(longitude=114.33, latitude=30.61), fix_time=to_pb(now),
                 accuracy_m=12)
    assert got.applied
    moved = h.stub.GetUnit(pb.GetUnitRequest(name=unit.name))
    assert (moved.position.longitude, moved.position.latitude) == (114.33, 30.61) and not moved.position_stale
    # The same fix again, and an older one: nothing changes (a retry is harmless).
    assert not report(unit=unit.name, position=GeoPoint(longitude=114.0, latitude=30.0),
                      fix_time=to_pb(now - timedelta(seconds=30))).applied
    again = h.stub.GetUnit(pb.GetUnitRequest(name=unit.name))
    assert (again.position.longitude, again.position.latitude) == (114.33, 30.61)
    # Without a fix time: taken as of now.
    assert report(unit=unit.name, position=GeoPoint(longitude=114.34, latitude=30.61)).applied

    for request, fields in [
        (dict(), {"unit", "position"}),
        (dict(unit=unit.name, position=GeoPoint(longitude=200, latitude=95)),
         {"position.longitude", "position.latitude"}),
        (dict(unit=unit.name, position=GeoPoint(longitude=0, latitude=0)), {"position"}),
        (dict(unit=unit.name, position=GeoPoint(longitude=114.3, latitude=30.6), accuracy_m=-1,
              fix_time=to_pb(now + timedelta(minutes=10))), {"accuracy_m", "fix_time"}),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            report(**request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(err.value) == fields, request
    with pytest.raises(grpc.RpcError) as err:
        report(unit="units/U-NOPE", position=GeoPoint(longitude=114.3, latitude=30.6))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        report(metadata=support.caller(["officer"], station=unit.station_id, sub="P-someone-else"),
               unit=unit.name, position=GeoPoint(longitude=114.3, latitude=30.6))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        report(metadata=support.caller(["officer"], station="S01", sub=unit.officers[0].officer_id),
               unit=unit.name, position=GeoPoint(longitude=114.3, latitude=30.6))
    # Another station's unit is not even shown to exist.
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    still = h.stub.GetUnit(pb.GetUnitRequest(name=unit.name))
    assert (still.position.longitude, still.position.latitude) == (114.34, 30.61)


def test_update_unit_with_a_field_mask(h):
    unit = h.units_of("S14", "FOOT_PATROL")[0]
    changed = h.stub.UpdateUnit(pb.UpdateUnitRequest(
        request_id=uuid.uuid4().hex, unit=pb.Unit(name=unit.name, skills=["PATROL", "SIGN_LANGUAGE"], vehicle="X"),
        update_mask=field_mask_pb2.FieldMask(paths=["skills"])),
            metadata=support.caller(["dispatcher"], sub="t-dispatcher"))
    assert list(changed.skills) == ["PATROL", "SIGN_LANGUAGE"] and changed.vehicle == unit.vehicle
    history = h.stub.GetUnit(pb.GetUnitRequest(name=unit.name)).timeline
    assert [(e.action, e.stamp.actor, e.detail) for e in history] == [("UPDATED", "t-dispatcher", "修改：skills")]
    with pytest.raises(grpc.RpcError) as err:
        h.stub.UpdateUnit(pb.UpdateUnitRequest(request_id=uuid.uuid4().hex, unit=pb.Unit(name=unit.name),
                                               update_mask=field_mask_pb2.FieldMask(paths=["status", "kind"])))
    assert field_violations(err.value) == {"update_mask", "unit.kind"}
    other = h.units_of("S14", "PATROL_CAR")[0]
    with pytest.raises(grpc.RpcError) as err:
        h.stub.UpdateUnit(pb.UpdateUnitRequest(request_id=uuid.uuid4().hex,
                                               unit=pb.Unit(name=unit.name, call_sign=other.call_sign),
                                               update_mask=field_mask_pb2.FieldMask(paths=["call_sign"])))
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS
    with pytest.raises(grpc.RpcError) as err:
        h.stub.UpdateUnit(pb.UpdateUnitRequest(request_id=uuid.uuid4().hex, unit=pb.Unit(name=unit.name, vehicle="Y"),
                                               update_mask=field_mask_pb2.FieldMask(paths=["vehicle"])),
                          metadata=support.caller(["officer"], station="S14", sub=unit.officers[0].officer_id))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_recommend_units_rpc_skips_units_on_the_case(h):
    lon, lat = 117.5, 31.5
    case = h.case_of(h.report(incident_type="FIGHT", station="S15", grid="S15-G01", lon=lon, lat=lat))
    more = h.stub.RecommendUnits(pb.RecommendUnitsRequest(name=case.name),
        metadata=support.caller(["dispatcher"], sub="t-dispatcher"))
    assert [r.capability for r in more.recommendations] == ["PATROL", "COMMUNITY"]
    assert not {r.unit for r in more.recommendations} & {a.unit for a in case.assignments}
    one = h.stub.RecommendUnits(pb.RecommendUnitsRequest(name=case.name, max_results=1))
    assert len(one.recommendations) == 1
    with pytest.raises(grpc.RpcError) as err:
        h.stub.RecommendUnits(pb.RecommendUnitsRequest(name="cases/nope"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        h.stub.RecommendUnits(pb.RecommendUnitsRequest(name="bad", max_results=-1))
    assert field_violations(err.value) == {"name", "max_results"}
    with pytest.raises(grpc.RpcError) as err:
        h.stub.RecommendUnits(pb.RecommendUnitsRequest(name=case.name),
            metadata=support.caller(["officer"], station="S01", sub="t-dispatcher"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_missing_person_at_night_brings_the_drone(h):
    h.clock.advance(9 * 3600)  # 21:00 in the city; the seeded roster still covers it
    case = h.case_of(h.report(incident_type="MISSING_PERSON", station="S07", grid="S07-G01", lon=114.2, lat=30.6))
    assert [r.capability for r in case.recommendations] == ["PATROL", "DRONE"]
    assert case.recommendations[1].kind == pb.UNIT_KIND_DRONE
