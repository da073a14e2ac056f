"""Consultations, duplicates and hand-off stamps end to end through Envoy, with dispatch running."""
from __future__ import annotations

import uuid

import httpx
import pytest

from sampledata import knowledge as seed
from services.intake.knowledge import ANSWER_THRESHOLD, load_paraphrases
from tests.conftest import eventually
from tools.token import mint

# A corner of the city of its own, so no other test's incident is "the same" as these.
BASE = (114.37, 30.53)


def place(i: int) -> dict:
    return {"point": {"longitude": round(BASE[0] + i * 0.004, 6), "latitude": BASE[1]}, "accuracyM": 10,
            "source": "LOCATION_SOURCE_GNSS"}


def client(stack, role: str, sub: str, name: str = "") -> httpx.Client:
    token = mint(roles=[role], station="", sub=sub, name=name)
    return httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20)


@pytest.fixture(scope="module")
def taker(stack):
    with client(stack, "call_taker", "e2e-taker", "接警员") as c:
        yield c


@pytest.fixture(scope="module")
def dispatcher(stack):
    with client(stack, "dispatcher", "e2e-dispatcher") as c:
        yield c


def post(http, description: str, location: dict | None = None, phone: str | None = None, **extra) -> dict:
    report = {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": phone or f"137{uuid.uuid4().int % 10**8:08d}"},
              "description": description, **extra}
    if location:
        report["location"] = location
    resp = http.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": report})
    assert resp.status_code == 200, resp.text
    return resp.json()


def case_for(http, report_name: str) -> dict | None:
    cases = http.get("/v1/cases", params={"report": report_name}).json()["cases"]
    return cases[0] if cases else None


def test_consultation_answered_at_once_never_reaches_dispatch(taker, dispatcher):
    found = taker.get("/v1/knowledge:search", params={"query": "驾照快到期了去哪里换", "pageSize": 3}).json()
    assert found["results"][0]["entry"]["topic"] == "交管" and found["results"][0]["score"] > 0
    consult = post(taker, "请问护照过期了怎么换发？港澳通行证可以一起办吗？", addressText="江城市武昌区")
    assert consult["status"] == "REPORT_STATUS_ANSWERED"
    assert consult["consultation"]["answeredAtOnce"] and consult["consultation"]["answer"]
    # A police report after it gets its case: dispatch has read past the consultation.
    police = post(taker, "超市门口有人持刀抢劫", place(0))
    eventually(lambda: case_for(dispatcher, police["name"]))
    assert case_for(dispatcher, consult["name"]) is None


def test_a_paraphrased_consultation_is_answered_at_once_with_its_entry(taker, dispatcher):
    """即问即复 for words the base does not hold: the citizen names the items (弹簧刀、匕首) where the
    entry asks for the standard (管制刀具的标准是什么？), and no phrasing the base searches is this one."""
    entry = next(e for e in seed.entries() if e.entry_id == "KB-ZA-011")
    question = "弹簧刀、匕首算不算管制刀具？"
    phrasings = {entry.question, *load_paraphrases().get(entry.entry_id, [])}
    assert question not in phrasings, "a paraphrase, not one of the base's own phrasings"
    found = taker.get("/v1/knowledge:search", params={"query": question, "pageSize": 3}).json()["results"]
    assert found[0]["entry"]["entryId"] == entry.entry_id
    r = post(taker, question, addressText="江城市江岸区")
    assert r["classification"]["category"] == "CATEGORY_CONSULTATION"
    assert r["status"] == "REPORT_STATUS_ANSWERED"
    c = r["consultation"]
    assert c["answeredAtOnce"] and c["status"] == "CONSULTATION_STATUS_ANSWERED"
    assert c["knowledgeEntryId"] == entry.entry_id and c["answer"] == entry.answer and c["topic"] == entry.topic
    assert c["score"] >= ANSWER_THRESHOLD
    assert taker.get(f"/v1/{r['name']}").json()["consultation"]["knowledgeEntryId"] == entry.entry_id
    police = post(taker, "菜市场门口有人持刀抢劫", place(15))
    eventually(lambda: case_for(dispatcher, police["name"]))
    assert case_for(dispatcher, r["name"]) is None


def test_a_rare_question_goes_to_the_expert_queue_not_to_a_wrong_answer(stack, taker):
    """A passport question the base has no entry for (a past repatriation): entries about passports
    share its words, but none answers it, so a person who knows does: an expert when intake reads it
    as a consultation, the exit-entry department's 12345 work order when it reads it as a question
    about that service (a service question the base cannot answer at once stays the 12345 matter it is)."""
    question = "我之前因为偷渡被遣返过，现在想正常办护照，会不会被拒？"
    r = post(taker, question, addressText="江城市洪山区")
    assert r["status"] != "REPORT_STATUS_ANSWERED"
    c = r.get("consultation") or {}
    assert not c.get("answeredAtOnce", False) and not c.get("answer") and not c.get("knowledgeEntryId")
    assert c.get("score", 0.0) < ANSWER_THRESHOLD
    category = r["classification"]["category"]
    if category == "CATEGORY_CONSULTATION":
        assert c["status"] == "CONSULTATION_STATUS_QUEUED"
        with client(stack, "expert", "e2e-expert-rare", "出入境专家") as expert:
            queue = expert.get("/v1/consultations", params={"pageSize": 500,
                                                             "status": "CONSULTATION_STATUS_QUEUED"}).json()
            assert c["name"] in [x["name"] for x in queue["consultations"]]
    else:
        assert (category, r["classification"]["incidentType"]) == ("CATEGORY_NON_POLICE", "PASSPORT"), r
        with client(stack, "supervisor", "e2e-12345-rare", "12345值班长") as hotline:
            orders = eventually(lambda: hotline.get("/v1/workOrders", params={"report": r["name"]}).json()
                                .get("workOrders"))
            assert len(orders) == 1 and orders[0]["report"] == r["name"]


def test_a_repeat_is_merged_and_gets_no_case_of_its_own(taker, dispatcher):
    first = post(taker, "公园里有一群人打架", place(3))
    again = post(taker, "公园门口有人在打架，快来", place(3))
    assert again["status"] == "REPORT_STATUS_MERGED" and again["mergedInto"] == first["name"]
    eventually(lambda: case_for(dispatcher, first["name"]))
    later = post(taker, "小区里有人被抢了", place(6))
    eventually(lambda: case_for(dispatcher, later["name"]))
    assert case_for(dispatcher, again["name"]) is None
    assert taker.get(f"/v1/{first['name']}").json()["duplicates"] == [again["name"]]


def test_an_officer_accepting_stamps_the_hand_off_on_the_report(taker, dispatcher):
    report = post(taker, "河边有人打架，有人受伤", place(9))
    case = eventually(lambda: (c := case_for(dispatcher, report["name"])) and c.get("assignments") and c)
    # The case is open, no officer has accepted yet: the report is assigning, not dispatched.
    waiting = eventually(lambda: (r := taker.get(f"/v1/{report['name']}").json())["status"]
                         == "REPORT_STATUS_ASSIGNING" and r)
    assert "handOffTime" not in waiting
    assignment = case["assignments"][0]["name"]
    accepted = dispatcher.post(f"/v1/{assignment}:accept", json={"requestId": uuid.uuid4().hex})
    assert accepted.status_code == 200, accepted.text

    def handed_off():
        r = taker.get(f"/v1/{report['name']}").json()
        return r if r.get("handOffTime") else None

    r = eventually(handed_off)
    assert r["status"] == "REPORT_STATUS_DISPATCHED" and r["dispatchCase"] == case["name"]
    assert [e["action"] for e in r["timeline"]][-2:] == ["CASE_OPENED", "HANDED_OFF"]


def test_expert_queue_and_statistics_through_the_gateway(stack, taker):
    question = "请问在江城开网约车需要到公安部门办什么手续？"
    r = post(taker, question, addressText="江城市江汉区")
    assert r["consultation"]["status"] == "CONSULTATION_STATUS_QUEUED"
    with client(stack, "expert", "e2e-expert", "交管专家") as expert:
        queue = expert.get("/v1/consultations", params={"pageSize": 500}).json()["consultations"]
        assert r["consultation"]["name"] in [c["name"] for c in queue]
        name = r["consultation"]["name"]
        claimed = expert.post(f"/v1/{name}:claim", json={"requestId": uuid.uuid4().hex})
        assert claimed.status_code == 200 and claimed.json()["status"] == "CONSULTATION_STATUS_CLAIMED"
        answer = "网约车驾驶员需向交通运输部门申请网络预约出租汽车驾驶员证，公安机关负责核查驾驶记录和犯罪记录，无需另行到派出所办理。"
        done = expert.post(f"/v1/{name}:answer", json={"requestId": uuid.uuid4().hex, "answer": answer,
                                                       "topic": "交管", "keywords": ["网约车", "驾驶员证"]})
        assert done.status_code == 200, done.text
        again = expert.post(f"/v1/{name}:answer", json={"requestId": uuid.uuid4().hex, "answer": answer,
                                                        "topic": "交管"})
        assert again.status_code == 400 and again.json()["details"][0]["reason"] == "CONSULTATION_ANSWERED"
    found = taker.get("/v1/knowledge:search", params={"query": "开网约车要办什么手续"}).json()["results"]
    assert found[0]["entry"]["entryId"] == done.json()["knowledgeEntryId"]
    with client(stack, "supervisor", "e2e-supervisor") as supervisor:
        stats = supervisor.get("/v1/statistics/intake").json()
    assert int(stats["reports"]) >= 1 and stats["channels"]
    assert int(stats["consultations"]["consultations"]) >= 1
    bad = taker.get("/v1/knowledge:search", params={"query": ""})
    assert bad.status_code == 400 and bad.json()["details"][1]["fieldViolations"][0]["field"] == "query"


def test_an_unmerged_report_becomes_its_own_incident_with_a_case(taker, dispatcher):
    first = post(taker, "酒吧门口有人打架", place(12))
    repeat = post(taker, "酒吧那边有人在打架，好像不是同一拨人", place(12))
    assert repeat["mergedInto"] == first["name"]
    eventually(lambda: case_for(dispatcher, first["name"]))
    split = taker.post(f"/v1/{repeat['name']}:unmerge",
                       json={"requestId": uuid.uuid4().hex, "reason": "回拨核实：两处不同的斗殴"})
    assert split.status_code == 200, split.text
    assert split.json()["status"] == "REPORT_STATUS_CLASSIFIED" and not split.json().get("mergedInto")
    case = eventually(lambda: case_for(dispatcher, repeat["name"]))
    assert case["name"] != case_for(dispatcher, first["name"])["name"]
    again = taker.post(f"/v1/{repeat['name']}:unmerge", json={"requestId": uuid.uuid4().hex, "reason": "再撤一次"})
    assert again.status_code == 400 and again.json()["details"][0]["reason"] == "NOT_MERGED"
