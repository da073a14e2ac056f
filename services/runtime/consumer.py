"""Feed consumers: exactly-once effects over at-least-once delivery.

A consumer reads another service's feed from its own cursor. Events are
applied in the consumer's own schema together with an inbox row for each
event id and the cursor move, in one transaction, so a redelivered event is
skipped and a consumer that was down resumes where it stopped. What has
arrived is applied together: a reader thread takes events off the stream and
the consumer applies all that are waiting (at most `BATCH_MAX`) in one
transaction, in feed order; when nothing is waiting that is one event, so a
quiet feed is followed at once and a busy one costs one commit per batch, not
per event. If any event of a batch fails, the batch is rolled back and its
events are applied one at a time, each in its own transaction.

An event whose handler keeps failing (a poison event) is retried a bounded
number of times, then parked in the consumer's `dead_letters` table in one
transaction with its inbox row and the cursor move, so the feed goes on.
Later events of the same source and subject are parked behind it, never
applied out of order. Operators list, replay or discard parked events with
`list_parked`, `replay_parked` and `discard_parked` (served as the
FeedAdminService RPCs by feed_admin.py).

A consumer names its service on the feed request, so the producer knows how
far it has got (its cursor is the request's `after_sequence`) and its
retention keeps what the consumer has not passed. To keep that record close
to the cursor, the consumer reopens its stream from the cursor every
`RENEW_SECONDS`.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import grpc
from google.protobuf.message import Message
from opentelemetry import trace
from sqlalchemy import (
    BigInteger, Column, DateTime, Index, Integer, LargeBinary, MetaData, String, Table, Text, bindparam, func, select,
    tuple_, update,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import ARRAY, UUID, insert
from sqlalchemy.engine import Connection, Engine

from smart110.common.v1 import events_pb2

from . import metrics
from .db import compiled_once
from .errors import FailedPrecondition, NotFound, Unavailable
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
        Index("inbox_process_time", "process_time"),  # retention prunes by age
    )


PARKED, REPLAYED, DISCARDED = "parked", "replayed", "discarded"
# Events applied in one transaction at most (all that are waiting, up to this many). It bounds how
# long a batch's transaction holds the outbox lock when its handlers publish.
BATCH_MAX = 50
# Events the reader thread keeps ahead of the consumer.
READ_AHEAD = 2 * BATCH_MAX
# A batch's prepare steps (calls to other services, reads of their own) run this many at a time:
# they are independent of each other and run before the transaction, so a batch waits for the
# slowest of them, not for their sum.
PREPARE_CONCURRENCY = 8
_END = object()  # the stream ended (or reached its renewal deadline)
# A stream is reopened from the cursor this often (the producer then records the cursor).
RENEW_SECONDS = 300.0
ERROR_TEXT_MAX = 2000


def dead_letter_table(metadata: MetaData) -> Table:
    """Parked events: the whole serialized Event (to replay it), why, and how it was resolved."""
    return Table(
        "dead_letters",
        metadata,
        Column("event_id", UUID(as_uuid=True), primary_key=True),
        Column("source", String(60), nullable=False),
        Column("sequence", BigInteger, nullable=False),
        Column("type", String(120), nullable=False),
        Column("subject", String(200), nullable=False),
        Column("payload", LargeBinary, nullable=False),
        Column("error", Text, nullable=False),
        Column("attempts", Integer, nullable=False),
        Column("status", String(20), nullable=False, server_default=PARKED),
        Column("park_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
        Column("resolve_time", DateTime(timezone=True), nullable=True),
        Column("resolve_reason", Text, nullable=True),
        Column("resolved_by", String(120), nullable=True),
        Column("resolved_roles", ARRAY(Text), nullable=True),
        Index("dead_letters_source_subject_idx", "source", "subject", "status", "sequence"),
    )


def _occurred(event: events_pb2.Event) -> float:
    """When an event occurred (epoch seconds); now for an event without occur_time."""
    if event.HasField("occur_time"):
        return event.occur_time.seconds + event.occur_time.nanos / 1e9
    return time.time()


def error_text(exc: BaseException) -> str:
    """Exception class and message, without the stack, truncated."""
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= ERROR_TEXT_MAX else text[: ERROR_TEXT_MAX - 3] + "..."


# Errors that say the database is unreachable, not that the event is poison:
# the consumer backs off and retries the stream instead of parking.
_TRANSIENT = (sa_exc.OperationalError, sa_exc.InterfaceError)
_TRANSIENT_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


# handler(uow, event, payload) runs inside the consumer's transaction, on a unit of work
# (services.runtime.uow) when the consumer builds them, else on the bare connection.
Handler = Callable[[object, events_pb2.Event, Message], None]


@dataclass(frozen=True)
class Subscription:
    """What to do with one event type: the payload class and the handler."""

    payload_type: type[Message]
    handler: Handler
    # prepare(context, event, payload) runs before the transaction (the place to call other
    # services; `context` is the service's dependencies, see Runtime.context); when set, its
    # result reaches the handler as `prepared=`. Without a unit of work: prepare(event, payload).
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
        dead_letters: Table | None = None,
        max_attempts: int = 5,
        retry_backoff: float = 0.2,
        unit_of_work: Callable[[Connection], Any] | None = None,
        context: Any = None,
        consumer: str = "",
        renew_seconds: float | None = None,
    ):
        """`dead_letters` None: a failing event is retried forever (nothing is parked).

        Otherwise an event is tried `max_attempts` times, waiting `retry_backoff`
        seconds (doubling, at most 5 s) between tries, then parked.

        `consumer` is the consuming service's name, sent on the feed request.
        With `renew_seconds`, `open_stream(request, timeout)` gets that timeout
        and a stream that ends by it is reopened from the cursor at once.
        """
        self.source = source
        self.consumer = consumer
        self.renew_seconds = renew_seconds
        self.open_stream = open_stream
        self.engine = engine
        self.cursors = cursors
        self.inbox = inbox
        self.subscriptions = subscriptions
        self.dead_letters = dead_letters
        self.max_attempts = max(1, max_attempts)
        self.retry_backoff = retry_backoff
        # conn -> UnitOfWork; None: handlers get the bare connection.
        self.unit_of_work = unit_of_work
        self.context = context
        self._stop = threading.Event()
        self._prepare_pool: ThreadPoolExecutor | None = None
        self._call = None
        self._last_sequence = 0  # the cursor as last read or moved by this process
        self._renewed = False
        self._thread: threading.Thread | None = None
        # When the oldest event read but not yet applied occurred (epoch seconds); None when caught up.
        self._oldest_unapplied: float | None = None
        # The statements of one event's transaction, built once (run with each event's parameters).
        i = inbox.c
        self._inbox_one = (insert(inbox).values(event_id=bindparam("event_event_id", type_=i.event_id.type),
                                                source=bindparam("event_source", type_=i.source.type),
                                                sequence=bindparam("event_sequence", type_=i.sequence.type),
                                                type=bindparam("event_type", type_=i.type.type))
                           .on_conflict_do_nothing().returning(i.event_id))
        move = insert(cursors).values(source=bindparam("event_source", type_=cursors.c.source.type),
                                      last_sequence=bindparam("event_sequence", type_=cursors.c.last_sequence.type))
        self._cursor_move = move.on_conflict_do_update(
            index_elements=[cursors.c.source],
            set_={"last_sequence": func.greatest(cursors.c.last_sequence, move.excluded.last_sequence),
                  "update_time": func.now()})
        self._parked_before_query = None
        # One round trip for one event, before its handler runs: the inbox row (its id when fresh), the
        # cursor move (only this source's consumer writes its cursor row) and the earliest parked event
        # of its subject before it (None without dead letters or when none is parked).
        fresh_cte = self._inbox_one.cte("fresh")
        moved_cte = self._cursor_move.returning(cursors.c.last_sequence).cte("moved")
        moved = select(moved_cte.c.last_sequence).scalar_subquery().label("moved")
        self._inbox_and_blocker = select(select(fresh_cte.c.event_id).scalar_subquery().label("fresh"), moved)
        # A batch's inbox rows in one statement of one shape whatever the batch's size (arrays, unnest).
        self._inbox_many = compiled_once(
            insert(inbox).from_select(
                ["event_id", "source", "sequence", "type"],
                select(func.unnest(bindparam("event_ids", type_=ARRAY(i.event_id.type))),
                       bindparam("event_source", type_=i.source.type),
                       func.unnest(bindparam("event_sequences", type_=ARRAY(i.sequence.type))),
                       func.unnest(bindparam("event_types", type_=ARRAY(i.type.type)))))
            .on_conflict_do_nothing().returning(i.event_id))
        if dead_letters is not None:
            dl = dead_letters.c
            self._parked_before_query = (
                select(dl.event_id)
                .where(dl.source == bindparam("event_source", type_=dl.source.type),
                       dl.subject == bindparam("event_subject", type_=dl.subject.type), dl.status == PARKED,
                       dl.sequence < bindparam("event_sequence", type_=dl.sequence.type))
                .order_by(dl.sequence)
                .limit(1))
            self._inbox_and_blocker = select(select(fresh_cte.c.event_id).scalar_subquery().label("fresh"), moved,
                                             self._parked_before_query.scalar_subquery().label("blocker"))
        self._cursor_move = compiled_once(self._cursor_move)
        self._inbox_and_blocker = compiled_once(self._inbox_and_blocker)

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> None:
        metrics.FEED_LAG.labels(service=metrics.service(), source=self.source).set_function(self.lag_seconds)
        self._thread = threading.Thread(target=self._run, name=f"consume-{self.source}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        call = self._call
        if call is not None:
            try:
                if callable(getattr(call, "cancel", None)):
                    call.cancel()  # a grpc call
                elif callable(getattr(call, "close", None)):
                    call.close()  # a generator (e.g. an instrumented stream)
            except ValueError:
                pass  # a generator running in the consumer's thread: it stops after its next event
            except Exception:  # noqa: BLE001 - stopping must go on
                log.warning("could not cancel the %s stream", self.source, exc_info=True)
        if self._thread:
            self._thread.join(timeout=5)
        pool, self._prepare_pool = self._prepare_pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def cursor(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(self.cursors.c.last_sequence).where(self.cursors.c.source == self.source)
            ).scalar()
        return value or 0

    def _open(self, after: int):
        request = events_pb2.StreamEventsRequest(after_sequence=after, types=sorted(self.subscriptions),
                                                 consumer=self.consumer)
        if self.renew_seconds:
            return self.open_stream(request, self.renew_seconds)
        return self.open_stream(request)

    def _events(self, call):
        """The stream's events; ends quietly, setting `_renewed`, when the stream reaches its renewal deadline."""
        self._renewed = False
        stream = iter(call)
        while True:
            try:
                event = next(stream)
            except StopIteration:
                return
            except grpc.RpcError as exc:
                if self.renew_seconds and callable(getattr(exc, "code", None)) \
                        and exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
                    log.debug("renewing the %s stream from the cursor", self.source)
                    self._renewed = True
                    return
                raise
            yield event

    def _run(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                after = self.cursor()
                self._last_sequence = after
                self._cursor_gauge().set(after)
                self._call = self._open(after)
                log.info("consuming %s feed after sequence %d", self.source, after)
                for batch in self._batches(self._call):
                    if self._stop.is_set():
                        return
                    if self._oldest_unapplied is None:  # kept across retries of the same events
                        self._oldest_unapplied = _occurred(batch[0])
                    self.handle_batch(batch)
                    self._oldest_unapplied = None
                    backoff = 0.2
                if self._renewed:
                    continue  # reopen from the cursor at once; a stream the producer ended waits a little
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

    def _batches(self, call):
        """Lists of the events waiting on the stream, in feed order: the first waits for an event, then
        takes every event already read, up to BATCH_MAX. A reader thread keeps up to READ_AHEAD ahead."""
        waiting: queue.Queue = queue.Queue(maxsize=READ_AHEAD)
        done = threading.Event()

        def read():
            try:
                for event in self._events(call):
                    while not done.is_set():
                        try:
                            waiting.put(event, timeout=0.5)
                            break
                        except queue.Full:
                            continue
                    if done.is_set():
                        return
                waiting.put(_END)
            except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread
                waiting.put(exc)

        reader = threading.Thread(target=read, name=f"read-{self.source}", daemon=True)
        reader.start()
        try:
            pending = None
            while True:
                item, pending = pending, None
                while item is None:
                    try:
                        item = waiting.get(timeout=0.5)
                    except queue.Empty:
                        if self._stop.is_set():
                            return
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                batch = [item]
                while len(batch) < BATCH_MAX:
                    try:
                        nxt = waiting.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _END or isinstance(nxt, BaseException):
                        pending = nxt
                        break
                    batch.append(nxt)
                yield batch
        finally:
            done.set()
            try:
                while True:
                    waiting.get_nowait()  # lets a reader blocked on a full queue see `done`
            except queue.Empty:
                pass

    # -- a batch of events -----------------------------------------------------
    def handle_batch(self, events: list[events_pb2.Event]) -> list[bool]:
        """Applies events in one transaction; if one of them fails, the batch is rolled back and each
        event is handled alone (retried, parked). Returns, per event, whether it was applied now."""
        if len(events) == 1:
            return [self.handle(events[0])]
        try:
            return self.apply_batch(events)
        except _TRANSIENT:
            raise
        except Unavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - one of the events fails: find which, one at a time
            if self._stop.is_set():
                raise
            if isinstance(exc, grpc.RpcError) and exc.code() in _TRANSIENT_CODES:
                raise
            log.warning("a batch of %d events from %s failed (%s); applying them one at a time",
                        len(events), self.source, error_text(exc))
        return [self.handle(event) for event in events]

    def apply_batch(self, events: list[events_pb2.Event]) -> list[bool]:
        """Applies events exactly once, in order, in one transaction. Per event: True when applied now."""
        subs = [self.subscriptions.get(e.type) for e in events]
        prepared = self._prepare_all(subs, events)  # before the transaction
        results: list[str] = []
        units = []
        with self.engine.begin() as conn:
            wanted = {e.event_id: e for sub, e in zip(subs, events) if sub is not None}
            fresh: set[str] = set()
            if wanted:
                fresh = {str(i) for i in conn.execute(self._inbox_many, {
                    "event_ids": [uuid.UUID(str(e)) for e in wanted], "event_source": self.source,
                    "event_sequences": [e.sequence for e in wanted.values()],
                    "event_types": [e.type for e in wanted.values()]}).scalars()}
            blockers = self._parked_subjects(conn, {e.subject for e in wanted.values() if e.event_id in fresh})
            for sub, event, prep in zip(subs, events, prepared):
                if sub is None:
                    results.append("ignored")
                    continue
                if event.event_id not in fresh:
                    results.append("duplicate")
                    continue
                fresh.discard(event.event_id)  # the same event twice in one batch is applied once
                blocker = blockers.get(event.subject)
                if blocker is not None and blocker[0] < event.sequence:
                    self._insert_dead_letter(conn, event, f"waiting behind parked event {blocker[1]}", 0)
                    results.append(PARKED)
                    continue
                with _tracer.start_as_current_span(
                    f"consume {event.type}", context=context_from(event.trace_context),
                    kind=trace.SpanKind.CONSUMER,
                    attributes={"messaging.source": self.source, "messaging.event_id": event.event_id,
                                "messaging.sequence": event.sequence, "smart110.subject": event.subject,
                                "messaging.batch.message_count": len(events)},
                ):
                    payload = sub.payload_type()
                    event.payload.Unpack(payload)
                    uow = self._invoke(sub, conn, event, payload, prep, flush=False)
                if uow is not None:
                    units.append(uow)
                results.append("applied")
            # The batch's events go to the outbox together at its end, in the order they were recorded:
            # the outbox's publishing lock is held from there to the commit, not for the whole batch.
            for uow in units:
                uow.flush()
            self._move_cursor(conn, max(events, key=lambda e: e.sequence))
        for event, result in zip(events, results):
            if result == PARKED:
                log.warning("parked event %s from %s behind a parked event of subject %s",
                            event.event_id, self.source, event.subject)
            self._record(event, result)
        return [r == "applied" for r in results]

    def _parked_subjects(self, conn, subjects: set[str]) -> dict[str, tuple[int, str]]:
        """{subject: (sequence, event id)} of the earliest parked event of each of these subjects."""
        subjects = {s for s in subjects if s}
        if self.dead_letters is None or not subjects:
            return {}
        dl = self.dead_letters.c
        found: dict[str, tuple[int, str]] = {}
        for row in conn.execute(
                select(dl.subject, dl.sequence, dl.event_id)
                .where(dl.source == self.source, dl.status == PARKED, dl.subject.in_(sorted(subjects)))
                .order_by(dl.sequence)):
            found.setdefault(row.subject, (row.sequence, str(row.event_id)))
        return found

    # -- one event -----------------------------------------------------------
    def handle(self, event: events_pb2.Event) -> bool:
        """Applies one event, retrying a failing one and parking it after `max_attempts`.

        Returns True when the event was applied now.
        """
        if self.dead_letters is None:
            return self.apply(event)
        delay = self.retry_backoff
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self.apply(event)
            except _TRANSIENT:
                raise  # the database, not the event: the run loop backs off
            except Unavailable:
                raise  # a dependency said it is down (e.g. a client's wrapped UNAVAILABLE): back off, do not park
            except Exception as exc:  # noqa: BLE001 - a failing handler
                if self._stop.is_set():
                    raise
                if isinstance(exc, grpc.RpcError) and exc.code() in _TRANSIENT_CODES:
                    raise  # a service this consumer calls is down, not the event: back off, do not park
                if attempt >= self.max_attempts:
                    log.exception("parking event %s (%s, sequence %d) from %s after %d attempts",
                                  event.event_id, event.type, event.sequence, self.source, attempt)
                    self.park(event, error_text(exc), attempt)
                    return False
                log.warning("event %s from %s failed (attempt %d of %d): %s; retrying in %.2fs",
                            event.event_id, self.source, attempt, self.max_attempts, error_text(exc), delay)
                self._stop.wait(delay)
                delay = min(delay * 2, 5.0)
        return False

    def park(self, event: events_pb2.Event, error: str, attempts: int) -> None:
        """Parks an event: dead-letter row, inbox row and cursor move in one transaction."""
        with self.engine.begin() as conn:
            conn.execute(
                insert(self.inbox)
                .values(event_id=event.event_id, source=self.source, sequence=event.sequence, type=event.type)
                .on_conflict_do_nothing()
            )
            self._insert_dead_letter(conn, event, error, attempts)
            self._move_cursor(conn, event)
        self._record(event, PARKED)

    def _insert_dead_letter(self, conn, event: events_pb2.Event, error: str, attempts: int) -> None:
        conn.execute(
            insert(self.dead_letters)
            .values(event_id=event.event_id, source=self.source, sequence=event.sequence, type=event.type,
                    subject=event.subject, payload=event.SerializeToString(), error=error, attempts=attempts)
            .on_conflict_do_nothing()
        )

    def _parked_before(self, conn, event: events_pb2.Event):
        """The event id of a parked event of the same source and subject before this one, or None."""
        if self.dead_letters is None or not event.subject:
            return None
        return conn.execute(self._parked_before_query, {"event_source": self.source, "event_subject": event.subject,
                                                        "event_sequence": event.sequence}).scalar()

    def apply(self, event: events_pb2.Event) -> bool:
        """Applies one event exactly once. Returns False when it was a duplicate (or parked)."""
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
                result = "applied"
                if sub is not None:
                    row = conn.execute(self._inbox_and_blocker, {
                        "event_event_id": event.event_id, "event_source": self.source,
                        "event_sequence": event.sequence, "event_type": event.type,
                        "event_subject": event.subject}).one()
                    fresh = row.fresh is not None
                    blocker = (row.blocker if self.dead_letters is not None and event.subject else None) \
                        if fresh else None
                    if blocker is not None:
                        # Order per subject: never apply past a parked event of the same subject.
                        self._insert_dead_letter(conn, event, f"waiting behind parked event {blocker}", 0)
                        result = PARKED
                    elif fresh:
                        payload = sub.payload_type()
                        event.payload.Unpack(payload)
                        self._invoke(sub, conn, event, payload, prepared)
                        applied = True
                else:
                    self._move_cursor(conn, event)
            if result == PARKED:
                log.warning("parked event %s from %s behind parked event %s (subject %s)",
                            event.event_id, self.source, blocker, event.subject)
            self._record(event, result if applied or result == PARKED
                         else "duplicate" if sub is not None else "ignored")
            return applied

    def _move_cursor(self, conn, event: events_pb2.Event) -> None:
        conn.execute(self._cursor_move, {"event_source": self.source, "event_sequence": event.sequence})

    def _invoke(self, sub: Subscription, conn, event: events_pb2.Event, payload: Message, prepared,
                flush: bool = True):
        """Runs the handler in the consumer's transaction: on a unit of work when the consumer builds
        them (its recorded events are published before the commit), else on the connection. With
        `flush` False the caller publishes the unit of work's events (returned) later in the transaction."""
        target = conn if self.unit_of_work is None else self.unit_of_work(conn)
        if sub.prepare is None:
            sub.handler(target, event, payload)
        else:
            sub.handler(target, event, payload, prepared=prepared)
        if self.unit_of_work is not None and flush:
            target.flush()
        return target if self.unit_of_work is not None else None

    def _prepare_all(self, subs: list[Subscription | None], events: list[events_pb2.Event]) -> list:
        """The prepare steps of a batch, up to PREPARE_CONCURRENCY at a time; results in the events'
        order, and the first failure in that order is raised (as when they ran one after another)."""
        jobs = list(zip(subs, events))
        if sum(1 for sub, _ in jobs if sub is not None and sub.prepare is not None) < 2:
            return [self._prepare(sub, e) for sub, e in jobs]
        if self._prepare_pool is None:
            self._prepare_pool = ThreadPoolExecutor(max_workers=PREPARE_CONCURRENCY,
                                                    thread_name_prefix=f"prepare-{self.source}")
        return list(self._prepare_pool.map(lambda job: self._prepare(*job), jobs))

    def _prepare(self, sub: Subscription | None, event: events_pb2.Event):
        """The subscription's prepare step, outside any transaction (no call holds a connection)."""
        if sub is None or sub.prepare is None:
            return None
        payload = sub.payload_type()
        event.payload.Unpack(payload)
        if self.unit_of_work is None:
            return sub.prepare(event, payload)
        return sub.prepare(self.context, event, payload)

    def lag_seconds(self) -> float:
        """How long the oldest event read but not yet applied has waited since it occurred; 0 when
        caught up (smart110_feed_lag_seconds reads it when scraped, so it grows while the consumer is
        stuck on a failing event or an unavailable dependency)."""
        since = self._oldest_unapplied
        return 0.0 if since is None else max(time.time() - since, 0.0)

    def _cursor_gauge(self):
        return metrics.FEED_CURSOR.labels(service=metrics.service(), source=self.source)

    def _record(self, event: events_pb2.Event, result: str) -> None:
        """After the transaction committed: the cursor, the lag and the count."""
        service = metrics.service()
        # The cursor only moves forward (as in the table).
        self._last_sequence = max(self._last_sequence, event.sequence)
        self._cursor_gauge().set(self._last_sequence)
        metrics.FEED_EVENTS_APPLIED.labels(service=service, source=self.source, type=event.type, result=result).inc()
        if result == PARKED:
            metrics.FEED_EVENTS_PARKED.labels(service=service, source=self.source).inc()


# -- operators: parked events ------------------------------------------------
def list_parked(engine: Engine, table: Table, *, source: str | None = None,
                status: str | None = PARKED, after: tuple[str, int] | None = None,
                limit: int | None = None) -> list:
    """Dead-letter rows (all statuses with status=None) by source and sequence, those past `after`
    ((source, sequence) of the last row of the previous page) first, at most `limit`."""
    query = select(table).order_by(table.c.source, table.c.sequence)
    if source is not None:
        query = query.where(table.c.source == source)
    if status is not None:
        query = query.where(table.c.status == status)
    if after is not None:
        query = query.where(tuple_(table.c.source, table.c.sequence) > tuple_(*after))
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return list(conn.execute(query))


def _claim_parked(conn, table: Table, event_id: str):
    row = conn.execute(select(table).where(table.c.event_id == event_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"parkedEvents/{event_id}", f"no parked event {event_id}")
    if row.status != PARKED:
        raise FailedPrecondition(f"event {event_id} is {row.status}, not parked", reason="PARKED_EVENT_RESOLVED",
                                 metadata={"status": row.status})
    return row


def _resolve(conn, table: Table, event_id: str, status: str, actor: str, roles, reason: str) -> None:
    conn.execute(
        update(table).where(table.c.event_id == event_id)
        .values(status=status, resolve_time=func.now(), resolve_reason=reason or None, resolved_by=actor or None,
                resolved_roles=sorted(roles) if roles else None)
    )


def replay_parked(consumer: FeedConsumer, event_id: str, actor: str = "", *, roles=(), reason: str = "",
                  within: Callable[[object], object] | None = None):
    """Re-applies a parked event through its handler in one transaction and marks it replayed.

    Refused while an earlier event of the same source and subject is still
    parked (replay that one first). A handler that fails again leaves the
    row parked with its new error and one more attempt, and raises
    FailedPrecondition (reason REPLAY_FAILED); an outage (database, a
    service the handler calls) is raised as it is. `within(conn)` runs in the
    replay's transaction after the row is marked; its result is returned.
    """
    table = consumer.dead_letters
    if table is None:
        raise FailedPrecondition(f"the {consumer.source} consumer parks no events")
    # The subscription's prepare step (which may call other services) runs before the transaction.
    with consumer.engine.connect() as conn:
        stored = conn.execute(select(table.c.payload).where(table.c.event_id == event_id)).scalar()
    if stored is None:
        raise NotFound(f"parkedEvents/{event_id}", f"no parked event {event_id}")
    ahead = events_pb2.Event.FromString(stored)
    prepared = consumer._prepare(consumer.subscriptions.get(ahead.type), ahead)
    try:
        with consumer.engine.begin() as conn:
            row = _claim_parked(conn, table, event_id)
            event = events_pb2.Event.FromString(row.payload)
            blocker = consumer._parked_before(conn, event)
            if blocker is not None:
                raise FailedPrecondition(f"event {event_id} waits behind parked event {blocker}; replay that first",
                                         reason="PARKED_EVENT_WAITING", metadata={"waits_behind": str(blocker)})
            sub = consumer.subscriptions.get(event.type)
            if sub is None:
                raise FailedPrecondition(f"the {consumer.source} consumer no longer handles {event.type}",
                                         reason="EVENT_TYPE_NOT_HANDLED")
            payload = sub.payload_type()
            event.payload.Unpack(payload)
            try:
                consumer._invoke(sub, conn, event, payload, prepared)
            except Exception as exc:
                raise _HandlerFailed(exc) from exc
            _resolve(conn, table, event_id, REPLAYED, actor, roles, reason)
            result = within(conn) if within is not None else None
    except _HandlerFailed as failed:
        exc = failed.error
        if isinstance(exc, _TRANSIENT) or (isinstance(exc, grpc.RpcError) and exc.code() in _TRANSIENT_CODES):
            raise exc from None
        with consumer.engine.begin() as conn:
            conn.execute(update(table).where(table.c.event_id == event_id, table.c.status == PARKED)
                         .values(error=error_text(exc), attempts=table.c.attempts + 1))
        log.warning("replay of parked event %s from %s by %s failed: %s", event_id, consumer.source,
                    actor or "an operator", error_text(exc))
        raise FailedPrecondition(f"the handler failed again, the event stays parked: {error_text(exc)}",
                                 reason="REPLAY_FAILED") from exc
    log.info("replayed parked event %s from %s by %s", event_id, consumer.source, actor or "an operator")
    return result


class _HandlerFailed(Exception):
    """A replayed event's handler raised (as opposed to the checks around it)."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


def discard_in(conn, table: Table, event_id: str, reason: str, actor: str, roles=()) -> None:
    """Marks a parked event discarded inside the caller's transaction (see `discard_parked`)."""
    _claim_parked(conn, table, event_id)
    _resolve(conn, table, event_id, DISCARDED, actor, roles, reason)
    log.info("discarded parked event %s by %s: %s", event_id, actor, reason)


def discard_parked(engine: Engine, table: Table, event_id: str, reason: str, actor: str, roles=()) -> None:
    """Marks a parked event discarded (never applied); the row stays for audit."""
    with engine.begin() as conn:
        discard_in(conn, table, event_id, reason, actor, roles)
