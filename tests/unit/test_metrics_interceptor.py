"""The runtime's interceptor records every RPC with its final status code, unary and streaming."""
from __future__ import annotations

import grpc
import pytest
from prometheus_client import REGISTRY

from smart110.common.v1 import events_pb2
from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime import metrics
from services.runtime.errors import NotFound
from services.runtime.server import create_server
from tests import support

SERVICE = "smart110.referral.v1.ReferralService"


class Referral(pb_grpc.ReferralServiceServicer):
    def GetWorkOrder(self, request, context):
        raise NotFound(request.name)

    def StreamEvents(self, request, context):
        for seq in range(1, request.after_sequence + 1):
            yield events_pb2.Event(sequence=seq, type="test.Happened")
        if request.stop_at_end:
            return
        raise NotFound("feeds/test")


STREAMS = {"StreamEvents"}


def kind(method: str) -> str:
    """What the samples say the call is: streams are kept apart from unary calls."""
    return "server_stream" if method in STREAMS else "unary"


def requests(method: str, code: str) -> float:
    return REGISTRY.get_sample_value("smart110_rpc_requests_total",
                                     {"service": metrics.service(), "method": f"{SERVICE}/{method}",
                                      "grpc_type": kind(method), "code": code}) or 0.0


def durations(method: str) -> float:
    return REGISTRY.get_sample_value("smart110_rpc_duration_seconds_count",
                                     {"service": metrics.service(), "method": f"{SERVICE}/{method}",
                                      "grpc_type": kind(method)}) or 0.0


@pytest.fixture(scope="module")
def stub():
    server = create_server(port=0, host="127.0.0.1",
                           services=[(pb_grpc.add_ReferralServiceServicer_to_server, Referral(), SERVICE)])
    server.start()
    with support.channel(f"127.0.0.1:{server.port}") as channel:
        yield pb_grpc.ReferralServiceStub(channel)
    server.stop(0)


def test_a_failing_handler_is_recorded_as_not_found(stub):
    # Counters are process-wide: other tests in this process may have called it too.
    before, ok, timed = requests("GetWorkOrder", "NOT_FOUND"), requests("GetWorkOrder", "OK"), durations("GetWorkOrder")
    with pytest.raises(grpc.RpcError) as err:
        stub.GetWorkOrder(pb.GetWorkOrderRequest(name="workOrders/x"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert requests("GetWorkOrder", "NOT_FOUND") == before + 1
    assert requests("GetWorkOrder", "OK") == ok
    assert durations("GetWorkOrder") == timed + 1


def test_an_unbuilt_rpc_is_recorded_as_unimplemented(stub):
    before = requests("ListWorkOrders", "UNIMPLEMENTED")
    with pytest.raises(grpc.RpcError):
        stub.ListWorkOrders(pb.ListWorkOrdersRequest())
    assert requests("ListWorkOrders", "UNIMPLEMENTED") == before + 1


def test_a_stream_is_recorded_when_it_ends_with_its_final_code(stub):
    ok, failed = requests("StreamEvents", "OK"), requests("StreamEvents", "NOT_FOUND")
    events = list(stub.StreamEvents(events_pb2.StreamEventsRequest(after_sequence=3, stop_at_end=True)))
    assert [e.sequence for e in events] == [1, 2, 3]
    assert requests("StreamEvents", "OK") == ok + 1

    call = stub.StreamEvents(events_pb2.StreamEventsRequest(after_sequence=2))
    received = []
    with pytest.raises(grpc.RpcError) as err:
        for event in call:
            received.append(event.sequence)
    assert received == [1, 2] and err.value.code() == grpc.StatusCode.NOT_FOUND
    assert requests("StreamEvents", "NOT_FOUND") == failed + 1
    assert requests("StreamEvents", "OK") == ok + 1


def test_sla_stages_are_checked():
    labels = {"service": metrics.service(), "stage": "answer", "priority": "", "channel": ""}
    before = REGISTRY.get_sample_value("smart110_sla_seconds_count", labels) or 0.0
    metrics.observe_sla("answer", 12.5)
    assert REGISTRY.get_sample_value("smart110_sla_seconds_count", labels) == before + 1
    with pytest.raises(ValueError):
        metrics.observe_sla("lunch", 1)


def sla_count(**labels) -> float:
    return REGISTRY.get_sample_value("smart110_sla_seconds_count", {"service": metrics.service(), **labels}) or 0.0


def test_sla_figures_carry_a_bounded_priority_and_channel():
    known = dict(stage="accept", priority="2", channel="SMS")
    unknown = dict(stage="accept", priority="", channel="")
    before_known, before_unknown = sla_count(**known), sla_count(**unknown)
    metrics.observe_sla("accept", 30, priority=2, channel="SMS")
    metrics.observe_sla("accept", 30, priority="2", channel="CHANNEL_SMS")
    # Anything outside priority 1-4 and the channel enum falls into "", so the series stay bounded.
    for priority, channel in ((0, "SMS"), (7, "PHONE"), (None, "CARRIER_PIGEON"), ("P1", "")):
        metrics.observe_sla("accept", 30, priority=priority, channel=channel if priority is None else "")
    assert sla_count(**known) == before_known + 2
    assert sla_count(**unknown) == before_unknown + 4
    samples = [s for f in REGISTRY.collect() if f.name == "smart110_sla_seconds" for s in f.samples]
    assert {s.labels["priority"] for s in samples} <= {"", "1", "2", "3", "4"}
    assert {s.labels["channel"] for s in samples} <= {"", *metrics.SLA_CHANNELS}


def test_the_sla_channels_are_intakes_channels():
    from services.intake.domain.validation import CHANNELS
    from smart110.intake.v1 import intake_service_pb2 as intake_pb

    assert set(metrics.SLA_CHANNELS) == CHANNELS
    assert set(metrics.SLA_CHANNELS) == {n.removeprefix("CHANNEL_") for n in intake_pb.Channel.keys()} - {"UNSPECIFIED"}


def test_work_order_figures_replace_the_previous_round():
    def gauge(name, dept):
        return REGISTRY.get_sample_value(name, {"service": metrics.service(), "department": dept})

    metrics.set_work_order_figures({"D01": (5, 2, 1), "": (1, 0, 0)})
    assert gauge("smart110_work_orders_open", "D01") == 5
    assert gauge("smart110_work_orders_overdue", "D01") == 2
    assert gauge("smart110_work_orders_due_soon", "D01") == 1
    assert gauge("smart110_work_orders_open", "") == 1
    metrics.set_work_order_figures({"D02": (3, 3, 0)})
    assert gauge("smart110_work_orders_overdue", "D02") == 3
    assert gauge("smart110_work_orders_overdue", "D01") is None and gauge("smart110_work_orders_open", "") is None
    metrics.set_work_order_figures({})
    assert gauge("smart110_work_orders_overdue", "D02") is None
