"""Feed consumers park poison events in their dead-letter table and keep order per subject (real Postgres)."""
from __future__ import annotations

import threading
import time
import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from smart110.common.v1 import common_pb2, events_pb2
from services.runtime import metrics
from services.runtime.app import RuntimeTables
from services.runtime.consumer import (
    FeedConsumer, Subscription, discard_parked, list_parked, replay_parked,
)
from services.runtime.db import ensure_service_database, make_engine
from services.runtime.errors import FailedPrecondition
from services.runtime.feed import Feed
from services.runtime.outbox import Outbox

SCHEMA = "dlcheck"


class Ctx:
    def __init__(self):
        self.active = True

    def is_active(self):
        return self.active


@pytest.fixture(scope="module")
def env(admin_url):
    url = ensure_service_database(admin_url, SCHEMA, "pw")
    metadata = MetaData(schema=SCHEMA)
    tables = RuntimeTables.add_to(metadata)
    effects = Table("effects", metadata, Column("id", Integer, primary_key=True, autoincrement=True),
                    Column("subject", String(200), nullable=False), Column("event_id", String(60), nullable=False))
    engine = make_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    feed = Feed(engine, tables.outbox, url, SCHEMA)
    feed.start()
    yield dict(engine=engine, tables=tables, effects=effects, feed=feed, outbox=Outbox(tables.outbox, SCHEMA))
    feed.close()
    engine.dispose()


def parked_count(source: str) -> float:
    return REGISTRY.get_sample_value("smart110_feed_events_parked_total",
                                     {"service": metrics.service(), "source": source}) or 0.0


def test_poison_event_is_parked_others_go_on_and_its_subject_waits(env):
    engine, tables, effects, feed, outbox = env["engine"], env["tables"], env["effects"], env["feed"], env["outbox"]
    source = f"src{uuid.uuid4().hex[:6]}"
    tag = uuid.uuid4().hex[:8]
    subjects = [f"a/{tag}", f"b/{tag}", f"a/{tag}", f"c/{tag}"]
    with engine.begin() as conn:
        for i, subject in enumerate(subjects):
            outbox.publish(conn, "test.Poisoned", subject, common_pb2.GeoPoint(latitude=i))
    broken = {"on": True}
    calls = []

    def handler(conn, event, payload):
        calls.append(event.event_id)
        if broken["on"] and payload.latitude == 0:
            raise ValueError("cannot handle latitude 0\n" + "x" * 5000)
        conn.execute(effects.insert().values(subject=event.subject, event_id=event.event_id))

    def open_stream(req):
        return feed.stream(events_pb2.StreamEventsRequest(after_sequence=req.after_sequence, types=list(req.types),
                                                          stop_at_end=True), Ctx())

    consumer = FeedConsumer(source=source, open_stream=open_stream, engine=engine, cursors=tables.cursors,
                            inbox=tables.inbox, dead_letters=tables.dead_letters, max_attempts=3,
                            retry_backoff=0.01,
                            subscriptions={"test.Poisoned": Subscription(common_pb2.GeoPoint, handler)})
    events = [e for e in open_stream(events_pb2.StreamEventsRequest(types=["test.Poisoned"]))
              if e.subject.endswith(tag)]
    assert [e.subject for e in events] == subjects
    before = parked_count(source)

    assert [consumer.handle(e) for e in events] == [False, True, False, True]
    poison, other, behind, last = events
    assert calls.count(poison.event_id) == 3  # bounded attempts
    assert behind.event_id not in calls  # never applied out of order
    assert consumer.cursor() == last.sequence  # the feed went on
    assert parked_count(source) - before == 2

    rows = {str(r.event_id): r for r in list_parked(engine, tables.dead_letters, source=source)}
    assert set(rows) == {poison.event_id, behind.event_id}
    first = rows[poison.event_id]
    assert (first.attempts, first.status, first.subject, first.sequence) == (3, "parked", poison.subject, poison.sequence)
    assert first.error.startswith("ValueError: cannot handle latitude 0") and len(first.error) <= 2000
    assert events_pb2.Event.FromString(first.payload) == poison
    assert rows[behind.event_id].error == f"waiting behind parked event {poison.event_id}"
    with engine.connect() as conn:
        applied = {r.event_id for r in conn.execute(select(effects.c.event_id))}
    assert applied >= {other.event_id, last.event_id} and not applied & {poison.event_id, behind.event_id}

    # Redelivery of a parked event changes nothing (its inbox row was written with the park).
    assert consumer.handle(poison) is False
    # A later event of the parked subject waits too; one of another subject is applied.
    with engine.begin() as conn:
        outbox.publish(conn, "test.Poisoned", f"a/{tag}", common_pb2.GeoPoint(latitude=7))
    later = [e for e in open_stream(events_pb2.StreamEventsRequest(after_sequence=last.sequence,
                                                                   types=["test.Poisoned"]))][-1]
    assert consumer.handle(later) is False
    assert len(list_parked(engine, tables.dead_letters, source=source)) == 3

    # The operator: the one behind cannot go first; after the fix the poison replays once.
    with pytest.raises(FailedPrecondition):
        replay_parked(consumer, behind.event_id)
    broken["on"] = False
    replay_parked(consumer, poison.event_id, actor="ops")
    with pytest.raises(FailedPrecondition):
        replay_parked(consumer, poison.event_id)  # only once
    replay_parked(consumer, behind.event_id)
    discard_parked(engine, tables.dead_letters, later.event_id, "superseded by a newer report", "ops-lead")
    with engine.connect() as conn:
        applied = [r.event_id for r in conn.execute(select(effects.c.event_id).where(effects.c.subject == f"a/{tag}")
                                                    .order_by(effects.c.id))]
    assert applied == [poison.event_id, behind.event_id]
    all_rows = {str(r.event_id): r for r in list_parked(engine, tables.dead_letters, source=source, status=None)}
    assert [all_rows[e.event_id].status for e in (poison, behind, later)] == ["replayed", "replayed", "discarded"]
    assert all_rows[poison.event_id].resolve_time is not None
    gone = all_rows[later.event_id]
    assert (gone.resolve_reason, gone.resolved_by) == ("superseded by a newer report", "ops-lead")
    assert gone.resolve_time is not None
    assert list_parked(engine, tables.dead_letters, source=source) == []


def test_stop_with_a_generator_stream_completes(env):
    engine, tables = env["engine"], env["tables"]
    source = f"gen{uuid.uuid4().hex[:6]}"
    yielded = threading.Event()

    def open_stream(req):
        def events():  # like an instrumented stream: a generator, without cancel()
            n = req.after_sequence
            while True:
                n += 1
                yield events_pb2.Event(event_id=str(uuid.uuid4()), sequence=n, type="test.Unwanted", subject="x")
                yielded.set()
                time.sleep(0.02)
        return events()

    consumer = FeedConsumer(source=source, open_stream=open_stream, engine=engine, cursors=tables.cursors,
                            inbox=tables.inbox, dead_letters=tables.dead_letters, subscriptions={})
    consumer.start()
    assert yielded.wait(10)
    consumer.stop()  # no AttributeError: 'generator' object has no attribute 'cancel'
    assert not consumer._thread.is_alive()
