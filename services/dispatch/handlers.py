"""Dispatch use cases: a police report becomes a case, offered to the recommended units."""
from __future__ import annotations

import uuid

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb

from services.runtime import metrics
from services.runtime.timeutil import from_pb

from . import antifraud, escalation
from .caseinfo import case_message
from .context import Dispatch
from .domain import DispatchCase, TimelineEntry
from .offers import offer_recommended, recommend_for
from .store import CaseRepository, GridRepository


def open_case_for_report(conn, d: Dispatch, *, report: intake_pb.Report) -> DispatchCase | None:
    """A police report becomes a pending case for its station, offered at once to the recommended units.

    Returns None when the report is not a police matter, is a duplicate merged
    into another report, or already has a case.
    """
    if report.classification.category != intake_pb.CATEGORY_POLICE or report.merged_into:
        return None
    now = d.now()
    has_point = report.HasField("location") and report.location.HasField("point")
    lon = report.location.point.longitude if has_point else None
    lat = report.location.point.latitude if has_point else None
    stamp = dict(actor="dispatch", roles=["service"], time=now)
    case = DispatchCase(
        id=f"{now:%Y%m%d}-{uuid.uuid4().hex[:12]}",
        report=report.name,
        station_id=report.station_id,
        grid_id=report.grid_id,
        incident_type=report.classification.incident_type,
        priority=report.classification.priority,
        level=escalation.initial_level(report.classification.incident_type, report.classification.priority),
        status="PENDING",
        lon=lon,
        lat=lat,
        address_text=report.address_text,
        summary=report.description[:200],
        recommendations=[],
        report_time=from_pb(report.receive_time) or now,
        create_time=now,
        update_time=now,
        arrival_target_s=GridRepository(conn).arrival_target_s(report.grid_id),
    )
    picks, gaps = recommend_for(conn, d, case, now)
    case.recommendations = picks
    detail = "；".join(f"{p.call_sign}：{p.reason}" for p in picks) or "暂无可用警力，待指挥员调派"
    if gaps:
        detail += "；暂无空闲的" + "、".join(g.label for g in gaps)
    case.timeline = [TimelineEntry("OPENED", detail=f"由接警单 {report.name} 生成", **stamp),
                     TimelineEntry("RECOMMENDED", detail=detail, **stamp)]
    if not CaseRepository(conn).add(case):
        return None
    antifraud.hand_off_new_case(conn, case, report, now)
    if report.HasField("receive_time"):
        metrics.observe_sla_after_commit(conn, "dispatch", (case.create_time - case.report_time).total_seconds())
    d.outbox.publish(conn, "dispatch.CaseCreated", case.name, pb.CaseCreated(dispatch_case=case_message(conn, case)))
    offer_recommended(conn, d, case, picks, now)
    return case
