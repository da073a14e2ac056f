"""The warehouse's background work: the partition maintenance job.

Every PARTITION_SECONDS it makes sure the fact table has this month's partition and the next
MONTHS_AHEAD (domain), moving any rows of those months out of the default partition. Several replicas
may run it: the lock on the parent table makes them take turns, and a month created already is left.
"""
from __future__ import annotations

from services.runtime.app import Runtime

from . import handlers

PARTITION_SECONDS = 6 * 3600.0


def maintain_partitions(rt: Runtime) -> list[str]:
    """One round at the runtime's clock (tests call it); returns the partitions created."""
    with rt.transaction() as uow:
        return handlers.prepare_partitions(uow)
