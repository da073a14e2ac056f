"""A background sender of leased rows: the calls a service makes to a partner outside the suite (the
anti-fraud centre, webhooks, an SMS gateway) after the transaction that decided them committed.

A subclass claims one due row under a lease (`_handle_one`: claim in a transaction, call with no
transaction open, record the answer in another) and says when the next row is due (`_next_due`).
`run_once(now)` does everything due at `now`; the thread calls it with the runtime's clock and
sleeps until the next row is due, at most `idle_seconds`, waking early when the service's own feed
announces a commit (a queued row comes with an event). A row that fails stays queued.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import datetime

log = logging.getLogger("smart110.leased")


class LeasedSender:
    thread_name = "leased-sender"
    what = "delivery"  # for the log line of a failed pass

    def __init__(self, rt, *, call_timeout_seconds: float, idle_seconds: float = 5.0):
        self.rt = rt
        self.idle_seconds = idle_seconds
        self._call_timeout_seconds = call_timeout_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Who holds a lease: this process and this sender.
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self._call_timeout_seconds + 2)

    def _run(self) -> None:
        seen = 0
        feed = self.rt.feed
        while not self._stop.is_set():
            wait = self.idle_seconds
            try:
                due = self.run_once()
                if due is not None:
                    wait = min(max((due - self.rt.clock()).total_seconds(), 0.05), self.idle_seconds)
            except Exception:  # noqa: BLE001 - the rows stay queued; try again
                log.exception("%s failed; retrying", self.what)
                wait = 1.0
            if feed is not None and not feed.closed:
                seen = feed.wait_for_new(seen, wait)
            else:
                self._stop.wait(wait)

    def run_once(self, now: datetime | None = None) -> datetime | None:
        """Handles every row due at `now` (each once); returns when the next is due (None: none waits)."""
        now = now or self.rt.clock()
        handled: set[str] = set()
        while not self._stop.is_set() and self._handle_one(now, handled):
            pass
        with self.rt.transaction() as uow:
            return self._next_due(uow)

    def _handle_one(self, now: datetime, handled: set[str]) -> bool:
        """Claims, calls and records one row due at `now` not in `handled` (adding it); False when none."""
        raise NotImplementedError

    def _next_due(self, uow) -> datetime | None:
        raise NotImplementedError
