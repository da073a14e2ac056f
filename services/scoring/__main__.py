"""`python -m services.scoring [serve|migrate|seed]`."""
from functools import partial
from pathlib import Path

from smart110.scoring.v1 import scoring_service_pb2 as pb
from smart110.scoring.v1 import scoring_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main

from . import handlers, mapping, policy, seed, store, workers
from .api import ScoringServicer


def build(rt: Runtime) -> list[tuple]:
    rt.every("report-back-sweeper", workers.SWEEP_SECONDS, partial(workers.sweep_report_backs, rt))
    return [(pb_grpc.add_ScoringServiceServicer_to_server, ScoringServicer(rt),
             pb.DESCRIPTOR.services_by_name["ScoringService"].full_name)]


SPEC = ServiceSpec(
    name="scoring", metadata=store.metadata, tables=store.runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed.seed,
    event_handlers=handlers.EVENT_HANDLERS, event_mapping=mapping.event_to_message,
    repositories=store.Repositories,
    policies=policy.POLICIES,
)

if __name__ == "__main__":
    main(SPEC)
