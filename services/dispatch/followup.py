"""Citizen follow-up (回访): after report-back the citizen is asked about the
handling, satisfied / basically satisfied / unsatisfied, with their words.
An unsatisfied follow-up is flagged to the station chief. Rates are counted
per station and per officer of the units that saw the case through."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime.audit import TimelineEntry
from services.runtime.enums import enum_value
from services.runtime.errors import FailedPrecondition, NotFound
from services.runtime.outbox import Outbox
from services.runtime.timeutil import to_pb

from .store import (
    CaseRepository, assignments, case_followup_officers, case_followups, case_timeline, cases,
)

RATE_ROLES = ("call_taker", "dispatcher", "supervisor", "hotline_agent", "service")
STATS_ROLES = ("commander", "supervisor", "dispatcher", "station_chief", "service")
# Some unit has reported back (回告): the citizen can be asked.
RATEABLE_STATUSES = ("REPORTED_BACK", "CLOSED")
# The units rated with a case: those that saw it through to the end.
RATED_ASSIGNMENT_STATES = ("CLEARED", "REPORTED_BACK")
LABELS = {"SATISFIED": "满意", "BASICALLY_SATISFIED": "基本满意", "UNSATISFIED": "不满意"}
MAX_COMMENT = 1000


def rate(conn, *, outbox: Outbox, case_id: str, satisfaction: str, comment: str, actor: str, roles: list[str],
         now: datetime) -> pb.DispatchCase:
    from .caseinfo import announce, case_message
    from .mapping import case_event_pb

    row = conn.execute(select(cases).where(cases.c.id == case_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"cases/{case_id}")
    if row.status not in RATEABLE_STATUSES:
        raise FailedPrecondition(f"cases/{case_id} has not been reported back yet (status {row.status})",
                                 reason="NOT_REPORTED_BACK", metadata={"status": row.status})
    if conn.execute(select(case_followups.c.case_id).where(case_followups.c.case_id == case_id)).first():
        raise FailedPrecondition(f"cases/{case_id} already has its follow-up", reason="ALREADY_RATED")
    before = case_message(conn, CaseRepository(conn).get(case_id, with_timeline=False))
    flagged = satisfaction == "UNSATISFIED"
    conn.execute(case_followups.insert().values(
        case_id=case_id, station_id=row.station_id, satisfaction=satisfaction, comment=comment, actor=actor,
        roles=roles, rate_time=now, flagged=flagged))
    officers = {}
    for a in conn.execute(select(assignments).where(assignments.c.case_id == case_id,
                                                    assignments.c.state.in_(RATED_ASSIGNMENT_STATES))):
        for o in a.officers:
            officers.setdefault(o["officer_id"], dict(case_id=case_id, officer_id=o["officer_id"],
                                                      officer_name=o.get("name", ""), station_id=a.station_id,
                                                      unit_id=a.unit_id))
    if officers:
        conn.execute(insert(case_followup_officers), list(officers.values()))
    detail = f"群众回访：{LABELS[satisfaction]}" + (f"。{comment}" if comment else "")
    entries = [TimelineEntry("RATED", actor, roles, now, detail=detail)]
    if flagged:
        entries.append(TimelineEntry("FOLLOW_UP_FLAGGED", actor, roles, now,
                                     detail=f"群众不满意，已推送{row.station_id}所长核查"))
    case_timeline.add(conn, case_id, entries)
    conn.execute(update(cases).where(cases.c.id == case_id).values(update_time=now))
    case = CaseRepository(conn).get(case_id)
    message = announce(conn, outbox, case, "RATED", before=before, entries=entries)
    if flagged:
        outbox.publish(conn, "dispatch.FollowUpFlagged", case.name, pb.FollowUpFlagged(
            dispatch_case=case_event_pb(message), follow_up=message.follow_up, station_id=row.station_id))
    return message


def followups_of(conn, case_ids: list[str]) -> dict[str, pb.FollowUp]:
    if not case_ids:
        return {}
    out = {}
    for r in conn.execute(select(case_followups).where(case_followups.c.case_id.in_(case_ids))):
        out[r.case_id] = pb.FollowUp(
            satisfaction=enum_value(common_pb2.Satisfaction, r.satisfaction, "SATISFACTION_"), comment=r.comment,
            stamp=common_pb2.AuditStamp(actor=r.actor, roles=list(r.roles), time=to_pb(r.rate_time)),
            flagged_to_station_chief=r.flagged)
    rows = conn.execute(select(case_followup_officers).where(case_followup_officers.c.case_id.in_(case_ids))
                        .order_by(case_followup_officers.c.officer_id))
    for r in rows:
        out[r.case_id].officers.add(officer_id=r.officer_id, display_name=r.officer_name, station_id=r.station_id)
    return out


def _counts(satisfaction):
    return [func.count().filter(satisfaction == s).label(s.lower()) for s in LABELS]


def _summary(r, **kw) -> pb.SatisfactionSummary:
    total = r.satisfied + r.basically_satisfied + r.unsatisfied
    return pb.SatisfactionSummary(satisfied=r.satisfied, basically_satisfied=r.basically_satisfied,
                                  unsatisfied=r.unsatisfied, total=total,
                                  satisfaction_rate=(r.satisfied + r.basically_satisfied) / total if total else 0.0,
                                  **kw)


def stats(conn, *, station_id: str, start: datetime | None, end: datetime | None) -> pb.FollowUpStats:
    f = case_followups
    window = []
    if start is not None:
        window.append(f.c.rate_time >= start)
    if end is not None:
        window.append(f.c.rate_time < end)
    by_station = select(f.c.station_id, *_counts(f.c.satisfaction)).where(*window).group_by(f.c.station_id)
    if station_id:
        by_station = by_station.where(f.c.station_id == station_id)
    o = case_followup_officers
    by_officer = (select(o.c.station_id, o.c.officer_id, func.max(o.c.officer_name).label("officer_name"),
                         *_counts(f.c.satisfaction))
                  .join(f, f.c.case_id == o.c.case_id).where(*window)
                  .group_by(o.c.station_id, o.c.officer_id))
    if station_id:
        by_officer = by_officer.where(o.c.station_id == station_id)
    return pb.FollowUpStats(
        stations=[_summary(r, station_id=r.station_id)
                  for r in conn.execute(by_station.order_by(f.c.station_id))],
        officers=[_summary(r, station_id=r.station_id, officer=common_pb2.OfficerRef(
                      officer_id=r.officer_id, display_name=r.officer_name, station_id=r.station_id))
                  for r in conn.execute(by_officer.order_by(o.c.station_id, o.c.officer_id))],
    )
