"""Admission of unary calls: at most `limit` in progress, the rest answered UNAVAILABLE (OVERLOADED) early."""
from __future__ import annotations

import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY

from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime import metrics
from services.runtime.admission import Admission, Overloaded
from services.runtime.config import Settings
from services.runtime.server import create_server
from tests import support

SERVICE = "smart110.referral.v1.ReferralService"
METHOD = f"{SERVICE}/GetWorkOrder"


class Slow(pb_grpc.ReferralServiceServicer):
    """GetWorkOrder holds its slot until the test lets it go."""

    def __init__(self):
        self.entered = threading.Semaphore(0)
        self.release = threading.Event()

    def GetWorkOrder(self, request, context):
        self.entered.release()
        self.release.wait(10)
        return pb.WorkOrder(name=request.name)


def shed() -> float:
    return REGISTRY.get_sample_value("smart110_rpc_shed_total",
                                     {"service": metrics.service(), "method": METHOD}) or 0.0


def in_progress() -> float:
    return REGISTRY.get_sample_value("smart110_rpc_in_progress", {"service": metrics.service()})


def test_a_slot_is_refused_after_its_wait_and_given_again_once_freed():
    gate = Admission(limit=2, wait_seconds=0.05)
    with gate.slot("/s/M"), gate.slot("/s/M"):
        assert gate.in_progress == 2
        with pytest.raises(Overloaded) as refused:
            with gate.slot("/s/M"):
                pass
        assert refused.value.limit == 2
    assert gate.in_progress == 0
    with gate.slot("/s/M"):
        assert gate.in_progress == 1


def test_a_call_near_its_deadline_waits_at_most_half_of_what_is_left():
    gate = Admission(limit=1, wait_seconds=2.0)
    assert gate.budget(None) == 2.0
    assert gate.budget(10.0) == 2.0
    assert gate.budget(1.0) == 0.5
    assert gate.budget(0.01) == 0.0
    with pytest.raises(ValueError):
        Admission(limit=0, wait_seconds=1.0)


@pytest.fixture()
def served():
    servicer = Slow()
    server = create_server(port=0, host="127.0.0.1",
                           services=[(pb_grpc.add_ReferralServiceServicer_to_server, servicer, SERVICE)],
                           admission=Admission(limit=1, wait_seconds=0.1))
    server.start()
    with support.channel(f"127.0.0.1:{server.port}") as channel:
        yield servicer, pb_grpc.ReferralServiceStub(channel), health_pb2_grpc.HealthStub(channel)
    servicer.release.set()
    server.stop(0)


def test_a_call_beyond_the_limit_is_answered_unavailable_at_once_and_the_admitted_one_finishes(served):
    servicer, stub, health = served
    first = stub.GetWorkOrder.future(pb.GetWorkOrderRequest(name="workOrders/first"), timeout=10)
    assert servicer.entered.acquire(timeout=5), "the first call is in progress"
    assert in_progress() == 1
    before = shed()

    with pytest.raises(grpc.RpcError) as err:
        stub.GetWorkOrder(pb.GetWorkOrderRequest(name="workOrders/second"), timeout=10)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    assert support.error_reason(err.value) == "OVERLOADED"
    assert "retry" in err.value.details() and "request_id" in err.value.details()
    assert shed() == before + 1

    # A busy service still answers its health checks.
    assert health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=5).status == \
        health_pb2.HealthCheckResponse.SERVING

    servicer.release.set()
    assert first.result(timeout=10).name == "workOrders/first"
    assert stub.GetWorkOrder(pb.GetWorkOrderRequest(name="workOrders/third"), timeout=10).name == "workOrders/third"
    assert in_progress() == 0


def test_the_limit_must_leave_worker_threads_for_streams_and_waiting_calls(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://x@/y")
    monkeypatch.setenv("GRPC_MAX_WORKERS", "16")
    monkeypatch.setenv("GRPC_MAX_CONCURRENT_CALLS", "16")
    with pytest.raises(SystemExit, match="GRPC_MAX_CONCURRENT_CALLS=16"):
        Settings.from_env("referral")
    monkeypatch.setenv("GRPC_MAX_CONCURRENT_CALLS", "8")
    settings = Settings.from_env("referral")
    assert (settings.max_workers, settings.max_concurrent_calls) == (16, 8)
