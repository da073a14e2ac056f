"""Every service verifies its callers: tokens, service credentials, and no implicit superuser."""
from __future__ import annotations

import base64
import json
import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.runtime import auth
from services.runtime.errors import Unauthenticated
from services.runtime.identity import Verifier
from services.runtime.server import create_server
from tests import support
from tools.token import AUDIENCE, DEFAULT_PRIVATE_KEY, ISSUER, mint, mint_service


def md(token: str) -> tuple:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def verifier():
    return Verifier.from_env()


def _claims(**over):
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "p-1", "roles": ["officer"], "station": "S01",
              "iat": now, "exp": now + 600}
    claims.update(over)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(claims, key=None, alg="RS256", kid="smart110-dev-1"):
    return jwt.encode(claims, key or DEFAULT_PRIVATE_KEY.read_bytes(), algorithm=alg, headers={"kid": kid})


def reason(verifier, token) -> str:
    with pytest.raises(Unauthenticated) as err:
        verifier.identify(md(token))
    return err.value.reason


def test_a_persons_token_gives_their_identity(verifier):
    ctx = verifier.identify(md(mint(roles=["officer"], station="S05", sub="p-7", name="王警官")))
    assert (ctx.subject, ctx.roles, ctx.station, ctx.name) == ("p-7", frozenset({"officer"}), "S05", "王警官")


def test_a_service_credential_gives_the_service_role(verifier):
    ctx = verifier.identify(md(mint_service("dispatch")))
    assert ctx.subject == "service:dispatch" and ctx.has_role("service")


def test_no_credential_is_no_identity(verifier):
    assert verifier.identify(()) is None
    forged = base64.urlsafe_b64encode(json.dumps({"sub": "x", "roles": ["commander"]}).encode()).decode()
    assert verifier.identify((("x-jwt-payload", forged),)) is None, "the payload header is never believed"


def test_bad_tokens_are_refused_with_a_reason(verifier):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    now = int(time.time())
    assert reason(verifier, _signed(_claims(exp=now - 120, iat=now - 700))) == "TOKEN_EXPIRED"
    assert reason(verifier, _signed(_claims(), key=other)) == "TOKEN_SIGNATURE"
    assert reason(verifier, _signed(_claims(aud="another-system"))) == "TOKEN_AUDIENCE"
    assert reason(verifier, _signed(_claims(exp=None))) == "TOKEN_CLAIM_MISSING"
    assert reason(verifier, _signed(_claims(iss="someone-else"))) == "TOKEN_ISSUER_UNKNOWN"
    assert reason(verifier, jwt.encode(_claims(), None, algorithm="none")) == "TOKEN_ALGORITHM_REFUSED"
    assert reason(verifier, _signed(_claims(), key=b"a-shared-secret-of-thirty-two-bytes!", alg="HS256")) == "TOKEN_ALGORITHM_REFUSED"
    assert reason(verifier, "not-a-token") == "TOKEN_MALFORMED"
    assert reason(verifier, _signed(_claims(roles=["service"]))) == "TOKEN_ROLE_REFUSED"


class _Echo(health_pb2_grpc.HealthServicer):
    """A stand-in servicer that answers with the caller's subject."""

    def Check(self, request, context):
        ctx = auth.current()
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING
                                              if ctx.has_role("service", "officer") else
                                              health_pb2.HealthCheckResponse.NOT_SERVING)


@pytest.fixture(scope="module")
def server():
    # Registered under another name so the runtime's own (open) health service does not shadow it.
    handler = grpc.method_handlers_generic_handler("test.Echo", {
        "Check": grpc.unary_unary_rpc_method_handler(
            _Echo().Check, request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString)})

    def add(servicer, srv):
        srv.add_generic_rpc_handlers((handler,))

    srv = create_server(port=0, host="127.0.0.1", services=[(add, None, "test.Echo")])
    srv.start()
    yield srv
    srv.stop(0)


def _check(port, metadata=()):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as ch:
        call = ch.unary_unary("/test.Echo/Check", request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
                              response_deserializer=health_pb2.HealthCheckResponse.FromString)
        return call(health_pb2.HealthCheckRequest(), metadata=metadata, timeout=5)


def test_a_call_without_credential_is_unauthenticated_not_a_superuser(server):
    with pytest.raises(grpc.RpcError) as err:
        _check(server.port)
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert support.error_reason(err.value) == "CREDENTIAL_MISSING"
    forged = base64.urlsafe_b64encode(json.dumps({"sub": "x", "roles": ["service"]}).encode()).decode()
    with pytest.raises(grpc.RpcError) as err:
        _check(server.port, (("x-jwt-payload", forged),))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_verified_callers_are_served_and_health_checks_need_no_credential(server):
    assert _check(server.port, support.caller(["officer"], station="S01")).status == \
        health_pb2.HealthCheckResponse.SERVING
    assert _check(server.port, support.caller(["service"])).status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as err:
        _check(server.port, md(_signed(_claims(aud="elsewhere"))))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED and "Traceback" not in (err.value.details() or "")
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
        health = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert health.status in (health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING)


def test_tokens_of_the_configured_identity_provider_are_peoples_tokens(monkeypatch):
    """With OIDC_ISSUER and OIDC_JWKS_URI, the province's identity provider's access tokens are
    verified against the keys at its jwks_uri (here the stand-in's, over a real socket)."""
    from tools.fake_idp import FakeIdentityProvider

    idp = FakeIdentityProvider(port=0).start()
    try:
        monkeypatch.setenv("OIDC_ISSUER", idp.issuer)
        monkeypatch.setenv("OIDC_JWKS_URI", f"{idp.issuer}/jwks")
        with_idp = Verifier.from_env()
        now = int(time.time())
        claims = {"iss": idp.issuer, "aud": AUDIENCE, "sub": "idp-dispatcher", "name": "张强",
                  "roles": ["dispatcher"], "station": "S01", "district": "D02", "iat": now, "exp": now + 600}
        ctx = with_idp.identify(md(idp.sign(claims)))
        assert (ctx.subject, ctx.roles, ctx.station, ctx.district, ctx.name) == (
            "idp-dispatcher", frozenset({"dispatcher"}), "S01", "D02", "张强")
        # Development tokens still work beside them.
        assert with_idp.identify(md(mint(roles=["officer"], sub="p-9"))).subject == "p-9"
        # Its issuer with another key, or its key for another audience, are refused; so is a service role.
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = jwt.encode(claims, other, algorithm="RS256", headers={"kid": idp.kid})
        assert reason(with_idp, forged) == "TOKEN_SIGNATURE"
        assert reason(with_idp, idp.sign({**claims, "aud": "elsewhere"})) == "TOKEN_AUDIENCE"
        assert reason(with_idp, idp.sign({**claims, "roles": ["service"]})) == "TOKEN_ROLE_REFUSED"
        # Without the settings, the same token's issuer is not trusted.
        monkeypatch.delenv("OIDC_ISSUER")
        assert reason(Verifier.from_env(), idp.sign(claims)) == "TOKEN_ISSUER_UNKNOWN"
    finally:
        idp.stop()
