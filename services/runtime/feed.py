"""The event feed: serves a service's outbox as a gRPC server stream.

`StreamEvents` returns the events after a sequence number, then keeps the
stream open and sends new events as they commit. One LISTEN connection per
process wakes every open stream on NOTIFY; streams never poll on a sleep.
Streams at the feed's end share one read of each commit (a window of recent
events in memory); a stream further behind reads the table itself.

Publishers commit in any order (outbox.py); the feed serves up to the first
missing sequence number and settles a missing next number by waiting for the
publishers in flight, so a reader never sees a smaller number after a larger.

A consuming service names itself on the request (`consumer`); its
`after_sequence` is then its cursor, and the feed records the highest one it
was asked from in `feed_readers`, with the time. Retention keeps every event
a recently seen reader has not passed (see retention.py).
"""
from __future__ import annotations

import bisect
import logging
import re
import threading
import time
from itertools import count

import psycopg
from google.protobuf import any_pb2, timestamp_pb2
from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, func, select, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Engine

from smart110.common.v1 import events_pb2

from . import metrics
from .db import libpq_url
from .errors import InvalidArgument, OutOfRange
from .outbox import notify_channel, publish_lock_key
from .retention import pruned_upto

log = logging.getLogger("smart110.feed")

BATCH = 500
# Recent events kept in memory, shared by the open streams: a commit is read from the table once,
# however many streams follow the feed; a stream further behind reads the table itself.
CACHE_EVENTS = 5000
# How long a read waits for the publishers in flight when a sequence number is missing right after
# its position; past it, the read returns nothing and tries again on the next wake.
GAP_WAIT_MS = 250
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout
# Streams re-check the table at least this often, so a lost notification
# (a dropped LISTEN connection) delays an event, never loses it.
SAFETY_RECHECK_SECONDS = 5.0
CONSUMER_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,59}$")


def readers_table(metadata: MetaData) -> Table:
    """How far each consuming service has read this feed: the highest cursor it asked from, and when."""
    return Table(
        "feed_readers",
        metadata,
        Column("consumer", String(60), primary_key=True),
        Column("last_after_sequence", BigInteger, nullable=False),
        Column("seen_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


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
    def __init__(self, engine: Engine, table: Table, database_url: str, source: str, marks: Table | None = None,
                 readers: Table | None = None):
        self.engine = engine
        self.table = table
        self.marks = marks  # retention_marks: how far the outbox was pruned
        self.readers = readers  # feed_readers: how far each consumer has got
        self.source = source
        self._dsn = libpq_url(database_url)
        self._channel = notify_channel(table.schema)
        self._lock_key = publish_lock_key(table.schema)
        self._cond = threading.Condition()
        self._latest = 0
        self._commits = 0  # notifications seen: a stream waits for this to change
        # The shared window: every committed event with cache_from < sequence <= cache_upto, in order.
        self._cache: list[events_pb2.Event] = []
        self._cache_seqs: list[int] = []
        self._cache_from: int | None = None
        self._cache_upto = 0
        self._cache_commits = -1  # notifications seen at the last refresh
        self._cache_more = False  # the last refresh stopped at a missing number or a full batch
        self._cache_lock = threading.Lock()
        self._refresh_lock = threading.Lock()
        self._closed = threading.Event()
        self._thread: threading.Thread | None = None
        # Open streams -> the sequence each has caught up to, for the backlog gauge.
        self._positions: dict[int, int] = {}
        self._positions_lock = threading.Lock()
        self._stream_ids = count()

    def start(self) -> None:
        self._latest = self._max_sequence()
        self._export_metrics()
        self._thread = threading.Thread(target=self._listen, name=f"{self.source}-feed-listen", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        with self._cond:
            self._cond.notify_all()

    def wait_for_new(self, after: int, timeout: float) -> int:
        """Waits until an event past sequence `after` commits, `timeout` passes or the feed closes.

        Returns the latest sequence known. Lets a background job wake on the
        same notification as the streams instead of polling.
        """
        with self._cond:
            if self._latest <= after and not self._closed.is_set():
                self._cond.wait(timeout)
            return self._latest

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def wait_closed(self, timeout: float) -> bool:
        """Sleeps up to `timeout` seconds, waking at once when the feed closes (a draining server);
        True when closed. For streams that poll something other than the feed."""
        return self._closed.wait(timeout)

    def latest_sequence(self) -> int:
        """The highest sequence committed to the outbox now, with no smaller number still in flight: a
        stream started from it misses nothing committed after (read while no publisher is in flight;
        after a few tries, the highest committed)."""
        for _ in range(8):
            settled = self._wait_for_publishers(
                lambda conn: conn.execute(select(func.coalesce(func.max(self.table.c.sequence), 0))).scalar_one())
            if settled is not None:
                return settled
        log.warning("publishers of %s kept the feed busy; starting from the highest committed sequence",
                    self.source)
        return self._max_sequence()

    def _export_metrics(self) -> None:
        # Computed when scraped: nothing on the streaming path but a dict write.
        service = metrics.service()
        metrics.OUTBOX_LATEST.labels(service=service).set_function(lambda: self._latest)
        metrics.FEED_STREAMS_OPEN.labels(service=service).set_function(lambda: len(self._positions))
        metrics.FEED_STREAM_BACKLOG.labels(service=service).set_function(self.backlog)

    def backlog(self) -> int:
        """How far the furthest-behind open stream is from the latest sequence."""
        with self._positions_lock:
            positions = list(self._positions.values())
        latest = self._latest
        return max((max(latest - p, 0) for p in positions), default=0)

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
            # Every commit wakes the streams, also one below the latest (it may fill a gap).
            self._commits += 1
            self._cond.notify_all()

    def _check_retained(self, after: int) -> None:
        if self.marks is None:
            return
        with self.engine.connect() as conn:
            upto = pruned_upto(conn, self.marks)
        if after < upto:
            raise OutOfRange(
                f"events up to sequence {upto} of the {self.source} feed were pruned by retention; a cursor at "
                f"{after} has missed some for good: resync from the {self.source} service's list RPCs, then "
                "move the cursor to the feed's latest sequence",
                reason="CURSOR_BEHIND_RETENTION", metadata={"pruned_upto": str(upto), "after_sequence": str(after)})

    def _record_reader(self, consumer: str, after: int) -> None:
        """The consumer is at `after` now (its cursor only moves forward, so neither does the record)."""
        if self.readers is None or not consumer:
            return
        r = self.readers
        stmt = insert(r).values(consumer=consumer, last_after_sequence=after)
        with self.engine.begin() as conn:
            conn.execute(stmt.on_conflict_do_update(
                index_elements=[r.c.consumer],
                set_={"last_after_sequence": func.greatest(r.c.last_after_sequence, stmt.excluded.last_after_sequence),
                      "seen_time": func.now()}))

    def _select(self, after: int, upto: int | None = None) -> list:
        query = select(self.table).where(self.table.c.sequence > after).order_by(self.table.c.sequence).limit(BATCH)
        if upto is not None:
            query = query.where(self.table.c.sequence <= upto)
        with self.engine.connect() as conn:
            return conn.execute(query).all()

    def _wait_for_publishers(self, then=None):
        """Waits until every transaction publishing to this outbox now has committed or rolled back
        (they hold the publish lock shared; this takes it exclusively, for a moment), then runs
        `then(conn)` while no publisher is in flight and returns its result (True without `then`).
        None when the wait takes longer than GAP_WAIT_MS."""
        try:
            with self.engine.begin() as conn:
                conn.execute(text(f"SET LOCAL lock_timeout = '{GAP_WAIT_MS}ms'"))
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": self._lock_key})
                return True if then is None else then(conn)
        except sa_exc.OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != LOCK_NOT_AVAILABLE:
                raise  # the database, not a publisher in flight
            log.debug("publishers of %s still in flight after %d ms", self.source, GAP_WAIT_MS)
            return None

    def _read(self, after: int, types: list[str]) -> tuple[list, int, bool]:
        """(rows of the asked types a reader may take now, the sequence they cover up to, whether more
        may follow at once).

        Publishers commit in any order, so a number may be missing: held by a transaction still in
        flight, or rolled back. Rows are taken up to the first missing number; when it is the very next
        one, the read waits for the publishers in flight (a rolled-back number never appears, one in
        flight may) and reads again: below the highest number first read, nothing can appear any more.
        """
        rows = self._select(after)
        expected, safe = after + 1, []
        for row in rows:
            if row.sequence != expected:
                break
            safe.append(row)
            expected += 1
        stopped_at_gap = len(safe) < len(rows)
        if rows and not safe:  # the next number is missing
            if self._wait_for_publishers() is None:
                return [], after, False  # in flight: its commit's notification wakes the stream
            safe = self._select(after, upto=rows[-1].sequence)
            stopped_at_gap = False
        # Read again at once after a whole batch, or when stopped at a gap (the next read settles it).
        more = len(safe) == BATCH or stopped_at_gap
        upto = safe[-1].sequence if safe else after
        if types:
            wanted = set(types)
            safe = [row for row in safe if row.type in wanted]
        return safe, upto, more

    def _from_cache(self, after: int, types: list[str]):
        """(events after `after` of the types, the sequence covered, True) from the shared window, or
        None when `after` is outside it or at its end."""
        with self._cache_lock:
            if self._cache_from is None or not (self._cache_from <= after < self._cache_upto):
                return None
            start = bisect.bisect_right(self._cache_seqs, after)
            events, upto = self._cache[start:], self._cache_upto
        if types:
            wanted = set(types)
            events = [e for e in events if e.type in wanted]
        return events, upto, True, False

    def _events(self, after: int, types: list[str], force: bool = True) -> tuple[list, int, bool, bool]:
        """(events of the types a reader may take now, the sequence they cover up to, whether to read
        again at once, whether the table was looked at): from the shared window when `after` is in
        it, else from the table. Without `force`, a stream at the window's end reads the table only
        when a commit was notified since the last read (a stream's first read, and one after a quiet
        wait, force it)."""
        served = self._from_cache(after, types)
        if served is not None:
            return served
        with self._cache_lock:
            at_end = self._cache_from is None or after == self._cache_upto
        if not at_end:  # behind the window (catching up) or ahead of it: read the table
            rows, upto, more = self._read(after, types)
            return [row_to_event(r, self.source) for r in rows], upto, more, True
        with self._refresh_lock:
            served = self._from_cache(after, types)  # another stream refreshed meanwhile
            if served is not None:
                return served
            with self._cond:
                commits = self._commits
            with self._cache_lock:
                if self._cache_from is None:
                    self._cache_from = self._cache_upto = after
                elif after != self._cache_upto:
                    return [], after, True, False  # the window moved; look again
                if not force and commits == self._cache_commits and not self._cache_more:
                    return [], after, False, False  # nothing committed since the last refresh: wait
                start = self._cache_upto
            rows, upto, more = self._read(start, [])
            fresh = [row_to_event(r, self.source) for r in rows]
            with self._cache_lock:
                self._cache.extend(fresh)
                self._cache_seqs.extend(e.sequence for e in fresh)
                self._cache_upto = max(self._cache_upto, upto)
                self._cache_commits = commits
                self._cache_more = more
                if len(self._cache) > CACHE_EVENTS:
                    drop = len(self._cache) - CACHE_EVENTS
                    self._cache_from = self._cache_seqs[drop - 1]
                    del self._cache[:drop], self._cache_seqs[:drop]
        if types:
            wanted = set(types)
            fresh = [e for e in fresh if e.type in wanted]
        return fresh, upto, more, True

    def stream(self, request: events_pb2.StreamEventsRequest, context, idle_seconds: float | None = None):
        """The body of every service's StreamEvents RPC.

        With `idle_seconds`, yields None whenever that long passes with nothing
        new, so a caller can send a heartbeat on a quiet stream.
        """
        bad = []
        if request.after_sequence < 0:
            bad.append(("after_sequence", "must be 0 or more"))
        if request.consumer and not CONSUMER_NAME.match(request.consumer):
            bad.append(("consumer", "must be a service name: a lowercase letter, then up to 59 of a-z 0-9 _ -"))
        if bad:
            raise InvalidArgument(bad)
        after = request.after_sequence
        self._check_retained(after)
        self._record_reader(request.consumer, after)
        types = list(request.types)
        stream_id = next(self._stream_ids)
        with self._positions_lock:
            self._positions[stream_id] = after
        force = True  # the first read looks at the table whatever was notified
        try:
            while context.is_active() and not self._closed.is_set():
                with self._cond:
                    target, seen = self._latest, self._commits
                events, upto, more, looked = self._events(after, types, force)
                force = force and not looked  # until the stream has looked at the table once
                for event in events:
                    yield event
                    after = event.sequence
                    self._positions[stream_id] = after
                after = max(after, upto)  # past the rows of other types too
                if more:
                    continue
                # Caught up with everything committed up to `target` (of the types asked for).
                self._positions[stream_id] = max(after, target)
                if request.stop_at_end:
                    return
                idle = False
                with self._cond:
                    if self._commits == seen:
                        self._cond.wait(idle_seconds or SAFETY_RECHECK_SECONDS)
                        idle = self._commits == seen
                force = idle  # a quiet wait ends with a look at the table (a notification may be lost)
                if idle and idle_seconds:
                    yield None
        finally:
            with self._positions_lock:
                self._positions.pop(stream_id, None)
