"""`python -m services.intake classify`: JSON lines in, one JSON line per input out, no database."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_cli(lines: list[str]) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["PYTHONPATH"] = f"{ROOT / 'gen'}:{ROOT}"
    out = subprocess.run([sys.executable, "-m", "services.intake", "classify"], input="\n".join(lines) + "\n",
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120, check=True)
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_classify_reads_json_lines_and_writes_one_line_per_input():
    got = run_cli([
        json.dumps({"text": "小区门口有两个人打架，有人流血了", "channel": "PHONE"}, ensure_ascii=False),
        json.dumps({"text": "路口红绿灯坏了", "channel": "CHANNEL_HOTLINE_12345"}, ensure_ascii=False),
        "not json",
        json.dumps({"text": "", "channel": "SILENT_ALARM"}),
    ])
    assert len(got) == 4
    fight, light, bad, silent = got
    assert set(fight) >= {"category", "type", "priority", "confidence", "needsConfirmation", "reason"}
    assert (fight["category"], fight["type"], fight["priority"]) == ("POLICE", "FIGHT", 1)
    assert 0 < fight["confidence"] <= 1 and "级" in fight["reason"] and fight["classifierVersion"]
    assert (light["category"], light["type"]) == ("NON_POLICE", "TRAFFIC_SIGNAL")
    assert "error" in bad
    assert (silent["category"], silent["type"], silent["priority"]) == ("POLICE", "SILENT_ALARM", 1)
