"""Scoring's background work: the overdue report-back (回告) sweeper.

One per service replica is fine: obligations are claimed with SKIP LOCKED and each cause warns once.
"""
from __future__ import annotations

from services.runtime.app import Runtime

from . import handlers
from .domain import EnforcementWarning

SWEEP_SECONDS = 60.0


def sweep_report_backs(rt: Runtime) -> list[EnforcementWarning]:
    """One round: warns of report-backs past their limit at the runtime's clock (tests call it)."""
    with rt.transaction() as uow:
        return handlers.sweep_overdue_report_backs(uow)
