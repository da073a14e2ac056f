"""Open311 service definitions without I/O: the catalogue's attributes, how a POST's attribute
values are read (form, multipart, JSON) and checked, what a work order keeps of them, and what a
citizen's update puts on the timeline and keeps apart."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from google.api import httpbody_pb2

from sampledata import city
from services.referral12345.domain import SYSTEM, CitizenUpdate, WorkOrder
from services.referral12345.open311 import attribute_values, catalogue, json_fields, parse_georeport_body
from services.runtime.validation import Violations

CHINA = timezone(timedelta(hours=8))
NOW = datetime(2026, 12, 4, 9, 30, tzinfo=CHINA)


def checked(code: str, given: dict[str, list[str]]) -> tuple[list[dict], list[tuple[str, str]]]:
    v = Violations()
    kept = catalogue.check_attributes(code, given, v)
    return kept, v.items


def test_every_defined_service_is_a_catalogue_matter_and_its_definition_is_the_spec_shape():
    matters = {m.code for d in city.departments() for m in d.matters}
    assert set(catalogue.ATTRIBUTES) <= matters
    for code in catalogue.ATTRIBUTES:
        items = catalogue.definition(code)
        assert [a["order"] for a in items] == list(range(1, len(items) + 1))
        for a in items:
            assert a["variable"] is True and a["datatype"] in catalogue.DATATYPES and a["description"]
            assert ("values" in a) == (a["datatype"] in catalogue.LISTS)
            assert all(v["key"] and v["name"] for v in a.get("values", []))
    assert catalogue.definition("WAGE_ARREARS") == []
    [cover, _] = catalogue.definition("MANHOLE_COVER")
    assert cover["code"] == "cover_state" and cover["required"] is True and cover["datatype"] == "singlevaluelist"
    assert {"missing", "broken", "displaced"} <= {v["key"] for v in cover["values"]}


def test_a_list_value_is_kept_with_its_name_and_an_unknown_one_is_refused():
    kept, problems = checked("MANHOLE_COVER", {"cover_state": ["broken"], "on_carriageway": ["sidewalk"]})
    assert problems == []
    assert kept == [{"code": "cover_state", "description": "井盖现状", "value": "broken", "value_text": "破损"},
                    {"code": "on_carriageway", "description": "井盖位于", "value": "sidewalk", "value_text": "人行道"}]
    kept, problems = checked("MANHOLE_COVER", {"cover_state": ["Broken"]})
    assert kept == [] and problems == [
        ("attribute[cover_state]", "'Broken' is not one of its values: missing, broken, displaced, loose, sunken")]
    _, problems = checked("MANHOLE_COVER", {"cover_state": ["broken", "missing"]})
    assert problems == [("attribute[cover_state]", "takes one value")]


def test_a_required_attribute_must_be_answered_and_an_optional_one_may_not_be():
    assert checked("MANHOLE_COVER", {}) == ([], [("attribute[cover_state]", "is required: 井盖现状")])
    assert checked("MANHOLE_COVER", {"cover_state": ["  "]})[1] == [("attribute[cover_state]", "is required: 井盖现状")]
    kept, problems = checked("STREET_LIGHT", {})
    assert kept == [] and problems == []


@pytest.mark.parametrize("raw, problem", [
    ("deep", "must be a number"), ("nan", "must be a number"), ("inf", "must be a number"), ("1e999", "must be a number"),
    ("-1", "must be from 0 to 200"), ("200.5", "must be from 0 to 200"),
])
def test_a_number_must_be_a_finite_number_in_its_range(raw, problem):
    kept, problems = checked("ROAD_DAMAGE", {"damage_size": ["small"], "depth_cm": [raw]})
    assert problems == [("attribute[depth_cm]", problem)]
    assert [a["code"] for a in kept] == ["damage_size"]


def test_a_number_in_range_is_kept_as_sent():
    kept, problems = checked("ROAD_DAMAGE", {"damage_size": ["large"], "depth_cm": ["12.5"]})
    assert problems == []
    assert [(a["value"], a["value_text"]) for a in kept] == [("large", "大于5平方米"), ("12.5", "12.5")]


def test_attributes_the_service_does_not_define_are_ignored():
    kept, problems = checked("STREET_LIGHT", {"easting": ["530000"], "light_fault": ["flicker"]})
    assert problems == [] and [a["code"] for a in kept] == ["light_fault"]
    assert checked("WAGE_ARREARS", {"depth_cm": ["x"]}) == ([], [])


def test_multivalue_and_text_attributes():
    catalogue.ATTRIBUTES["TEST_ONLY"] = (
        catalogue.Attribute("faults", "multivaluelist", "问题", values=(("a", "甲"), ("b", "乙"))),
        catalogue.Attribute("note", "string", "备注"),
        catalogue.Attribute("seen", "datetime", "发现时间"),
    )
    try:
        kept, problems = checked("TEST_ONLY", {"faults": ["a", "b"], "note": ["x"], "seen": ["2026-12-04T08:00:00+08:00"]})
        assert problems == []
        assert [(a["value"], a["value_text"]) for a in kept] == [("a,b", "甲、乙"), ("x", "x"),
                                                                ("2026-12-04T08:00:00+08:00", "2026-12-04T08:00:00+08:00")]
        _, problems = checked("TEST_ONLY", {"faults": ["a", "a"], "note": ["x" * 201], "seen": ["2026-12-04T08:00:00"]})
        assert [p[0] for p in problems] == ["attribute[faults]", "attribute[note]", "attribute[seen]"]
        # One value with the keys comma-separated (the gRPC face's map) is the same list.
        assert checked("TEST_ONLY", {"faults": ["a, b"]})[0][0]["value"] == "a,b"
        assert checked("TEST_ONLY", {"note": ["a\x00b"]})[1] == [("attribute[note]", "must not contain a NUL character")]
    finally:
        del catalogue.ATTRIBUTES["TEST_ONLY"]


def form(data: bytes, content_type: str = "application/x-www-form-urlencoded") -> dict:
    v = Violations()
    out = parse_georeport_body(httpbody_pb2.HttpBody(content_type=content_type, data=data), v)
    assert v.items == []
    return out


def test_attribute_keys_are_read_from_form_json_and_multipart_bodies():
    given = form(b"service_code=ROAD_DAMAGE&attribute%5Bdamage_size%5D=small&attribute%5Bdepth_cm%5D=4"
                 b"&attribute%5Bx%5D%5B%5D=1&attribute%5Bx%5D%5B%5D=2&unknown=1")
    assert given == {"service_code": "ROAD_DAMAGE", "attribute[damage_size]": ["small"],
                     "attribute[depth_cm]": ["4"], "attribute[x]": ["1", "2"]}
    assert attribute_values(given) == {"damage_size": ["small"], "depth_cm": ["4"], "x": ["1", "2"]}
    assert json_fields({"service_code": "MANHOLE_COVER", "attribute": {"cover_state": "missing", "n": [1, 2]},
                        "attribute[depth_cm]": 3}) == {
        "service_code": "MANHOLE_COVER", "attribute[cover_state]": ["missing"], "attribute[n]": ["1", "2"],
        "attribute[depth_cm]": ["3"]}
    multipart = (b"--b\r\nContent-Disposition: form-data; name=\"attribute[cover_state]\"\r\n\r\nloose\r\n"
                 b"--b\r\nContent-Disposition: form-data; name=\"service_code\"\r\n\r\nMANHOLE_COVER\r\n--b--\r\n")
    assert form(multipart, "multipart/form-data; boundary=b") == {
        "attribute[cover_state]": ["loose"], "service_code": "MANHOLE_COVER"}


def test_a_work_order_keeps_its_answers_and_says_them_on_its_timeline():
    answers = checked("MANHOLE_COVER", {"cover_state": ["missing"]})[0]
    order = WorkOrder.receive(dict(source="OPEN311", matter_code="MANHOLE_COVER", description="井盖没了", urgency=4,
                                   service_attributes=answers), actor=SYSTEM, now=NOW)
    assert order.service_attributes == answers
    assert [(e.action, e.detail) for e in order.timeline][1] == ("SERVICE_ATTRIBUTES", "市民填写的事项信息：井盖现状：缺失")
    plain = WorkOrder.receive(dict(source="OPEN311", matter_code="WAGE_ARREARS", description="欠薪", urgency=4),
                              actor=SYSTEM, now=NOW)
    assert "SERVICE_ATTRIBUTES" not in [e.action for e in plain.timeline]


def update(**extra) -> CitizenUpdate:
    return CitizenUpdate(**{"work_order_id": "20261204-abc", "client": "c" * 16, "client_update_id": "77",
                            "fingerprint": "f" * 64, "status": "OPEN", "description": "还是不亮", "create_time": NOW,
                            **extra})


def test_a_citizen_update_leaves_the_senders_contact_off_the_timeline():
    u = update(description="我是张 三，邮箱zs@example.cn，电话13900001111，张三再说一次", first_name="三", last_name="张",
               email="zs@example.cn", phone="13900001111", status="CLOSED", media_url="https://img.example.cn/1.jpg")
    assert u.timeline_detail() == ("市民补充说明（Open311）：我是某市民，邮箱[邮箱]，电话[电话]，某市民再说一次；附图片（见附件）"
                                   "（市民表示问题已解决）")
    assert update().timeline_detail() == "市民补充说明（Open311）：还是不亮"
    assert update(status="REOPEN").timeline_detail().endswith("（市民表示问题仍未解决）")
    u.timeline_seq = 42
    assert u.update_id == "20261204-abc-42"


def test_erasing_a_contact_keeps_what_makes_a_repeat_known():
    u = update(first_name="三", last_name="张", email="zs@example.cn", phone="13900001111")
    assert u.erase_contact(NOW) is True
    assert (u.first_name, u.last_name, u.email, u.phone, u.description) == ("", "", "", "", "")
    assert (u.client, u.client_update_id, u.fingerprint, u.contact_erase_time) == ("c" * 16, "77", "f" * 64, NOW)
    assert u.erase_contact(NOW + timedelta(days=1)) is False and u.contact_erase_time == NOW


def test_a_citizen_update_is_an_entry_and_an_attachment_and_changes_nothing_else():
    order = WorkOrder.receive(dict(source="OPEN311", matter_code="STREET_LIGHT", description="路灯不亮", urgency=4),
                              actor=SYSTEM, now=NOW)
    order.pull_events()
    status = order.status
    order.add_citizen_update("市民补充说明（Open311）：还是不亮", "https://img.example.cn/2.jpg", SYSTEM, NOW)
    assert order.status == status and order.timeline[-1].action == "CITIZEN_UPDATE"
    assert order.attachments[-1]["storage_uri"] == "https://img.example.cn/2.jpg"
    [event] = order.pull_events()
    assert event.action == "CITIZEN_UPDATE" and [e.action for e in event.entries] == ["CITIZEN_UPDATE"]
