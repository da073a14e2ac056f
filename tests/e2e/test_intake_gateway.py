"""Intake through Envoy as the call-taker console uses it: search, lists, corrections and bad input."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

import sampledata as sd
from sampledata import gazetteer as sample_gazetteer
from tools.token import mint


@pytest.fixture(scope="module")
def console(stack):
    token = mint(roles=["call_taker"], sub="e2e-call-taker")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
        yield c


def post(console, report: dict) -> httpx.Response:
    # A receive time of its own in the past: not merged as a repeat of another test's incident.
    at = datetime.now(timezone.utc) - timedelta(days=90, minutes=uuid.uuid4().int % 100_000)
    report = {"receiveTime": at.strftime("%Y-%m-%dT%H:%M:%SZ"), **report}
    return console.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": report})


def test_address_search_through_the_gateway(console):
    a = next(x for x in sample_gazetteer.addresses() if x.building.endswith("栋"))
    resp = console.get("/v1/addresses:search", params={"query": f"{a.district}{a.road}{a.house_number}{a.building}",
                                                       "pageSize": 3})
    assert resp.status_code == 200, resp.text
    results = resp.json()["results"]
    assert results[0]["address"]["addressCode"] == a.code
    assert results[0]["method"] == "ADDRESS_MATCH_METHOD_FUZZY_TEXT" and 0 < results[0]["score"] < 1
    bad = console.get("/v1/addresses:search", params={"query": ""})
    assert bad.status_code == 400 and bad.json()["details"][1]["fieldViolations"][0]["field"] == "query"


def test_an_address_only_sample_report_is_located_and_found_by_text_search(console):
    r = next(x for x in sd.sample_reports() if x["report_id"] == "R012")  # 武昌区首义路聚友茶楼, no point
    tag = uuid.uuid4().hex[:8]
    resp = post(console, {"channel": "CHANNEL_" + r["channel"], "caller": {"phoneNumber": r["caller_phone"]},
                          "addressText": r["address"], "description": f"{r['description']}（编号{tag}）"})
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["stationId"] == r["expected_station_id"]
    assert report["addressMatch"]["method"] == "ADDRESS_MATCH_METHOD_FUZZY_TEXT"
    assert report["location"]["source"] == "LOCATION_SOURCE_GAZETTEER"
    assert report["classification"]["incidentType"] == "GAMBLING"
    listed = console.get("/v1/reports", params={"query": f"聚友茶楼 {tag}", "stationId": r["expected_station_id"],
                                                "category": "CATEGORY_POLICE", "incidentType": "GAMBLING",
                                                "channel": "CHANNEL_MAILBOX", "status": "REPORT_STATUS_CLASSIFIED"})
    assert listed.status_code == 200, listed.text
    assert [x["name"] for x in listed.json()["reports"]] == [report["name"]]
    assert "*" in listed.json()["reports"][0]["caller"]["phoneNumber"]


def test_silent_alarm_flag_and_a_correction_through_the_gateway(console):
    resp = post(console, {"channel": "CHANNEL_SILENT_ALARM", "caller": {"phoneNumber": f"139{uuid.uuid4().int % 10**8:08d}"},
                          "location": {"point": {"longitude": sd.stations()[5].hq[0],
                                                 "latitude": sd.stations()[5].hq[1]}},
                          "description": "有人跟踪我，不方便说话"})
    report = resp.json()
    assert report["silent"] is True and report.get("voiceCallbackAllowed", False) is False
    assert report["classification"]["priority"] == 1
    fixed = console.patch(f"/v1/{report['name']}", json={
        "requestId": uuid.uuid4().hex, "report": {"classification": {"category": "CATEGORY_POLICE",
                                                                     "incidentType": "ASSAULT",
                                                                     "priority": 1}},
        "updateMask": "classification.incidentType,classification.category", "reason": "文字核实：被尾随男子推搡殴打"})
    assert fixed.status_code == 200, fixed.text
    body = fixed.json()
    assert report["classification"]["incidentType"] != "ASSAULT", "the correction changes the type"
    assert body["classification"]["incidentType"] == "ASSAULT" and body["classification"]["corrected"]
    assert body["timeline"][-1]["action"] == "CORRECTED"


def test_bad_input_is_400_naming_the_fields(console):
    resp = post(console, {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": "110"},
                          "location": {"point": {"longitude": 114.3, "latitude": 30.5}, "accuracyM": -3},
                          "description": "有人打架", "language": "zh_CN",
                          "attachments": [{"kind": "ATTACHMENT_KIND_VIDEO", "contentType": "video/mp4",
                                           "sizeBytes": "900000000", "sha256": "nothex",
                                           "storageUri": "file:///tmp/a.mp4"}]})
    assert resp.status_code == 400
    bad = next(d for d in resp.json()["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    assert {v["field"] for v in bad["fieldViolations"]} == {
        "report.caller.phone_number", "report.location.accuracy_m", "report.language",
        "report.attachments[0].size_bytes", "report.attachments[0].sha256", "report.attachments[0].storage_uri"}
    wrong_mask = console.patch("/v1/reports/20260101-000000000000", json={
        "requestId": uuid.uuid4().hex, "report": {}, "updateMask": "callerName", "reason": "x"})
    assert wrong_mask.status_code == 400 and "update_mask.paths[0]" in wrong_mask.text
