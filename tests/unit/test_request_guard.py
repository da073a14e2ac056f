"""The generic request guard (NUL bytes, unknown enum numbers, non-finite and huge floats, invalid or
out-of-range timestamps and durations, undecodable bytes, malformed identity headers), the cap on field
violations and the clipping of long texts in a status, and page tokens signed and bound to their query."""
from __future__ import annotations

import base64
import json

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.rpc import error_details_pb2, status_pb2

from smart110.alerts.v1 import alerts_service_pb2 as alerts_pb
from smart110.common.v1 import common_pb2, events_pb2
from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2_grpc as pb_grpc
from smart110.scoring.v1 import scoring_service_pb2 as scoring_pb

from services.runtime.errors import MAX_FIELD_VIOLATIONS, InvalidArgument, NotFound
from services.runtime.request_guard import MAX_DURATION_SECONDS, check_request, query_key, request_violations
from services.runtime.status import MAX_TRAILER_BYTES, to_status, trailer_bytes
from services.runtime.server import create_server
from services.runtime.validation import (
    Violations, decode_page_token, encode_page_token, query_scope, time_keyset,
)
from tests import support

SERVICE = "smart110.intake.v1.IntakeService"


def fields(message) -> list[str]:
    return [f for f, _ in request_violations(message)]


def test_a_clean_request_passes():
    report = pb.Report(channel=pb.Report.DESCRIPTOR.fields_by_name["channel"].enum_type.values[1].number,
                       description="有人打架", location=common_pb2.Location(
                           point=common_pb2.GeoPoint(longitude=120.1, latitude=30.2), accuracy_m=5))
    assert fields(pb.UpdateReportRequest(request_id="r-1", report=report)) == []
    check_request(pb.UpdateReportRequest(request_id="r-1", report=report))


def test_a_nul_byte_is_named_by_its_nested_path():
    request = pb.UpdateReportRequest(request_id="r\x00", report=pb.Report(description="a\x00b"))
    assert fields(request) == ["request_id", "report.description"]
    with pytest.raises(InvalidArgument) as err:
        check_request(request)
    assert [f for f, _ in err.value.violations] == ["request_id", "report.description"]


def test_enum_numbers_the_enum_does_not_define():
    request = pb.UpdateReportRequest(report=pb.Report(
        channel=99999, attachments=[common_pb2.Attachment(kind=1), common_pb2.Attachment(kind=-5)],
        location=common_pb2.Location(source=77)))
    assert fields(request) == ["report.channel", "report.location.source", "report.attachments[1].kind"]
    assert fields(pb.ListReportsRequest(channel=-5)) == ["channel"]


def test_non_finite_and_absurd_floats():
    point = common_pb2.GeoPoint(longitude=float("nan"), latitude=float("inf"))
    request = pb.UpdateReportRequest(report=pb.Report(location=common_pb2.Location(point=point, accuracy_m=1e308)))
    assert fields(request) == ["report.location.point.longitude", "report.location.point.latitude",
                               "report.location.accuracy_m"]
    assert fields(common_pb2.GeoPoint(longitude=-float("inf"), latitude=1e15)) == ["longitude"]


def test_floats_past_whole_number_precision_are_out_of_range():
    # 1e29 overflowed the two-place decimals of scoring's points (decimal.InvalidOperation, INTERNAL).
    assert fields(scoring_pb.ReverseLedgerEntryRequest(corrected_points=1e29)) == ["corrected_points"]
    assert fields(scoring_pb.ReverseLedgerEntryRequest(corrected_points=-1e16)) == ["corrected_points"]
    assert fields(scoring_pb.ReverseLedgerEntryRequest(corrected_points=-1e15)) == []


def ts(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def test_timestamps_must_be_valid_and_within_the_suites_range():
    fine = ts(1_780_000_000, 999_999_999)
    assert fields(pb.ListReportsRequest(receive_time_start=fine, receive_time_end=ts(1))) == []
    # Nanos outside 0..999999999 (ToDatetime raised ValueError: INTERNAL).
    assert fields(pb.ListReportsRequest(receive_time_start=ts(1_780_000_000, -243))) == ["receive_time_start"]
    assert fields(pb.ListReportsRequest(receive_time_end=ts(1_780_000_000, 10**9))) == ["receive_time_end"]
    # The zero instant, which the suite reads as "not given" (a handler that asked HasField got None).
    assert fields(pb.ListReportsRequest(receive_time_start=ts(0))) == ["receive_time_start"]
    assert fields(pb.ListReportsRequest(receive_time_start=ts(-1))) == ["receive_time_start"]
    # Near year 9999 a period added to it overflowed (OverflowError: INTERNAL); 3000 is the end.
    assert fields(pb.ListReportsRequest(receive_time_end=ts(253402300799))) == ["receive_time_end"]
    assert fields(pb.ListReportsRequest(receive_time_end=ts(32503680000))) == ["receive_time_end"]
    assert fields(pb.ListReportsRequest(receive_time_end=ts(32503679999, 999_999_999))) == []
    # Nested and repeated ones are named by their paths.
    request = pb.UpdateReportRequest(report=pb.Report(receive_time=ts(1, -1), timeline=[
        pb.TimelineEntry(), pb.TimelineEntry(stamp=common_pb2.AuditStamp(time=ts(2**40)))]))
    assert fields(request) == ["report.receive_time", "report.timeline[1].stamp.time"]
    with pytest.raises(InvalidArgument) as err:
        check_request(pb.ListReportsRequest(receive_time_start=ts(0, -5)))
    assert err.value.violations == [("receive_time_start", "is not a valid timestamp: nanos must be 0 to 999999999")]


def test_durations_must_be_valid_and_at_most_a_century():
    def rule(**kw):
        return alerts_pb.CreateRuleRequest(rule=alerts_pb.Rule(window=duration_pb2.Duration(**kw)))

    assert fields(rule(seconds=3600)) == [] and fields(rule(seconds=-5, nanos=-5)) == []
    assert fields(rule(seconds=MAX_DURATION_SECONDS)) == []
    assert fields(rule(seconds=MAX_DURATION_SECONDS + 1)) == ["rule.window"]
    assert fields(rule(seconds=-315576000000)) == ["rule.window"]
    assert fields(rule(seconds=1, nanos=-1)) == ["rule.window"]
    assert fields(rule(seconds=-1, nanos=1)) == ["rule.window"]
    assert fields(rule(nanos=10**9)) == ["rule.window"]


def test_repeated_strings_and_maps():
    rule = alerts_pb.Rule(areas=["S01", "S\x00"], parameters={"ok": "1", "bad": "x\x00", "k\x00": "v"})
    assert sorted(fields(rule)) == sorted(["areas[1]", "parameters['bad']", "parameters['k\\x00']"])


def test_field_violations_are_capped():
    many = [(f"f{i}", "is bad") for i in range(MAX_FIELD_VIOLATIONS + 15)]
    err = InvalidArgument(many)
    assert len(err.violations) == MAX_FIELD_VIOLATIONS + 1
    assert "15 more" in err.violations[-1][1]
    md = dict(to_status(err).trailing_metadata)
    bad = error_details_pb2.BadRequest()
    assert status_pb2.Status.FromString(md["grpc-status-details-bin"]).details[1].Unpack(bad)
    assert len(bad.field_violations) == MAX_FIELD_VIOLATIONS + 1
    assert [v.field for v in bad.field_violations[:2]] == ["f0", "f1"]


# -- page tokens ------------------------------------------------------------------


def forged(position: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


def rejected(token: str, keys=("t", "id"), **kw) -> bool:
    v = Violations()
    found = decode_page_token(token, v, keys, **kw)
    return found is None and [f for f, _ in v.items] == ["page_token"]


def test_unsigned_and_tampered_tokens_are_refused():
    assert rejected(forged({"t": "not-a-time", "id": 1}))
    assert rejected(forged({"offset": "x"}), ("offset",))
    assert rejected(forged({"offset": -5}), ("offset",))
    token = encode_page_token({"t": "2026-01-01T00:00:00+00:00", "id": "a"})
    assert decode_page_token(token, Violations(), ("t", "id")) == {"t": "2026-01-01T00:00:00+00:00", "id": "a"}
    payload, _, tag = token.partition(".")
    other = base64.urlsafe_b64encode(b'{"t":"2026-01-01T00:00:00+00:00","id":"b"}').decode().rstrip("=")
    assert rejected(other + "." + tag)
    assert rejected(payload)
    assert rejected(payload + "." + tag[:-2])
    assert rejected("%%%.%%%")


def test_signed_tokens_must_still_hold_the_expected_types():
    # Even a token we signed is checked: a timestamp that parses, a non-negative offset.
    assert rejected(encode_page_token({"t": "yesterday", "id": "a"}))
    assert rejected(encode_page_token({"t": "2026-01-01T00:00:00", "id": [1]}))
    assert rejected(encode_page_token({"offset": -5}), ("offset",))
    assert rejected(encode_page_token({"offset": True}), ("offset",))
    assert decode_page_token(encode_page_token({"offset": 50}), Violations(), ("offset",)) == {"offset": 50}
    v = Violations()
    assert time_keyset({"t": None, "id": 1}, v) is None and v.items[0][0] == "page_token"


def test_a_token_from_another_query_is_refused():
    token = encode_page_token({"id": "x"}, query={"station": "S01"})
    assert decode_page_token(token, Violations(), ("id",), query={"station": "S01"}) == {"id": "x"}
    assert rejected(token, ("id",), query={"station": "S02"})
    with query_scope("ListUnits\x00a"):
        scoped = encode_page_token({"id": "x"})
        assert decode_page_token(scoped, Violations(), ("id",)) == {"id": "x"}
    with query_scope("ListUnits\x00b"):
        assert rejected(scoped, ("id",))


def test_a_token_signed_with_another_secret_is_refused(monkeypatch):
    token = encode_page_token({"id": "x"})
    monkeypatch.setenv("PAGE_TOKEN_SECRET", "another-deployment")
    assert rejected(token, ("id",))
    assert decode_page_token(encode_page_token({"id": "x"}), Violations(), ("id",)) == {"id": "x"}


def test_the_query_key_ignores_only_the_paging_fields():
    a = query_key("/m", pb.ListReportsRequest(query="x", page_size=3, page_token="t1"))
    assert a == query_key("/m", pb.ListReportsRequest(query="x", page_size=9))
    assert a != query_key("/m", pb.ListReportsRequest(query="y", page_size=3))
    assert a != query_key("/other", pb.ListReportsRequest(query="x"))


# -- through the server interceptor -----------------------------------------------


class Intake(pb_grpc.IntakeServiceServicer):
    def UpdateReport(self, request, context):
        return request.report

    def GetReport(self, request, context):
        raise NotFound(request.name)

    def StreamEvents(self, request, context):
        yield from ()

    def ListReports(self, request, context):
        v = Violations()
        token = decode_page_token(request.page_token, v, ("offset",))
        v.raise_if_any()
        start = token["offset"] if token else 0
        return pb.ListReportsResponse(next_page_token=encode_page_token({"offset": start + 1}))


@pytest.fixture(scope="module")
def channel():
    server = create_server(port=0, host="127.0.0.1",
                           services=[(pb_grpc.add_IntakeServiceServicer_to_server, Intake(), SERVICE)])
    server.start()
    TARGET[:] = [f"127.0.0.1:{server.port}"]
    with support.channel(TARGET[0]) as ch:
        yield ch
    server.stop(0)


TARGET: list[str] = []


def violations_of(err: grpc.RpcError) -> list[str]:
    md = dict(err.trailing_metadata())
    bad = error_details_pb2.BadRequest()
    for detail in status_pb2.Status.FromString(md["grpc-status-details-bin"]).details:
        if detail.Unpack(bad):
            return [v.field for v in bad.field_violations]
    return []


def test_the_interceptor_answers_hostile_input_with_invalid_argument(channel):
    stub = pb_grpc.IntakeServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateReport(pb.UpdateReportRequest(report=pb.Report(description="a\x00b", channel=99999)), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(err.value) == ["report.channel", "report.description"]


def test_undecodable_bytes_are_invalid_argument_not_internal(channel):
    raw = channel.unary_unary(f"/{SERVICE}/UpdateReport")
    # Field 1 (request_id), length 2, bytes that are not UTF-8.
    with pytest.raises(grpc.RpcError) as err:
        raw(b"\x0a\x02\xff\xfe", timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(err.value) == ["request"]


def test_page_tokens_through_the_interceptor_are_bound_to_the_query(channel):
    stub = pb_grpc.IntakeServiceStub(channel)
    first = stub.ListReports(pb.ListReportsRequest(query="x", page_size=1), timeout=5)
    second = stub.ListReports(pb.ListReportsRequest(query="x", page_size=2, page_token=first.next_page_token),
                              timeout=5)
    assert second.next_page_token and second.next_page_token != first.next_page_token
    for token in (first.next_page_token, forged({"offset": -5}), forged({"offset": "x"})):
        query = "y" if token == first.next_page_token else "x"
        with pytest.raises(grpc.RpcError) as err:
            stub.ListReports(pb.ListReportsRequest(query=query, page_token=token), timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert violations_of(err.value) == ["page_token"]


def test_the_guard_refuses_before_the_handler_runs(channel):
    stub = pb_grpc.IntakeServiceStub(channel)
    # The unknown channel is refused by the guard: the handler (which would name the page token) never runs.
    with pytest.raises(grpc.RpcError) as err:
        stub.ListReports(pb.ListReportsRequest(channel=77, page_token="garbage"), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(err.value) == ["channel"]
    with pytest.raises(grpc.RpcError) as err:
        stub.ListReports(pb.ListReportsRequest(query="a\x00"), timeout=5)
    assert violations_of(err.value) == ["query"]


def test_a_handler_that_checks_nothing_still_answers_invalid_argument(channel):
    # UpdateReport (above) echoes the report without a check: the guard's answer stands.
    stub = pb_grpc.IntakeServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateReport(pb.UpdateReportRequest(report=pb.Report(description="x\x00")), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations_of(err.value) == ["report.description"]


def test_a_status_that_echoes_a_huge_input_still_fits_the_trailers(channel):
    # The name came back whole in the message, ErrorInfo and ResourceInfo: 180 KB of trailers, which
    # a gRPC client refuses (RESOURCE_EXHAUSTED) instead of reading the NOT_FOUND.
    stub = pb_grpc.IntakeServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        stub.GetReport(pb.GetReportRequest(name="reports/" + "长" * 20_000), timeout=5)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert err.value.details().startswith("reports/长长") and err.value.details().endswith("\u2026")
    status = status_pb2.Status.FromString(dict(err.value.trailing_metadata())["grpc-status-details-bin"])
    assert trailer_bytes(status) <= MAX_TRAILER_BYTES
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info) and info.metadata["resource"].startswith("reports/长长")


def details_of(err) -> status_pb2.Status:
    return status_pb2.Status.FromString(dict(to_status(err).trailing_metadata)["grpc-status-details-bin"])


def test_long_field_violations_are_clipped_to_fit():
    status = details_of(InvalidArgument([(f"parameters['{'键' * 500}{i}']", "值" * 500) for i in range(40)]))
    assert trailer_bytes(status) <= MAX_TRAILER_BYTES
    bad = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad)
    assert len(bad.field_violations) == MAX_FIELD_VIOLATIONS + 1
    assert all(v.field.startswith("parameters['键") and v.field.endswith("\u2026") for v in bad.field_violations[:-1])


def test_a_status_that_fits_is_left_whole():
    found = [(f"report.attachments[{i}].uri", "must be an https URL of the evidence store " + "x" * 60)
             for i in range(6)]
    status = details_of(InvalidArgument(found))
    assert status.message == "; ".join(f"{f}: {d}" for f, d in found) and len(status.message) > 500
    bad = error_details_pb2.BadRequest()
    assert status.details[1].Unpack(bad)
    assert [(v.field, v.description) for v in bad.field_violations] == found


def test_long_request_metadata_reaches_the_handler(channel):
    # Envoy forwards a long URL twice (:path, x-envoy-original-path); gRPC's default 8 KiB limit
    # answered RESOURCE_EXHAUSTED or reset the stream (HTTP 429/503) before the handler ran.
    stub = pb_grpc.IntakeServiceStub(channel)
    for size in (9_000, 20_000, 120_000):
        with pytest.raises(grpc.RpcError) as err:
            stub.GetReport(pb.GetReportRequest(name="reports/x"), timeout=5,
                           metadata=(("x-envoy-original-path", "/v1/reports/" + "x" * size),))
        assert err.value.code() == grpc.StatusCode.NOT_FOUND, size


def payload(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("value", [
    "!!!",  # not base64url
    "a" * 5,  # a length base64 cannot have
    payload(b"not json"),
    payload(b"\xff\xfe"),  # not UTF-8
    payload(b'"claims"'), payload(b"[1, 2]"),  # JSON, not an object
    payload(b'{"roles": 5}'), payload(b'{"roles": {"a": 1}}'), payload(b'{"roles": [null, ["x"]]}'),
    payload(b'{"sub": ["x"], "roles": []}'),
], ids=["not-base64", "bad-length", "not-json", "not-utf8", "string", "list", "roles-int", "roles-object",
        "roles-not-strings", "sub-list"])
def test_a_malformed_identity_is_unauthenticated(channel, value):
    # The payload header is never believed (a call with only it has no credential), and a malformed
    # bearer token is refused as such: neither reaches the handler nor leaks an exception's text.
    stub = pb_grpc.IntakeServiceStub(bare(channel))
    for metadata, reason in (((("x-jwt-payload", value),), "CREDENTIAL_MISSING"),
                             ((("authorization", f"Bearer {value}"),), "TOKEN_MALFORMED")):
        for call in (lambda: stub.GetReport(pb.GetReportRequest(name="reports/x"), timeout=5, metadata=metadata),
                     lambda: list(stub.StreamEvents(events_pb2.StreamEventsRequest(), timeout=5,
                                                    metadata=metadata))):
            with pytest.raises(grpc.RpcError) as err:
                call()
            assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
            assert "Exception" not in err.value.details()
            md = dict(err.value.trailing_metadata())
            info = error_details_pb2.ErrorInfo()
            assert status_pb2.Status.FromString(md["grpc-status-details-bin"]).details[0].Unpack(info)
            assert info.reason == reason


def bare(channel) -> grpc.Channel:
    """A channel to the same server that presents no credential of its own."""
    return grpc.insecure_channel(TARGET[0])


def test_a_well_formed_payload_header_is_not_an_identity_but_a_token_is(channel):
    stub = pb_grpc.IntakeServiceStub(bare(channel))
    good = payload(b'{"sub": "p1", "roles": "dispatcher,call_taker", "station": "S01"}')
    with pytest.raises(grpc.RpcError) as err:
        stub.GetReport(pb.GetReportRequest(name="reports/x"), timeout=5, metadata=(("x-jwt-payload", good),))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as err:
        stub.GetReport(pb.GetReportRequest(name="reports/x"), timeout=5,
                       metadata=support.caller(["dispatcher"]))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
