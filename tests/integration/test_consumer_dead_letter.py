"""Feed consumers park poison events in their dead-letter table and keep order per subject, and operators
list, replay and discard them through FeedAdminService (real Postgres)."""
from __future__ import annotations

import threading
import time
import uuid

import grpc
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Column, Integer, MetaData, String, Table, select

from smart110.common.v1 import common_pb2, events_pb2
from smart110.common.v1 import feed_admin_pb2 as fa_pb
from smart110.common.v1 import feed_admin_pb2_grpc as fa_grpc
from services.runtime import metrics
from services.runtime.app import Runtime, RuntimeTables, ServiceSpec, assemble
from services.runtime.config import Settings
from services.runtime.consumer import (
    FeedConsumer, Subscription, discard_parked, list_parked, replay_parked,
)
from services.runtime.db import ensure_service_database, make_engine
from services.runtime.errors import FailedPrecondition, Unavailable
from services.runtime.feed import Feed
from services.runtime.outbox import Idempotency, Outbox
from services.runtime.server import create_server
from tests import support
from tests.conftest import eventually

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


class _Down(grpc.RpcError):
    def code(self):
        return grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("outage", [
    lambda: Unavailable("intake could not locate the point (UNAVAILABLE); retry later", reason="INTAKE_UNAVAILABLE"),
    _Down,
], ids=["wrapped-by-a-client", "raw-grpc"])
def test_a_dependency_outage_is_waited_out_never_parked(env, outage):
    """A prepare step whose callee is down (a service restarting) is not a poison event: however many
    tries it takes, the event is applied once the callee is back, and nothing is parked."""
    engine, tables, effects, feed, outbox = env["engine"], env["tables"], env["effects"], env["feed"], env["outbox"]
    source = f"src{uuid.uuid4().hex[:6]}"
    tag = uuid.uuid4().hex[:8]
    with engine.begin() as conn:
        outbox.publish(conn, "test.NeedsCallee", f"d/{tag}", common_pb2.GeoPoint(latitude=1))
    down = {"tries": 0}

    def prepare(event, payload):
        down["tries"] += 1
        if down["tries"] <= 6:  # more than max_attempts: would be parked if it counted as poison
            raise outage()
        return "located"

    def handler(conn, event, payload, prepared):
        assert prepared == "located"
        conn.execute(effects.insert().values(subject=event.subject, event_id=event.event_id))

    def open_stream(req):
        return feed.stream(events_pb2.StreamEventsRequest(after_sequence=req.after_sequence, types=list(req.types),
                                                          stop_at_end=True), Ctx())

    consumer = FeedConsumer(source=source, open_stream=open_stream, engine=engine, cursors=tables.cursors,
                            inbox=tables.inbox, dead_letters=tables.dead_letters, max_attempts=3,
                            retry_backoff=0.01,
                            subscriptions={"test.NeedsCallee": Subscription(common_pb2.GeoPoint, handler, prepare)})
    event = [e for e in open_stream(events_pb2.StreamEventsRequest(types=["test.NeedsCallee"]))
             if e.subject.endswith(tag)][0]
    outcomes = []
    for _ in range(10):
        try:
            outcomes.append(consumer.handle(event))
            break
        except (Unavailable, grpc.RpcError):
            outcomes.append("backed off")  # what the run loop does: wait, reopen from the cursor, try again
    assert outcomes == ["backed off"] * 6 + [True]
    assert list_parked(engine, tables.dead_letters, source=source) == []
    with engine.connect() as conn:
        assert [r.event_id for r in conn.execute(select(effects.c.event_id).where(
            effects.c.subject == f"d/{tag}"))] == [event.event_id]


def test_the_feed_lag_grows_while_a_consumer_is_stuck_and_is_zero_once_it_catches_up(env):
    """smart110_feed_lag_seconds is the age of the oldest event read but not applied: while a
    dependency is down it keeps growing (it is read when scraped), not frozen at the last apply."""
    engine, tables, effects, feed, outbox = env["engine"], env["tables"], env["effects"], env["feed"], env["outbox"]
    source = f"src{uuid.uuid4().hex[:6]}"
    tag = uuid.uuid4().hex[:8]
    with engine.begin() as conn:
        outbox.publish(conn, "test.Lagging", f"l/{tag}", common_pb2.GeoPoint(latitude=1))
    down, tried = threading.Event(), threading.Event()
    down.set()

    def prepare(event, payload):
        tried.set()
        if down.is_set():
            raise Unavailable("the callee is restarting", reason="CALLEE_UNAVAILABLE")
        return None

    def handler(conn, event, payload, prepared):
        conn.execute(effects.insert().values(subject=event.subject, event_id=event.event_id))

    consumer = FeedConsumer(source=source, open_stream=lambda req: feed.stream(req, Ctx()), engine=engine,
                            cursors=tables.cursors, inbox=tables.inbox, dead_letters=tables.dead_letters,
                            retry_backoff=0.01, subscriptions={"test.Lagging": Subscription(common_pb2.GeoPoint,
                                                                                            handler, prepare)})
    event = [e for e in feed.stream(events_pb2.StreamEventsRequest(types=["test.Lagging"], stop_at_end=True), Ctx())
             if e.subject.endswith(tag)][0]
    occurred = event.occur_time.seconds + event.occur_time.nanos / 1e9
    consumer.start()
    try:
        assert tried.wait(30)
        for _ in range(2):  # each reading is the event's age at that moment
            before = time.time()
            lag = consumer.lag_seconds()
            assert lag >= before - occurred > 0
            exported = REGISTRY.get_sample_value("smart110_feed_lag_seconds",
                                                 {"service": metrics.service(), "source": source})
            assert exported >= lag
        down.clear()
        eventually(lambda: consumer.cursor() >= event.sequence and consumer.lag_seconds() == 0.0)
    finally:
        consumer.stop()


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


# -- the operator RPC: FeedAdminService ------------------------------------------------------

SRE = support.caller(["sre"], sub="ops-1", name="值班运维甲")
DISPATCHER = support.caller(["dispatcher"], sub="d-1")


@pytest.fixture()
def admin(env):
    """This schema's runtime as a consuming service serves it: one consumer, FeedAdminService over gRPC."""
    engine, tables, effects, feed, outbox = env["engine"], env["tables"], env["effects"], env["feed"], env["outbox"]
    source = f"src{uuid.uuid4().hex[:6]}"
    broken = {"on": True}
    calls = []

    def handler(conn, event, payload):
        calls.append(event.event_id)
        if broken["on"] and payload.latitude == 0:
            raise ValueError("cannot handle latitude 0")
        conn.execute(effects.insert().values(subject=event.subject, event_id=event.event_id))

    def open_stream(req):
        return feed.stream(events_pb2.StreamEventsRequest(after_sequence=req.after_sequence, types=list(req.types),
                                                          stop_at_end=True), Ctx())

    rt = Runtime(settings=Settings(service=SCHEMA, grpc_port=0, database_url="unused"), engine=engine,
                 tables=tables, outbox=outbox, idempotency=Idempotency(tables.idempotency), feed=feed)

    def build(runtime):
        runtime.consumers.append(FeedConsumer(
            source=source, open_stream=open_stream, engine=engine, cursors=tables.cursors, inbox=tables.inbox,
            dead_letters=tables.dead_letters, max_attempts=2, retry_backoff=0.01,
            subscriptions={"test.Poisoned": Subscription(common_pb2.GeoPoint, handler)}))
        return []

    servicers = assemble(ServiceSpec(name=SCHEMA, metadata=MetaData(), tables=tables, migrations=None, build=build),
                         rt)
    assert [name for _, _, name in servicers] == ["smart110.common.v1.FeedAdminService"]
    server = create_server(port=0, host="127.0.0.1", services=servicers)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    try:
        yield dict(stub=fa_grpc.FeedAdminServiceStub(channel), consumer=rt.consumers[0], source=source,
                   broken=broken, calls=calls, parent=f"feedConsumers/{SCHEMA}")
    finally:
        channel.close()
        server.stop(1)


def park_three(env, admin):
    """A poison event, one of another subject (applied), and one of the poison's subject behind it."""
    tag = uuid.uuid4().hex[:8]
    with env["engine"].begin() as conn:
        for i, subject in enumerate((f"a/{tag}", f"b/{tag}", f"a/{tag}")):
            env["outbox"].publish(conn, "test.Poisoned", subject, common_pb2.GeoPoint(latitude=i))
    events = [e for e in admin["consumer"].open_stream(events_pb2.StreamEventsRequest(types=["test.Poisoned"]))
              if e.subject.endswith(tag)]
    assert [admin["consumer"].handle(e) for e in events] == [False, True, False]
    return events


def effects_of(env, subject: str) -> list[str]:
    effects = env["effects"]
    with env["engine"].connect() as conn:
        return [r.event_id for r in conn.execute(select(effects.c.event_id).where(effects.c.subject == subject)
                                                 .order_by(effects.c.id))]


def test_an_operator_lists_replays_after_the_fix_and_discards_with_a_reason(env, admin):
    stub, parent = admin["stub"], admin["parent"]
    poison, _other, behind = park_three(env, admin)

    def name(event):
        return f"{parent}/parkedEvents/{event.event_id}"

    listed = stub.ListParkedEvents(fa_pb.ListParkedEventsRequest(
        parent=parent, source=admin["source"], status=fa_pb.PARKED_EVENT_STATUS_PARKED), metadata=SRE)
    assert [p.name for p in listed.parked_events] == [name(poison), name(behind)]
    first = listed.parked_events[0]
    assert (first.source, first.attempts, first.status) == (admin["source"], 2, fa_pb.PARKED_EVENT_STATUS_PARKED)
    assert first.event == poison and first.error.startswith("ValueError: cannot handle latitude 0")
    assert not first.HasField("resolution")
    assert listed.parked_events[1].error == f"waiting behind parked event {poison.event_id}"
    # Paged: one at a time, the token leads to the next.
    page = stub.ListParkedEvents(fa_pb.ListParkedEventsRequest(parent=parent, source=admin["source"], page_size=1),
                                 metadata=SRE)
    assert [p.name for p in page.parked_events] == [name(poison)] and page.next_page_token
    rest = stub.ListParkedEvents(fa_pb.ListParkedEventsRequest(parent=parent, source=admin["source"], page_size=1,
                                                               page_token=page.next_page_token), metadata=SRE)
    assert [p.name for p in rest.parked_events] == [name(behind)]

    # The one behind cannot go first; the poison, before the fix, fails again and stays parked.
    with pytest.raises(grpc.RpcError) as err:
        stub.ReplayParkedEvent(fa_pb.ReplayParkedEventRequest(request_id="r-behind", name=name(behind)), metadata=SRE)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert support.error_reason(err.value) == "PARKED_EVENT_WAITING"
    with pytest.raises(grpc.RpcError) as err:
        stub.ReplayParkedEvent(fa_pb.ReplayParkedEventRequest(request_id="r-early", name=name(poison)), metadata=SRE)
    assert (err.value.code(), support.error_reason(err.value)) == (grpc.StatusCode.FAILED_PRECONDITION,
                                                                    "REPLAY_FAILED")
    again = list_parked(env["engine"], env["tables"].dead_letters, source=admin["source"])[0]
    assert (again.status, again.attempts) == ("parked", 3)

    # After the fix: replayed once, audited; a retry with the same request id gets the same answer.
    admin["broken"]["on"] = False
    request = fa_pb.ReplayParkedEventRequest(request_id="r-fixed", name=name(poison), reason="修复了纬度为0的处理")
    replayed = stub.ReplayParkedEvent(request, metadata=SRE)
    assert replayed.status == fa_pb.PARKED_EVENT_STATUS_REPLAYED
    stamp = replayed.resolution
    assert (stamp.actor, list(stamp.roles), stamp.reason) == ("ops-1", ["sre"], "修复了纬度为0的处理")
    assert stamp.HasField("time")
    assert stub.ReplayParkedEvent(request, metadata=SRE) == replayed
    assert effects_of(env, poison.subject) == [poison.event_id]
    with pytest.raises(grpc.RpcError) as err:
        stub.ReplayParkedEvent(fa_pb.ReplayParkedEventRequest(request_id="r-twice", name=name(poison)), metadata=SRE)
    assert (err.value.code(), support.error_reason(err.value)) == (grpc.StatusCode.FAILED_PRECONDITION,
                                                                    "PARKED_EVENT_RESOLVED")

    # Discarding needs a reason; with one it is kept for the record, never applied.
    with pytest.raises(grpc.RpcError) as err:
        stub.DiscardParkedEvent(fa_pb.DiscardParkedEventRequest(request_id="d-1", name=name(behind), reason="  "),
                                metadata=SRE)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and support.field_violations(err.value) == ["reason"]
    discarded = stub.DiscardParkedEvent(fa_pb.DiscardParkedEventRequest(
        request_id="d-2", name=name(behind), reason="已被后续报警覆盖"), metadata=SRE)
    assert discarded.status == fa_pb.PARKED_EVENT_STATUS_DISCARDED
    assert (discarded.resolution.actor, discarded.resolution.reason) == ("ops-1", "已被后续报警覆盖")
    assert effects_of(env, poison.subject) == [poison.event_id]
    rows = {str(r.event_id): r for r in list_parked(env["engine"], env["tables"].dead_letters,
                                                    source=admin["source"], status=None)}
    row = rows[behind.event_id]
    assert (row.status, row.resolved_by, list(row.resolved_roles), row.resolve_reason) == (
        "discarded", "ops-1", ["sre"], "已被后续报警覆盖")
    assert row.resolve_time is not None
    assert rows[poison.event_id].resolve_reason == "修复了纬度为0的处理"
    # Nothing waits any more.
    left = stub.ListParkedEvents(fa_pb.ListParkedEventsRequest(
        parent=parent, source=admin["source"], status=fa_pb.PARKED_EVENT_STATUS_PARKED), metadata=SRE)
    assert list(left.parked_events) == []


def test_parked_events_are_for_operators_only(env, admin):
    stub, parent = admin["stub"], admin["parent"]
    poison, _other, _behind = park_three(env, admin)
    name = f"{parent}/parkedEvents/{poison.event_id}"
    calls = [
        lambda md: stub.ListParkedEvents(fa_pb.ListParkedEventsRequest(parent=parent), metadata=md),
        lambda md: stub.ReplayParkedEvent(fa_pb.ReplayParkedEventRequest(request_id="x-1", name=name), metadata=md),
        lambda md: stub.DiscardParkedEvent(fa_pb.DiscardParkedEventRequest(request_id="x-2", name=name,
                                                                           reason="不需要"), metadata=md),
    ]
    for call in calls:
        for metadata in (DISPATCHER, support.caller(["service"])):  # a user without the role; a service
            with pytest.raises(grpc.RpcError) as err:
                call(metadata)
            assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.RpcError) as err:
            call(())
        assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    row = {str(r.event_id): r for r in list_parked(env["engine"], env["tables"].dead_letters,
                                                   source=admin["source"])}[poison.event_id]
    assert row.status == "parked" and row.attempts == 2


def test_bad_names_unknown_events_and_another_service(env, admin):
    stub, parent = admin["stub"], admin["parent"]

    def fails(call) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as err:
            call()
        return err.value

    err = fails(lambda: stub.ReplayParkedEvent(fa_pb.ReplayParkedEventRequest(
        request_id="n-1", name=f"{parent}/parkedEvents/{uuid.uuid4()}"), metadata=SRE))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = fails(lambda: stub.DiscardParkedEvent(fa_pb.DiscardParkedEventRequest(
        request_id="n-2", name=f"{parent}/parkedEvents/{uuid.uuid4()}", reason="测试"), metadata=SRE))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = fails(lambda: stub.ReplayParkedEvent(fa_pb.ReplayParkedEventRequest(
        name=f"{parent}/parkedEvents/not-a-uuid"), metadata=SRE))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert support.field_violations(err) == ["request_id", "name"]
    err = fails(lambda: stub.ListParkedEvents(fa_pb.ListParkedEventsRequest(parent="feedConsumers/alerts"),
                                              metadata=SRE))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and support.field_violations(err) == ["parent"]
    err = fails(lambda: stub.ListParkedEvents(fa_pb.ListParkedEventsRequest(), metadata=SRE))
    assert support.field_violations(err) == ["parent"]
