"""The Open311 GeoReport v2 HTTP face (XML and JSON) against a real Postgres, checked against the
specification's shapes (tests/open311_conformance.py); through the gateway with a real client in e2e."""
from __future__ import annotations

import warnings

import pytest

with warnings.catch_warnings():
    # Starlette's test client still runs on httpx, which the project pins.
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient


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
    assert items[0]["group"] == services[0]["group"]


def test_service_definitions_and_discovery(http):
    one = http.get("/open311/v2/services/STREET_LIGHT.json")
    assert one.status_code == 200
    check(one.json(), SERVICE_DEFINITION)
    doc = parse_xml(http.get("/open311/v2/services/STREET_LIGHT.xml").content)
    assert doc.tag == "service_definition" and doc.findtext("service_code") == "STREET_LIGHT"
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
