"""Warehouse ingest lag (警情数据大水库): from a report entering intake to its fact row and rollups being
queryable in the warehouse, while reports arrive at a steady rate.

On the whole suite as `make run` starts it: reports are filed through the gateway (POST /v1/reports, a
call taker's token) at WAREHOUSE_LAG_RATE a second (default 20) for WAREHOUSE_LAG_SECONDS (default 20),
open loop (each sent at its scheduled moment, whether or not earlier ones were answered). A poller reads
the warehouse's database every 10 ms for the reports filed and not yet seen; a report's lag is from the
moment it was sent to the first poll that finds its fact row. The fact row and the rollups it counts in
are written in one transaction (services/warehouse/handlers.py), so a row found is a report the heat
map, trends, KPIs and threshold checks count. Reports never seen within WAREHOUSE_LAG_DRAIN_SECONDS
(default 30) after the last one are counted as missing.

The path: intake commits the report and its event (outbox), its feed streams the event to the
warehouse's consumer, which applies it (fact row, rollups, inbox, cursor) in one commit. The machine's
two cores run Envoy, Postgres and every service together (the alerts, dispatch, referral and scoring
consumers read the same reports): read the figures with the rate they were taken at, and with the
machine's load average the results record (the cores may be shared with other work).
"""
from __future__ import annotations

import asyncio
import os
import threading
import time

import httpx
from sqlalchemy import create_engine, text

from services.runtime.db import sqlalchemy_url
from tools.benches._common import percentiles
from tools.benches.throughput import report_body
from tools.token import mint

POLL_S = 0.01
TARGET_P99_S = 1.0


class _Watcher:
    """Finds the reports' fact rows as they appear: {name: first time seen}."""

    def __init__(self, url: str):
        self.engine = create_engine(sqlalchemy_url(url), pool_size=1)
        self.pending: set[str] = set()
        self.seen: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="warehouse-lag-watcher", daemon=True)

    def watch(self, name: str) -> None:
        with self.lock:
            self.pending.add(name)

    def _run(self) -> None:
        with self.engine.connect() as conn:
            while not self.stop.is_set():
                with self.lock:
                    names = list(self.pending)
                if names:
                    found = conn.execute(text("SELECT report FROM warehouse.report_facts WHERE report = ANY(:n)"),
                                         {"n": names}).scalars().all()
                    conn.rollback()  # a fresh snapshot for the next poll
                    at = time.time()
                    with self.lock:
                        for name in found:
                            self.pending.discard(name)
                            self.seen.setdefault(name, at)
                time.sleep(POLL_S)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.engine.dispose()


async def _file(url: str, token: str, rate: float, seconds: float, watcher: _Watcher) -> list[tuple]:
    """Files reports at `rate` a second; (name or "", sent at, status) each."""
    sent: list[tuple] = []
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        async def one(n: int, due: float) -> None:
            body, _ = report_body(1_000_000 + n)
            try:
                resp = await http.post("/v1/reports", json=body)
                name = resp.json().get("name", "") if resp.status_code == 200 else ""
                status = resp.status_code
            except httpx.HTTPError:
                name, status = "", 0
            if name:
                watcher.watch(name)
            sent.append((name, due, status))

        start = time.time() + 0.5
        tasks = []
        for i in range(int(rate * seconds)):
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    return sent


def run(stack, say) -> dict:
    rate = float(os.environ.get("WAREHOUSE_LAG_RATE", "20"))
    seconds = float(os.environ.get("WAREHOUSE_LAG_SECONDS", "20"))
    drain = float(os.environ.get("WAREHOUSE_LAG_DRAIN_SECONDS", "30"))
    token = mint(roles=["call_taker"], sub="bench-warehouse-lag")
    load_before = os.getloadavg()
    say(f"warehouse lag: filing {int(rate * seconds)} reports at {rate:g}/s through the gateway")
    with _Watcher(stack.service_urls["warehouse"]) as watcher:
        sent = asyncio.run(_file(stack.gateway_url, token, rate, seconds, watcher))
        deadline = time.time() + drain
        while time.time() < deadline:
            with watcher.lock:
                if not watcher.pending:
                    break
            time.sleep(0.1)
        with watcher.lock:
            seen = dict(watcher.seen)
    accepted = [(name, due) for name, due, status in sent if name]
    lags = [seen[name] - due for name, due in sorted(accepted, key=lambda a: a[1]) if name in seen]
    p = percentiles(lags) if lags else {}
    if lags:
        p["min_ms"] = round(min(lags) * 1000, 2)
    # The lag along the run (by send time, in tenths): a backlog that grows shows here, a fixed delay does not.
    tenth = max(1, len(lags) // 10)
    along = [round(max(lags[i:i + tenth]) * 1000, 1) for i in range(0, len(lags), tenth)]
    missing = len(accepted) - len(lags)
    say(f"warehouse lag: {len(lags)} of {len(accepted)} seen; p50 {p.get('p50_ms')} ms, p99 {p.get('p99_ms')} ms, "
        f"{missing} missing")
    return {
        "rate_per_second": rate, "seconds": seconds, "offered": len(sent), "accepted": len(accepted),
        "seen": len(lags), "missing": missing, "poll_ms": POLL_S * 1000,
        "report_to_fact_and_rollups": p,
        "max_ms_by_tenth_of_the_run": along,
        "target_p99_ms": TARGET_P99_S * 1000,
        # The machine's load average (1, 5, 15 min) before and after: other work on the shared cores shows here.
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "held": bool(lags) and missing == 0 and p["p99_ms"] <= TARGET_P99_S * 1000,
    }
