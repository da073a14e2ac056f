"""The unit of work (工作单元): one transaction, the outbox, the clock and the caller, together.

Every use case runs inside one: an RPC's through `Runtime.idempotent_work`, an
event's through the feed consumer. A handler loads aggregates through the
service's repositories (`uow.repos`), changes them (they record domain events),
hands them to `uow.collect(...)`, and returns. At commit the unit of work asks
the service's event mapping to turn each recorded event into an outbox message
(type, subject, protobuf payload), in the same transaction as the state change.

Events that belong to no aggregate (a rule set published, a ledger fact) go
straight in with `uow.publish(...)`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable

from google.protobuf.message import Message
from sqlalchemy.engine import Connection

from .auth import SERVICE_CONTEXT, AuthContext
from .model import Aggregate, DomainEvent
from .outbox import Outbox
from .policy import EVERYTHING, Jurisdiction, in_jurisdiction
from .timeutil import now as wall_clock

# event -> (event type, subject, payload) for the outbox; each service's mapping.py provides one.
EventMapping = Callable[[DomainEvent], "tuple[str, str, Message]"]


def no_event_mapping(event: DomainEvent) -> tuple[str, str, Message]:
    raise TypeError(f"this service maps no domain events; {type(event).__name__} cannot be published")


@dataclass
class UnitOfWork:
    conn: Connection
    outbox: Outbox
    clock: Callable[[], datetime] = wall_clock
    actor: AuthContext = SERVICE_CONTEXT
    # The service's own dependencies (settings, clients, caches), as its wiring built them.
    context: Any = None
    # The service's repositories on this transaction (its store.py `Repositories(conn)`), so that
    # service-layer tests can hand a handler in-memory ones.
    repos: Any = None
    event_mapping: EventMapping = no_event_mapping
    # Whose data the use case may touch: the caller's jurisdiction (管辖范围); everything for the
    # service's own work (events, workers).
    scope: Jurisdiction = EVERYTHING
    _seen: list[Aggregate] = field(default_factory=list)
    _published: list[int] = field(default_factory=list)
    _stamp: datetime | None = None

    def now(self) -> datetime:
        """The time of this unit of work: read once, the same for every entry it writes."""
        if self._stamp is None:
            self._stamp = self.clock()
        return self._stamp

    def in_scope(self, name: str, *station_ids: str) -> None:
        """A resource of these stations outside the caller's jurisdiction is, for the caller, not there."""
        in_jurisdiction(self.scope, name, *station_ids)

    def collect(self, *aggregates: Aggregate) -> None:
        """Aggregates whose recorded events are published when the unit of work commits."""
        for aggregate in aggregates:
            if aggregate is not None and not any(aggregate is seen for seen in self._seen):
                self._seen.append(aggregate)

    def publish(self, event_type: str, subject: str, payload: Message) -> int:
        """Writes one event to the outbox now (for events that belong to no aggregate)."""
        seq = self.outbox.publish(self.conn, event_type, subject, payload)
        self._published.append(seq)
        return seq

    def flush(self) -> list[int]:
        """Publishes every collected aggregate's recorded events, in the order they were recorded."""
        for aggregate in self._seen:
            for event in aggregate.pull_events():
                self.publish(*self.event_mapping(event))
        return list(self._published)

    @property
    def sequences(self) -> list[int]:
        """Outbox sequences written so far by this unit of work."""
        return list(self._published)


def publish_all(uow: UnitOfWork, events: Iterable[DomainEvent]) -> None:
    """Publishes domain events that were recorded outside an aggregate (e.g. by a pure function)."""
    for event in events:
        uow.publish(*uow.event_mapping(event))
