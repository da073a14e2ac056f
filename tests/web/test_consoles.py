"""The call-taker console (接警台) and the dispatcher board (调度台) in a real browser: Debian's
Chromium, headless, driven by Playwright (web/tests/consoles.mjs) against the whole suite behind the
gateway. A call-taker picks the place on the map and types a report, seeing the classification
while typing, and files it; its case appears on the dispatcher board; the dispatcher offers it to a
recommended unit; that unit's officer accepts through the API and the board shows it accepted. The
call-taker corrects the classification with a reason (改类); the dispatcher offers the case to
another unit, escalates it (升级) and closes it (结案); a call between two open reports is merged
(合并) into the one the call-taker picks; the other report's case is cancelled (撤销). The API is
asked what each did. Screenshots go to build/screenshots/consoles-*.png."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import httpx
import pytest

from tests.conftest import ROOT
from tests.web.test_big_screen import CHROMIUM, SCREENSHOTS, _missing, _skip
from tools.token import mint

pytestmark = pytest.mark.web

SCRIPT = ROOT / "web" / "tests" / "consoles.mjs"
# Live, but on a shared two-core machine running the whole suite: a few seconds at most.
LIVE_MS = 5_000


@pytest.fixture(scope="module")
def desks_run(stack):
    """One run of the scenario: what the console and the board showed."""
    reason = _missing()
    if reason:
        _skip(reason)
    call_taker = mint(roles=["call_taker"], sub="e2e-console-call-taker", name="接警员王芳")
    dispatcher = mint(roles=["dispatcher"], sub="e2e-board-dispatcher", name="调度员张强")
    for old in SCREENSHOTS.glob("consoles-*.png"):
        old.unlink()
    proc = subprocess.run(
        ["node", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "GATEWAY_URL": stack.gateway_url, "CALL_TAKER_TOKEN": call_taker,
             "DISPATCHER_TOKEN": dispatcher, "PYTHON": sys.executable, "SCREENSHOTS": str(SCREENSHOTS),
             "CHROMIUM": CHROMIUM})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "failure" not in result, result["failure"] + f"\nscreenshots in {SCREENSHOTS}"
    return result, httpx.Client(base_url=stack.gateway_url, timeout=20,
                                headers={"Authorization": f"Bearer {dispatcher}"})


def test_the_console_classifies_while_the_call_taker_types_and_files_the_report(desks_run, stack):
    result, http = desks_run
    assert "token" not in result["consoleAddressBar"] and result["consoleAddressBar"].endswith("#/intake-console")
    assert result["errors"] == []
    assert set(result["requests"]) == {stack.gateway_url}
    # Something was shown before the description was complete, and the whole one reads as a robbery.
    assert result["whileTyping"] is not None
    assert result["preview"]["category"] == 1 and result["preview"]["incidentType"] == "ROBBERY"
    assert result["preview"]["stationId"]
    assert "警情" in result["previewText"] and result["preview"]["reason"] in result["previewText"]
    # The type by its Chinese name from intake's taxonomy, never the code.
    types = {t["code"]: t for t in http.get("/v1/incidentTypes").json()["incidentTypes"]}
    assert types["ROBBERY"]["displayName"] == "抢劫抢夺"
    assert result["previewTypeText"] == "抢劫抢夺" and result["preview"]["incidentTypeName"] == "抢劫抢夺"
    assert "ROBBERY" not in result["previewText"] and "ROBBERY" not in result["filedText"]
    assert "抢劫抢夺" in result["filedText"]
    assert "地图选点" in result["pointText"]
    # What was filed is what the preview said, at the station it named.
    report = result["reportAsFiled"]  # read through the API before the correction below
    assert report["name"] == result["report"]
    assert report["classification"]["incidentType"] == result["preview"]["incidentType"]
    assert report["classification"]["priority"] == result["preview"]["priority"]
    assert report["stationId"] == result["preview"]["stationId"]
    assert report["location"]["source"] == "LOCATION_SOURCE_CALL_TAKER"
    # The console follows the case that came of it.
    [case] = http.get("/v1/cases", params={"report": result["report"]}).json()["cases"]
    assert result["consoleCase"] == case["name"] and case["name"] in result["filedText"]
    # The correction offers every type by its Chinese name, grouped by category, the filed one chosen.
    groups = dict(result["correctionTypes"])
    assert list(groups) == ["警情", "非警务求助", "咨询", "无效报警"]
    offered = {code: (name, chosen) for options in groups.values() for code, name, chosen in options}
    assert set(offered) == set(types)
    assert all(name == types[code]["displayName"] for code, (name, _) in offered.items())
    assert [code for code, (_, chosen) in offered.items() if chosen] == ["ROBBERY"]
    assert ("MISDIAL", "误拨", False) in [tuple(o) for o in groups["无效报警"]]


def test_the_case_appears_on_the_board_and_a_recommended_unit_is_offered_it(desks_run):
    result, http = desks_run
    assert result["fileToBoardMs"] < LIVE_MS
    assert result["boardCaseType"] == "抢劫抢夺" and result["boardDetailType"] == "抢劫抢夺"
    assert "ROBBERY" not in result["boardCaseText"]
    assert "米" in result["recommendationText"] or "公里" in result["recommendationText"]
    offer = http.get(f"/v1/{result['assignment']}").json()
    assert offer["unit"] == result["offeredUnit"]
    assert offer["name"].startswith(result["consoleCase"] + "/assignments/")
    assert offer["name"] not in [a["name"] for a in result["before"]]


def test_an_officer_accepting_shows_on_the_board(desks_run):
    result, http = desks_run
    assert result["accepted"]["state"] == "ASSIGNMENT_STATE_ACCEPTED"
    assert result["acceptToBoardMs"] < LIVE_MS
    assert "已接单" in result["acceptedText"]
    case = result["caseAfterAccept"]  # read through the API before the dispatcher closed it
    assert case["name"] == result["consoleCase"] and case["status"] == "CASE_STATUS_DISPATCHED"
    assert any(a["name"] == result["assignment"] and a["state"] == "ASSIGNMENT_STATE_ACCEPTED"
               for a in case["assignments"])


def test_screenshots_are_saved(desks_run):
    for name in ("call-taker-preview", "call-taker-filed", "dispatcher-case", "dispatcher-offered",
                 "dispatcher-accepted", "call-taker-corrected", "dispatcher-escalated", "dispatcher-closed",
                 "call-taker-merge", "dispatcher-cancelled"):
        shot = SCREENSHOTS / f"consoles-{name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot


def test_the_call_taker_corrects_the_classification_with_a_reason_and_the_board_follows(desks_run):
    result, http = desks_run
    report = http.get(f"/v1/{result['report']}").json()
    c = report["classification"]
    assert (c["incidentType"], c["priority"], c["corrected"]) == ("FIGHT", 2, True)
    assert result["corrected"] == {"category": 1, "incidentType": "FIGHT", "priority": 2, "corrected": True}
    [entry] = [e for e in report["timeline"] if e["action"] == "CORRECTED"]
    assert entry["stamp"]["reason"] == "报警人补充：双方互殴，并非抢劫"
    assert entry["stamp"]["actor"] == "e2e-console-call-taker"
    assert "已更正" in result["correctedText"] and "打架斗殴" in result["correctedText"]
    case = http.get(f"/v1/{result['consoleCase']}").json()
    assert case["incidentType"] == "FIGHT" and result["boardTypeAfterCorrection"] == "打架斗殴"


def test_the_dispatcher_offers_another_unit_escalates_and_closes_the_case(desks_run):
    result, http = desks_run
    case = http.get(f"/v1/{result['consoleCase']}").json()
    by_name = {a["name"]: a for a in case["assignments"]}
    # The second unit's offer, made by the dispatcher, withdrawn unanswered when the case closed.
    other = by_name[result["otherAssignment"]]
    assert other["unit"] == result["otherUnit"] != result["offeredUnit"]
    assert other["reason"].startswith("调度员派警")
    assert other["state"] == "ASSIGNMENT_STATE_CANCELLED"
    # The first unit, which had accepted, stood down.
    assert by_name[result["assignment"]]["state"] == "ASSIGNMENT_STATE_WITHDRAWN"
    levels = ["CASE_LEVEL_UNSPECIFIED", "CASE_LEVEL_STATION", "CASE_LEVEL_COUNTY", "CASE_LEVEL_CITY",
              "CASE_LEVEL_PROVINCE"]
    assert result["levelAfter"] == result["levelBefore"] + 1 and case["level"] == levels[result["levelAfter"]]
    actions = {e["action"]: e for e in case["timeline"]}
    assert actions["ESCALATED"]["stamp"]["reason"] == "涉案人员持刀，请分局指挥"
    assert case["status"] == "CASE_STATUS_CLOSED" and case["outcome"] == "OUTCOME_MEDIATED"
    assert case["closeNotes"] == "双方已调解，刀具已收缴"
    assert actions["CLOSED"]["stamp"]["actor"] == "e2e-board-dispatcher"
    assert "已结案" in result["closedText"]


def test_a_call_between_two_open_reports_is_merged_into_the_one_the_call_taker_picks(desks_run):
    result, http = desks_run
    assert set(result["candidates"]) == {result["earlier"], result["later"]}
    assert result["candidates"][0] == result["earlier"]  # the earliest first: the automatic master
    merged = http.get(f"/v1/{result['merged']}").json()
    assert merged["status"] == "REPORT_STATUS_MERGED" and merged["mergedInto"] == result["later"]
    assert result["merged"] in http.get(f"/v1/{result['later']}").json().get("duplicates", [])
    assert result["merged"] not in http.get(f"/v1/{result['earlier']}").json().get("duplicates", [])
    assert f"已合并至 {result['later']}" in result["mergedText"]
    # A merged report opens no case of its own.
    assert http.get("/v1/cases", params={"report": result["merged"]}).json().get("cases", []) == []


def test_the_dispatcher_cancels_a_case_with_a_reason(desks_run):
    result, http = desks_run
    case = http.get(f"/v1/{result['earlierCase']}").json()
    assert case["report"] == result["earlier"]
    assert case["status"] == "CASE_STATUS_CANCELLED" and case["cancelReason"] == "CANCEL_REASON_FALSE_ALARM"
    assert case["closeNotes"] == "回拨核实，报警人称看错了"
    assert "已撤销" in result["cancelledText"]
    assert all(a["state"] in ("ASSIGNMENT_STATE_CANCELLED", "ASSIGNMENT_STATE_WITHDRAWN") for a in case["assignments"])
    assert result["errors"] == []
