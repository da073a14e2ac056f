"""Dispatch use cases: a police report becomes a case, offered to the recommended units."""
from __future__ import annotations

import copy
import uuid

from smart110.intake.v1 import intake_service_pb2 as intake_pb

from services.runtime import metrics
from services.runtime.timeutil import from_pb

from . import antifraud, escalation
from .caseinfo import announce, case_message
from .context import Dispatch
from .domain import DispatchCase, TimelineEntry
from .mapping import case_created_pb
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
    d.outbox.publish(conn, "dispatch.CaseCreated", case.name, case_created_pb(case_message(conn, case)))
    offer_recommended(conn, d, case, picks, now)
    return case


def apply_report_update(conn, d: Dispatch, *, report: intake_pb.Report, action: str) -> None:
    """Follows intake's changes to a report (intake.ReportUpdated).

    A report corrected into a police matter, or split off a master it had been
    merged into (UNMERGED), needs a case of its own. A correction of an open
    case's incident type or priority is carried over to the case, kept in its
    timeline and announced; the units already offered stay, and the
    dispatcher may ask RecommendUnits for more.
    """
    if action not in ("CORRECTED", "UNMERGED"):
        return
    repo = CaseRepository(conn)
    found = repo.list(limit=1, after=None, report=report.name)
    if not found:
        open_case_for_report(conn, d, report=report)
        return
    if action != "CORRECTED":
        return
    case = repo.get(found[0].id, lock=True, with_timeline=False)
    before = copy.copy(case)
    c = report.classification
    changes = []
    if c.incident_type and c.incident_type != case.incident_type:
        changes.append(f"警情类型 {case.incident_type} → {c.incident_type}")
        case.incident_type = c.incident_type
    if c.priority and c.priority != case.priority:
        changes.append(f"优先级 {case.priority} → {c.priority}")
        case.priority = c.priority
    if not changes or case.status == "CLOSED":
        return
    now = d.now()
    case.update_time = now
    entries = [TimelineEntry("RECLASSIFIED", actor="dispatch", roles=["service"], time=now,
                             detail="接警单更正：" + "，".join(changes))]
    repo.save(case, entries)
    announce(conn, d.outbox, case, "RECLASSIFIED", before=case_message(conn, before), entries=entries)
