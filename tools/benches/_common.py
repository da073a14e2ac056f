"""Helpers shared by the benchmark modules: load generation and percentiles."""
from __future__ import annotations

import asyncio
import statistics
import time
import uuid

import grpc

from services.runtime.identity import with_credential
from tools.devstack import say
from tools.token import mint_service

POINTS = [(114.30, 30.58), (114.28, 30.60), (114.33, 30.55), (114.25, 30.62), (114.36, 30.57)]


def percentiles(samples: list[float]) -> dict:
    if not samples:
        return {"count": 0}
    s = sorted(samples)

    def pct(p: float) -> float:
        return round(s[min(len(s) - 1, int(p / 100 * len(s)))] * 1000, 2)

    return {"count": len(s), "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
            "mean_ms": round(statistics.fmean(s) * 1000, 2), "max_ms": round(s[-1] * 1000, 2)}


def _fight(i: int, lon: float, lat: float) -> dict:
    return {"requestId": uuid.uuid4().hex, "report": {
        "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": f"138{i % 10**8:08d}"},
        "location": {"point": {"longitude": round(lon, 6), "latitude": round(lat, 6)}},
        "description": f"压测警情{i}：有人打架"}}


def report_json(i: int) -> dict:
    """Load: each report its own caller and, for the first 400, its own place about 400 m from
    the others; later ones repeat earlier places, and intake may merge them as duplicates."""
    cell = i % 400
    return _fight(i, 114.27 + (cell % 20) * 0.004, 30.54 + (cell // 20) * 0.004)


def incident_json(i: int) -> dict:
    """A new incident (i < 40) in a corner of the city the load never touches: never a duplicate."""
    return _fight(10**7 + i, 114.40 + (i % 10) * 0.004, 30.60 + (i // 10) * 0.004)


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




class _AioCredential(grpc.aio.UnaryUnaryClientInterceptor, grpc.aio.UnaryStreamClientInterceptor):
    """Adds the benchmark's service credential to calls that carry no authorization of their own."""

    def __init__(self, token: str):
        self.token = token

    def _details(self, details):
        metadata = list(details.metadata or ())
        if not any(k == "authorization" for k, _ in metadata):
            metadata.append(("authorization", f"Bearer {self.token}"))
        return details._replace(metadata=metadata) if hasattr(details, "_replace") else grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready)

    async def intercept_unary_unary(self, continuation, details, request):
        return await continuation(self._details(details), request)

    async def intercept_unary_stream(self, continuation, details, request):
        return await continuation(self._details(details), request)


def service_channel(address: str) -> grpc.Channel:
    """A channel straight to a service, presenting a development service credential."""
    return with_credential(grpc.insecure_channel(address), mint_service("bench"))


def aio_service_channel(address: str) -> grpc.aio.Channel:
    """An asyncio channel straight to a service, presenting a development service credential."""
    return grpc.aio.insecure_channel(address, interceptors=[_AioCredential(mint_service("bench"))])
