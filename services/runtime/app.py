"""Process entry point shared by every service: `python -m services.<svc> [serve|migrate|seed]`.

- `migrate`: when ADMIN_DATABASE_URL is set, first creates the service's role
  and schema (password SERVICE_DB_PASSWORD), then applies its Alembic history
  as the service role (DATABASE_URL).
- `seed`: loads the service's sample data (idempotent).
- `serve` (default): serves gRPC until SIGTERM.
"""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import grpc
from sqlalchemy import MetaData, Table
from sqlalchemy.engine import Engine

from . import db, feed_admin, metrics, migrate, telemetry, txguard
from .config import Settings, env_str, service_address
from .consumer import RENEW_SECONDS, FeedConsumer, Subscription, cursor_table, dead_letter_table, inbox_table
from .feed import Feed, readers_table
from .logs import setup_logging
from .outbox import Idempotency, Outbox, idempotency_table, outbox_table
from .periodic import Periodic
from .retention import INTERVAL_SECONDS as RETENTION_INTERVAL
from .retention import Retention, marks_table
from .server import create_server

log = logging.getLogger("smart110.app")


@dataclass
class RuntimeTables:
    """The runtime's tables inside one service's schema."""

    outbox: Table
    idempotency: Table
    cursors: Table
    inbox: Table
    marks: Table
    dead_letters: Table
    readers: Table

    @classmethod
    def add_to(cls, metadata: MetaData) -> "RuntimeTables":
        return cls(
            outbox=outbox_table(metadata),
            idempotency=idempotency_table(metadata),
            cursors=cursor_table(metadata),
            inbox=inbox_table(metadata),
            marks=marks_table(metadata),
            dead_letters=dead_letter_table(metadata),
            readers=readers_table(metadata),
        )


@dataclass
class Runtime:
    """What a service's wiring gets: settings, database, outbox, feed, consumers."""

    settings: Settings
    engine: Engine
    tables: RuntimeTables
    outbox: Outbox
    idempotency: Idempotency
    feed: Feed
    consumers: list[FeedConsumer] = field(default_factory=list)
    # Background workers (start()/stop()), run like consumers: started once the
    # server serves, stopped when it drains.
    workers: list = field(default_factory=list)
    _channels: list[grpc.Channel] = field(default_factory=list)

    def channel(self, service: str, options: list[tuple] | None = None) -> grpc.Channel:
        """A channel to another service; calls on it refuse to run inside a transaction (txguard)."""
        ch = grpc.insecure_channel(service_address(service), options=options)
        self._channels.append(ch)
        return txguard.guard(ch)

    def consume(self, source: str, stub_cls, subscriptions: dict[str, Subscription]) -> FeedConsumer:
        """Consumes another service's feed with a cursor and inbox in this service's schema."""
        stub = stub_cls(self.channel(source))
        consumer = FeedConsumer(
            source=source,
            open_stream=lambda req, timeout: stub.StreamEvents(req, wait_for_ready=True, timeout=timeout),
            consumer=self.settings.service,
            renew_seconds=RENEW_SECONDS,
            engine=self.engine,
            cursors=self.tables.cursors,
            inbox=self.tables.inbox,
            subscriptions=subscriptions,
            dead_letters=self.tables.dead_letters,
        )
        self.consumers.append(consumer)
        return consumer

    def every(self, name: str, interval: float, work: Callable[[], None]) -> "Periodic":
        """Runs `work()` every `interval` seconds while the service serves (a sweeper)."""
        worker = Periodic(name, interval, work)
        self.workers.append(worker)
        return worker

    def idempotent(self, method: str, request, response_type, work: Callable):
        """Runs `work(conn)` once per request_id in one transaction; a retry gets the first answer."""
        with self.engine.begin() as conn:
            cached = self.idempotency.claim(conn, method, request, response_type)
            if cached is not None:
                return cached
            response = work(conn)
            self.idempotency.remember(conn, method, request, response)
            return response

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        for consumer in self.consumers:
            consumer.stop()
        self.feed.close()
        for ch in self._channels:
            ch.close()
        self.engine.dispose()


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    metadata: MetaData
    tables: RuntimeTables
    migrations: Path
    # Registers servicers; returns (add_XServicer_to_server, servicer, full service name) triples.
    build: Callable[[Runtime], list[tuple]]
    seed: Callable[[Runtime], None] | None = None


def open_runtime(spec: ServiceSpec, settings: Settings) -> Runtime:
    engine = db.make_engine(settings.database_url, pool_size=settings.db_pool_size, application_name=spec.name)
    telemetry.instrument_engine(engine)
    return Runtime(
        settings=settings,
        engine=engine,
        tables=spec.tables,
        outbox=Outbox(spec.tables.outbox, spec.name),
        idempotency=Idempotency(spec.tables.idempotency),
        feed=Feed(engine, spec.tables.outbox, settings.database_url, spec.name, marks=spec.tables.marks,
                  readers=spec.tables.readers),
    )


def start_metrics_endpoint(settings: Settings):
    """Serves Prometheus /metrics on METRICS_PORT; returns the HTTP server (None when disabled)."""
    if settings.metrics_port == 0:
        log.info("metrics endpoint disabled (METRICS_PORT=0)")
        return None
    from prometheus_client import start_http_server

    try:
        httpd, _thread = start_http_server(settings.metrics_port, addr=settings.listen_host)
    except OSError as exc:
        raise SystemExit(
            f"cannot serve metrics on {settings.listen_host}:{settings.metrics_port}: {exc}"
        ) from exc
    log.info("metrics on http://%s:%d/metrics", settings.listen_host, settings.metrics_port,
             extra={"metrics_port": settings.metrics_port})
    return httpd


def assemble(spec: ServiceSpec, rt: Runtime) -> list[tuple]:
    """The service's servicers (its `build`) and the runtime's own: FeedAdminService, operators' hand on
    the events the service's consumers parked, in every service that consumes a feed."""
    servicers = spec.build(rt)
    if rt.consumers:
        servicers = [*servicers, feed_admin.registration(rt)]
    return servicers


def serve(spec: ServiceSpec, settings: Settings) -> None:
    metrics.set_service(spec.name)
    telemetry.setup_tracing(spec.name, settings.traces_exporter, settings.otlp_endpoint)
    rt = open_runtime(spec, settings)
    servicers = assemble(spec, rt)
    t = rt.tables
    rt.every("retention", RETENTION_INTERVAL, Retention(rt.engine, outbox=t.outbox, inbox=t.inbox,
                                                         idempotency=t.idempotency, marks=t.marks,
                                                         readers=t.readers).prune)
    server = create_server(
        port=settings.grpc_port, host=settings.listen_host, services=servicers, max_workers=settings.max_workers
    )
    httpd = start_metrics_endpoint(settings)
    if httpd is not None:
        server.on_stop(httpd.shutdown)
    rt.feed.start()
    server.on_drain(rt.feed.close)
    for consumer in rt.consumers:
        server.on_drain(consumer.stop)
    for worker in rt.workers:
        server.on_drain(worker.stop)
    server.on_stop(rt.close)
    server.on_stop(telemetry.shutdown_tracing)
    server.start()
    for consumer in rt.consumers:
        consumer.start()
    for worker in rt.workers:
        worker.start()
    log.info("%s serving gRPC on port %d", spec.name, server.port, extra={"port": server.port})
    server.run_until_signal(settings.shutdown_grace_seconds, settings.readiness_grace_seconds)


def run_migrations(spec: ServiceSpec, settings: Settings) -> None:
    admin = env_str("ADMIN_DATABASE_URL")
    if admin:
        password = env_str("SERVICE_DB_PASSWORD")
        if not password:
            raise SystemExit("configuration error: SERVICE_DB_PASSWORD is required with ADMIN_DATABASE_URL")
        db.ensure_service_database(admin, spec.name, password, reset_password=True)
    migrate.upgrade(spec.migrations, settings.database_url, spec.name)


def main(spec: ServiceSpec, argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    action = args[0] if args else "serve"
    settings = Settings.from_env(spec.name)
    setup_logging(spec.name, settings.log_level)
    if action == "serve":
        serve(spec, settings)
    elif action == "migrate":
        run_migrations(spec, settings)
    elif action == "seed":
        if spec.seed is None:
            log.info("%s has no sample data", spec.name)
            return
        rt = open_runtime(spec, settings)
        try:
            spec.seed(rt)
        finally:
            rt.engine.dispose()
    else:
        raise SystemExit(f"usage: python -m services.{spec.name} [serve|migrate|seed]")
