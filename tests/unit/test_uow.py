"""The unit of work publishes what aggregates recorded, once, in order, through the service's mapping."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import pytest
from google.protobuf import wrappers_pb2

from services.runtime.ids import new_id
from services.runtime.model import Aggregate, DomainEvent
from services.runtime.uow import UnitOfWork


@dataclass(frozen=True)
class Renamed(DomainEvent):
    thing_id: str
    name: str


class Thing(Aggregate):
    def __init__(self, thing_id: str):
        self.thing_id = thing_id
        self.name = ""

    def rename(self, name: str) -> None:
        self.name = name
        self.record(Renamed(self.thing_id, name))


class FakeOutbox:
    def __init__(self):
        self.written: list[tuple] = []

    def publish(self, conn, event_type, subject, payload) -> int:
        self.written.append((conn, event_type, subject, payload.value))
        return len(self.written)


def mapping(event):
    return "test.Renamed", f"things/{event.thing_id}", wrappers_pb2.StringValue(value=event.name)


def test_recorded_events_are_published_at_flush_in_order_and_only_once():
    outbox = FakeOutbox()
    uow = UnitOfWork(conn="conn", outbox=outbox, event_mapping=mapping)
    a, b = Thing("a"), Thing("b")
    a.rename("一")
    uow.collect(a, b, a)
    b.rename("二")
    a.rename("三")
    assert outbox.written == []
    assert uow.flush() == [1, 2, 3]
    assert [(t, s, v) for _, t, s, v in outbox.written] == [
        ("test.Renamed", "things/a", "一"), ("test.Renamed", "things/a", "三"), ("test.Renamed", "things/b", "二")]
    assert all(conn == "conn" for conn, *_ in outbox.written)
    uow.flush()
    assert len(outbox.written) == 3, "events already published are not published again"


def test_without_a_mapping_a_recorded_event_cannot_be_published():
    uow = UnitOfWork(conn=None, outbox=FakeOutbox())
    t = Thing("x")
    t.rename("y")
    uow.collect(t)
    with pytest.raises(TypeError, match="Renamed"):
        uow.flush()


def test_the_time_of_a_unit_of_work_is_read_once():
    ticks = iter([datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc)])
    uow = UnitOfWork(conn=None, outbox=FakeOutbox(), clock=lambda: next(ticks))
    assert uow.now() == uow.now() == datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_ids_carry_the_day_and_are_unique():
    day = datetime(2026, 12, 3, tzinfo=timezone.utc)
    ids = {new_id(day, prefix="KB-") for _ in range(200)}
    assert len(ids) == 200 and all(i.startswith("KB-20261203-") and len(i) == len("KB-20261203-") + 12 for i in ids)
