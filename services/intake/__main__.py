"""`python -m services.intake [serve|migrate|seed|train|classify]`."""
from pathlib import Path

from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main

from . import handlers, mapping, policy, queries, seed, store, workers
from .api import IntakeServicer


def build(rt: Runtime) -> list[tuple]:
    rt.context = handlers.Context(areas=queries.JurisdictionCache(rt.engine),
                                  addresses=queries.GazetteerCache(rt.engine),
                                  knowledge=queries.KnowledgeBase(rt.engine))
    return [(pb_grpc.add_IntakeServiceServicer_to_server, IntakeServicer(rt),
             pb.DESCRIPTOR.services_by_name["IntakeService"].full_name)]


SPEC = ServiceSpec(
    name="intake", metadata=store.metadata, tables=store.runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed.seed,
    event_handlers=handlers.EVENT_HANDLERS, event_mapping=mapping.event_to_message,
    repositories=store.Repositories, policies=policy.POLICIES, commands=workers.COMMANDS,
    warm_up=workers.warm_up,
)

if __name__ == "__main__":
    main(SPEC)
