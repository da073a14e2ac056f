"""What the dispatch use cases share: the outbox, the clock and the settings."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from services.runtime.audit import TimelineEntry
from services.runtime.auth import AuthContext
from services.runtime.config import env_float
from services.runtime.outbox import Outbox
from services.runtime.timeutil import now as wall_clock

from .recommend import Matrix, matrix


@dataclass(frozen=True)
class DispatchSettings:
    # An offer not accepted within this time goes to the next unit.
    offer_timeout_s: float = 30.0
    # A unit position older than this is stale: its ETA gets a penalty.
    position_stale_s: float = 900.0
    # How often the offer sweeper looks for expired offers.
    sweep_interval_s: float = 1.0

    @classmethod
    def from_env(cls) -> "DispatchSettings":
        return cls(
            offer_timeout_s=env_float("DISPATCH_OFFER_TIMEOUT_SECONDS", 30.0),
            position_stale_s=env_float("DISPATCH_POSITION_STALE_SECONDS", 900.0),
            sweep_interval_s=env_float("DISPATCH_SWEEP_SECONDS", 1.0),
        )


@dataclass
class Dispatch:
    outbox: Outbox
    settings: DispatchSettings = field(default_factory=DispatchSettings)
    clock: Callable[[], datetime] = wall_clock
    matrix: Matrix = field(default_factory=matrix)

    def now(self) -> datetime:
        return self.clock()

    def stale_before(self, at: datetime) -> datetime:
        return at - timedelta(seconds=self.settings.position_stale_s)

    def offer_expiry(self, at: datetime) -> datetime:
        return at + timedelta(seconds=self.settings.offer_timeout_s)


SYSTEM = AuthContext(subject="dispatch", roles=frozenset({"service"}))


def entry(actor: AuthContext, at: datetime, action: str, detail: str = "", reason: str = "") -> TimelineEntry:
    return TimelineEntry(action=action, actor=actor.subject or "anonymous", roles=sorted(actor.roles), time=at,
                         detail=detail, reason=reason)
