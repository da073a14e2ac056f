"""The sweeper: everything time alone changes — escalations, silences starting and ending,
obligations coming due, conditions that stopped holding. Safe to run from several processes
(rows are locked, and skipped when another sweeper holds them)."""
from __future__ import annotations

from services.runtime.app import Runtime
from services.runtime.uow import UnitOfWork

from .handlers import alerts, obligations


def sweep(uow: UnitOfWork) -> dict[str, int]:
    """One pass, in one unit of work; what it did, by kind (kinds with nothing done left out)."""
    done = {
        "escalated": alerts.escalate_due(uow),
        "silenced": alerts.start_silences(uow),
        "unsilenced": alerts.end_silences(uow),
        "obligations": obligations.warn_due_obligations(uow),
        "resolved": alerts.resolve_lapsed(uow),
    }
    return {kind: n for kind, n in done.items() if n}


def sweep_once(rt: Runtime) -> dict[str, int]:
    with rt.transaction() as uow:
        return sweep(uow)
