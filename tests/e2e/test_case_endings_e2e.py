"""Every case ends well, end to end through Envoy: a dispatcher cancels a duplicate case and closes
another with an outcome; the units stand down and intake closes the reports."""
from __future__ import annotations

import json
import threading
import uuid

import httpx
import pytest

from tests.conftest import eventually
from tools.token import mint


@pytest.fixture(scope="module")
def desk(stack):
    token = mint(roles=["dispatcher"], sub="e2e-endings-desk")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
        yield c


def case_for(desk: httpx.Client, description: str, lon: float, lat: float) -> dict:
    report = {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": f"137{uuid.uuid4().int % 10**8:08d}"},
              "location": {"point": {"longitude": lon, "latitude": lat}, "accuracyM": 10,
                           "source": "LOCATION_SOURCE_GNSS"}, "description": description}
    filed = desk.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": report})
    assert filed.status_code == 200, filed.text

    def case():
        cases = desk.get("/v1/cases", params={"report": filed.json()["name"]}).json()["cases"]
        return cases[0] if cases and cases[0].get("assignments") else None

    return eventually(case)


def test_a_case_is_cancelled_or_closed_and_its_report_follows(desk):
    dup = case_for(desk, "小区门口有人打架，已经打起来了", 114.262, 30.611)
    missing_notes = desk.post(f"/v1/{dup['name']}:cancel", json={"requestId": uuid.uuid4().hex,
                                                                 "reason": "CANCEL_REASON_FALSE_ALARM"})
    assert missing_notes.status_code == 400 and "notes" in missing_notes.text
    cancelled = desk.post(f"/v1/{dup['name']}:cancel", json={"requestId": uuid.uuid4().hex,
                                                             "reason": "CANCEL_REASON_DUPLICATE", "notes": "同一事件"})
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "CASE_STATUS_CANCELLED"
    assert {a["state"] for a in cancelled.json()["assignments"]} <= {"ASSIGNMENT_STATE_CANCELLED"}

    case = case_for(desk, "饭店里两桌客人吵起来了，有人摔东西", 114.301, 30.582)
    closed = desk.post(f"/v1/{case['name']}:close", json={"requestId": uuid.uuid4().hex,
                                                          "outcome": "OUTCOME_MEDIATED", "notes": "现场调解"})
    assert closed.status_code == 200 and closed.json()["status"] == "CASE_STATUS_CLOSED", closed.text
    for c in (cancelled.json(), closed.json()):
        eventually(lambda c=c: desk.get(f"/v1/{c['report']}").json()["status"] == "REPORT_STATUS_CLOSED" or None)


def test_an_unsatisfied_citizen_s_case_is_reviewed_and_reopened_through_the_gateway(stack, desk):
    case = case_for(desk, "楼下邻居装修，两家吵起来了，请民警来调解", 114.285, 30.595)
    base = stack.gateway_url
    for a in case["assignments"]:
        unit = desk.get(f"/v1/{a['unit']}").json()
        officer = {"Authorization": "Bearer " + mint(roles=["officer"], station=unit["stationId"],
                                                     sub=unit["officers"][0]["officerId"])}
        if a["role"] != "ASSIGNMENT_ROLE_PRIMARY":
            httpx.post(f"{base}/v1/{a['name']}:decline", headers=officer,
                       json={"requestId": uuid.uuid4().hex, "reason": "另有任务"})
            continue
        for step, body in ((":accept", {}), (":advance", {"state": "ASSIGNMENT_STATE_EN_ROUTE"}),
                           (":advance", {"state": "ASSIGNMENT_STATE_ON_SCENE"}),
                           (":advance", {"state": "ASSIGNMENT_STATE_CLEARED"}),
                           (":reportBack", {"outcome": "OUTCOME_MEDIATED", "notes": "已调解"})):
            done = httpx.post(f"{base}/v1/{a['name']}{step}", headers=officer,
                              json={"requestId": uuid.uuid4().hex, **body})
            assert done.status_code == 200, done.text
    rated = desk.post(f"/v1/{case['name']}:rate", json={"requestId": uuid.uuid4().hex,
                                                        "satisfaction": "SATISFACTION_UNSATISFIED",
                                                        "comment": "问题没有解决"})
    assert rated.status_code == 200, rated.text
    assert rated.json()["followUp"]["reviewState"] == "FOLLOW_UP_REVIEW_STATE_OPEN"
    chief = {"Authorization": "Bearer " + mint(roles=["station_chief"], station=case["stationId"],
                                               sub="e2e-review-chief")}
    reopened = httpx.post(f"{base}/v1/{case['name']}:reviewFollowUp", headers=chief,
                          json={"requestId": uuid.uuid4().hex, "decision": "REVIEW_DECISION_REOPEN",
                                "answer": "重新派警上门调解"})
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["status"] == "CASE_STATUS_PENDING" and reopened.json()["reopenTime"]


def test_an_officer_says_what_the_unit_is_doing_and_the_panic_button_brings_help(stack, desk):
    units = desk.get("/v1/units", params={"stationId": "S12", "kind": "UNIT_KIND_PATROL_CAR"}).json()["units"]
    unit = next(u for u in units if u["status"] == "UNIT_STATUS_AVAILABLE")
    officer = {"Authorization": "Bearer " + mint(roles=["officer"], station="S12",
                                                 sub=unit["officers"][0]["officerId"])}
    base = stack.gateway_url
    back = httpx.post(f"{base}/v1/{unit['name']}:setStatus", headers=officer,
                      json={"requestId": uuid.uuid4().hex, "status": "UNIT_STATUS_AT_STATION", "reason": "回所"})
    assert back.status_code == 200 and back.json()["status"] == "UNIT_STATUS_AT_STATION", back.text
    sos = httpx.post(f"{base}/v1/{unit['name']}:setStatus", headers=officer,
                     json={"requestId": uuid.uuid4().hex, "status": "UNIT_STATUS_EMERGENCY",
                           "reason": "遭遇持械袭击"})
    assert sos.status_code == 200, sos.text

    def help_sent():
        cases = desk.get("/v1/cases", params={"stationId": "S12", "pageSize": 50}).json().get("cases", [])
        return next((c for c in cases if c["incidentType"] == "OFFICER_EMERGENCY"
                     and c["report"].startswith(unit["name"]) and c.get("assignments")), None)

    case = eventually(help_sent)
    assert case["level"] == "CASE_LEVEL_CITY" and case["priority"] == 1
    assert unit["name"] not in {a["unit"] for a in case["assignments"]}


def _watch(base: str, headers: dict, params: dict, changes: list, stop: threading.Event) -> None:
    """Reads GET /v1/units:watch (the transcoder's JSON array that grows) into `changes`."""
    decoder, buffer = json.JSONDecoder(), ""
    try:
        with httpx.stream("GET", f"{base}/v1/units:watch", params=params, headers=headers, timeout=30) as resp:
            changes.append({"status_code": resp.status_code})
            for chunk in resp.iter_text():
                buffer += chunk
                while True:
                    buffer = buffer.lstrip("[,\r\n ")
                    try:
                        item, end = decoder.raw_decode(buffer)
                    except ValueError:
                        break
                    changes.append(item)
                    buffer = buffer[end:]
                if stop.is_set():
                    return
    except httpx.HTTPError:
        pass


def test_the_big_screen_watches_its_station_s_units_move_through_the_gateway(stack, desk):
    units = desk.get("/v1/units", params={"stationId": "S13", "kind": "UNIT_KIND_PATROL_CAR"}).json()["units"]
    unit = next(u for u in units if u["status"] == "UNIT_STATUS_AVAILABLE")
    chief = {"Authorization": "Bearer " + mint(roles=["station_chief"], station="S13", sub="e2e-chief-S13")}
    officer = {"Authorization": "Bearer " + mint(roles=["officer"], station="S13",
                                                 sub=unit["officers"][0]["officerId"])}
    changes: list = []
    stop = threading.Event()
    reader = threading.Thread(target=_watch, args=(stack.gateway_url, chief, {"stationIds": "S13"}, changes, stop),
                              daemon=True)
    reader.start()
    eventually(lambda: changes or None)
    assert changes[0] == {"status_code": 200}

    busy = httpx.post(f"{stack.gateway_url}/v1/{unit['name']}:setStatus", headers=officer,
                      json={"requestId": uuid.uuid4().hex, "status": "UNIT_STATUS_BUSY", "reason": "处理群众求助"})
    assert busy.status_code == 200, busy.text
    seen = eventually(lambda: next((c for c in changes[1:] if c.get("unit", {}).get("name") == unit["name"]
                                    and c["unit"]["status"] == "UNIT_STATUS_BUSY"), None))
    assert int(seen["sequence"]) > 0 and seen["action"]
    assert {c["unit"]["stationId"] for c in changes[1:] if "unit" in c} == {"S13"}, "only the chief's station"
    stop.set()
    # Another station's units are not the chief's to watch.
    other: list = []
    _watch(stack.gateway_url, chief, {"stationIds": "S11"}, other, threading.Event())
    assert other[0] == {"status_code": 403} and other[1]["details"][0]["reason"] == "OUT_OF_JURISDICTION", other
    back = httpx.post(f"{stack.gateway_url}/v1/{unit['name']}:setStatus", headers=officer,
                      json={"requestId": uuid.uuid4().hex, "status": "UNIT_STATUS_AVAILABLE", "reason": "处理完毕"})
    assert back.status_code == 200, back.text
