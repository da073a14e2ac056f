"""Intake statistics: answer and hand-off shares per channel, hour and station,
the repeat-report rate, satisfaction rates and how consultations were answered.

- answered within 3 s: reports whose answer time is at most 3 s after the
  receive time, over all reports;
- handed off within 30 s: police reports (not merged) whose first accepted
  assignment is at most 30 s after the receive time, over all such reports;
- repeat-report rate: reports merged into another, over all reports;
- satisfaction rates: over the reports that were rated.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select

from .store import consultations, reports

ANSWER_TARGET = timedelta(seconds=3)
HAND_OFF_TARGET = timedelta(seconds=30)


@dataclass
class Figures:
    reports: int = 0
    answered: int = 0
    answered_in_time: int = 0
    police: int = 0
    handed_off: int = 0
    handed_off_in_time: int = 0
    merged: int = 0

    @property
    def answered_share(self) -> float:
        return share(self.answered_in_time, self.reports)

    @property
    def handed_off_share(self) -> float:
        return share(self.handed_off_in_time, self.police)

    @property
    def repeat_rate(self) -> float:
        return share(self.merged, self.reports)


def share(part: int, whole: int) -> float:
    """part / whole to four places, 0 when there is nothing to divide by."""
    return round(part / whole, 4) if whole else 0.0


_police = and_(reports.c.category == "POLICE", reports.c.merged_into == "")
_COLUMNS = (
    func.count().label("reports"),
    func.count().filter(reports.c.answer_time.isnot(None)).label("answered"),
    func.count().filter(reports.c.answer_time - reports.c.receive_time <= ANSWER_TARGET).label("answered_in_time"),
    func.count().filter(_police).label("police"),
    func.count().filter(and_(_police, reports.c.hand_off_time.isnot(None))).label("handed_off"),
    func.count().filter(and_(_police, reports.c.hand_off_time - reports.c.receive_time <= HAND_OFF_TARGET)
                        ).label("handed_off_in_time"),
    func.count().filter(reports.c.merged_into != "").label("merged"),
)


def _figures(row) -> Figures:
    return Figures(**{k: int(getattr(row, k)) for k in Figures.__dataclass_fields__})


@dataclass
class Statistics:
    total: Figures
    channels: dict[str, Figures]
    hours: list[tuple[datetime, Figures]]
    stations: dict[str, Figures]
    satisfaction: dict[str, int]
    consultations: dict[str, int]


def intake_statistics(conn, *, start: datetime | None, end: datetime | None, station_id: str) -> Statistics:
    where = []
    if start is not None:
        where.append(reports.c.receive_time >= start)
    if end is not None:
        where.append(reports.c.receive_time < end)
    if station_id:
        where.append(reports.c.station_id == station_id)

    def grouped(key):
        q = select(key.label("key"), *_COLUMNS).where(*where).group_by(key).order_by(key)
        return [(row.key, _figures(row)) for row in conn.execute(q)]

    total = _figures(conn.execute(select(*_COLUMNS).where(*where)).one())
    hour = func.date_trunc("hour", reports.c.receive_time)
    satisfaction = {
        row.satisfaction: int(row.n) for row in conn.execute(
            select(reports.c.satisfaction, func.count().label("n"))
            .where(*where, reports.c.satisfaction != "").group_by(reports.c.satisfaction))
    }
    status = {
        (row.status, row.answered_at_once): int(row.n) for row in conn.execute(
            select(consultations.c.status, consultations.c.answered_at_once, func.count().label("n"))
            .select_from(consultations.join(reports, reports.c.id == consultations.c.report_id))
            .where(*where).group_by(consultations.c.status, consultations.c.answered_at_once))
    }
    consult = {
        "consultations": sum(status.values()),
        "answered_at_once": status.get(("ANSWERED", True), 0),
        "answered_by_expert": status.get(("ANSWERED", False), 0),
        "waiting": sum(n for (s, _), n in status.items() if s != "ANSWERED"),
    }
    return Statistics(
        total=total,
        channels=dict(grouped(reports.c.channel)),
        hours=grouped(hour),
        stations={k: v for k, v in grouped(reports.c.station_id) if k},
        satisfaction=satisfaction,
        consultations=consult,
    )
