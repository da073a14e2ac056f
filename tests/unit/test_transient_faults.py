"""Transient faults become UNAVAILABLE with retry advice; bugs stay INTERNAL with a trace id; logs are redacted."""
from __future__ import annotations

import io
import json
import logging

import grpc
import psycopg
import sqlalchemy.exc as sa_exc
from google.rpc import error_details_pb2, status_pb2

from services.runtime.status import internal_status, transient_reason
from services.runtime.logs import JsonFormatter, RedactingFilter, redact
from services.runtime.server import _status_for

METHOD = "/smart110.intake.v1.IntakeService/CreateReport"


def details_of(status: grpc.Status):
    md = dict(status.trailing_metadata)
    return status_pb2.Status.FromString(md["grpc-status-details-bin"])


def unpacked(status: grpc.Status, kind):
    found = []
    for any_ in details_of(status).details:
        msg = kind()
        if any_.Unpack(msg):
            found.append(msg)
    return found


class FakeRpcError(grpc.RpcError):
    """What an outbound stub raises: an RpcError that is also a Call with a code."""

    def __init__(self, code: grpc.StatusCode):
        super().__init__()
        self._code = code

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return "connect failed"


def operational_error() -> sa_exc.OperationalError:
    return sa_exc.OperationalError(
        "INSERT INTO reports (phone) VALUES (%(phone)s)", {"phone": "13812345678"},
        psycopg.OperationalError("connection refused"),
    )


def test_database_outage_is_unavailable_with_retry_info(caplog):
    with caplog.at_level(logging.WARNING, logger="smart110.server"):
        status = _status_for(operational_error(), METHOD)
    assert status.code == grpc.StatusCode.UNAVAILABLE
    (retry,) = unpacked(status, error_details_pb2.RetryInfo)
    assert retry.retry_delay.seconds >= 1
    (info,) = unpacked(status, error_details_pb2.ErrorInfo)
    assert info.reason == "DATABASE_UNAVAILABLE"
    assert "retry" in status.details and "13812345678" not in status.details
    (record,) = [r for r in caplog.records if r.name == "smart110.server"]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "13812345678" not in record.getMessage() and "INSERT" not in record.getMessage()


def test_other_database_faults_are_transient():
    assert transient_reason(sa_exc.DisconnectionError("gone")) == "DATABASE_UNAVAILABLE"
    assert transient_reason(sa_exc.TimeoutError("QueuePool limit reached")) == "DATABASE_UNAVAILABLE"
    assert transient_reason(psycopg.OperationalError("server closed the connection")) == "DATABASE_UNAVAILABLE"
    # A wrong statement is a bug, not an outage.
    assert transient_reason(sa_exc.IntegrityError("INSERT", {}, Exception("dup"))) is None


def test_dependency_outage_is_unavailable():
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        status = _status_for(FakeRpcError(code), METHOD)
        assert status.code == grpc.StatusCode.UNAVAILABLE
        (info,) = unpacked(status, error_details_pb2.ErrorInfo)
        assert info.reason == "DEPENDENCY_UNAVAILABLE"
        assert unpacked(status, error_details_pb2.RetryInfo)


def test_dependency_refusal_is_not_transient():
    status = _status_for(FakeRpcError(grpc.StatusCode.PERMISSION_DENIED), METHOD)
    assert status.code == grpc.StatusCode.INTERNAL


def test_plain_bug_is_internal_with_trace_id():
    status = _status_for(KeyError("oops"), METHOD)
    assert status.code == grpc.StatusCode.INTERNAL
    (info,) = unpacked(status, error_details_pb2.ErrorInfo)
    assert info.reason == "INTERNAL"
    trace_id = info.metadata["trace_id"]
    assert len(trace_id) == 32 and trace_id in status.details
    assert "oops" not in status.details


def test_internal_status_always_has_trace_id():
    (info,) = unpacked(internal_status(), error_details_pb2.ErrorInfo)
    assert info.metadata["trace_id"]


def test_redact_masks_phones_and_parameter_dumps():
    text = ("(psycopg.errors.StringDataRightTruncation) value too long\n"
            "[SQL: INSERT INTO t (phone) VALUES (%(phone)s)]\n"
            "[parameters: {'phone': '13812345678', 'name': '张三'}]\n"
            "(Background on this error at: https://sqlalche.me/e/20/9h9h)")
    out = redact(text)
    assert "13812345678" not in out and "张三" not in out and "[parameters: redacted]" in out
    assert redact("caller 13912345678 called") == "caller 139****5678 called"
    assert redact("order 1234567890123") == "order 1234567890123"


def test_filter_redacts_message_args_and_exception():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("smart110.test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        try:
            raise ValueError("bad phone 13812345678")
        except ValueError:
            logger.exception("caller %s", "15912345678")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    doc = json.loads(stream.getvalue())
    assert doc["message"] == "caller 159****5678"
    assert "13812345678" not in doc["exception"] and "138****5678" in doc["exception"]
