"""Invariants of the generated sample city that services and tests rely on."""

import itertools
import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import shapely
from shapely.geometry import Point, Polygon

import sampledata
from sampledata import city

REPO = Path(__file__).resolve().parents[2]
AREA_EPS = 1e-12  # square degrees, about 0.01 m²
MOBILE = re.compile(r"^1[3-9]\d{9}$")


def assert_tiles(parent: Polygon, children: list[Polygon], what: str) -> None:
    union = shapely.union_all(children)
    assert abs(union.area - parent.area) <= AREA_EPS, what
    assert union.symmetric_difference(parent).area <= AREA_EPS, what
    assert abs(sum(c.area for c in children) - parent.area) <= AREA_EPS, what
    for a, b in itertools.combinations(children, 2):
        assert a.intersection(b).area <= AREA_EPS, what


def test_city_outline_is_irregular_and_in_range():
    outline = city.city_outline()
    poly = outline.polygon
    assert outline.name == "江城市"
    assert poly.is_valid and poly.geom_type == "Polygon"
    minx, miny, maxx, maxy = poly.bounds
    assert 114.20 <= minx < maxx <= 114.50
    assert 30.45 <= miny < maxy <= 30.70
    # Not a rectangle: clearly smaller than its bounding box, many vertices.
    assert poly.area < 0.95 * shapely.box(*poly.bounds).area
    assert len(outline.rings[0]) > 20


def test_rings_match_polygons_and_are_geojson():
    items = [city.city_outline(), *city.districts(), *city.stations(), *city.grids()]
    for item in items:
        ring = item.rings[0]
        assert ring[0] == ring[-1]
        rebuilt = Polygon(ring, item.rings[1:])
        assert rebuilt.equals(item.polygon)
        assert shapely.is_ccw(shapely.LinearRing(ring))  # RFC 7946 exterior orientation
        gj = item.geojson()
        assert gj["type"] == "Polygon"
        assert shapely.geometry.shape(json.loads(json.dumps(gj))).equals(item.polygon)


def test_districts_tile_the_city():
    ds = city.districts()
    assert len(ds) == 6
    assert [d.kind for d in ds].count("COUNTY") == 1
    assert {d.name for d in ds} == {"江岸区", "江汉区", "硚口区", "汉阳区", "武昌区", "新洲县"}
    assert len({d.district_id for d in ds}) == 6
    for d in ds:
        assert d.polygon.is_valid and d.polygon.geom_type == "Polygon"
    assert_tiles(city.city_outline().polygon, [d.polygon for d in ds], "districts")


def test_stations_tile_their_district():
    sts = city.stations()
    assert len(sts) >= 24
    assert [s.station_id for s in sts] == [f"S{i:02d}" for i in range(1, len(sts) + 1)]
    assert len({s.name for s in sts}) == len(sts)
    assert len({s.phone for s in sts}) == len(sts)
    for d in city.districts():
        mine = [s for s in sts if s.district_id == d.district_id]
        assert len(mine) >= 3, d.name
        assert_tiles(d.polygon, [s.polygon for s in mine], d.name)
    for s in sts:
        assert s.name.startswith(s.district_name) and s.name.endswith("派出所")
        assert s.place in s.name
        assert s.polygon.contains(s.hq_point), s.station_id
        assert re.fullmatch(r"027-8\d{7}", s.phone)


def test_grids_tile_their_station():
    gs = city.grids()
    by_station = {}
    for g in gs:
        by_station.setdefault(g.station_id, []).append(g)
    assert set(by_station) == {s.station_id for s in city.stations()}
    for s in city.stations():
        mine = by_station[s.station_id]
        assert 4 <= len(mine) <= 9, s.station_id
        assert [g.grid_id for g in mine] == [f"{s.station_id}-G{i:02d}" for i in range(1, len(mine) + 1)]
        assert_tiles(s.polygon, [g.polygon for g in mine], s.station_id)
        for i, g in enumerate(mine, start=1):
            assert g.name == f"{s.place}社区第{i}网格"
    targets = Counter(g.arrival_target_s for g in gs)
    assert set(targets) == {60, 180, 300}
    # Central grids get the shortest targets.
    centre = Point(114.35, 30.575)
    mean_dist = {t: sum(g.polygon.centroid.distance(centre) for g in gs if g.arrival_target_s == t) / n
                 for t, n in targets.items()}
    assert mean_dist[60] < mean_dist[180] < mean_dist[300]


def test_units():
    us = city.units()
    sts = {s.station_id: s for s in city.stations()}
    gs = {g.grid_id: g for g in city.grids()}
    assert len({u.unit_id for u in us}) == len(us)
    assert len({u.call_sign for u in us}) == len(us)
    officer_ids = [o.officer_id for u in us for o in u.officers]
    assert len(set(officer_ids)) == len(officer_ids)
    assert all(re.fullmatch(r"P110\d{4}", o) for o in officer_ids)
    plates = [u.plate for u in us if u.plate]
    assert len(set(plates)) == len(plates)
    assert set(Counter(u.kind for u in us)) == set(city.UNIT_KINDS)
    for u in us:
        st = sts[u.station_id]
        assert re.fullmatch(rf"U-{u.station_id}-\d{{3}}", u.unit_id)
        assert st.polygon.contains(u.home_point), u.unit_id
        assert u.kind in city.UNIT_KINDS
        assert u.scope in ("STATION", "DISTRICT", "CITY")
        assert u.skills and all(s in city.SKILL_LABELS for s in u.skills)
        assert u.officers and all(o.name for o in u.officers)
        if u.kind == "PATROL_CAR":
            assert re.fullmatch(r"鄂A·\d{4}警", u.plate)
        if u.kind == "COMMUNITY_OFFICER":
            assert 1 <= len(u.grid_ids) <= 2
            assert all(gs[g].station_id == u.station_id for g in u.grid_ids)
            assert gs[u.grid_ids[0]].polygon.contains(u.home_point)
        else:
            assert u.grid_ids == ()
    for sid in sts:
        mine = [u for u in us if u.station_id == sid]
        kinds = Counter(u.kind for u in mine)
        assert 2 <= kinds["PATROL_CAR"] <= 4
        assert 1 <= kinds["FOOT_PATROL"] <= 3
        covered = [g for u in mine for g in u.grid_ids]
        assert sorted(covered) == sorted(g for g in gs if gs[g].station_id == sid), sid


def test_departments():
    deps = city.departments()
    assert len(deps) >= 32
    assert [d.dept_id for d in deps] == [f"D{i:02d}" for i in range(1, len(deps) + 1)]
    assert len({d.name for d in deps}) == len(deps)
    names = " ".join(d.name for d in deps)
    for short in ("城市管理", "交通运输局", "燃气", "市政园林局", "住房和城乡建设局", "市场监督管理局",
                  "人力资源和社会保障局", "供电公司", "水务集团", "街道办事处", "生态环境局",
                  "卫生健康委员会", "教育局", "民政局", "交通管理局", "房屋管理局", "文化和旅游局",
                  "应急管理局", "消防救援支队"):
        assert short in names, short
    district_names = {d.name for d in city.districts()}
    labels: dict[str, set[str]] = {}
    for d in deps:
        assert d.matters and d.supervisor and re.fullmatch(r"027-8\d{7}", d.phone)
        assert set(d.districts) <= district_names
        for m in d.matters:
            assert city.MATTERS[m.code] == m.label
            labels.setdefault(m.code, set()).add(m.label)
    assert all(len(v) == 1 for v in labels.values())
    assert len(set(city.MATTERS.values())) == len(city.MATTERS)
    # Every matter is handled somewhere, and in every district for the street offices' matters.
    handled = {m.code for d in deps for m in d.matters}
    assert handled == set(city.MATTERS)
    for code in ("NOISE", "GAS_LEAK", "ILLEGAL_PARKING", "WATER_OUTAGE"):
        for dn in district_names:
            assert any(code in d.matter_codes and d.covers(dn) for d in deps), (code, dn)
    assert any(not d.citywide for d in deps) and any(d.citywide for d in deps)


def test_sample_reports():
    reports = city.sample_reports()
    assert len(reports) >= 40
    assert len({r["report_id"] for r in reports}) == len(reports)
    assert {r["expected_category"] for r in reports} == set(city.REPORT_CATEGORIES)
    assert {r["channel"] for r in reports} == set(city.REPORT_CHANNELS)
    types = {r["expected_incident_type"] for r in reports}
    for code in ("FIGHT", "THEFT", "TELECOM_FRAUD", "TRAFFIC_ACCIDENT", "NOISE", "MISSING_PERSON",
                 "GAS_LEAK", "ILLEGAL_PARKING", "CONSULTATION_HOUSEHOLD", "PRANK"):
        assert code in types, code
    outline = city.city_outline().polygon
    sts = {s.station_id: s for s in city.stations()}
    deps = city.departments()
    phones = [r["caller_phone"] for r in reports]
    assert len(set(phones)) == len(phones)
    address_only = 0
    for r in reports:
        assert MOBILE.match(r["caller_phone"]), r["report_id"]
        assert r["caller_name"] is None or isinstance(r["caller_name"], str)
        assert re.search(r"[\u4e00-\u9fff]", r["description"])
        assert "{" not in r["description"] and "{" not in r["address"]
        itype = city.INCIDENT_TYPES[r["expected_incident_type"]]
        assert itype.category == r["expected_category"]
        loc = r["location"]
        if loc is not None:
            pt = Point(loc["longitude"], loc["latitude"])
            assert outline.contains(pt), r["report_id"]
            assert sts[r["expected_station_id"]].polygon.contains(pt), r["report_id"]
        elif r["address"]:
            address_only += 1
        if r["expected_station_id"]:
            assert r["address"].startswith(r["expected_district"])
        if r["expected_category"] == "NON_POLICE" and r["expected_district"]:
            assert any(itype.code in d.matter_codes and d.covers(r["expected_district"]) for d in deps)
    assert address_only >= 2
    # Callers get fresh copies.
    reports[0]["description"] = "changed"
    assert city.sample_reports()[0]["description"] != "changed"


def test_package_exports_and_generation_is_cached():
    for name in ("city_outline", "districts", "stations", "grids", "units", "departments", "sample_reports"):
        assert getattr(sampledata, name) is getattr(city, name)
    # Generated once per process: every service's seed and every test reads the same objects.
    city.dataset_fingerprint()
    hits = city.dataset_fingerprint.cache_info().hits
    assert city.dataset_fingerprint() == city.dataset_fingerprint()
    assert city.dataset_fingerprint.cache_info().hits == hits + 2
    assert city.stations() is city.stations() and city.grids() is city.grids()


def test_generation_is_deterministic():
    code = "import sampledata; print(sampledata.dataset_fingerprint())"
    outs = [
        subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip()
        for seed in ("1", "2")
    ]
    assert outs[0] == outs[1] == city.dataset_fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", outs[0])
