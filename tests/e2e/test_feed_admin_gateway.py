"""Operators reach each service's parked events through the gateway: the REST path or the
`smart110-service` header chooses the service, the `sre` role is needed, and a call that names one
service in its path but reaches another is refused."""
from __future__ import annotations

import grpc
import httpx
import pytest

from smart110.common.v1 import feed_admin_pb2 as pb
from smart110.common.v1 import feed_admin_pb2_grpc as pb_grpc
from tools.devstack import SERVICES
from tools.token import mint


@pytest.fixture(scope="module")
def sre(stack):
    return mint(roles=["sre"], sub="e2e-sre")


@pytest.mark.parametrize("service", list(SERVICES))
def test_rest_reaches_the_service_its_path_names(stack, sre, service):
    resp = httpx.get(f"{stack.gateway_url}/v1/feedConsumers/{service}/parkedEvents",
                     params={"status": "PARKED_EVENT_STATUS_PARKED"},
                     headers={"Authorization": f"Bearer {sre}"}, timeout=20)
    # Each service checks that the parent names it: a 200 means the call reached that very service.
    assert resp.status_code == 200, resp.text
    assert resp.json()["parkedEvents"] == []


def test_rest_needs_the_sre_role(stack):
    token = mint(roles=["dispatcher", "commander"], station="S01", sub="e2e-not-sre")
    resp = httpx.get(f"{stack.gateway_url}/v1/feedConsumers/dispatch/parkedEvents",
                     headers={"Authorization": f"Bearer {token}"}, timeout=20)
    assert resp.status_code == 403, resp.text
    resp = httpx.post(f"{stack.gateway_url}/v1/feedConsumers/dispatch/parkedEvents/"
                      "00000000-0000-0000-0000-000000000000:discard", json={"requestId": "x", "reason": "测试"},
                      timeout=20)
    assert resp.status_code == 401


def test_grpc_reaches_the_service_its_header_names(stack, sre):
    with grpc.insecure_channel(stack.gateway_url.removeprefix("http://")) as channel:
        stub = pb_grpc.FeedAdminServiceStub(channel)
        for service in SERVICES:
            md = (("authorization", f"Bearer {sre}"), ("smart110-service", service))
            listed = stub.ListParkedEvents(pb.ListParkedEventsRequest(parent=f"feedConsumers/{service}"),
                                           metadata=md, timeout=20)
            assert list(listed.parked_events) == []
        # The header says alerts, the request names scoring: alerts refuses it.
        md = (("authorization", f"Bearer {sre}"), ("smart110-service", "alerts"))
        with pytest.raises(grpc.RpcError) as err:
            stub.ListParkedEvents(pb.ListParkedEventsRequest(parent="feedConsumers/scoring"), metadata=md, timeout=20)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "this is the alerts service" in err.value.details()
        # Without the header the gateway knows no service to send it to.
        with pytest.raises(grpc.RpcError) as err:
            stub.ListParkedEvents(pb.ListParkedEventsRequest(parent="feedConsumers/alerts"),
                                  metadata=(("authorization", f"Bearer {sre}"),), timeout=20)
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
