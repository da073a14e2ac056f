"""Who is calling: every service verifies its callers itself (not only the gateway).

Two kinds of credential reach a service, both as `authorization: Bearer <JWT>`:

- **a person's token** (issuer `JWT_ISSUER`, default `smart110-dev`), issued by the identity
  provider, verified by the gateway and forwarded by it unchanged; the service verifies it
  again against the same key set (`JWT_JWKS_PATH`). With `OIDC_ISSUER` and `OIDC_JWKS_URI`
  (the province's identity provider, OpenID Connect; the same settings as the gateway's), that
  issuer's tokens are people's tokens too, verified against its keys fetched from the
  `jwks_uri` and cached. Such a token never carries the `service` role.
- **a service credential** (issuer `SERVICE_JWT_ISSUER`, default `smart110-services`), which a
  service presents on its own outbound calls; verified against `SERVICE_JWKS_PATH`. Under
  `make run` each service's token is minted at start-up with the development service key;
  in Kubernetes it is a projected ServiceAccount token (see k8s/README.md).

Both need `exp`, `iat`, `sub`, the audience `JWT_AUDIENCE` (default `smart110`) and an RS256
or ES256 signature by a listed key; `alg: none`, another key, an expired token or a wrong
audience are UNAUTHENTICATED with a reason. A call with no credential is UNAUTHENTICATED,
except to a public method (Open311's, health checks): there is no implicit superuser.
Headers such as `x-jwt-payload` are never believed.
"""
from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import jwt
from jwt import PyJWKClient, PyJWKSet

from .auth import AuthContext
from .errors import Unauthenticated

ROOT = Path(__file__).resolve().parents[2]
DEV_KEYS = ROOT / "gateway" / "dev-keys"
ALGORITHMS = ["RS256", "ES256"]
SERVICE_ROLE = "service"
# Roles only a service credential may carry.
SERVICE_ONLY_ROLES = frozenset({SERVICE_ROLE})
LEEWAY_SECONDS = 30
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
ANONYMOUS = AuthContext(subject="anonymous", roles=frozenset())


def _bearer(metadata) -> str:
    for key, value in metadata or ():
        if key == "authorization":
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


def _keyset(path: str | os.PathLike | None) -> PyJWKSet | None:
    if not path or not Path(path).is_file():
        return None
    return PyJWKSet.from_dict(json.loads(Path(path).read_text()))


@dataclass(frozen=True)
class Issuer:
    name: str
    keys: PyJWKSet | None
    service: bool
    # Keys fetched (and cached) from a JWKS URL instead, e.g. the cluster's /openid/v1/jwks.
    client: PyJWKClient | None = None

    def candidates(self, token: str, kid: str | None) -> list:
        if self.client is not None:
            try:
                return [self.client.get_signing_key_from_jwt(token)]
            except jwt.PyJWKClientError:
                raise Unauthenticated("the token's signing key is not known", reason="TOKEN_SIGNATURE") from None
        if kid:
            try:
                return [self.keys[kid]]
            except KeyError:
                pass
        return list(self.keys.keys)


class Verifier:
    """Verifies bearer tokens of the configured issuers; caches verified tokens until they expire."""

    def __init__(self, issuers: list[Issuer], audience: str, *, cache_size: int = 4096):
        self.issuers = {i.name: i for i in issuers}
        self.audience = audience
        self._cache: dict[str, tuple[float, AuthContext]] = {}
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls) -> "Verifier":
        issuers = []
        user_keys = _keyset(os.environ.get("JWT_JWKS_PATH") or DEV_KEYS / "jwks.json")
        if user_keys is not None:
            issuers.append(Issuer(os.environ.get("JWT_ISSUER", "smart110-dev"), user_keys, service=False))
        oidc_issuer = os.environ.get("OIDC_ISSUER", "").strip()
        if oidc_issuer and os.environ.get("OIDC_JWKS_URI", "").strip():
            issuers.append(Issuer(oidc_issuer, None, service=False,
                                  client=PyJWKClient(os.environ["OIDC_JWKS_URI"].strip(), lifespan=300)))
        service_issuer = os.environ.get("SERVICE_JWT_ISSUER", "smart110-services")
        if os.environ.get("SERVICE_JWKS_URL"):
            issuers.append(Issuer(service_issuer, None, service=True,
                                  client=PyJWKClient(os.environ["SERVICE_JWKS_URL"], lifespan=300)))
        else:
            service_keys = _keyset(os.environ.get("SERVICE_JWKS_PATH") or DEV_KEYS / "service-jwks.json")
            if service_keys is not None:
                issuers.append(Issuer(service_issuer, service_keys, service=True))
        return cls(issuers, os.environ.get("JWT_AUDIENCE", "smart110"))

    def identify(self, metadata) -> AuthContext | None:
        """The verified caller, or None when the call carries no credential at all."""
        token = _bearer(metadata)
        if not token:
            return None
        now = time.time()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and hit[0] > now + 1:
            return hit[1]
        expiry, ctx = self._verify(token)
        with self._lock:
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            self._cache[token] = (expiry, ctx)
        return ctx

    def _verify(self, token: str) -> tuple[float, AuthContext]:
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise Unauthenticated("the bearer token is not a JWT", reason="TOKEN_MALFORMED") from None
        if header.get("alg") not in ALGORITHMS:
            raise Unauthenticated(f"token algorithm {header.get('alg')!r} is not accepted",
                                  reason="TOKEN_ALGORITHM_REFUSED")
        issuer = self.issuers.get(str(unverified.get("iss", "")))
        if issuer is None:
            raise Unauthenticated("the token's issuer is not trusted", reason="TOKEN_ISSUER_UNKNOWN")
        claims = None
        for candidate in issuer.candidates(token, header.get("kid")):
            try:
                claims = jwt.decode(token, candidate.key, algorithms=ALGORITHMS, audience=self.audience,
                                    issuer=issuer.name, leeway=LEEWAY_SECONDS,
                                    options={"require": REQUIRED_CLAIMS})
                break
            except jwt.ExpiredSignatureError:
                raise Unauthenticated("the token has expired", reason="TOKEN_EXPIRED") from None
            except jwt.InvalidAudienceError:
                raise Unauthenticated("the token is for another audience", reason="TOKEN_AUDIENCE") from None
            except jwt.MissingRequiredClaimError as exc:
                raise Unauthenticated(f"the token lacks the {exc.claim} claim",
                                      reason="TOKEN_CLAIM_MISSING") from None
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError:
                raise Unauthenticated("the token is not valid", reason="TOKEN_INVALID") from None
        if claims is None:
            raise Unauthenticated("the token's signature does not verify", reason="TOKEN_SIGNATURE")
        if issuer.service:
            # A service credential (ours, or a ServiceAccount token) means exactly the service role.
            roles = frozenset({SERVICE_ROLE})
        else:
            roles = claims.get("roles") or []
            if isinstance(roles, str):
                roles = [r for r in roles.replace(",", " ").split() if r]
            roles = frozenset(str(r) for r in roles)
        if not issuer.service and roles & SERVICE_ONLY_ROLES:
            raise Unauthenticated("a person's token cannot carry a service role", reason="TOKEN_ROLE_REFUSED")
        ctx = AuthContext(subject=str(claims["sub"]), roles=roles,
                          station=str(claims.get("station", "") or ""), name=str(claims.get("name", "") or ""),
                          district=str(claims.get("district", "") or ""),
                          department=str(claims.get("department", "") or ""))
        return float(claims["exp"]), ctx


class ServiceCredential:
    """This service's own credential for outbound calls.

    Read from `SERVICE_TOKEN_FILE` (re-read when the file changes: a projected ServiceAccount
    token is rotated in place) or `SERVICE_TOKEN`. Without either, outbound calls carry none
    and other services refuse them.
    """

    def __init__(self, token: str = "", path: str = ""):
        self._token = token
        self._path = Path(path) if path else None
        self._mtime = -1.0

    @classmethod
    def from_env(cls) -> "ServiceCredential":
        return cls(os.environ.get("SERVICE_TOKEN", ""), os.environ.get("SERVICE_TOKEN_FILE", ""))

    def token(self) -> str:
        if self._path is not None:
            try:
                mtime = self._path.stat().st_mtime
                if mtime != self._mtime:
                    self._token = self._path.read_text().strip()
                    self._mtime = mtime
            except OSError:
                pass
        return self._token


class _Details(grpc.ClientCallDetails):
    def __init__(self, details, metadata):
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = metadata
        self.credentials = details.credentials
        self.wait_for_ready = getattr(details, "wait_for_ready", None)
        self.compression = getattr(details, "compression", None)


class CredentialInterceptor(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                            grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Adds `authorization: Bearer <token>` to calls that carry no authorization of their own."""

    def __init__(self, token):
        self._token = token if callable(token) else (lambda: token)

    def _details(self, details):
        metadata = list(details.metadata or ())
        token = self._token()
        if token and not any(k == "authorization" for k, _ in metadata):
            metadata.append(("authorization", f"Bearer {token}"))
        return _Details(details, metadata)

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._details(details), request)

    def intercept_stream_unary(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)

    def intercept_stream_stream(self, continuation, details, request_iterator):
        return continuation(self._details(details), request_iterator)


def with_credential(channel: grpc.Channel, token) -> grpc.Channel:
    """`channel` whose calls present `token` (a string or a function returning one)."""
    return grpc.intercept_channel(channel, CredentialInterceptor(token))
