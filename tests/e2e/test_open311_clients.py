"""Open311 GeoReport v2 through the gateway as real clients use it: the `georeport` client library in
both formats (requirements-test-clients.txt, installed in build/clients), and the calls
FixMyStreet's Open311 client makes (services.xml, services/{code}.xml, requests.xml with attributes,
servicerequestupdates.xml, GET and POST)."""
from __future__ import annotations

import sys
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from tests.open311_conformance import (
    ERROR, RECEIPT, SERVICE, SERVICE_DEFINITION, SERVICE_REQUEST, UPDATE, UPDATE_RECEIPT, array_of, check,
    parse_xml, xml_errors, xml_items,
)
from tools.token import mint

CLIENTS = Path(__file__).resolve().parents[2] / "build" / "clients"
if str(CLIENTS) not in sys.path:
    sys.path.append(str(CLIENTS))
georeport = pytest.importorskip("georeport", reason="make setup installs it into build/clients")


def caller() -> str:
    return "137" + str(uuid.uuid4().int)[:8]


@pytest.fixture(scope="module")
def app(stack):
    with httpx.Client(base_url=stack.gateway_url, timeout=20) as c:
        yield c


def report(stack, **extra) -> dict:
    return {"api_key": stack.open311_api_key, "service_code": "STREET_LIGHT", "lat": "30.5779", "long": "114.3404",
            "address_string": "江汉区民族路与江汉路交叉口", "description": f"民族路口路灯不亮 {uuid.uuid4().hex[:6]}",
            "phone": caller(), **extra}


@pytest.mark.parametrize("fmt", ["json", "xml"])
def test_the_georeport_client_reads_services_and_requests(stack, app, fmt):
    posted = app.post(f"/open311/v2/requests.{fmt}", files={k: (None, v) for k, v in report(stack).items()})
    assert posted.status_code == 200, posted.text
    if fmt == "json":
        [receipt] = posted.json()
    else:
        [receipt] = xml_items(posted.content, "service_requests", "request")
    check(receipt, RECEIPT)
    request_id = receipt["service_request_id"]

    client = georeport.GeoReport(f"{stack.gateway_url}/open311/v2", output_format=fmt)
    services = client.get_service_list()
    if fmt == "json":
        check(services, array_of(SERVICE, 70))
    by_code = {s["service_code"]: s for s in services}
    assert by_code["STREET_LIGHT"]["group"] == "城市管理" and by_code["STREET_LIGHT"]["description"]
    assert {by_code[c]["metadata"] for c in ("MANHOLE_COVER", "ROAD_DAMAGE", "STREET_LIGHT")} == {
        True if fmt == "json" else "true"}
    assert by_code["WAGE_ARREARS"]["metadata"] == (False if fmt == "json" else "false")
    definition = client.get_service_definition("MANHOLE_COVER")
    assert definition["service_code"] == "MANHOLE_COVER"
    if fmt == "json":
        check(definition, SERVICE_DEFINITION)
        attributes = definition["attributes"]
    else:
        attributes = definition["attributes"]["attribute"]  # xmltodict: the items under <attributes>
    assert [a["code"] for a in attributes] == ["cover_state", "on_carriageway"]
    assert str(attributes[0]["required"]).lower() == "true" and str(attributes[0]["order"]) == "1"
    values = attributes[0]["values"] if fmt == "json" else attributes[0]["values"]["value"]
    assert {"key": "missing", "name": "缺失"} in [dict(v) for v in values]
    one = client.get_service_request(request_id)
    assert one["service_request_id"] == request_id and one["status"] == "open"
    assert "media_url" not in one
    if fmt == "json":
        check(one, SERVICE_REQUEST)
    many = client.get_service_requests(service_code="STREET_LIGHT", status="open")
    many = [many] if isinstance(many, dict) else many  # xmltodict: one item is not a list
    assert request_id in {r["service_request_id"] for r in many}
    with pytest.raises(Exception) as missing:
        client.get_service_request("20260101-000000000000")
    assert missing.value.response.status_code == 404


def test_fixmystreet_calls_and_georeport_errors_through_the_gateway(stack, app):
    since = (datetime.now(timezone.utc) - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    services = app.get("/open311/v2/services.xml", params={"jurisdiction_id": ""})
    assert services.status_code == 200 and services.headers["content-type"] == "text/xml; charset=utf-8"
    assert "STREET_LIGHT" in {s["service_code"] for s in xml_items(services.content, "services", "service")}

    posted = app.post("/open311/v2/requests.xml", data=report(stack, media_url="https://img.example.cn/311/x.jpg"))
    assert posted.status_code == 200, posted.text
    [receipt] = xml_items(posted.content, "service_requests", "request")
    request_id = receipt["service_request_id"]
    supervisor = mint(roles=["supervisor"], sub="e2e-open311-fms")
    order = app.get(f"/v1/workOrders/{request_id}", headers={"Authorization": f"Bearer {supervisor}"})
    assert order.status_code == 200, order.text
    assert order.json()["assignments"], "routed at once: an ASSIGNED entry is on its timeline"

    updates = app.get("/open311/v2/servicerequestupdates.xml",
                      params={"start_date": since, "api_key": stack.open311_api_key})
    assert updates.status_code == 200, updates.text
    items = xml_items(updates.content, "service_request_updates", "request_update")
    mine = [u for u in items if u["service_request_id"] == request_id]
    assert mine and mine[0]["status"] == "ACTION_SCHEDULED"
    check(mine, array_of(UPDATE, 1))

    # A service with metadata: FixMyStreet reads its definition and sends the answers as attribute[code].
    meta = parse_xml(app.get("/open311/v2/services/ROAD_DAMAGE.xml").content)
    assert [(a.findtext("code"), a.findtext("datatype"), a.findtext("required")) for a in meta.find("attributes")] == [
        ("damage_size", "singlevaluelist", "true"), ("depth_cm", "number", "false")]
    road = app.post("/open311/v2/requests.xml", data=report(stack, service_code="ROAD_DAMAGE", **{
        "attribute[damage_size]": "small", "attribute[depth_cm]": "8"}))
    assert road.status_code == 200, road.text

    # A comment on the report, as FixMyStreet's post_service_request_update sends it.
    comment = {"api_key": stack.open311_api_key, "jurisdiction_id": "", "service_request_id": request_id,
               "update_id": str(uuid.uuid4().int)[:9], "status": "OPEN", "description": "晚上经过时还是没亮",
               "updated_datetime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "first_name": "Lan", "last_name": "Wang", "email": "wanglan@example.cn"}
    sent = app.post("/open311/v2/servicerequestupdates.xml", data=comment)
    assert sent.status_code == 200, sent.text
    [update_receipt] = xml_items(sent.content, "service_request_updates", "request_update")
    check(update_receipt, UPDATE_RECEIPT)
    assert update_receipt["update_id"] != comment["update_id"]
    again = app.post("/open311/v2/servicerequestupdates.xml", data=comment)
    assert xml_items(again.content, "service_request_updates", "request_update") == [update_receipt]
    told = xml_items(app.get("/open311/v2/servicerequestupdates.xml", params={"start_date": since}).content,
                     "service_request_updates", "request_update")
    [ours] = [u for u in told if u["update_id"] == update_receipt["update_id"]]
    check([ours], array_of(UPDATE, 1))
    assert ours["service_request_id"] == request_id and "还是没亮" in ours["description"]

    for fields, status in (({k: v for k, v in report(stack).items() if k != "api_key"}, 403),
                           (report(stack, service_code="NO_SUCH_SERVICE"), 404),
                           (report(stack, description=""), 400)):
        for fmt in ("json", "xml"):
            resp = app.post(f"/open311/v2/requests.{fmt}", data=fields)
            assert resp.status_code == status, (fmt, resp.text)
            found = resp.json() if fmt == "json" else xml_errors(resp.content)
            check(found, array_of(ERROR, 1))
            assert {e["code"] for e in found} == {status}


def test_unknown_query_parameters_are_ignored_on_rest_routes(stack, app):
    token = mint(roles=["supervisor"], sub="e2e-open311-cachebuster")
    resp = app.get("/v1/workOrders", params={"pageSize": 1, "_": "1733300000000", "utm_source": "app"},
                   headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    assert isinstance(resp.json()["workOrders"], list)
    listed = app.get("/open311/v2/requests.json", params={"page": 1, "page_size": 2, "nocache": "42"})
    assert listed.status_code == 200, listed.text
    assert len(listed.json()) <= 2
