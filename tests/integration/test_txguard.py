"""txguard: an outbound gRPC call inside a database transaction is refused."""
from __future__ import annotations

import uuid
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from sqlalchemy import MetaData, text

from smart110.common.v1 import events_pb2
from services.runtime import txguard
from services.runtime.app import RuntimeTables
from services.runtime.consumer import FeedConsumer, Subscription
from services.runtime.db import ensure_service_database, make_engine, read_snapshot
from services.runtime.txguard import OutboundCallInTransaction
from tests import support


@pytest.fixture(scope="module")
def engine(admin_url):
    eng = make_engine(ensure_service_database(admin_url, "txguardcheck", "pw"), pool_size=2)
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def stub():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    health_pb2_grpc.add_HealthServicer_to_server(health.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = txguard.guard(support.channel(f"127.0.0.1:{port}"))
    yield health_pb2_grpc.HealthStub(channel)
    channel.close()
    server.stop(None)


def call(stub):
    return stub.Check(health_pb2.HealthCheckRequest(), timeout=5)


def watch(stub):
    return next(iter(stub.Watch(health_pb2.HealthCheckRequest(), timeout=5)))


@pytest.mark.parametrize("rpc", [call, watch], ids=["unary", "stream"])
def test_call_inside_a_transaction_is_refused(engine, stub, rpc, monkeypatch):
    monkeypatch.delenv("SMART110_TXGUARD", raising=False)
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
        with pytest.raises(OutboundCallInTransaction, match="grpc.health.v1.Health"):
            rpc(stub)
    with read_snapshot(engine) as conn:  # read-only snapshots count too
        with pytest.raises(OutboundCallInTransaction):
            rpc(stub)


def test_call_outside_a_transaction_goes_ahead(engine, stub):
    assert call(stub).status == health_pb2.HealthCheckResponse.SERVING
    with engine.begin() as conn:
        conn.execute(text("SELECT 1"))
    # committed and rolled back transactions no longer count
    with pytest.raises(ZeroDivisionError):
        with engine.begin() as conn:
            conn.execute(text("SELECT 1"))
            1 / 0
    with engine.connect() as conn:  # autobegin, closed without commit
        conn.execute(text("SELECT 1"))
    assert txguard.open_transactions() == 0
    assert call(stub).status == health_pb2.HealthCheckResponse.SERVING
    assert watch(stub).status == health_pb2.HealthCheckResponse.SERVING


def test_log_mode_warns_and_calls(engine, stub, monkeypatch, caplog):
    monkeypatch.setenv("SMART110_TXGUARD", "log")
    with engine.begin():
        assert call(stub).status == health_pb2.HealthCheckResponse.SERVING
    assert "inside 1 open database transaction" in caplog.text


def test_consumer_prepare_calls_out_before_the_transaction(engine, stub):
    metadata = MetaData(schema="txguardcheck")
    tables = RuntimeTables.add_to(metadata)
    metadata.create_all(engine)
    seen = []

    def prepare(event, payload):
        return call(stub).status

    def handler(conn, event, payload, prepared=None):
        seen.append(prepared)

    def calling_handler(conn, event, payload):
        call(stub)

    consumer = FeedConsumer(source="guarded", open_stream=lambda req: iter(()), engine=engine,
                            cursors=tables.cursors, inbox=tables.inbox, subscriptions={
                                "test.Prepared": Subscription(health_pb2.HealthCheckRequest, handler, prepare=prepare),
                                "test.Inside": Subscription(health_pb2.HealthCheckRequest, calling_handler)})

    def event(kind: str, seq: int) -> events_pb2.Event:
        e = events_pb2.Event(event_id=str(uuid.uuid4()), type=kind, sequence=seq, subject="s")
        e.payload.Pack(health_pb2.HealthCheckRequest(service="x"))
        return e

    assert consumer.apply(event("test.Prepared", 1)) is True
    assert seen == [health_pb2.HealthCheckResponse.SERVING]
    with pytest.raises(OutboundCallInTransaction):
        consumer.apply(event("test.Inside", 2))
    assert txguard.open_transactions() == 0
