"""Retention against a real Postgres: old outbox events, inbox rows and idempotency keys are
pruned past their horizons, the newest event is kept, a cursor behind the pruned part is told
so, two replicas never prune at once, and an outbox event stays until every recently seen
consumer has passed it."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import grpc
from sqlalchemy import MetaData, func, select, text, update

from smart110.common.v1 import common_pb2, events_pb2
from services.runtime.app import RuntimeTables
from services.runtime.consumer import FeedConsumer, Subscription
from services.runtime.db import ensure_service_database, make_engine
from services.runtime.errors import InvalidArgument, OutOfRange
from services.runtime.feed import Feed
from services.runtime.outbox import Outbox
from services.runtime.retention import Horizons, Retention, pruned_upto

SCHEMA = "rtretention"
NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)


class Ctx:
    def is_active(self):
        return True


@pytest.fixture()
def env(admin_url):
    url = ensure_service_database(admin_url, SCHEMA, "pw")
    metadata = MetaData(schema=SCHEMA)
    tables = RuntimeTables.add_to(metadata)
    engine = make_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    retention = Retention(engine, outbox=tables.outbox, inbox=tables.inbox, idempotency=tables.idempotency,
                          marks=tables.marks, readers=tables.readers,
                          horizons=Horizons(outbox=timedelta(days=30), inbox=timedelta(days=14),
                                            idempotency=timedelta(days=7), reader_expiry=timedelta(days=90)),
                          batch=3)
    yield dict(engine=engine, tables=tables, retention=retention, url=url)
    engine.dispose()


def publish(env, n: int, age: timedelta) -> list[int]:
    t = env["tables"]
    outbox = Outbox(t.outbox, SCHEMA)
    seqs = []
    with env["engine"].begin() as conn:
        for _ in range(n):
            seqs.append(outbox.publish(conn, "test.Thing", f"things/{uuid.uuid4().hex}",
                                       common_pb2.GeoPoint(longitude=1, latitude=2)))
        conn.execute(update(t.outbox).where(t.outbox.c.sequence.in_(seqs)).values(occur_time=NOW - age))
    return seqs


def count(env, table) -> int:
    with env["engine"].connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar()


def test_old_rows_are_pruned_in_batches_and_recent_ones_kept(env):
    t, engine = env["tables"], env["engine"]
    old = publish(env, 7, timedelta(days=40))
    recent = publish(env, 2, timedelta(days=1))
    with engine.begin() as conn:
        for age in (20, 20, 20, 1):
            conn.execute(t.inbox.insert().values(event_id=uuid.uuid4(), source="x", sequence=1, type="t",
                                                 process_time=NOW - timedelta(days=age)))
        for i, age in enumerate((8, 8, 2)):
            conn.execute(t.idempotency.insert().values(method="M", request_id=f"r{i}", request_hash="h",
                                                       create_time=NOW - timedelta(days=age)))
    assert env["retention"].prune(NOW) == {"outbox": 7, "inbox": 3, "idempotency_keys": 2}
    with engine.connect() as conn:
        left = conn.execute(select(t.outbox.c.sequence).order_by(t.outbox.c.sequence)).scalars().all()
        assert left == recent
        assert pruned_upto(conn, t.marks) == old[-1]
    assert count(env, t.inbox) == 1 and count(env, t.idempotency) == 1
    # Nothing more to do: a second round deletes nothing and keeps the mark.
    assert env["retention"].prune(NOW) == {"outbox": 0, "inbox": 0, "idempotency_keys": 0}


def test_the_newest_event_is_kept_however_old(env):
    t = env["tables"]
    seqs = publish(env, 3, timedelta(days=90))
    env["retention"].prune(NOW)
    with env["engine"].connect() as conn:
        assert conn.execute(select(t.outbox.c.sequence)).scalars().all() == [seqs[-1]]


def test_a_cursor_behind_the_pruned_part_is_refused_with_a_clear_reason(env):
    t = env["tables"]
    seqs = publish(env, 4, timedelta(days=40)) + publish(env, 1, timedelta(days=1))
    env["retention"].prune(NOW)
    feed = Feed(env["engine"], t.outbox, env["url"], SCHEMA, marks=t.marks)
    with pytest.raises(OutOfRange) as err:
        next(feed.stream(events_pb2.StreamEventsRequest(after_sequence=seqs[1], stop_at_end=True), Ctx()))
    assert err.value.reason == "CURSOR_BEHIND_RETENTION"
    # A cursor at the pruned mark or later reads on.
    events = list(feed.stream(events_pb2.StreamEventsRequest(after_sequence=seqs[3], stop_at_end=True), Ctx()))
    assert [e.sequence for e in events] == [seqs[4]]


def test_only_one_replica_prunes_a_round(env):
    engine = env["engine"]
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": env["retention"]._lock_key})
        result = {}
        other = threading.Thread(target=lambda: result.setdefault("r", env["retention"].prune(NOW)))
        other.start()
        other.join(10)
    assert result["r"] is None


# -- consumers' cursors hold the outbox back -------------------------------------------------

def reader(env, consumer: str, after: int, seen: timedelta) -> None:
    """A consuming service that last opened the feed from `after`, `seen` before NOW."""
    r = env["tables"].readers
    with env["engine"].begin() as conn:
        conn.execute(r.delete().where(r.c.consumer == consumer))
        conn.execute(r.insert().values(consumer=consumer, last_after_sequence=after, seen_time=NOW - seen))


def outbox_left(env) -> list[int]:
    t = env["tables"]
    with env["engine"].connect() as conn:
        return conn.execute(select(t.outbox.c.sequence).order_by(t.outbox.c.sequence)).scalars().all()


def test_an_old_event_stays_until_every_recent_reader_has_passed_it(env):
    old = publish(env, 6, timedelta(days=40))
    recent = publish(env, 1, timedelta(days=1))
    reader(env, "dispatch", old[-1], timedelta(minutes=5))  # has passed everything old
    reader(env, "referral", old[2], timedelta(days=10))     # down for ten days, at the third event
    assert env["retention"].prune(NOW)["outbox"] == 3
    assert outbox_left(env) == old[3:] + recent
    with env["engine"].connect() as conn:
        assert pruned_upto(conn, env["tables"].marks) == old[2]
    # Referral catches up: the rest of what is past the horizon goes.
    reader(env, "referral", recent[0], timedelta(minutes=1))
    assert env["retention"].prune(NOW)["outbox"] == 3
    assert outbox_left(env) == recent


def test_a_reader_unseen_past_the_expiry_no_longer_holds_the_outbox(env):
    old = publish(env, 4, timedelta(days=120))
    recent = publish(env, 1, timedelta(days=1))
    reader(env, "removed", 0, timedelta(days=91))  # a consumer taken out of the suite
    reader(env, "scoring", old[1], timedelta(days=89))  # still counts
    env["retention"].prune(NOW)
    assert outbox_left(env) == old[2:] + recent
    reader(env, "scoring", old[1], timedelta(days=91))
    env["retention"].prune(NOW)
    assert outbox_left(env) == recent


def test_the_feed_records_the_highest_cursor_each_consumer_asks_from(env):
    t = env["tables"]
    seqs = publish(env, 3, timedelta(days=1))
    feed = Feed(env["engine"], t.outbox, env["url"], SCHEMA, marks=t.marks, readers=t.readers)

    def open_from(after: int, consumer: str = "alerts") -> list[int]:
        request = events_pb2.StreamEventsRequest(after_sequence=after, stop_at_end=True, consumer=consumer)
        return [e.sequence for e in feed.stream(request, Ctx())]

    def recorded() -> dict[str, int]:
        with env["engine"].connect() as conn:
            return dict(conn.execute(select(t.readers.c.consumer, t.readers.c.last_after_sequence)).all())

    assert open_from(seqs[1]) == [seqs[2]]
    assert recorded() == {"alerts": seqs[1]}
    long_ago = datetime(2000, 1, 1, tzinfo=timezone.utc)
    with env["engine"].begin() as conn:
        conn.execute(update(t.readers).values(seen_time=long_ago))
    open_from(seqs[0])  # an older replica's cursor: the record keeps the highest, seen again now
    assert recorded() == {"alerts": seqs[1]}
    with env["engine"].connect() as conn:
        assert conn.execute(select(t.readers.c.seen_time)).scalar() > long_ago
    open_from(0, consumer="")  # a reader that is no consumer (a tool, a big screen) is not recorded
    assert recorded() == {"alerts": seqs[1]}
    with pytest.raises(InvalidArgument) as err:
        open_from(0, consumer="Not A Service")
    assert [f for f, _ in err.value.violations] == ["consumer"]


class FakeStream:
    """A feed call that delivers some events, then fails with a status (as grpc raises it)."""

    def __init__(self, events, code=None):
        self.events, self.code = list(events), code

    def __iter__(self):
        yield from self.events
        if self.code is not None:
            raise FakeRpcError(self.code)

    def cancel(self):
        pass


class FakeRpcError(grpc.RpcError):
    def __init__(self, code):
        super().__init__(code.name)
        self._code = code

    def code(self):
        return self._code


def test_a_consumer_names_itself_and_renews_its_stream_from_the_cursor(env):
    t, engine = env["tables"], env["engine"]
    seqs = publish(env, 2, timedelta(days=1))
    feed = Feed(engine, t.outbox, env["url"], SCHEMA)
    events = list(feed.stream(events_pb2.StreamEventsRequest(after_sequence=seqs[0] - 1, stop_at_end=True), Ctx()))
    requests, timeouts = [], []
    reopened = threading.Event()

    def open_stream(request, timeout):
        requests.append(request)
        timeouts.append(timeout)
        if len(requests) == 1:  # the first stream reaches its renewal deadline after one event
            return FakeStream(events[:1], grpc.StatusCode.DEADLINE_EXCEEDED)
        reopened.set()
        return FakeStream([])

    consumer = FeedConsumer(source=f"src{uuid.uuid4().hex[:6]}", open_stream=open_stream, engine=engine,
                            cursors=t.cursors, inbox=t.inbox, dead_letters=t.dead_letters,
                            subscriptions={"test.Thing": Subscription(common_pb2.GeoPoint, lambda *a: None)},
                            consumer="dispatch", renew_seconds=300)
    consumer.start()
    try:
        assert reopened.wait(10)
    finally:
        consumer.stop()
    assert [(r.consumer, r.after_sequence) for r in requests[:2]] == [("dispatch", 0), ("dispatch", events[0].sequence)]
    assert timeouts[:2] == [300, 300]
