"""Every case ends well, end to end through Envoy: a dispatcher cancels a duplicate case and closes
another with an outcome; the units stand down and intake closes the reports."""
from __future__ import annotations

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
