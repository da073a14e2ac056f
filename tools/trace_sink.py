"""A local OTLP/gRPC trace collector for development and tests.

It implements ``opentelemetry.proto.collector.trace.v1.TraceService/Export``
and appends every received span to a file as one JSON line:

    {"trace_id": "<32 hex>", "span_id": "<16 hex>", "parent_span_id": "<16 hex or ''>",
     "name": "...", "kind": "SERVER", "service": "<resource service.name>",
     "scope": "<instrumentation scope name>", "start_ns": 0, "end_ns": 0,
     "attributes": {"key": value}, "status_code": "UNSET", "status_message": ""}

``kind`` is one of UNSPECIFIED, INTERNAL, SERVER, CLIENT, PRODUCER, CONSUMER;
``status_code`` is one of UNSET, OK, ERROR.

Command line (Ctrl-C stops it; ``--port 0`` picks a free port):

    python -m tools.trace_sink --port 4317 --out .run/traces.jsonl

In-process (tests):

    sink = TraceSink(0, tmp_path / "traces.jsonl")
    port = sink.start()
    ...
    spans = wait_for_spans(sink.out_path, lambda s: s["name"] == "x")
    sink.stop()
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time
from concurrent import futures
from pathlib import Path
from typing import Any, Callable

import grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

_MAX_MESSAGE = 64 * 1024 * 1024


def _value(v: common_pb2.AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return {kv.key: _value(kv.value) for kv in v.kvlist_value.values}
    if which == "bytes_value":
        return v.bytes_value.hex()
    return getattr(v, which)


def _attributes(kvs) -> dict[str, Any]:
    return {kv.key: _value(kv.value) for kv in kvs}


def _enum_suffix(name: str, prefix: str) -> str:
    return name[len(prefix):] if name.startswith(prefix) else name


def span_records(request: trace_service_pb2.ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """Flatten an export request into one plain dict per span."""
    out = []
    for rs in request.resource_spans:
        resource = _attributes(rs.resource.attributes)
        service = str(resource.get("service.name", ""))
        for ss in rs.scope_spans:
            for span in ss.spans:
                out.append(
                    {
                        "trace_id": span.trace_id.hex(),
                        "span_id": span.span_id.hex(),
                        "parent_span_id": span.parent_span_id.hex(),
                        "name": span.name,
                        "kind": _enum_suffix(trace_pb2.Span.SpanKind.Name(span.kind), "SPAN_KIND_"),
                        "service": service,
                        "scope": ss.scope.name,
                        "start_ns": span.start_time_unix_nano,
                        "end_ns": span.end_time_unix_nano,
                        "attributes": _attributes(span.attributes),
                        "status_code": _enum_suffix(
                            trace_pb2.Status.StatusCode.Name(span.status.code), "STATUS_CODE_"
                        ),
                        "status_message": span.status.message,
                    }
                )
    return out


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, sink: "TraceSink"):
        self._sink = sink

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        self._sink._write(span_records(request))
        return trace_service_pb2.ExportTraceServiceResponse()


class TraceSink:
    """OTLP/gRPC trace collector writing spans as JSON lines to ``out_path``.

    ``port`` 0 picks a free port; ``start()`` returns the bound port, which is
    also available as ``port`` afterwards.  The output file is appended to, and
    its directory is created if needed.
    """

    def __init__(self, port: int, out_path: str | Path, host: str = "127.0.0.1"):
        self.host = host
        self.port = port
        self.out_path = Path(out_path)
        self.spans_received = 0
        self._lock = threading.Lock()
        self._server: grpc.Server | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` to give an OTLP gRPC exporter."""
        return f"{self.host}:{self.port}"

    def start(self) -> int:
        if self._server is not None:
            return self.port
        self.out_path.parent.mkdir(parents=True, exist_ok=True)
        self.out_path.touch()
        server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="trace-sink"),
            # No SO_REUSEPORT: a second sink on a busy port must fail, not split the spans.
            options=[("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.so_reuseport", 0)],
        )
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), server)
        try:
            bound = server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as exc:
            raise OSError(f"trace sink cannot listen on {self.host}:{self.port}: {exc}") from exc
        if not bound:
            raise OSError(f"trace sink cannot listen on {self.host}:{self.port}")
        server.start()
        self.port = bound
        self._server = server
        return bound

    def stop(self, grace: float | None = 1.0) -> None:
        if self._server is not None:
            self._server.stop(grace).wait()
            self._server = None

    def __enter__(self) -> "TraceSink":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _write(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        lines = "".join(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in records)
        with self._lock:
            with open(self.out_path, "a", encoding="utf-8") as f:
                f.write(lines)
            self.spans_received += len(records)


def read_spans(path: str | Path) -> list[dict[str, Any]]:
    """All spans written so far; a missing file gives an empty list.

    A trailing line that is still being written is ignored.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    spans = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            spans.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return spans


def wait_for_spans(
    path: str | Path,
    predicate: Callable[[dict[str, Any]], bool] | None = None,
    count: int = 1,
    timeout: float = 10.0,
) -> list[dict[str, Any]]:
    """Poll ``path`` until at least ``count`` spans match ``predicate``.

    Returns the matching spans; raises ``TimeoutError`` if they do not arrive.
    """
    deadline = time.monotonic() + timeout
    while True:
        spans = [s for s in read_spans(path) if predicate is None or predicate(s)]
        if len(spans) >= count:
            return spans
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{len(spans)} of {count} spans arrived in {path} within {timeout}s")
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.trace_sink", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4317, help="port to listen on, 0 for a free one (default 4317)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--out", default=".run/traces.jsonl", help="JSON-lines file to append spans to")
    args = parser.parse_args(argv)

    sink = TraceSink(args.port, args.out, host=args.host)
    try:
        port = sink.start()
    except OSError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"trace sink listening on {args.host}:{port}, writing {sink.out_path}", flush=True)
    stopped = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopped.set())
    while not stopped.wait(0.5):
        pass
    sink.stop()
    print(f"trace sink stopped after {sink.spans_received} spans", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
