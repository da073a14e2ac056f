"""Intake (接警): jurisdiction lookup, address matching and report throughput.

- jurisdiction_lookup: point -> station and grid in-process (the STRtree index
  the service serves from), over random points across and just around the
  sample city; lookups/s and p50/p99 in microseconds
- address_match: Chinese address text -> standard address in-process (the
  gazetteer's bigram index), over texts built from the sample gazetteer
- report_http: ReportIncident as HTTP/JSON through Envoy at a fixed
  concurrency: validation, location, classification, duplicate check, store
  and outbox event per report; mixed channels and Chinese descriptions
- report_address_http: the same for reports that carry only address text and
  are located through the gazetteer
- search_http: ListReports text search through Envoy (the console's search box)
- noop_http: LocateJurisdiction through Envoy, the floor of this run; read the
  HTTP figures as ratios to it (report_http_vs_noop_http)

Environment: BENCH_CONCURRENCY (default 16), BENCH_SECONDS per HTTP scenario
(default 20), BENCH_LOOKUPS (default 50000).
"""
from __future__ import annotations

import asyncio
import os
import random
import time
import uuid

import httpx

import sampledata as sd
from sampledata import gazetteer as sample_gazetteer
from services.intake.domain import Address
from services.intake.gazetteer import Gazetteer
from services.intake.seed import sample_jurisdiction
from tools.benches._common import run_load
from tools.devstack import Stack
from tools.token import mint

DESCRIPTIONS = (
    ("CHANNEL_PHONE", "烧烤摊有人打架，有人头上流血了"),
    ("CHANNEL_WECHAT", "我的电动车在小区楼下被偷了"),
    ("CHANNEL_APP", "刷单返利被骗了两万元，对方已经拉黑我"),
    ("CHANNEL_SMS", "两车追尾，没人受伤，堵在路中间"),
    ("CHANNEL_PHONE", "楼上邻居半夜噪音扰民"),
    ("CHANNEL_MINI_PROGRAM", "小区停水了一整天，没有通知"),
    ("CHANNEL_HOTLINE_12345", "路灯坏了一个多星期"),
    ("CHANNEL_PHONE", "厨房里闻到很浓的燃气味"),
)


def micro(samples: list[float], cpu: list[float]) -> dict:
    """Wall-clock figures, and the same on the thread's CPU clock: the suite shares the machine,
    so a wall-clock tail is mostly time spent waiting for a core, not lookup work."""
    s, c = sorted(samples), sorted(cpu)

    def pct(values: list[float], p: float) -> float:
        return round(values[min(len(values) - 1, int(p / 100 * len(values)))] * 1e6, 1)

    return {"count": len(s), "p50_us": pct(s, 50), "p99_us": pct(s, 99), "max_us": round(s[-1] * 1e6, 1),
            "per_second": round(len(s) / sum(s)), "cpu_p50_us": pct(c, 50), "cpu_p99_us": pct(c, 99)}


def timed(fn, items) -> tuple[list[float], list[float], list]:
    wall, cpu, out = [], [], []
    for item in items:
        c0, t0 = time.thread_time(), time.perf_counter()
        out.append(fn(*item))
        wall.append(time.perf_counter() - t0)
        cpu.append(time.thread_time() - c0)
    return wall, cpu, out


def bench_jurisdiction(n: int, say) -> dict:
    index = sample_jurisdiction()
    minx, miny, maxx, maxy = sd.city_outline().polygon.bounds
    rng = random.Random(110)
    # A margin of about 2 km around the city: some points fall outside every jurisdiction.
    points = [(rng.uniform(minx - 0.02, maxx + 0.02), rng.uniform(miny - 0.02, maxy + 0.02)) for _ in range(n)]
    for lon, lat in points[:1000]:
        index.locate(lon, lat)
    wall, cpu, located = timed(index.locate, points)
    result = {**micro(wall, cpu), "border_cases": sum(x.border_case for x in located),
              "stations": len(index.stations), "grids": len(index.grids)}
    say(f"jurisdiction_lookup: {result['per_second']} lookups/s, p50 {result['p50_us']} µs, p99 {result['p99_us']} µs "
        f"(CPU p99 {result['cpu_p99_us']} µs)")
    return result


def address_texts(rng: random.Random, n: int) -> list[str]:
    addresses = sample_gazetteer.addresses()
    out = []
    for _ in range(n):
        a = rng.choice(addresses)
        place = a.street.removesuffix("街道")
        out.append(rng.choice((
            f"{a.district}{a.road}{a.house_number}{a.building}",
            f"{place}{a.building or a.road}附近",
            f"{a.district}{place}{a.community}",
        )))
    return out


def bench_address_match(n: int, say) -> dict:
    gz = Gazetteer([Address(a.code, a.full_address, a.district, a.street, a.community, a.road, a.house_number,
                            a.building, a.lon, a.lat, a.station_id, a.grid_id) for a in sample_gazetteer.addresses()])
    texts = address_texts(random.Random(12345), n)
    wall, cpu, matches = timed(lambda text: gz.match(text=text), [(t,) for t in texts])
    result = {**micro(wall, cpu), "addresses": len(gz),
              "located_share": round(sum(m.method != "NO_MATCH" for m in matches) / len(matches), 3)}
    say(f"address_match: {result['per_second']} matches/s, p50 {result['p50_us']} µs, p99 {result['p99_us']} µs "
        f"(CPU p99 {result['cpu_p99_us']} µs)")
    return result


def report(i: int, *, address: str | None = None) -> dict:
    channel, text = DESCRIPTIONS[i % len(DESCRIPTIONS)]
    body = {"channel": channel, "caller": {"phoneNumber": f"139{i % 10**8:08d}"},
            "description": f"{text}（压测{i}）"}
    if address:
        body["addressText"] = address
    else:
        cell = i % 400  # its own place about 400 m from the others, for the first 400
        body["location"] = {"point": {"longitude": round(114.27 + (cell % 20) * 0.004, 6),
                                      "latitude": round(30.54 + (cell // 20) * 0.004, 6)},
                            "accuracyM": 20, "source": "LOCATION_SOURCE_GNSS"}
    return {"requestId": uuid.uuid4().hex, "report": body}


async def bench_http(stack: Stack, concurrency: int, seconds: float, say) -> dict:
    headers = {"Authorization": f"Bearer {mint(roles=['call_taker'], sub='bench-intake')}"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    texts = address_texts(random.Random(7), 5000)
    results = {}
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, limits=limits, timeout=30) as http:
        async def report_http(i):
            (await http.post("/v1/reports", json=report(i))).raise_for_status()

        async def report_address_http(i):
            (await http.post("/v1/reports", json=report(10**6 + i, address=texts[i % len(texts)]))).raise_for_status()

        async def search_http(i):
            (await http.get("/v1/reports", params={"query": ("打架", "被偷", "燃气", "停水")[i % 4],
                                                   "pageSize": 20})).raise_for_status()

        async def noop_http(i):
            lon, lat = 114.27 + (i % 20) * 0.004, 30.54 + (i % 17) * 0.004
            (await http.get("/v1/jurisdictions:locate",
                            params={"point.longitude": lon, "point.latitude": lat})).raise_for_status()

        await run_load("warm-up", report_http, concurrency, 2)
        # The floor of this run: gateway + Python gRPC server with an in-memory answer.
        results["noop_http"] = await run_load("noop_http", noop_http, concurrency, seconds / 4)
        results["report_http"] = await run_load("report_http", report_http, concurrency, seconds)
        results["report_address_http"] = await run_load("report_address_http", report_address_http, concurrency,
                                                        seconds / 2)
        results["search_http"] = await run_load("search_http", search_http, concurrency, seconds / 2)
    floor = results["noop_http"].get("throughput_rps") or 0
    if floor:
        results["report_http_vs_noop_http"] = round(results["report_http"]["throughput_rps"] / floor, 3)
    return results


def run(stack: Stack, say) -> dict:
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", 16))
    seconds = float(os.environ.get("BENCH_SECONDS", 20))
    lookups = int(os.environ.get("BENCH_LOOKUPS", 50_000))
    results = {"jurisdiction_lookup": bench_jurisdiction(lookups, say),
               "address_match": bench_address_match(min(lookups, 5000), say)}
    results.update(asyncio.run(bench_http(stack, concurrency, seconds, say)))
    return results
