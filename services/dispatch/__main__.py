"""`python -m services.dispatch [serve|migrate|seed]`."""
from __future__ import annotations

from functools import partial
from pathlib import Path

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.policy import org

from . import clients, domain, handlers, mapping, policy, seed, store, workers
from .api import DispatchServicer
from .domain import Context, DispatchSettings, RetryPolicy, matrix


def build(rt: Runtime) -> list[tuple]:
    rt.context = ctx = Context(settings=DispatchSettings.from_env(), matrix=matrix(),
                               hub=workers.AssignmentHub(rt.feed), org=org())
    retry = RetryPolicy.from_env()
    centre = clients.AntiFraudCentre(clients.centre_channel(rt), timeout_seconds=retry.call_timeout_seconds)
    # The victim's contact of a hand-off, read from intake at delivery, and the caller's of an EIDO
    # export (dispatch keeps no caller data).
    contacts = clients.IntakeContacts(rt.channel("intake"), timeout_seconds=retry.call_timeout_seconds)
    # The active alerts of a map view, for GetSituation (answered without them when alerts is slow).
    ctx.situation_alerts = clients.AlertsInView(rt.channel("alerts"),
                                                timeout_seconds=ctx.settings.situation_alerts_timeout_s)
    rt.workers.append(workers.StopPaymentSender(rt, centre, contacts, policy=retry))
    # Expires unanswered offers and moves them on (one per replica is fine).
    rt.every("offer-sweeper", ctx.settings.sweep_interval_s, partial(workers.sweep_offers, rt))
    # Ends access grants whose time ran out or whose case closed (a read checks both itself).
    rt.every("grant-sweeper", ctx.settings.grant_sweep_interval_s, partial(workers.sweep_grants, rt))
    rt.workers.append(ctx.hub)
    return [(pb_grpc.add_DispatchServiceServicer_to_server, DispatchServicer(rt, contacts),
             pb.DESCRIPTOR.services_by_name["DispatchService"].full_name)]


SPEC = ServiceSpec(
    name="dispatch", metadata=store.metadata, tables=store.runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed.seed,
    event_handlers=handlers.EVENT_HANDLERS, event_mapping=mapping.event_to_message,
    repositories=store.Repositories, policies=policy.POLICIES,
    # An evidence upload (UploadEvidence) carries up to 5 MB of bytes.
    max_message_bytes=domain.evidence.MAX_BYTES + 1024 * 1024,
)

if __name__ == "__main__":
    main(SPEC)
