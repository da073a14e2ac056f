"""The dispatch service in-process against a real Postgres, and what its tests share."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import count
from typing import Iterator

import grpc

from smart110.common.v1 import common_pb2, events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from services.runtime import migrate
from services.runtime.app import Runtime, open_runtime
from services.runtime.config import Settings
from services.runtime.server import create_server
from tests import support


@dataclass
class SettableClock:
    """The service's clock: the wall clock until a test sets a time (`t`), then that time."""

    t: datetime | None = None

    def __call__(self) -> datetime:
        return self.t or datetime.now(timezone.utc)


@dataclass
class Dispatch:
    rt: Runtime
    channel: grpc.Channel
    clock: SettableClock
    _sequence: Iterator[int] = field(default_factory=lambda: count(1))

    @property
    def stub(self) -> pb_grpc.DispatchServiceStub:
        return pb_grpc.DispatchServiceStub(self.channel)

    def open_case(self, *, incident_type: str = "FIGHT", description: str = "小区门口有人打架", station: str = "S01",
                  grid: str = "S01-G01", priority: int = 2, lon: float = 114.30, lat: float = 30.58,
                  now: datetime | None = None, caller_phone: str = "13800138000", caller_name: str = "陈女士",
                  receive_time: datetime | None = None) -> pb.DispatchCase:
        """Delivers an intake.IncidentReported event through the real consumer; returns the case as GetCase does."""
        from services.runtime import timeutil

        if now is not None:
            self.clock.t = now
        now = self.clock()
        report = intake_pb.Report(
            name=f"reports/{uuid.uuid4().hex}", channel=intake_pb.CHANNEL_PHONE,
            caller=intake_pb.Caller(phone_number=caller_phone, name=caller_name),
            location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=lon, latitude=lat)),
            description=description, station_id=station, grid_id=grid,
            classification=intake_pb.Classification(category=intake_pb.CATEGORY_POLICE, incident_type=incident_type,
                                                     priority=priority),
            receive_time=timeutil.to_pb(receive_time or now))
        event = events_pb2.Event(event_id=str(uuid.uuid4()), sequence=next(self._sequence),
                                 type="intake.IncidentReported", subject=report.name, source="intake")
        event.payload.Pack(intake_pb.IncidentReported(report=report))
        assert self.rt.consumers[0].apply(event)
        cases = self.stub.ListCases(pb.ListCasesRequest(report=report.name), timeout=10).cases
        return self.stub.GetCase(pb.GetCaseRequest(name=cases[0].name), timeout=10)

    def events(self, subject: str | None = None, after: int = 0) -> list[tuple[events_pb2.Event, object]]:
        """Events on the dispatch feed (read through StreamEvents), with their unpacked payloads."""
        out = []
        for e in self.stub.StreamEvents(events_pb2.StreamEventsRequest(after_sequence=after, stop_at_end=True),
                                        timeout=10):
            if subject and e.subject != subject:
                continue
            payload = {"dispatch.CaseCreated": pb.CaseCreated, "dispatch.CaseUpdated": pb.CaseUpdated,
                       "dispatch.AssignmentChanged": pb.AssignmentChanged}.get(e.type)
            body = None
            if payload:
                body = payload()
                e.payload.Unpack(body)
            out.append((e, body))
        return out

    def latest_sequence(self) -> int:
        events = self.events()
        return events[-1][0].sequence if events else 0


@contextmanager
def serving_dispatch(admin_url: str):
    """Dispatch as `serve` wires it (servicers, feed), on a free port, on a fresh database.

    The intake consumer is not connected: `Dispatch.open_case` hands it events.
    Background workers are not started: a test starts what it needs.
    """
    from services.dispatch.__main__ import SPEC, build
    from tests.integration.dispatch_harness import _fresh_database

    url = _fresh_database(admin_url)
    migrate.upgrade(SPEC.migrations, url, SPEC.name)
    rt = open_runtime(SPEC, Settings(service=SPEC.name, grpc_port=0, database_url=url))
    clock = SettableClock()
    server = None
    try:
        server = create_server(port=0, host="127.0.0.1", services=build(rt, clock=clock))
        rt.feed.start()
        server.start()
        with support.channel(f"127.0.0.1:{server.port}") as channel:
            yield Dispatch(rt, channel, clock)
    finally:
        if server is not None:
            server.stop(1)
        rt.close()


def as_user(roles: list[str], station: str = "S01", sub: str = "p-test") -> tuple:
    """Call metadata as the gateway forwards a verified token's claims."""
    return support.caller(roles, station=station, sub=sub, name="测试警员")


field_violations = support.field_violations
error_reason = support.error_reason


def report_in(h, grid_id: str, **kw) -> str:
    """A report at a grid's station HQ-side point (via the lifecycle harness); returns the report name."""
    from sampledata import city

    grid = next(g for g in city.grids() if g.grid_id == grid_id)
    point = grid.polygon.representative_point()
    return h.report(station=grid.station_id, grid=grid_id, lon=round(point.x, 6), lat=round(point.y, 6), **kw)


def see_through(h, report: str, *, on_scene_after: float, until: str = "REPORTED_BACK") -> pb.DispatchCase:
    """The primary unit accepts at once, is on scene `on_scene_after` seconds later, then clears and
    reports back (or stops at `until`), each step by the unit's officer; returns the case."""
    from tests.integration.dispatch_harness import officer_of

    case = h.case_of(report)
    a = next(x for x in case.assignments if x.role == pb.ASSIGNMENT_ROLE_PRIMARY)
    officer = officer_of(h.stub.GetUnit(pb.GetUnitRequest(name=a.unit), timeout=10))
    S = pb.AssignmentState
    h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=uuid.uuid4().hex, name=a.name), metadata=officer)
    steps = [("EN_ROUTE", 0.0), ("ON_SCENE", on_scene_after), ("CLEARED", 60.0)]
    for state, wait in steps:
        h.clock.advance(wait)
        h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(
            request_id=uuid.uuid4().hex, name=a.name, state=S.Value(f"ASSIGNMENT_STATE_{state}")), metadata=officer)
        if state == until:
            return h.case(case.name)
    h.stub.ReportBack(pb.ReportBackRequest(request_id=uuid.uuid4().hex, name=a.name, outcome=pb.OUTCOME_MEDIATED,
                                           notes="双方已调解"), metadata=officer)
    return h.case(case.name)
