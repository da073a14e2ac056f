"""Feed consumers apply what has arrived in batches, one transaction per batch, still exactly once and in
feed order; a failing event in a batch sends the batch back to one event at a time (real Postgres)."""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, event as sa_event, select

from smart110.common.v1 import common_pb2, events_pb2
from services.runtime import consumer as consumer_mod
from services.runtime.app import RuntimeTables
from services.runtime.consumer import FeedConsumer, Subscription, list_parked
from services.runtime.db import ensure_service_database, make_engine
from services.runtime.feed import Feed
from services.runtime.outbox import Outbox

SCHEMA = "batchcheck"
TYPE = "test.Counted"


class Ctx:
    def is_active(self):
        return True


@pytest.fixture(scope="module")
def env(admin_url):
    url = ensure_service_database(admin_url, SCHEMA, "pw")
    metadata = MetaData(schema=SCHEMA)
    tables = RuntimeTables.add_to(metadata)
    effects = Table("effects", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                    Column("subject", String(200), nullable=False), Column("event_id", String(60), nullable=False),
                    Column("value", Integer, nullable=False))
    engine = make_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    feed = Feed(engine, tables.outbox, url, SCHEMA)
    feed.start()
    yield dict(engine=engine, tables=tables, effects=effects, feed=feed, outbox=Outbox(tables.outbox, SCHEMA))
    feed.close()
    engine.dispose()


def publish(env, subjects_values):
    with env["engine"].begin() as conn:
        for subject, value in subjects_values:
            env["outbox"].publish(conn, TYPE, subject, common_pb2.GeoPoint(latitude=value))


def make_consumer(env, source, handler, **kw):
    feed = env["feed"]

    def open_stream(req):
        return feed.stream(events_pb2.StreamEventsRequest(after_sequence=req.after_sequence, types=list(req.types),
                                                          stop_at_end=True), Ctx())

    return FeedConsumer(source=source, open_stream=open_stream, engine=env["engine"], cursors=env["tables"].cursors,
                        inbox=env["tables"].inbox, dead_letters=env["tables"].dead_letters, max_attempts=2,
                        retry_backoff=0.01, subscriptions={TYPE: Subscription(common_pb2.GeoPoint, handler)}, **kw)


def stream_of(env, tag):
    feed = env["feed"]
    return [e for e in feed.stream(events_pb2.StreamEventsRequest(types=[TYPE], stop_at_end=True), Ctx())
            if e.subject.endswith(tag)]


def commits(engine):
    counter = {"n": 0}

    def on_commit(conn):
        counter["n"] += 1
    sa_event.listen(engine, "commit", on_commit)
    return counter, lambda: sa_event.remove(engine, "commit", on_commit)


def effects_of(env, tag):
    with env["engine"].connect() as conn:
        return [(r.subject, r.value) for r in conn.execute(
            select(env["effects"]).where(env["effects"].c.subject.like(f"%{tag}")).order_by(env["effects"].c.id))]


def test_a_batch_is_one_transaction_in_feed_order_and_a_redelivery_changes_nothing(env):
    tag = uuid.uuid4().hex[:8]
    publish(env, [(f"s{i % 3}/{tag}", i) for i in range(30)])
    events = stream_of(env, tag)

    def handler(conn, event, payload):
        conn.execute(env["effects"].insert().values(subject=event.subject, event_id=event.event_id,
                                                    value=int(payload.latitude)))

    consumer = make_consumer(env, f"b{tag[:6]}", handler)
    counter, done = commits(env["engine"])
    try:
        assert consumer.handle_batch(events) == [True] * 30
    finally:
        done()
    assert counter["n"] == 1  # thirty events, one commit
    assert effects_of(env, tag) == [(f"s{i % 3}/{tag}", i) for i in range(30)]
    assert consumer.cursor() == events[-1].sequence
    # The feed redelivers (a consumer restarted before its cursor was read back): nothing twice.
    assert consumer.handle_batch(events[10:]) == [False] * 20
    assert len(effects_of(env, tag)) == 30


def test_a_failing_event_sends_its_batch_back_to_one_at_a_time(env):
    tag = uuid.uuid4().hex[:8]
    # Subject a: 0 fails for good, 3 must wait behind it; b and c go on.
    publish(env, [(f"a/{tag}", 0), (f"b/{tag}", 1), (f"c/{tag}", 2), (f"a/{tag}", 3), (f"b/{tag}", 4)])
    events = stream_of(env, tag)

    def handler(conn, event, payload):
        conn.execute(env["effects"].insert().values(subject=event.subject, event_id=event.event_id,
                                                    value=int(payload.latitude)))
        if payload.latitude == 0:
            raise ValueError("cannot handle 0")  # after a write: the rollback must undo it

    consumer = make_consumer(env, f"f{tag[:6]}", handler)
    assert consumer.handle_batch(events) == [False, True, True, False, True]
    assert effects_of(env, tag) == [(f"b/{tag}", 1), (f"c/{tag}", 2), (f"b/{tag}", 4)]
    parked = {str(r.event_id): r for r in list_parked(env["engine"], env["tables"].dead_letters,
                                                     source=consumer.source)}
    assert set(parked) == {events[0].event_id, events[3].event_id}
    assert parked[events[3].event_id].error == f"waiting behind parked event {events[0].event_id}"
    assert consumer.cursor() == events[-1].sequence

    # A later batch with the parked subject: it waits there too, inside the batch; the others apply.
    publish(env, [(f"a/{tag}", 5), (f"c/{tag}", 6)])
    later = stream_of(env, tag)[-2:]
    assert consumer.handle_batch(later) == [False, True]
    assert effects_of(env, tag)[-1] == (f"c/{tag}", 6)
    assert len(list_parked(env["engine"], env["tables"].dead_letters, source=consumer.source)) == 3


def test_the_running_consumer_takes_what_is_waiting_as_batches(env, monkeypatch):
    """Through the reader thread: what was published while the consumer was away arrives in batches of
    at most BATCH_MAX; everything is applied once, in order."""
    monkeypatch.setattr(consumer_mod, "BATCH_MAX", 7)
    monkeypatch.setattr(consumer_mod, "READ_AHEAD", 14)
    tag = uuid.uuid4().hex[:8]
    publish(env, [(f"s/{tag}", i) for i in range(40)])
    sizes = []
    finished = threading.Event()

    def handler(conn, event, payload):
        conn.execute(env["effects"].insert().values(subject=event.subject, event_id=event.event_id,
                                                    value=int(payload.latitude)))
        if payload.latitude == 39:
            finished.set()

    consumer = make_consumer(env, f"r{tag[:6]}", handler)
    original = consumer.handle_batch

    def counting(batch):
        sizes.append(len([e for e in batch if e.subject.endswith(tag)]))
        return original(batch)
    consumer.handle_batch = counting
    consumer.start()
    try:
        assert finished.wait(30)
    finally:
        consumer.stop()
    assert [v for _, v in effects_of(env, tag)] == list(range(40))
    assert max(sizes) <= 7 and max(sizes) > 1  # batched, and never above the bound


def test_a_batchs_prepare_steps_overlap_and_reach_their_own_events(env):
    """Prepare steps (calls to other services before the transaction) of one batch run side by side:
    four of them meet at a barrier none could pass alone; each handler gets its own event's result,
    the effects stay in feed order, and a failing prepare sends the batch back to one at a time."""
    tag = uuid.uuid4().hex[:8]
    publish(env, [(f"s{i % 2}/{tag}", i) for i in range(4)])
    events = stream_of(env, tag)
    met = threading.Barrier(4, timeout=20)

    def prepare(event, payload):
        met.wait()  # raises BrokenBarrierError unless all four run at once
        return int(payload.latitude) * 10

    def handler(conn, event, payload, prepared=None):
        assert prepared == int(payload.latitude) * 10
        conn.execute(env["effects"].insert().values(subject=event.subject, event_id=event.event_id,
                                                    value=prepared))

    consumer = make_consumer(env, f"p{tag[:6]}", handler)
    consumer.subscriptions = {TYPE: Subscription(common_pb2.GeoPoint, handler, prepare=prepare)}
    assert consumer.handle_batch(events) == [True] * 4
    assert effects_of(env, tag) == [(f"s{i % 2}/{tag}", i * 10) for i in range(4)]

    # A prepare that fails for one event: the batch goes back to one at a time; that event is parked.
    tag2 = uuid.uuid4().hex[:8]
    publish(env, [(f"t{i}/{tag2}", i) for i in range(3)])
    later = stream_of(env, tag2)

    def picky(event, payload):
        if payload.latitude == 1:
            raise ValueError("cannot prepare 1")
        return int(payload.latitude) * 10

    consumer.subscriptions = {TYPE: Subscription(common_pb2.GeoPoint, handler, prepare=picky)}
    try:
        assert consumer.handle_batch(later) == [True, False, True]
    finally:
        consumer.stop()
    assert effects_of(env, tag2) == [(f"t0/{tag2}", 0), (f"t2/{tag2}", 20)]
    assert [str(r.event_id) for r in list_parked(env["engine"], env["tables"].dead_letters,
                                                 source=consumer.source)] == [later[1].event_id]
