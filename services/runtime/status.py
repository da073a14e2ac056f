"""The one mapping of errors to gRPC status (AIP-193).

`ErrorInterceptor` (services.runtime.server) turns a `DomainError` into a status
with `google.rpc.ErrorInfo` (reason in UPPER_SNAKE_CASE) and, for bad input,
`google.rpc.BadRequest` field violations. Transient infrastructure faults (a
database or an outbound dependency that is down) become UNAVAILABLE with
`google.rpc.RetryInfo` (see `transient_status`). Anything else becomes INTERNAL
with the trace id and nothing of the internals.
"""
from __future__ import annotations

import logging
import uuid

import grpc
import psycopg
import sqlalchemy.exc as sa_exc
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from .errors import DOMAIN, DomainError, InvalidArgument, NotFound
from .telemetry import current_trace_id

log = logging.getLogger("smart110.errors")

# A status travels in trailers (grpc-message, percent-encoded, and grpc-status-details-bin, base64)
# that gRPC clients cap at 8 KiB by default, and its texts may echo the request (a resource name, a
# map key): a status whose trailers would pass MAX_TRAILER_BYTES has every text clipped, to the first
# of CLIP_STEPS characters that makes it fit.
MAX_TRAILER_BYTES = 6 * 1024
CLIP_STEPS = (1000, 200, 50, 16)


def status_details(err: DomainError) -> list:
    """The google.rpc detail messages of a domain error, then any the error class adds itself
    (`extra_details()`, e.g. Open311's GeoReport errors)."""
    out = [error_details_pb2.ErrorInfo(reason=err.reason, domain=DOMAIN, metadata=err.metadata)]
    if isinstance(err, InvalidArgument):
        out.append(error_details_pb2.BadRequest(field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in err.violations
        ]))
    if isinstance(err, NotFound):
        out.append(error_details_pb2.ResourceInfo(resource_name=err.resource_name, description=err.message))
    extra = getattr(err, "extra_details", None)
    if callable(extra):
        out += list(extra())
    return out


def grpc_code(err: DomainError) -> grpc.StatusCode:
    return grpc.StatusCode[err.code]


def clip(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with a trailing ellipsis when longer."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "\u2026"


def _repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)
    return flag if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _clip_strings(message: Message, limit: int) -> None:
    """Clips every string in `message`, nested messages, repeated fields and map values included."""
    for field, value in message.ListFields():
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            for key in list(value):
                if value_field.message_type is not None:
                    _clip_strings(value[key], limit)
                elif value_field.type == FieldDescriptor.TYPE_STRING:
                    value[key] = clip(value[key], limit)
        elif field.message_type is not None:
            for item in value if _repeated(field) else [value]:
                _clip_strings(item, limit)
        elif field.type == FieldDescriptor.TYPE_STRING:
            if _repeated(field):
                value[:] = [clip(item, limit) for item in value]
            else:
                setattr(message, field.name, clip(value, limit))


def _status_proto(err: DomainError, limit: int | None) -> status_pb2.Status:
    details = []
    for detail in status_details(err):
        if limit is not None:
            _clip_strings(detail, limit)
        packed = any_pb2.Any()
        packed.Pack(detail)
        details.append(packed)
    message = err.message if limit is None else clip(err.message, limit)
    return status_pb2.Status(code=grpc_code(err).value[0], message=message, details=details)


def trailer_bytes(status: status_pb2.Status) -> int:
    """The size of a status's trailers: grpc-message percent-encoded, grpc-status-details-bin base64."""
    message = sum(1 if 0x20 <= b < 0x7F and b != 0x25 else 3 for b in status.message.encode())
    return message + -(-status.ByteSize() // 3) * 4


def to_status(err: DomainError) -> grpc.Status:
    status = _status_proto(err, None)
    for limit in CLIP_STEPS:
        if trailer_bytes(status) <= MAX_TRAILER_BYTES:
            break
        status = _status_proto(err, limit)
    return rpc_status.to_status(status)


def internal_status() -> grpc.Status:
    """INTERNAL with a trace id to quote, and nothing of the internals.

    Without a current span (no tracing set up) a fresh id is minted and logged,
    so every 500 still carries an id that finds its log line.
    """
    trace_id = current_trace_id()
    if not trace_id:
        trace_id = uuid.uuid4().hex
        log.error("internal error reference %s (no active trace)", trace_id, extra={"trace_id": trace_id})
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=DOMAIN, metadata={"trace_id": trace_id})
    packed = any_pb2.Any()
    packed.Pack(info)
    message = f"internal error; quote trace id {trace_id} when reporting it"
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.INTERNAL, message=message, details=[packed]))


RETRY_DELAY_SECONDS = 1
"""How long a client should wait before retrying after a transient fault."""

_DEPENDENCY_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def _database_faults() -> tuple[type[BaseException], ...]:
    """Exception types that mean the database is unreachable or overloaded, not that a statement is wrong."""
    return (sa_exc.OperationalError, sa_exc.DisconnectionError, sa_exc.TimeoutError, psycopg.OperationalError)


def transient_reason(exc: BaseException) -> str | None:
    """DATABASE_UNAVAILABLE or DEPENDENCY_UNAVAILABLE for a transient fault, else None.

    A database outage is a SQLAlchemy/psycopg OperationalError, a DisconnectionError
    or a pool TimeoutError; a dependency outage is a `grpc.RpcError` from an
    outbound call with UNAVAILABLE or DEADLINE_EXCEEDED.
    """
    if isinstance(exc, _database_faults()):
        return "DATABASE_UNAVAILABLE"
    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        try:
            code = exc.code()
        except Exception:  # noqa: BLE001 - an RpcError without a usable code is not transient
            return None
        if code in _DEPENDENCY_CODES:
            return "DEPENDENCY_UNAVAILABLE"
    return None


_TRANSIENT_MESSAGES = {
    "DATABASE_UNAVAILABLE": "the database is temporarily unavailable; retry after {delay} s",
    "DEPENDENCY_UNAVAILABLE": "a service this call depends on is temporarily unavailable; retry after {delay} s",
    "OVERLOADED": "the service is at its limit of calls in progress; retry after {delay} s with the same request_id",
}


def transient_status(reason: str, *, delay_seconds: int = RETRY_DELAY_SECONDS) -> grpc.Status:
    """UNAVAILABLE with ErrorInfo (the reason, the trace id) and RetryInfo (the delay)."""
    metadata = {"retry_delay_seconds": str(delay_seconds)}
    trace_id = current_trace_id()
    if trace_id:
        metadata["trace_id"] = trace_id
    details = []
    for detail in (
        error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN, metadata=metadata),
        error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=delay_seconds)),
    ):
        packed = any_pb2.Any()
        packed.Pack(detail)
        details.append(packed)
    message = _TRANSIENT_MESSAGES.get(reason, "temporarily unavailable; retry after {delay} s").format(delay=delay_seconds)
    return rpc_status.to_status(status_pb2.Status(code=code_pb2.UNAVAILABLE, message=message, details=details))


def describe_fault(exc: BaseException) -> str:
    """The class of a transient fault and, for a gRPC error, its code: no statement, no parameters."""
    name = f"{type(exc).__module__}.{type(exc).__qualname__}"
    orig = getattr(exc, "orig", None)
    if orig is not None:
        name += f" ({type(orig).__module__}.{type(orig).__qualname__})"
    if isinstance(exc, grpc.RpcError) and callable(getattr(exc, "code", None)):
        try:
            name += f" {exc.code().name}"
        except Exception:  # noqa: BLE001
            pass
    return name
