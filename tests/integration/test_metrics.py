"""Every service exports Prometheus metrics; checked against the whole suite running as `make run` runs it."""
from __future__ import annotations

import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import eventually
from tools.token import mint

# A place and caller of its own: intake merges a repeat of another test's incident into it.
FIGHT = {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": "13900139001"},
         "location": {"point": {"longitude": 114.26, "latitude": 30.61}},
         "description": "小区门口有两个人打架"}
REPORT_INCIDENT = "smart110.intake.v1.IntakeService/ReportIncident"


@pytest.fixture(scope="module")
def http(stack):
    token = mint(roles=["dispatcher"], sub="metrics-dispatcher")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
        yield c


def scrape(stack, service: str) -> list:
    """All samples a service exports, as (name, labels, value)."""
    text = httpx.get(stack.metrics_url(service), timeout=5).text
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def value(samples, name: str, **labels) -> float | None:
    found = [v for n, l, v in samples if n == name and all(l.get(k) == want for k, want in labels.items())]
    return sum(found) if found else None


def case_for(http, report_name: str):
    cases = http.get("/v1/cases", params={"report": report_name}).json()["cases"]
    return cases[0] if cases else None


def test_rpcs_feeds_outbox_and_sla_are_exported(http, stack):
    resp = http.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": FIGHT})
    assert resp.status_code == 200, resp.text
    eventually(lambda: case_for(http, resp.json()["name"]))
    bad = http.post("/v1/reports", json={"report": {"caller": {"phoneNumber": "12345"}}})
    assert bad.status_code == 400

    intake = scrape(stack, "intake")
    assert value(intake, "smart110_rpc_requests_total", service="intake", method=REPORT_INCIDENT, code="OK",
                 grpc_type="unary") >= 1
    # Every RPC sample says what kind of call it is: a stream's duration (how long it stayed open)
    # is kept apart from unary calls.
    assert {labels.get("grpc_type") for n, labels, _v in intake
            if n == "smart110_rpc_requests_total" and labels.get("method") == REPORT_INCIDENT} == {"unary"}
    assert all(labels.get("grpc_type") in ("unary", "client_stream", "server_stream", "bidi_stream")
               for n, labels, _v in intake if n == "smart110_rpc_requests_total")
    assert value(intake, "smart110_rpc_requests_total", service="intake", method=REPORT_INCIDENT,
                 code="INVALID_ARGUMENT") >= 1
    assert value(intake, "smart110_rpc_duration_seconds_count", service="intake", method=REPORT_INCIDENT) >= 2
    assert value(intake, "smart110_outbox_latest_sequence", service="intake") >= 1
    # Dispatch follows intake's feed: one open stream, caught up.
    assert value(intake, "smart110_feed_streams_open", service="intake") >= 1
    assert eventually(lambda: value(scrape(stack, "intake"), "smart110_feed_stream_backlog", service="intake") == 0)

    dispatch = scrape(stack, "dispatch")
    seen = value(dispatch, "smart110_feed_events_applied_total", service="dispatch", source="intake")
    assert seen >= 1
    assert value(dispatch, "smart110_feed_events_applied_total", service="dispatch", source="intake",
                 result="applied") >= 1
    assert value(dispatch, "smart110_feed_cursor", service="dispatch", source="intake") >= seen
    assert value(dispatch, "smart110_feed_lag_seconds", service="dispatch", source="intake") >= 0
    assert value(dispatch, "smart110_sla_seconds_count", service="dispatch", stage="dispatch") >= 1
    assert value(dispatch, "smart110_sla_seconds_bucket", service="dispatch", stage="dispatch", le="86400.0") >= 1
    # By the incident's priority and the report's channel (a phone call classified 1-4).
    assert value(dispatch, "smart110_sla_seconds_count", service="dispatch", stage="dispatch", channel="PHONE") >= 1
    assert {labels["priority"] for n, labels, _v in dispatch if n == "smart110_sla_seconds_count"} <= {
        "", "1", "2", "3", "4"}
    # The case listing the test polled went through dispatch's interceptor too.
    assert value(dispatch, "smart110_rpc_requests_total", service="dispatch",
                 method="smart110.dispatch.v1.DispatchService/ListCases", code="OK") >= 1


def test_every_service_serves_metrics(stack):
    for service in ("intake", "dispatch", "referral", "alerts", "scoring"):
        samples = scrape(stack, service)
        assert value(samples, "smart110_outbox_latest_sequence", service=service) is not None, service


# Another place and caller, so intake does not merge it into FIGHT.
DISPUTE = {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": "13900139017"},
           "location": {"point": {"longitude": 114.355, "latitude": 30.566}},
           "description": "楼下饭店门口两个人打架，有人受伤了"}


def handle(stack, http, assignment: dict) -> None:
    """Takes one assignment from offer to report-back as its unit's officer would."""
    unit = http.get(f"/v1/{assignment['unit']}").json()
    token = mint(roles=["officer"], station=unit["stationId"], sub=unit["officers"][0]["officerId"])
    headers = {"Authorization": f"Bearer {token}"}
    base = f"{stack.gateway_url}/v1/{assignment['name']}"
    steps = [(":accept", {})] + [(":advance", {"state": s}) for s in (
        "ASSIGNMENT_STATE_EN_ROUTE", "ASSIGNMENT_STATE_ON_SCENE", "ASSIGNMENT_STATE_CLEARED")]
    steps.append((":reportBack", {"outcome": "OUTCOME_MEDIATED", "notes": "双方已调解，握手言和"}))
    for verb, body in steps:
        resp = httpx.post(base + verb, json={"requestId": uuid.uuid4().hex, **body}, headers=headers, timeout=20)
        assert resp.status_code == 200, resp.text


def test_every_sla_stage_is_observed_along_one_report(http, stack):
    report = http.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": DISPUTE}).json()
    call_taker = mint(roles=["call_taker"], sub="metrics-call-taker")
    answered = http.post(f"/v1/{report['name']}:answer", json={"requestId": uuid.uuid4().hex},
                         headers={"Authorization": f"Bearer {call_taker}"})
    assert answered.status_code == 200, answered.text
    case = eventually(lambda: (c := case_for(http, report["name"])) and c.get("assignments") and c)
    # Each open offer is handled by its unit; accepting one may withdraw others.
    while offered := [a for a in case["assignments"] if a["state"] == "ASSIGNMENT_STATE_OFFERED"]:
        handle(stack, http, offered[0])
        case = case_for(http, report["name"])
    closed = eventually(lambda: (c := case_for(http, report["name"])) and c["status"] == "CASE_STATUS_CLOSED" and c)
    assert closed["closeTime"]

    intake = scrape(stack, "intake")
    assert value(intake, "smart110_sla_seconds_count", service="intake", stage="answer", channel="PHONE") >= 1
    priority = str(case_for(http, report["name"])["priority"])
    assert value(intake, "smart110_sla_seconds_count", service="intake", stage="answer", priority=priority) >= 1
    dispatch = scrape(stack, "dispatch")
    for stage in ("dispatch", "accept", "arrive", "close"):
        assert value(dispatch, "smart110_sla_seconds_count", service="dispatch", stage=stage, priority=priority,
                     channel="PHONE") >= 1, stage


def test_referral_exports_work_order_deadlines(stack):
    # Set by a periodic query (REFERRAL_FIGURES_SECONDS), not at scrape time: present once it ran.
    samples = eventually(lambda: (s := scrape(stack, "referral")) and value(
        s, "smart110_work_orders_figures_timestamp_seconds", service="referral") and s, timeout=90)
    for name in ("smart110_work_orders_open", "smart110_work_orders_overdue", "smart110_work_orders_due_soon"):
        found = [(labels, v) for n, labels, v in samples if n == name]
        assert all(labels["service"] == "referral" and "department" in labels and v >= 0
                             for labels, v in found), name
