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

from .errors import PermissionDenied, Unauthenticated

JWT_PAYLOAD_HEADER = "x-jwt-payload"


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


def _bad_payload() -> Unauthenticated:
    return Unauthenticated(f"{JWT_PAYLOAD_HEADER} is not a base64url JSON object of token claims",
                           reason="INVALID_JWT_PAYLOAD")


def _text(value) -> str:
    if value is None:
        return ""
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise _bad_payload()
    return str(value)


def from_metadata(metadata) -> AuthContext:
    """The caller's identity; UNAUTHENTICATED for an `x-jwt-payload` that is not a claims object.

    The gateway only forwards claims it verified, so a malformed payload comes from a caller that
    went around it: refused, never read as some identity.
    """
    raw = None
    for key, value in metadata or ():
        if key == JWT_PAYLOAD_HEADER:
            raw = value
            break
    if raw is None:
        return SERVICE_CONTEXT
    try:
        if isinstance(raw, bytes):
            raw = raw.decode()
        padded = raw + "=" * (-len(raw) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise _bad_payload() from None
    if not isinstance(claims, dict):
        raise _bad_payload()
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = [r for r in roles.replace(",", " ").split() if r]
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise _bad_payload()
    return AuthContext(
        subject=_text(claims.get("sub", "")),
        roles=frozenset(roles),
        station=_text(claims.get("station", "") or ""),
        name=_text(claims.get("name", "") or ""),
    )


def current() -> AuthContext:
    """The identity of the caller of the RPC being handled."""
    return _current.get()


def set_current(ctx: AuthContext) -> contextvars.Token:
    return _current.set(ctx)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)
