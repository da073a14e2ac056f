"""Helpers the integration tests share: databases of their own, callers' identities, error details."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from threading import Lock
from typing import Callable

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from smart110.common.v1 import events_pb2

from services.runtime.db import sqlalchemy_url
from services.runtime.identity import with_credential
from tools.token import mint, mint_service


def own_database(admin_url: str, name: str) -> str:
    """An admin URL of a new, empty database `name` on the same server (an older one is dropped first).

    Tests that run a service in-process use one: the whole suite, when the
    same session also runs it, works in the server's main database, and its
    consumers and sweepers would otherwise act on these tests' rows.
    """
    engine = create_engine(sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    engine = create_engine(sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def caller(roles: list[str], *, station: str = "", sub: str = "tester", name: str = "") -> tuple:
    """Call metadata of a person signed in with these roles: a development token, as the gateway forwards it.

    The `service` role is not a person's: asking for it gives a service credential instead.
    """
    if "service" in roles:
        return (("authorization", f"Bearer {service_token(sub if sub != 'tester' else 'tests')}"),)
    token = mint(roles=list(roles), station=station or None, sub=sub, name=name or None)
    return (("authorization", f"Bearer {token}"),)


def service_token(service: str = "tests") -> str:
    """A development service credential (role `service`, valid for 30 days), minted once: every call
    a service under test makes to another asks for one."""
    if service not in _SERVICE_TOKENS:
        _SERVICE_TOKENS[service] = mint_service(service)
    return _SERVICE_TOKENS[service]


_SERVICE_TOKENS: dict[str, str] = {}


def channel(target: str, options=None) -> grpc.Channel:
    """A channel to a service that presents a service credential on calls carrying no identity of their own."""
    return with_credential(grpc.insecure_channel(target, options=options), service_token)


def _details(err: grpc.RpcError, kind):
    status = rpc_status.from_call(err)
    assert status is not None, "the error carries a google.rpc.Status"
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            yield message


def violation_pairs(err: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of an error's google.rpc.BadRequest."""
    return [(v.field, v.description) for bad in _details(err, error_details_pb2.BadRequest)
            for v in bad.field_violations]


def field_violations(err: grpc.RpcError) -> list[str]:
    """The fields an error's google.rpc.BadRequest names."""
    return [field for field, _ in violation_pairs(err)]


def error_reason(err: grpc.RpcError) -> str:
    """The reason of an error's google.rpc.ErrorInfo, "" without one."""
    return next((info.reason for info in _details(err, error_details_pb2.ErrorInfo)), "")


# -- one harness for every service -------------------------------------------------------

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)  # noon in the city


@dataclass
class Clock:
    """A clock the test sets and moves by hand; every unit of work of a served service reads it."""

    t: datetime = START
    _lock: Lock = field(default_factory=Lock)

    def __call__(self) -> datetime:
        with self._lock:
            return self.t

    def set(self, t: datetime) -> None:
        with self._lock:
            self.t = t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += timedelta(seconds=seconds)


@dataclass
class Served:
    """One service served in-process: its runtime, a channel to it and its clock."""

    rt: object
    channel: grpc.Channel
    clock: Clock
    _seq: dict = field(default_factory=dict)

    def consumer(self, source: str):
        return next(c for c in self.rt.consumers if c.source == source)

    def deliver(self, source: str, event_type: str, subject: str, payload) -> bool:
        """Hands an event to the real consumer of `source`'s feed, as if read from that feed."""
        seq = self._seq[source] = self._seq.get(source, 0) + 1
        event = events_pb2.Event(event_id=str(uuid.uuid4()), sequence=seq, type=event_type, subject=subject,
                                 source=source)
        event.occur_time.FromDatetime(self.clock())
        event.payload.Pack(payload)
        return self.consumer(source).apply(event)

    def events(self, types: list[str] | None = None, subject: str | None = None) -> list:
        """The events the service published so far (envelopes, payload packed), oldest first."""
        out = []
        for e in _outbox_rows(self.rt):
            if (types and e.type not in types) or (subject and e.subject != subject):
                continue
            out.append(e)
        return out


def _outbox_rows(rt) -> list:
    table = rt.tables.outbox
    with rt.engine.connect() as conn:
        rows = conn.execute(select(table).order_by(table.c.sequence)).all()
    out = []
    for r in rows:
        event = events_pb2.Event(event_id=str(r.event_id), sequence=r.sequence, type=r.type, subject=r.subject,
                                 source=rt.outbox.source)
        event.payload.type_url = r.payload_type
        event.payload.value = r.payload
        out.append(event)
    return out


def fresh_service_database(admin_url: str, service: str) -> str:
    """A URL of a new database with the service's schema, for that service alone."""
    url = own_database(admin_url, f"{service}_it_{uuid.uuid4().hex[:8]}")
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{service}"'))
    engine.dispose()
    return url


@contextmanager
def serving(spec, admin_url: str, *, clock: Clock | None = None, seed: bool = True, workers: bool = False,
            context: Callable | None = None) -> Iterator[Served]:
    """A service as `serve` assembles it, on a fresh database migrated to head, on a free port.

    Its feed consumers are built but not started: `Served.deliver` hands them events.
    Its background workers start only with `workers=True`. `context(rt)`, when given,
    runs before the service is assembled (to set settings the wiring reads).
    """
    from services.runtime import migrate
    from services.runtime.app import all_policies, assemble, open_runtime
    from services.runtime.config import Settings
    from services.runtime.server import create_server

    url = fresh_service_database(admin_url, spec.name)
    migrate.upgrade(spec.migrations, url, spec.name)
    clock = clock or Clock()
    rt = open_runtime(spec, Settings(service=spec.name, grpc_port=0, database_url=url))
    rt.clock = clock
    server = None
    try:
        if context is not None:
            context(rt)
        servicers = assemble(spec, rt)
        if seed and spec.seed is not None:
            spec.seed(rt)
        if spec.warm_up is not None:
            spec.warm_up(rt)
        server = create_server(port=0, host="127.0.0.1", services=servicers, public=spec.public,
                               policies=all_policies(spec), max_message_bytes=spec.max_message_bytes)
        rt.feed.start()
        server.start()
        if workers:
            for w in rt.workers:
                w.start()
        with channel(f"127.0.0.1:{server.port}") as ch:
            yield Served(rt, ch, clock)
    finally:
        if server is not None:
            server.stop(1)
        rt.close()


# -- service-layer tests on a fake unit of work ---------------------------------------------

class FakeOutbox:
    """Collects what a unit of work publishes: (event type, subject, payload message)."""

    source = "test"

    def __init__(self):
        self.events: list[tuple] = []

    def publish(self, conn, event_type: str, subject: str, payload) -> int:
        self.events.append((event_type, subject, payload))
        return len(self.events)

    def types(self) -> list[str]:
        return [t for t, _, _ in self.events]


def fake_unit_of_work(repos, *, event_mapping=None, clock: Callable | None = None, actor=None, context=None):
    """A unit of work over in-memory repositories and a `FakeOutbox` (no database)."""
    from services.runtime.auth import SERVICE_CONTEXT
    from services.runtime.uow import UnitOfWork, no_event_mapping

    return UnitOfWork(conn=None, outbox=FakeOutbox(), clock=clock or Clock(), actor=actor or SERVICE_CONTEXT,
                      context=context, repos=repos, event_mapping=event_mapping or no_event_mapping)
