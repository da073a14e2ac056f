"""Domain <-> protobuf for dispatch."""
from __future__ import annotations

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime.audit import timeline_to_pb
from services.runtime.enums import enum_value
from services.runtime.timeutil import to_pb

from .domain import DispatchCase, Unit




def case_to_pb(c: DispatchCase) -> pb.DispatchCase:
    msg = pb.DispatchCase(
        name=c.name, report=c.report, station_id=c.station_id, grid_id=c.grid_id, incident_type=c.incident_type,
        priority=c.priority, level=enum_value(pb.CaseLevel, c.level, "CASE_LEVEL_"),
        status=enum_value(pb.CaseStatus, c.status, "CASE_STATUS_"), address_text=c.address_text,
        summary=c.summary,
        recommendations=[
            pb.Recommendation(
                unit=f"units/{r.unit_id}", call_sign=r.call_sign, kind=enum_value(pb.UnitKind, r.kind, "UNIT_KIND_"),
                station_id=r.station_id, role=enum_value(pb.AssignmentRole, r.role, "ASSIGNMENT_ROLE_"),
                distance_m=r.distance_m, eta_seconds=r.eta_seconds, reason=r.reason)
            for r in c.recommendations
        ],
        report_time=to_pb(c.report_time), create_time=to_pb(c.create_time), update_time=to_pb(c.update_time),
    )
    if c.lon is not None:
        msg.location.CopyFrom(common_pb2.Location(point=common_pb2.GeoPoint(longitude=c.lon, latitude=c.lat)))
    timeline_to_pb(c.timeline, msg.timeline)
    return msg


def unit_to_pb(u: Unit) -> pb.Unit:
    msg = pb.Unit(
        name=u.name, unit_id=u.unit_id, call_sign=u.call_sign, kind=enum_value(pb.UnitKind, u.kind, "UNIT_KIND_"),
        station_id=u.station_id, skills=u.skills, vehicle=u.vehicle,
        officers=[common_pb2.OfficerRef(officer_id=o["officer_id"], display_name=o["name"], station_id=u.station_id)
                  for o in u.officers],
        status=enum_value(pb.UnitStatus, u.status, "UNIT_STATUS_"),
        position=common_pb2.GeoPoint(longitude=u.lon, latitude=u.lat), on_duty=u.on_duty,
    )
    if u.position_time:
        msg.position_time.CopyFrom(to_pb(u.position_time))
    return msg
