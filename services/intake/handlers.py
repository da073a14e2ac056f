"""Intake use cases: one function each, state and event in one transaction."""
from __future__ import annotations

import uuid
from datetime import datetime

from smart110.intake.v1 import intake_service_pb2 as pb

from services.runtime.auth import AuthContext
from services.runtime.outbox import Outbox

from . import handling
from .domain import JurisdictionIndex, Report, TimelineEntry, classify
from .knowledge import KnowledgeIndex
from .mapping import report_to_pb
from .store import ReportRepository

STATUS_BY_CATEGORY = {
    "POLICE": "CLASSIFIED",
    "NON_POLICE": "CLASSIFIED",
    "CONSULTATION": "CLASSIFIED",
    "INVALID": "CLOSED",
}


def new_report_id(now: datetime) -> str:
    # Sortable by day for operators reading ids aloud; unique by the random tail.
    return f"{now:%Y%m%d}-{uuid.uuid4().hex[:12]}"


def report_incident(conn, *, outbox: Outbox, index: JurisdictionIndex, fields: dict, actor: AuthContext,
                    now: datetime, knowledge: KnowledgeIndex | None = None) -> Report:
    """Records a report: locate, route, classify, store, announce."""
    report_id = new_report_id(now)
    located = index.locate(fields["lon"], fields["lat"]) if fields["lon"] is not None else None
    classification = classify(fields["description"], fields["channel"])
    stamp = dict(actor=actor.subject, roles=sorted(actor.roles), time=now)
    timeline = [TimelineEntry("REPORTED", detail=f"渠道 {fields['channel']}", **stamp)]
    if located:
        where = f"属地 {located.station_name}（{located.station_id}）网格 {located.grid_id}"
        if located.border_case:
            where += f"；边界警情，距辖区 {located.distance_m:.0f} 米，按最近派出所"
        timeline.append(TimelineEntry("ROUTED", detail=where, **stamp))
    timeline.append(TimelineEntry("CLASSIFIED", detail=classification.reason, **stamp))
    report = Report(
        id=report_id,
        channel=fields["channel"],
        caller_phone=fields["caller_phone"],
        caller_name=fields["caller_name"],
        lon=fields["lon"],
        lat=fields["lat"],
        accuracy_m=fields["accuracy_m"],
        location_source=fields["location_source"],
        address_text=fields["address_text"],
        description=fields["description"],
        attachments=fields["attachments"],
        language=fields["language"] or "zh-CN",
        classification=classification,
        status=STATUS_BY_CATEGORY[classification.category],
        station_id=located.station_id if located else "",
        grid_id=located.grid_id if located else "",
        border_case=located.border_case if located else False,
        merged_into="",
        receive_time=fields["receive_time"] or now,
        answer_time=None,
        classify_time=now,
        hand_off_time=None,
        satisfaction="",
        create_time=now,
        update_time=now,
        timeline=timeline,
    )
    handling.before_store(conn, report, index=knowledge, actor=actor, now=now)  # duplicates, 即问即复
    ReportRepository(conn).add(report)
    handling.after_store(conn, report, outbox=outbox, actor=actor, now=now)
    outbox.publish(conn, "intake.IncidentReported", report.name, pb.IncidentReported(report=report_to_pb(report)))
    return report
