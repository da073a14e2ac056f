"""The foundation's figures: the floors of the gateway and the RPC path, and a report's way to dispatch.

- gateway_only: Envoy's own /healthz, the floor of the gateway alone
- noop_http:    LocateJurisdiction through Envoy: an in-memory lookup with no
                database work, the floor a request through gateway + Python
                gRPC server costs on this machine
- report_http:  ReportIncident as HTTP/JSON through Envoy (the front-end path)
- report_grpc:  ReportIncident over gRPC straight to the intake service
- report_to_case: time from ReportIncident returning to the dispatch case
                existing (feed + consumer + recommendation), sampled

The load generator shares the machine with the suite; read the figures as
ratios to the floors measured in the same run.
"""
from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from tools.benches._common import POINTS, incident_json, percentiles, report_json, run_load, aio_service_channel
from tools.devstack import Stack
from tools.token import mint


def run(stack: Stack, say) -> dict:
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", 16))
    seconds = float(os.environ.get("BENCH_SECONDS", 10))
    results = asyncio.run(bench(stack, concurrency, seconds, say))
    if results["noop_http"].get("throughput_rps"):
        results["report_http_vs_noop_http"] = round(
            results["report_http"]["throughput_rps"] / results["noop_http"]["throughput_rps"], 3)
    return results


async def bench(stack: Stack, concurrency: int, seconds: float, say) -> dict:
    token = mint(roles=["dispatcher"], sub="bench")
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

        async with aio_service_channel(stack.address("intake")) as channel:
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
        last = (await http.post("/v1/reports", json=incident_json(39))).json()["name"]
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
            resp = await http.post("/v1/reports", json=incident_json(i))
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


