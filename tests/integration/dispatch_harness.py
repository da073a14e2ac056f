"""The dispatch service in-process for the tests: `tests.support.serving` (a fresh database, the
injected clock, the intake consumer fed by hand), with what dispatch's tests share.

The service's teardown closes its feed first, as a draining server does (the stop-payment sender
waits on the feed for new commits; closed, it stops at once instead of after its idle wait).
"""
from __future__ import annotations

import threading
import uuid
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import grpc
import pytest

from sampledata import city
from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from services.dispatch.__main__ import SPEC
from services.dispatch.store import units
from services.runtime import timeutil
from tests import support

PAYLOADS = {"dispatch.CaseCreated": pb.CaseCreated, "dispatch.CaseUpdated": pb.CaseUpdated,
            "dispatch.AssignmentChanged": pb.AssignmentChanged, "dispatch.UnitUpdated": pb.UnitUpdated,
            "dispatch.FollowUpFlagged": pb.FollowUpFlagged}


class StandInIntake(intake_grpc.IntakeServiceServicer):
    """Intake's GetCallerContact on a real socket, for the stop-payment sender: answers the callers
    the harness's reports were filed by (`callers`), records each read (report, purpose, reference,
    the caller's subject) and, stopped, is away (UNAVAILABLE) until started again on the same port."""

    def __init__(self):
        self.callers: dict[str, intake_pb.Caller] = {}
        self.reads: list[tuple[str, int, str]] = []
        self.port = 0
        self._server: grpc.Server | None = None

    def start(self) -> "StandInIntake":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="stand-in-intake"),
                             options=[("grpc.so_reuseport", 0)])
        intake_grpc.add_IntakeServiceServicer_to_server(self, server)
        self.port = server.add_insecure_port(f"127.0.0.1:{self.port}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(0).wait(5)
            self._server = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def GetCallerContact(self, request, context):
        self.reads.append((request.name, request.purpose, request.reference))
        caller = self.callers.get(request.name)
        if caller is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"{request.name} does not exist")
        return intake_pb.CallerContact(report=request.name, caller=caller)


@dataclass
class Harness:
    served: support.Served
    reports: dict = field(default_factory=dict)
    # Who filed each report, as intake keeps it (events carry no caller): the stand-in intake's answers.
    callers: dict = field(default_factory=dict)

    @property
    def rt(self):
        return self.served.rt

    @property
    def channel(self) -> grpc.Channel:
        return self.served.channel

    @property
    def clock(self) -> support.Clock:
        return self.served.clock

    @property
    def stub(self) -> pb_grpc.DispatchServiceStub:
        return pb_grpc.DispatchServiceStub(self.channel)

    # -- intake's reports -----------------------------------------------------------------
    def report(self, *, incident_type: str = "FIGHT", station: str = "S01", grid: str = "S01-G01",
               lon: float = 114.30, lat: float = 30.58, merged_into: str = "", category=intake_pb.CATEGORY_POLICE,
               description: str = "小区门口有人打架", priority: int = 2, caller: intake_pb.Caller | None = None,
               receive_time: datetime | None = None, channel=intake_pb.CHANNEL_PHONE) -> str:
        """Delivers an intake.IncidentReported event through the real consumer; returns the report name.

        The report was received 20 s before now unless `receive_time` says when. A silent alarm's
        report is `silent`, as intake's is."""
        name, _applied = self._report(incident_type=incident_type, station=station, grid=grid, lon=lon, lat=lat,
                                      merged_into=merged_into, category=category, description=description,
                                      priority=priority, caller=caller, receive_time=receive_time, channel=channel)
        return name

    def _report(self, *, incident_type, station, grid, lon, lat, merged_into, category, description, priority,
                caller, receive_time, channel=intake_pb.CHANNEL_PHONE) -> tuple[str, bool]:
        name = f"reports/{uuid.uuid4().hex[:16]}"
        silent = channel == intake_pb.CHANNEL_SILENT_ALARM
        if caller is not None:
            self.callers[name] = caller
        # As intake's events are: without the caller.
        report = intake_pb.Report(
            name=name, channel=channel, silent=silent, voice_callback_allowed=not silent, description=description,
            location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=lon, latitude=lat)),
            station_id=station, grid_id=grid, merged_into=merged_into,
            classification=intake_pb.Classification(category=category, incident_type=incident_type,
                                                     priority=priority),
            receive_time=timeutil.to_pb(receive_time or self.clock() - timedelta(seconds=20)))
        self.reports[name] = report
        return name, self.served.deliver("intake", "intake.IncidentReported", name,
                                         intake_pb.IncidentReported(report=report))

    def open_case(self, *, incident_type: str = "FIGHT", description: str = "小区门口有人打架", station: str = "S01",
                  grid: str = "S01-G01", priority: int = 2, lon: float = 114.30, lat: float = 30.58,
                  now: datetime | None = None, caller_phone: str = "13800138000", caller_name: str = "陈女士",
                  receive_time: datetime | None = None) -> pb.DispatchCase:
        """A report received now (or at `now`, which the clock is set to) by a caller; returns its case as
        GetCase does."""
        if now is not None:
            self.clock.set(now)
        name, applied = self._report(
            incident_type=incident_type, station=station, grid=grid, lon=lon, lat=lat, merged_into="",
            category=intake_pb.CATEGORY_POLICE, description=description, priority=priority,
            caller=intake_pb.Caller(phone_number=caller_phone, name=caller_name),
            receive_time=receive_time or self.clock())
        assert applied
        return self.case_of(name)

    def update_report(self, name: str, action: str, *, incident_type: str = "", priority: int = 0,
                      category=None, merged_into: str | None = None, silent: bool | None = None) -> None:
        """Delivers an intake.ReportUpdated for a report `report()` made, with the given changes."""
        report = self.reports[name]
        if silent is not None:
            report.silent, report.voice_callback_allowed = silent, not silent
        if incident_type:
            report.classification.incident_type = incident_type
        if priority:
            report.classification.priority = priority
        if category is not None:
            report.classification.category = category
        if merged_into is not None:
            report.merged_into = merged_into
        self.served.deliver("intake", "intake.ReportUpdated", name,
                            intake_pb.ReportUpdated(report=report, action=action))

    # -- reading -----------------------------------------------------------------------------
    def case_of(self, report: str) -> pb.DispatchCase | None:
        cases = self.stub.ListCases(pb.ListCasesRequest(report=report), timeout=10).cases
        return self.case(cases[0].name) if cases else None

    def case(self, name: str) -> pb.DispatchCase:
        return self.stub.GetCase(pb.GetCaseRequest(name=name), timeout=10)

    def events(self, types: list[str] | None = None, *, subject: str | None = None, after: int = 0) -> list:
        """(envelope, payload) of the events dispatch published, oldest first, of these types, about
        `subject`, after sequence `after`."""
        out = []
        for e in self.served.events(types, subject):
            if e.sequence <= after:
                continue
            body = PAYLOADS[e.type]()
            e.payload.Unpack(body)
            out.append((e, body))
        return out

    def latest_sequence(self) -> int:
        return self.rt.feed.latest_sequence()

    # -- units ---------------------------------------------------------------------------------
    def set_unit(self, unit_id: str, **values) -> None:
        with self.rt.engine.begin() as conn:
            conn.execute(units.update().where(units.c.unit_id == unit_id).values(**values))

    def units_of(self, station: str, kind: str | None = None) -> list[pb.Unit]:
        req = pb.ListUnitsRequest(station_id=station, page_size=500)
        if kind:
            req.kind = pb.UnitKind.Value(f"UNIT_KIND_{kind}")
        return list(self.stub.ListUnits(req, timeout=10).units)


@contextmanager
def dispatch_service(admin_url: str, *, offer_timeout_s: float = 30.0, sweep_interval_s: float = 0.05,
                     position_stale_s: float = 900.0, seed: bool = True, workers: bool = True,
                     env: dict[str, str] | None = None):
    """Dispatch as `serve` wires it, clocked by a `support.Clock`, on a fresh database.

    `seed`: the sample city's grids, units and roster (for the clock's day). `workers`: the offer
    sweeper (every `sweep_interval_s`), the stop-payment sender and the assignment hub run.
    `env`: more of the service's settings, as its environment.
    """
    with pytest.MonkeyPatch.context() as mp:
        for key, value in {"DISPATCH_OFFER_TIMEOUT_SECONDS": str(offer_timeout_s),
                           "DISPATCH_SWEEP_SECONDS": str(sweep_interval_s),
                           "DISPATCH_POSITION_STALE_SECONDS": str(position_stale_s), **(env or {})}.items():
            mp.setenv(key, value)
        with support.serving(SPEC, admin_url, seed=seed, workers=workers) as served:
            try:
                yield Harness(served)
            finally:
                served.rt.feed.close()


@contextmanager
def stand_in_intake(harness: Harness):
    """A `StandInIntake` answering the harness's callers, started; stopped at the end."""
    intake = StandInIntake()
    intake.callers = harness.callers
    intake.start()
    try:
        yield intake
    finally:
        intake.stop()


@contextmanager
def running(clock: support.Clock):
    """The clock follows the wall clock (for background work that waits for real time to pass)."""
    stop = threading.Event()

    def tick():
        while not stop.wait(0.01):
            clock.set(datetime.now(timezone.utc))

    clock.set(datetime.now(timezone.utc))
    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield clock
    finally:
        stop.set()
        thread.join()


def officer_of(unit: pb.Unit) -> tuple:
    """Call metadata of the unit's first officer."""
    return support.caller(["officer"], station=unit.station_id, sub=unit.officers[0].officer_id)


def report_in(h: Harness, grid_id: str, **kw) -> str:
    """A report at a grid's station HQ-side point; returns the report name."""
    grid = next(g for g in city.grids() if g.grid_id == grid_id)
    point = grid.polygon.representative_point()
    return h.report(station=grid.station_id, grid=grid_id, lon=round(point.x, 6), lat=round(point.y, 6), **kw)


def see_through(h: Harness, report: str, *, on_scene_after: float, until: str = "REPORTED_BACK") -> pb.DispatchCase:
    """The primary unit accepts at once, is on scene `on_scene_after` seconds later, then clears and
    reports back (or stops at `until`), each step by the unit's officer; returns the case."""
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


def field_violations(err: grpc.RpcError) -> set[str]:
    return set(support.field_violations(err))


__all__ = ["Harness", "dispatch_service", "running", "officer_of", "report_in", "see_through", "field_violations",
           "pb"]
