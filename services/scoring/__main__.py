"""`python -m services.scoring [serve|migrate|seed]`."""
from pathlib import Path

from smart110.scoring.v1 import scoring_service_pb2 as pb
from smart110.scoring.v1 import scoring_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main

from .api import ScoringServicer
from .store import metadata, runtime_tables


def build(rt: Runtime) -> list[tuple]:
    return [(pb_grpc.add_ScoringServiceServicer_to_server, ScoringServicer(rt),
             pb.DESCRIPTOR.services_by_name["ScoringService"].full_name)]


SPEC = ServiceSpec(
    name="scoring", metadata=metadata, tables=runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build,
)

if __name__ == "__main__":
    main(SPEC)
