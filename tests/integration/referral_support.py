"""Intake and referral served together in-process, as `serve` assembles them, each on a fresh
database and a real gRPC socket, with their feed consumers running: referral consumes the intake
feed and calls intake over gRPC (jurisdictions, transfers), intake follows the referral feed.

The one-service harness is `tests.support.serving` (consumers fed by hand); this small suite is
built on the same pieces for the tests of the two lines working together. Both services read the
wall clock (figures and deadlines are measured in real time here); `sweep_at` runs the overdue
sweeper at a chosen time.
"""
from __future__ import annotations

import os
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from datetime import datetime

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as referral_grpc
from services.intake.__main__ import SPEC as INTAKE
from services.referral12345 import handlers
from services.referral12345.__main__ import SPEC as REFERRAL
from services.runtime import migrate
from services.runtime.app import Runtime, all_policies, assemble, open_runtime
from services.runtime.config import Settings
from services.runtime.server import create_server
from tools.devstack import free_port
from tests import support

# Points inside the sample city (station headquarters of sampledata.city).
JIANGAN_S01 = (114.374283, 30.57589)      # 江岸区大智路派出所
HANYANG_S15 = (114.316402, 30.513538)     # 汉阳区月湖派出所
XINZHOU_S23 = (114.435983, 30.639128)     # 新洲县邾城派出所
JIANGHAN_S06 = (114.340414, 30.577915)    # 江汉区民族路派出所
QIAOKOU_S10 = (114.292231, 30.571367)     # 硚口区宝丰街派出所
QIAOKOU_S12 = (114.320894, 30.652398)     # 硚口区古田派出所
WUCHANG_S18 = (114.349957, 30.552027)     # 武昌区中华路派出所


# The Open311 api_key the suite's referral service accepts (OPEN311_API_KEYS).
OPEN311_API_KEY = "test-open311-app-key"


@dataclass
class Suite:
    intake: intake_grpc.IntakeServiceStub
    referral: referral_grpc.ReferralServiceStub
    open311: referral_grpc.Open311ServiceStub
    referral_rt: Runtime
    intake_rt: Runtime


@contextmanager
def _environment(values: dict[str, str]):
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextmanager
def _served(spec, admin_url: str, port: int):
    """One service of the suite: a fresh database migrated to head, assembled, seeded, serving on `port`."""
    url = support.fresh_service_database(admin_url, spec.name)
    migrate.upgrade(spec.migrations, url, spec.name)
    rt = open_runtime(spec, Settings(service=spec.name, grpc_port=port, database_url=url))
    server = None
    try:
        servicers = assemble(spec, rt)
        spec.seed(rt)
        server = create_server(port=port, host="127.0.0.1", services=servicers, public=spec.public,
                               policies=all_policies(spec))
        rt.feed.start()
        server.start()
        yield rt
    finally:
        if server is not None:
            server.stop(1)
        rt.close()


@contextmanager
def serving_suite(admin_url: str):
    # Each service's wiring reads where the other listens when it is assembled: the ports come first.
    # Dispatch is not served here: its feed is a port nobody listens on (tests hand referral its events).
    ports = {"intake": free_port(), "referral": free_port()}
    env = {"OPEN311_API_KEYS": f" {OPEN311_API_KEY}, other-app-key ,",
           "INTAKE_ADDR": f"127.0.0.1:{ports['intake']}", "REFERRAL_ADDR": f"127.0.0.1:{ports['referral']}",
           "DISPATCH_ADDR": f"127.0.0.1:{free_port()}"}
    with ExitStack() as stack:
        stack.enter_context(_environment(env))
        runtimes = {spec.name: stack.enter_context(_served(spec, admin_url, ports[spec.name]))
                    for spec in (INTAKE, REFERRAL)}
        for rt in runtimes.values():
            for consumer in rt.consumers:
                consumer.start()
        intake_ch = stack.enter_context(support.channel(env["INTAKE_ADDR"]))
        referral_ch = stack.enter_context(support.channel(env["REFERRAL_ADDR"]))
        yield Suite(intake_grpc.IntakeServiceStub(intake_ch), referral_grpc.ReferralServiceStub(referral_ch),
                    referral_grpc.Open311ServiceStub(referral_ch), runtimes["referral"], runtimes["intake"])


def sweep_at(rt: Runtime, at: datetime) -> list[str]:
    """One round of referral's overdue sweeper in a unit of work whose time is `at`: the orders flagged."""
    with rt.engine.begin() as conn:
        uow = replace(rt.unit_of_work(conn), clock=lambda: at)
        flagged = handlers.sweep_overdue(uow)
        uow.flush()
    return [o.name for o in flagged]


def rid() -> str:
    return uuid.uuid4().hex


def phone() -> str:
    """A fresh mobile number, so repeated-caller counts start from zero."""
    return "139" + str(uuid.uuid4().int)[:8]


def point(lonlat: tuple[float, float]) -> common_pb2.Location:
    return common_pb2.Location(point=common_pb2.GeoPoint(longitude=lonlat[0], latitude=lonlat[1]), accuracy_m=10)


def report_110(suite: Suite, description: str, where=JIANGAN_S01, caller_phone: str | None = None,
               name: str = "李女士") -> intake_pb.Report:
    return suite.intake.ReportIncident(intake_pb.ReportIncidentRequest(
        request_id=rid(), report=intake_pb.Report(
            channel=intake_pb.CHANNEL_PHONE, caller=intake_pb.Caller(phone_number=caller_phone or phone(), name=name),
            location=point(where), description=description)), timeout=10)


def order_for_report(suite: Suite, report_name: str) -> pb.WorkOrder | None:
    found = suite.referral.ListWorkOrders(pb.ListWorkOrdersRequest(report=report_name), timeout=10).work_orders
    assert len(found) <= 1, f"more than one work order for {report_name}"
    return suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=found[0].name), timeout=10) if found else None


def ticket(description: str, matter: str = "", urgency: int = 4, where=JIANGAN_S01, caller_phone: str | None = None,
           name: str = "张先生") -> pb.WorkOrder:
    w = pb.WorkOrder(source=pb.WORK_ORDER_SOURCE_HOTLINE_12345, matter_code=matter, description=description,
                     urgency=urgency, citizen=pb.Citizen(phone_number=caller_phone or phone(), name=name),
                     hotline_ticket_id="T" + rid()[:10])
    if where is not None:
        w.location.CopyFrom(point(where))
    return w


def actions(order: pb.WorkOrder) -> list[str]:
    return [e.action for e in order.timeline]


def resolve_as_department(suite: Suite, name: str, dept_id: str, feedback: str) -> pb.WorkOrder:
    """The department accepts, starts and resolves a work order, as its staff would."""
    staff = support.caller(["department"], station=dept_id)
    for call, req in ((suite.referral.AcceptWorkOrder, pb.AcceptWorkOrderRequest),
                      (suite.referral.StartWorkOrder, pb.StartWorkOrderRequest)):
        call(req(request_id=rid(), name=name, department=f"departments/{dept_id}"), metadata=staff, timeout=10)
    return suite.referral.ResolveWorkOrder(pb.ResolveWorkOrderRequest(
        request_id=rid(), name=name, department=f"departments/{dept_id}", feedback=feedback),
        metadata=staff, timeout=10)
