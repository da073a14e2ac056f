"""Alerts: SQL statements and CPU per IncidentReported event, with the standing rules in force.

- statements_per_event: statements the alerts engine sends (a `before_cursor_execute` listener on
  the service's engine) for one IncidentReported event handed to its intake consumer, split into
  the consumer's own (inbox, parked events, cursor, outbox) and the handler's (recording the
  report, its hourly rollups, the rules' revision, the volume, anomaly and strength-gap counts).
  The reports are counted police reports with a place and police strength known, so that every
  standing rule looks at each of them and the anomaly rule's current hour is busy enough for its
  history to be read; none raises an alert (raising one costs statements of its own).
- cpu_per_event_ms: CPU time per event of the thread applying it (the consumer, the handler, the
  driver; the service's other threads left out), mean and p50; handler_cpu_ms: of that, the part
  spent in `report_received`.

Runs in the process, on a fresh database of its own (DATABASE_URL's server, else an embedded
Postgres): `python -m tools.benches.alerts_statements` writes bench-results/alerts_statements.json;
`make bench ONLY=alerts_statements` does the same through the harness.
"""
from __future__ import annotations

import json
import os
import statistics
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import event

from tools.devstack import scratch_postgres

NEEDS_STACK = False
ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 2, 20, 5, tzinfo=timezone.utc)

# The consumer's own tables (the runtime's, in the service's schema).
RUNTIME_TABLES = ("inbox", "dead_letters", "cursors", "outbox", "marks")


class StatementCounter:
    """Counts the statements an engine sends to the server (each `cursor.execute`), with their SQL."""

    def __init__(self, engine):
        self.engine = engine
        self.statements: list[str] = []

    def _seen(self, conn, cursor, statement, parameters, context, executemany):
        self.statements.append(statement)

    def __enter__(self) -> "StatementCounter":
        event.listen(self.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)

    def __len__(self) -> int:
        return len(self.statements)

    def reset(self) -> None:
        self.statements.clear()

    def runtime(self) -> list[str]:
        """The statements on the runtime's tables (the consumer's inbox, cursor, outbox...)."""
        return [s for s in self.statements if _runtime_statement(s)]

    def handler(self) -> list[str]:
        return [s for s in self.statements if not _runtime_statement(s)]


def _runtime_statement(sql: str) -> bool:
    head = sql.split("(", 1)[0].lower() if sql.lstrip().upper().startswith("INSERT") else sql.lower()
    return any(f"alerts.{t}" in head or f"alerts.feed_{t}" in head for t in RUNTIME_TABLES) and \
        "alerts.incidents" not in sql and "hourly_counts" not in sql


def units_for(points: list[tuple[float, float]], per_point: int = 10) -> list[tuple[float, float, str]]:
    """Available units: plenty at every point the reports come from (no strength gap)."""
    return [(lon, lat, "S") for lon, lat in points for _ in range(per_point)]


def incident_reported(i: int, t: datetime, points: list[tuple[float, float]]):
    """A counted police report, no keyword, its own grid; stations and places taken in turn."""
    from smart110.common.v1 import common_pb2
    from smart110.intake.v1 import intake_service_pb2 as intake_pb

    station = f"B{i // 10:03d}"  # ten a station: its hour busy enough for the anomaly rule, below its volume
    lon, lat = points[i % len(points)]
    r = intake_pb.Report(name=f"reports/{uuid.uuid4().hex[:16]}", description=f"第{i}起：小区门口有人吵闹",
                         station_id=station, grid_id=f"{station}-G{i:03d}", address_text="江城市某小区",
                         classification=intake_pb.Classification(category=intake_pb.CATEGORY_POLICE,
                                                                 incident_type=("FIGHT", "THEFT")[i % 2],
                                                                 priority=3))
    r.receive_time.FromDatetime(t)
    r.location.point.CopyFrom(common_pb2.GeoPoint(longitude=lon, latitude=lat))
    return intake_pb.IncidentReported(report=r)


POINTS = [(114.30 + 0.01 * k, 30.58 + 0.004 * (k % 3)) for k in range(10)]


def measure(served, events: int = 40, warm: int = 2) -> dict:
    """Hands `events` IncidentReported events to the served alerts service's intake consumer, one
    a second of virtual time, and counts the statements (and CPU) each costs. The first `warm`
    ones (the rules loaded into the cache) are not counted."""
    from sqlalchemy import func, select

    from services.alerts.handlers import detection
    from services.alerts.store import alerts

    count_alerts = select(func.count()).select_from(alerts)
    units = units_for(POINTS, per_point=max(10, events // len(POINTS)))
    handler_cpu: list[float] = []
    report_received = detection.report_received

    def timed(*args, **kwargs):
        c = time.thread_time()
        try:
            return report_received(*args, **kwargs)
        finally:
            handler_cpu.append(time.thread_time() - c)

    served.rt.context.units = lambda *a, **k: units
    engine = served.rt.engine
    with engine.connect() as conn:
        alerts_before = conn.execute(count_alerts).scalar()
    detection.report_received = timed  # on_incident_reported calls it through the module
    try:
        with StatementCounter(engine) as counter:
            per_event, runtime, handler, cpu, kinds = _feed(served, counter, events, warm)
    finally:
        detection.report_received = report_received
    with engine.connect() as conn:
        raised = conn.execute(count_alerts).scalar() - alerts_before
    handler_cpu = handler_cpu[warm:]
    return {"events": len(per_event), "alerts_raised": raised,
            "statements_per_event": {"max": max(per_event), "mean": round(statistics.fmean(per_event), 2),
                                     "consumer": max(runtime), "handler": max(handler)},
            "handler_statements": {k: round(n / len(per_event), 2) for k, n in sorted(kinds.items())},
            "cpu_per_event_ms": {"mean": round(statistics.fmean(cpu) * 1000, 3),
                                 "p50": round(statistics.median(cpu) * 1000, 3)},
            "handler_cpu_ms": {"mean": round(statistics.fmean(handler_cpu) * 1000, 3),
                               "p50": round(statistics.median(handler_cpu) * 1000, 3)}}


def _feed(served, counter: StatementCounter, events: int, warm: int):
    """The events handed over one by one: per counted event its statements (all, the consumer's,
    the handler's) and CPU time, and the handler's statements by kind."""
    per_event, runtime, handler, cpu = [], [], [], []
    kinds: Counter = Counter()
    for i in range(events):
        t = T0 + timedelta(seconds=i)
        payload = incident_reported(i, t, POINTS)
        counter.reset()
        served.clock.set(t)
        c0 = time.thread_time()
        assert served.deliver("intake", "intake.IncidentReported", payload.report.name, payload)
        c1 = time.thread_time()
        if i < warm:
            continue
        per_event.append(len(counter))
        runtime.append(len(counter.runtime()))
        handler.append(len(counter.handler()))
        cpu.append(c1 - c0)
        kinds.update(_label(s) for s in counter.handler())
    return per_event, runtime, handler, cpu, kinds


def _label(sql: str) -> str:
    words = sql.split()
    verb = words[0].upper() if words else ""
    for table in ("incidents", "hourly_counts", "rule_versions", "rules", "alerts", "silences"):
        if f"alerts.{table}" in sql:
            return f"{verb} {table}"
    return verb


def run(stack, say) -> dict:
    from services.alerts.__main__ import SPEC
    from tests import support
    from tools.token import mint_service

    os.environ.setdefault("SERVICE_TOKEN", mint_service("bench-alerts-statements"))
    events = int(os.environ.get("BENCH_ALERT_EVENTS", 200))
    with scratch_postgres("smart110-bench-alerts-") as admin_url, support.serving(SPEC, admin_url, clock=support.Clock(T0), seed=True) as served:
        result = measure(served, events)
    say(f"alerts_statements: {result['statements_per_event']['max']} statements per IncidentReported event "
        f"({result['statements_per_event']['handler']} the handler's), "
        f"{result['cpu_per_event_ms']['mean']} ms CPU per event, "
        f"{result['handler_cpu_ms']['mean']} ms of it the handler's")
    return result


if __name__ == "__main__":
    from tools.devstack import say as _say

    doc = {"benchmark": "alerts_statements", "description": (__doc__ or "").strip(), "results": run(None, _say)}
    out = ROOT / "bench-results" / "alerts_statements.json"
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(doc["results"], indent=2, ensure_ascii=False))
