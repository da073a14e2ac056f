"""`python -m services.dispatch [serve|migrate|seed]`."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.consumer import Subscription
from services.runtime.timeutil import now

from . import antifraud, handlers, offers, policy, roster
from .api import DispatchServicer
from .context import Dispatch, DispatchSettings
from .store import GridRepository, UnitRepository, metadata, runtime_tables


def build(rt: Runtime, *, settings: DispatchSettings | None = None, clock: Callable = now) -> list[tuple]:
    d = Dispatch(outbox=rt.outbox, settings=settings or DispatchSettings.from_env(), clock=clock)

    def on_incident_reported(conn, event, payload: intake_pb.IncidentReported) -> None:
        handlers.open_case_for_report(conn, d, report=payload.report)

    def on_report_updated(conn, event, payload: intake_pb.ReportUpdated) -> None:
        handlers.apply_report_update(conn, d, report=payload.report, action=payload.action)

    rt.consume("intake", intake_grpc.IntakeServiceStub, {
        "intake.IncidentReported": Subscription(intake_pb.IncidentReported, on_incident_reported),
        "intake.ReportUpdated": Subscription(intake_pb.ReportUpdated, on_report_updated),
    })
    hub = offers.AssignmentHub(rt.feed)
    antifraud.start_sender(rt, clock=clock)
    # Expires unanswered offers and moves them on (one per replica is fine).
    rt.every("offer-sweeper", d.settings.sweep_interval_s, lambda: offers.expire_due(d, rt.engine))
    rt.workers.append(hub)
    return [(pb_grpc.add_DispatchServiceServicer_to_server, DispatchServicer(rt, d, hub),
             pb.DESCRIPTOR.services_by_name["DispatchService"].full_name)]


def seed(rt: Runtime, *, at=None) -> None:
    """Loads the sample city's grids and units, available at their home position, with today's
    duty roster (idempotent)."""
    from sampledata import city

    at = at or now()
    with rt.engine.begin() as conn:
        grids = GridRepository(conn)
        for g in city.grids():
            grids.upsert(g.grid_id, g.station_id, g.arrival_target_s)
        repo = UnitRepository(conn, now=at)
        for u in city.units():
            repo.upsert(dict(
                unit_id=u.unit_id, call_sign=u.call_sign, kind=u.kind, station_id=u.station_id,
                skills=list(u.skills), vehicle=u.plate,
                officers=[{"officer_id": o.officer_id, "name": o.name} for o in u.officers],
                status="AVAILABLE", lon=u.home[0], lat=u.home[1], position_time=at,
            ))
        roster.seed_roster(conn, [u.unit_id for u in city.units()], at)


SPEC = ServiceSpec(
    name="dispatch", metadata=metadata, tables=runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed,
    policies=policy.POLICIES,
)

if __name__ == "__main__":
    main(SPEC)
