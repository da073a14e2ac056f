"""Another station's data, end to end through Envoy: access grants bound to a case (权随案走: an officer
working a case of their station asks for another station's cases; the chief approves; the officer
reads them; the grant is revoked and they are gone again; every step on the case's timeline), and
border cases (边界警情) shared with the station across the line."""
from __future__ import annotations

import uuid

import httpx
import pytest

from sampledata import city
from tests.conftest import eventually
from tools.token import mint


@pytest.fixture(scope="module")
def desk(stack):
    token = mint(roles=["dispatcher"], sub="e2e-grants-desk")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
        yield c


def file_report(desk: httpx.Client, grid: city.Grid, description: str, point=None) -> dict:
    point = point or grid.polygon.representative_point()
    # A caller of their own: the same number ringing again nearby would be merged into the first report.
    phone = f"139{uuid.uuid4().int % 10**8:08d}"
    report = {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": phone, "name": "周先生"},
              "location": {"point": {"longitude": round(point.x, 6), "latitude": round(point.y, 6)}, "accuracyM": 10,
                           "source": "LOCATION_SOURCE_GNSS"}, "description": description}
    filed = desk.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": report})
    assert filed.status_code == 200, filed.text
    name = filed.json()["name"]

    def case():
        cases = desk.get("/v1/cases", params={"report": name}).json()["cases"]
        return cases[0] if cases else None

    return eventually(case)


def as_(role: str, station: str, sub: str) -> dict:
    return {"Authorization": f"Bearer {mint(roles=[role], station=station, sub=sub)}"}


def test_a_grant_is_asked_for_approved_used_and_revoked_through_the_gateway(stack, desk):
    grids = {g.station_id: g for g in city.grids()}
    mine = file_report(desk, grids["S01"], "楼下两伙人在吵架推搡，快打起来了")
    # Of another district: automatic offers stay in a district, so no S01 unit is on it.
    theirs = file_report(desk, grids["S10"], "我家店里的收银机被人撬了，钱被偷走了")
    assert (mine["stationId"], theirs["stationId"]) == ("S01", "S10")
    # A public-order matter: the grant policy leaves it to the station chief.
    assert mine["incidentType"] in ("FIGHT", "DISPUTE"), mine["incidentType"]
    base = stack.gateway_url
    me = as_("officer", "S01", "e2e-grant-officer")
    chief = as_("station_chief", "S01", "e2e-grant-chief")

    assert httpx.get(f"{base}/v1/{theirs['name']}", headers=me).status_code == 404
    asked = httpx.post(f"{base}/v1/{mine['name']}/accessGrants", headers=me, json={
        "requestId": uuid.uuid4().hex, "scope": "ACCESS_SCOPE_STATION_CASES", "stationIds": ["S10"],
        "reason": "纠纷一方称对方曾在邻所辖区作案", "hours": 4})
    assert asked.status_code == 200, asked.text
    grant = asked.json()
    assert grant["state"] == "ACCESS_GRANT_STATE_PENDING" and grant["stateLabel"] == "待审批"

    refused = httpx.post(f"{base}/v1/{grant['name']}:approve", headers=me, json={"requestId": uuid.uuid4().hex})
    assert refused.status_code == 403, refused.text
    approved = httpx.post(f"{base}/v1/{grant['name']}:approve", headers=chief,
                          json={"requestId": uuid.uuid4().hex, "comment": "同意，限本案使用"})
    assert approved.status_code == 200 and approved.json()["state"] == "ACCESS_GRANT_STATE_ACTIVE", approved.text

    seen = httpx.get(f"{base}/v1/{theirs['name']}", headers=me)
    assert seen.status_code == 200 and seen.json()["stationId"] == "S10", seen.text
    listed = httpx.get(f"{base}/v1/accessGrants", headers=chief, params={"case": mine["name"]}).json()
    assert [(g["name"], g["uses"]) for g in listed["accessGrants"]] == [(grant["name"], 1)]

    revoked = httpx.post(f"{base}/v1/{grant['name']}:revoke", headers=me,
                         json={"requestId": uuid.uuid4().hex, "reason": "已查明"})
    assert revoked.status_code == 200 and revoked.json()["state"] == "ACCESS_GRANT_STATE_REVOKED", revoked.text
    assert httpx.get(f"{base}/v1/{theirs['name']}", headers=me).status_code == 404

    trail = [e["action"] for e in httpx.get(f"{base}/v1/{mine['name']}", headers=chief).json()["timeline"]
             if e["action"].startswith("ACCESS_")]
    assert trail == ["ACCESS_REQUESTED", "ACCESS_GRANTED", "ACCESS_USED", "ACCESS_REVOKED"]
    stats = httpx.get(f"{base}/v1/statistics/accessGrants", headers=as_("supervisor", "", "e2e-supervisor"),
                      params={"stationId": "S01"}).json()
    assert stats["stations"][0]["stationId"] == "S01" and int(stats["stations"][0]["revoked"]) >= 1


def test_a_border_report_is_the_neighbour_s_report_and_case_too(stack, desk):
    stations = {s.station_id: s for s in city.stations()}
    a = stations["S01"]
    b = next(s for s in city.stations() if s.station_id != "S01"
             and s.polygon.boundary.intersection(a.polygon.boundary).length > 0)
    shared = a.polygon.boundary.intersection(b.polygon.boundary)
    line = max(getattr(shared, "geoms", [shared]), key=lambda g: g.length)
    mid = line.interpolate(0.5, normalized=True)
    c = a.polygon.centroid
    norm = ((c.x - mid.x) ** 2 + (c.y - mid.y) ** 2) ** 0.5
    point = type(mid)(mid.x + (c.x - mid.x) / norm * 5e-5, mid.y + (c.y - mid.y) / norm * 5e-5)  # ~5 m inside S01
    case = file_report(desk, None, "两辆车在路口刮擦，司机吵起来了", point=point)
    assert case["stationId"] == "S01" and case["sharedStationIds"] == [b.station_id]
    neighbour = as_("station_chief", b.station_id, "e2e-border-chief")
    base = stack.gateway_url
    assert httpx.get(f"{base}/v1/{case['name']}", headers=neighbour).status_code == 200
    assert httpx.get(f"{base}/v1/{case['report']}", headers=neighbour).status_code == 200
    listed = httpx.get(f"{base}/v1/cases", headers=neighbour, params={"pageSize": 100}).json()["cases"]
    assert case["name"] in {x["name"] for x in listed}
