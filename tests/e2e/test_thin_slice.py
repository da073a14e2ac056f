"""The thin slice, end to end through Envoy, as a front-end team or partner system would use it."""
from __future__ import annotations

import uuid

import grpc
import httpx
import pytest
from grpc_status import rpc_status
from google.rpc import error_details_pb2

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from tests.conftest import eventually
from tools.token import mint
from tools.trace_sink import read_spans
from tests import support

FIGHT = {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": "13800138000", "name": "王先生"},
         "location": {"point": {"longitude": 114.30, "latitude": 30.58}, "accuracyM": 15,
                      "source": "LOCATION_SOURCE_GNSS"},
         "description": "小区门口有两个人打架，其中一人拿着棍子"}


@pytest.fixture(scope="module")
def http(stack):
    token = mint(roles=["dispatcher"], sub="e2e-dispatcher")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
        yield c


_incidents: dict[str, int] = {}


def distinct(report: dict, request_id: str) -> dict:
    """The report as a separate incident per request id: its own caller, about 400 m from the
    others (intake merges repeats of one incident into the first report)."""
    n = _incidents.setdefault(request_id, len(_incidents))
    point = report["location"]["point"]
    moved = {"longitude": round(point["longitude"] + (n % 10) * 0.004, 6),
             "latitude": round(point["latitude"] + (n // 10) * 0.004, 6)}
    return dict(report, caller=dict(report["caller"], phoneNumber=f"1380013{n:04d}"),
                location=dict(report["location"], point=moved))


def post_report(http, report: dict, request_id: str | None = None) -> httpx.Response:
    request_id = request_id or uuid.uuid4().hex
    return http.post("/v1/reports", json={"requestId": request_id, "report": distinct(report, request_id)})


def case_for(http, report_name: str) -> dict | None:
    cases = http.get("/v1/cases", params={"report": report_name}).json()["cases"]
    assert len(cases) <= 1, f"more than one case for {report_name}: {cases}"
    return cases[0] if cases else None


def test_report_becomes_a_case_for_the_station_with_jurisdiction(http, stack):
    resp = post_report(http, FIGHT)
    assert resp.status_code == 200, resp.text
    report = resp.json()
    assert report["name"].startswith("reports/")
    assert report["classification"]["category"] == "CATEGORY_POLICE"
    assert report["classification"]["incidentType"] == "FIGHT"
    point = report["location"]["point"]
    located = http.get("/v1/jurisdictions:locate",
                       params={"point.longitude": point["longitude"], "point.latitude": point["latitude"]}).json()
    assert report["stationId"] == located["stationId"] != ""

    case = eventually(lambda: case_for(http, report["name"]))
    assert case["stationId"] == report["stationId"]
    assert case["status"] == "CASE_STATUS_PENDING"
    assert case["recommendations"], "a pending case carries a recommended unit"
    first = case["recommendations"][0]
    assert first["role"] == "ASSIGNMENT_ROLE_PRIMARY" and first["reason"]
    unit = http.get(f"/v1/{first['unit']}").json()
    # The station's own unit, unless earlier reports took them all (then a neighbour's, saying so).
    if first.get("crossStation"):
        assert unit["stationId"] != report["stationId"] and "辖区" in first["reason"]
    else:
        assert unit["stationId"] == report["stationId"]

    again = http.get(f"/v1/{case['name']}")
    assert again.status_code == 200 and again.json()["report"] == report["name"]
    actions = [e["action"] for e in again.json()["timeline"]]
    assert actions[:2] == ["OPENED", "RECOMMENDED"]
    # Offered at once to the recommended units' phones (派单).
    assert actions[2:] == ["OFFERED"] * len(case["recommendations"])


def test_one_trace_spans_gateway_intake_feed_dispatch_and_database(http, stack):
    trace_id = uuid.uuid4().hex
    request_id = uuid.uuid4().hex
    resp = http.post("/v1/reports", json={"requestId": request_id, "report": distinct(FIGHT, request_id)},
                     headers={"traceparent": f"00-{trace_id}-{'1' * 16}-01"})
    assert resp.status_code == 200, resp.text
    eventually(lambda: case_for(http, resp.json()["name"]))

    def services_in_trace():
        spans = [s for s in read_spans(stack.traces_path) if s["trace_id"] == trace_id]
        names = {s["service"] for s in spans}
        has_db = any("db.system" in s["attributes"] for s in spans)
        has_consume = any(s["name"].startswith("consume intake.IncidentReported") for s in spans)
        wanted = {"smart110-gateway", "smart110-intake", "smart110-dispatch"}
        return wanted <= names and has_db and has_consume and spans

    spans = eventually(services_in_trace, timeout=30)
    db_services = {s["service"] for s in spans if "db.system" in s["attributes"]}
    assert {"smart110-intake", "smart110-dispatch"} <= db_services


def test_same_request_id_twice_gives_one_report(http):
    request_id = uuid.uuid4().hex
    first = post_report(http, FIGHT, request_id)
    second = post_report(http, FIGHT, request_id)
    assert first.status_code == second.status_code == 200
    assert first.json()["name"] == second.json()["name"]
    listed = http.get("/v1/reports", params={"query": FIGHT["description"], "pageSize": 500}).json()["reports"]
    assert sum(1 for r in listed if r["name"] == first.json()["name"]) == 1

    changed = dict(FIGHT, description="有人在超市偷东西")
    conflict = post_report(http, changed, request_id)
    assert conflict.status_code == 409, conflict.text
    assert conflict.json()["details"][0]["reason"] == "REQUEST_ID_REUSED"


def test_malformed_json_is_400(http):
    resp = http.post("/v1/reports", content=b'{"requestId": "x", "report": {', headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.json()["code"] == 3


def test_missing_fields_are_400_naming_them(http):
    resp = http.post("/v1/reports", json={"report": {"caller": {"phoneNumber": "12345"}}})
    assert resp.status_code == 400
    body = resp.json()
    bad = next(d for d in body["details"] if d["@type"].endswith("google.rpc.BadRequest"))
    fields = {v["field"] for v in bad["fieldViolations"]}
    assert {"request_id", "report.channel", "report.description", "report.location",
            "report.caller.phone_number"} <= fields


def test_unknown_ids_are_404(http):
    assert http.get("/v1/reports/20260101-000000000000").status_code == 404
    resp = http.get("/v1/cases/does-not-exist")
    assert resp.status_code == 404
    assert resp.json()["code"] == 5


def test_no_token_is_401_json(stack):
    resp = httpx.post(f"{stack.gateway_url}/v1/reports", json={"requestId": "x", "report": FIGHT})
    assert resp.status_code == 401
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["code"] == 16


def test_health_route_needs_no_token(stack):
    resp = httpx.get(f"{stack.gateway_url}/healthz")
    assert resp.status_code == 200


def test_grpc_through_the_gateway_with_error_details(stack):
    token = mint(roles=["partner"], sub="e2e-partner")
    with support.channel(stack.gateway_url.removeprefix("http://")) as channel:
        stub = intake_grpc.IntakeServiceStub(channel)
        md = (("authorization", f"Bearer {token}"),)
        report = stub.ReportIncident(intake_pb.ReportIncidentRequest(
            request_id=uuid.uuid4().hex,
            report=intake_pb.Report(channel=intake_pb.CHANNEL_HOTLINE_12345, description="有人被困在电梯里",
                                    location=common_pb2.Location(point=common_pb2.GeoPoint(
                                        longitude=114.28, latitude=30.60)))), metadata=md)
        assert report.name.startswith("reports/")
        with pytest.raises(grpc.RpcError) as err:
            stub.ReportIncident(intake_pb.ReportIncidentRequest(
                request_id="r1", report=intake_pb.Report(
                    channel=intake_pb.CHANNEL_PHONE, description="x" * 3000,
                    location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=114.3, latitude=95)))),
                metadata=md)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        status = rpc_status.from_call(err.value)
        bad = error_details_pb2.BadRequest()
        assert any(d.Unpack(bad) for d in status.details)
        assert {v.field for v in bad.field_violations} == {"report.description", "report.location.point.latitude"}


def test_dispatch_down_while_reports_arrive_then_every_report_gets_one_case(http, stack):
    stack.stop_service("dispatch")
    try:
        names = []
        for i in range(8):
            resp = post_report(http, dict(FIGHT, description=f"第{i}起：广场上有人打架"))
            assert resp.status_code == 200, resp.text
            names.append(resp.json()["name"])
    finally:
        stack.start_service("dispatch")
        stack.wait_serving("dispatch")
    cases = [eventually(lambda n=n: case_for(http, n)) for n in names]
    assert len({c["name"] for c in cases}) == len(names)


def test_roles_decide_who_lists_reports_and_who_sees_caller_data(http, stack):
    posted = post_report(http, FIGHT).json()
    name, phone = posted["name"], posted["caller"]["phoneNumber"]
    partner = {"Authorization": f"Bearer {mint(roles=['partner'], sub='e2e-12345')}"}
    refused = httpx.get(f"{stack.gateway_url}/v1/reports", headers=partner)
    assert refused.status_code == 403
    assert refused.json()["details"][0]["reason"] == "ROLE_REQUIRED"
    # A partner system files reports but reads none; an officer sees a report with the caller masked.
    assert httpx.get(f"{stack.gateway_url}/v1/{name}", headers=partner).status_code == 403
    # The officer of the report's station (another station's report is not there for him).
    station = posted["stationId"]
    officer = {"Authorization": f"Bearer {mint(roles=['officer'], station=station, sub='e2e-officer')}"}
    masked = httpx.get(f"{stack.gateway_url}/v1/{name}", headers=officer).json()
    assert masked["caller"]["phoneNumber"] == phone[:3] + "****" + phone[-4:]
    assert http.get(f"/v1/{name}").json()["caller"]["phoneNumber"] == phone
