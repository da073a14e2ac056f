"""`python -m services.referral12345 [serve|migrate|seed]`."""
from functools import partial
from pathlib import Path

from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.auth import AuthContext
from services.runtime.config import env_float, env_list, env_str

from . import clients, handlers, mapping, policy, seed, store, workers
from .api import ReferralServicer
from .open311 import Open311Servicer


def build(rt: Runtime) -> list[tuple]:
    rt.context = handlers.Context(intake=clients.Intake(rt.channel("intake")), referred=partial(workers.referred, rt))
    rt.every("referral-overdue-sweeper", env_float("REFERRAL_SWEEP_SECONDS", 60.0),
             partial(workers.sweep_overdue, rt))
    return [
        (pb_grpc.add_ReferralServiceServicer_to_server, ReferralServicer(rt),
         pb.DESCRIPTOR.services_by_name["ReferralService"].full_name),
        (pb_grpc.add_Open311ServiceServicer_to_server,
         Open311Servicer(rt, env_str("OPEN311_JURISDICTION_ID"), api_keys=env_list("OPEN311_API_KEYS")),
         pb.DESCRIPTOR.services_by_name["Open311Service"].full_name),
    ]


OPEN311_CLIENT = AuthContext(subject="open311-public", roles=frozenset({"open311_client"}))

SPEC = ServiceSpec(
    name="referral", metadata=store.metadata, tables=store.runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed.seed,
    event_handlers=handlers.EVENT_HANDLERS, event_mapping=mapping.event_to_message,
    repositories=store.Repositories,
    # Open311 is public: a client authenticates with its api_key inside the request.
    public={"smart110.referral.v1.Open311Service": OPEN311_CLIENT},
    policies=policy.POLICIES,
)

if __name__ == "__main__":
    main(SPEC)
