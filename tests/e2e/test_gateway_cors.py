"""Browsers through Envoy: preflights allow trace headers, and error details are exposed to scripts."""
from __future__ import annotations

import httpx
import pytest

from tools.token import mint

ORIGIN = "http://console.smart110.test"


@pytest.fixture(scope="module")
def gateway(stack):
    with httpx.Client(base_url=stack.gateway_url, timeout=20) as c:
        yield c


def _listed(value: str) -> set[str]:
    return {h.strip().lower() for h in value.split(",") if h.strip()}


def test_a_preflight_with_trace_context_headers_is_allowed(gateway):
    resp = gateway.request("OPTIONS", "/v1/reports", headers={
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, traceparent, tracestate, x-request-id",
    })
    assert resp.status_code in (200, 204), resp.text
    allowed = _listed(resp.headers.get("access-control-allow-headers", ""))
    assert {"authorization", "content-type", "traceparent", "tracestate", "x-request-id"} <= allowed
    assert resp.headers.get("access-control-allow-origin") in (ORIGIN, "*")


def test_grpc_web_error_details_are_exposed_to_the_browser(gateway):
    token = mint(roles=["call_taker"], sub="cors-call-taker")
    # A gRPC-Web call with an empty request: INVALID_ARGUMENT, details in grpc-status-details-bin.
    resp = gateway.post("/smart110.intake.v1.IntakeService/ReportIncident", content=b"\x00\x00\x00\x00\x00",
                        headers={"Origin": ORIGIN, "Authorization": f"Bearer {token}",
                                 "Content-Type": "application/grpc-web+proto", "X-Grpc-Web": "1",
                                 "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"})
    assert resp.status_code == 200, resp.text
    exposed = _listed(resp.headers.get("access-control-expose-headers", ""))
    assert {"grpc-status", "grpc-message", "grpc-status-details-bin"} <= exposed
    # The status itself: in the headers (trailers-only) or in the trailer frame of the body.
    status = resp.headers.get("grpc-status")
    if status is None:
        assert b"grpc-status:3" in resp.content.replace(b" ", b""), resp.content
        assert b"grpc-status-details-bin" in resp.content
    else:
        assert status == "3" and "grpc-status-details-bin" in resp.headers
