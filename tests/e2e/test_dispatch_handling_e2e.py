"""Case handling end to end, as `make run` runs it: a fraud report through the gateway
reaches the (stand-in) anti-fraud centre and its result comes back on the case; a
command centre escalates it and watches it live; the situation map and statistics
over HTTP."""
from __future__ import annotations

import uuid

import httpx
import pytest

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc
from tests.conftest import eventually
from tools.token import mint
from tests import support

FRAUD = {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": "13700137001", "name": "陈女士"},
         "location": {"point": {"longitude": 114.2931, "latitude": 30.5712}},
         "description": "我刚接到自称公安局的电话，说我涉嫌洗钱，我用建设银行卡转了八万六千元到对方的安全账户，现在才知道被骗了"}


@pytest.fixture(scope="module")
def http(stack):
    token = mint(roles=["commander"], station="S01", sub="e2e-commander", name="指挥长")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
        yield c


@pytest.fixture(scope="module")
def fraud_case(http) -> dict:
    resp = http.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": FRAUD})
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["classification"]["incidentType"] == "TELECOM_FRAUD"

    def case():
        cases = http.get("/v1/cases", params={"report": report["name"]}).json()["cases"]
        return cases[0] if cases else None

    return eventually(case)


def test_a_fraud_report_is_stopped_at_the_anti_fraud_centre_and_the_result_is_on_the_case(http, fraud_case):
    def frozen():
        c = http.get(f"/v1/{fraud_case['name']}").json()
        sp = c.get("stopPayments", [{}])[0]
        return c if sp.get("state") == "STOP_PAYMENT_STATE_FROZEN" else None

    case = eventually(frozen, timeout=30)
    sp = case["stopPayments"][0]
    assert sp["amountFen"] == sp["frozenAmountFen"] == "8600000" and sp["banks"] == ["中国建设银行"]
    assert sp["receiptId"] and sp["attempts"] == 1
    actions = [e["action"] for e in case["timeline"]]
    assert {"STOP_PAYMENT_QUEUED", "STOP_PAYMENT_ACCEPTED", "STOP_PAYMENT_FROZEN"} <= set(actions)


def test_escalated_and_seen_live_by_the_city_centre_through_the_gateway(http, stack, fraud_case):
    resp = http.post(f"/v1/{fraud_case['name']}:escalate",
                     json={"requestId": uuid.uuid4().hex, "level": "CASE_LEVEL_CITY", "reason": "涉案金额大，市局统一指挥"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["level"] == "CASE_LEVEL_CITY"
    again = http.post(f"/v1/{fraud_case['name']}:escalate",
                      json={"requestId": uuid.uuid4().hex, "level": "CASE_LEVEL_CITY", "reason": "再次升级"})
    assert again.status_code == 400 and again.json()["details"][0]["reason"] == "SAME_LEVEL"
    listed = http.get("/v1/cases", params={"minLevel": "CASE_LEVEL_CITY", "pageSize": 500}).json()["cases"]
    assert fraud_case["name"] in {c["name"] for c in listed}

    token = mint(roles=["commander"], station="S01", sub="e2e-city-centre")
    with support.channel(stack.gateway_url.removeprefix("http://")) as channel:
        call = pb_grpc.DispatchServiceStub(channel).WatchCases(
            pb.WatchCasesRequest(min_level=pb.CASE_LEVEL_CITY, station_ids=[fraud_case["stationId"]]),
            metadata=(("authorization", f"Bearer {token}"),), timeout=20)
        try:
            first = next(call)
        finally:
            call.cancel()
    assert first.action == "SNAPSHOT" and first.dispatch_case.name == fraud_case["name"]


def test_situation_map_and_statistics_over_http(http, fraud_case):
    point = fraud_case["location"]["point"]
    resp = http.get("/v1/situation", params={
        "bounds.south_west.longitude": point["longitude"] - 0.01, "bounds.south_west.latitude": point["latitude"] - 0.01,
        "bounds.north_east.longitude": point["longitude"] + 0.01, "bounds.north_east.latitude": point["latitude"] + 0.01})
    assert resp.status_code == 200, resp.text
    situation = resp.json()
    assert fraud_case["name"] in {c["name"] for c in situation["cases"]}
    assert fraud_case["stationId"] in {s["stationId"] for s in situation["stations"]}
    bad = http.get("/v1/situation", params={"bounds.south_west.longitude": 114.5, "bounds.north_east.longitude": 114.4})
    assert bad.status_code == 400

    assert http.get("/v1/statistics/responseCircles").status_code == 200
    assert http.get("/v1/statistics/followUps", params={"stationId": "S01"}).status_code == 200
    officer = mint(roles=["officer"], station="S01", sub="e2e-officer")
    refused = httpx.get(f"{http.base_url}/v1/statistics/followUps", headers={"Authorization": f"Bearer {officer}"})
    assert refused.status_code == 403
