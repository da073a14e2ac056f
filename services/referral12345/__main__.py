"""`python -m services.referral12345 [serve|migrate|seed]`."""
from datetime import timedelta
from functools import partial
from pathlib import Path

from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.config import env_float, env_int, env_list, env_str

from . import clients, handlers, mapping, policy, seed, store, workers
from .api import ReferralServicer
from .open311 import OPEN311_CLIENT, Open311Servicer
from .open311.http import Open311HttpServer, create_app


def build(rt: Runtime) -> list[tuple]:
    rt.context = handlers.Context(intake=clients.Intake(rt.channel("intake")), referred=partial(workers.referred, rt))
    rt.every("referral-overdue-sweeper", env_float("REFERRAL_SWEEP_SECONDS", 60.0),
             partial(workers.sweep_overdue, rt))
    rt.every("referral-deadline-figures", env_float("REFERRAL_FIGURES_SECONDS", 30.0),
             partial(workers.publish_deadline_figures, rt))
    # Senders' contacts of Open311 updates are kept this long after their order is closed.
    keep = timedelta(days=env_float("OPEN311_UPDATE_CONTACT_DAYS", 180.0))
    rt.every("referral-update-contacts", env_float("REFERRAL_ERASE_SECONDS", 3600.0),
             partial(workers.erase_update_contacts, rt, keep))
    open311 = Open311Servicer(rt, env_str("OPEN311_JURISDICTION_ID"), api_keys=env_list("OPEN311_API_KEYS"))
    http_port = env_int("OPEN311_HTTP_PORT", 0)
    if http_port:
        # The GeoReport v2 HTTP face (XML and JSON) the gateway routes /open311/v2/ to; 0: none.
        app = create_app(open311, base_url=env_str("OPEN311_BASE_URL"))
        rt.workers.append(Open311HttpServer(app, rt.settings.listen_host, http_port))
    return [
        (pb_grpc.add_ReferralServiceServicer_to_server, ReferralServicer(rt),
         pb.DESCRIPTOR.services_by_name["ReferralService"].full_name),
        (pb_grpc.add_Open311ServiceServicer_to_server, open311,
         pb.DESCRIPTOR.services_by_name["Open311Service"].full_name),
    ]


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
