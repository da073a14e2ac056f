"""No network call while holding a database transaction.

A gRPC call made while the calling thread has a transaction open holds a
pooled connection (and often row locks) for as long as the callee takes: a
slow neighbour then exhausts the pool and blocks every writer of those rows.
Resolve what you need from other services before `engine.begin()` (the
callees are idempotent on request ids), then write.

The check: engines from `db.make_engine` report "begin"/"commit"/"rollback"
here, which keeps the set of connections with an open transaction per thread
(read-only snapshots from `db.read_snapshot` count too); every channel from
`Runtime.channel` carries `GuardInterceptor`, which looks at that set before
each unary-unary and unary-stream call.

`SMART110_TXGUARD` chooses what a violation does:
  raise (the default, for tests and development) - `OutboundCallInTransaction`;
  log   - a warning naming the method, and the call goes ahead (production
          may choose this while a violation is being fixed);
  off   - no check.
"""
from __future__ import annotations

import logging
import os
import threading

import grpc
from sqlalchemy import event
from sqlalchemy.engine import Engine

log = logging.getLogger("smart110.txguard")
_local = threading.local()


class OutboundCallInTransaction(RuntimeError):
    """An outbound gRPC call was made while this thread had a database transaction open."""

    def __init__(self, method: str, open_transactions: int):
        self.method = method
        super().__init__(
            f"outbound gRPC call {method} made while this thread holds {open_transactions} open database "
            "transaction(s); make the call before engine.begin() / read_snapshot() or after the commit")


def mode() -> str:
    value = os.environ.get("SMART110_TXGUARD", "raise").strip().lower()
    return value if value in ("raise", "log", "off") else "raise"


def _open() -> set[int]:
    held = getattr(_local, "held", None)
    if held is None:
        held = _local.held = set()
    return held


def open_transactions() -> int:
    """How many connections have a transaction open on the calling thread."""
    return len(_open())


def _on_begin(conn) -> None:
    _open().add(id(conn))


def _on_end(conn) -> None:
    _open().discard(id(conn))


def track(engine: Engine) -> Engine:
    """Counts the engine's transactions per thread (idempotent)."""
    if not event.contains(engine, "begin", _on_begin):
        event.listen(engine, "begin", _on_begin)
        event.listen(engine, "commit", _on_end)
        event.listen(engine, "rollback", _on_end)
    return engine


def check(method: str) -> None:
    """Raises (or logs) when the calling thread has a transaction open."""
    m = mode()
    if m == "off":
        return
    n = open_transactions()
    if not n:
        return
    if m == "log":
        log.warning("outbound gRPC call %s inside %d open database transaction(s)", method, n)
        return
    raise OutboundCallInTransaction(method, n)


class GuardInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    """Refuses outbound calls from a thread with an open transaction (see the module docstring)."""

    def intercept_unary_unary(self, continuation, client_call_details, request):
        check(client_call_details.method)
        return continuation(client_call_details, request)

    def intercept_unary_stream(self, continuation, client_call_details, request):
        check(client_call_details.method)
        return continuation(client_call_details, request)


def guard(channel: grpc.Channel) -> grpc.Channel:
    """The channel with the guard interceptor in front."""
    return grpc.intercept_channel(channel, GuardInterceptor())
