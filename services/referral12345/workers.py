"""Referral's background work: the overdue sweeper (超期).

One per service replica is fine: each order is flagged under its row lock, once.
"""
from __future__ import annotations

from services.runtime.app import Runtime

from . import handlers
from .domain import WorkOrder


def sweep_overdue(rt: Runtime) -> list[WorkOrder]:
    """One round: flags the open orders past their deadline at the runtime's clock."""
    with rt.transaction() as uow:
        return handlers.sweep_overdue(uow)
