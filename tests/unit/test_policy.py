"""Jurisdiction from a caller's roles and claims, and the per-service access table."""
from __future__ import annotations

import pytest

from services.runtime.auth import AuthContext
from services.runtime.errors import NotFound, PermissionDenied
from services.runtime.policy import (Access, Jurisdiction, Org, Policy, check_claims, in_jurisdiction,
                                     jurisdiction_of, org)

ORG = Org({"S01": "420102", "S02": "420102", "S05": "420106"})


def who(*roles, **claims) -> AuthContext:
    return AuthContext(subject="p", roles=frozenset(roles), **claims)


def test_station_roles_see_their_station_only():
    j = jurisdiction_of(who("officer", station="S01"), ORG)
    assert j.sees("S01") and not j.sees("S05") and not j.everything
    assert jurisdiction_of(who("call_taker", station="S01"), ORG).stations == {"S01"}


def test_a_station_role_without_a_station_sees_nothing():
    assert jurisdiction_of(who("officer"), ORG).nothing
    assert jurisdiction_of(who("station_chief"), ORG).nothing


def test_district_and_city_command():
    assert jurisdiction_of(who("district_commander", district="420102"), ORG).stations == {"S01", "S02"}
    assert jurisdiction_of(who("commander", district="420106"), ORG).stations == {"S05"}
    assert jurisdiction_of(who("commander"), ORG).everything
    assert jurisdiction_of(who("dispatcher"), ORG).everything, "the city 110 centre"
    assert jurisdiction_of(who("district_commander"), ORG).nothing


def test_a_city_commander_commands_the_city_wherever_he_sits():
    assert jurisdiction_of(who("commander", station="S01"), ORG).everything
    home = jurisdiction_of(who("district_commander", station="S05"), ORG)
    assert home.stations == {"S05"} and home.district == "420106", "the district of the station he sits at"
    assert jurisdiction_of(who("supervisor"), ORG).everything, "督察 supervises both lines city-wide"
    assert jurisdiction_of(who("supervisor", station="S01"), ORG).stations == set(), "a station supervisor is no police role"


def test_lists_are_narrowed_to_the_jurisdiction_and_other_stations_refused():
    station = Jurisdiction(stations=frozenset({"S01", "S02"}))
    assert station.stations_for("") == {"S01", "S02"}
    assert station.stations_for("S02") == {"S02"}
    assert station.stations_for(["S01", "S02"]) == {"S01", "S02"}
    with pytest.raises(PermissionDenied) as err:
        station.stations_for(["S01", "S05"], "station_ids")
    assert err.value.reason == "OUT_OF_JURISDICTION" and err.value.metadata["stations"] == "S05"
    assert Jurisdiction(everything=True).stations_for("") is None
    assert Jurisdiction(everything=True).stations_for("S05") == {"S05"}
    assert Jurisdiction().stations_for("") == frozenset(), "nothing in view: an empty list, not the city"


def test_an_out_of_scope_resource_is_not_found():
    station = Jurisdiction(stations=frozenset({"S01"}))
    in_jurisdiction(station, "cases/c1", "S05", "S01")  # assigned across stations: in view
    with pytest.raises(NotFound):
        in_jurisdiction(station, "cases/c1", "S05")
    with pytest.raises(NotFound):
        in_jurisdiction(station, "reports/r1", "")


def test_hotline_agents_see_every_work_order_and_departments_their_own():
    agent = jurisdiction_of(who("hotline_agent"), ORG)
    assert agent.covers_department("D07") and not agent.sees("S01")
    dept = jurisdiction_of(who("department", department="D01"), ORG)
    assert dept.covers_department("D01") and not dept.covers_department("D02")


def test_people_without_police_roles_see_no_police_data():
    for ctx in (who(), who("expert"), who("hotline_agent"), who("department", department="D1")):
        j = jurisdiction_of(ctx, ORG)
        assert not j.everything and not j.stations
    assert jurisdiction_of(who("department", department="D1"), ORG).covers_department("D1")
    assert jurisdiction_of(who("service"), ORG).everything


def test_claims_must_name_real_stations_and_districts():
    check_claims(who("officer", station="S01"), ORG)
    with pytest.raises(PermissionDenied) as err:
        check_claims(who("officer", station="S99"), ORG)
    assert err.value.reason == "STATION_UNKNOWN"
    with pytest.raises(PermissionDenied) as err:
        check_claims(who("district_commander", district="999999"), ORG)
    assert err.value.reason == "DISTRICT_UNKNOWN"


def test_the_table_names_roles_and_refuses_what_it_does_not_list():
    policy = Policy("test.Svc", {"GetThing": Access("officer", "commander")})
    assert policy.authorize("/test.Svc/GetThing", who("commander")).everything
    with pytest.raises(PermissionDenied) as err:
        policy.authorize("/test.Svc/GetThing", who("expert"))
    assert err.value.reason == "ROLE_REQUIRED"
    with pytest.raises(PermissionDenied) as err:
        policy.authorize("/test.Svc/DeleteThing", who("commander"))
    assert err.value.reason == "NO_POLICY"
    assert policy.missing(["GetThing", "DeleteThing"]) == ["DeleteThing"]
    with pytest.raises(ValueError):
        Access("superuser")


def test_the_sample_city_is_the_default_directory():
    assert org().knows_station("S01") and org().stations_of(org().district_of["S01"])
