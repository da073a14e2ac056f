"""`python -m services.referral12345 [serve|migrate|seed]`."""
from pathlib import Path

from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.config import env_str

from .api import Open311Servicer, ReferralServicer
from .domain import Department, Matter
from .store import DepartmentRepository, metadata, runtime_tables


def build(rt: Runtime) -> list[tuple]:
    return [
        (pb_grpc.add_ReferralServiceServicer_to_server, ReferralServicer(rt),
         pb.DESCRIPTOR.services_by_name["ReferralService"].full_name),
        (pb_grpc.add_Open311ServiceServicer_to_server, Open311Servicer(rt, env_str("OPEN311_JURISDICTION_ID")),
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


SPEC = ServiceSpec(
    name="referral", metadata=metadata, tables=runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed,
)

if __name__ == "__main__":
    main(SPEC)
