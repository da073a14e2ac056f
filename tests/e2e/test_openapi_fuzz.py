"""Schemathesis over the gateway's own OpenAPI document: every documented REST operation but the streams,
called through Envoy with a privileged token and requests generated from the document (valid and
invalid ones), must never answer 5xx.

tests/integration/test_fuzz.py generates hostile requests from the descriptor set; this one reads the
document front-end teams read (GET /openapi.json), so it also catches a route the document promises
and the gateway or a service cannot answer.

Bounded and reproducible: the examples phase and a fixed number of generated requests per operation,
one seed, no example database. Schemathesis comes from requirements-fuzz.txt, installed apart from the
environment into build/fuzz (`make setup`), and runs as its own process with build/fuzz first on its
path. Streams (`x-grpc-streaming`) stay open until the caller leaves, so they are excluded.
"""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from tests.fuzzing import PRIVILEGED_ROLES
from tools.token import mint

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
FUZZ_TARGET = ROOT / "build" / "fuzz"
# Generated requests per operation (after the document's own examples): about 20 s on two cores. One
# worker: the order of requests, and so what each finds in the database, is the same every run.
MAX_EXAMPLES = 3
SEED = 110
STREAMING = "/x-grpc-streaming == true"


def _operations(doc: dict) -> tuple[set[str], set[str]]:
    """The document's operations as Schemathesis names them ("GET /v1/stations"): unary, streaming."""
    unary, streams = set(), set()
    for path, item in doc["paths"].items():
        for method, op in item.items():
            (streams if op.get("x-grpc-streaming") else unary).add(f"{method.upper()} {path}")
    return unary, streams


def test_no_documented_operation_answers_a_server_error(stack, tmp_path):
    if not (FUZZ_TARGET / "schemathesis").is_dir():
        pytest.fail(f"{FUZZ_TARGET} has no schemathesis: run `make setup` (requirements-fuzz.txt)")
    served = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=20)
    assert served.status_code == 200
    unary, streams = _operations(served.json())
    assert unary and streams

    token = mint(roles=PRIVILEGED_ROLES, station="S01", sub="fuzz-openapi", name="fuzz")
    junit = tmp_path / "junit.xml"
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{stack.gateway_url}/openapi.json",
        "--url", stack.gateway_url,
        "--header", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error",
        "--phases", "examples,fuzzing",
        "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--generation-database", "none",
        # Hypothesis' health checks judge the generation (too slow on a busy machine, too many draws
        # filtered for a plain string to be invalid), not the API: they would fail a run at random.
        "--suppress-health-check", "all",
        "--exclude-by", STREAMING,
        "--workers", "1", "--request-timeout", "20",
        "--no-color", "--report", "junit", "--report-junit-path", str(junit),
    ]
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONPATH"] = str(FUZZ_TARGET)
    # Its caches and reports go to the test's own directory.
    try:
        result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the bounded run took over {exc.timeout:.0f}s:\n{(exc.stdout or b'')[-4000:]!r}")
    output = result.stdout + result.stderr

    assert junit.is_file(), output[-4000:]
    cases = ET.parse(junit).getroot().iter("testcase")
    outcomes = {case.get("name"): [child for child in case if child.tag in ("failure", "error")]
                for case in cases}
    assert set(outcomes) == unary, "every unary operation tested, no stream opened"
    failed = {name: [(child.text or child.get("message") or "").strip()[:1500] for child in children]
              for name, children in outcomes.items() if children}
    assert not failed, f"{len(failed)} operations failed:\n" + "\n".join(
        f"{name}: {messages}" for name, messages in sorted(failed.items()))
    assert result.returncode == 0, output[-4000:]
