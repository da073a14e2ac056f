"""Helpers shared by the benchmark modules: load generation and percentiles."""
from __future__ import annotations

import asyncio
import statistics
import time
import uuid

from tools.devstack import say

POINTS = [(114.30, 30.58), (114.28, 30.60), (114.33, 30.55), (114.25, 30.62), (114.36, 30.57)]


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"count": 0}
    s = sorted(samples)

    def pct(p: float) -> float:
        return round(s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000, 2)

    return {"count": len(s), "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "mean_ms": round(statistics.fmean(s) * 1000, 2), "max_ms": round(s[-1] * 1000, 2)}


def report_json(i: int) -> dict:
    lon, lat = POINTS[i % len(POINTS)]
    return {"requestId": uuid.uuid4().hex, "report": {
        "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": "13800138000"},
        "location": {"point": {"longitude": lon, "latitude": lat}}, "description": f"压测警情{i}：有人打架"}}


async def run_load(name: str, call, concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + seconds
    counter = 0

    async def worker():
        nonlocal errors, counter
        while time.perf_counter() < stop_at:
            counter += 1
            t0 = time.perf_counter()
            try:
                await call(counter)
                latencies.append(time.perf_counter() - t0)
            except Exception:  # noqa: BLE001 - counted, not fatal
                errors += 1

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - t0
    result = {"concurrency": concurrency, "seconds": round(elapsed, 2), "errors": errors,
              "throughput_rps": round(len(latencies) / elapsed, 1), **percentiles(latencies)}
    say(f"{name}: {result['throughput_rps']} req/s, p50 {result.get('p50_ms')} ms, "
        f"p95 {result.get('p95_ms')} ms, p99 {result.get('p99_ms')} ms, errors {errors}")
    return result


