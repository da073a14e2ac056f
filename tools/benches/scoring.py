"""Scoring: from an officer's report-back (回告) through dispatch's feed to explained ledger entries, and the read
side (officer score, explanation, rankings, recomputation under a rule set) through the gateway.

Cases are handled one after another by their offered unit's officer, through the gateway as the officer's
phone does; the latency is from the report-back RPC's answer until scoring lists the assignment's entries.
"""
from __future__ import annotations

import time
import uuid

import httpx

from sampledata import city
from tools.benches._common import percentiles
from tools.token import mint

CASES = 30


def _client(stack, roles, station="", sub="") -> httpx.Client:
    token = mint(roles=roles, station=station, sub=sub or f"bench-{roles[0]}")
    return httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _wait(fn, timeout: float = 20.0, interval: float = 0.02):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(interval)
    return None


def _handle_one(stack, dispatcher: httpx.Client, i: int) -> tuple[float, str, str] | None:
    stations = city.stations()
    st = stations[i % len(stations)]
    lon, lat = st.hq[0] + 0.002 + (i // len(stations)) * 0.004, st.hq[1] + 0.002
    report = dispatcher.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": {
        "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": f"1391{i:07d}"},
        "location": {"point": {"longitude": round(lon, 6), "latitude": round(lat, 6)}},
        "description": f"积分压测警情{i}：路口有人打架"}}).json()

    def offered():
        cases = dispatcher.get("/v1/cases", params={"report": report["name"]}).json().get("cases", [])
        if not cases:
            return None
        case = dispatcher.get(f"/v1/{cases[0]['name']}").json()
        return next((a for a in case.get("assignments", []) if a.get("officers")
                     and a.get("state") == "ASSIGNMENT_STATE_OFFERED"), None)

    assignment = _wait(offered)
    if assignment is None:
        return None
    officer = assignment["officers"][0]["officerId"]
    with _client(stack, ["officer"], assignment.get("stationId", ""), officer) as phone:
        name = assignment["name"]
        if phone.post(f"/v1/{name}:accept", json={"requestId": uuid.uuid4().hex}).status_code != 200:
            return None
        for state in ("ASSIGNMENT_STATE_EN_ROUTE", "ASSIGNMENT_STATE_ON_SCENE", "ASSIGNMENT_STATE_CLEARED"):
            phone.post(f"/v1/{name}:advance", json={"requestId": uuid.uuid4().hex, "state": state})
        back = phone.post(f"/v1/{name}:reportBack", json={"requestId": uuid.uuid4().hex,
                                                          "outcome": "OUTCOME_MEDIATED"})
        if back.status_code != 200:
            return None
        sent = time.perf_counter()

        def scored():
            entries = phone.get("/v1/ledgerEntries", params={"subject": name}).json().get("ledgerEntries", [])
            return any(e["ruleId"] == "QTY-REPORT-BACK" for e in entries)

        if not _wait(scored):
            return None
        return time.perf_counter() - sent, officer, assignment.get("stationId", "")


def _timed(call, n: int = 20) -> dict:
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        resp = call()
        samples.append(time.perf_counter() - t)
        assert resp.status_code == 200, resp.text
    return percentiles(samples)


def run(stack, say) -> dict:
    latencies, officers, stations = [], [], set()
    with _client(stack, ["dispatcher"]) as dispatcher:
        say(f"handling {CASES} cases to report-back through the gateway")
        for i in range(CASES):
            done = _handle_one(stack, dispatcher, i)
            if done:
                latencies.append(done[0])
                officers.append(done[1])
                stations.add(done[2])
    say(f"{len(latencies)} cases scored; timing the read side")
    with _client(stack, ["commander"], sub="bench-commander") as cmd:
        officer, station = officers[0], sorted(stations)[0]
        results = {
            "cases_scored": len(latencies),
            "report_back_to_ledger": percentiles(latencies),
            "officer_score": _timed(lambda: cmd.get(f"/v1/officers/{officer}/score",
                                                    params={"trendGranularity": "GRANULARITY_DAY"})),
            "explain_score": _timed(lambda: cmd.get(f"/v1/officers/{officer}/score:explain")),
            "rankings_across_stations": _timed(lambda: cmd.get("/v1/rankings",
                                                               params={"scope": "RANKING_SCOPE_STATIONS"})),
            "recompute_station_month": _timed(lambda: cmd.get(f"/v1/stations/{station}/score:recompute",
                                                              params={"ruleSet": "ruleSets/1"})),
            "warning_statistics": _timed(lambda: cmd.get("/v1/statistics/warnings")),
        }
    return results
