"""Response circles (1-3-5 minute 快速反应圈): every grid has an arrival target
(60, 180 or 300 seconds, seeded from the sample city); a case keeps its grid's
target and the time its first unit was on scene. Reported per station: how
many arrived within target, the mean arrival time, the cases still waiting
past their target."""
from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import func, select

from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from .store import cases

# Cases that can still be waiting for a first unit on scene.
WAITING_STATUSES = ("PENDING", "DISPATCHED")


def arrival(msg: pb.DispatchCase) -> tuple[int, bool]:
    """(seconds from the report to the first unit on scene, within the target); (0, False) before arrival."""
    if not msg.HasField("arrive_time") or not msg.HasField("report_time"):
        return 0, False
    seconds = max(0, round((msg.arrive_time.ToDatetime() - msg.report_time.ToDatetime()).total_seconds()))
    return seconds, bool(msg.arrival_target_seconds) and seconds <= msg.arrival_target_seconds


class _Tally:
    def __init__(self):
        self.arrived = self.within = self.overdue = 0
        self.seconds = 0.0

    def add(self, arrived: int, within: int, seconds: float, overdue: int) -> None:
        self.arrived += arrived
        self.within += within
        self.seconds += seconds
        self.overdue += overdue

    def mean(self) -> float:
        return self.seconds / self.arrived if self.arrived else 0.0


def _line(station_id: str, tally: _Tally, tiers: dict[int, _Tally]) -> pb.StationResponseCircle:
    return pb.StationResponseCircle(
        station_id=station_id, arrived=tally.arrived, within_target=tally.within,
        within_target_rate=tally.within / tally.arrived if tally.arrived else 0.0,
        mean_arrival_seconds=tally.mean(), overdue_not_arrived=tally.overdue,
        tiers=[pb.ResponseCircleTier(target_seconds=t, arrived=x.arrived, within_target=x.within,
                                     mean_arrival_seconds=x.mean()) for t, x in sorted(tiers.items())])


def stats(conn, *, station_id: str, start: datetime | None, end: datetime | None, now: datetime
          ) -> pb.ResponseCircleStats:
    c = cases.c
    seconds = func.extract("epoch", c.arrive_time - c.report_time)
    arrived = c.arrive_time.is_not(None)
    past_target = c.report_time + func.make_interval(0, 0, 0, 0, 0, 0, c.arrival_target_s) < now
    q = (select(c.station_id, c.arrival_target_s,
                func.count().filter(arrived).label("arrived"),
                func.count().filter(arrived, seconds <= c.arrival_target_s).label("within"),
                func.coalesce(func.sum(seconds).filter(arrived), 0).label("seconds"),
                func.count().filter(~arrived, c.status.in_(WAITING_STATUSES), past_target).label("overdue"))
         .where(c.arrival_target_s > 0)
         .group_by(c.station_id, c.arrival_target_s))
    if station_id:
        q = q.where(c.station_id == station_id)
    if start is not None:
        q = q.where(c.report_time >= start)
    if end is not None:
        q = q.where(c.report_time < end)
    per_station: dict[str, _Tally] = defaultdict(_Tally)
    per_tier: dict[str, dict[int, _Tally]] = defaultdict(lambda: defaultdict(_Tally))
    total, total_tiers = _Tally(), defaultdict(_Tally)
    for r in conn.execute(q):
        figures = (r.arrived, r.within, float(r.seconds), r.overdue)
        per_station[r.station_id].add(*figures)
        per_tier[r.station_id][r.arrival_target_s].add(*figures)
        total.add(*figures)
        total_tiers[r.arrival_target_s].add(*figures)
    return pb.ResponseCircleStats(
        stations=[_line(s, per_station[s], per_tier[s]) for s in sorted(per_station)],
        total=_line("", total, total_tiers))
