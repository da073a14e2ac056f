"""Dispatch recommendation and lifecycle rules without a database."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from services.dispatch.domain import Assignment, can_move, case_status, distance_m
from services.dispatch.recommend import matrix, recommend

NOON = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)  # 12:00 in the city
MIDNIGHT = datetime(2026, 11, 23, 16, 0, tzinfo=timezone.utc)  # 00:00 in the city


def unit(uid, kind, station, lon, lat, fix=NOON):
    from services.dispatch.domain import Unit

    return Unit(uid, uid, kind, station, [], "", [], "AVAILABLE", lon, lat, fix, True)


def test_distance_is_metres():
    # One hundredth of a degree of latitude is about 1.11 km.
    assert 1100 < distance_m(114.3, 30.58, 114.3, 30.59) < 1125


def test_fight_needs_patrol_and_community_officer_from_the_matrix():
    m = matrix()
    units = [
        unit("far-car", "PATROL_CAR", "S01", 114.33, 30.58),
        unit("near-car", "PATROL_CAR", "S01", 114.301, 30.58),
        unit("cop", "COMMUNITY_OFFICER", "S01", 114.302, 30.58),
        unit("detective", "CRIMINAL_INVESTIGATION", "S01", 114.3001, 30.58),
    ]
    picks, gaps = recommend(units, needs=m.needs("FIGHT", NOON), station_id="S01", lon=114.30, lat=30.58,
                            stale_before=NOON - timedelta(minutes=15))
    assert [(p.unit_id, p.role, p.capability) for p in picks] == [
        ("near-car", "PRIMARY", "PATROL"), ("cop", "SUPPORT", "COMMUNITY")]
    assert not gaps
    assert "辖区内最近" in picks[0].reason and "米" in picks[0].reason


def test_missing_person_at_night_brings_a_drone():
    m = matrix()
    assert [n.capability for n in m.needs("MISSING_PERSON", MIDNIGHT)] == ["PATROL", "DRONE"]
    assert [n.capability for n in m.needs("MISSING_PERSON", NOON)] == ["PATROL", "COMMUNITY"]


def test_neighbour_is_taken_only_when_clearly_faster():
    m = matrix()
    needs = [m.need("PATROL_CAR", "PRIMARY")]
    own_far = unit("own", "PATROL_CAR", "S01", 114.35, 30.58)  # ~4.8 km
    neighbour_near = unit("nb", "PATROL_CAR", "S02", 114.302, 30.58)  # ~0.2 km
    picks, _ = recommend([own_far, neighbour_near], needs=needs, station_id="S01", lon=114.30, lat=30.58,
                         stale_before=None)
    assert picks[0].unit_id == "nb" and picks[0].cross_station and "邻近派出所" in picks[0].reason
    own_close = unit("own", "PATROL_CAR", "S01", 114.305, 30.58)  # ~0.5 km: not 60 s slower
    picks, _ = recommend([own_close, neighbour_near], needs=needs, station_id="S01", lon=114.30, lat=30.58,
                         stale_before=None)
    assert picks[0].unit_id == "own"


def test_stale_position_gets_a_penalty():
    m = matrix()
    needs = [m.need("PATROL_CAR", "PRIMARY")]
    stale = unit("stale", "PATROL_CAR", "S01", 114.301, 30.58, fix=NOON - timedelta(hours=2))
    fresh = unit("fresh", "PATROL_CAR", "S01", 114.306, 30.58)
    picks, _ = recommend([stale, fresh], needs=needs, station_id="S01", lon=114.30, lat=30.58,
                         stale_before=NOON - timedelta(minutes=15))
    assert picks[0].unit_id == "fresh"
    picks, _ = recommend([stale], needs=needs, station_id="S01", lon=114.30, lat=30.58,
                         stale_before=NOON - timedelta(minutes=15))
    assert picks[0].position_stale and "位置信息已过时" in picks[0].reason
    assert picks[0].eta_seconds >= m.stale_penalty_s


def test_lifecycle_moves_only_forward():
    assert can_move("OFFERED", "ACCEPTED") and can_move("CLEARED", "REPORTED_BACK")
    assert not can_move("OFFERED", "ON_SCENE") and not can_move("REPORTED_BACK", "CLEARED")


def test_case_status_follows_its_assignments():
    def a(state):
        return Assignment("a", "c", "u", "u", "PATROL_CAR", "S01", [], "PRIMARY", "PATROL", state, 1, "", 0,
                          NOON, None, NOON)

    assert case_status("PENDING", [a("OFFERED")]) == "PENDING"
    assert case_status("PENDING", [a("ACCEPTED"), a("OFFERED")]) == "DISPATCHED"
    assert case_status("DISPATCHED", [a("ON_SCENE"), a("EN_ROUTE")]) == "ON_SCENE"
    assert case_status("ON_SCENE", [a("CLEARED"), a("DECLINED")]) == "CLEARED"
    assert case_status("CLEARED", [a("REPORTED_BACK"), a("CLEARED")]) == "REPORTED_BACK"
    assert case_status("REPORTED_BACK", [a("REPORTED_BACK"), a("EXPIRED")]) == "CLOSED"
