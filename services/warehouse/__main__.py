"""`python -m services.warehouse [serve|migrate|seed|load|archive|reattach]`."""
from functools import partial
from pathlib import Path

from smart110.warehouse.v1 import warehouse_service_pb2 as pb
from smart110.warehouse.v1 import warehouse_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime, ServiceSpec, main
from services.runtime.config import env_float

from . import handlers, policy, seed, store, workers
from .api import WarehouseServicer


def build(rt: Runtime) -> list[tuple]:
    rt.every("partition-maintenance", workers.PARTITION_SECONDS, partial(workers.maintain_partitions, rt))
    rt.every("partition-archive", env_float("WAREHOUSE_ARCHIVE_SECONDS", 24 * 3600.0), partial(workers.archive_round, rt))
    return [(pb_grpc.add_WarehouseServiceServicer_to_server, WarehouseServicer(rt),
             pb.DESCRIPTOR.services_by_name["WarehouseService"].full_name)]


SPEC = ServiceSpec(
    name="warehouse", metadata=store.metadata, tables=store.runtime_tables,
    migrations=Path(__file__).parent / "migrations", build=build, seed=seed.seed,
    event_handlers=handlers.EVENT_HANDLERS, repositories=store.Repositories,
    policies=policy.POLICIES, commands={"load": seed.load_command},
    runtime_commands={"archive": workers.archive_command, "reattach": workers.reattach_command},
    warm_up=workers.maintain_partitions,
)

if __name__ == "__main__":
    main(SPEC)
