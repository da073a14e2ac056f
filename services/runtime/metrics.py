"""Prometheus metrics every service exports on its metrics port (METRICS_PORT).

One registry (prometheus_client's default) and module-level metric objects.
The `service` label is the process's service name, set once by `serve()`
through `set_service()`.

Where each family is recorded:

- `smart110_rpc_requests_total`, `smart110_rpc_duration_seconds`: the runtime's
  `ErrorInterceptor` (server.py), with the RPC's final status code; streaming
  RPCs are recorded when the stream ends.
- `smart110_feed_lag_seconds`, `smart110_feed_cursor`,
  `smart110_feed_events_applied_total`, `smart110_feed_events_parked_total`:
  `FeedConsumer` (consumer.py).
- `smart110_outbox_oversized_events_total`: `Outbox.publish` (outbox.py), for
  a payload above the documented bound.
- `smart110_outbox_latest_sequence`, `smart110_feed_streams_open`,
  `smart110_feed_stream_backlog`: `Feed` (feed.py), computed when scraped.
- `smart110_sla_seconds`: `observe_sla()`, called by the services where a
  lifecycle stamp is made, with the incident's priority (1-4, "" unknown)
  and report channel (one of `SLA_CHANNELS`, "" unknown): both bounded.
- `smart110_work_orders_open`, `smart110_work_orders_overdue`,
  `smart110_work_orders_due_soon`, `smart110_work_orders_figures_timestamp_seconds`: referral's deadline figures per lead
  department, set by `set_work_order_figures()` from a periodic query
  (services/referral12345/workers.py), never computed at scrape time.

The alert rules and the dashboard over these families are in
k8s/components/monitoring/; `tools/k8s_check.py` fails on a rule or panel naming a
family this module does not define.
"""
from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event as sa_event

_service = "unknown"


def set_service(name: str) -> None:
    """Names the service this process runs; every `service` label uses it."""
    global _service
    _service = name


def service() -> str:
    return _service


RPC_REQUESTS = Counter(
    "smart110_rpc_requests_total",
    "gRPC requests handled, by final status code; grpc_type is unary, client_stream, server_stream or bidi_stream.",
    ["service", "method", "grpc_type", "code"],
)
RPC_DURATION = Histogram(
    "smart110_rpc_duration_seconds",
    "gRPC handling time; for a stream, until the stream ends (keep streams apart with grpc_type).",
    ["service", "method", "grpc_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RPC_SHED = Counter(
    "smart110_rpc_shed_total",
    "Unary calls answered UNAVAILABLE (reason OVERLOADED) because the service had no free slot within the call's "
    "wait (services/runtime/admission.py); the caller retries them.",
    ["service", "method"],
)
RPC_IN_PROGRESS = Gauge(
    "smart110_rpc_in_progress",
    "Unary calls admitted and in progress (at most GRPC_MAX_CONCURRENT_CALLS).",
    ["service"],
)

FEED_LAG = Gauge(
    "smart110_feed_lag_seconds",
    "Now minus the occur_time of the oldest event of a source feed read but not yet applied (0 when caught up): "
    "it grows while a consumer is stuck.",
    ["service", "source"],
)
FEED_CURSOR = Gauge(
    "smart110_feed_cursor",
    "Last sequence of a source feed this service has applied (its cursor).",
    ["service", "source"],
)
FEED_EVENTS_APPLIED = Counter(
    "smart110_feed_events_applied_total",
    "Events taken from a source feed: result is applied, duplicate (already in the inbox), ignored (no subscription) "
    "or parked (dead-lettered).",
    ["service", "source", "type", "result"],
)
FEED_EVENTS_PARKED = Counter(
    "smart110_feed_events_parked_total",
    "Events of a source feed parked in the dead-letter table (failed every attempt, or behind a parked event).",
    ["service", "source"],
)

ALERTS_RULE_COUNTS = Counter(
    "smart110_alerts_rule_counts_total",
    "Volume and anomaly rules' window counts, by where they came from: warehouse (CheckThreshold) or local "
    "(the alerts service's own tables, because the warehouse did not answer).",
    ["service", "source"],
)

OUTBOX_OVERSIZED_EVENTS = Counter(
    "smart110_outbox_oversized_events_total",
    "Events published with a payload above the documented bound (outbox.MAX_EVENT_BYTES); each was still published.",
    ["service", "type"],
)
OUTBOX_LATEST = Gauge(
    "smart110_outbox_latest_sequence",
    "Highest outbox sequence this service's feed knows of.",
    ["service"],
)
FEED_STREAMS_OPEN = Gauge(
    "smart110_feed_streams_open",
    "StreamEvents streams currently open on this service's feed.",
    ["service"],
)
FEED_STREAM_BACKLOG = Gauge(
    "smart110_feed_stream_backlog",
    "Largest number of outbox sequences any open stream is behind the latest.",
    ["service"],
)

SLA_STAGES = ("answer", "dispatch", "accept", "arrive", "close")
SLA_PRIORITIES = ("1", "2", "3", "4")
# Intake's report channels (the Channel enum without its CHANNEL_ prefix).
SLA_CHANNELS = (
    "PHONE", "SMS", "WECHAT", "WEIBO", "QQ", "APP", "MINI_PROGRAM", "KIOSK", "VIDEO",
    "SILENT_ALARM", "HOTLINE_12345", "PATROL", "WALK_IN", "TIP_OFF", "MAILBOX",
)
SLA_SECONDS = Histogram(
    "smart110_sla_seconds",
    "Time from report received to each stage: answer, dispatch (case opened), accept, arrive, close; by the "
    "incident's priority (1-4, empty when unknown) and report channel (empty when unknown).",
    ["service", "stage", "priority", "channel"],
    buckets=(1, 3, 5, 10, 30, 60, 180, 300, 600, 1800, 3600, 7200, 86400),
)


def sla_priority(priority) -> str:
    """The `priority` label: "1" to "4", or "" for anything else (bounded)."""
    value = str(priority) if priority is not None else ""
    return value if value in SLA_PRIORITIES else ""


def sla_channel(channel) -> str:
    """The `channel` label: one of SLA_CHANNELS (a CHANNEL_ prefix is dropped), or "" (bounded)."""
    value = str(channel or "").removeprefix("CHANNEL_")
    return value if value in SLA_CHANNELS else ""


def observe_sla(stage: str, seconds: float, *, priority=None, channel: str = "") -> None:
    """Records one incident reaching `stage`, `seconds` after its report was received."""
    if stage not in SLA_STAGES:
        raise ValueError(f"unknown SLA stage {stage!r}; one of {', '.join(SLA_STAGES)}")
    SLA_SECONDS.labels(service=_service, stage=stage, priority=sla_priority(priority),
                       channel=sla_channel(channel)).observe(max(seconds, 0.0))


def observe_sla_after_commit(conn, stage: str, seconds: float, *, priority=None, channel: str = "") -> None:
    """Like `observe_sla`, but only once `conn`'s transaction commits.

    A handler that runs inside a transaction (a consumed event) may be rolled
    back and retried; it must count once.
    """
    sa_event.listen(conn, "commit", lambda _conn: observe_sla(stage, seconds, priority=priority, channel=channel),
                    once=True)


WORK_ORDERS_OPEN = Gauge(
    "smart110_work_orders_open",
    "Open 12345 work orders with a deadline, by the lead department of their current round (empty: none yet); "
    "set by a periodic query.",
    ["service", "department"],
)
WORK_ORDERS_OVERDUE = Gauge(
    "smart110_work_orders_overdue",
    "Open 12345 work orders past their deadline (超期), by lead department; set by a periodic query.",
    ["service", "department"],
)
WORK_ORDERS_DUE_SOON = Gauge(
    "smart110_work_orders_due_soon",
    "Open 12345 work orders whose deadline falls within the next hour (临期), by lead department; set by a "
    "periodic query.",
    ["service", "department"],
)
WORK_ORDERS_FIGURES_TIME = Gauge(
    "smart110_work_orders_figures_timestamp_seconds",
    "When the work-order deadline figures were last computed (Unix time); stale figures show here.",
    ["service"],
)
_WORK_ORDER_GAUGES = (WORK_ORDERS_OPEN, WORK_ORDERS_OVERDUE, WORK_ORDERS_DUE_SOON)
_work_order_departments: set[str] = set()


def set_work_order_figures(figures: dict[str, tuple[int, int, int]]) -> None:
    """Sets the deadline gauges from one query: department -> (open, overdue, due soon). A department
    that no longer appears is dropped rather than left at its last value."""
    global _work_order_departments
    for dept, counts in figures.items():
        for gauge, count in zip(_WORK_ORDER_GAUGES, counts):
            gauge.labels(service=_service, department=dept).set(count)
    for dept in _work_order_departments - set(figures):
        for gauge in _WORK_ORDER_GAUGES:
            try:
                gauge.remove(_service, dept)
            except KeyError:
                pass
    _work_order_departments = set(figures)
    WORK_ORDERS_FIGURES_TIME.labels(service=_service).set_to_current_time()
