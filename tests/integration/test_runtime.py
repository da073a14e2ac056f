"""The shared runtime against a real Postgres: idempotency, outbox ordering, feed, consumer."""
from __future__ import annotations

import random
import threading
import time
import uuid

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from smart110.common.v1 import common_pb2, events_pb2
from smart110.intake.v1 import intake_service_pb2 as pb
from services.runtime.app import RuntimeTables
from services.runtime.consumer import FeedConsumer, Subscription
from services.runtime.db import ensure_service_database, make_engine
from services.runtime.errors import AlreadyExists
from services.runtime.feed import Feed
from services.runtime.outbox import Idempotency, Outbox
from tests.conftest import eventually

SCHEMA = "rtcheck"


class Ctx:
    """The part of a grpc ServicerContext the feed uses."""

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
                    Column("event_id", String(60), nullable=False))
    engine = make_engine(url)
    metadata.drop_all(engine)
    metadata.create_all(engine)
    feed = Feed(engine, tables.outbox, url, SCHEMA)
    feed.start()
    yield dict(url=url, engine=engine, tables=tables, effects=effects, feed=feed,
               outbox=Outbox(tables.outbox, SCHEMA), idem=Idempotency(tables.idempotency))
    feed.close()
    engine.dispose()


def request(rid: str, description: str) -> pb.ReportIncidentRequest:
    return pb.ReportIncidentRequest(request_id=rid, report=pb.Report(channel=pb.CHANNEL_PHONE, description=description))


def test_idempotency_same_id_same_answer_different_content_refused(env):
    engine, idem = env["engine"], env["idem"]
    rid = uuid.uuid4().hex
    with engine.begin() as conn:
        assert idem.claim(conn, "M", request(rid, "a"), pb.Report) is None
        idem.remember(conn, "M", request(rid, "a"), pb.Report(name="reports/1"))
    with engine.begin() as conn:
        assert idem.claim(conn, "M", request(rid, "a"), pb.Report).name == "reports/1"
    with engine.begin() as conn, pytest.raises(AlreadyExists):
        idem.claim(conn, "M", request(rid, "b"), pb.Report)


def test_idempotency_rolled_back_attempt_can_be_retried(env):
    engine, idem = env["engine"], env["idem"]
    rid = uuid.uuid4().hex
    with pytest.raises(RuntimeError):
        with engine.begin() as conn:
            assert idem.claim(conn, "M", request(rid, "a"), pb.Report) is None
            raise RuntimeError("handler failed")
    with engine.begin() as conn:
        assert idem.claim(conn, "M", request(rid, "a"), pb.Report) is None


def test_concurrent_duplicates_do_the_work_once(env):
    engine, idem = env["engine"], env["idem"]
    rid = uuid.uuid4().hex
    work_done = []
    answers = []

    def call():
        with engine.begin() as conn:
            cached = idem.claim(conn, "M", request(rid, "a"), pb.Report)
            if cached is None:
                time.sleep(0.2)  # hold the key while the duplicate arrives
                work_done.append(1)
                cached = pb.Report(name=f"reports/{uuid.uuid4().hex}")
                idem.remember(conn, "M", request(rid, "a"), cached)
            answers.append(cached.name)

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(work_done) == 1
    assert len(set(answers)) == 1


def test_feed_delivers_every_event_in_order_under_concurrent_publishers(env):
    engine, outbox, feed = env["engine"], env["outbox"], env["feed"]
    with engine.connect() as conn:
        start = conn.execute(select(func.coalesce(func.max(env["tables"].outbox.c.sequence), 0))).scalar_one()
    received: list[events_pb2.Event] = []
    ctx = Ctx()
    total = 4 * 25

    def reader():
        for event in feed.stream(events_pb2.StreamEventsRequest(after_sequence=start), ctx):
            received.append(event)
            if len(received) >= total:
                return

    def publisher(n):
        rng = random.Random(n)
        for i in range(25):
            with engine.begin() as conn:
                outbox.publish(conn, "test.Happened", f"things/{n}-{i}", common_pb2.GeoPoint(longitude=n, latitude=i))
                time.sleep(rng.random() * 0.005)  # commit late, after others have published

    t = threading.Thread(target=reader)
    t.start()
    pubs = [threading.Thread(target=publisher, args=(n,)) for n in range(4)]
    for p in pubs:
        p.start()
    for p in pubs:
        p.join()
    t.join(timeout=20)
    ctx.active = False
    seqs = [e.sequence for e in received]
    assert len(received) == total
    assert seqs == sorted(seqs) and len(set(seqs)) == total
    point = common_pb2.GeoPoint()
    assert received[0].payload.Unpack(point)
    assert {e.subject for e in received} == {f"things/{n}-{i}" for n in range(4) for i in range(25)}


def test_consumer_applies_each_event_once_and_resumes_from_its_cursor(env):
    engine, outbox, tables, effects, feed = env["engine"], env["outbox"], env["tables"], env["effects"], env["feed"]
    source = f"src{uuid.uuid4().hex[:6]}"
    with engine.begin() as conn:
        for i in range(5):
            outbox.publish(conn, "test.Counted", f"n/{i}", common_pb2.GeoPoint(latitude=i))

    def handler(conn, event, payload):
        conn.execute(effects.insert().values(event_id=event.event_id))

    def open_stream(req):
        return feed.stream(events_pb2.StreamEventsRequest(after_sequence=req.after_sequence, types=list(req.types),
                                                          stop_at_end=True), Ctx())

    consumer = FeedConsumer(source=source, open_stream=open_stream, engine=engine, cursors=tables.cursors,
                            inbox=tables.inbox,
                            subscriptions={"test.Counted": Subscription(common_pb2.GeoPoint, handler)})
    events = list(open_stream(events_pb2.StreamEventsRequest(types=["test.Counted"])))
    batch = events[-5:]
    assert [consumer.apply(e) for e in batch] == [True] * 5
    # At-least-once delivery: the same events again change nothing.
    assert [consumer.apply(e) for e in batch] == [False] * 5
    with engine.connect() as conn:
        ids = [r.event_id for r in conn.execute(select(effects.c.event_id))]
    assert sorted(ids) == sorted(e.event_id for e in batch)
    assert consumer.cursor() == batch[-1].sequence

    # A consumer that was down catches up from its cursor, not from the start.
    with engine.begin() as conn:
        outbox.publish(conn, "test.Counted", "n/late", common_pb2.GeoPoint(latitude=99))
    resumed = list(open_stream(events_pb2.StreamEventsRequest(after_sequence=consumer.cursor(),
                                                              types=["test.Counted"])))
    assert [e.subject for e in resumed] == ["n/late"]


def test_a_read_snapshot_sees_one_state_across_its_queries(env):
    """A resource read in two queries (its row, then its side records) while another transaction
    commits a change to both: the reader sees both before or both after, never a mix."""
    from sqlalchemy.exc import DBAPIError

    from services.runtime.db import read_snapshot

    engine, effects = env["engine"], env["effects"]
    tag = uuid.uuid4().hex

    def count(conn):
        return conn.execute(select(func.count()).select_from(effects).where(effects.c.event_id == tag)).scalar()

    with engine.begin() as conn:
        conn.execute(effects.insert().values(event_id=tag))
    with read_snapshot(engine) as reader:
        first = count(reader)
        with engine.begin() as writer:  # commits between the reader's two queries
            writer.execute(effects.insert().values(event_id=tag))
        second = count(reader)
        with pytest.raises(DBAPIError, match="read-only transaction"):
            reader.execute(effects.insert().values(event_id=tag))
    with engine.connect() as conn:
        assert (first, second, count(conn)) == (1, 1, 2)
    with engine.connect() as conn:  # a plain connection reads what each statement's start saw
        before = count(conn)
        with engine.begin() as writer:
            writer.execute(effects.insert().values(event_id=tag))
        assert (before, count(conn)) == (2, 3)


def _stream_in_thread(feed, after):
    """A live stream from `after` in a thread; returns (received list, context to end it)."""
    received: list[events_pb2.Event] = []
    ctx = Ctx()

    def reader():
        for event in feed.stream(events_pb2.StreamEventsRequest(after_sequence=after), ctx):
            received.append(event)
    threading.Thread(target=reader, daemon=True).start()
    return received, ctx


def _latest(env):
    with env["engine"].connect() as conn:
        return conn.execute(select(func.coalesce(func.max(env["tables"].outbox.c.sequence), 0))).scalar_one()


def test_publishers_do_not_wait_for_each_other_and_the_feed_never_serves_past_one_in_flight(env):
    """A publisher that drew a number and has not committed does not hold up another publisher;
    the later number, committed first, is served only after the earlier one, in order."""
    engine, outbox, feed = env["engine"], env["outbox"], env["feed"]
    start = _latest(env)
    received, ctx = _stream_in_thread(feed, start)
    slow = engine.connect()
    slow_tx = slow.begin()
    first = outbox.publish(slow, "test.Ordered", "ordered/first", common_pb2.GeoPoint(latitude=1))
    t0 = time.monotonic()
    with engine.begin() as conn:  # does not wait for the open transaction
        second = outbox.publish(conn, "test.Ordered", "ordered/second", common_pb2.GeoPoint(latitude=2))
    assert time.monotonic() - t0 < 5, "the second publisher was not held up by the first"
    assert second > first
    time.sleep(0.6)  # longer than the feed waits for publishers in flight at a gap
    assert [e.subject for e in received] == [], "the later number is not served while the earlier is in flight"
    slow_tx.commit()
    slow.close()
    eventually(lambda: len(received) >= 2)
    ctx.active = False
    assert [(e.sequence, e.subject) for e in received[:2]] == [(first, "ordered/first"), (second, "ordered/second")]


def test_a_rolled_back_number_does_not_hold_up_the_feed(env):
    engine, outbox, feed = env["engine"], env["outbox"], env["feed"]
    start = _latest(env)
    received, ctx = _stream_in_thread(feed, start)
    with engine.connect() as conn:
        tx = conn.begin()
        lost = outbox.publish(conn, "test.Ordered", "ordered/rolled-back", common_pb2.GeoPoint(latitude=3))
        tx.rollback()
    with engine.begin() as conn:
        kept = outbox.publish(conn, "test.Ordered", "ordered/kept", common_pb2.GeoPoint(latitude=4))
    assert kept > lost
    eventually(lambda: len(received) >= 1, timeout=3)
    ctx.active = False
    assert [e.subject for e in received] == ["ordered/kept"]


def test_feed_order_holds_with_rollbacks_and_late_commits_mixed_in(env):
    """Many publishers, some committing late, some rolling back: a reader gets every committed event
    once, in ascending order, and none of the rolled-back ones."""
    engine, outbox, feed = env["engine"], env["outbox"], env["feed"]
    start = _latest(env)
    received, ctx = _stream_in_thread(feed, start)
    committed: list[str] = []
    lock = threading.Lock()

    def publisher(n):
        rng = random.Random(100 + n)
        for i in range(30):
            with engine.connect() as conn:
                tx = conn.begin()
                outbox.publish(conn, "test.Mixed", f"mixed/{n}-{i}", common_pb2.GeoPoint(longitude=n, latitude=i))
                time.sleep(rng.random() * 0.01)
                if rng.random() < 0.2:
                    tx.rollback()
                else:
                    tx.commit()
                    with lock:
                        committed.append(f"mixed/{n}-{i}")

    pubs = [threading.Thread(target=publisher, args=(n,)) for n in range(5)]
    for p in pubs:
        p.start()
    for p in pubs:
        p.join()
    eventually(lambda: len([e for e in received if e.subject.startswith("mixed/")]) >= len(committed))
    time.sleep(0.3)
    ctx.active = False
    got = [e for e in received if e.subject.startswith("mixed/")]
    seqs = [e.sequence for e in got]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert sorted(e.subject for e in got) == sorted(committed)


def test_streams_share_one_read_of_each_commit(env, monkeypatch):
    """Four streams at the feed's end follow 40 commits: each gets every event once, in order, while
    the table is read about once per commit, not once per commit and stream."""
    engine, outbox, feed = env["engine"], env["outbox"], env["feed"]
    start = _latest(env)
    reads = {"n": 0}
    original = feed._select

    def counted(*args, **kw):
        reads["n"] += 1
        return original(*args, **kw)
    monkeypatch.setattr(feed, "_select", counted)
    streams = [_stream_in_thread(feed, start) for _ in range(4)]
    time.sleep(0.3)
    reads["n"] = 0
    for i in range(40):
        with engine.begin() as conn:
            outbox.publish(conn, "test.Shared", f"shared/{i}", common_pb2.GeoPoint(latitude=i))
        time.sleep(0.01)
    eventually(lambda: all(len([e for e in got if e.subject.startswith("shared/")]) >= 40
                                 for got, _ in streams))
    for got, ctx in streams:
        ctx.active = False
        subjects = [e.subject for e in got if e.subject.startswith("shared/")]
        assert subjects == [f"shared/{i}" for i in range(40)]
    assert reads["n"] <= 40 * 2, f"{reads['n']} reads of the table for 40 commits and 4 streams"


def test_the_latest_sequence_waits_for_a_publisher_in_flight(env):
    """A stream started "from now" (a big screen, a phone) must not start above a number still in
    flight, or the change that number carries is skipped: the position is read once no publisher is
    in flight."""
    engine, outbox = env["engine"], env["outbox"]
    feed = env["feed"]
    slow = engine.connect()
    slow_tx = slow.begin()
    in_flight = outbox.publish(slow, "test.Latest", "latest/in-flight", common_pb2.GeoPoint(latitude=1))
    with engine.begin() as conn:  # a later number commits first
        later = outbox.publish(conn, "test.Latest", "latest/committed", common_pb2.GeoPoint(latitude=2))
    assert later > in_flight
    got = {}

    def position():
        got["latest"] = feed.latest_sequence()
        got["at"] = time.monotonic()
    t = threading.Thread(target=position)
    t.start()
    time.sleep(0.4)
    committed_at = time.monotonic()
    slow_tx.commit()
    slow.close()
    t.join(10)
    assert got["latest"] >= later
    assert got["at"] >= committed_at, "the position was given while a smaller number was in flight"


def test_a_statement_compiled_once_runs_with_each_executions_parameters_and_keeps_its_own_values(admin_url):
    """compiled_once: an upsert SQLAlchemy would compile on every execution, as SQL text reused with
    each execution's parameters (arrays with casts included); a value written into it stays."""
    from sqlalchemy import ARRAY, bindparam, create_engine
    from sqlalchemy.dialects.postgresql import insert

    from services.runtime.db import compiled_once, sqlalchemy_url

    metadata = MetaData(schema="compiledonce")
    counts = Table("counts", metadata, Column("name", String(20), primary_key=True),
                   Column("kind", String(10), nullable=False), Column("n", Integer, nullable=False))
    engine = create_engine(sqlalchemy_url(admin_url))
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS compiledonce CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA compiledonce")
            metadata.create_all(conn)
        add = insert(counts).from_select(
            ["name", "kind", "n"],
            select(func.unnest(bindparam("names", type_=ARRAY(String(20)))), bindparam("kind", "fixed"),
                   func.unnest(bindparam("ns", type_=ARRAY(Integer)))))
        upsert = compiled_once(add.on_conflict_do_update(
            index_elements=["name"], set_={"n": counts.c.n + add.excluded.n}).returning(counts.c.name, counts.c.n))
        with engine.begin() as conn:
            first = conn.execute(upsert, {"names": ["a", "b"], "ns": [1, 2]}).all()
            second = conn.execute(upsert, {"names": ["b", "c", "d"], "ns": [10, 3, 4]}).all()
            rows = conn.execute(select(counts).order_by(counts.c.name)).all()
        assert sorted(first) == [("a", 1), ("b", 2)]
        assert sorted(second) == [("b", 12), ("c", 3), ("d", 4)]
        assert [tuple(r) for r in rows] == [("a", "fixed", 1), ("b", "fixed", 12), ("c", "fixed", 3), ("d", "fixed", 4)]
        with pytest.raises(ValueError, match="computed"):
            compiled_once(select(bindparam("now", callable_=time.time)))
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS compiledonce CASCADE")
        engine.dispose()
