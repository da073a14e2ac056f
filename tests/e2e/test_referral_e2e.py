"""The 110⇄12345 dual line end to end through Envoy over plain HTTP, as the 12345 system,
a department's client and an Open311 app would use it."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import httpx
import pytest

from tests.conftest import eventually
from tools.token import mint


def client(stack, roles: list[str], station: str | None = None, sub: str = "e2e") -> httpx.Client:
    token = mint(roles=roles, station=station, sub=sub)
    return httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


@pytest.fixture(scope="module")
def police(stack):
    with client(stack, ["dispatcher"], sub="e2e-dispatcher") as c:
        yield c


@pytest.fixture(scope="module")
def agent(stack):
    with client(stack, ["hotline_agent"], sub="e2e-agent-3") as c:
        yield c


@pytest.fixture(scope="module")
def supervisor(stack):
    with client(stack, ["supervisor"], sub="e2e-supervisor") as c:
        yield c


def department(stack, dept_id: str) -> httpx.Client:
    return client(stack, ["department"], dept_id, f"e2e-staff-{dept_id}")


def caller() -> str:
    return "137" + str(uuid.uuid4().int)[:8]


def report(police, description: str, lon: float, lat: float, name: str = "市民") -> dict:
    resp = police.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": {
        "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": caller(), "name": name},
        "location": {"point": {"longitude": lon, "latitude": lat}, "accuracyM": 10},
        "description": description}})
    assert resp.status_code == 200, resp.text
    return resp.json()


def order_for(agent, report_name: str) -> dict | None:
    orders = agent.get("/v1/workOrders", params={"report": report_name}).json().get("workOrders", [])
    assert len(orders) <= 1
    return agent.get(f"/v1/{orders[0]['name']}").json() if orders else None


def case_for(police, report_name: str) -> dict | None:
    cases = police.get("/v1/cases", params={"report": report_name}).json().get("cases", [])
    return cases[0] if cases else None


def post(c: httpx.Client, path: str, body: dict) -> dict:
    resp = c.post(path, json={"requestId": uuid.uuid4().hex, **body})
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_cut_gas_main_gets_police_and_a_level_one_order_to_several_departments(police, agent):
    gas = report(police, "武昌区一工地施工挖断了燃气主管道，现场燃气泄漏味道很浓，附近有幼儿园", 114.40, 30.54, "钱师傅")
    assert gas["classification"]["category"] == "CATEGORY_POLICE"
    assert gas["classification"]["incidentType"] == "GAS_LEAK"

    case = eventually(lambda: case_for(police, gas["name"]))
    assert case["stationId"] == gas["stationId"]

    order = eventually(lambda: order_for(agent, gas["name"]))
    assert order["urgency"] == 1 and order["jointRescue"] is True
    assert order["status"] == "WORK_ORDER_STATUS_ASSIGNED"
    assert [a["departmentDisplayName"] for a in order["assignments"]] == [
        "江城燃气集团", "江城市城市管理执法局", "江城市住房和城乡建设局"]
    assert [a["role"] for a in order["assignments"]] == [
        "DEPARTMENT_ROLE_LEAD", "DEPARTMENT_ROLE_COOPERATING", "DEPARTMENT_ROLE_COOPERATING"]
    assert all("一级抢险" in a["routingReason"] for a in order["assignments"])
    limit = datetime.fromisoformat(order["deadline"]) - datetime.fromisoformat(order["requestTime"])
    assert limit.total_seconds() == 30 * 60

    # The 110 report notes the joint order but keeps following its police case.
    def noted():
        r = police.get(f"/v1/{gas['name']}").json()
        actions = [e["action"] for e in r["timeline"]]
        return r if "JOINT_RESCUE" in actions and "CASE_OPENED" in actions else None

    after = eventually(noted)
    # Its case waits for an officer to accept: assigning (派警中).
    assert after["status"] == "REPORT_STATUS_ASSIGNING"
    assert "REFERRED" not in [e["action"] for e in after["timeline"]]


def test_parking_complaint_reopened_after_an_unsatisfied_review_and_closed_after_the_second_fix(stack, police, agent):
    parked = report(police, "小区门口有辆车违章停车，把消防通道出口挡住了，打电话也找不到车主", 114.37, 30.60, "郑先生")
    assert parked["classification"]["category"] == "CATEGORY_NON_POLICE"
    order = eventually(lambda: order_for(agent, parked["name"]))
    name = order["name"]
    lead = order["assignments"][0]["department"]
    assert order["status"] == "WORK_ORDER_STATUS_ASSIGNED" and lead == "departments/D01"
    # The 110 report follows its work order.
    eventually(lambda: police.get(f"/v1/{parked['name']}").json()["status"] == "REPORT_STATUS_REFERRED")

    def second_line(feedback: str):
        with department(stack, "D01") as d:
            assert post(d, f"/v1/{name}:accept", {"department": lead})["status"] == "WORK_ORDER_STATUS_ACCEPTED"
            assert post(d, f"/v1/{name}:start", {"department": lead})["status"] == "WORK_ORDER_STATUS_IN_PROGRESS"
            done = post(d, f"/v1/{name}:resolve", {"department": lead, "feedback": feedback})
            assert done["status"] == "WORK_ORDER_STATUS_RESOLVED"

    second_line("已联系车主将车辆挪走")
    reopened = post(agent, f"/v1/{name}:review", {"satisfaction": "SATISFACTION_UNSATISFIED",
                                                  "comment": "车主当天晚上又停回来了，还是堵着出口"})
    assert reopened["status"] == "WORK_ORDER_STATUS_REOPENED" and reopened["reopenCount"] == 1
    assert reopened["satisfactionComment"] == "车主当天晚上又停回来了，还是堵着出口"

    assert post(agent, f"/v1/{name}:assign", {})["status"] == "WORK_ORDER_STATUS_ASSIGNED"
    second_line("已对该车辆依法贴单拖移，并在出口处设置禁停标志")
    closed = post(agent, f"/v1/{name}:review", {"satisfaction": "SATISFACTION_SATISFIED"})
    assert closed["status"] == "WORK_ORDER_STATUS_CLOSED"
    actions = [e["action"] for e in closed["timeline"]]
    assert actions.count("RESOLVED") == 2 and actions.count("REOPENED") == 1 and actions[-1] == "CLOSED"
    eventually(lambda: police.get(f"/v1/{parked['name']}").json()["status"] == "REPORT_STATUS_CLOSED")

    # Illegal now that it is closed; another department may not touch it.
    late = agent.post(f"/v1/{name}:review", json={"requestId": uuid.uuid4().hex,
                                                  "satisfaction": "SATISFACTION_UNSATISFIED", "comment": "再来一次"})
    assert late.status_code in (400, 412) and late.json()["code"] == 9
    with department(stack, "D09") as other:
        refused = other.post(f"/v1/{name}:accept", json={"requestId": uuid.uuid4().hex, "department": lead})
    assert refused.status_code == 403


def test_the_police_side_lists_a_referred_reports_order_by_the_report_through_the_gateway(stack, police, agent):
    leak = report(police, "楼下自来水管爆了，水一直往外冒，路面都淹了", 114.36, 30.59, "冯阿姨")
    assert leak["classification"]["category"] == "CATEGORY_NON_POLICE"
    order = eventually(lambda: order_for(agent, leak["name"]))
    with client(stack, ["commander"], "S01", "e2e-commander") as commander:
        for c in (police, commander):
            resp = c.get("/v1/workOrders", params={"report": leak["name"]})
            assert resp.status_code == 200, resp.text
            assert [o["name"] for o in resp.json().get("workOrders", [])] == [order["name"]]
            assert c.get(f"/v1/{order['name']}").json()["report"] == leak["name"]
    bad = agent.get("/v1/workOrders", params={"report": leak["name"].removeprefix("reports/")})
    assert bad.status_code == 400 and "report" in bad.text


def test_checking_a_husbands_salary_is_refused_as_a_privacy_matter_with_the_standard_reply(agent, supervisor):
    text = "我要查询我丈夫的工资收入，他一直瞒着我，你们帮我查一下他单位给他发多少钱"
    verdict = post(agent, "/v1/unreasonableRequests:classify", {"description": text})
    assert verdict["unreasonable"] is True
    assert verdict["category"] == "UNREASONABLE_CATEGORY_OTHERS_PRIVATE_DATA"
    assert verdict["reason"] == "要求查询丈夫的工资，属索要他人隐私"
    assert verdict["standardReply"].startswith("您好，感谢您的来电。您要求查询的是他人的个人信息。")
    record = post(agent, "/v1/unreasonableRequests", {"unreasonableRequest": {
        "description": text, "citizen": {"phoneNumber": caller(), "name": "冯女士"},
        "category": verdict["category"], "reason": verdict["reason"], "typicalCase": True}})
    assert record["state"] == "UNREASONABLE_REQUEST_STATE_RECORDED"
    assert record["standardReply"] == verdict["standardReply"]
    listed = supervisor.get("/v1/unreasonableRequests",
                            params={"category": "UNREASONABLE_CATEGORY_OTHERS_PRIVATE_DATA"}).json()
    mine = next(r for r in listed["unreasonableRequests"] if r["name"] == record["name"])
    assert mine["citizen"]["name"] == "冯**"
    cases = agent.get("/v1/typicalCases", params={"category": "UNREASONABLE_CATEGORY_OTHERS_PRIVATE_DATA"}).json()
    published = next(c for c in cases["typicalCases"] if "瞒着我" in c["summary"])
    assert "冯" not in published["summary"] and published["standardReply"] == verdict["standardReply"]


def test_agent_transfers_a_police_emergency_to_110_and_sees_its_progress(police, agent):
    order = post(agent, "/v1/workOrders:transferTo110", {
        "reason": "来电人称被人持刀威胁索要财物，属抢劫警情",
        "workOrder": {"source": "WORK_ORDER_SOURCE_HOTLINE_12345", "urgency": 1,
                      "description": "有人在楼道里持刀抢包，抢劫后往江边跑了",
                      "citizen": {"phoneNumber": caller(), "name": "韩女士"},
                      "location": {"point": {"longitude": 114.31, "latitude": 30.62}}}})
    assert order["status"] == "WORK_ORDER_STATUS_TRANSFERRED_TO_110"
    transferred = police.get(f"/v1/{order['transferredReport']}").json()
    assert transferred["channel"] == "CHANNEL_HOTLINE_12345"
    assert transferred["classification"]["category"] == "CATEGORY_POLICE"
    case = eventually(lambda: (c := case_for(police, order["transferredReport"])) and c.get("assignments") and c)

    def order_with(status: str):
        o = agent.get(f"/v1/{order['name']}").json()
        return o if o["transferredReportStatus"] == status else None

    seen = eventually(lambda: order_with("REPORT_STATUS_ASSIGNING"), timeout=30)
    assert seen["timeline"][-1]["action"] == "POLICE_PROGRESS" and "正在派警" in seen["timeline"][-1]["detail"]
    # An officer accepts: the 12345 order says so, in Chinese.
    accepted = police.post(f"/v1/{case['assignments'][0]['name']}:accept", json={"requestId": uuid.uuid4().hex})
    assert accepted.status_code == 200, accepted.text
    seen = eventually(lambda: order_with("REPORT_STATUS_DISPATCHED"), timeout=30)
    assert seen["timeline"][-1]["action"] == "POLICE_PROGRESS" and "民警已接单" in seen["timeline"][-1]["detail"]
    assert all("REPORT_STATUS" not in e["detail"] for e in seen["timeline"])


def test_bad_input_unknown_ids_and_roles(stack, agent):
    bad = agent.post("/v1/workOrders", json={"workOrder": {"urgency": 9}})
    assert bad.status_code == 400
    fields = {v["field"] for d in bad.json()["details"] if d["@type"].endswith("BadRequest")
              for v in d["fieldViolations"]}
    assert {"request_id", "work_order.source", "work_order.description", "work_order.urgency"} <= fields
    assert agent.get("/v1/workOrders/20260101-000000000000").status_code == 404
    with client(stack, ["call_taker"]) as taker:
        refused = taker.post("/v1/workOrders", json={"requestId": uuid.uuid4().hex, "workOrder": {}})
    assert refused.status_code == 403


def test_overdue_orders_are_flagged_once_by_the_sweep(agent, supervisor):
    ten_days_ago = (datetime.now(timezone.utc) - timedelta(days=10)).isoformat()
    order = post(agent, "/v1/workOrders", {"workOrder": {
        "source": "WORK_ORDER_SOURCE_HOTLINE_12345", "matterCode": "SEWER_BLOCKAGE", "urgency": 4,
        "description": "小区下水道堵塞，污水漫到路面上，已经十天没人处理", "requestTime": ten_days_ago,
        "citizen": {"phoneNumber": caller()}, "location": {"point": {"longitude": 114.33, "latitude": 30.57}}}})
    assert datetime.fromisoformat(order["deadline"]) < datetime.now(timezone.utc)
    refused = agent.post("/v1/workOrders:sweepOverdue", json={"requestId": uuid.uuid4().hex})
    assert refused.status_code == 403
    post(supervisor, "/v1/workOrders:sweepOverdue", {})
    flagged = agent.get(f"/v1/{order['name']}").json()
    assert flagged["overdue"] is True
    assert [e["action"] for e in flagged["timeline"]].count("OVERDUE") == 1
    post(supervisor, "/v1/workOrders:sweepOverdue", {})
    again = agent.get(f"/v1/{order['name']}").json()
    assert [e["action"] for e in again["timeline"]].count("OVERDUE") == 1
    listed = agent.get("/v1/workOrders", params={"overdueOnly": "true", "matterCode": "SEWER_BLOCKAGE"}).json()
    assert order["name"] in [o["name"] for o in listed["workOrders"]]


# -- Open311 GeoReport v2 --------------------------------------------------------------

def test_open311_client_posts_lists_and_reads_requests_over_plain_http(stack):
    with client(stack, ["service"], sub="e2e-open311-app") as app:
        services = app.get("/open311/v2/services.json")
        assert services.status_code == 200 and services.headers["content-type"].startswith("application/json")
        codes = {s["service_code"] for s in services.json()}
        assert {"ILLEGAL_PARKING", "STREET_LIGHT", "MANHOLE_COVER"} <= codes

        form = {"api_key": stack.open311_api_key, "service_code": "MANHOLE_COVER", "lat": "30.5712", "long": "114.2935",
                "address_string": "硚口区宝丰路与解放大道交叉口", "description": "路口井盖缺失，晚上很容易掉进去",
                "attribute[cover_state]": "missing",
                "first_name": "强", "last_name": "卫", "phone": caller(),
                "media_url": "https://img.example.cn/311/manhole.jpg"}
        posted = app.post("/open311/v2/requests.json", content=urlencode(form),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert posted.status_code == 200, posted.text
        [receipt] = posted.json()
        request_id = receipt["service_request_id"]
        retried = app.post("/open311/v2/requests.json", content=urlencode(form),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert retried.json()[0]["service_request_id"] == request_id

        [one] = app.get(f"/open311/v2/requests/{request_id}.json").json()
        for key in ("service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                    "agency_responsible", "requested_datetime", "updated_datetime", "expected_datetime", "address",
                    "lat", "long", "media_url"):
            assert key in one, key
        assert one["status"] == "open" and one["service_name"] == "井盖缺失"
        assert one["agency_responsible"] == "江城市市政园林局"
        assert one["media_url"] == form["media_url"] and one["lat"] == pytest.approx(30.5712)

        listed = app.get("/open311/v2/requests.json", params={"service_code": "MANHOLE_COVER", "status": "open"})
        assert request_id in [r["service_request_id"] for r in listed.json()]
        by_id = app.get("/open311/v2/requests.json", params={"service_request_id": request_id}).json()
        assert [r["service_request_id"] for r in by_id] == [request_id]

        assert app.get("/open311/v2/requests/20260101-000000000000.json").status_code == 404
        missing = app.post("/open311/v2/requests.json",
                           content=urlencode({"service_code": "NOPE", "api_key": stack.open311_api_key}),
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert missing.status_code == 404, "GeoReport: an unknown service_code is 404"
