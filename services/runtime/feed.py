"""The event feed: serves a service's outbox as a gRPC server stream.

`StreamEvents` returns the events after a sequence number, then keeps the
stream open and sends new events as they commit. One LISTEN connection per
process wakes every open stream on NOTIFY; streams never poll on a sleep.
"""
from __future__ import annotations

import logging
import threading
import time

import psycopg
from google.protobuf import any_pb2, timestamp_pb2
from sqlalchemy import Table, func, select
from sqlalchemy.engine import Engine

from smart110.common.v1 import events_pb2

from .db import libpq_url
from .errors import InvalidArgument
from .outbox import notify_channel

log = logging.getLogger("smart110.feed")

BATCH = 500
# Streams re-check the table at least this often, so a lost notification
# (a dropped LISTEN connection) delays an event, never loses it.
SAFETY_RECHECK_SECONDS = 5.0


def row_to_event(row, source: str) -> events_pb2.Event:
    occur = timestamp_pb2.Timestamp()
    occur.FromDatetime(row.occur_time)
    return events_pb2.Event(
        event_id=str(row.event_id),
        sequence=row.sequence,
        type=row.type,
        subject=row.subject,
        occur_time=occur,
        payload=any_pb2.Any(type_url=row.payload_type, value=row.payload),
        trace_context=dict(row.trace_context or {}),
        source=source,
    )


class Feed:
    def __init__(self, engine: Engine, table: Table, database_url: str, source: str):
        self.engine = engine
        self.table = table
        self.source = source
        self._dsn = libpq_url(database_url)
        self._channel = notify_channel(table.schema)
        self._cond = threading.Condition()
        self._latest = 0
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self.engine.connect() as conn:
            self._latest = conn.execute(select(func.coalesce(func.max(self.table.c.sequence), 0))).scalar_one()
        self._thread = threading.Thread(target=self._listen, name=f"{self.source}-feed-listen", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        with self._cond:
            self._cond.notify_all()

    def _listen(self) -> None:
        while not self._closed.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    conn.execute(f"LISTEN {self._channel}")
                    # Anything committed while we were not listening.
                    self._advance(self._max_sequence())
                    while not self._closed.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._advance(int(note.payload))
            except Exception:  # noqa: BLE001 - reconnect and carry on
                if self._closed.is_set():
                    return
                log.warning("feed listener lost its connection; reconnecting", exc_info=True)
                time.sleep(1.0)

    def _max_sequence(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(select(func.coalesce(func.max(self.table.c.sequence), 0))).scalar_one()

    def _advance(self, sequence: int) -> None:
        with self._cond:
            if sequence > self._latest:
                self._latest = sequence
            self._cond.notify_all()

    def _read(self, after: int, types: list[str]) -> list:
        query = select(self.table).where(self.table.c.sequence > after).order_by(self.table.c.sequence).limit(BATCH)
        if types:
            query = query.where(self.table.c.type.in_(types))
        with self.engine.connect() as conn:
            return conn.execute(query).all()

    def stream(self, request: events_pb2.StreamEventsRequest, context):
        """The body of every service's StreamEvents RPC."""
        if request.after_sequence < 0:
            raise InvalidArgument([("after_sequence", "must be 0 or more")])
        after = request.after_sequence
        types = list(request.types)
        while context.is_active() and not self._closed.is_set():
            with self._cond:
                target = self._latest
            rows = self._read(after, types)
            for row in rows:
                yield row_to_event(row, self.source)
                after = row.sequence
            if len(rows) == BATCH:
                continue
            if request.stop_at_end:
                return
            with self._cond:
                if self._latest <= target:
                    self._cond.wait(SAFETY_RECHECK_SECONDS)
