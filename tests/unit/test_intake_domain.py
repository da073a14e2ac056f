"""Intake rules without a database: validation, classification, jurisdiction."""
from __future__ import annotations

import pytest

import sampledata as sd
from services.intake.domain import Attachment, JurisdictionIndex, GridArea, StationArea, classify, validate_new_report
from services.runtime.validation import Violations


def fields(**over):
    base = dict(channel="PHONE", caller_phone="13912345678", caller_name="李女士", lon=114.3, lat=30.58,
                accuracy_m=10.0, address_text="", description="有人打架", attachments=[])
    base.update(over)
    return base


def violations(**over) -> dict[str, str]:
    v = Violations()
    validate_new_report(fields(**over), v)
    return dict(v.items)


def test_a_good_report_passes():
    assert violations() == {}


@pytest.mark.parametrize("over, field", [
    (dict(channel=""), "report.channel"),
    (dict(caller_phone="12345"), "report.caller.phone_number"),
    (dict(lon=181.0), "report.location.point.longitude"),
    (dict(lat=-91.0), "report.location.point.latitude"),
    (dict(lon=None, lat=None, address_text=""), "report.location"),
    (dict(description=""), "report.description"),
    (dict(description="打" * 2001), "report.description"),
])
def test_bad_input_names_the_field(over, field):
    assert field in violations(**over)


def test_landline_and_address_only_reports_are_accepted():
    assert violations(caller_phone="027-85551234", lon=None, lat=None, address_text="江岸区大智路18号") == {}


def test_attachments_of_unknown_kind_or_oversize_are_rejected():
    good = Attachment("IMAGE", "image/jpeg", 1000, "a" * 64, "s3://evidence/1.jpg")
    assert violations(description="", attachments=[good]) == {}
    bad = violations(attachments=[
        Attachment("UNSPECIFIED", "x/y", 1, "a" * 64, "s3://x"),
        Attachment("VIDEO", "video/mp4", 600 * 1024 * 1024, "a" * 64, "s3://v.mp4"),
    ])
    assert "report.attachments[0].kind" in bad
    assert "report.attachments[1].size_bytes" in bad


def test_classification_explains_itself():
    c = classify("我刚才被人冒充客服骗了，转账了五千元", "PHONE")
    assert (c.category, c.incident_type, c.priority) == ("POLICE", "TELECOM_FRAUD", 2)
    assert "诈骗" in c.reason or "转账" in c.reason or "被骗" in c.reason
    assert c.rule_ids


def test_police_matter_wins_over_consultation():
    c = classify("请问，有人在楼下打架怎么办", "WECHAT")
    assert c.category == "POLICE" and c.incident_type == "FIGHT"


def test_consultation_and_non_police_requests():
    assert classify("身份证补办需要什么材料", "APP").category == "CONSULTATION"
    assert classify("有车违章停车堵住车库出口", "PHONE").category == "NON_POLICE"


def test_silent_alarm_is_urgent_without_keywords():
    c = classify("", "SILENT_ALARM")
    assert c.category == "POLICE" and c.priority == 1


@pytest.fixture(scope="module")
def index():
    stations = [StationArea(s.station_id, s.name, s.district_name, s.hq[0], s.hq[1], s.polygon) for s in sd.stations()]
    grids = [GridArea(g.grid_id, g.station_id, g.name, g.arrival_target_s, g.polygon) for g in sd.grids()]
    return JurisdictionIndex(stations, grids)


def test_every_station_headquarters_lies_in_its_own_jurisdiction(index):
    for s in sd.stations():
        located = index.locate(*s.hq)
        assert located.station_id == s.station_id
        assert located.grid_id.startswith(s.station_id + "-G")


def test_grid_interior_points_locate_to_that_grid(index):
    for g in sd.grids()[:40]:
        p = g.polygon.representative_point()
        located = index.locate(p.x, p.y)
        assert (located.station_id, located.grid_id) == (g.station_id, g.grid_id)


def test_point_outside_every_jurisdiction_goes_to_the_nearest_station_as_a_border_case(index):
    outline = sd.city_outline().polygon
    minx, miny, maxx, maxy = outline.bounds
    located = index.locate(maxx + 0.01, (miny + maxy) / 2)
    assert located.border_case
    assert located.distance_m > 500
    nearest = min(sd.stations(), key=lambda s: s.polygon.distance(
        __import__("shapely").geometry.Point(maxx + 0.01, (miny + maxy) / 2)))
    assert located.station_id == nearest.station_id


def test_sample_reports_route_to_their_expected_station(index):
    checked = 0
    for r in sd.sample_reports():
        if r["location"] and r["expected_station_id"]:
            loc = index.locate(r["location"]["longitude"], r["location"]["latitude"])
            assert loc.station_id == r["expected_station_id"], r["description"]
            checked += 1
    assert checked >= 30
