"""Graceful shutdown: NOT_SERVING at once, calls still served for the readiness grace, in-flight
calls finished, then stopped."""
from __future__ import annotations

import threading
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime.server import create_server
from tests import support

SLOW = "/smart110.test.Slow/Wait"


def slow_service(started: threading.Event):
    def wait(request: bytes, _context) -> bytes:
        started.set()
        time.sleep(1.5)
        return b"done:" + request

    handler = grpc.method_handlers_generic_handler("smart110.test.Slow", {
        "Wait": grpc.unary_unary_rpc_method_handler(wait),
    })
    return (lambda _servicer, server: server.add_generic_rpc_handlers((handler,)), None, "smart110.test.Slow")


def test_a_stopping_server_stays_up_for_the_readiness_grace_and_finishes_in_flight_calls():
    started = threading.Event()
    server = create_server(port=0, host="127.0.0.1", services=[slow_service(started)], max_workers=8)
    cleaned = []
    server.on_stop(lambda: cleaned.append(True))
    server.start()
    with support.channel(f"127.0.0.1:{server.port}") as channel:
        health = health_pb2_grpc.HealthStub(channel)
        slow = channel.unary_unary(SLOW)
        in_flight = slow.future(b"first", timeout=10)
        assert started.wait(5)

        stopper = threading.Thread(target=server.stop, kwargs={"grace": 5, "readiness": 3.0})
        stopper.start()
        time.sleep(0.2)
        # NOT_SERVING, yet a new call is still accepted and answered.
        assert health.Check(health_pb2.HealthCheckRequest(), timeout=2).status == \
            health_pb2.HealthCheckResponse.NOT_SERVING
        assert slow(b"second", timeout=10) == b"done:second"
        assert in_flight.result() == b"done:first"
        stopper.join(15)
        assert not stopper.is_alive() and cleaned == [True]
        try:
            health.Check(health_pb2.HealthCheckRequest(), timeout=1)
            raise AssertionError("the server still answers after stopping")
        except grpc.RpcError as err:
            assert err.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
