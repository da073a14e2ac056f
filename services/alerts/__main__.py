"""`python -m services.alerts [serve|migrate|seed]`."""
from datetime import timedelta
from functools import partial
from pathlib import Path

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.config import env_float

from . import clients, handlers, mapping, policy, seed, store, workers
from .domain import CapSender
from .domain.receivers import DeliveryPolicy, NotifyConfig
from .api import AlertsServicer


def build(rt: Runtime) -> list[tuple]:
    config = NotifyConfig.from_env()
    rt.context = handlers.Context(rules=handlers.RulesCache(), units=clients.DispatchUnits(rt.channel("dispatch")),
                                  locate=clients.Jurisdictions(rt.channel("intake")), notify=config,
                                  cap_sender=CapSender.from_env(),
                                  counts=clients.WarehouseCounts.from_env(lambda: rt.channel("warehouse")))
    # Notification receivers: the delivery worker, and the SMS reply listener when texts go out.
    smsc, retry = clients.SmscSettings.from_env(), DeliveryPolicy.from_env()
    rt.workers.append(workers.DeliveryWorker(rt, {"WEBHOOK": clients.WebhookSender(config, retry.call_timeout_seconds),
                                                  "SMS": clients.SmppSender(smsc)}, policy=retry))
    if config.sends_sms:
        rt.workers.append(workers.SmsReplyListener(rt, smsc))
    rt.every("alerts-sweeper", env_float("ALERTS_SWEEP_SECONDS", 5.0), partial(workers.sweep_once, rt))
    keep = timedelta(days=env_float("ALERT_DELIVERY_RETENTION_DAYS", 90.0))
    rt.every("alerts-delivery-log", env_float("ALERTS_PRUNE_SECONDS", 3600.0),
             partial(workers.prune_deliveries, rt, keep))
    return [(pb_grpc.add_AlertsServiceServicer_to_server, AlertsServicer(rt),
             pb.DESCRIPTOR.services_by_name["AlertsService"].full_name)]


SPEC = ServiceSpec(
    name="alerts", metadata=store.metadata, tables=store.runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed.seed,
    event_handlers=handlers.EVENT_HANDLERS, event_mapping=mapping.event_to_message,
    repositories=store.Repositories, policies=policy.POLICIES,
)

if __name__ == "__main__":
    main(SPEC)
