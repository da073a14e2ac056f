"""Alerts (预警): how fast a major-incident report reaches a big screen, and keyword matching at scale.

- report_to_subscriber: time from a report containing "绑架" entering intake
  (ReportIncident as HTTP/JSON through Envoy) to the alert change reaching a
  Subscribe stream (intake feed -> alerts consumer -> rules -> outbox -> feed
  -> stream), one report at a time, p50/p99.
- keyword_matching: in-process throughput of the keyword matcher (one
  Aho-Corasick automaton) with 5,000 keyword rules over report-like texts,
  beside one regular expression per rule on a slice of the same texts.
"""
from __future__ import annotations

import os
import queue
import random
import re
import threading
import time
import uuid

import grpc
import httpx

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from services.alerts.domain import KeywordTerm, Rule, build_matcher
from tools.benches._common import percentiles, service_channel
from tools.devstack import Stack
from tools.token import mint

# Characters report texts are made of (common in 110 calls).
CHARS = ("人车门路口店家楼区号街道小偷打架吵闹报警电话钱包手机被抢走丢失孩子老人醉酒噪音停车火灾受伤血刀棍"
         "邻居朋友男子女子司机乘客商场超市学校医院银行小区广场公园地铁公交出租车工地网吧酒吧饭店宾馆")
TEMPLATES = ["{a}附近有人{b}，请尽快派人来", "我在{a}，刚才{b}，对方已经跑了", "{a}门口{b}，现场很乱",
             "报警人称{a}发生{b}，有人受伤", "{a}楼下一直{b}，已经持续一个小时"]
REAL_TERMS = ["杀人", "绑架", "爆炸", "抢劫", "持刀", "跳楼", "纵火", "劫持", "砍人", "轻生"]


def run(stack: Stack, say) -> dict:
    samples = int(os.environ.get("BENCH_ALERT_SAMPLES", 60))
    return {"report_to_subscriber": report_to_subscriber(stack, samples, say),
            "keyword_matching": keyword_matching(5000, say)}


def report_to_subscriber(stack: Stack, samples: int, say) -> dict:
    token = mint(roles=["dispatcher"], sub="bench-alerts")
    arrived: dict[str, float] = {}
    changes: queue.Queue = queue.Queue()
    channel = service_channel(stack.address("alerts"))
    call = pb_grpc.AlertsServiceStub(channel).Subscribe(pb.SubscribeRequest(kinds=[pb.RULE_KIND_KEYWORD]))

    def read():
        try:
            for change in call:
                if change.action != "HEARTBEAT":
                    changes.put((time.perf_counter(), change.alert.subject))
        except grpc.RpcError:
            pass

    threading.Thread(target=read, daemon=True).start()
    latencies, posts, missed = [], [], 0
    say(f"report_to_subscriber: {samples} reports containing 绑架, one at a time")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        for i in range(samples + 5):
            lon, lat = 114.27 + (i % 12) * 0.01, 30.54 + (i // 12) * 0.01
            body = {"requestId": uuid.uuid4().hex, "report": {
                "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": f"139{i:08d}"},
                "location": {"point": {"longitude": lon, "latitude": lat}},
                "description": f"第{i}起：我家孩子在学校门口被人绑架了，快来人"}}
            t0 = time.perf_counter()
            name = http.post("/v1/reports", json=body).raise_for_status().json()["name"]
            posted = time.perf_counter() - t0
            deadline = t0 + 10
            while name not in arrived and time.perf_counter() < deadline:
                try:
                    at, subject = changes.get(timeout=max(deadline - time.perf_counter(), 0.01))
                except queue.Empty:
                    break
                arrived.setdefault(subject, at)
            if name not in arrived:
                missed += 1
            elif i >= 5:  # the first few warm the path up
                latencies.append(arrived[name] - t0)
                posts.append(posted)
    call.cancel()
    channel.close()
    # The ReportIncident round trip alone, for how much of the way is intake's own answer.
    result = {**percentiles(latencies), "missed": missed, "report_incident_http": percentiles(posts)}
    say(f"report_to_subscriber: p50 {result.get('p50_ms')} ms, p99 {result.get('p99_ms')} ms, missed {missed}")
    return result


def synthetic_rules(n: int, rng: random.Random) -> list[Rule]:
    terms = set(REAL_TERMS)
    while len(terms) < n:
        terms.add("".join(rng.choice(CHARS) for _ in range(rng.choice((2, 3, 3, 4)))))
    return [Rule(id=f"k{i}", version=1, kind="KEYWORD", level="YELLOW", enabled=True, terms=[KeywordTerm(term=t)])
            for i, t in enumerate(sorted(terms))]


def texts(n: int, rng: random.Random) -> list[str]:
    out = []
    for _ in range(n):
        a = "".join(rng.choice(CHARS) for _ in range(rng.randint(3, 8)))
        b = rng.choice(REAL_TERMS) if rng.random() < 0.2 else "".join(rng.choice(CHARS) for _ in range(4))
        out.append(rng.choice(TEMPLATES).format(a=a, b=b))
    return out


def keyword_matching(n_rules: int, say, seconds: float = 5.0) -> dict:
    rng = random.Random(110)
    rules = synthetic_rules(n_rules, rng)
    corpus = texts(2000, rng)
    t0 = time.perf_counter()
    matcher = build_matcher(rules)
    build_s = time.perf_counter() - t0
    done = hits = 0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for text in corpus:
            hits += len(matcher.match(text))
        done += len(corpus)
    elapsed = time.perf_counter() - t0
    per_rule = [re.compile(re.escape(r.terms[0].term)) for r in rules]
    slice_ = corpus[:100]
    t1 = time.perf_counter()
    for text in slice_:
        for rx in per_rule:
            rx.search(text)
    regex_rate = len(slice_) / (time.perf_counter() - t1)
    result = {"rules": len(rules), "terms": len(matcher), "build_ms": round(build_s * 1000, 1),
              "texts_per_s": round(done / elapsed), "mean_text_chars": round(sum(map(len, corpus)) / len(corpus), 1),
              "matches_per_text": round(hits / done, 3), "one_regex_per_rule_texts_per_s": round(regex_rate)}
    say(f"keyword_matching: {result['texts_per_s']} texts/s with {len(rules)} rules "
        f"(one regex per rule: {result['one_regex_per_rule_texts_per_s']} texts/s)")
    return result
