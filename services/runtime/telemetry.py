"""OpenTelemetry: traces through gRPC server and client and SQLAlchemy.

The exporter is chosen by OTEL_TRACES_EXPORTER: otlp, console or none.
W3C trace context travels in gRPC metadata and inside feed events.
"""
from __future__ import annotations

from typing import Mapping

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import GrpcInstrumentorClient, GrpcInstrumentorServer
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

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


def instrument_engine(engine) -> None:
    SQLAlchemyInstrumentor().instrument(engine=engine, enable_commenter=False)


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
