"""The big screen (指挥大屏) in a real browser: Debian's Chromium, headless, driven by Playwright
(web/tests/big-screen.mjs, playwright-core from web/package-lock.json) against the whole suite
behind the gateway, which serves the built front-end at /. The screen opens with a development
token in the URL fragment; a report filed through the API shows up on its map and in its list; a
kidnapping (绑架) report's alert shows and a commander acknowledges it there; screenshots go to
build/screenshots/."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest

from gateway.render import DEFAULT_WEB_DIR, WEB_INDEX
from tests.conftest import ROOT
from tools.token import mint

pytestmark = pytest.mark.web

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SCRIPT = ROOT / "web" / "tests" / "big-screen.mjs"
SCREENSHOTS = ROOT / "build" / "screenshots"
# The issue asks for 1 s from report to marker; that is measured in the benchmark. Here: a few
# seconds, on a shared two-core machine running the whole suite.
REPORT_TO_SCREEN_MS = 5_000


def _missing() -> str | None:
    if not (DEFAULT_WEB_DIR / WEB_INDEX).is_file():
        return f"the web front-end is not built ({DEFAULT_WEB_DIR}): run `make web`"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium"
    if shutil.which("node") is None:
        return "node not found"
    if not (ROOT / "web" / "node_modules" / "playwright-core").is_dir():
        return "playwright-core not installed: run `make setup`"
    return None


def _skip(reason: str) -> None:
    """Skipped where a browser cannot run; `make test` sets SMART110_REQUIRE_BROWSER, so there a
    missing browser or build fails instead of hiding the screens' tests."""
    if os.environ.get("SMART110_REQUIRE_BROWSER"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def screen_run(stack):
    """One run of the browser scenario against the suite: what the screen showed, and when."""
    reason = _missing()
    if reason:
        _skip(reason)
    screen_sub = f"big-screen-{uuid.uuid4().hex[:8]}"
    screen_token = mint(roles=["commander"], sub=screen_sub, name="大屏指挥长")
    report_token = mint(roles=["call_taker"], station="S01", sub="e2e-call-taker", name="接警员")
    for old in SCREENSHOTS.glob("big-screen-*.png"):  # this screen's own; other screens keep theirs
        old.unlink()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        ["node", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**os.environ, "GATEWAY_URL": stack.gateway_url, "SCREEN_TOKEN": screen_token,
             "REPORT_TOKEN": report_token, "SCREENSHOTS": str(SCREENSHOTS), "CHROMIUM": CHROMIUM})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "failure" not in result, result["failure"] + f"\nscreenshots in {SCREENSHOTS}"
    return result, screen_token, screen_sub


def test_the_gateway_serves_the_front_end_at_its_root_without_a_token(stack):
    page = httpx.get(f"{stack.gateway_url}/", timeout=20)
    if page.status_code == 401 and _missing():
        _skip(_missing())
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.content == (DEFAULT_WEB_DIR / WEB_INDEX).read_bytes()
    assets = sorted(p for p in (DEFAULT_WEB_DIR / "assets").iterdir() if p.suffix in (".js", ".css", ".mjs"))
    assert assets
    for asset in assets:
        resp = httpx.get(f"{stack.gateway_url}/assets/{asset.name}", timeout=20)
        assert resp.status_code == 200, asset.name
        assert resp.headers["content-type"].split(";")[0] == (
            "text/css" if asset.suffix == ".css" else "text/javascript")
        assert "immutable" in resp.headers["cache-control"]
        assert resp.content == asset.read_bytes()
    # Only the build's own files are open: any other path still needs a token.
    assert httpx.get(f"{stack.gateway_url}/assets/not-built.js", timeout=20).status_code == 401
    assert httpx.post(f"{stack.gateway_url}/", timeout=20).status_code in (401, 404, 405)
    # Swagger UI and the OpenAPI document are still there.
    assert httpx.get(f"{stack.gateway_url}/docs", timeout=20).status_code == 200
    assert httpx.get(f"{stack.gateway_url}/openapi.json", timeout=20).json()["openapi"].startswith("3.")


def test_the_big_screen_opens_with_a_token_in_the_fragment_and_talks_only_to_the_gateway(screen_run, stack):
    result, _, _ = screen_run
    # The token was read and taken out of the address bar; the page went to the big screen.
    assert "token" not in result["addressBar"]
    assert result["addressBar"].endswith("#/big-screen")
    assert set(result["requests"]) == {stack.gateway_url}
    assert result["errors"] == []
    assert {name: link["state"] for name, link in result["links"].items()} == {
        "警情": "live", "警力": "live", "预警": "live"}
    # The base map's stations are the API's own (ListStations).
    token = mint(roles=["commander"], sub="e2e-stations")
    stations = httpx.get(f"{stack.gateway_url}/v1/stations", params={"pageSize": 100},
                         headers={"Authorization": f"Bearer {token}"}, timeout=20).json()["stations"]
    assert result["stationRows"] == len(stations) > 0


def test_a_report_filed_through_the_api_appears_on_the_map_and_in_the_list(screen_run, stack):
    result, screen_token, _ = screen_run
    assert result["reportToScreenMs"] < REPORT_TO_SCREEN_MS
    cases = httpx.get(f"{stack.gateway_url}/v1/cases", params={"report": result["fightReport"]},
                      headers={"Authorization": f"Bearer {screen_token}"}, timeout=20).json()["cases"]
    case = next(c for c in cases if c["report"] == result["fightReport"])
    assert result["fightCase"] == case["name"]
    # Newest first, and listed with its summary and status in Chinese.
    assert result["listedFirst"] == case["name"]
    assert "打架斗殴" in result["fightListText"] and "FIGHT" not in result["fightListText"]
    assert "待派警" in result["fightListText"]


def test_a_kidnapping_alert_shows_and_a_commander_acknowledges_it_on_the_screen(screen_run, stack):
    result, screen_token, screen_sub = screen_run
    assert "绑架" in result["alertText"]
    assert result["acknowledged"] is True
    alert = httpx.get(f"{stack.gateway_url}/v1/{result['alert']}",
                      headers={"Authorization": f"Bearer {screen_token}"}, timeout=20).json()
    assert result["kidnapReport"] == alert["subject"] or result["kidnapReport"] in alert["relatedSubjects"]
    assert alert["level"] == "ALERT_LEVEL_RED" and alert["labels"]["term"] == "绑架"
    # Acknowledged by the screen's commander, through the API.
    assert alert["state"] == "ALERT_STATE_ACKNOWLEDGED"
    assert alert["acknowledgeStamp"]["actor"] == screen_sub


def test_screenshots_are_saved(screen_run):
    for name in ("loaded", "report", "alert", "heat", "cold"):
        shot = SCREENSHOTS / f"big-screen-{name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
