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
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterator

import grpc
from prometheus_client import start_http_server
from sqlalchemy import MetaData, Table

from smart110.common.v1 import events_pb2
from sqlalchemy.engine import Engine

from . import db, feed_admin, identity, metrics, migrate, policy, telemetry, txguard
from .admission import Admission
from .auth import SERVICE_CONTEXT, AuthContext
from .config import Settings, env_str, service_address
from .consumer import RENEW_SECONDS, FeedConsumer, Subscription, cursor_table, dead_letter_table, inbox_table
from .feed import Feed, readers_table
from .logs import setup_logging
from .outbox import Idempotency, Outbox, idempotency_table, outbox_table
from .periodic import Periodic
from .retention import INTERVAL_SECONDS as RETENTION_INTERVAL
from .retention import Retention, marks_table
from .server import create_server
from .timeutil import now as wall_clock
from .uow import EventMapping, UnitOfWork, no_event_mapping

log = logging.getLogger("smart110.app")

# gRPC's default reconnect pauses grow to two minutes: a service restarted in a rolling update
# would be reached by its callers and feed consumers only minutes after it serves again. The
# callers retry on their own schedules, so the channel tries again within two seconds.
RECONNECT_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                     ("grpc.max_reconnect_backoff_ms", 2000)]


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
    # This service's own credential for its outbound calls.
    credential: identity.ServiceCredential = field(default_factory=identity.ServiceCredential.from_env)
    # The clock every unit of work reads (tests inject a settable one).
    clock: Callable[[], datetime] = wall_clock
    # The service's own dependencies (settings, clients, caches), set by its wiring; handlers
    # and prepare steps reach it as `uow.context` / their first argument.
    context: Any = None
    # The service's domain event -> outbox message mapping (its mapping.py).
    event_mapping: EventMapping = no_event_mapping
    # conn -> the service's repositories on that connection (its store.py).
    repositories: Callable[[Any], Any] | None = None

    def channel(self, service: str, options: list[tuple] | None = None) -> grpc.Channel:
        """A channel to another service, presenting this service's credential; calls on it refuse
        to run inside a transaction (txguard). Reconnects within RECONNECT_OPTIONS' pauses."""
        ch = grpc.insecure_channel(service_address(service), options=[*RECONNECT_OPTIONS, *(options or [])])
        self._channels.append(ch)
        return txguard.guard(identity.with_credential(ch, self.credential.token))

    def subscribe(self, event_handlers: dict[str, dict[str, Subscription]]) -> None:
        """Wires a service's EVENT_HANDLERS ({source: {event type: Subscription}}) to the feeds.

        Each handler runs on a unit of work in the consumer's transaction; each prepare step
        gets `self.context` before it.
        """
        for source, subscriptions in event_handlers.items():
            channel = self.channel(source)
            stream = channel.unary_stream(
                feed_method(source),
                request_serializer=events_pb2.StreamEventsRequest.SerializeToString,
                response_deserializer=events_pb2.Event.FromString,
            )
            consumer = FeedConsumer(
                source=source,
                open_stream=lambda req, timeout, stream=stream: stream(req, wait_for_ready=True, timeout=timeout),
                consumer=self.settings.service,
                renew_seconds=RENEW_SECONDS,
                engine=self.engine,
                cursors=self.tables.cursors,
                inbox=self.tables.inbox,
                subscriptions=subscriptions,
                dead_letters=self.tables.dead_letters,
                unit_of_work=self.unit_of_work,
                context=self.context,
            )
            self.consumers.append(consumer)

    def unit_of_work(self, conn, actor: AuthContext = SERVICE_CONTEXT) -> UnitOfWork:
        """A unit of work on an open transaction's connection."""
        return UnitOfWork(conn=conn, outbox=self.outbox, clock=self.clock, actor=actor, context=self.context,
                          repos=self.repositories(conn) if self.repositories is not None else None,
                          event_mapping=self.event_mapping, scope=policy.jurisdiction_of(actor))

    @contextmanager
    def transaction(self, actor: AuthContext = SERVICE_CONTEXT) -> Iterator[UnitOfWork]:
        """A unit of work in a new transaction; its recorded events are published before the commit."""
        with self.engine.begin() as conn:
            uow = self.unit_of_work(conn, actor)
            yield uow
            uow.flush()

    def idempotent_work(self, method: str, request, response_type, work: Callable[[UnitOfWork], Any],
                        *, actor: AuthContext = SERVICE_CONTEXT, respond: Callable[[Any], Any] | None = None):
        """Runs `work(uow)` once per request_id in one unit of work; a retry gets the first answer.

        `respond` turns work's result (domain objects) into the response message; without it the
        result is the response.
        """
        with self.transaction(actor) as uow:
            cached = self.idempotency.claim(uow.conn, method, request, response_type)
            if cached is not None:
                return cached
            result = work(uow)
            response = respond(result) if respond is not None else result
            self.idempotency.remember(uow.conn, method, request, response)
            return response

    def every(self, name: str, interval: float, work: Callable[[], None]) -> "Periodic":
        """Runs `work()` every `interval` seconds while the service serves (a sweeper)."""
        worker = Periodic(name, interval, work)
        self.workers.append(worker)
        return worker

    def close(self) -> None:
        # The feed first, as a draining server does: workers waiting on it for new commits wake at once.
        self.feed.close()
        for worker in self.workers:
            worker.stop()
        for consumer in self.consumers:
            consumer.stop()
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
    # {source service: {event type: Subscription}}: the handlers module's EVENT_HANDLERS.
    event_handlers: dict = field(default_factory=dict)
    # The service's domain event -> outbox message mapping (mapping.py).
    event_mapping: EventMapping = no_event_mapping
    # conn -> the service's repositories on that connection (store.py `Repositories`).
    repositories: Callable[[Any], Any] | None = None
    # Full names of services anyone may call without a credential (they authenticate inside the
    # request, as Open311 does with its api_key) -> the identity their calls run with.
    public: dict = field(default_factory=dict)
    # Full service name -> its access table (the service's policy.py, see services.runtime.policy).
    policies: dict = field(default_factory=dict)
    # Further commands (`python -m services.<name> <command> [args]`) -> function(args); they run
    # without the service's settings (a command that needs the database reads DATABASE_URL itself).
    commands: dict = field(default_factory=dict)
    # Commands that work on the service's own runtime (`python -m services.<name> <command> [args]`)
    # -> function(rt, args): the runtime is opened from the service's settings, as `seed`'s is, and
    # closed after.
    runtime_commands: dict = field(default_factory=dict)
    # Loads what a first request would otherwise wait for (indexes, dictionaries), once at start-up,
    # before the port is bound.
    warm_up: Callable[[Runtime], None] | None = None
    # The largest request message the server takes, in bytes (None: gRPC's 4 MiB), e.g. for uploads.
    max_message_bytes: int | None = None


def feed_method(source: str) -> str:
    """The StreamEvents method of a service's feed: intake -> /smart110.intake.v1.IntakeService/StreamEvents."""
    return f"/smart110.{source}.v1.{source.capitalize()}Service/StreamEvents"


def all_policies(spec: ServiceSpec) -> dict:
    """The service's access tables and the runtime's own (operators' FeedAdminService)."""
    return {**spec.policies, **feed_admin.POLICIES}


def adopt(spec: ServiceSpec, rt: Runtime) -> None:
    """Gives the runtime the service's event mapping and repositories, so its units of work have them."""
    rt.event_mapping = spec.event_mapping
    rt.repositories = spec.repositories


def assemble(spec: ServiceSpec, rt: Runtime) -> list[tuple]:
    """The service's servicers (its `build`), with its event handlers wired to the feeds it consumes,
    and the runtime's own: FeedAdminService, operators' hand on the events the service's consumers
    parked, in every service that consumes a feed."""
    adopt(spec, rt)
    servicers = spec.build(rt)
    rt.subscribe(spec.event_handlers)
    if rt.consumers:
        servicers = [*servicers, feed_admin.registration(rt)]
    return servicers


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
    try:
        httpd, _thread = start_http_server(settings.metrics_port, addr=settings.listen_host)
    except OSError as exc:
        raise SystemExit(
            f"cannot serve metrics on {settings.listen_host}:{settings.metrics_port}: {exc}"
        ) from exc
    log.info("metrics on http://%s:%d/metrics", settings.listen_host, settings.metrics_port,
             extra={"metrics_port": settings.metrics_port})
    return httpd


def serve(spec: ServiceSpec, settings: Settings) -> None:
    metrics.set_service(spec.name)
    telemetry.setup_tracing(spec.name, settings.traces_exporter, settings.otlp_endpoint)
    rt = open_runtime(spec, settings)
    servicers = assemble(spec, rt)
    t = rt.tables
    rt.every("retention", RETENTION_INTERVAL, Retention(rt.engine, outbox=t.outbox, inbox=t.inbox,
                                                         idempotency=t.idempotency, marks=t.marks,
                                                         readers=t.readers).prune)
    if spec.warm_up is not None:
        # Before the port is bound: a caller is refused (and retries elsewhere) rather than left
        # waiting in the listen queue while the service loads.
        started = time.monotonic()
        spec.warm_up(rt)
        log.info("%s warmed up in %.1fs", spec.name, time.monotonic() - started)
    server = create_server(
        port=settings.grpc_port, host=settings.listen_host, services=servicers, max_workers=settings.max_workers,
        public=spec.public, policies=all_policies(spec),
        admission=Admission(settings.max_concurrent_calls, settings.admission_wait_seconds),
        max_message_bytes=spec.max_message_bytes, reuse_port=settings.reuse_port,
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
    if action in spec.commands:
        spec.commands[action](args[1:])
        return
    settings = Settings.from_env(spec.name)
    setup_logging(spec.name, settings.log_level)
    if action in spec.runtime_commands:
        rt = open_runtime(spec, settings)
        adopt(spec, rt)
        try:
            spec.runtime_commands[action](rt, args[1:])
        finally:
            rt.engine.dispose()
        return
    if action == "serve":
        serve(spec, settings)
    elif action == "migrate":
        run_migrations(spec, settings)
    elif action == "seed":
        if spec.seed is None:
            log.info("%s has no sample data", spec.name)
            return
        rt = open_runtime(spec, settings)
        adopt(spec, rt)
        try:
            spec.seed(rt)
        finally:
            rt.engine.dispose()
    else:
        raise SystemExit(f"usage: python -m services.{spec.name} "
                         f"[{'|'.join(['serve', 'migrate', 'seed', *spec.commands, *spec.runtime_commands])}]")
