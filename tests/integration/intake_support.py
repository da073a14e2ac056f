"""The intake service in-process (`tests.support.serving`: a fresh database, an injected clock, its
feed consumers fed by hand) and the helpers intake's integration tests share."""
from __future__ import annotations

import itertools
import random
import uuid
from datetime import datetime, timedelta

import grpc
import pytest
from sqlalchemy import select

from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2_grpc as pb_grpc
from tests import support

# Points inside the sample city (江岸区 and 武昌区), and a report place.
HANKOU = (114.30, 30.58)
WUCHANG = (114.33, 30.55)

# Each test takes its own 3-hour slot of time before the clock's, so duplicate windows and
# statistics of different tests never meet.
_BASE = support.START.replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
_slots = itertools.count()


def time_slot() -> datetime:
    return _BASE - timedelta(hours=3 * next(_slots))


def caller() -> str:
    """A fresh mainland mobile number."""
    return "139" + f"{random.randrange(10**8):08d}"


def metadata_for(roles: list[str], sub: str = "", name: str = "", station: str = "") -> tuple:
    return support.caller(roles, sub=sub or f"{roles[0]}-{uuid.uuid4().hex[:6]}", name=name, station=station)


CALL_TAKER = metadata_for(["call_taker"], "ct-1001", "接警员李娜")


@pytest.fixture(scope="module")
def served(admin_url):
    """Intake as `serve` assembles it, seeded, on its own database; its clock stands at support.START."""
    from services.intake.__main__ import SPEC

    with support.serving(SPEC, admin_url) as s:
        yield s


@pytest.fixture(scope="module")
def intake(served):
    """(runtime, stub) of the served intake."""
    return served.rt, pb_grpc.IntakeServiceStub(served.channel)


def report(description: str, *, point=HANKOU, at: datetime | None = None, phone: str | None = None,
           channel=pb.CHANNEL_PHONE, address: str = "") -> pb.Report:
    r = pb.Report(channel=channel, caller=pb.Caller(phone_number=phone or caller()), description=description,
                  address_text=address)
    if point is not None:
        r.location.point.longitude, r.location.point.latitude = point
        r.location.accuracy_m = 20
    if at is not None:
        r.receive_time.FromDatetime(at)
    return r


def submit(stub, r: pb.Report, md=CALL_TAKER) -> pb.Report:
    return stub.ReportIncident(pb.ReportIncidentRequest(request_id=uuid.uuid4().hex, report=r), metadata=md)


def rid() -> str:
    return uuid.uuid4().hex


def error_of(call) -> tuple[grpc.StatusCode, list[str], str]:
    """Runs a call that must fail: its code, the fields named and the ErrorInfo reason."""
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code(), support.field_violations(info.value), support.error_reason(info.value)


def events_about(rt, subject: str) -> list[tuple[str, object]]:
    """The intake feed's events about one resource, oldest first, with decoded payloads."""
    table = rt.tables.outbox
    kinds = {"intake.IncidentReported": pb.IncidentReported, "intake.ReportUpdated": pb.ReportUpdated,
             "intake.KnowledgeEntryAdded": pb.KnowledgeEntryAdded}
    with rt.engine.connect() as conn:
        rows = conn.execute(select(table.c.type, table.c.payload).where(table.c.subject == subject)
                            .order_by(table.c.sequence)).all()
    return [(row.type, kinds[row.type].FromString(row.payload)) for row in rows]


def actions(r: pb.Report) -> list[str]:
    return [e.action for e in r.timeline]
