"""Property-based fuzzing of the whole suite: every REST binding through Envoy, every gRPC method raw.

The bindings and methods come from the descriptor set the gateway is configured from, so a new one
is fuzzed without being listed here. REST requests go through the session's Envoy with a token of
every human role, without one, and with a forged one; gRPC request bytes go straight to each
service's port as an in-cluster caller, as a privileged user and with malformed identity headers.

Bounded and reproducible: a fixed number of generated requests per binding and per method
(derandomized, no example database), on loopback only. A server-side failure (see
`tests.fuzzing.Outcome.server_error`: HTTP >= 500, gRPC INTERNAL or UNKNOWN, ...) fails the
binding's test with every failing request listed as a reproduction, and whether it quoted a trace
id. After a method's requests its service must still be running and serving.
The tests run after every other test of the session (see `pytest_collection_modifyitems` in
tests/conftest.py): a request that happens to be valid leaves its records behind.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests import fuzzing
from tools.devstack import SERVICES as DEVSTACK_SERVICES
from tools.token import mint

pytestmark = pytest.mark.fuzz

POOL = fuzzing.load_pool()
BINDINGS = fuzzing.rest_bindings()
RPCS = fuzzing.grpc_methods()

# Generated requests per REST binding and per gRPC method; streams cost a thread each while open.
REST_EXAMPLES = 20
REST_STREAM_EXAMPLES = 6
GRPC_EXAMPLES = 20
GRPC_STREAM_EXAMPLES = 6
# Requests of one binding or method in flight at once.
CONCURRENCY = 4


def bounded(examples: int):
    return settings(max_examples=examples, deadline=None, derandomize=True, database=None,
                    phases=[Phase.explicit, Phase.generate], print_blob=False,
                    suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def privileged_token():
    return mint(roles=fuzzing.PRIVILEGED_ROLES, station="S01", sub="fuzz-supervisor", name="fuzz")


def test_every_binding_and_method_the_gateway_serves_is_fuzzed():
    from gateway.render import load_methods

    routed = load_methods(fuzzing.DESCRIPTORS)
    assert {(f"{m.service}.{m.name}", path) for m in routed for path in m.http_paths} == \
        {(b.method, b.template) for b in BINDINGS}
    assert {f"{m.service}.{m.name}" for m in routed} == {r.method for r in RPCS}
    # A runtime service (smart110.common.v1) is routed to every service ("" here) and fuzzed on each.
    assert {m.svc for m in routed} - {""} == {r.svc for r in RPCS} == set(DEVSTACK_SERVICES)


def generated(strategy, examples: int) -> list:
    """The examples hypothesis draws from `strategy`, in its (derandomized) order."""
    drawn = []

    @bounded(examples)
    @given(strategy)
    def draw(example):
        drawn.append(example)

    draw()
    return drawn


def fuzz_rest(host: str, port: int, binding: fuzzing.Binding, token: str, examples: int) -> fuzzing.Findings:
    findings = fuzzing.Findings()
    requests = generated(fuzzing.rest_requests(binding, POOL), examples)
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        for outcome in pool.map(lambda r: fuzzing.send_rest(host, port, r, token, streaming=binding.streaming),
                                requests):
            findings.add(outcome)
    return findings


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.id)
def test_rest_binding_answers_hostile_input_without_a_server_error(stack, privileged_token, binding):
    examples = REST_STREAM_EXAMPLES if binding.streaming else REST_EXAMPLES
    findings = fuzz_rest("127.0.0.1", stack.ports.gateway, binding, privileged_token, examples)
    assert findings.sent > examples // 2
    assert not findings.outcomes, findings.report(binding.id)


def fuzz_grpc(address: str, rpc: fuzzing.Rpc, examples: int) -> fuzzing.Findings:
    findings = fuzzing.Findings()
    desc = POOL.FindMethodByName(rpc.method).input_type
    payloads = fuzzing.grpc_payloads(desc)
    frames = st.lists(payloads, min_size=1, max_size=3) if rpc.client_streaming else st.tuples(payloads)

    calls = generated(st.tuples(frames, fuzzing.call_metadata), examples)
    with grpc.insecure_channel(address) as channel, ThreadPoolExecutor(CONCURRENCY) as pool:
        for outcome in pool.map(lambda c: fuzzing.call_grpc(channel, rpc, list(c[0]), c[1], address=address), calls):
            findings.add(outcome)
    return findings


def serving(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError:
            return False
    return answer.status == health_pb2.HealthCheckResponse.SERVING


@pytest.mark.parametrize("rpc", RPCS, ids=lambda r: f"{r.svc}:{r.path}" if ".common." in r.path else r.path)
def test_grpc_method_answers_junk_bytes_without_a_server_error(stack, rpc):
    examples = GRPC_STREAM_EXAMPLES if rpc.client_streaming or rpc.server_streaming else GRPC_EXAMPLES
    address = stack.address(rpc.svc)
    findings = fuzz_grpc(address, rpc, examples)
    assert findings.sent > examples // 2
    assert not findings.outcomes, findings.report(rpc.path)
    assert stack._procs[rpc.svc].poll() is None, f"{rpc.svc} exited while fuzzed"
    assert serving(address), f"{rpc.svc} stopped serving while fuzzed"
