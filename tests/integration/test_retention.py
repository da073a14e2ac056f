"""Retention against a real Postgres: old outbox events, inbox rows and idempotency keys are
pruned past their horizons, the newest event is kept, a cursor behind the pruned part is told
so, and two replicas never prune at once."""
from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import MetaData, func, select, text, update

from smart110.common.v1 import common_pb2, events_pb2
from services.runtime.app import RuntimeTables
from services.runtime.db import ensure_service_database, make_engine
from services.runtime.errors import OutOfRange
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
                          marks=tables.marks, horizons=Horizons(outbox=timedelta(days=30), inbox=timedelta(days=14),
                                                                idempotency=timedelta(days=7)), batch=3)
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
