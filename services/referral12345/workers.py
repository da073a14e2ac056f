"""Referral's background work: the overdue sweeper (超期), the deadline figures and the erasure of
Open311 update senders' contacts once their orders have been closed for a while.

One per service replica is fine: each order is flagged under its row lock, once; each replica
exports the same figures (aggregate them with max, not sum).
"""
from __future__ import annotations

from datetime import timedelta

from services.runtime.app import Runtime
from services.runtime import metrics
from services.runtime.db import read_snapshot

from . import handlers, queries
from .domain import WorkOrder


def sweep_overdue(rt: Runtime) -> list[WorkOrder]:
    """One round: flags the open orders past their deadline at the runtime's clock."""
    with rt.transaction() as uow:
        return handlers.sweep_overdue(uow)


def publish_deadline_figures(rt: Runtime) -> dict[str, tuple[int, int, int]]:
    """One round: open, overdue and due-soon orders per lead department into the metrics
    (`smart110_work_orders_*`), from one grouped query at the runtime's clock."""
    with read_snapshot(rt.engine) as conn:
        figures = queries.deadline_figures(conn, now=rt.clock())
    metrics.set_work_order_figures(figures)
    return figures


def referred(rt: Runtime, report_name: str) -> bool:
    """Whether a 110 report has its order already, on a snapshot closed before intake is called
    (the consumer's prepare step reads the caller's contact only for a report still to be referred)."""
    with read_snapshot(rt.engine) as conn:
        return queries.has_order_for_report(conn, report_name)


def erase_update_contacts(rt: Runtime, keep: timedelta) -> int:
    """One round: erases the contacts of citizens' updates to orders closed more than `keep` ago."""
    with rt.transaction() as uow:
        return handlers.erase_update_contacts(uow, closed_before=rt.clock() - keep)
