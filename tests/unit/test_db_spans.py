"""SQL statements get client spans inside a sampled trace, and cost no span outside one."""
from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from services.runtime import telemetry


def traced(sampler):
    """An engine whose statements are traced by a provider of its own, that provider's tracer and what it exported."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = create_engine("sqlite://")
    telemetry.instrument_engine(engine, tracer_provider=provider)
    return engine, provider.get_tracer("test"), exporter


def test_a_statement_in_a_sampled_trace_is_a_child_span_with_its_text():
    engine, sampled, exporter = traced(ALWAYS_ON)
    with sampled.start_as_current_span("rpc") as parent, engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        try:
            conn.execute(text("SELECT * FROM no_such_table"))
        except OperationalError:
            pass
    ok, failed = [s for s in exporter.get_finished_spans() if s.name != "rpc"]
    assert ok.name == "SELECT"
    assert ok.parent.span_id == parent.get_span_context().span_id
    assert ok.attributes["db.system"] == "sqlite" and ok.attributes["db.statement"] == "SELECT 1"
    assert ok.attributes["db.operation"] == "SELECT"
    assert failed.attributes["db.statement"].endswith("no_such_table")
    assert not failed.status.is_ok and failed.events[0].name == "exception"


def test_no_span_outside_a_trace_or_in_an_unsampled_one():
    engine, unsampled, exporter = traced(ALWAYS_OFF)
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        with unsampled.start_as_current_span("rpc"):
            conn.execute(text("SELECT 2"))
    assert exporter.get_finished_spans() == ()
