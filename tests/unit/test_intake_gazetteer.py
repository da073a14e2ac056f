"""The sample gazetteer and address matching, without a database."""
from __future__ import annotations

import re

import pytest

import sampledata as sd
from sampledata import gazetteer as sample
from services.intake.domain import Address
from services.intake.gazetteer import MIN_LOCATING_CONFIDENCE, Gazetteer, normalize


@pytest.fixture(scope="module")
def gazetteer():
    return Gazetteer([Address(a.code, a.full_address, a.district, a.street, a.community, a.road, a.house_number,
                              a.building, a.lon, a.lat, a.station_id, a.grid_id) for a in sample.addresses()])


def test_sample_gazetteer_codes_points_and_names():
    addresses = sample.addresses()
    assert 3000 <= len(addresses) <= 10000
    assert len({a.code for a in addresses}) == len(addresses)
    stations = {s.station_id: s for s in sd.stations()}
    grids = {g.grid_id: g for g in sd.grids()}
    districts = {d.district_id: d.name for d in sd.districts()}
    from shapely.geometry import Point
    for a in addresses:
        assert re.fullmatch(r"\d{21}", a.code)
        assert a.code[:6] == a.district_id and districts[a.district_id] == a.district
        assert a.full_address.startswith(sd.CITY_NAME + a.district + a.street + a.community + a.road)
        assert a.street.endswith("街道") and a.community.endswith("社区") and a.house_number.endswith("号")
        assert (a.code[-2:] == "00") == (not a.building or not a.building.endswith("栋"))
        assert grids[a.grid_id].polygon.contains(Point(a.lon, a.lat))
        assert grids[a.grid_id].station_id == a.station_id and stations[a.station_id].district_name == a.district
    assert {a.station_id for a in addresses} == set(stations)
    assert {a.grid_id for a in addresses} == set(grids)


def test_exact_code_and_exact_text(gazetteer):
    a = sample.addresses()[100]
    m = gazetteer.match(code=a.code)
    assert (m.method, m.confidence, m.address.code) == ("EXACT_CODE", 1.0, a.code)
    m = gazetteer.match(text=a.full_address.removeprefix(sd.CITY_NAME))
    assert (m.method, m.confidence, m.address.code) == ("EXACT_TEXT", 1.0, a.code)
    prefix = gazetteer.search(a.code[:12], limit=5)
    assert prefix and all(x.code.startswith(a.code[:12]) and m == "EXACT_CODE" for x, _, m in prefix)


def test_fuzzy_text_finds_the_right_address_despite_filler_and_punctuation(gazetteer):
    a = next(x for x in sample.addresses() if x.building.endswith("栋"))
    said = f"{a.district} {a.road}{a.house_number}，{a.building}附近"
    m = gazetteer.match(text=said)
    assert m.method == "FUZZY_TEXT" and m.address.code == a.code
    assert MIN_LOCATING_CONFIDENCE <= m.confidence < 1


def test_every_sample_address_only_report_routes_to_its_station(gazetteer):
    for r in sd.sample_reports():
        if r["address"] and r["expected_station_id"]:
            best = gazetteer.search(r["address"], limit=1)
            assert best and best[0][0].station_id == r["expected_station_id"], (r["address"], best)


def test_scores_rank_and_nonsense_does_not_locate(gazetteer):
    results = gazetteer.search("汉阳区琴断口", limit=10)
    assert len(results) == 10
    assert [s for _, s, _ in results] == sorted((s for _, s, _ in results), reverse=True)
    assert all(a.district == "汉阳区" for a, _, _ in results)
    assert gazetteer.match(text="火星基地").method == "NO_MATCH"
    assert gazetteer.search("", limit=5) == []


def test_a_named_street_routes_to_its_station_when_no_address_matches(gazetteer):
    m = gazetteer.match(text="新洲县邾城农贸市场")  # no market is listed in 邾城; the street is
    assert m.method == "STREET" and m.confidence < MIN_LOCATING_CONFIDENCE
    assert m.address.station_id == "S23" and m.address.street == "邾城街道"


def test_district_filter(gazetteer):
    assert all(a.district == "新洲县" for a, _, _ in gazetteer.search("中山大道", limit=20, district="新洲县"))


def test_normalize_full_width_and_filler():
    assert normalize("江岸区　大智路１８号 旁边。") == "江岸区大智路18号"
