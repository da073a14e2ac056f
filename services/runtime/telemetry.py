"""OpenTelemetry: traces through gRPC server and client and SQL statements.

The exporter is chosen by OTEL_TRACES_EXPORTER: otlp, console or none.
W3C trace context travels in gRPC metadata and inside feed events.
"""
from __future__ import annotations

from typing import Mapping

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient, GrpcInstrumentorServer
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
from opentelemetry.trace import Status, StatusCode
from sqlalchemy import event

_configured = False


def setup_tracing(service: str, exporter: str, otlp_endpoint: str) -> None:
    """Installs the tracer provider and instruments gRPC; call before creating servers or channels."""
    global _configured
    if _configured:
        return
    _configured = True
    provider = TracerProvider(resource=Resource.create({"service.name": f"smart110-{service}"}))
    if exporter == "otlp":
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint, insecure=True), schedule_delay_millis=200)
        )
    elif exporter == "console":
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)

    GrpcInstrumentorServer().instrument()
    GrpcInstrumentorClient().instrument()


# A statement's text kept on its span (longer ones are cut: a batch insert's VALUES list says nothing more).
MAX_STATEMENT_CHARS = 2000


def instrument_engine(engine, tracer_provider=None) -> None:
    """A client span per SQL statement (db.system, db.name, db.user, db.statement, db.operation), made
    only inside a sampled trace. The contrib SQLAlchemy instrumentation builds a span and its attributes
    for every statement and lets the sampler drop it afterwards: with a tenth of traces sampled that
    was about a fifth of a feed consumer's CPU (profiled under `make bench ONLY=throughput`). Here an
    unsampled statement costs one look at the current span."""
    tracer = trace.get_tracer("smart110.db", tracer_provider=tracer_provider)
    url = engine.url
    base = {"db.system": engine.dialect.name, "db.name": url.database or "", "db.user": url.username or ""}

    def before(conn, cursor, statement, parameters, context, executemany):
        if not trace.get_current_span().get_span_context().trace_flags.sampled:
            return
        operation = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else "SQL"
        context._smart110_span = tracer.start_span(
            f"{operation} {base['db.name']}".strip(), kind=trace.SpanKind.CLIENT,
            attributes={**base, "db.operation": operation, "db.statement": statement[:MAX_STATEMENT_CHARS]})

    def after(conn, cursor, statement, parameters, context, executemany):
        span = getattr(context, "_smart110_span", None)
        if span is not None:
            span.end()
            context._smart110_span = None

    def failed(exception_context):
        span = getattr(exception_context.execution_context, "_smart110_span", None)
        if span is not None:
            error = exception_context.original_exception
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            span.record_exception(error)
            span.end()
            exception_context.execution_context._smart110_span = None

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


def shutdown_tracing() -> None:
    provider = trace.get_tracer_provider()
    if hasattr(provider, "shutdown"):
        provider.shutdown()


def current_trace_context() -> dict[str, str]:
    """The current W3C trace context, to store beside an event."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


def context_from(carrier: Mapping[str, str]):
    return propagate.extract(dict(carrier))


def current_trace_id() -> str:
    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else ""


def tracer(name: str):
    return trace.get_tracer(name)
