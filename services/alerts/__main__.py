"""`python -m services.alerts [serve|migrate|seed]`."""
from pathlib import Path

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as dispatch_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from smart110.referral.v1 import referral_service_pb2_grpc as referral_grpc
from smart110.scoring.v1 import scoring_service_pb2 as scoring_pb
from smart110.scoring.v1 import scoring_service_pb2_grpc as scoring_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.config import env_float
from services.runtime.consumer import Subscription
from services.runtime.errors import Unavailable
from services.runtime.timeutil import now

from . import handlers, policy
from .api import AlertsServicer, DispatchUnits
from .handlers import MatcherCache
from .rules import seed_rules
from .store import metadata, runtime_tables


def build(rt: Runtime) -> list[tuple]:
    matchers = MatcherCache()
    units = DispatchUnits(rt)

    def strength(event, payload: intake_pb.IncidentReported):
        """Police strength for the gap rules, read from dispatch before the consumer's transaction."""
        if payload.report.classification.category != intake_pb.CATEGORY_POLICE:
            return None
        try:
            return units()
        except Unavailable:
            return None  # unknown: the handler skips the gap rules

    def on_report(conn, event, payload: intake_pb.IncidentReported, prepared=None) -> None:
        def known_units():
            if prepared is None:
                raise Unavailable("police strength is unavailable", reason="DISPATCH_UNAVAILABLE")
            return prepared
        handlers.on_report(conn, rt.outbox, report=payload.report, now=now(), matchers=matchers,
                           units=known_units)

    def on_report_updated(conn, event, payload: intake_pb.ReportUpdated) -> None:
        handlers.on_report_updated(conn, rt.outbox, report=payload.report, action=payload.action, now=now(),
                                   matchers=matchers)

    def on_assignment(conn, event, payload: dispatch_pb.AssignmentChanged) -> None:
        handlers.on_assignment_changed(conn, rt.outbox, changed=payload, now=now())

    def on_work_order(conn, event, payload) -> None:
        handlers.on_work_order(conn, rt.outbox, order=payload.work_order, now=now())

    def on_warning(conn, event, payload: scoring_pb.WarningRaised) -> None:
        handlers.on_warning(conn, rt.outbox, warning=payload.warning, now=now())

    rt.consume("intake", intake_grpc.IntakeServiceStub, {
        "intake.IncidentReported": Subscription(intake_pb.IncidentReported, on_report, prepare=strength),
        "intake.ReportUpdated": Subscription(intake_pb.ReportUpdated, on_report_updated),
    })
    rt.consume("dispatch", dispatch_grpc.DispatchServiceStub, {
        "dispatch.AssignmentChanged": Subscription(dispatch_pb.AssignmentChanged, on_assignment),
    })
    rt.consume("referral", referral_grpc.ReferralServiceStub, {
        "referral.WorkOrderCreated": Subscription(referral_pb.WorkOrderCreated, on_work_order),
        "referral.WorkOrderUpdated": Subscription(referral_pb.WorkOrderUpdated, on_work_order),
    })
    rt.consume("scoring", scoring_grpc.ScoringServiceStub, {
        "scoring.WarningRaised": Subscription(scoring_pb.WarningRaised, on_warning),
    })

    def sweep() -> None:
        with rt.engine.begin() as conn:
            handlers.sweep(conn, rt.outbox, now())

    rt.every("alerts-sweeper", env_float("ALERTS_SWEEP_SECONDS", 5.0), sweep)
    return [(pb_grpc.add_AlertsServiceServicer_to_server, AlertsServicer(rt, units=units, matchers=matchers),
             pb.DESCRIPTOR.services_by_name["AlertsService"].full_name)]


def seed(rt: Runtime) -> None:
    """The standing rules (keywords, volumes, anomaly, strength gap, signals, obligations, enforcement)."""
    with rt.engine.begin() as conn:
        seed_rules(conn, now())


SPEC = ServiceSpec(
    name="alerts", metadata=metadata, tables=runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed,
    policies=policy.POLICIES,
)

if __name__ == "__main__":
    main(SPEC)
