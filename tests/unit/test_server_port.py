"""A service's gRPC port: refused when taken, shared only when a rolling update asks for it."""
from __future__ import annotations

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.config import Settings
from services.runtime.server import create_server
from tests import support


def test_a_taken_port_is_reported_unless_both_processes_share_it():
    first = create_server(port=0, host="127.0.0.1", services=[])
    try:
        with pytest.raises(SystemExit, match="taken"):
            create_server(port=first.port, host="127.0.0.1", services=[])
    finally:
        first.stop(0)

    old = create_server(port=0, host="127.0.0.1", services=[], reuse_port=True)
    old.start()
    new = create_server(port=old.port, host="127.0.0.1", services=[], reuse_port=True)
    assert new.port == old.port
    new.start()
    old.stop(0)  # the old process drains; callers reach the replacement on the same address
    try:
        with support.channel(f"127.0.0.1:{new.port}") as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == \
                health_pb2.HealthCheckResponse.SERVING
    finally:
        new.stop(0)


def test_grpc_reuse_port_is_off_unless_set_and_a_wrong_value_is_named(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@/y")
    monkeypatch.delenv("GRPC_REUSE_PORT", raising=False)
    assert Settings.from_env("intake").reuse_port is False
    monkeypatch.setenv("GRPC_REUSE_PORT", "1")
    assert Settings.from_env("intake").reuse_port is True
    monkeypatch.setenv("GRPC_REUSE_PORT", "sometimes")
    with pytest.raises(SystemExit, match="GRPC_REUSE_PORT"):
        Settings.from_env("intake")
