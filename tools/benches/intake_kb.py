"""Consultations answered at once (即问即复): how fast the knowledge base answers.

- index_search_150 / index_search_1500: one search in the in-memory bigram
  index, in the process, over the seeded entries and over ten times as many
  (each entry repeated under new ids), in microseconds; index_build_ms: a
  rebuild after an expert's answer joins
- search_grpc:  SearchKnowledge over gRPC straight to the intake service
- search_http:  SearchKnowledge as HTTP/JSON through Envoy
- consultation_http: a question with the citizen's location reported through
  Envoy (located, classified, searched, answered, stored and announced in
  one transaction); answered_at_once_share is the share answered at once:
  questions the rules classify as police matters (a fraud call, a fire) are
  rightly not consultations

The load generator shares the machine with the suite.
"""
from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid

import httpx

from sampledata import knowledge as seed
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from services.intake.knowledge import ANSWER_THRESHOLD, Entry, KnowledgeIndex
from tools.benches._common import run_load, aio_service_channel
from tools.devstack import Stack
from tools.token import mint

QUESTIONS = [
    "身份证掉了去哪里补办", "请问护照过期了怎么换发", "驾照快到期了去哪里换", "孩子刚出生怎么上户口",
    "有人打电话说我涉嫌洗钱让我转到安全账户", "刷单返利是不是骗子", "楼道里能给电瓶车充电吗", "派出所周六上班吗",
    "无犯罪记录证明在哪里开", "外地户口在江城工作居住证怎么申请", "油锅起火怎么灭", "违章怎么在网上交罚款",
    "请问明天天气怎么样", "公积金怎么提取",
]


def _index_figures(entries: list[Entry], rounds: int) -> dict:
    index = KnowledgeIndex(entries)
    wall, cpu = [], []
    for _ in range(rounds):
        for q in QUESTIONS:
            t0, c0 = time.perf_counter(), time.thread_time()
            index.search(q, limit=5)
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - t0)
    wall.sort()
    cpu.sort()

    def us(s: list[float], p: float) -> float:
        return round(s[min(len(s) - 1, int(p / 100 * len(s)))] * 1e6, 1)

    return {"entries": len(entries), "searches": len(wall), "p50_us": us(wall, 50), "p95_us": us(wall, 95),
            "p99_us": us(wall, 99), "mean_us": round(statistics.fmean(wall) * 1e6, 1),
            # CPU time of the searching thread: the cost without waiting for a core on a busy machine.
            "cpu_p50_us": us(cpu, 50), "cpu_p99_us": us(cpu, 99)}


def index_figures(say) -> dict:
    base = [Entry(s.entry_id, s.topic, s.question, s.answer, s.keywords) for s in seed.entries()]
    tenfold = [Entry(f"{e.entry_id}-{i}", e.topic, e.question, e.answer, e.keywords) for i in range(10) for e in base]
    out = {"index_search_150": _index_figures(base, 200), "index_search_1500": _index_figures(tenfold, 50)}
    builds = []
    for _ in range(10):
        t0 = time.perf_counter()
        KnowledgeIndex(base)
        builds.append(time.perf_counter() - t0)
    out["index_build_ms"] = round(statistics.median(builds) * 1000, 2)
    index = KnowledgeIndex(base)
    answered = [q for q in QUESTIONS if (m := index.search(q, limit=1)) and m[0].score >= ANSWER_THRESHOLD]
    out["sample_questions_answered_at_once"] = f"{len(answered)}/{len(QUESTIONS)}"
    say(f"index: p50 {out['index_search_150']['p50_us']} us over {len(base)} entries, "
        f"{out['index_search_1500']['p50_us']} us over {len(tenfold)}; rebuild {out['index_build_ms']} ms")
    return out


async def bench(stack: Stack, concurrency: int, seconds: float) -> dict:
    token = mint(roles=["call_taker"], station="", sub="bench-taker")
    headers = {"Authorization": f"Bearer {token}"}
    results: dict = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, limits=limits, timeout=30) as http:
        async def search_http(i):
            resp = await http.get("/v1/knowledge:search", params={"query": QUESTIONS[i % len(QUESTIONS)]})
            resp.raise_for_status()

        async def consultation_http(i):
            resp = await http.post("/v1/reports", json={"requestId": uuid.uuid4().hex, "report": {
                "channel": "CHANNEL_WECHAT", "caller": {"phoneNumber": f"136{i % 10**8:08d}"},
                "location": {"point": {"longitude": 114.30, "latitude": 30.58}},
                "description": "请问" + QUESTIONS[i % 12] + "？"}})
            resp.raise_for_status()
            if resp.json()["status"] == "REPORT_STATUS_ANSWERED":
                answered.append(i)

        answered: list[int] = []
        await run_load("warm-up", search_http, concurrency, 1)
        results["search_http"] = await run_load("search_http", search_http, concurrency, seconds)
        async with aio_service_channel(stack.address("intake")) as channel:
            stub = intake_grpc.IntakeServiceStub(channel)

            async def search_grpc(i):
                await stub.SearchKnowledge(intake_pb.SearchKnowledgeRequest(query=QUESTIONS[i % len(QUESTIONS)]))

            results["search_grpc"] = await run_load("search_grpc", search_grpc, concurrency, seconds)
        results["consultation_http"] = await run_load("consultation_http", consultation_http, concurrency, seconds)
        total = results["consultation_http"]["count"]
        results["consultation_http"]["answered_at_once_share"] = round(len(answered) / total, 3) if total else 0.0
    return results


def run(stack: Stack, say) -> dict:
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", 8))
    seconds = float(os.environ.get("BENCH_SECONDS", 8))
    results = index_figures(say)
    results.update(asyncio.run(bench(stack, concurrency, seconds)))
    return results
