"""The EIDO export through Envoy, the whole suite running: a dispatcher fetches a case as an EIDO
JSON document (`GET /v1/cases/{case}:exportEido`), the caller's contact read from the real intake;
an officer of the case's station gets it without."""
from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import eventually
from tests.eido_schema import check_document
from tools.token import mint

THEFT = {"channel": "CHANNEL_PHONE", "caller": {"phoneNumber": "13900139077", "name": "赵先生"},
         "location": {"point": {"longitude": 114.262, "latitude": 30.611}, "accuracyM": 10,
                      "source": "LOCATION_SOURCE_GNSS"},
         "description": "我的电动车在楼下被人偷了"}


@pytest.fixture(scope="module")
def http(stack):
    token = mint(roles=["dispatcher"], sub="e2e-eido-desk")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=20) as c:
        yield c


def test_a_case_is_fetched_as_an_eido_through_the_gateway(http, stack):
    report = http.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": THEFT}).json()

    def opened():
        cases = http.get("/v1/cases", params={"report": report["name"]}).json()["cases"]
        return cases[0] if cases else None

    case = eventually(opened)
    answer = http.get(f"/v1/{case['name']}:exportEido")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    doc = answer.json()
    check_document(doc)
    assert doc["incidentComponent"]["internalIncidentId"] == case["name"]
    assert doc["personComponent"][0]["ncPersonComponent"]["name"][0]["personFullName"][0]["value"] == "赵先生"
    assert doc["callbackComponent"][0]["callBackInformationUri"] == ["tel:+8613900139077"]

    officer = mint(roles=["officer"], station=case["stationId"], sub="e2e-eido-officer")
    plain = http.get(f"/v1/{case['name']}:exportEido", headers={"Authorization": f"Bearer {officer}"})
    assert plain.status_code == 200, plain.text
    assert "赵先生" not in plain.text and "13900139077" not in plain.text
    check_document(plain.json())

    assert http.get("/v1/cases/nope:exportEido").status_code == 404
    other = "S01" if case["stationId"] != "S01" else "S02"
    stranger = mint(roles=["officer"], station=other, sub="e2e-eido-stranger")
    assert http.get(f"/v1/{case['name']}:exportEido",
                    headers={"Authorization": f"Bearer {stranger}"}).status_code == 404
    hotline = mint(roles=["hotline_agent"], sub="e2e-eido-hotline")
    assert http.get(f"/v1/{case['name']}:exportEido",
                    headers={"Authorization": f"Bearer {hotline}"}).status_code == 403
