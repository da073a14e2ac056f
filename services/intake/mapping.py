"""Domain <-> protobuf for intake."""
from __future__ import annotations

import json

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as pb

from services.runtime.logs import mask_name, mask_phone
from services.runtime.audit import TimelineEntry, timeline_to_pb
from services.runtime.changes import changed_fields, without
from services.runtime.enums import enum_name, enum_value
from services.runtime.timeutil import to_pb

from .domain import Address, AddressMatch, Attachment, GridArea, Report, StationArea
from .handling_pb import fill_handling


def attachments_from_pb(items) -> list[Attachment]:
    return [
        Attachment(
            kind=enum_name(common_pb2.AttachmentKind, a.kind, "ATTACHMENT_KIND_") or "UNSPECIFIED",
            content_type=a.content_type, size_bytes=a.size_bytes, sha256=a.sha256.lower(),
            storage_uri=a.storage_uri,
        )
        for a in items
    ]


def report_to_pb(r: Report, *, masked: bool = False) -> pb.Report:
    c = r.classification
    msg = pb.Report(
        name=r.name,
        channel=enum_value(pb.Channel, r.channel, "CHANNEL_"),
        caller=pb.Caller(
            phone_number=mask_phone(r.caller_phone) if masked and r.caller_phone else r.caller_phone,
            name=mask_name(r.caller_name) if masked else r.caller_name,
        ),
        address_text=r.address_text,
        description=r.description,
        attachments=[
            common_pb2.Attachment(
                kind=enum_value(common_pb2.AttachmentKind, a.kind, "ATTACHMENT_KIND_"),
                content_type=a.content_type, size_bytes=a.size_bytes, sha256=a.sha256, storage_uri=a.storage_uri,
            )
            for a in r.attachments
        ],
        language=r.language,
        classification=pb.Classification(
            category=enum_value(pb.Category, c.category, "CATEGORY_"),
            incident_type=c.incident_type, priority=c.priority, reason=c.reason,
            rule_ids=c.rule_ids, corrected=c.corrected,
        ),
        status=enum_value(pb.ReportStatus, r.status, "REPORT_STATUS_"),
        station_id=r.station_id, grid_id=r.grid_id, border_case=r.border_case,
        merged_into=f"reports/{r.merged_into}" if r.merged_into else "",
        satisfaction=enum_value(common_pb2.Satisfaction, r.satisfaction, "SATISFACTION_"),
    )
    if r.lon is not None:
        msg.location.CopyFrom(common_pb2.Location(
            point=common_pb2.GeoPoint(longitude=r.lon, latitude=r.lat), accuracy_m=r.accuracy_m,
            source=enum_value(common_pb2.LocationSource, r.location_source, "LOCATION_SOURCE_"),
        ))
    for field, value in (("receive_time", r.receive_time), ("answer_time", r.answer_time),
                         ("classify_time", r.classify_time), ("hand_off_time", r.hand_off_time),
                         ("create_time", r.create_time), ("update_time", r.update_time)):
        if value is not None:
            getattr(msg, field).CopyFrom(to_pb(value))
    timeline_to_pb(r.timeline, msg.timeline)
    fill_handling(msg, r)
    msg.silent = r.silent
    msg.voice_callback_allowed = r.voice_callback_allowed
    msg.address_code = r.address_code
    if r.address_match is not None:
        msg.address_match.CopyFrom(address_match_to_pb(r.address_match))
    return msg


# The lists of a report that grow with its history: events leave them out
# (GetReport has them), so an event's size does not depend on how long the
# report has been handled.
EVENT_OMITS = ("timeline", "duplicates")


def report_event_pb(r: Report) -> pb.Report:
    """The report as events carry it: its current state without its timeline and duplicates."""
    return without(report_to_pb(r), EVENT_OMITS)


def incident_reported_pb(r: Report) -> pb.IncidentReported:
    """intake.IncidentReported: the new report and the timeline recorded with it."""
    msg = pb.IncidentReported(report=report_event_pb(r))
    timeline_to_pb(r.timeline, msg.new_entries)
    return msg


def report_updated_pb(r: Report, action: str, *, before: pb.Report,
                      new_entries: list[TimelineEntry]) -> pb.ReportUpdated:
    """intake.ReportUpdated: the report as it now stands, what changed since `before` (an event form,
    from `report_event_pb`, of the report read before the change) and the entries the change appended."""
    after = report_event_pb(r)
    msg = pb.ReportUpdated(report=after, action=action, changed_fields=changed_fields(before, after))
    timeline_to_pb(new_entries, msg.new_entries)
    return msg


def address_to_pb(a: Address) -> pb.Address:
    return pb.Address(
        address_code=a.code, full_address=a.full_address, district=a.district, street=a.street,
        community=a.community, road=a.road, house_number=a.house_number, building=a.building,
        point=common_pb2.GeoPoint(longitude=a.lon, latitude=a.lat), station_id=a.station_id, grid_id=a.grid_id,
    )


def address_match_to_pb(m: AddressMatch) -> pb.AddressMatch:
    msg = pb.AddressMatch(method=enum_value(pb.AddressMatchMethod, m.method, "ADDRESS_MATCH_METHOD_"),
                          confidence=m.confidence)
    if m.address is not None:
        msg.address.CopyFrom(address_to_pb(m.address))
    return msg


def station_to_pb(s: StationArea, grids: list[GridArea]) -> pb.Station:
    return pb.Station(
        name=f"stations/{s.station_id}", station_id=s.station_id, display_name=s.name, district=s.district,
        headquarters=common_pb2.GeoPoint(longitude=s.hq_lon, latitude=s.hq_lat),
        boundary_geojson=json.dumps(s.boundary.__geo_interface__, ensure_ascii=False),
        grids=[
            pb.Grid(grid_id=g.grid_id, display_name=g.name, arrival_target_seconds=g.arrival_target_seconds,
                    boundary_geojson=json.dumps(g.boundary.__geo_interface__))
            for g in grids
        ],
    )
