"""The Open311 GeoReport v2 HTTP face (XML and JSON) against a real Postgres, checked against the
specification's shapes (tests/open311_conformance.py); through the gateway with a real client in e2e."""
from __future__ import annotations

import warnings
from datetime import timedelta

import pytest

with warnings.catch_warnings():
    # Starlette's test client still runs on httpx, which the project pins.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


from sqlalchemy import select

from smart110.referral.v1 import referral_service_pb2 as pb

from services.referral12345 import handlers, store
from services.referral12345.open311 import Open311Servicer
from services.referral12345.open311.http import create_app
from tests.integration.referral_support import (
    HANYANG_S15, OPEN311_API_KEY, phone, resolve_as_department, rid, serving_suite,
)
from tests.open311_conformance import (
    DISCOVERY, ERROR, RECEIPT, SERVICE, SERVICE_DEFINITION, SERVICE_REQUEST, TOKEN, UPDATE, array_of, check,
    parse_xml, xml_errors, xml_items,
)

XML = "text/xml; charset=utf-8"
JSON = "application/json; charset=utf-8"


@pytest.fixture(scope="module")
def suite(admin_url):
    with serving_suite(admin_url) as s:
        yield s


@pytest.fixture(scope="module")
def http(suite):
    servicer = Open311Servicer(suite.referral_rt, api_keys=[OPEN311_API_KEY])
    with TestClient(create_app(servicer), base_url="http://open311.test") as client:
        yield client


def light(**extra) -> dict:
    lon, lat = HANYANG_S15
    return {"api_key": OPEN311_API_KEY, "service_code": "STREET_LIGHT", "lat": str(lat), "long": str(lon),
            "description": f"琴台路口路灯不亮 {rid()[:6]}", **extra}


def post(http, fields: dict, fmt: str = "json", **kw):
    return http.post(f"/open311/v2/requests.{fmt}", data=fields, **kw)


def test_services_in_both_formats_are_described_and_grouped_by_category(http):
    resp = http.get("/open311/v2/services.json")
    assert resp.status_code == 200 and resp.headers["content-type"] == JSON
    services = resp.json()
    check(services, array_of(SERVICE, 70))
    assert all(s["description"] and s["keywords"] and s["group"] for s in services)
    by_code = {s["service_code"]: s for s in services}
    assert by_code["STREET_LIGHT"]["group"] == "城市管理"
    assert "江城市市政园林局" in by_code["STREET_LIGHT"]["description"]
    assert "路灯" in by_code["STREET_LIGHT"]["keywords"].split(",")
    assert by_code["WAGE_ARREARS"]["group"] == "劳动社保"
    xml = http.get("/open311/v2/services.xml")
    assert xml.status_code == 200 and xml.headers["content-type"] == XML
    items = xml_items(xml.content, "services", "service")
    assert [i["service_code"] for i in items] == list(by_code)
    assert items[0]["metadata"] == "false" and items[0]["type"] == "realtime"
    # Services with a definition say so, in both formats; the others do not.
    with_attributes = {s["service_code"] for s in services if s["metadata"]}
    assert with_attributes == {"MANHOLE_COVER", "ROAD_DAMAGE", "STREET_LIGHT"}
    assert {i["service_code"] for i in items if i["metadata"] == "true"} == with_attributes
    assert items[0]["group"] == services[0]["group"]


def test_service_definitions_and_discovery(http):
    one = http.get("/open311/v2/services/WAGE_ARREARS.json")
    assert one.status_code == 200
    check(one.json(), SERVICE_DEFINITION)
    assert one.json() == {"service_code": "WAGE_ARREARS", "attributes": []}
    doc = parse_xml(http.get("/open311/v2/services/WAGE_ARREARS.xml").content)
    assert doc.tag == "service_definition" and doc.findtext("service_code") == "WAGE_ARREARS"
    assert doc.find("attributes") is not None and len(doc.find("attributes")) == 0
    for fmt in ("json", "xml"):
        missing = http.get(f"/open311/v2/services/NO_SUCH_SERVICE.{fmt}")
        assert missing.status_code == 404
        found = missing.json() if fmt == "json" else xml_errors(missing.content)
        assert found == [{"code": 404, "description": "service_code 'NO_SUCH_SERVICE' does not exist"}]
    discovery = http.get("/open311/v2/discovery.json")
    check(discovery.json(), DISCOVERY)
    assert discovery.json()["endpoints"][0]["url"] == "http://open311.test/open311/v2"
    doc = parse_xml(http.get("/open311/v2/discovery.xml").content)
    assert [f.text for f in doc.find("endpoints/endpoint/formats")] == ["text/xml", "application/json"]


def test_a_form_post_in_either_format_reads_back_conforming_with_no_empty_uri_or_date(http):
    resp = post(http, light())
    assert resp.status_code == 200, resp.text
    [receipt] = resp.json()
    check(receipt, RECEIPT)
    assert "token" not in receipt and "办理时限" in receipt["service_notice"]
    request_id = receipt["service_request_id"]
    [one] = http.get(f"/open311/v2/requests/{request_id}.json").json()
    check(one, SERVICE_REQUEST)
    assert "media_url" not in one, "no picture: no media_url at all, not an empty one"
    assert one["status"] == "open" and one["service_code"] == "STREET_LIGHT"

    xml = post(http, light(media_url="https://img.example.cn/311/light.jpg"), fmt="xml")
    assert xml.status_code == 200 and xml.headers["content-type"] == XML
    [xml_receipt] = xml_items(xml.content, "service_requests", "request")
    xml_id = xml_receipt["service_request_id"]
    assert xml_id and "token" not in xml_receipt
    [read] = xml_items(http.get(f"/open311/v2/requests/{xml_id}.xml").content, "service_requests", "request")
    assert read["media_url"] == "https://img.example.cn/311/light.jpg"
    check({**read, "lat": float(read["lat"]), "long": float(read["long"])}, SERVICE_REQUEST)

    [token] = http.get(f"/open311/v2/tokens/{request_id}.json").json()
    check(token, TOKEN)
    assert token["service_request_id"] == request_id
    assert http.get("/open311/v2/tokens/no-such-token.xml").status_code == 404


def test_multipart_and_json_posts_and_a_file_part_refused_politely(http):
    fields = light(media_url="https://img.example.cn/311/a.jpg")
    multi = http.post("/open311/v2/requests.json", files={k: (None, v) for k, v in fields.items()})
    assert multi.status_code == 200, multi.text
    [receipt] = multi.json()
    [one] = http.get(f"/open311/v2/requests/{receipt['service_request_id']}.json").json()
    assert one["media_url"] == "https://img.example.cn/311/a.jpg"

    with_file = http.post("/open311/v2/requests.xml", data=light(),
                          files={"media": ("light.jpg", b"\xff\xd8\xff\xe0fakejpeg", "image/jpeg")})
    assert with_file.status_code == 400
    [error] = xml_errors(with_file.content)
    assert error["code"] == 400 and error["description"].startswith("media: file uploads are not accepted")
    assert "media_url" in error["description"]

    as_json = http.post("/open311/v2/requests.json", json={**light(), "lat": HANYANG_S15[1]})
    assert as_json.status_code == 200, as_json.text
    check(as_json.json(), array_of(RECEIPT, 1))


def test_errors_are_georeport_lists_with_their_status_codes_in_both_formats(http):
    cases = [
        # (fields, status, code) — no key and a wrong key are 403 before anything else is judged.
        ({k: v for k, v in light(service_code="NO_SUCH_SERVICE").items() if k != "api_key"}, 403, 403),
        (light(api_key="not-a-key"), 403, 403),
        (light(service_code="NO_SUCH_SERVICE"), 404, 404),
        (light(description="", phone="12"), 400, 400),
    ]
    for fields, status, code in cases:
        for fmt in ("json", "xml"):
            resp = post(http, fields, fmt=fmt)
            assert resp.status_code == status, (fields, fmt, resp.text)
            assert resp.headers["content-type"] == (JSON if fmt == "json" else XML)
            found = resp.json() if fmt == "json" else xml_errors(resp.content)
            check(found, array_of(ERROR, 1))
            assert {e["code"] for e in found} == {code}
    bad = post(http, light(description="", phone="12")).json()
    assert sorted(e["description"].split(":")[0] for e in bad) == ["description", "phone"]
    assert post(http, {k: v for k, v in light().items() if k != "api_key"}).json() == [
        {"code": 403, "description": "api_key: is required: the key issued to your application"}]

    for path, status in (("/open311/v2/requests/20260101-000000000000.json", 404),
                         ("/open311/v2/requests/20260101-000000000000.xml", 404),
                         ("/open311/v2/requests.html", 404), ("/open311/v2/nothing.json", 404),
                         ("/open311/v2/requests.json?status=pending", 400),
                         ("/open311/v2/requests.xml?start_date=yesterday", 400),
                         ("/open311/v2/requests.json?page=0", 400)):
        resp = http.get(path)
        assert resp.status_code == status, path
        found = xml_errors(resp.content) if path.split("?")[0].endswith(".xml") else resp.json()
        check(found, array_of(ERROR, 1))
    assert http.delete("/open311/v2/services.json").status_code == 405


def test_unknown_query_parameters_are_ignored_and_requests_page(http):
    ids = [post(http, light()).json()[0]["service_request_id"] for _ in range(3)]
    assert http.get("/open311/v2/services.json?_=1733300000000&utm_source=app").status_code == 200
    listed = http.get("/open311/v2/requests.json", params={"service_request_id": ",".join(ids), "nocache": "1"})
    assert listed.status_code == 200
    check(listed.json(), array_of(SERVICE_REQUEST, 3))
    newest_first = [r["service_request_id"] for r in listed.json()]
    assert sorted(newest_first) == sorted(ids)
    pages = [http.get("/open311/v2/requests.json", params={"service_request_id": ",".join(ids), "page": n,
                                                            "page_size": 2}).json() for n in (1, 2, 3)]
    assert [[r["service_request_id"] for r in p] for p in pages] == [newest_first[:2], newest_first[2:], []]
    recent = http.get("/open311/v2/requests.xml", params={"service_code": "STREET_LIGHT", "status": "open",
                                                          "start_date": "2020-01-01T00:00:00Z"})
    assert recent.status_code == 200
    assert set(ids) <= {r["service_request_id"] for r in xml_items(recent.content, "service_requests", "request")}


def test_the_updates_feed_tells_what_happened_from_the_timeline(suite, http):
    before = suite.referral_rt.clock()
    [receipt] = post(http, light(phone=phone())).json()
    request_id = receipt["service_request_id"]
    name = f"workOrders/{request_id}"
    resolve_as_department(suite, name, "D04", "已更换路灯灯头，恢复照明")
    params = {"start_date": before.isoformat(), "api_key": OPEN311_API_KEY, "jurisdiction_id": ""}
    resp = http.get("/open311/v2/servicerequestupdates.json", params=params)
    assert resp.status_code == 200, resp.text
    check(resp.json(), array_of(UPDATE, 1))
    mine = [u for u in resp.json() if u["service_request_id"] == request_id]
    assert [u["status"] for u in mine] == ["ACTION_SCHEDULED", "ACTION_SCHEDULED", "IN_PROGRESS", "FIXED"]
    assert "已更换路灯灯头" in mine[-1]["description"]
    assert len({u["update_id"] for u in mine}) == 4
    xml = http.get("/open311/v2/servicerequestupdates.xml", params=params)
    items = xml_items(xml.content, "service_request_updates", "request_update")
    assert [u["status"] for u in items if u["service_request_id"] == request_id] == [u["status"] for u in mine]
    later = http.get("/open311/v2/servicerequestupdates.json", params={**params, "page": 99, "page_size": 1})
    assert later.status_code == 200 and later.json() == []


def test_hostile_input_is_a_georeport_error_never_a_server_error(http):
    gets = ["/open311/v2/requests/%00.json", "/open311/v2/requests.json?service_request_id=a%00b",
            "/open311/v2/requests.json?service_code=%00", "/open311/v2/tokens/%00.xml",
            "/open311/v2/requests.json?page=99999999999999999999", "/open311/v2/requests.json?page_size=1001",
            "/open311/v2/requests.json?end_date=0001-01-01T00:00:00Z",
            "/open311/v2/servicerequestupdates.xml?start_date=9999-12-31T23:59:59Z",
            "/open311/v2/services/%FF%00.json", "/open311/v2/requests.json?%00=1"]
    for path in gets:
        resp = http.get(path)
        assert 400 <= resp.status_code < 500, (path, resp.status_code, resp.text)
        found = xml_errors(resp.content) if path.split("?")[0].endswith(".xml") else resp.json()
        check(found, array_of(ERROR, 1))
    posts = [(b"\xff\xfe%%%=&&==", "application/x-www-form-urlencoded"),
             (b"--x\r\nContent-Disposition: form-data\r\n\r\nbroken", "multipart/form-data; boundary=x"),
             (b"--x\r\n", "multipart/form-data"), (b"[" * 5000 + b"]" * 5000, "application/json"),
             (b"<a/>", "application/xml"), ("api_key=%s&description=a%%00b" % OPEN311_API_KEY, "application/x-www-form-urlencoded")]
    for body, content_type in posts:
        resp = http.post("/open311/v2/requests.json", content=body, headers={"Content-Type": content_type})
        assert resp.status_code in (400, 403), (body[:40], resp.status_code, resp.text)
        check(resp.json(), array_of(ERROR, 1))


def test_a_jurisdiction_the_endpoint_does_not_serve_is_404(suite):
    servicer = Open311Servicer(suite.referral_rt, "jiangcheng.gov.cn", api_keys=[OPEN311_API_KEY])
    with TestClient(create_app(servicer)) as client:
        assert client.get("/open311/v2/services.json", params={"jurisdiction_id": "jiangcheng.gov.cn"}).status_code == 200
        assert client.get("/open311/v2/services.json").status_code == 200, "none named: the one served"
        for fmt in ("json", "xml"):
            wrong = client.get(f"/open311/v2/services.{fmt}", params={"jurisdiction_id": "elsewhere.gov.cn"})
            assert wrong.status_code == 404
            [error] = wrong.json() if fmt == "json" else xml_errors(wrong.content)
            assert error == {"code": 404, "description": "jurisdiction_id 'elsewhere.gov.cn' was not found: "
                                                         "this endpoint serves only 'jiangcheng.gov.cn'"}
        posted = post(client, light(jurisdiction_id="elsewhere.gov.cn"))
        assert posted.status_code == 404 and posted.json()[0]["code"] == 404


def test_a_service_definition_lists_its_attributes_in_both_formats(http):
    resp = http.get("/open311/v2/services/MANHOLE_COVER.json")
    assert resp.status_code == 200 and resp.headers["content-type"] == JSON
    check(resp.json(), SERVICE_DEFINITION)
    first, second = resp.json()["attributes"]
    assert {k: first[k] for k in ("variable", "code", "datatype", "required", "order", "description")} == {
        "variable": True, "code": "cover_state", "datatype": "singlevaluelist", "required": True, "order": 1,
        "description": "井盖现状"}
    assert {v["key"]: v["name"] for v in first["values"]}["missing"] == "缺失"
    assert second["required"] is False and second["order"] == 2
    road = http.get("/open311/v2/services/ROAD_DAMAGE.json").json()["attributes"]
    assert [(a["code"], a["datatype"], a["required"]) for a in road] == [
        ("damage_size", "singlevaluelist", True), ("depth_cm", "number", False)]
    assert "values" not in road[1]

    doc = parse_xml(http.get("/open311/v2/services/MANHOLE_COVER.xml").content)
    assert doc.tag == "service_definition" and doc.findtext("service_code") == "MANHOLE_COVER"
    attribute = doc.find("attributes")[0]
    assert attribute.tag == "attribute"
    assert [c.tag for c in attribute] == ["variable", "code", "datatype", "required", "datatype_description",
                                          "order", "description", "values"]
    assert attribute.findtext("required") == "true" and attribute.findtext("order") == "1"
    values = attribute.find("values")
    assert [v.tag for v in values] == ["value"] * len(first["values"])
    assert [(v.findtext("key"), v.findtext("name")) for v in values] == [(v["key"], v["name"]) for v in first["values"]]


def manhole(**extra) -> dict:
    lon, lat = HANYANG_S15
    return {"api_key": OPEN311_API_KEY, "service_code": "MANHOLE_COVER", "lat": str(lat), "long": str(lon),
            "description": f"琴台路口井盖问题 {rid()[:6]}", **extra}


def test_posted_attributes_are_checked_and_kept_on_the_work_order(suite, http):
    resp = post(http, manhole(**{"attribute[cover_state]": "displaced", "attribute[on_carriageway]": "carriageway",
                                 "attribute[easting]": "12345"}))
    assert resp.status_code == 200, resp.text
    order = suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(
        name=f"workOrders/{resp.json()[0]['service_request_id']}"), timeout=10)
    assert [(a.code, a.value, a.value_text) for a in order.service_attributes] == [
        ("cover_state", "displaced", "移位"), ("on_carriageway", "carriageway", "机动车道")]
    [said] = [e.detail for e in order.timeline if e.action == "SERVICE_ATTRIBUTES"]
    assert said == "市民填写的事项信息：井盖现状：移位；井盖位于：机动车道"

    # Multipart and JSON carry them too; JSON also as an "attribute" object.
    multi = http.post("/open311/v2/requests.json", files={k: (None, v) for k, v in manhole(**{
        "attribute[cover_state]": "missing"}).items()})
    assert multi.status_code == 200, multi.text
    as_json = http.post("/open311/v2/requests.json", json={**manhole(), "attribute": {"cover_state": "broken"}})
    assert as_json.status_code == 200, as_json.text
    for receipt, value in ((multi.json()[0], "missing"), (as_json.json()[0], "broken")):
        kept = suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(
            name=f"workOrders/{receipt['service_request_id']}"), timeout=10)
        assert [a.value for a in kept.service_attributes] == [value]

    road = {**light(service_code="ROAD_DAMAGE"), "attribute[damage_size]": "medium", "attribute[depth_cm]": "12.5"}
    assert post(http, road).status_code == 200

    cases = [
        (manhole(), ["attribute[cover_state]: is required: 井盖现状"]),
        (manhole(**{"attribute[cover_state]": "stolen"}),
         ["attribute[cover_state]: 'stolen' is not one of its values: missing, broken, displaced, loose, sunken"]),
        ({**road, "attribute[depth_cm]": "deep"}, ["attribute[depth_cm]: must be a number"]),
        ({**road, "attribute[depth_cm]": "900"}, ["attribute[depth_cm]: must be from 0 to 200"]),
        ({**road, "attribute[depth_cm]": "nan"}, ["attribute[depth_cm]: must be a number"]),
    ]
    for fields, said in cases:
        for fmt in ("json", "xml"):
            bad = post(http, fields, fmt=fmt)
            assert bad.status_code == 400, (fields, bad.text)
            found = bad.json() if fmt == "json" else xml_errors(bad.content)
            assert found == [{"code": 400, "description": d} for d in said]
    # An optional attribute may be left out; a service without a definition ignores attributes.
    assert post(http, light()).status_code == 200
    assert post(http, {**light(service_code="WAGE_ARREARS"), "attribute[depth_cm]": "x"}).status_code == 200


def post_update(http, fields: dict, fmt: str = "json"):
    return http.post(f"/open311/v2/servicerequestupdates.{fmt}", data=fields)


def an_update(request_id: str, **extra) -> dict:
    """What FixMyStreet posts for a comment on a report it sent."""
    return {"api_key": OPEN311_API_KEY, "jurisdiction_id": "", "service_request_id": request_id,
            "update_id": str(int(rid()[:8], 16)), "updated_datetime": "2026-12-04T09:30:00+08:00",
            "status": "OPEN", "description": "路灯还是不亮，今晚又黑了一整夜", "first_name": "小红", "last_name": "李",
            "email": "lixh@example.cn", **extra}


def test_a_citizen_update_is_kept_once_with_its_sender_apart_from_the_timeline(suite, http):
    before = suite.referral_rt.clock()
    request_id = post(http, light(phone=phone())).json()[0]["service_request_id"]
    fields = an_update(request_id, description="李小红补充：路灯还是不亮，电话13812345678", phone="13812345678",
                       media_url="https://img.example.cn/311/still-dark.jpg")
    resp = post_update(http, fields)
    assert resp.status_code == 200, resp.text
    [receipt] = resp.json()
    update_id = receipt["update_id"]
    assert update_id.startswith(f"{request_id}-") and update_id != fields["update_id"]
    xml = post_update(http, fields, fmt="xml")
    assert xml.status_code == 200
    assert xml_items(xml.content, "service_request_updates", "request_update") == [{"update_id": update_id}]

    order = suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=f"workOrders/{request_id}"), timeout=10)
    entries = [e for e in order.timeline if e.action == "CITIZEN_UPDATE"]
    assert len(entries) == 1, "the repeat added nothing"
    assert entries[0].detail == "市民补充说明（Open311）：某市民补充：路灯还是不亮，电话[电话]；附图片（见附件）"
    assert entries[0].stamp.actor == "open311-public"
    assert order.attachments[-1].storage_uri == fields["media_url"]
    with suite.referral_rt.engine.connect() as conn:
        [row] = conn.execute(select(store.citizen_updates).where(
            store.citizen_updates.c.work_order_id == request_id)).all()
    assert (row.first_name, row.last_name, row.email, row.phone) == ("小红", "李", "lixh@example.cn", "13812345678")
    assert row.order_status == "ASSIGNED" and row.client_update_id == fields["update_id"]

    # The same update id with other content: 409, nothing added; an unknown request: 404.
    changed = post_update(http, {**fields, "description": "改了内容"})
    assert changed.status_code == 409, changed.text
    assert changed.json() == [{"code": 409, "description": f"update_id {fields['update_id']!r} was already sent "
                                                           "with other content"}]
    unknown = post_update(http, an_update("20260101-000000000000"), fmt="xml")
    assert unknown.status_code == 404
    assert xml_errors(unknown.content) == [
        {"code": 404, "description": "service_request_id '20260101-000000000000' does not exist"}]
    order = suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=f"workOrders/{request_id}"), timeout=10)
    assert len([e for e in order.timeline if e.action == "CITIZEN_UPDATE"]) == 1

    # The feed tells it, without the sender; FixMyStreet knows it by the receipt's id.
    feed = http.get("/open311/v2/servicerequestupdates.json", params={"start_date": before.isoformat()}).json()
    check(feed, array_of(UPDATE, 1))
    [mine] = [u for u in feed if u["update_id"] == update_id]
    assert mine["status"] == "ACTION_SCHEDULED" and mine["service_request_id"] == request_id
    assert mine["media_url"] == fields["media_url"]
    assert "路灯还是不亮" in mine["description"]
    assert "李小红" not in mine["description"] and "13812345678" not in mine["description"]


def test_a_bad_update_is_a_georeport_error_naming_its_fields(http):
    request_id = post(http, light()).json()[0]["service_request_id"]
    no_key = post_update(http, {k: v for k, v in an_update(request_id).items() if k != "api_key"})
    assert no_key.status_code == 403
    assert no_key.json() == [{"code": 403, "description": "api_key: is required: the key issued to your application"}]
    assert post_update(http, an_update(request_id, api_key="made-up")).status_code == 403
    bad = post_update(http, an_update(request_id, update_id="", status="SOLVED", updated_datetime="yesterday",
                                      email="not-an-address", description=""))
    assert bad.status_code == 400
    check(bad.json(), array_of(ERROR, 5))
    assert sorted(e["description"].split(":")[0] for e in bad.json()) == [
        "description", "email", "status", "update_id", "updated_datetime"]
    # FixMyStreet's older releases name the client's id update_id_ext; statuses are case-blind.
    older = {k: v for k, v in an_update(request_id, status="closed").items() if k != "update_id"}
    ok = post_update(http, {**older, "update_id_ext": "fms-77"})
    assert ok.status_code == 200, ok.text
    assert http.delete("/open311/v2/servicerequestupdates.json").status_code == 405


def test_senders_contacts_are_erased_once_the_order_has_been_closed_long_enough(suite, http):
    request_id = post(http, light(phone=phone())).json()[0]["service_request_id"]
    fields = an_update(request_id)
    [receipt] = post_update(http, fields).json()
    rt = suite.referral_rt
    with rt.engine.begin() as conn:
        conn.execute(store.work_orders.update().where(store.work_orders.c.id == request_id)
                     .values(status="CLOSED", close_time=rt.clock() - timedelta(days=200)))
    with rt.transaction() as uow:
        assert handlers.erase_update_contacts(uow, closed_before=rt.clock() - timedelta(days=180)) >= 1
    with rt.engine.connect() as conn:
        [row] = conn.execute(select(store.citizen_updates).where(
            store.citizen_updates.c.work_order_id == request_id)).all()
    assert (row.first_name, row.last_name, row.email, row.description) == ("", "", "", "")
    assert row.contact_erase_time is not None
    # The update is still known: a repeat gets its receipt, and the timeline keeps the words.
    assert post_update(http, fields).json() == [receipt]
    order = suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=f"workOrders/{request_id}"), timeout=10)
    assert any(e.action == "CITIZEN_UPDATE" and "路灯还是不亮" in e.detail for e in order.timeline)
