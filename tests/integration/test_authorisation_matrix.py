"""The authorisation matrix (授权矩阵), generated from the contracts: every RPC of protos/ × every role,
straight against each service's port and through the gateway, answers as its service's access table
says.

- no credential: UNAUTHENTICATED (HTTP 401), except the public Open311 face and health checks;
- a role the table does not list: PERMISSION_DENIED with reason ROLE_REQUIRED (HTTP 403);
- a role it lists: past the access check (whatever the empty request then gets: INVALID_ARGUMENT,
  NOT_FOUND, OUT_OF_JURISDICTION, ...), never ROLE_REQUIRED or UNAUTHENTICATED.

An RPC without a table entry fails `tests/unit/test_access_policy.py`; here it would be refused
for every role. Whether a listed role sees only its jurisdiction's data is tested per service with
in-scope and out-of-scope resources (test_intake_access, test_dispatch_*, test_alerts_api, ...).
"""
from __future__ import annotations

import importlib
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import grpc
import httpx
import pytest

from services.runtime.app import all_policies
from services.runtime.policy import ALL_ROLES, POLICE_ROLES, SERVICE
from tests import fuzzing, support
from tools.devstack import SERVICES as PACKAGES
from tools.token import mint

RPCS = fuzzing.grpc_methods()
BINDINGS = [b for b in fuzzing.rest_bindings() if not b.streaming]
PEOPLE = sorted(ALL_ROLES - {SERVICE})
PUBLIC_SERVICES = {"smart110.referral.v1.Open311Service"}
ROLE_REQUIRED = "ROLE_REQUIRED"


def _table(svc: str) -> dict:
    spec = importlib.import_module(f"{PACKAGES[svc]}.__main__").SPEC
    return all_policies(spec)


TABLES = {svc: _table(svc) for svc in PACKAGES}


def allowed(svc: str, method: str) -> frozenset[str] | None:
    """The roles the table lists for `method` (full name), None for a public service."""
    service, _, name = method.rpartition(".")
    if service in PUBLIC_SERVICES:
        return None
    rule = TABLES[svc][service].access(name)
    assert rule is not None, f"{method} has no access policy"
    return rule.roles


@lru_cache(maxsize=None)
def token_for(role: str) -> str:
    if role == SERVICE:
        return support.service_token("matrix")
    claims = {}
    if role in POLICE_ROLES - {"commander", "dispatcher", "call_taker", "district_commander"}:
        claims["station"] = "S01"
    if role == "district_commander":
        claims["district"] = "420102"
    if role == "department":
        claims["department"] = "D01"
    return mint(roles=[role], sub=f"matrix-{role}", **claims)


def call(channel: grpc.Channel, rpc: fuzzing.Rpc, metadata) -> tuple[grpc.StatusCode, str]:
    """(code, reason) of an empty request; a stream that opens and waits is OK."""
    try:
        if rpc.client_streaming:
            channel.stream_unary(rpc.path)(iter([b""]), timeout=3, metadata=metadata)
        elif rpc.server_streaming:
            stream = channel.unary_stream(rpc.path)(b"", timeout=0.5, metadata=metadata)
            try:
                next(stream)
            except StopIteration:
                pass
            finally:
                stream.cancel()
        else:
            channel.unary_unary(rpc.path)(b"", timeout=10, metadata=metadata)
    except grpc.RpcError as err:
        if err.code() in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED) and rpc.server_streaming:
            return grpc.StatusCode.OK, ""  # the stream was open: past the access check
        return err.code(), support.error_reason(err)
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("rpc", RPCS, ids=lambda r: f"{r.svc}:{r.path}")
def test_every_rpc_answers_every_role_as_its_table_says(stack, rpc):
    roles = allowed(rpc.svc, rpc.method)
    wrong = []
    with grpc.insecure_channel(stack.address(rpc.svc)) as channel, ThreadPoolExecutor(6) as pool:
        code, _reason = call(channel, rpc, ())
        if roles is not None and code != grpc.StatusCode.UNAUTHENTICATED:
            wrong.append(f"no credential: {code.name}")
        everyone = [*PEOPLE, SERVICE]
        answers = pool.map(lambda role: call(channel, rpc, (("authorization", f"Bearer {token_for(role)}"),)), everyone)
        for role, (code, reason) in zip(everyone, answers):
            denied = code == grpc.StatusCode.PERMISSION_DENIED and reason == ROLE_REQUIRED
            if roles is not None and role not in roles and not denied:
                wrong.append(f"{role}: {code.name} {reason}, expected PERMISSION_DENIED {ROLE_REQUIRED}")
            if (roles is None or role in roles) and (denied or code == grpc.StatusCode.UNAUTHENTICATED):
                wrong.append(f"{role}: {code.name} {reason}, but the table lets it call")
    assert not wrong, f"{rpc.path} on {rpc.svc}:\n" + "\n".join(wrong)


def concrete(template: str) -> str:
    """A path of the binding's template with a placeholder id in every variable (a feed consumer's
    routes name a real service, which the gateway routes on)."""
    path = fuzzing.TEMPLATE_VAR.sub(lambda m: (m.group(2) or "x").replace("**", "x").replace("*", "x"), template)
    return path.replace("/feedConsumers/x", "/feedConsumers/intake")


def svc_of(method: str) -> str:
    return fuzzing.PACKAGE.match(method.rsplit(".", 2)[0]).group(1)


@pytest.mark.parametrize("binding", BINDINGS, ids=lambda b: b.id)
def test_every_rest_binding_answers_every_role_as_its_table_says_through_the_gateway(stack, binding):
    svc = svc_of(binding.method)
    if svc == "common":
        svc = "intake"  # the runtime's services are routed to each service; their tables are the runtime's
    roles = allowed(svc, binding.method)
    url = f"http://127.0.0.1:{stack.ports.gateway}{concrete(binding.template)}"
    body = {} if binding.body else None
    wrong = []
    verb = binding.verb if binding.verb in ("GET", "POST", "PATCH", "DELETE", "PUT") else "POST"
    with httpx.Client(timeout=10) as http, ThreadPoolExecutor(6) as pool:
        answer = http.request(verb, url, json=body)
        if roles is not None and answer.status_code != 401:
            wrong.append(f"no token: HTTP {answer.status_code}")
        answers = pool.map(lambda role: http.request(verb, url, json=body,
                                                     headers={"authorization": f"Bearer {token_for(role)}"}), PEOPLE)
        for role, answer in zip(PEOPLE, answers):
            denied = answer.status_code == 403 and ROLE_REQUIRED in answer.text
            if roles is not None and role not in roles and not denied:
                wrong.append(f"{role}: HTTP {answer.status_code} {answer.text[:120]}, expected 403 {ROLE_REQUIRED}")
            if (roles is None or role in roles) and (denied or answer.status_code == 401):
                wrong.append(f"{role}: HTTP {answer.status_code}, but the table lets it call")
    assert not wrong, f"{binding.id}:\n" + "\n".join(wrong)
