"""Dispatch end to end through Envoy: a report reaches an officer's phone, who handles it to report-back."""
from __future__ import annotations

import queue
import threading
import uuid

import grpc
import httpx
import pytest

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc
from tests.conftest import eventually
from tools.token import mint
from tests import support

ROBBERY = {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": "13900139001", "name": "李女士"},
           "location": {"point": {"longitude": 114.262, "latitude": 30.611}, "accuracyM": 10,
                        "source": "LOCATION_SOURCE_GNSS"},
           "description": "刚才有人在公交站抢了我的包，往北边跑了"}


@pytest.fixture(scope="module")
def http(stack):
    token = mint(roles=["dispatcher"], sub="e2e-dispatch-desk")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
        yield c


def test_report_to_the_officers_phone_and_back_through_the_gateway(http, stack):
    report = http.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": ROBBERY}).json()

    def offered():
        cases = http.get("/v1/cases", params={"report": report["name"]}).json()["cases"]
        return cases[0] if cases and cases[0].get("assignments") else None

    case = eventually(offered)
    primary = next(a for a in case["assignments"] if a["role"] == "ASSIGNMENT_ROLE_PRIMARY")
    unit = http.get(f"/v1/{primary['unit']}").json()
    officer = unit["officers"][0]["officerId"]
    token = mint(roles=["officer"], station=unit["stationId"], sub=officer)
    phone_md = (("authorization", f"Bearer {token}"),)

    # The phone connects after the offer was made and still gets it (gRPC through Envoy).
    received: queue.Queue = queue.Queue()
    with support.channel(stack.gateway_url.removeprefix("http://")) as channel:
        call = pb_grpc.DispatchServiceStub(channel).WatchAssignments(
            pb.WatchAssignmentsRequest(unit=primary["unit"]), metadata=phone_md)
        def read():
            try:
                for m in call:
                    received.put(m)
            except grpc.RpcError:
                pass  # cancelled below

        threading.Thread(target=read, daemon=True).start()
        try:
            offer = received.get(timeout=20)
            assert offer.name == primary["name"] and offer.state == pb.ASSIGNMENT_STATE_OFFERED
            assert offer.case_summary.incident_type == "ROBBERY"
        finally:
            call.cancel()

    officer_http = {"Authorization": f"Bearer {token}"}
    base = f"{stack.gateway_url}/v1/{primary['name']}"
    other = mint(roles=["officer"], station=unit["stationId"], sub="P-not-this-unit")
    refused = httpx.post(f"{base}:accept", json={"requestId": uuid.uuid4().hex},
                         headers={"Authorization": f"Bearer {other}"})
    assert refused.status_code == 403, refused.text
    accepted = httpx.post(f"{base}:accept", json={"requestId": uuid.uuid4().hex}, headers=officer_http)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "ASSIGNMENT_STATE_ACCEPTED"
    illegal = httpx.post(f"{base}:advance", json={"requestId": uuid.uuid4().hex, "state": "ASSIGNMENT_STATE_CLEARED"},
                         headers=officer_http)
    assert illegal.status_code in (400, 412) and illegal.json()["code"] == 9
    for state in ("ASSIGNMENT_STATE_EN_ROUTE", "ASSIGNMENT_STATE_ON_SCENE", "ASSIGNMENT_STATE_CLEARED"):
        moved = httpx.post(f"{base}:advance", json={"requestId": uuid.uuid4().hex, "state": state},
                           headers=officer_http)
        assert moved.status_code == 200 and moved.json()["state"] == state, moved.text
    back = httpx.post(f"{base}:reportBack", headers=officer_http, json={
        "requestId": uuid.uuid4().hex, "outcome": "OUTCOME_CRIMINAL_CASE", "notes": "已立案侦查，嫌疑人特征已通报",
        "evidence": [{"kind": "ATTACHMENT_KIND_VIDEO", "contentType": "video/mp4", "sizeBytes": 1048576,
                      "storageUri": "s3://evidence/2026/11/bus-stop.mp4"}]})
    assert back.status_code == 200, back.text
    assert back.json()["outcome"] == "OUTCOME_CRIMINAL_CASE" and back.json()["arrivalSeconds"] >= 0

    after = http.get(f"/v1/{case['name']}").json()
    mine = next(a for a in after["assignments"] if a["name"] == primary["name"])
    assert mine["state"] == "ASSIGNMENT_STATE_REPORTED_BACK" and after["acceptTime"]
    actions = [(e["action"], e["stamp"]["actor"]) for e in after["timeline"]]
    assert ("REPORTED_BACK", officer) in actions and ("ACCEPTED", officer) in actions


def test_a_silent_alarm_reaches_the_case_detail_and_the_officers_offer_through_the_gateway(http):
    """A silent alarm (无声报警) filed through Envoy: its case says so, with what the officers must heed,
    on the case detail and on the offer the unit's phone reads."""
    report = http.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": {
        "channel": "CHANNEL_SILENT_ALARM", "caller": {"phoneNumber": f"139{uuid.uuid4().int % 10**8:08d}"},
        "location": {"point": {"longitude": 114.283, "latitude": 30.598}, "accuracyM": 10,
                     "source": "LOCATION_SOURCE_GNSS"}}})
    assert report.status_code == 200, report.text
    assert report.json()["silent"] is True

    def offered():
        cases = http.get("/v1/cases", params={"report": report.json()["name"]}).json()["cases"]
        return cases[0] if cases and cases[0].get("assignments") else None

    case = eventually(offered)
    detail = http.get(f"/v1/{case['name']}").json()
    assert detail["silent"] is True and detail["instructions"] == "无声报警：勿回拨报警人，静默接近"
    assert "SILENT_ALARM" in [e["action"] for e in detail["timeline"]]
    offer = http.get(f"/v1/{detail['assignments'][0]['name']}").json()
    assert offer["caseSummary"]["silent"] is True
    assert offer["caseSummary"]["instructions"] == "无声报警：勿回拨报警人，静默接近"
