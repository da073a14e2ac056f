"""Intake and referral served in-process against a real Postgres, each on a real gRPC socket,
wired as `serve` wires them (referral consuming the intake feed, calling intake over gRPC)."""
from __future__ import annotations

import os
import uuid
from contextlib import contextmanager
from dataclasses import dataclass

import grpc

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as referral_grpc
from services.runtime import migrate
from services.runtime.app import Runtime, open_runtime
from services.runtime.config import Settings
from services.runtime.db import ensure_service_database
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
def serving_suite(admin_url: str):
    from services.intake.__main__ import SPEC as INTAKE
    from services.referral12345.__main__ import SPEC as REFERRAL

    ports = {"intake": free_port(), "referral": free_port()}
    saved = {k: os.environ.get(k) for k in ("INTAKE_ADDR", "REFERRAL_ADDR", "OPEN311_API_KEYS")}
    os.environ["OPEN311_API_KEYS"] = f" {OPEN311_API_KEY}, other-app-key ,"
    os.environ["INTAKE_ADDR"] = f"127.0.0.1:{ports['intake']}"
    os.environ["REFERRAL_ADDR"] = f"127.0.0.1:{ports['referral']}"
    runtimes, servers, channels = [], [], []
    # A database of its own: the whole suite, when the session also runs it, works in the main one.
    own = support.own_database(admin_url, "referral_suite_checks")
    try:
        for spec in (INTAKE, REFERRAL):
            url = ensure_service_database(own, spec.name, "pw")
            migrate.upgrade(spec.migrations, url, spec.name)
            rt = open_runtime(spec, Settings(service=spec.name, grpc_port=ports[spec.name], database_url=url))
            runtimes.append(rt)
            spec.seed(rt)
            server = create_server(port=ports[spec.name], host="127.0.0.1", services=spec.build(rt), public=spec.public)
            servers.append(server)
            rt.feed.start()
            server.start()
        for rt in runtimes:
            for consumer in rt.consumers:
                consumer.start()
        intake_ch = support.channel(os.environ["INTAKE_ADDR"])
        referral_ch = support.channel(os.environ["REFERRAL_ADDR"])
        channels += [intake_ch, referral_ch]
        yield Suite(intake_grpc.IntakeServiceStub(intake_ch), referral_grpc.ReferralServiceStub(referral_ch),
                    referral_grpc.Open311ServiceStub(referral_ch), runtimes[1], runtimes[0])
    finally:
        for ch in channels:
            ch.close()
        for server in servers:
            server.stop(1)
        for rt in runtimes:
            rt.close()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def as_user(roles: list[str], station: str = "", sub: str = "tester") -> tuple:
    """The header the gateway forwards after verifying a JWT."""
    return support.caller(roles, station=station, sub=sub, name=sub)


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


field_violations = support.field_violations
reason_of = support.error_reason


def actions(order: pb.WorkOrder) -> list[str]:
    return [e.action for e in order.timeline]
