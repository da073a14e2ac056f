"""The big screen (指挥大屏) in a real browser (Debian's Chromium, headless, software WebGL, driven by
Playwright from web/, web/tests/big-screen-bench.mjs): time to first render (load to the map drawn
and every live link up), time from a report's POST to its marker on the map (the issue's 1 s), and
frame times with 2,000 units and 500 incidents moving (synthetic, added through the page's
benchmark hook), without and with the 1-3-5 minute circles. Measured, not asserted: on a shared
two-core machine without a GPU the frame figures are a floor, not what a wall display shows."""
from __future__ import annotations

import json
import os
import subprocess

from tools.devstack import ROOT
from tools.token import mint

NEEDS_STACK = True
SCRIPT = ROOT / "web" / "tests" / "big-screen-bench.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def run(stack, say) -> dict:
    if not (ROOT / "build" / "web" / "index.html").is_file():
        raise SystemExit("the web front-end is not built: run `make web`")
    say("benchmark web: driving the big screen in Chromium (first render, report to marker, frame times)")
    proc = subprocess.run(
        ["node", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "GATEWAY_URL": stack.gateway_url, "CHROMIUM": CHROMIUM,
             "SCREEN_TOKEN": mint(roles=["commander"], sub="bench-big-screen", name="压测大屏"),
             "REPORT_TOKEN": mint(roles=["call_taker"], station="S01", sub="bench-call-taker"),
             "UNITS": "2000", "INCIDENTS": "500"})
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-4000:])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if "failure" in result:
        raise RuntimeError(result["failure"])
    return {"browser": "chromium headless, swiftshader (no GPU)", "viewport": "1920x1080", **result}
