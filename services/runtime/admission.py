"""Admission of unary calls: a process works on a bounded number at once and sheds the rest early.

Without a bound, a burst (callers retrying together after a restart, a disaster night's first
minutes) piles every call onto the worker threads and the database pool at once: each call gets a
sliver of the CPU, all of them slow down together, and callers time out on calls the service is
still working on. With a bound, at most `limit` calls run; a call waits up to `wait_seconds` for a
slot (less when its deadline is nearer) and is otherwise answered UNAVAILABLE (reason OVERLOADED,
with RetryInfo) at once, so its caller retries it, with the same `request_id`, a moment later
while the admitted calls finish in time.

Health checks and reflection are never shed: a busy service is not a dead one.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from . import metrics

# Below this many seconds left of its deadline, a call does not wait for a slot at all.
MIN_USEFUL_SECONDS = 0.05


class Overloaded(Exception):
    """The call found no free slot within its wait."""

    def __init__(self, limit: int):
        super().__init__(f"{limit} calls in progress")
        self.limit = limit


class Admission:
    """At most `limit` unary calls in progress; a call waits up to `wait_seconds` for a slot."""

    def __init__(self, limit: int, wait_seconds: float):
        if limit < 1:
            raise ValueError("the admission limit must be at least 1")
        self.limit = limit
        self.wait_seconds = max(0.0, wait_seconds)
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._in_progress = 0

    @property
    def in_progress(self) -> int:
        return self._in_progress

    def budget(self, time_remaining: float | None) -> float:
        """How long a call may wait for a slot: the configured wait, and at most half of what is left
        of its deadline (the other half is for the work)."""
        if time_remaining is None:
            return self.wait_seconds
        if time_remaining <= MIN_USEFUL_SECONDS:
            return 0.0
        return min(self.wait_seconds, time_remaining / 2)

    @contextmanager
    def slot(self, method: str, time_remaining: float | None = None):
        """Holds one slot for the call's duration; raises `Overloaded` when none came free in time."""
        if not self._slots.acquire(timeout=self.budget(time_remaining)):
            metrics.RPC_SHED.labels(service=metrics.service(), method=method.lstrip("/")).inc()
            raise Overloaded(self.limit)
        with self._lock:
            self._in_progress += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_progress -= 1
            self._slots.release()
