"""Runtime pieces without I/O: error mapping, auth context, validation helpers."""
from __future__ import annotations


import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from services.runtime import auth
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound
from services.runtime.status import internal_status, to_status
from services.runtime.validation import (
    Violations, decode_page_token, encode_page_token, name_id, paginate, resource_id,
)


def details_of(status: grpc.Status):
    md = dict(status.trailing_metadata)
    return status_pb2.Status.FromString(md["grpc-status-details-bin"])


def test_invalid_argument_carries_error_info_and_field_violations():
    status = to_status(InvalidArgument([("report.channel", "is required"), ("request_id", "is required")]))
    assert status.code == grpc.StatusCode.INVALID_ARGUMENT
    s = details_of(status)
    info, bad = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
    assert s.details[0].Unpack(info) and info.reason == "INVALID_ARGUMENT"
    assert s.details[1].Unpack(bad)
    assert [v.field for v in bad.field_violations] == ["report.channel", "request_id"]


def test_not_found_and_failed_precondition_codes():
    assert to_status(NotFound("cases/x")).code == grpc.StatusCode.NOT_FOUND
    err = FailedPrecondition("cannot accept a cleared assignment", reason="ILLEGAL_TRANSITION")
    status = to_status(err)
    assert status.code == grpc.StatusCode.FAILED_PRECONDITION
    info = error_details_pb2.ErrorInfo()
    details_of(status).details[0].Unpack(info)
    assert info.reason == "ILLEGAL_TRANSITION"


def test_internal_status_leaks_nothing():
    status = internal_status()
    assert status.code == grpc.StatusCode.INTERNAL
    assert "Traceback" not in status.details and "internal error" in status.details


def test_require_role_names_the_roles_it_needs():
    ctx = auth.AuthContext(subject="p1", roles=frozenset({"dispatcher", "station_chief"}), station="S03")
    assert ctx.has_role("station_chief") and not ctx.has_role("legal_officer")
    with pytest.raises(Exception) as err:
        ctx.require_role("legal_officer")
    assert err.value.code == "PERMISSION_DENIED" and err.value.metadata["required_roles"] == "legal_officer"
    assert not auth.current().roles, "outside an RPC nobody is calling: no implicit service role"


def test_resource_names_and_page_tokens():
    v = Violations()
    assert resource_id("reports/abc", "reports", v) == "abc"
    assert resource_id("cases/abc", "reports", v) == ""
    assert resource_id("reports/a/b", "reports", v) == ""
    assert [f for f, _ in v.items] == ["name", "name"]
    v = Violations()
    assert decode_page_token(encode_page_token({"id": "x"}), v, ("id",)) == {"id": "x"}
    assert not v.items
    assert decode_page_token("%%%", v, ("id",)) is None and v.items[0][0] == "page_token"
    assert decode_page_token(encode_page_token({"other": 1}), v, ("id",)) is None and len(v.items) == 2
    assert Violations().page_size(10_000) == 500


def test_an_rpc_whose_input_is_a_name_gets_its_id_or_invalid_argument():
    assert name_id("alerts/a1", "alerts") == "a1"
    assert name_id("alerts/a1", "alerts", request_id="r-1") == "a1"
    with pytest.raises(InvalidArgument) as err:
        name_id("rules/a1", "alerts")
    assert [f for f, _ in err.value.violations] == ["name"]
    # A mutation names a missing request_id first, then a bad name, in one error.
    with pytest.raises(InvalidArgument) as err:
        name_id("", "alerts", request_id="")
    assert [f for f, _ in err.value.violations] == ["request_id", "name"]


def test_paginate_gives_a_token_only_when_more_rows_follow():
    page, token = paginate([1, 2, 3], 2, lambda n: {"id": n})
    assert page == [1, 2]
    assert decode_page_token(token, Violations(), ("id",)) == {"id": 2}
    assert paginate([1, 2], 2, lambda n: {"id": n}) == ([1, 2], "")
    assert paginate([], 2, lambda n: {"id": n}) == ([], "")


class _Refused(grpc.RpcError):
    """A callee's answer as a client sees it."""

    def __init__(self, code: grpc.StatusCode, details: str = ""):
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


def _failing(code: grpc.StatusCode, details: str = ""):
    def fn():
        raise _Refused(code, details)
    return fn


def test_a_call_to_another_service_answers_in_the_domains_terms():
    from services.runtime import calls
    from services.runtime.errors import Unavailable

    assert calls.call("intake", "read the caller's contact", lambda: "answer") == "answer"
    assert calls.call("intake", "read the caller's contact", _failing(grpc.StatusCode.NOT_FOUND)) is None
    with pytest.raises(FailedPrecondition) as refused:
        calls.call("intake", "read the caller's contact", _failing(grpc.StatusCode.INVALID_ARGUMENT, "purpose: x"))
    assert refused.value.reason == "INTAKE_REFUSED" and "purpose: x" in refused.value.message
    for code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.PERMISSION_DENIED):
        with pytest.raises(Unavailable) as away:  # a consumer waits this out; it never parks the event
            calls.call("intake", "read the caller's contact", _failing(code))
        assert away.value.reason == "INTAKE_UNAVAILABLE" and code.name in away.value.message
