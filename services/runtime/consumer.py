"""Feed consumers: exactly-once effects over at-least-once delivery.

A consumer reads another service's feed from its own cursor. Each event is
applied in one transaction in the consumer's own schema together with an
inbox row for its event id and the cursor move, so a redelivered event is
skipped and a consumer that was down resumes where it stopped.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

import grpc
from google.protobuf.message import Message
from opentelemetry import trace
from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, func, select
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.engine import Engine

from smart110.common.v1 import events_pb2

from . import metrics
from .telemetry import context_from

log = logging.getLogger("smart110.consumer")
_tracer = trace.get_tracer("smart110.consumer")


def cursor_table(metadata: MetaData) -> Table:
    return Table(
        "feed_cursors",
        metadata,
        Column("source", String(60), primary_key=True),
        Column("last_sequence", BigInteger, nullable=False),
        Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def inbox_table(metadata: MetaData) -> Table:
    return Table(
        "inbox",
        metadata,
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("source", String(60), nullable=False),
        Column("sequence", BigInteger, nullable=False),
        Column("type", String(120), nullable=False),
        Column("process_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


# handler(conn, event, payload) runs inside the consumer's transaction.
Handler = Callable[[object, events_pb2.Event, Message], None]


@dataclass(frozen=True)
class Subscription:
    """What to do with one event type: the payload class and the handler."""

    payload_type: type[Message]
    handler: Handler
    # prepare(event, payload) runs before the transaction (the place to call other services);
    # when set, its result reaches the handler as `prepared=`.
    prepare: Callable[[events_pb2.Event, Message], object] | None = None


class FeedConsumer:
    def __init__(
        self,
        *,
        source: str,
        open_stream: Callable[[events_pb2.StreamEventsRequest], Iterable[events_pb2.Event]],
        engine: Engine,
        cursors: Table,
        inbox: Table,
        subscriptions: dict[str, Subscription],
    ):
        self.source = source
        self.open_stream = open_stream
        self.engine = engine
        self.cursors = cursors
        self.inbox = inbox
        self.subscriptions = subscriptions
        self._stop = threading.Event()
        self._call = None
        self._last_sequence = 0  # the cursor as last read or moved by this process
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"consume-{self.source}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        call = self._call
        if call is not None:
            call.cancel()
        if self._thread:
            self._thread.join(timeout=5)

    def cursor(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(self.cursors.c.last_sequence).where(self.cursors.c.source == self.source)
            ).scalar()
        return value or 0

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                after = self.cursor()
                self._last_sequence = after
                self._cursor_gauge().set(after)
                self._call = self.open_stream(
                    events_pb2.StreamEventsRequest(after_sequence=after, types=sorted(self.subscriptions))
                )
                log.info("consuming %s feed after sequence %d", self.source, after)
                for event in self._call:
                    self.apply(event)
                    backoff = 0.2
            except grpc.RpcError as exc:
                if self._stop.is_set():
                    return
                code = exc.code() if hasattr(exc, "code") else None
                log.warning("%s feed unavailable (%s); retrying in %.1fs", self.source, code, backoff)
            except Exception:  # noqa: BLE001 - keep consuming; the event will be retried
                if self._stop.is_set():
                    return
                log.exception("failed to apply an event from %s; retrying in %.1fs", self.source, backoff)
            self._stop.wait(backoff)
            backoff = min(backoff * 2, 5.0)

    # -- one event -----------------------------------------------------------
    def apply(self, event: events_pb2.Event) -> bool:
        """Applies one event exactly once. Returns False when it was a duplicate."""
        sub = self.subscriptions.get(event.type)
        parent = context_from(event.trace_context)
        with _tracer.start_as_current_span(
            f"consume {event.type}",
            context=parent,
            kind=trace.SpanKind.CONSUMER,
            attributes={"messaging.source": self.source, "messaging.event_id": event.event_id,
                        "messaging.sequence": event.sequence, "smart110.subject": event.subject},
        ):
            prepared = self._prepare(sub, event)
            with self.engine.begin() as conn:
                applied = False
                if sub is not None:
                    fresh = conn.execute(
                        insert(self.inbox)
                        .values(event_id=event.event_id, source=self.source, sequence=event.sequence, type=event.type)
                        .on_conflict_do_nothing()
                        .returning(self.inbox.c.event_id)
                    ).first()
                    if fresh:
                        payload = sub.payload_type()
                        event.payload.Unpack(payload)
                        if sub.prepare is None:
                            sub.handler(conn, event, payload)
                        else:
                            sub.handler(conn, event, payload, prepared=prepared)
                        applied = True
                stmt = insert(self.cursors).values(source=self.source, last_sequence=event.sequence)
                conn.execute(
                    stmt.on_conflict_do_update(
                        index_elements=[self.cursors.c.source],
                        set_={
                            "last_sequence": func.greatest(self.cursors.c.last_sequence, stmt.excluded.last_sequence),
                            "update_time": func.now(),
                        },
                    )
                )
            self._record(event, "applied" if applied else "duplicate" if sub is not None else "ignored")
            return applied

    def _prepare(self, sub: Subscription | None, event: events_pb2.Event):
        """The subscription's prepare step, outside any transaction (no call holds a connection)."""
        if sub is None or sub.prepare is None:
            return None
        payload = sub.payload_type()
        event.payload.Unpack(payload)
        return sub.prepare(event, payload)

    def _cursor_gauge(self):
        return metrics.FEED_CURSOR.labels(service=metrics.service(), source=self.source)

    def _record(self, event: events_pb2.Event, result: str) -> None:
        """After the transaction committed: the cursor, the lag and the count."""
        service = metrics.service()
        # The cursor only moves forward (as in the table).
        self._last_sequence = max(self._last_sequence, event.sequence)
        self._cursor_gauge().set(self._last_sequence)
        if event.HasField("occur_time"):
            occurred = event.occur_time.seconds + event.occur_time.nanos / 1e9
            metrics.FEED_LAG.labels(service=service, source=self.source).set(max(time.time() - occurred, 0.0))
        metrics.FEED_EVENTS_APPLIED.labels(service=service, source=self.source, type=event.type, result=result).inc()

