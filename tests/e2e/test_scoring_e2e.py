"""Scoring end to end through Envoy: a report becomes a case, the officer takes it through to report-back with
dispatch's RPCs, and the scoring service turns dispatch's events into explained ledger entries, warnings and a
legal officer's review. Restarting scoring with its dispatch cursor at 0 replays the feed without double points.
"""
from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import create_engine, text

from sampledata import city
from smart110.common.v1 import events_pb2
from smart110.scoring.v1 import scoring_service_pb2_grpc as scoring_grpc
from services.runtime.db import sqlalchemy_url
from tests import support
from tests.conftest import eventually
from tools.token import mint

STATION = "S20"


def client(stack, roles, station="", sub="") -> httpx.Client:
    token = mint(roles=roles, station=station, sub=sub or f"e2e-{roles[0]}")
    return httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


def ok(resp: httpx.Response) -> dict:
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest.fixture(scope="module")
def handled(stack):
    """A fight reported in STATION's area, taken by the first offered unit's officer to report-back."""
    hq = next(s for s in city.stations() if s.station_id == STATION).hq
    with client(stack, ["dispatcher"], STATION) as dispatcher:
        report = ok(dispatcher.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": {
            "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": "13912340020"},
            "location": {"point": {"longitude": hq[0] + 0.001, "latitude": hq[1] + 0.001}},
            "description": "饭店门口两伙人打架，有人受伤"}}))

        def offered():
            cases = ok(dispatcher.get("/v1/cases", params={"report": report["name"]}))["cases"]
            if not cases:
                return None
            case = ok(dispatcher.get(f"/v1/{cases[0]['name']}"))
            return case if any(a.get("officers") for a in case.get("assignments", [])) else None

        case = eventually(offered)
    assignment = next(a for a in case["assignments"] if a.get("officers"))
    officer = assignment["officers"][0]["officerId"]
    unit_station = assignment.get("stationId") or case["stationId"]
    with client(stack, ["officer"], unit_station, officer) as phone:
        ok(phone.post(f"/v1/{assignment['name']}:accept", json={"requestId": uuid.uuid4().hex}))
        for state in ("ASSIGNMENT_STATE_EN_ROUTE", "ASSIGNMENT_STATE_ON_SCENE", "ASSIGNMENT_STATE_CLEARED"):
            ok(phone.post(f"/v1/{assignment['name']}:advance", json={"requestId": uuid.uuid4().hex, "state": state}))
        ok(phone.post(f"/v1/{assignment['name']}:reportBack", json={
            "requestId": uuid.uuid4().hex, "outcome": "OUTCOME_NO_ISSUE_FOUND", "notes": "到场后双方已离开"}))
    with client(stack, ["dispatcher"], STATION) as dispatcher:
        # The citizen follow-up (回访) once the case is reported back.
        ok(dispatcher.post(f"/v1/{case['name']}:rate", json={
            "requestId": uuid.uuid4().hex, "satisfaction": "SATISFACTION_SATISFIED", "comment": "民警来得很快"}))
    return dict(case=case, assignment=assignment["name"], officer=officer, station=unit_station,
                crew=sorted(o["officerId"] for o in assignment["officers"]))


def ledger_for(stack, handled) -> list[dict]:
    with client(stack, ["officer"], handled["station"], handled["officer"]) as me:
        return ok(me.get("/v1/ledgerEntries", params={"subject": handled["assignment"],
                                                       "pageSize": 100})).get("ledgerEntries", [])


EXPECTED = ["EFF-ACCEPT-FAST", "EFF-ARRIVE-ON-TARGET", "EFF-REPORT-BACK-ON-TIME", "QTY-ACCEPT",
            "QTY-REPORT-BACK", "QUA-OUTCOME-CONTRADICTS"]


def test_the_citizen_follow_up_scores_quality_for_the_crew(stack, handled):
    def rated():
        with client(stack, ["officer"], handled["station"], handled["officer"]) as me:
            found = ok(me.get("/v1/ledgerEntries", params={"subject": handled["case"]["name"]})).get(
                "ledgerEntries", [])
        return found or None

    [entry] = eventually(rated)
    assert (entry["ruleId"], entry["points"], entry["officerId"]) == ("QUA-CASE-SATISFIED", 1, handled["officer"])
    assert entry["explanation"] == f"{handled['case']['name']}群众回访满意，+1分"


def test_dispatch_lifecycle_becomes_explained_ledger_entries_and_a_warning(stack, handled):
    entries = eventually(lambda: (lambda e: e if len(e) >= len(EXPECTED) else None)(ledger_for(stack, handled)))
    assert sorted(e["ruleId"] for e in entries) == EXPECTED
    assert all(e["officerId"] == handled["officer"] and e["ruleSetVersion"] == "1" for e in entries)
    contradiction = next(e for e in entries if e["ruleId"] == "QUA-OUTCOME-CONTRADICTS")
    assert contradiction["points"] == -2 and contradiction["dimension"] == "DIMENSION_QUALITY"
    assert "打架斗殴" in contradiction["explanation"] and contradiction["source"]["eventType"] == \
        "dispatch.AssignmentChanged"

    with client(stack, ["officer"], handled["station"], handled["officer"]) as me:
        warnings = ok(me.get("/v1/warnings", params={"caseName": handled["case"]["name"]}))["warnings"]
        assert [(w["kind"], w["officerId"]) for w in warnings] == [("WARNING_KIND_OUTCOME_CONTRADICTS_TYPE",
                                                                    handled["officer"])]
        explained = ok(me.get(f"/v1/officers/{handled['officer']}/score:explain"))
        assert explained["score"]["total"] == sum(r["points"] for r in explained["reasons"])
        other = me.get("/v1/stations/S01/score")
        assert other.status_code == 403, other.text
    with client(stack, ["commander"], sub="e2e-commander") as cmd:
        # The feed is for service credentials: a person, even the commander, is refused it.
        assert cmd.get("/v1/scoring/events", params={"stopAtEnd": True}).status_code == 403
    with support.channel(stack.address("scoring")) as channel:
        feed = list(scoring_grpc.ScoringServiceStub(channel).StreamEvents(
            events_pb2.StreamEventsRequest(stop_at_end=True), timeout=20))
    assert "scoring.WarningRaised" in {e.type for e in feed}
    with client(stack, ["commander"], sub="e2e-commander") as cmd:

        # The alerts service consumes scoring.WarningRaised and alerts the officer's station.
        def alerted():
            found = ok(cmd.get("/v1/alerts", params={"kind": "RULE_KIND_ENFORCEMENT",
                                                     "subject": handled["case"]["name"]})).get("alerts", [])
            return [a for a in found if a.get("labels", {}).get("officer_id") == handled["officer"]]

        [alert] = eventually(alerted)
        assert "执法预警" in alert["summary"] and alert["labels"]["warning"] == warnings[0]["name"]


def test_legal_officer_reviews_the_case_through_the_gateway(stack, handled):
    eventually(lambda: ledger_for(stack, handled))
    with client(stack, ["legal_officer"], handled["case"]["stationId"], "e2e-legal") as legal:
        review = ok(legal.post("/v1/reviews", json={"requestId": uuid.uuid4().hex, "review": {
            "caseName": handled["case"]["name"], "evidence": "EVIDENCE_VERDICT_MISSING",
            "missingEvidence": ["现场照片"], "procedure": "PROCEDURE_VERDICT_CORRECT",
            "classification": "CLASSIFICATION_VERDICT_CORRECT"}}))
        # Every officer of the crew reported back: the review covers each of them, three findings apiece.
        assert sorted(review["officerIds"]) == handled["crew"]
        assert len(review["ledgerEntries"]) == 3 * len(handled["crew"])
        bad = legal.post("/v1/reviews", json={"review": {"caseName": "cases/nope"}})
        assert bad.status_code == 400, bad.text
    with client(stack, ["dispatcher"], handled["station"]) as dispatcher:
        assert dispatcher.post("/v1/reviews", json={"requestId": "x", "review": {}}).status_code in (400, 403)


def test_replaying_dispatch_feed_from_zero_after_a_restart_adds_no_points(stack, handled):
    eventually(lambda: len(ledger_for(stack, handled)) >= len(EXPECTED))
    admin = create_engine(sqlalchemy_url(stack.admin_url))
    try:
        with admin.connect() as conn:
            count = conn.execute(text("SELECT count(*) FROM scoring.ledger_entries")).scalar_one()
            cursor = conn.execute(text(
                "SELECT last_sequence FROM scoring.feed_cursors WHERE source = 'dispatch'")).scalar_one()
            inbox = conn.execute(text("SELECT count(*) FROM scoring.inbox WHERE source = 'dispatch'")).scalar_one()
        assert cursor > 0 and inbox > 0
        stack.stop_service("scoring")
        with admin.begin() as conn:
            conn.execute(text("UPDATE scoring.feed_cursors SET last_sequence = 0 WHERE source = 'dispatch'"))
        stack.start_service("scoring")
        stack.wait_serving("scoring")

        def caught_up():
            with admin.connect() as conn:
                return conn.execute(text(
                    "SELECT last_sequence FROM scoring.feed_cursors WHERE source = 'dispatch'")).scalar_one() >= cursor

        eventually(caught_up, timeout=60)
        with admin.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM scoring.ledger_entries")).scalar_one() == count
            assert conn.execute(text(
                "SELECT count(*) FROM scoring.inbox WHERE source = 'dispatch'")).scalar_one() >= inbox
    finally:
        admin.dispose()
    assert sorted(e["ruleId"] for e in ledger_for(stack, handled)) == EXPECTED


def test_police_preliminary_handling_of_a_12345_order_scores_the_station(stack):
    hq = next(s for s in city.stations() if s.station_id == "S21").hq
    with client(stack, ["hotline_agent"], sub="e2e-agent") as agent:
        order = ok(agent.post("/v1/workOrders", json={"requestId": uuid.uuid4().hex, "workOrder": {
            "source": "WORK_ORDER_SOURCE_HOTLINE_12345", "urgency": 3,
            "description": "小区后面的空地上半夜有人倾倒不明液体，气味刺鼻，不知道该归哪个部门管",
            "citizen": {"phoneNumber": "13912340021"},
            "location": {"point": {"longitude": hq[0] + 0.001, "latitude": hq[1] + 0.001}}}}))
    assert order["status"] == "WORK_ORDER_STATUS_PRELIMINARY_POLICE", order
    station = order["preliminaryStation"].removeprefix("stations/")

    def scored():
        with client(stack, ["station_chief"], station, "e2e-chief") as chief:
            return ok(chief.get("/v1/ledgerEntries", params={"subject": order["name"]})).get("ledgerEntries", [])

    [entry] = eventually(scored)
    assert (entry["ruleId"], entry["points"], entry["stationId"]) == ("QTY-PRELIMINARY", 1, station)
    assert entry.get("officerId", "") == "" and order["name"] in entry["explanation"]
