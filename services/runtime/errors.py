"""Domain errors and their one mapping to gRPC status codes.

Handlers raise these; `ErrorInterceptor` turns them into a status with
`google.rpc.ErrorInfo` (reason in UPPER_SNAKE_CASE) and, for bad input,
`google.rpc.BadRequest` field violations. Anything else becomes INTERNAL with
the trace id and nothing of the internals. (AIP-193)
"""
from __future__ import annotations

import logging
from typing import Iterable

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from .telemetry import current_trace_id

log = logging.getLogger("smart110.errors")

DOMAIN = "smart110.gov.cn"
# At most this many field violations go into a BadRequest (and the message), so that the
# grpc-status-details-bin trailer stays small whatever the input.
MAX_FIELD_VIOLATIONS = 20


class DomainError(Exception):
    code = grpc.StatusCode.UNKNOWN
    reason = "UNKNOWN"

    def __init__(self, message: str, *, reason: str | None = None, metadata: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.metadata = metadata or {}

    def details(self) -> list:
        return [error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=self.metadata)]


class InvalidArgument(DomainError):
    """Bad input, naming every offending field."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Iterable[tuple[str, str]], message: str | None = None):
        found = list(violations)
        self.violations = found[:MAX_FIELD_VIOLATIONS]
        if len(found) > MAX_FIELD_VIOLATIONS:
            self.violations.append(("", f"and {len(found) - MAX_FIELD_VIOLATIONS} more violations not listed"))
        fields = ", ".join(f for f, _ in self.violations if f)
        text = message or "; ".join(f"{f}: {d}" for f, d in self.violations)
        super().__init__(text, metadata={"fields": fields})

    def details(self) -> list:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in self.violations
            ]
        )
        return super().details() + [bad]


class NotFound(DomainError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"

    def __init__(self, resource_name: str, message: str | None = None):
        super().__init__(message or f"{resource_name} does not exist", metadata={"resource": resource_name})
        self.resource_name = resource_name

    def details(self) -> list:
        return super().details() + [
            error_details_pb2.ResourceInfo(resource_name=self.resource_name, description=self.message)
        ]


class AlreadyExists(DomainError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    """An illegal state change."""

    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrency conflict, e.g. an update against a version that is no longer current."""

    code = grpc.StatusCode.ABORTED
    reason = "ABORTED"


class OutOfRange(DomainError):
    code = grpc.StatusCode.OUT_OF_RANGE
    reason = "OUT_OF_RANGE"


class PermissionDenied(DomainError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class Unavailable(DomainError):
    """A transient fault; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class Unimplemented(DomainError):
    """A method of the contract that this version does not serve yet."""

    code = grpc.StatusCode.UNIMPLEMENTED
    reason = "UNIMPLEMENTED"


def to_status(err: DomainError) -> grpc.Status:
    details = []
    for detail in err.details():
        packed = any_pb2.Any()
        packed.Pack(detail)
        details.append(packed)
    return rpc_status.to_status(status_pb2.Status(code=err.code.value[0], message=err.message, details=details))


def internal_status() -> grpc.Status:
    trace_id = current_trace_id()
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=DOMAIN, metadata={"trace_id": trace_id})
    packed = any_pb2.Any()
    packed.Pack(info)
    message = f"internal error; quote trace id {trace_id} when reporting it" if trace_id else "internal error"
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message=message, details=[packed]))
