"""Open311 GeoReport v2 as an off-the-shelf 311 app uses it: through Envoy, plain HTTP, no Authorization
header. The public face runs as the fixed identity `open311-public`; nothing a caller sends in
`x-jwt-payload` is believed, here or on any route that needs a JWT."""
from __future__ import annotations

import base64
import http.client
import json
import uuid
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from tools.token import mint

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def forged(roles: list[str], sub: str = "forger") -> str:
    """An x-jwt-payload as the gateway would forward it, made up by the client."""
    raw = json.dumps({"sub": sub, "roles": roles, "iss": "smart110-dev", "aud": "smart110"}).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def caller() -> str:
    return "136" + str(uuid.uuid4().int)[:8]


@pytest.fixture(scope="module")
def app(stack):
    """A GeoReport client: no token at all."""
    with httpx.Client(base_url=stack.gateway_url, timeout=20) as c:
        yield c


@pytest.fixture(scope="module")
def supervisor(stack):
    token = mint(roles=["supervisor"], sub="e2e-open311-supervisor")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
        yield c


def filed_by(supervisor, request_id: str) -> dict:
    """Who the work order's timeline says filed it."""
    order = supervisor.get(f"/v1/workOrders/{request_id}")
    assert order.status_code == 200, order.text
    first = order.json()["timeline"][0]
    return {"actor": first["stamp"]["actor"], "roles": first["stamp"]["roles"]}


def georeport_errors(resp: httpx.Response) -> list[dict]:
    """GeoReport's error body: a list of {"code", "description"}."""
    assert resp.headers["content-type"] == "application/json; charset=utf-8"
    return resp.json()


def test_a_311_app_lists_posts_and_reads_back_without_any_token(stack, app, supervisor):
    services = app.get("/open311/v2/services.json")
    assert services.status_code == 200, services.text
    assert services.headers["content-type"].startswith("application/json")
    assert {"STREET_LIGHT", "MANHOLE_COVER"} <= {s["service_code"] for s in services.json()}

    form = {"api_key": stack.open311_api_key, "service_code": "STREET_LIGHT", "lat": "30.5779", "long": "114.3404",
            "address_string": "江汉区民族路与江汉路交叉口", "description": "民族路口两盏路灯一到晚上就闪烁",
            "first_name": "晓", "last_name": "梅", "phone": caller(), "email": "meixiao@example.cn"}
    posted = app.post("/open311/v2/requests.json", content=urlencode(form), headers=FORM)
    assert posted.status_code == 200, posted.text
    [receipt] = posted.json()
    request_id = receipt["service_request_id"]
    assert request_id and "办理时限" in receipt["service_notice"]

    as_json = app.post("/open311/v2/requests.json", json={
        "api_key": stack.open311_api_key, "service_code": "MANHOLE_COVER", "lat": 30.5779, "long": 114.3404,
        "description": "江汉路步行街入口井盖松动，踩上去会响", "attribute": {"cover_state": "loose"}})
    assert as_json.status_code == 200, as_json.text
    json_id = as_json.json()[0]["service_request_id"]
    assert json_id and json_id != request_id

    [one] = app.get(f"/open311/v2/requests/{request_id}.json").json()
    assert one["service_request_id"] == request_id and one["status"] == "open"
    assert one["service_code"] == "STREET_LIGHT" and one["description"] == form["description"]
    assert one["address"] == form["address_string"]
    flat = json.dumps(one, ensure_ascii=False)
    assert form["phone"] not in flat and "meixiao" not in flat and "梅 晓" not in flat
    listed = app.get("/open311/v2/requests.json", params={"service_code": "STREET_LIGHT,MANHOLE_COVER"})
    assert listed.status_code == 200, listed.text
    assert {request_id, json_id} <= {r["service_request_id"] for r in listed.json()}
    by_id = app.get("/open311/v2/requests.json", params={"service_request_id": f"{request_id},{json_id}"}).json()
    assert {r["service_request_id"] for r in by_id} == {request_id, json_id}

    # Filed as the anonymous Open311 client, never as an in-cluster service.
    assert filed_by(supervisor, request_id) == {"actor": "open311-public", "roles": ["open311_client"]}
    assert filed_by(supervisor, json_id) == {"actor": "open311-public", "roles": ["open311_client"]}


def test_a_post_without_an_issued_key_is_refused_in_georeport_terms(stack, app):
    form = {"service_code": "STREET_LIGHT", "lat": "30.5779", "long": "114.3404", "description": "路灯不亮"}
    missing = app.post("/open311/v2/requests.json", content=urlencode(form), headers=FORM)
    assert missing.status_code == 403, missing.text
    assert georeport_errors(missing) == [
        {"code": 403, "description": "api_key: is required: the key issued to your application"}]

    for body in (urlencode({**form, "api_key": "made-up"}), urlencode({**form, "api_key": stack.open311_api_key + "0"})):
        wrong = app.post("/open311/v2/requests.json", content=body, headers=FORM)
        assert wrong.status_code == 403, wrong.text
        assert georeport_errors(wrong) == [{"code": 403, "description": "api_key is not valid for this endpoint"}]
    as_json = app.post("/open311/v2/requests.json", json={**form, "api_key": "made-up"})
    assert as_json.status_code == 403, as_json.text

    # A key as a query parameter beside a form body is accepted, as GeoReport allows.
    by_query = app.post("/open311/v2/requests.json", params={"api_key": stack.open311_api_key},
                        content=urlencode({**form, "description": "汉口江滩入口路灯不亮"}), headers=FORM)
    assert by_query.status_code == 200, by_query.text


def test_a_forged_identity_header_is_never_believed(stack, app, supervisor):
    supervisor_payload = {"x-jwt-payload": forged(["supervisor"])}

    # On the Open311 face it is ignored: the request still acts as open311-public.
    posted = app.post("/open311/v2/requests.json", headers={**FORM, **supervisor_payload}, content=urlencode({
        "api_key": stack.open311_api_key, "service_code": "MANHOLE_COVER", "lat": "30.5779", "long": "114.3404",
        "description": "江汉路地铁口井盖破损", "attribute[cover_state]": "broken"}))
    assert posted.status_code == 200, posted.text
    request_id = posted.json()[0]["service_request_id"]
    assert filed_by(supervisor, request_id) == {"actor": "open311-public", "roles": ["open311_client"]}

    # Elsewhere a JWT is still needed, and the header does not stand in for one.
    for method, path in (("GET", "/v1/workOrders"), ("GET", f"/v1/workOrders/{request_id}"),
                         ("POST", "/v1/workOrders:sweepOverdue")):
        resp = app.request(method, path, headers=supervisor_payload, json={} if method == "POST" else None)
        assert resp.status_code == 401, (path, resp.text)
        assert resp.json()["code"] == 16  # UNAUTHENTICATED

    # Nor does it lift a valid token's low role: an officer cannot read 12345 work orders.
    officer = mint(roles=["officer"], station="S06", sub="e2e-open311-officer")
    with httpx.Client(base_url=stack.gateway_url, timeout=20,
                      headers={"Authorization": f"Bearer {officer}", **supervisor_payload}) as c:
        for path in ("/v1/workOrders", f"/v1/workOrders/{request_id}"):
            resp = c.get(path)
            assert resp.status_code == 403, (path, resp.text)
            assert resp.json()["code"] == 7  # PERMISSION_DENIED

    # The Open311 methods called as gRPC (not through the open REST prefix) still need a JWT.
    grpc_path = app.post("/smart110.referral.v1.Open311Service/ListServices", content=b"\x00\x00\x00\x00\x00",
                         headers={"content-type": "application/grpc", "te": "trailers", **supervisor_payload})
    assert grpc_path.headers.get("grpc-status") == "16"

    # A path that only starts like the open prefix is normalised before the JWT rule is matched.
    url = urlsplit(stack.gateway_url)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=20)
    try:
        conn.request("GET", "/open311/../v1/workOrders", headers=supervisor_payload)
        dotted = conn.getresponse()
        assert dotted.status == 401, dotted.read()
    finally:
        conn.close()


def test_a_311_app_reads_a_service_definition_and_posts_its_attributes(stack, app, supervisor):
    services = {s["service_code"]: s for s in app.get("/open311/v2/services.json").json()}
    assert services["MANHOLE_COVER"]["metadata"] is True and services["WAGE_ARREARS"]["metadata"] is False
    definition = app.get("/open311/v2/services/MANHOLE_COVER.json")
    assert definition.status_code == 200, definition.text
    [cover, *_] = definition.json()["attributes"]
    assert (cover["code"], cover["datatype"], cover["required"]) == ("cover_state", "singlevaluelist", True)
    as_xml = app.get("/open311/v2/services/MANHOLE_COVER.xml")
    assert as_xml.status_code == 200 and as_xml.headers["content-type"] == "text/xml; charset=utf-8"
    assert b"<attribute><variable>true</variable><code>cover_state</code>" in as_xml.content
    assert "<value><key>missing</key><name>缺失</name></value>".encode() in as_xml.content

    form = {"api_key": stack.open311_api_key, "service_code": "MANHOLE_COVER", "lat": "30.5779", "long": "114.3404",
            "description": "江汉路步行街入口井盖移位，露出半个洞口", "attribute[cover_state]": "displaced",
            "attribute[on_carriageway]": "sidewalk"}
    posted = app.post("/open311/v2/requests.json", content=urlencode(form), headers=FORM)
    assert posted.status_code == 200, posted.text
    order = supervisor.get(f"/v1/workOrders/{posted.json()[0]['service_request_id']}").json()
    assert [(a["code"], a["valueText"]) for a in order["serviceAttributes"]] == [
        ("cover_state", "移位"), ("on_carriageway", "人行道")]
    assert "市民填写的事项信息：井盖现状：移位；井盖位于：人行道" in [e["detail"] for e in order["timeline"]]

    for bad, said in (({**form, "attribute[cover_state]": "gone"}, "attribute[cover_state]: 'gone' is not one of"),
                      ({k: v for k, v in form.items() if k != "attribute[cover_state]"},
                       "attribute[cover_state]: is required")):
        refused = app.post("/open311/v2/requests.xml", content=urlencode(bad), headers=FORM)
        assert refused.status_code == 400, refused.text
        assert said.encode() in refused.content and b"<errors><error><code>400</code>" in refused.content


def test_a_311_app_posts_a_citizens_update_once(stack, app, supervisor):
    form = {"api_key": stack.open311_api_key, "service_code": "STREET_LIGHT", "lat": "30.5779", "long": "114.3404",
            "description": "民族路口路灯一到晚上就灭", "attribute[light_fault]": "off"}
    request_id = app.post("/open311/v2/requests.json", content=urlencode(form), headers=FORM).json()[0][
        "service_request_id"]
    update = {"api_key": stack.open311_api_key, "service_request_id": request_id, "update_id": uuid.uuid4().hex[:12],
              "updated_datetime": "2026-12-04T20:15:00+08:00", "status": "OPEN", "description": "今晚路灯还是不亮",
              "first_name": "晓", "last_name": "梅", "email": "meixiao@example.cn"}
    first = app.post("/open311/v2/servicerequestupdates.xml", content=urlencode(update), headers=FORM)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "text/xml; charset=utf-8"
    receipt = first.content
    assert receipt.startswith(b'<?xml version="1.0" encoding="utf-8"?><service_request_updates><request_update>'
                              b'<update_id>' + request_id.encode() + b"-")
    again = app.post("/open311/v2/servicerequestupdates.xml", content=urlencode(update), headers=FORM)
    assert again.status_code == 200 and again.content == receipt
    as_json = app.post("/open311/v2/servicerequestupdates.json", content=urlencode(update), headers=FORM)
    [ours] = as_json.json()
    assert ours["update_id"].encode() in receipt

    conflicting = app.post("/open311/v2/servicerequestupdates.json",
                           content=urlencode({**update, "description": "路灯修好了"}), headers=FORM)
    assert conflicting.status_code == 409, conflicting.text
    assert georeport_errors(conflicting)[0]["code"] == 409
    unknown = app.post("/open311/v2/servicerequestupdates.json",
                       content=urlencode({**update, "service_request_id": "20260101-000000000000"}), headers=FORM)
    assert unknown.status_code == 404 and georeport_errors(unknown)[0]["code"] == 404
    keyless = app.post("/open311/v2/servicerequestupdates.json",
                       content=urlencode({k: v for k, v in update.items() if k != "api_key"}), headers=FORM)
    assert keyless.status_code == 403

    order = supervisor.get(f"/v1/workOrders/{request_id}").json()
    entries = [e for e in order["timeline"] if e["action"] == "CITIZEN_UPDATE"]
    assert [e["detail"] for e in entries] == ["市民补充说明（Open311）：今晚路灯还是不亮"]
    assert entries[0]["stamp"]["actor"] == "open311-public"
    feed = app.get("/open311/v2/servicerequestupdates.json", params={"start_date": order["createTime"]}).json()
    [told] = [u for u in feed if u["update_id"] == ours["update_id"]]
    assert told["service_request_id"] == request_id and "今晚路灯还是不亮" in told["description"]
    assert "meixiao" not in json.dumps(feed, ensure_ascii=False)
