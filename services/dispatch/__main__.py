"""`python -m services.dispatch [serve|migrate|seed]`."""
from pathlib import Path

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.consumer import Subscription
from services.runtime.timeutil import now

from . import handlers
from .api import DispatchServicer
from .store import UnitRepository, metadata, runtime_tables


def build(rt: Runtime) -> list[tuple]:
    def on_incident_reported(conn, event, payload: intake_pb.IncidentReported) -> None:
        handlers.open_case_for_report(conn, outbox=rt.outbox, report=payload.report, now=now())

    rt.consume("intake", intake_grpc.IntakeServiceStub, {
        "intake.IncidentReported": Subscription(intake_pb.IncidentReported, on_incident_reported),
    })
    return [(pb_grpc.add_DispatchServiceServicer_to_server, DispatchServicer(rt),
             pb.DESCRIPTOR.services_by_name["DispatchService"].full_name)]


def seed(rt: Runtime) -> None:
    """Loads the sample city's units, on duty and available at their home position (idempotent)."""
    from sampledata import city

    with rt.engine.begin() as conn:
        repo = UnitRepository(conn)
        for u in city.units():
            repo.upsert(dict(
                unit_id=u.unit_id, call_sign=u.call_sign, kind=u.kind, station_id=u.station_id,
                skills=list(u.skills), vehicle=u.plate,
                officers=[{"officer_id": o.officer_id, "name": o.name} for o in u.officers],
                status="AVAILABLE", lon=u.home[0], lat=u.home[1], on_duty=True,
            ))


SPEC = ServiceSpec(
    name="dispatch", metadata=metadata, tables=runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed,
)

if __name__ == "__main__":
    main(SPEC)
