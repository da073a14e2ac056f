"""`python -m services.alerts [serve|migrate|seed]`."""
from pathlib import Path

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main

from .api import AlertsServicer
from .store import metadata, runtime_tables


def build(rt: Runtime) -> list[tuple]:
    return [(pb_grpc.add_AlertsServiceServicer_to_server, AlertsServicer(rt),
             pb.DESCRIPTOR.services_by_name["AlertsService"].full_name)]


SPEC = ServiceSpec(
    name="alerts", metadata=metadata, tables=runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build,
)

if __name__ == "__main__":
    main(SPEC)
