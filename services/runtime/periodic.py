"""Periodic background work in a service process (sweepers), stopped with the server."""
from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger("smart110.periodic")


class Periodic:
    """Calls `work()` every `interval` seconds on its own thread until stopped."""

    def __init__(self, name: str, interval: float, work: Callable[[], object]):
        self.name = name
        self.interval = interval
        self.work = work
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.work()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("%s failed; trying again in %.0fs", self.name, self.interval)
