"""Domain errors: what handlers and domain code raise, as plain Python (no gRPC, no protobuf).

Each class names its canonical status code (`code`, a `grpc.StatusCode` member
name) and a default reason in UPPER_SNAKE_CASE; `services.runtime.status` maps
them, in one place, to a gRPC status with `google.rpc.ErrorInfo`, and, for bad
input, `google.rpc.BadRequest` field violations (AIP-193).
"""
from __future__ import annotations

from typing import Iterable

DOMAIN = "smart110.gov.cn"
# At most this many field violations go into a BadRequest (and the message), so that the
# grpc-status-details-bin trailer stays small whatever the input.
MAX_FIELD_VIOLATIONS = 20


class DomainError(Exception):
    code = "UNKNOWN"
    reason = "UNKNOWN"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.metadata = metadata or {}



class InvalidArgument(DomainError):
    """Bad input, naming every offending field."""

    code = "INVALID_ARGUMENT"
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Iterable[tuple[str, str]], message: str | None = None):
        found = list(violations)
        self.violations = found[:MAX_FIELD_VIOLATIONS]
        if len(found) > MAX_FIELD_VIOLATIONS:
            self.violations.append(("", f"and {len(found) - MAX_FIELD_VIOLATIONS} more violations not listed"))
        fields = ", ".join(f for f, _ in self.violations if f)
        text = message or "; ".join(f"{f}: {d}" for f, d in self.violations)
        super().__init__(text, metadata={"fields": fields})


class NotFound(DomainError):
    code = "NOT_FOUND"
    reason = "NOT_FOUND"

    def __init__(self, resource_name: str, message: str | None = None):
        super().__init__(message or f"{resource_name} does not exist", metadata={"resource": resource_name})
        self.resource_name = resource_name


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """An illegal state change."""

    code = "FAILED_PRECONDITION"
    reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrency conflict, e.g. an update against a version that is no longer current."""

    code = "ABORTED"
    reason = "ABORTED"


class OutOfRange(DomainError):
    code = "OUT_OF_RANGE"
    reason = "OUT_OF_RANGE"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"
    reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    reason = "UNAUTHENTICATED"


class Unavailable(DomainError):
    """A transient fault; the caller may retry."""

    code = "UNAVAILABLE"
    reason = "UNAVAILABLE"


class Unimplemented(DomainError):
    """A method of the contract that this version does not serve yet."""

    code = "UNIMPLEMENTED"
    reason = "UNIMPLEMENTED"
