"""Protobuf <-> warehouse domain: the feeds' events as facts and outcomes, the analytics as messages."""
from __future__ import annotations

from sampledata import city
from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from smart110.warehouse.v1 import warehouse_service_pb2 as pb

from services.runtime.policy import org
from services.runtime.timeutil import from_pb, to_pb

from . import domain
from .domain import Outcome, ReportFact

_GRID_TARGETS = {g.grid_id: g.arrival_target_s for g in city.grids()}


def _name(enum, value: int, prefix: str) -> str:
    """CHANNEL_PHONE -> "PHONE"; unspecified or a value this build does not know -> ""."""
    try:
        name = enum.Name(value)
    except ValueError:
        return ""
    return "" if name.endswith("_UNSPECIFIED") else name.removeprefix(prefix)


def _point(location) -> tuple[float | None, float | None]:
    p = location.point
    if p.longitude == 0 and p.latitude == 0:
        return None, None
    return p.longitude, p.latitude


# -- the feeds ----------------------------------------------------------------------------------

def report_fact(report: intake_pb.Report, occur_time=None) -> ReportFact | None:
    """Intake's report as a fact row; None for one without a receive time (nothing to file it under)."""
    receive = from_pb(report.receive_time) or from_pb(report.create_time)
    if not report.name or receive is None:
        return None
    lng, lat = _point(report.location)
    c = report.classification
    status = _name(intake_pb.ReportStatus, report.status, "REPORT_STATUS_")
    return ReportFact.located(
        longitude=lng, latitude=lat,
        report=report.name, receive_time=receive,
        category=_name(intake_pb.Category, c.category, "CATEGORY_"),
        incident_type=c.incident_type, priority=c.priority,
        channel=_name(intake_pb.Channel, report.channel, "CHANNEL_"),
        station_id=report.station_id, grid_id=report.grid_id,
        district_id=org().district_of.get(report.station_id, ""),
        answer_time=from_pb(report.answer_time),
        hand_off_time=from_pb(report.hand_off_time),
        arrival_time=from_pb(report.on_scene_time),
        close_time=(from_pb(report.update_time) or occur_time) if status == "CLOSED" else None,
        arrival_target_s=_GRID_TARGETS.get(report.grid_id),
        merged=bool(report.merged_into),
        referred=bool(report.work_order) or status == "REFERRED",
        satisfaction=_name(common_pb2.Satisfaction, report.satisfaction, "SATISFACTION_"),
        dispatch_case=report.dispatch_case, work_order=report.work_order,
        update_time=from_pb(report.update_time) or occur_time,
    )


def case_outcome(case: dispatch_pb.DispatchCase) -> Outcome | None:
    """What a dispatch case says of its report: first acceptance (hand-off), arrival, close, the target."""
    if not case.report:
        return None
    return Outcome(
        report=case.report, hand_off_time=from_pb(case.accept_time), arrival_time=from_pb(case.arrive_time),
        close_time=from_pb(case.close_time),
        arrival_target_s=case.arrival_target_seconds or None, dispatch_case=case.name)


def work_order_outcome(order: referral_pb.WorkOrder) -> Outcome | None:
    """A 12345 work order opened from a 110 report: the report was referred (转办)."""
    if not order.report:
        return None
    return Outcome(report=order.report, referred=True, work_order=order.name)


# -- the analytics ------------------------------------------------------------------------------

def heat_map_to_pb(cells, *, resolution: int, start, end) -> pb.HeatMap:
    out = pb.HeatMap(resolution=resolution, start_time=to_pb(start), end_time=to_pb(end))
    for cell, count in cells:
        lng, lat = domain.cell_center(cell)
        out.cells.add(cell=domain.cell_name(cell), count=count,
                      center=common_pb2.GeoPoint(longitude=round(lng, 6), latitude=round(lat, 6)))
        out.total += count
    return out


GRANULARITY_OF = {pb.GRANULARITY_HOUR: "HOUR", pb.GRANULARITY_DAY: "DAY", pb.GRANULARITY_WEEK: "WEEK"}
GRANULARITY_PB = {v: k for k, v in GRANULARITY_OF.items()}


def trend_to_pb(trend) -> pb.Trend:
    return pb.Trend(
        buckets=[pb.TrendBucket(start_time=to_pb(b.start), count=b.count, last_year_count=b.last_year_count,
                                previous_count=b.previous_count) for b in trend.buckets],
        granularity=GRANULARITY_PB[trend.granularity], total=trend.total, last_year_total=trend.last_year_total,
        previous_total=trend.previous_total, year_on_year=domain.change_ratio(trend.total, trend.last_year_total),
        period_on_period=domain.change_ratio(trend.total, trend.previous_total),
        start_time=to_pb(trend.start), end_time=to_pb(trend.end))


def kpis_to_pb(m: dict[str, int], *, station_id: str, district_id: str, start, end) -> pb.StationKpis:
    return pb.StationKpis(
        station_id=station_id, district_id=district_id, reports=m["reports"],
        answered=m["answered"], answered_within_3s_share=domain.share(m["answered_3s"], m["answered"]),
        handed_off=m["handed_off"], handed_off_within_30s_share=domain.share(m["handed_off_30s"], m["handed_off"]),
        arrived=m["arrived"], arrival_within_target_share=domain.share(m["arrived_on_target"], m["arrived"]),
        repeats=m["repeats"], repeat_rate=domain.share(m["repeats"], m["reports"]),
        rated=m["rated"], satisfaction_share=domain.share(m["satisfied"], m["rated"]),
        referred=m["referred"], closed=m["closed"], start_time=to_pb(start), end_time=to_pb(end))


_CATEGORY_OF = {t.code: t.category for t in city.INCIDENT_TYPES.values()}


def top_types_to_pb(counts: list[tuple[str, int]], *, limit: int, start, end) -> pb.TopTypes:
    """The first `limit` types of `counts` (most first); the total counts every type."""
    total = sum(n for _, n in counts)
    return pb.TopTypes(
        types=[pb.TopType(incident_type=k, category=_CATEGORY_OF.get(k, ""), count=n, share=domain.share(n, total))
               for k, n in counts[:limit]],
        total=total, start_time=to_pb(start), end_time=to_pb(end))


def top_places_to_pb(cells: list[tuple[int, int]], *, limit: int, resolution: int, start, end) -> pb.TopPlaces:
    total = sum(n for _, n in cells)
    out = pb.TopPlaces(total=total, resolution=resolution, start_time=to_pb(start), end_time=to_pb(end))
    for cell, n in cells[:limit]:
        lng, lat = domain.cell_center(cell)
        out.places.add(cell=domain.cell_name(cell), count=n, share=domain.share(n, total),
                       center=common_pb2.GeoPoint(longitude=round(lng, 6), latitude=round(lat, 6)))
    return out
