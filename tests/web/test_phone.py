"""The officer's phone view (民警手机) in a real browser at a phone's size (390×844): Debian's
Chromium, headless, driven by Playwright (web/tests/phone.mjs) against the whole suite behind the
gateway. A report posted through the API becomes a case offered to a unit; that unit's officer opens
the phone view with a development token, sees the offer, accepts it, goes en route, arrives, clears
and reports back with a photo (a PNG the phone uploads to dispatch's evidence store); the API shows
the assignment reported back, with the outcome, notes and the stored photo, and the unit at the
position the browser gave; the dispatcher board shows the case's report-back and opens the photo.
Screenshots go to build/screenshots/."""
from __future__ import annotations

import hashlib
import json
import os
import random
import struct
import subprocess
import uuid
import zlib

import httpx
import pytest

from tests.conftest import ROOT, eventually
from tests.web.test_big_screen import CHROMIUM, SCREENSHOTS, _missing, _skip
from tools.token import mint

pytestmark = pytest.mark.web

SCRIPT = ROOT / "web" / "tests" / "phone.mjs"


def png(width: int, height: int) -> bytes:
    """A PNG of random RGB pixels: a real image a browser decodes, of this run's own bytes."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + random.randbytes(3 * width) for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PHOTO_SIZE = (24, 16)
PHOTO = png(*PHOTO_SIZE)
# Where the officer stands (the browser's geolocation), near the report.
HERE = (114.3061, 30.5852)


@pytest.fixture(scope="module")
def phone_run(stack):
    reason = _missing()
    if reason:
        _skip(reason)
    api = httpx.Client(base_url=stack.gateway_url, timeout=20, headers={
        "Authorization": f"Bearer {mint(roles=['commander'], sub='e2e-phone-commander')}"})
    reporter = mint(roles=["call_taker"], station="S01", sub="e2e-phone-call-taker", name="接警员")
    # Somewhere no other test of the session reports a fight: a report within 300 m and 30 minutes of
    # an open fight would be merged into it (a repeat call) and open no case of its own.
    point = {"longitude": 114.275 + random.uniform(-0.01, 0.01), "latitude": 30.625 + random.uniform(-0.01, 0.01)}
    posted = httpx.post(f"{stack.gateway_url}/v1/reports", timeout=20, headers={"Authorization": f"Bearer {reporter}"},
                        json={"requestId": uuid.uuid4().hex, "report": {
                            "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": f"137{random.randrange(10**8):08d}"},
                            "location": {"point": point}, "description": "小区门口有两个人打架，有人受伤"}})
    assert posted.status_code == 200, posted.text
    report = posted.json()["name"]

    def offered():
        cases = api.get("/v1/cases", params={"report": report}).json().get("cases", [])
        case = next((c for c in cases if c["report"] == report), None)
        if case is None:
            return None
        case = api.get(f"/v1/{case['name']}").json()
        return next(((case, a) for a in case.get("assignments", [])
                     if a["state"] == "ASSIGNMENT_STATE_OFFERED" and a["role"] == "ASSIGNMENT_ROLE_PRIMARY"), None)

    try:
        case, offer = eventually(offered, timeout=30)
    except AssertionError:
        got = api.get(f"/v1/{report}").json()
        raise AssertionError(f"no offer for {report}: status {got.get('status')}, merged into "
                             f"{got.get('mergedInto')!r}, cases {api.get('/v1/cases', params={'report': report}).text}")
    unit = api.get(f"/v1/{offer['unit']}").json()
    officer = unit["officers"][0]
    token = mint(roles=["officer"], station=unit["stationId"], sub=officer["officerId"],
                 name=officer.get("displayName") or "民警")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("phone-*.png"):
        old.unlink()
    proc = subprocess.run(
        ["node", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**os.environ, "GATEWAY_URL": stack.gateway_url, "PHONE_TOKEN": token, "ASSIGNMENT": offer["name"],
             "DISPATCHER_TOKEN": mint(roles=["dispatcher"], sub="e2e-phone-dispatcher", name="调度员"),
             "LONGITUDE": str(HERE[0]), "LATITUDE": str(HERE[1]), "PHOTO_HEX": PHOTO.hex(),
             "SCREENSHOTS": str(SCREENSHOTS), "CHROMIUM": CHROMIUM})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "failure" not in result, result["failure"] + f"\nscreenshots in {SCREENSHOTS}"
    yield result, api, case, offer, unit
    api.close()


def test_the_officer_lands_on_the_phone_view_of_their_own_unit_and_sees_the_offer(phone_run, stack):
    result, _, case, offer, unit = phone_run
    assert result["unit"] == unit["name"] == offer["unit"]
    assert "token" not in result["addressBar"] and result["addressBar"].endswith("#/phone")
    assert set(result["requests"]) == {stack.gateway_url}
    assert result["errors"] == []
    assert result["link"]["state"] == "live"
    # The case as the officer needs it: what, where, in Chinese; no wider than the phone.
    assert "打架斗殴" in result["offerText"] and "FIGHT" not in result["offerText"]
    assert "新派单" in result["offerText"] and "接受" in result["offerText"]
    assert case["addressText"] in result["offerText"]
    assert result["pageWidth"] <= 390


def test_accepted_advanced_and_reported_back_as_the_api_shows(phone_run):
    result, api, _, offer, _ = phone_run
    assert result["steps"] == ["ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED", "REPORTED_BACK"]
    assert result["statusEnRoute"] == "EN_ROUTE"
    assert "已回告" in result["reportedText"] and "调解处理" in result["reportedText"]
    got = api.get(f"/v1/{offer['name']}").json()
    assert got["state"] == "ASSIGNMENT_STATE_REPORTED_BACK"
    assert got["outcome"] == "OUTCOME_MEDIATED" and got["notes"] == "双方已调解，伤者无大碍"
    for stamp in ("acceptTime", "enRouteTime", "arriveTime", "clearTime", "reportBackTime"):
        assert got.get(stamp), stamp
    # The photo as dispatch's evidence store keeps it (the text file was refused by the phone).
    assert "说明.txt" in result["refusedText"] and "说明.txt" not in result["evidenceText"]
    assert "现场.png" in result["evidenceText"]
    [photo] = got["evidence"]
    assert photo["kind"] == "ATTACHMENT_KIND_IMAGE" and photo["contentType"] == "image/png"
    assert photo["sha256"] == hashlib.sha256(PHOTO).hexdigest() and int(photo["sizeBytes"]) == len(PHOTO)
    assert photo["storageUri"] == result["uploadedUri"]
    assert photo["storageUri"].startswith(offer["name"] + "/evidence/")
    # Its bytes, through the gateway, to whoever may read the case.
    body = api.get(f"/v1/{photo['storageUri']}:download")
    assert body.status_code == 200 and body.headers["content-type"] == "image/png" and body.content == PHOTO
    # The case's detail lists it, as the API and the dispatcher board show it.
    case = api.get(f"/v1/{offer['name'].split('/assignments/')[0]}").json()
    [mine] = [a for a in case["assignments"] if a["name"] == offer["name"]]
    assert mine["evidence"] == [photo]
    assert "调解处理" in result["boardReportText"] and "双方已调解" in result["boardReportText"]
    assert result["boardPhotos"] == {photo["storageUri"]: list(PHOTO_SIZE)}


def test_the_browser_position_reaches_the_unit_and_statuses_are_set_from_the_phone(phone_run):
    result, api, _, _, unit = phone_run
    assert "位置已上报" in result["positionText"]
    now = api.get(f"/v1/{unit['name']}").json()
    assert (now["position"]["longitude"], now["position"]["latitude"]) == pytest.approx(HERE, abs=1e-6)
    assert not now.get("positionStale")
    # The panic button asked first; cancelled, nothing was sent; then the officer set 在所.
    assert result["confirmShown"] is True and result["statusAfterCancel"] != "EMERGENCY"
    assert now["status"] == "UNIT_STATUS_AT_STATION"
    history = api.get(f"/v1/{unit['name']}").json().get("timeline", [])
    assert not any("EMERGENCY" in (e.get("detail", "") + e.get("action", "")) for e in history)


def test_phone_screenshots_are_saved(phone_run):
    for name in ("offer", "on-scene", "report-back", "emergency-confirm", "done", "board-evidence"):
        shot = SCREENSHOTS / f"phone-{name}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
