"""先期处置 end to end through Envoy: a 12345 request nobody's matter goes to the local station first,
dispatch opens that station's case for it, an officer accepts, and the 12345 agent reads it on the order."""
from __future__ import annotations

import uuid

import httpx

from sampledata import city
from tests.conftest import eventually
from tools.token import mint

STATION_AREA = "S16"
# The request of test_referral_workorders / test_scoring_e2e that no department's matter covers.
DUMPING = "小区后面的空地上半夜有人倾倒不明液体，气味刺鼻，不知道该归哪个部门管"


def client(stack, roles, station="", sub="") -> httpx.Client:
    token = mint(roles=roles, station=station, sub=sub or f"e2e-{roles[0]}")
    return httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def ok(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_an_order_the_police_handle_first_becomes_a_case_whose_officer_shows_on_the_order(stack):
    hq = next(s for s in city.stations() if s.station_id == STATION_AREA).hq
    with client(stack, ["hotline_agent"], sub="e2e-agent-prelim") as agent:
        order = ok(agent.post("/v1/workOrders", json={"requestId": uuid.uuid4().hex, "workOrder": {
            "source": "WORK_ORDER_SOURCE_HOTLINE_12345", "urgency": 3, "description": DUMPING,
            "addressText": "汉阳区四新大道旁小区后空地", "citizen": {"phoneNumber": "13912340116"},
            "location": {"point": {"longitude": hq[0] + 0.001, "latitude": hq[1] + 0.001}}}}))
        assert order["status"] == "WORK_ORDER_STATUS_PRELIMINARY_POLICE", order
        station = order["preliminaryStation"].removeprefix("stations/")

        with client(stack, ["station_chief"], station, "e2e-chief-prelim") as chief:
            def offered():
                cases = ok(chief.get("/v1/cases", params={"stationId": station, "pageSize": 100})).get("cases", [])
                mine = [c for c in cases if c.get("report") == order["name"]]
                return mine if mine and mine[0].get("assignments") else None

            [case] = eventually(offered)
            assert case["stationId"] == station and DUMPING in case["summary"] and "办理时限" in case["summary"]
            primary = next(a for a in case["assignments"] if a["role"] == "ASSIGNMENT_ROLE_PRIMARY")
            unit = ok(chief.get(f"/v1/{primary['unit']}"))

        officer = mint(roles=["officer"], station=unit["stationId"], sub=unit["officers"][0]["officerId"])
        accepted = httpx.post(f"{stack.gateway_url}/v1/{primary['name']}:accept",
                              json={"requestId": uuid.uuid4().hex}, headers={"Authorization": f"Bearer {officer}"},
                              timeout=20)
        assert accepted.status_code == 200, accepted.text

        def followed():
            seen = ok(agent.get(f"/v1/{order['name']}"))
            return seen if any(e["action"] == "POLICE_ACCEPTED" for e in seen.get("timeline", [])) else None

        seen = eventually(followed)
        police = {e["action"]: e["detail"] for e in seen["timeline"] if e["action"].startswith("POLICE_")}
        assert police["POLICE_ACCEPTED"] == f"民警已接单：{primary['callSign']}"
        assert case["name"] in police["POLICE_CASE_OPENED"]
        assert seen["status"] == "WORK_ORDER_STATUS_PRELIMINARY_POLICE"
