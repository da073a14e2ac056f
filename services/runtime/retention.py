"""Retention: the runtime's bookkeeping tables do not grow forever.

One periodic job per service (`Runtime.every("retention", ...)`, wired by the
runtime for every service) prunes, in batches:

- **outbox** events older than `OUTBOX_RETENTION_DAYS` (default 30) that
  every known reader has passed: each consuming service names itself when it
  opens the feed, and `feed_readers` keeps the highest cursor it asked from
  (consumers reopen their stream every few minutes, so that stays close to
  their real cursor). A reader not seen for `FEED_READER_EXPIRY_DAYS`
  (default 90; more than the outbox horizon, or it would never matter) is
  ignored, so a removed consumer does not keep the outbox forever. The
  newest event is always kept, so the feed's latest sequence never goes
  back. The highest pruned sequence is recorded in `retention_marks`; a
  consumer whose cursor is behind it has missed events for good and its
  `StreamEvents` call fails with `OUT_OF_RANGE` (reason
  `CURSOR_BEHIND_RETENTION`): resync it from the owner's list RPCs, then set
  its cursor to the feed's latest sequence (README, "Operations").
- **inbox** rows (processed event ids) older than `INBOX_RETENTION_DAYS`
  (default 14): a redelivery older than that is not expected, since cursors
  only move forward and the inbox only guards a resumed stream's overlap.
- **idempotency keys** older than `IDEMPOTENCY_RETENTION_DAYS` (default 7):
  a retry with the same `request_id` after that runs as a new request
  (documented in the README).

Safe with several replicas: a round takes a transaction-scoped advisory lock
per schema with `pg_try_advisory_xact_lock`, so one replica prunes while the
others skip that round.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, func, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from .config import env_float

log = logging.getLogger("smart110.retention")

BATCH = 5000
INTERVAL_SECONDS = 600.0


def marks_table(metadata: MetaData) -> Table:
    return Table(
        "retention_marks",
        metadata,
        Column("name", String(60), primary_key=True),
        Column("value", BigInteger, nullable=False),
        Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


@dataclass(frozen=True)
class Horizons:
    outbox: timedelta = timedelta(days=30)
    inbox: timedelta = timedelta(days=14)
    idempotency: timedelta = timedelta(days=7)
    # A feed reader not seen for this long no longer holds outbox events back.
    reader_expiry: timedelta = timedelta(days=90)

    @classmethod
    def from_env(cls) -> "Horizons":
        return cls(
            outbox=timedelta(days=env_float("OUTBOX_RETENTION_DAYS", 30.0)),
            inbox=timedelta(days=env_float("INBOX_RETENTION_DAYS", 14.0)),
            idempotency=timedelta(days=env_float("IDEMPOTENCY_RETENTION_DAYS", 7.0)),
            reader_expiry=timedelta(days=env_float("FEED_READER_EXPIRY_DAYS", 90.0)),
        )


def pruned_upto(conn, marks: Table) -> int:
    """The highest outbox sequence pruned so far (0 when nothing was)."""
    value = conn.execute(select(marks.c.value).where(marks.c.name == "outbox")).scalar()
    return value or 0


class Retention:
    """Prunes one service's outbox, inbox and idempotency keys past their horizons.

    Without `readers` the outbox is pruned by age alone.
    """

    def __init__(self, engine: Engine, *, outbox: Table, inbox: Table, idempotency: Table, marks: Table,
                 readers: Table | None = None, horizons: Horizons | None = None, batch: int = BATCH):
        self.engine = engine
        self.outbox = outbox
        self.inbox = inbox
        self.idempotency = idempotency
        self.marks = marks
        self.readers = readers
        self.horizons = horizons or Horizons.from_env()
        self.batch = batch
        self._lock_key = int.from_bytes(hashlib.sha256(f"{outbox.schema}.retention".encode()).digest()[:4], "big")

    def prune(self, now: datetime | None = None) -> dict[str, int] | None:
        """One round; returns rows deleted per table, or None when another replica holds the round."""
        now = now or datetime.now(timezone.utc)
        deleted = {"outbox": 0, "inbox": 0, "idempotency_keys": 0}
        with self.engine.begin() as conn:
            if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": self._lock_key}).scalar():
                return None
            deleted["outbox"] = self._prune_outbox(conn, now - self.horizons.outbox,
                                                   now - self.horizons.reader_expiry)
            deleted["inbox"] = self._delete_older(conn, self.inbox, self.inbox.c.process_time,
                                                  now - self.horizons.inbox)
            deleted["idempotency_keys"] = self._delete_older(conn, self.idempotency, self.idempotency.c.create_time,
                                                             now - self.horizons.idempotency)
        if any(deleted.values()):
            log.info("retention pruned %s", ", ".join(f"{n} {t}" for t, n in deleted.items()),
                     extra={f"pruned_{t}": n for t, n in deleted.items()})
        return deleted

    def slowest_reader(self, conn, seen_since: datetime) -> int | None:
        """The lowest cursor of the readers seen since `seen_since` (None: no such reader)."""
        if self.readers is None:
            return None
        r = self.readers
        return conn.execute(select(func.min(r.c.last_after_sequence)).where(r.c.seen_time >= seen_since)).scalar()

    def _prune_outbox(self, conn, cutoff: datetime, seen_since: datetime) -> int:
        t = self.outbox
        newest = conn.execute(select(func.max(t.c.sequence))).scalar()
        if newest is None:
            return 0
        upto = conn.execute(
            select(func.max(t.c.sequence)).where(t.c.occur_time < cutoff, t.c.sequence < newest)
        ).scalar()
        if upto is None:
            return 0
        slowest = self.slowest_reader(conn, seen_since)
        if slowest is not None:
            # Only what every reader has passed: a cursor at N has applied N and everything before it.
            upto = min(upto, slowest)
        if upto <= pruned_upto(conn, self.marks):
            return 0
        total = 0
        while True:
            ids = select(t.c.sequence).where(t.c.sequence <= upto).order_by(t.c.sequence).limit(self.batch)
            n = conn.execute(t.delete().where(t.c.sequence.in_(ids.scalar_subquery()))).rowcount
            total += n
            if n < self.batch:
                break
        stmt = insert(self.marks).values(name="outbox", value=upto)
        conn.execute(stmt.on_conflict_do_update(
            index_elements=[self.marks.c.name],
            set_={"value": func.greatest(self.marks.c.value, stmt.excluded.value), "update_time": func.now()}))
        return total

    def _delete_older(self, conn, table: Table, column, cutoff: datetime) -> int:
        key = list(table.primary_key.columns)
        total = 0
        while True:
            batch = select(*key).where(column < cutoff).limit(self.batch)
            cond = key[0].in_(batch.scalar_subquery()) if len(key) == 1 else tuple_(*key).in_(batch)
            n = conn.execute(table.delete().where(cond)).rowcount
            total += n
            if n < self.batch:
                return total
