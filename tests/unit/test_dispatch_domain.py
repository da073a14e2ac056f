"""Dispatch recommendation without a database."""
from __future__ import annotations

from services.dispatch.domain import Unit, distance_m, eta_seconds, recommend_first_responder


def unit(uid, kind, station, lon, lat, status="AVAILABLE", on_duty=True):
    return Unit(uid, uid, kind, station, [], "", [], status, lon, lat, None, on_duty)


def test_distance_is_metres():
    # One hundredth of a degree of latitude is about 1.11 km.
    assert 1100 < distance_m(114.3, 30.58, 114.3, 30.59) < 1125


def test_nearest_available_on_duty_unit_of_the_station_comes_first_with_a_reason():
    units = [
        unit("far-car", "PATROL_CAR", "S01", 114.40, 30.58),
        unit("near-car", "PATROL_CAR", "S01", 114.301, 30.58),
        unit("busy", "PATROL_CAR", "S01", 114.3001, 30.58, status="BUSY"),
        unit("off", "PATROL_CAR", "S01", 114.3001, 30.58, on_duty=False),
        unit("other-station", "PATROL_CAR", "S02", 114.3002, 30.58),
        unit("detective", "CRIMINAL_INVESTIGATION", "S01", 114.3001, 30.58),
    ]
    picks = recommend_first_responder(units, station_id="S01", lon=114.30, lat=30.58)
    assert [p.unit_id for p in picks] == ["near-car", "far-car"]
    assert picks[0].role == "PRIMARY" and picks[1].role == "SUPPORT"
    assert "辖区内" in picks[0].reason and "米" in picks[0].reason
    assert picks[0].eta_seconds == eta_seconds("PATROL_CAR", picks[0].distance_m)


def test_neighbouring_station_is_used_when_the_own_station_has_nobody():
    units = [unit("neighbour", "FOOT_PATROL", "S02", 114.31, 30.58)]
    picks = recommend_first_responder(units, station_id="S01", lon=114.30, lat=30.58)
    assert [p.unit_id for p in picks] == ["neighbour"]
    assert "邻近派出所" in picks[0].reason


def test_a_car_is_faster_than_a_foot_patrol_at_the_same_distance():
    assert eta_seconds("PATROL_CAR", 1000) < eta_seconds("FOOT_PATROL", 1000)
