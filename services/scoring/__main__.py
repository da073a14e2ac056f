"""`python -m services.scoring [serve|migrate|seed]`."""
from pathlib import Path

from sqlalchemy.dialects.postgresql import insert

from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as dispatch_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from smart110.referral.v1 import referral_service_pb2_grpc as referral_grpc
from smart110.scoring.v1 import scoring_service_pb2 as pb
from smart110.scoring.v1 import scoring_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.consumer import Subscription
from services.runtime.timeutil import now

from . import handlers
from .api import ScoringServicer
from .store import grid_targets, metadata, runtime_tables
from .sweeper import ReportBackSweeper

SWEEP_SECONDS = 60.0


def subscriptions(rt: Runtime, clock=now) -> dict[str, dict[str, Subscription]]:
    """The events scoring consumes, per source feed."""
    out = rt.outbox

    def case_created(conn, event, payload):
        handlers.on_case_created(conn, payload=payload)

    def case_updated(conn, event, payload):
        handlers.on_case_updated(conn, outbox=out, event=event, payload=payload, now=clock())

    def assignment_changed(conn, event, payload):
        handlers.on_assignment_changed(conn, outbox=out, event=event, payload=payload, now=clock())

    def report_updated(conn, event, payload):
        handlers.on_report_updated(conn, outbox=out, event=event, payload=payload, now=clock())

    def work_order_created(conn, event, payload):
        handlers.on_work_order(conn, outbox=out, event=event, work_order=payload.work_order, action="CREATED",
                               now=clock())

    def work_order_updated(conn, event, payload):
        handlers.on_work_order(conn, outbox=out, event=event, work_order=payload.work_order, action=payload.action,
                               now=clock())

    return {
        "dispatch": {
            "dispatch.CaseCreated": Subscription(dispatch_pb.CaseCreated, case_created),
            "dispatch.CaseUpdated": Subscription(dispatch_pb.CaseUpdated, case_updated),
            "dispatch.AssignmentChanged": Subscription(dispatch_pb.AssignmentChanged, assignment_changed),
        },
        "intake": {"intake.ReportUpdated": Subscription(intake_pb.ReportUpdated, report_updated)},
        "referral": {
            "referral.WorkOrderCreated": Subscription(referral_pb.WorkOrderCreated, work_order_created),
            "referral.WorkOrderUpdated": Subscription(referral_pb.WorkOrderUpdated, work_order_updated),
        },
    }


def build(rt: Runtime) -> list[tuple]:
    subs = subscriptions(rt)
    rt.consume("dispatch", dispatch_grpc.DispatchServiceStub, subs["dispatch"])
    rt.consume("intake", intake_grpc.IntakeServiceStub, subs["intake"])
    rt.consume("referral", referral_grpc.ReferralServiceStub, subs["referral"])

    rt.workers.append(ReportBackSweeper(rt.engine, rt.outbox, interval_s=SWEEP_SECONDS))
    return [(pb_grpc.add_ScoringServiceServicer_to_server, ScoringServicer(rt),
             pb.DESCRIPTOR.services_by_name["ScoringService"].full_name)]


def seed(rt: Runtime) -> None:
    """Loads the sample city's community grids and their arrival targets (1-3-5 minute circle), idempotent."""
    from sampledata import city

    with rt.engine.begin() as conn:
        stmt = insert(grid_targets).values([
            dict(grid_id=g.grid_id, station_id=g.station_id, arrival_target_s=g.arrival_target_s)
            for g in city.grids()])
        conn.execute(stmt.on_conflict_do_update(index_elements=["grid_id"], set_={
            "station_id": stmt.excluded.station_id, "arrival_target_s": stmt.excluded.arrival_target_s}))


SPEC = ServiceSpec(
    name="scoring", metadata=metadata, tables=runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed,
)

if __name__ == "__main__":
    main(SPEC)
