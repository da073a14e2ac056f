"""The caller's identity, from the gateway's verified JWT claims.

Envoy verifies the token and forwards its payload in `x-jwt-payload`
(base64url JSON). Services sit behind the gateway and a network policy; a call
without that header comes from inside the cluster (another service) and acts
with the `service` role.
"""
from __future__ import annotations

import base64
import contextvars
import json
from dataclasses import dataclass, field

from .errors import PermissionDenied

JWT_PAYLOAD_HEADER = "x-jwt-payload"
# Site reliability engineers: the runtime's operator RPCs (FeedAdminService, parked events), in
# every service, and nothing of the domain. No domain role includes it, and an in-cluster
# `service` caller does not have it.
OPERATOR_ROLE = "sre"


@dataclass(frozen=True)
class AuthContext:
    subject: str
    roles: frozenset[str] = field(default_factory=frozenset)
    station: str = ""
    name: str = ""

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    def require_role(self, *roles: str) -> None:
        if not self.has_role(*roles):
            raise PermissionDenied(
                f"this action needs one of the roles {', '.join(sorted(roles))}",
                reason="ROLE_REQUIRED",
                metadata={"required_roles": ",".join(sorted(roles))},
            )


SERVICE_CONTEXT = AuthContext(subject="service", roles=frozenset({"service"}))
_current: contextvars.ContextVar[AuthContext] = contextvars.ContextVar("smart110_auth", default=SERVICE_CONTEXT)


def from_metadata(metadata) -> AuthContext:
    raw = None
    for key, value in metadata or ():
        if key == JWT_PAYLOAD_HEADER:
            raw = value
            break
    if raw is None:
        return SERVICE_CONTEXT
    if isinstance(raw, bytes):
        raw = raw.decode()
    padded = raw + "=" * (-len(raw) % 4)
    claims = json.loads(base64.urlsafe_b64decode(padded))
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = [r for r in roles.replace(",", " ").split() if r]
    return AuthContext(
        subject=str(claims.get("sub", "")),
        roles=frozenset(roles),
        station=str(claims.get("station", "") or ""),
        name=str(claims.get("name", "") or ""),
    )


def current() -> AuthContext:
    """The identity of the caller of the RPC being handled."""
    return _current.get()


def set_current(ctx: AuthContext) -> contextvars.Token:
    return _current.set(ctx)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)
