"""Transactional outbox and idempotency keys: tables every publishing service
adds to its own schema, and the helpers that write them.

An event is inserted in the same transaction as the state change it
announces. Publishers do not wait for each other: each holds a shared
transaction-scoped advisory lock (`publish_lock_key`) from its first publish
to its commit, so sequence numbers may become visible out of order. The feed
(feed.py) never serves past a missing number until it knows no publisher
still holds it: a feed reader that has seen sequence N will never later find
a smaller one appear.

An event carries what changed, bounded in size (services/runtime/changes.py):
a payload above `MAX_EVENT_BYTES` is still published (refusing it would lose
the state change it announces) but logged and counted, so the event that grows
is found before it nears gRPC's 4 MB message limit.
"""
from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import datetime, timezone

from google.protobuf import any_pb2
from google.protobuf.message import Message
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Identity,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    bindparam,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID, insert

from . import metrics
from .db import compiled_once
from .errors import AlreadyExists
from .telemetry import current_trace_context

log = logging.getLogger("smart110.outbox")

# The documented bound on an event payload (the serialized message, without
# the feed's envelope). Events stay far below it whatever a resource's history
# (tests/integration/test_event_size.py); gRPC refuses messages above 4 MB.
MAX_EVENT_BYTES = 64 * 1024


def outbox_table(metadata: MetaData) -> Table:
    return Table(
        "outbox",
        metadata,
        Column("sequence", BigInteger, Identity(always=True), primary_key=True),
        Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
        Column("type", String(120), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("payload_type", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("trace_context", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
        Column("occur_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        "idempotency_keys",
        metadata,
        Column("method", String(200), primary_key=True),
        Column("request_id", String(200), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("response", LargeBinary),
        Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Index("idempotency_keys_create_time", "create_time"),
    )


def notify_channel(schema: str) -> str:
    return f"{schema}_outbox"


def publish_lock_key(schema: str) -> int:
    """The advisory lock publishers hold shared (until commit) and the feed takes exclusively to wait
    until every publisher in flight has committed or rolled back."""
    return int.from_bytes(hashlib.sha256(f"{schema}.outbox".encode()).digest()[:4], "big")


class Outbox:
    """Writes events into one service's outbox table."""

    def __init__(self, table: Table, source: str):
        self.table = table
        self.source = source
        self._lock_key = publish_lock_key(table.schema)
        self._sql = None

    def publish(self, conn, event_type: str, subject: str, payload: Message) -> int:
        """Adds an event to the current transaction; returns its sequence.

        One statement: the publish lock (shared: publishers run side by side) taken before the
        sequence number is drawn (see feed.py), the row, and the notification."""
        packed = any_pb2.Any()
        packed.Pack(payload, type_url_prefix="type.googleapis.com/")
        if len(packed.value) > MAX_EVENT_BYTES:
            log.warning("event %s about %s is %d bytes, above the %d-byte bound; published anyway",
                        event_type, subject, len(packed.value), MAX_EVENT_BYTES)
            metrics.OUTBOX_OVERSIZED_EVENTS.labels(service=metrics.service(), type=event_type).inc()
        return conn.execute(self._statement, {
            "k": self._lock_key, "ch": notify_channel(self.table.schema), "event_id": uuid.uuid4(),
            "type": event_type, "subject": subject, "payload_type": packed.type_url, "payload": packed.value,
            "trace_context": json.dumps(current_trace_context()), "occur_time": datetime.now(timezone.utc),
        }).scalar_one()

    @property
    def _statement(self):
        if self._sql is None:
            table = f'"{self.table.schema}"."{self.table.name}"' if self.table.schema else f'"{self.table.name}"'
            self._sql = text(
                "WITH held AS (SELECT pg_advisory_xact_lock_shared(:k)), "
                f"added AS (INSERT INTO {table} "
                "(event_id, type, subject, payload_type, payload, trace_context, occur_time) "
                "SELECT :event_id, :type, :subject, :payload_type, :payload, CAST(:trace_context AS jsonb), "
                ":occur_time FROM held RETURNING sequence) "
                "SELECT sequence FROM added, pg_notify(:ch, added.sequence::text)"
            ).bindparams(bindparam("event_id", type_=UUID(as_uuid=True)), bindparam("payload", type_=LargeBinary))
        return self._sql


def request_fingerprint(request: Message) -> str:
    """Hash of a request without its request_id: same content, same hash."""
    copy = type(request)()
    copy.CopyFrom(request)
    if "request_id" in copy.DESCRIPTOR.fields_by_name:
        copy.ClearField("request_id")
    return hashlib.sha256(copy.SerializeToString(deterministic=True)).hexdigest()


class Idempotency:
    """Makes a mutating RPC idempotent on its request_id.

    Inside the RPC's transaction, `claim()` either returns the response stored
    by an earlier call with the same id (same content), raises ALREADY_EXISTS
    (same id, different content), or returns None: then the caller does the
    work and calls `remember()` before committing. A concurrent duplicate
    waits on the key's row lock and then sees the first call's answer.
    """

    def __init__(self, table: Table):
        self.table = table
        # The statements of every mutating call, built once (run with each call's parameters).
        c = table.c
        method = bindparam("key_method", type_=c.method.type)
        request_id = bindparam("key_request_id", type_=c.request_id.type)
        self._claim = compiled_once(insert(table)
                                    .values(method=method, request_id=request_id,
                                            request_hash=bindparam("new_hash", type_=c.request_hash.type))
                                    .on_conflict_do_nothing()
                                    .returning(c.request_id))
        self._stored = select(c.request_hash, c.response).where(c.method == method, c.request_id == request_id)
        self._seen = select(c.request_id).where(c.method == method, c.request_id == request_id)
        self._remember = (table.update().where(c.method == method, c.request_id == request_id)
                          .values(response=bindparam("new_response", type_=c.response.type)))

    def claim(self, conn, method: str, request: Message, response_type: type[Message]) -> Message | None:
        fingerprint = request_fingerprint(request)
        request_id = request.request_id
        key = {"key_method": method, "key_request_id": request_id}
        inserted = conn.execute(self._claim, {**key, "new_hash": fingerprint}).first()
        if inserted:
            return None
        row = conn.execute(self._stored, key).one()
        if row.request_hash != fingerprint:
            raise AlreadyExists(
                f"request_id {request_id!r} was already used for a different {method} request",
                reason="REQUEST_ID_REUSED",
                metadata={"request_id": request_id},
            )
        return response_type.FromString(row.response or b"")

    def seen(self, conn, method: str, request: Message) -> bool:
        """Whether a call with this request_id was already committed (then `claim()` answers it)."""
        key = {"key_method": method, "key_request_id": request.request_id}
        return conn.execute(self._seen, key).first() is not None

    def remember(self, conn, method: str, request: Message, response: Message) -> None:
        conn.execute(self._remember, {"key_method": method, "key_request_id": request.request_id,
                                      "new_response": response.SerializeToString()})
