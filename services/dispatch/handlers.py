"""Dispatch use cases."""
from __future__ import annotations

import uuid
from datetime import datetime

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb

from services.runtime import metrics
from services.runtime.outbox import Outbox
from services.runtime.timeutil import from_pb

from .domain import DispatchCase, TimelineEntry, recommend_first_responder
from .mapping import case_to_pb
from .store import CaseRepository, UnitRepository


def open_case_for_report(conn, *, outbox: Outbox, report: intake_pb.Report, now: datetime) -> DispatchCase | None:
    """A police report becomes a pending case for its station, with recommended units.

    Returns None when the report is not a police matter or already has a case.
    """
    if report.classification.category != intake_pb.CATEGORY_POLICE:
        return None
    has_point = report.HasField("location") and report.location.HasField("point")
    lon = report.location.point.longitude if has_point else None
    lat = report.location.point.latitude if has_point else None
    picks = recommend_first_responder(UnitRepository(conn).available(), station_id=report.station_id,
                                      lon=lon, lat=lat)
    stamp = dict(actor="dispatch", roles=["service"], time=now)
    detail = "；".join(f"{p.call_sign}：{p.reason}" for p in picks) or "暂无可用警力，待指挥员调派"
    case = DispatchCase(
        id=f"{now:%Y%m%d}-{uuid.uuid4().hex[:12]}",
        report=report.name,
        station_id=report.station_id,
        grid_id=report.grid_id,
        incident_type=report.classification.incident_type,
        priority=report.classification.priority,
        level="STATION",
        status="PENDING",
        lon=lon,
        lat=lat,
        address_text=report.address_text,
        summary=report.description[:200],
        recommendations=picks,
        report_time=from_pb(report.receive_time) or now,
        create_time=now,
        update_time=now,
        timeline=[TimelineEntry("OPENED", detail=f"由接警单 {report.name} 生成", **stamp),
                  TimelineEntry("RECOMMENDED", detail=detail, **stamp)],
    )
    if not CaseRepository(conn).add(case):
        return None
    if report.HasField("receive_time"):
        metrics.observe_sla_after_commit(conn, "dispatch", (case.create_time - case.report_time).total_seconds())
    outbox.publish(conn, "dispatch.CaseCreated", case.name, pb.CaseCreated(dispatch_case=case_to_pb(case)))
    return case
