"""The warehouse end to end through Envoy: a report filed at intake reaches the warehouse's facts and
rollups over the feeds and is counted by the threshold check, the heat map, the trend and the KPIs over
REST; the sample history `make run` loads is there; each caller sees their jurisdiction only (a
station's officer their station, a district commander the district, the city's command everything)."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import httpx
import pytest

from sampledata import city
from services.runtime.policy import org
from tests.conftest import eventually
from tools.token import mint

STATION = "S03"
UTC = timezone.utc


def client(stack, roles, station="", sub="") -> httpx.Client:
    token = mint(roles=roles, station=station or None, sub=sub or f"e2e-wh-{roles[0]}")
    return httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def city_box(pad=0.02) -> dict:
    west, south, east, north = city.city_outline().polygon.bounds
    return {"box.south_west.longitude": west - pad, "box.south_west.latitude": south - pad,
            "box.north_east.longitude": east + pad, "box.north_east.latitude": north + pad}


@pytest.fixture(scope="module")
def filed(stack):
    """A fight reported in STATION's area, through the gateway, at the real clock."""
    hq = next(s for s in city.stations() if s.station_id == STATION).hq
    with client(stack, ["dispatcher"]) as desk:
        before = datetime.now(UTC) - timedelta(seconds=5)
        resp = desk.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": {
            "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": f"139{uuid.uuid4().int % 10**8:08d}"},
            "location": {"point": {"longitude": hq[0] + 0.002, "latitude": hq[1] + 0.001}},
            "description": "烧烤店门口有人打架，有人拿酒瓶砸人"}})
        assert resp.status_code == 200, resp.text
        report = resp.json()
    assert report["stationId"] == STATION
    return dict(report=report, start=before, end=datetime.now(UTC) + timedelta(minutes=1))


def test_a_filed_report_reaches_the_warehouse_and_is_counted(stack, filed):
    report = filed["report"]
    params = {"startTime": rfc3339(filed["start"]), "endTime": rfc3339(filed["end"]), "stationId": STATION,
              "incidentTypes": report["classification"]["incidentType"], "threshold": 1}
    with client(stack, ["commander"]) as cmd:
        def counted():
            r = cmd.get("/v1/warehouse/threshold", params=params)
            assert r.status_code == 200, r.text
            return r.json() if int(r.json().get("count", 0)) >= 1 else None

        check = eventually(counted, timeout=30)
        assert check["exceeded"] is True
        kpis = cmd.get("/v1/warehouse/stationKpis", params={
            "stationId": STATION, "startTime": rfc3339(filed["start"]), "endTime": rfc3339(filed["end"])})
        assert kpis.status_code == 200, kpis.text
        assert int(kpis.json()["reports"]) >= 1
        assert kpis.json()["districtId"] == org().district_of[STATION]


def test_the_sample_history_is_loaded_and_read_from_the_rollups(stack):
    end = datetime.now(UTC)
    with client(stack, ["commander"]) as cmd:
        year = cmd.get("/v1/warehouse/heatMap", params={
            **city_box(), "startTime": rfc3339(end - timedelta(days=365)), "endTime": rfc3339(end)})
        assert year.status_code == 200, year.text
        heat = year.json()
        assert int(heat["total"]) > 10_000  # of the 50,000 reports over two years
        assert heat["cells"][0]["cell"] and int(heat["cells"][0]["count"]) >= int(heat["cells"][-1]["count"])
        trend = cmd.get("/v1/warehouse/trend", params={
            "stationId": "S01", "startTime": rfc3339(end - timedelta(days=90)), "endTime": rfc3339(end),
            "granularity": "GRANULARITY_WEEK"})
        assert trend.status_code == 200, trend.text
        t = trend.json()
        assert int(t["total"]) > 0 and int(t["lastYearTotal"]) > 0 and int(t["previousTotal"]) > 0
        assert sum(int(b.get("count", 0)) for b in t["buckets"]) == int(t["total"])


def test_each_caller_sees_their_jurisdiction_only(stack):
    end = datetime.now(UTC)
    window = {"startTime": rfc3339(end - timedelta(days=365)), "endTime": rfc3339(end)}
    district = org().district_of[STATION]
    with client(stack, ["commander"]) as cmd, client(stack, ["officer"], STATION, "P1109999") as officer, \
            client(stack, ["district_commander"], STATION, "e2e-wh-dc") as dc:
        everything = int(cmd.get("/v1/warehouse/heatMap", params={**city_box(), **window}).json()["total"])
        station_only = cmd.get("/v1/warehouse/heatMap", params={**city_box(), **window, "stationId": STATION})
        mine = officer.get("/v1/warehouse/heatMap", params={**city_box(), **window})
        assert mine.status_code == 200, mine.text
        assert int(mine.json()["total"]) == int(station_only.json()["total"]) < everything
        other = next(s for s in sorted(org().district_of) if s != STATION)
        refused = officer.get("/v1/warehouse/trend", params={**window, "stationId": other})
        assert refused.status_code == 403, refused.text
        assert officer.get("/v1/warehouse/stationKpis", params={**window, "districtId": district}).status_code == 403
        # The district commander reads the district (every station of it), not another district.
        ours = dc.get("/v1/warehouse/stationKpis", params={**window, "districtId": district})
        assert ours.status_code == 200, ours.text
        whole = cmd.get("/v1/warehouse/stationKpis", params={**window, "districtId": district}).json()
        assert ours.json()["reports"] == whole["reports"]
        elsewhere = next(d for d in sorted(set(org().district_of.values())) if d != district)
        assert dc.get("/v1/warehouse/stationKpis", params={**window, "districtId": elsewhere}).status_code == 403


def test_bad_requests_name_their_fields_through_the_gateway(stack):
    with client(stack, ["commander"]) as cmd:
        bad = cmd.get("/v1/warehouse/heatMap", params={"startTime": "2028-01-02T00:00:00Z",
                                                       "endTime": "2028-01-01T00:00:00Z"})
        assert bad.status_code == 400, bad.text
        text = bad.text
        assert "box" in text and "end_time" in text
        assert "Traceback" not in text


def test_top_types_and_a_csv_export_through_the_gateway(stack, filed):
    end = datetime.now(UTC)
    window = {"startTime": rfc3339(end - timedelta(days=30)), "endTime": rfc3339(end)}
    with client(stack, ["commander"]) as cmd, client(stack, ["station_chief"], STATION, "e2e-wh-chief") as chief:
        top = cmd.get("/v1/warehouse/topTypes", params={**window, "limit": 5})
        assert top.status_code == 200, top.text
        body = top.json()
        counts = [int(t["count"]) for t in body["types"]]
        assert 0 < len(counts) <= 5 and counts == sorted(counts, reverse=True) and sum(counts) <= int(body["total"])
        places = cmd.get("/v1/warehouse/topPlaces", params={**window, "stationId": STATION, "limit": 3})
        assert places.status_code == 200, places.text
        assert 0 < len(places.json()["places"]) <= 3
        # The station chief's export: CSV of their station's reports of the last day, a header line first.
        day = {"startTime": rfc3339(end - timedelta(days=1)), "endTime": rfc3339(end + timedelta(minutes=1))}
        export = chief.get("/v1/warehouse/reports:export", params=day)
        assert export.status_code == 200, export.text
        assert export.headers["content-type"].startswith("text/csv")
        lines = export.text.splitlines()
        assert lines[0].startswith("report_id,receive_time,category,incident_type")
        rows = [line.split(",") for line in lines[1:]]
        station_col = lines[0].split(",").index("station_id")
        assert {r[station_col] for r in rows} == {STATION}
        assert filed["report"]["name"] in {r[0] for r in rows}  # the report filed at intake, through the feeds
        other = next(s for s in sorted(org().district_of) if s != STATION)
        refused = chief.get("/v1/warehouse/reports:export", params={**day, "stationId": other})
        assert refused.status_code == 403, refused.text
        bad = cmd.get("/v1/warehouse/reports:export", params={"category": "THEFT"})
        assert bad.status_code == 400 and "category" in bad.text and "start_time" in bad.text
