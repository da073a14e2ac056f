"""Background worker: raises overdue report-back (回告) warnings (one per service replica is fine:
rows are claimed with SKIP LOCKED and each cause warns once)."""
from __future__ import annotations

import logging
import threading
from typing import Callable

from services.runtime.outbox import Outbox
from services.runtime.timeutil import now

from .handlers import sweep_overdue_report_backs

log = logging.getLogger("smart110.scoring.sweeper")


class ReportBackSweeper:
    def __init__(self, engine, outbox: Outbox, *, interval_s: float = 60.0, clock: Callable = now):
        self.engine = engine
        self.outbox = outbox
        self.interval_s = interval_s
        self.clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="report-back-sweeper", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def sweep(self) -> list[dict]:
        with self.engine.begin() as conn:
            return sweep_overdue_report_backs(conn, outbox=self.outbox, now=self.clock())

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - the next round retries
                log.exception("report-back sweep failed")
