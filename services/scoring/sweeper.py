"""Background worker: raises overdue report-back (回告) warnings (one per service replica is fine:
rows are claimed with SKIP LOCKED and each cause warns once)."""
from __future__ import annotations

from typing import Callable

from services.runtime.outbox import Outbox
from services.runtime.periodic import Periodic
from services.runtime.timeutil import now

from .handlers import sweep_overdue_report_backs


class ReportBackSweeper(Periodic):
    """Every `interval_s`, warns of report-backs past their limit; `sweep()` runs one round (tests call it)."""

    def __init__(self, engine, outbox: Outbox, *, interval_s: float = 60.0, clock: Callable = now):
        super().__init__("report-back-sweeper", interval_s, self.sweep)
        self.engine = engine
        self.outbox = outbox
        self.clock = clock

    def sweep(self) -> list[dict]:
        with self.engine.begin() as conn:
            return sweep_overdue_report_backs(conn, outbox=self.outbox, now=self.clock())
