"""Benchmark harness: `make bench`.

Starts the whole suite as `make run` does (fresh data directory), then drives
it at a fixed concurrency for a fixed time and writes throughput and latency
percentiles to bench-results/foundation.json:

- report_http:  ReportIncident as HTTP/JSON through Envoy (the front-end path)
- report_grpc:  ReportIncident over gRPC straight to the intake service
- noop_http:    LocateJurisdiction through Envoy: an in-memory lookup with no
                database work, the floor a request through gateway + Python
                gRPC server costs on this machine
- gateway_only: Envoy's own /healthz, the floor of the gateway alone
- report_to_case: time from ReportIncident returning to the dispatch case
                existing (feed + consumer + recommendation), sampled

The load generator shares the machine with the suite; read the figures as
ratios to the floors measured in the same run.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import httpx

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from tools.devstack import ROOT, Ports, Stack, say
from tools.token import mint

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


async def bench(stack: Stack, concurrency: int, seconds: float) -> dict:
    token = mint(roles=["dispatcher"], station="S01", sub="bench")
    headers = {"Authorization": f"Bearer {token}"}
    results: dict = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, limits=limits, timeout=30) as http:
        async def gateway_only(i):
            (await http.get("/healthz")).raise_for_status()

        async def noop_http(i):
            lon, lat = POINTS[i % len(POINTS)]
            (await http.get("/v1/jurisdictions:locate",
                            params={"point.longitude": lon, "point.latitude": lat})).raise_for_status()

        async def report_http(i):
            (await http.post("/v1/reports", json=report_json(i))).raise_for_status()

        say(f"warming up, then {seconds:.0f}s per scenario at concurrency {concurrency}")
        await run_load("warm-up", report_http, concurrency, 2)
        results["gateway_only"] = await run_load("gateway_only", gateway_only, concurrency, seconds)
        results["noop_http"] = await run_load("noop_http", noop_http, concurrency, seconds)
        results["report_http"] = await run_load("report_http", report_http, concurrency, seconds)

        async with grpc.aio.insecure_channel(stack.address("intake")) as channel:
            stub = intake_grpc.IntakeServiceStub(channel)

            async def report_grpc(i):
                lon, lat = POINTS[i % len(POINTS)]
                await stub.ReportIncident(intake_pb.ReportIncidentRequest(
                    request_id=uuid.uuid4().hex, report=intake_pb.Report(
                        channel=intake_pb.CHANNEL_PHONE, description=f"压测警情{i}：有人打架",
                        location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=lon, latitude=lat)))))

            results["report_grpc"] = await run_load("report_grpc", report_grpc, concurrency, seconds)

        # Let dispatch work through the load's backlog first, so the next
        # figure is the latency of one report, not time spent in a queue.
        last = (await http.post("/v1/reports", json=report_json(0))).json()["name"]
        t0 = time.perf_counter()
        while not (await http.get("/v1/cases", params={"report": last})).json()["cases"]:
            if time.perf_counter() - t0 > 300:
                raise SystemExit("dispatch did not catch up with the load within 300 s")
            await asyncio.sleep(0.2)
        results["dispatch_backlog_drain_s"] = round(time.perf_counter() - t0, 2)
        say(f"dispatch worked off the load's backlog in {results['dispatch_backlog_drain_s']} s")

        # Report -> dispatch case, one at a time so the figure is latency, not queueing.
        samples = []
        timeouts = 0
        for i in range(30):
            resp = await http.post("/v1/reports", json=report_json(i))
            t0 = time.perf_counter()
            name = resp.json()["name"]
            while True:
                cases = (await http.get("/v1/cases", params={"report": name})).json()["cases"]
                if cases:
                    samples.append(time.perf_counter() - t0)
                    break
                if time.perf_counter() - t0 > 10:
                    timeouts += 1
                    break
                await asyncio.sleep(0.005)
        results["report_to_case"] = {**percentiles(samples), "timeouts_10s": timeouts}
        say(f"report_to_case: p50 {results['report_to_case'].get('p50_ms')} ms, "
            f"p99 {results['report_to_case'].get('p99_ms')} ms")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("BENCH_CONCURRENCY", 16)))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 10)))
    parser.add_argument("--out", default=str(ROOT / "bench-results" / "foundation.json"))
    args = parser.parse_args()
    run_dir = Path(tempfile.mkdtemp(prefix="smart110-bench-"))
    stack = Stack(run_dir=run_dir, ports=Ports.free(), database_url=os.environ.get("DATABASE_URL") or None,
                  log_level="WARNING")
    try:
        stack.start()
        results = asyncio.run(bench(stack, args.concurrency, args.seconds))
    finally:
        stack.stop()
        shutil.rmtree(run_dir, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
           "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": results}
    if results["noop_http"].get("throughput_rps"):
        doc["report_http_vs_noop_http"] = round(
            results["report_http"]["throughput_rps"] / results["noop_http"]["throughput_rps"], 3)
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    say(f"results written to {out}")


if __name__ == "__main__":
    main()
