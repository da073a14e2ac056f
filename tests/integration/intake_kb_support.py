"""The intake service in-process on a real Postgres and a real gRPC socket, for the
consultation, duplicate, follow-up and statistics tests."""
from __future__ import annotations

import itertools
import random
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from sqlalchemy import select

from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2_grpc as pb_grpc
from services.runtime import migrate
from services.runtime.app import open_runtime
from services.runtime.config import Settings
from services.runtime.db import ensure_service_database
from services.runtime.server import create_server
from tests import support

# Points inside the sample city (江岸区 and 武昌区), and a report place.
HANKOU = (114.30, 30.58)
WUCHANG = (114.33, 30.55)

# Each test takes its own 3-hour slot of time, so duplicate windows and
# statistics of different tests (and of earlier runs on a kept database) never meet.
_BASE = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(
    days=2 + random.randrange(0, 20), hours=random.randrange(0, 24))
_slots = itertools.count()


def time_slot() -> datetime:
    return _BASE - timedelta(hours=3 * next(_slots))


def caller() -> str:
    """A fresh mainland mobile number."""
    return "139" + f"{random.randrange(10**8):08d}"


def metadata_for(roles: list[str], sub: str = "", name: str = "") -> tuple:
    return support.caller(roles, sub=sub or f"{roles[0]}-{uuid.uuid4().hex[:6]}", name=name)


CALL_TAKER = metadata_for(["call_taker"], "ct-1001", "接警员李娜")


@contextmanager
def serving_intake(admin_url: str):
    from services.intake.__main__ import SPEC

    url = ensure_service_database(support.own_database(admin_url, "smart110_intake_checks"), SPEC.name, "pw")
    migrate.upgrade(SPEC.migrations, url, SPEC.name)
    rt = open_runtime(SPEC, Settings(service=SPEC.name, grpc_port=0, database_url=url))
    server = None
    try:
        SPEC.seed(rt)
        server = create_server(port=0, host="127.0.0.1", services=SPEC.build(rt))
        rt.feed.start()
        server.start()
        with support.channel(f"127.0.0.1:{server.port}") as channel:
            yield rt, pb_grpc.IntakeServiceStub(channel)
    finally:
        if server is not None:
            server.stop(1)
        rt.close()


@pytest.fixture(scope="module")
def intake(admin_url):
    with serving_intake(admin_url) as pair:
        yield pair


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
