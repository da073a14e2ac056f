"""The anti-fraud hand-off (紧急止付) through the whole suite.

- report_to_centre: time from ReportIncident returning (a telecom-fraud report
  through the gateway) until the case shows the anti-fraud centre's
  acknowledgement (intake feed -> dispatch case + hand-off row -> sender ->
  the stand-in centre over gRPC -> case updated), one report at a time,
  sampled by polling GetCase every 20 ms; split by the case's stamps into
  report received -> case opened (intake, feed, dispatch consumer) and case
  opened -> acknowledged by the centre (the sender's hop). The case is
  stamped when the consumer starts it, before its recommendation and offers
  commit, so that commit time counts in the second part.
- outage: the centre is stopped, fraud reports keep coming, the centre comes
  back; the time from its return until every held hand-off is acknowledged,
  and whether each was acknowledged exactly once (one receipt per hand-off).
  The sender's retry delay doubles up to ANTIFRAUD_RETRY_MAX_SECONDS (60 s by
  default), so this figure depends on how long the centre was away.
"""
from __future__ import annotations

import os
import time
import uuid

import httpx

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc
from tools.benches._common import percentiles, service_channel
from tools.devstack import Stack
from tools.token import mint

POLL_SECONDS = 0.02


def fraud_report(i: int) -> dict:
    return {"requestId": uuid.uuid4().hex, "report": {
        "channel": "CHANNEL_PHONE", "caller": {"phoneNumber": f"136{i:08d}", "name": "受害人"},
        "location": {"point": {"longitude": round(114.27 + (i % 20) * 0.004, 6),
                               "latitude": round(30.54 + (i // 20) * 0.004, 6)}},
        "description": f"我被冒充客服的人骗了，用建设银行卡转了{i + 1}万元，现在才知道被骗了"}}


def wait_for(fn, timeout: float):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(POLL_SECONDS)
    raise TimeoutError("the hand-off was not acknowledged in time")


def run(stack: Stack, say) -> dict:
    samples = int(os.environ.get("BENCH_STOP_PAYMENT_SAMPLES", 30))
    held = int(os.environ.get("BENCH_STOP_PAYMENT_HELD", 10))
    outage = float(os.environ.get("BENCH_STOP_PAYMENT_OUTAGE_SECONDS", 10))
    token = mint(roles=["dispatcher"], sub="bench")
    with httpx.Client(base_url=stack.gateway_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http, \
            service_channel(stack.address("dispatch")) as channel:
        stub = pb_grpc.DispatchServiceStub(channel)

        def case_of(report: str) -> pb.DispatchCase | None:
            found = stub.ListCases(pb.ListCasesRequest(report=report), timeout=10).cases
            return stub.GetCase(pb.GetCaseRequest(name=found[0].name), timeout=10) if found else None

        def acknowledged(report: str) -> pb.DispatchCase | None:
            case = case_of(report)
            if case and case.stop_payments and case.stop_payments[0].state != pb.STOP_PAYMENT_STATE_QUEUED:
                return case
            return None

        say(f"{samples} fraud reports, one at a time, each until the centre's acknowledgement is on the case")
        latencies, to_case, case_to_delivery = [], [], []
        for i in range(samples):
            resp = http.post("/v1/reports", json=fraud_report(i))
            resp.raise_for_status()
            t0 = time.perf_counter()
            case = wait_for(lambda: acknowledged(resp.json()["name"]), 30)
            latencies.append(time.perf_counter() - t0)
            # The same path split by the case's own stamps (one clock: the dispatch host's).
            created, delivered = case.create_time.ToDatetime(), case.stop_payments[0].deliver_time.ToDatetime()
            to_case.append((created - case.report_time.ToDatetime()).total_seconds())
            case_to_delivery.append((delivered - created).total_seconds())

        say(f"stopping the anti-fraud centre for {outage:.0f}s while {held} fraud reports arrive")
        stack.stop_service("antifraud")
        reports = []
        for i in range(held):
            resp = http.post("/v1/reports", json=fraud_report(1000 + i))
            resp.raise_for_status()
            reports.append(resp.json()["name"])
        time.sleep(outage)
        queued = [case_of(r) for r in reports]
        still_queued = sum(1 for c in queued if c and c.stop_payments
                           and c.stop_payments[0].state == pb.STOP_PAYMENT_STATE_QUEUED)
        attempts = [c.stop_payments[0].attempts for c in queued if c and c.stop_payments]
        stack.start_partners()
        t0 = time.perf_counter()
        cases = [wait_for(lambda r=r: acknowledged(r), 120) for r in reports]
        recovered = time.perf_counter() - t0
        receipts = {c.stop_payments[0].receipt_id for c in cases}
    return {
        "report_to_centre": percentiles(latencies),
        "report_received_to_case_opened": percentiles(to_case),
        "case_opened_to_centre_acknowledged": percentiles(case_to_delivery),
        "outage": {
            "held_reports": held, "outage_seconds": outage,
            "queued_during_outage": still_queued,
            "max_attempts_during_outage": max(attempts, default=0),
            "all_acknowledged_seconds_after_return": round(recovered, 2),
            "distinct_receipts": len(receipts),
        },
    }
