"""The local OTLP trace collector receives real SDK exports and writes JSON lines."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from tools.trace_sink import TraceSink, read_spans, wait_for_spans

REPO = Path(__file__).resolve().parents[2]


def export_spans(endpoint: str, service: str):
    """Export a parent and a child span with the SDK's OTLP gRPC exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True, timeout=5)))
    tracer = provider.get_tracer("smart110.test")
    with tracer.start_as_current_span("IntakeService/ReportIncident", kind=SpanKind.SERVER) as parent:
        parent.set_attribute("rpc.system", "grpc")
        parent.set_attribute("report.count", 3)
        parent.set_attribute("score", 0.5)
        parent.set_attribute("urgent", True)
        parent.set_attribute("tags", ["110", "12345"])
        with tracer.start_as_current_span("db.insert", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.ERROR, "constraint violated"))
    provider.shutdown()
    return parent.get_span_context(), child.get_span_context()


def test_sink_receives_sdk_export(tmp_path):
    out = tmp_path / "nested" / "traces.jsonl"
    sink = TraceSink(0, out)
    port = sink.start()
    try:
        assert port > 0 and sink.port == port
        parent_ctx, child_ctx = export_spans(f"127.0.0.1:{port}", "intake")
        spans = wait_for_spans(out, count=2, timeout=10)
    finally:
        sink.stop()

    by_name = {s["name"]: s for s in spans}
    parent = by_name["IntakeService/ReportIncident"]
    child = by_name["db.insert"]
    assert parent["trace_id"] == format(parent_ctx.trace_id, "032x")
    assert parent["span_id"] == format(parent_ctx.span_id, "016x")
    assert parent["parent_span_id"] == ""
    assert parent["service"] == "intake"
    assert parent["scope"] == "smart110.test"
    assert parent["kind"] == "SERVER"
    assert parent["status_code"] == "UNSET"
    assert parent["attributes"] == {
        "rpc.system": "grpc", "report.count": 3, "score": 0.5, "urgent": True, "tags": ["110", "12345"],
    }
    assert 0 < parent["start_ns"] <= child["start_ns"] <= child["end_ns"] <= parent["end_ns"]
    assert child["trace_id"] == parent["trace_id"]
    assert child["span_id"] == format(child_ctx.span_id, "016x")
    assert child["parent_span_id"] == parent["span_id"]
    assert child["kind"] == "CLIENT"
    assert child["status_code"] == "ERROR" and child["status_message"] == "constraint violated"
    assert sink.spans_received == 2
    assert read_spans(out) == spans


def test_sink_appends_and_context_manager(tmp_path):
    out = tmp_path / "traces.jsonl"
    for service in ("dispatch", "referral"):
        with TraceSink(0, out) as sink:
            export_spans(sink.endpoint, service)
            wait_for_spans(out, lambda s: s["service"] == service, count=2)
    assert [s["service"] for s in read_spans(out)] == ["dispatch"] * 2 + ["referral"] * 2


def test_read_spans_tolerates_missing_file_and_partial_line(tmp_path):
    path = tmp_path / "traces.jsonl"
    assert read_spans(path) == []
    path.write_text('{"name": "a"}\n\n{"name": "b"}\n{"name": "c', encoding="utf-8")
    assert [s["name"] for s in read_spans(path)] == ["a", "b"]
    with pytest.raises(TimeoutError):
        wait_for_spans(path, lambda s: s["name"] == "z", timeout=0.2)


def test_port_in_use_is_reported(tmp_path):
    with TraceSink(0, tmp_path / "a.jsonl") as first:
        with pytest.raises(OSError):
            TraceSink(first.port, tmp_path / "b.jsonl").start()


def test_command_line(tmp_path):
    out = tmp_path / "cli" / "traces.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.trace_sink", "--port", "0", "--out", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        line = proc.stdout.readline()
        assert "listening on 127.0.0.1:" in line, line
        port = int(line.split("127.0.0.1:")[1].split(",")[0])
        parent_ctx, _ = export_spans(f"127.0.0.1:{port}", "alerts")
        spans = wait_for_spans(out, count=2)
        assert {s["trace_id"] for s in spans} == {format(parent_ctx.trace_id, "032x")}
        assert {s["service"] for s in spans} == {"alerts"}
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert "stopped after 2 spans" in rest
