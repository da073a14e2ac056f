"""`python -m services.referral12345 [serve|migrate|seed]`."""
from pathlib import Path

from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.auth import AuthContext
from services.runtime.config import env_float, env_list, env_str
from services.runtime.consumer import Subscription
from services.runtime.timeutil import now

from . import handlers, policy, rules
from .api import Open311Servicer, ReferralServicer
from .domain import Department, Matter
from .police import PoliceLine
from .store import DepartmentRepository, metadata, runtime_tables


def place_of_report(police: PoliceLine, report: intake_pb.Report):
    if report.HasField("location") and report.location.HasField("point"):
        return police.locate(report.location.point.longitude, report.location.point.latitude)
    return police.station(report.station_id)


# The intake.ReportUpdated actions after which a report may need an order it did not have.
REFER_ON_UPDATE = ("CORRECTED", "UNMERGED")


def needs_order(report: intake_pb.Report) -> bool:
    return (report.classification.category == intake_pb.CATEGORY_NON_POLICE
            or (report.classification.category == intake_pb.CATEGORY_POLICE
                and report.classification.incident_type in rules.LINKAGE))


def subscribe(rt: Runtime, police: PoliceLine) -> None:
    """From 110: the intake feed (intake.IncidentReported and intake.ReportUpdated).

    The place of a report that will be referred is resolved with intake before
    the consumer's transaction (`prepare`), so no call holds a connection.
    """

    def place_reported(event, payload: intake_pb.IncidentReported):
        report = payload.report
        if needs_order(report) and not report.merged_into:
            return place_of_report(police, report)
        return None

    def place_updated(event, payload: intake_pb.ReportUpdated):
        if payload.action in REFER_ON_UPDATE:
            return place_reported(event, payload)
        return None

    def on_reported(conn, event, payload: intake_pb.IncidentReported, prepared=None) -> None:
        report = payload.report
        if handlers.record_police_progress(conn, outbox=rt.outbox, report=report, action="REPORTED", now=now()):
            return
        if needs_order(report) and not report.merged_into:
            handlers.refer_report(conn, outbox=rt.outbox, report=report, place=prepared, now=now())

    def on_updated(conn, event, payload: intake_pb.ReportUpdated, prepared=None) -> None:
        report = payload.report
        if handlers.record_police_progress(conn, outbox=rt.outbox, report=report, action=payload.action,
                                           now=now()):
            return
        # A report that needs an order is referred when it becomes one of its own: corrected into a
        # non-police (or joint-rescue) type, or un-merged from the incident it was taken as a repeat
        # of. Once, since an order is unique per report.
        if payload.action in REFER_ON_UPDATE and needs_order(report) and not report.merged_into:
            handlers.refer_report(conn, outbox=rt.outbox, report=report, place=prepared, now=now())

    rt.consume("intake", intake_grpc.IntakeServiceStub, {
        "intake.IncidentReported": Subscription(intake_pb.IncidentReported, on_reported, prepare=place_reported),
        "intake.ReportUpdated": Subscription(intake_pb.ReportUpdated, on_updated, prepare=place_updated),
    })


def sweep(rt: Runtime) -> list[str]:
    with rt.engine.begin() as conn:
        return handlers.sweep_overdue(conn, outbox=rt.outbox, now=now())


def build(rt: Runtime) -> list[tuple]:
    police = PoliceLine(rt.channel)
    subscribe(rt, police)
    rt.every("referral-overdue-sweeper", env_float("REFERRAL_SWEEP_SECONDS", 60.0), lambda: sweep(rt))
    referral = ReferralServicer(rt, police)
    return [
        (pb_grpc.add_ReferralServiceServicer_to_server, referral,
         pb.DESCRIPTOR.services_by_name["ReferralService"].full_name),
        (pb_grpc.add_Open311ServiceServicer_to_server,
         Open311Servicer(rt, referral, env_str("OPEN311_JURISDICTION_ID"), api_keys=env_list("OPEN311_API_KEYS")),
         pb.DESCRIPTOR.services_by_name["Open311Service"].full_name),
    ]


def seed(rt: Runtime) -> None:
    """Loads the sample city's 12345 departments (idempotent)."""
    from sampledata import city

    with rt.engine.begin() as conn:
        repo = DepartmentRepository(conn)
        for d in city.departments():
            repo.upsert(Department(
                dept_id=d.dept_id, name=d.name, matters=tuple(Matter(m.code, m.label) for m in d.matters),
                districts=tuple(d.districts), supervisor=d.supervisor, phone=d.phone,
            ))


OPEN311_CLIENT = AuthContext(subject="open311-public", roles=frozenset({"open311_client"}))

SPEC = ServiceSpec(
    name="referral", metadata=metadata, tables=runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed,
    # Open311 is public: a client authenticates with its api_key inside the request.
    public={"smart110.referral.v1.Open311Service": OPEN311_CLIENT},
    policies=policy.POLICIES,
)

if __name__ == "__main__":
    main(SPEC)
