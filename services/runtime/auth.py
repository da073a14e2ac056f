"""The caller's identity (`AuthContext`) for the RPC being handled.

`services.runtime.identity` verifies the caller's credential and the server
interceptor sets it here; handlers read it with `current()`. Work a service does
on its own account (a consumed event, a sweeper) acts as `SERVICE_CONTEXT`.
Outside an RPC and before verification the caller is nobody (no roles).
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass, field

from .errors import PermissionDenied

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
    # District (区县) of a district-level caller; department (12345 承办单位) of a department's staff.
    district: str = ""
    department: str = ""

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
NOBODY = AuthContext(subject="", roles=frozenset())
_current: contextvars.ContextVar[AuthContext] = contextvars.ContextVar("smart110_auth", default=NOBODY)


def current() -> AuthContext:
    """The identity of the caller of the RPC being handled."""
    return _current.get()


def set_current(ctx: AuthContext) -> contextvars.Token:
    return _current.set(ctx)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)
