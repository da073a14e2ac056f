"""The dispatch service in-process on its own database, with a clock the test moves.

Each harness gets a fresh database on the session's Postgres server, so the
tests' units and roster never mix with the whole suite's.
"""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from threading import Lock

import grpc
from sqlalchemy import create_engine, text

from smart110.common.v1 import common_pb2, events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from services.runtime import migrate, timeutil
from services.runtime.app import Runtime, open_runtime
from services.runtime.config import Settings
from services.runtime.consumer import FeedConsumer
from services.runtime.db import sqlalchemy_url
from services.runtime.server import create_server
from tests import support

START = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)  # noon in the city


@dataclass
class Clock:
    """A clock the test moves by hand."""

    t: datetime = START
    _lock: Lock = field(default_factory=Lock)

    def __call__(self) -> datetime:
        with self._lock:
            return self.t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.t += timedelta(seconds=seconds)


@dataclass
class Harness:
    rt: Runtime
    channel: grpc.Channel
    clock: Clock
    consumer: FeedConsumer
    reports: dict = field(default_factory=dict)

    @property
    def stub(self) -> pb_grpc.DispatchServiceStub:
        return pb_grpc.DispatchServiceStub(self.channel)

    def report(self, *, incident_type: str = "FIGHT", station: str = "S01", grid: str = "S01-G01",
               lon: float = 114.30, lat: float = 30.58, merged_into: str = "",
               category=intake_pb.CATEGORY_POLICE) -> str:
        """Delivers an intake.IncidentReported event through the real consumer; returns the report name."""
        name = f"reports/{uuid.uuid4().hex[:16]}"
        report = intake_pb.Report(
            name=name, channel=intake_pb.CHANNEL_PHONE, description="小区门口有人打架",
            location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=lon, latitude=lat)),
            station_id=station, grid_id=grid, merged_into=merged_into,
            classification=intake_pb.Classification(category=category, incident_type=incident_type, priority=2),
            receive_time=timeutil.to_pb(self.clock() - timedelta(seconds=20)))
        self.reports[name] = report
        self.deliver("intake.IncidentReported", name, intake_pb.IncidentReported(report=report))
        return name

    def update_report(self, name: str, action: str, *, incident_type: str = "", priority: int = 0,
                      category=None, merged_into: str | None = None) -> None:
        """Delivers an intake.ReportUpdated for a report `report()` made, with the given changes."""
        report = self.reports[name]
        if incident_type:
            report.classification.incident_type = incident_type
        if priority:
            report.classification.priority = priority
        if category is not None:
            report.classification.category = category
        if merged_into is not None:
            report.merged_into = merged_into
        self.deliver("intake.ReportUpdated", name, intake_pb.ReportUpdated(report=report, action=action))

    def deliver(self, event_type: str, subject: str, payload) -> bool:
        """Hands an intake event to the real consumer, as if read from intake's feed."""
        event = events_pb2.Event(event_id=str(uuid.uuid4()), sequence=self._next_seq(), type=event_type,
                                 subject=subject, source="intake")
        event.payload.Pack(payload)
        return self.consumer.apply(event)

    _seq: int = 0

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def case_of(self, report: str) -> pb.DispatchCase | None:
        cases = self.stub.ListCases(pb.ListCasesRequest(report=report), timeout=10).cases
        return self.stub.GetCase(pb.GetCaseRequest(name=cases[0].name), timeout=10) if cases else None

    def case(self, name: str) -> pb.DispatchCase:
        return self.stub.GetCase(pb.GetCaseRequest(name=name), timeout=10)

    def events(self, types: list[str] | None = None) -> list:
        out = []
        for e in self.stub.StreamEvents(events_pb2.StreamEventsRequest(types=types or [], stop_at_end=True),
                                        timeout=10):
            body = {"dispatch.CaseCreated": pb.CaseCreated, "dispatch.CaseUpdated": pb.CaseUpdated,
                    "dispatch.AssignmentChanged": pb.AssignmentChanged, "dispatch.UnitUpdated": pb.UnitUpdated,
                    "dispatch.FollowUpFlagged": pb.FollowUpFlagged}[e.type]()
            e.payload.Unpack(body)
            out.append((e, body))
        return out

    def set_unit(self, unit_id: str, **values) -> None:
        from services.dispatch.store import units

        with self.rt.engine.begin() as conn:
            conn.execute(units.update().where(units.c.unit_id == unit_id).values(**values))

    def units_of(self, station: str, kind: str | None = None) -> list[pb.Unit]:
        req = pb.ListUnitsRequest(station_id=station, page_size=500)
        if kind:
            req.kind = pb.UnitKind.Value(f"UNIT_KIND_{kind}")
        return list(self.stub.ListUnits(req, timeout=10).units)


def as_role(role: str, station: str = "S01", sub: str = "t-dispatcher") -> tuple:
    """Metadata as the gateway forwards a verified token's claims."""
    return support.caller([role], station=station, sub=sub)


def officer_of(unit: pb.Unit) -> tuple:
    return as_role("officer", unit.station_id, unit.officers[0].officer_id)


def field_violations(err: grpc.RpcError) -> set[str]:
    return set(support.field_violations(err))


reason_of = support.error_reason


def _fresh_database(admin_url: str) -> str:
    url = support.own_database(admin_url, f"dispatch_it_{uuid.uuid4().hex[:8]}")
    engine = create_engine(sqlalchemy_url(url))
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA dispatch"))
    engine.dispose()
    return url


@contextmanager
def dispatch_service(admin_url: str, *, offer_timeout_s: float = 30.0, sweep_interval_s: float = 0.05,
                     position_stale_s: float = 900.0):
    """Dispatch as `serve` wires it, seeded with the sample city, clocked by a `Clock`, on a free port.

    The intake consumer is not connected to an intake service: `Harness.report`
    hands it events directly. The offer sweeper runs.
    """
    from services.dispatch.__main__ import SPEC, build, seed
    from services.dispatch.context import DispatchSettings

    url = _fresh_database(admin_url)
    migrate.upgrade(SPEC.migrations, url, SPEC.name)
    clock = Clock()
    rt = open_runtime(SPEC, Settings(service="dispatch", grpc_port=0, database_url=url))
    server = None
    try:
        seed(rt, at=clock())  # the roster covers the test clock's day
        settings = DispatchSettings(offer_timeout_s=offer_timeout_s, position_stale_s=position_stale_s,
                                    sweep_interval_s=sweep_interval_s)
        services = build(rt, settings=settings, clock=clock)
        server = create_server(port=0, host="127.0.0.1", services=services)
        rt.feed.start()
        server.start()
        for w in rt.workers:
            w.start()
        with support.channel(f"127.0.0.1:{server.port}") as channel:
            yield Harness(rt, channel, clock, rt.consumers[0])
    finally:
        if server is not None:
            server.stop(1)
        rt.close()


__all__ = ["Harness", "dispatch_service", "as_role", "officer_of", "field_violations", "reason_of", "pb"]
