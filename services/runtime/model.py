"""Pure building blocks of every service's domain model: no database, no gRPC.

- `TimelineEntry`: one line of a resource's audit trail (全程留痕): who, when, what and why.
- `Box`: a map area in degrees (a big screen's view, a search area).
- `Aggregate`: a consistency boundary (a report, a case, a work order) that records the
  domain events of its state changes; the unit of work publishes them at commit.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass
class TimelineEntry:
    action: str
    actor: str
    roles: list[str]
    time: datetime
    detail: str = ""
    reason: str = ""


@dataclass(frozen=True)
class DomainEvent:
    """Base of a service's domain events: plain data naming what happened to which aggregate."""


class Aggregate:
    """Mixin for aggregates that record their events.

    A state-changing method calls `self.record(SomethingHappened(...))`; the unit of work that
    loaded or added the aggregate takes the events with `pull_events()` when it commits and
    writes them to the outbox in the same transaction (see `services.runtime.uow`).
    """

    _events: list

    def record(self, event: DomainEvent) -> None:
        if not hasattr(self, "_events") or self._events is None:
            self._events = []
        self._events.append(event)

    def pull_events(self) -> list:
        events = list(getattr(self, "_events", None) or [])
        self._events = []
        return events


@dataclass(frozen=True)
class Box:
    """A map view or search area: west/south/east/north edges in degrees, edges included."""

    west: float
    south: float
    east: float
    north: float

    def contains(self, lon: float, lat: float) -> bool:
        return self.west <= lon <= self.east and self.south <= lat <= self.north
