"""IntakeService gRPC servicer: proto -> command -> handler -> proto."""
from __future__ import annotations

import threading

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2_grpc as pb_grpc

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.enums import enum_name
from services.runtime.errors import NotFound
from services.runtime.timeutil import from_pb, now
from services.runtime.validation import (
    Violations, decode_page_token, encode_page_token, paginate, resource_id, time_keyset,
)

from . import handlers
from .domain import JurisdictionIndex, validate_new_report
from .handling_api import HandlingRpcs
from .knowledge import KnowledgeBase
from .mapping import attachments_from_pb, report_to_pb, station_to_pb
from .store import ReportRepository, load_areas


# Roles that work with reports and may see callers' personal data (号码、姓名).
OPERATOR_ROLES = ("call_taker", "dispatcher", "commander", "station_chief", "service")


class JurisdictionCache:
    """The jurisdiction index, built from the stations table on first use."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self._index: JurisdictionIndex | None = None
        self._lock = threading.Lock()

    def get(self) -> JurisdictionIndex:
        with self._lock:
            if self._index is None or len(self._index) == 0:
                with self.rt.engine.connect() as conn:
                    self._index = JurisdictionIndex(*load_areas(conn))
            return self._index


class IntakeServicer(HandlingRpcs, pb_grpc.IntakeServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.areas = JurisdictionCache(rt)
        self.knowledge = KnowledgeBase(rt.engine)

    def ReportIncident(self, request: pb.ReportIncidentRequest, context) -> pb.Report:
        v = Violations()
        v.request_id(request.request_id)
        r = request.report
        has_point = r.HasField("location") and r.location.HasField("point")
        fields = dict(
            channel=enum_name(pb.Channel, r.channel, "CHANNEL_"),
            caller_phone=r.caller.phone_number.strip().replace(" ", ""),
            caller_name=r.caller.name.strip(),
            lon=r.location.point.longitude if has_point else None,
            lat=r.location.point.latitude if has_point else None,
            accuracy_m=r.location.accuracy_m,
            location_source=enum_name(common_pb2.LocationSource, r.location.source, "LOCATION_SOURCE_"),
            address_text=r.address_text.strip(),
            description=r.description.strip(),
            attachments=attachments_from_pb(r.attachments),
            language=r.language,
            receive_time=from_pb(r.receive_time) if r.HasField("receive_time") else None,
        )
        if not request.HasField("report"):
            v.add("report", "is required")
        else:
            validate_new_report(fields, v)
        v.raise_if_any()
        actor = auth.current()
        return self.rt.idempotent(
            "ReportIncident", request, pb.Report,
            lambda conn: report_to_pb(handlers.report_incident(
                conn, outbox=self.rt.outbox, index=self.areas.get(), fields=fields, actor=actor, now=now(),
                knowledge=self.knowledge.index())),
        )

    def GetReport(self, request: pb.GetReportRequest, context) -> pb.Report:
        v = Violations()
        report_id = resource_id(request.name, "reports", v)
        v.raise_if_any()
        with self.rt.engine.connect() as conn:
            report = ReportRepository(conn).get(report_id)
        if report is None:
            raise NotFound(request.name)
        return report_to_pb(report, masked=not auth.current().has_role(*OPERATOR_ROLES))

    def ListReports(self, request: pb.ListReportsRequest, context) -> pb.ListReportsResponse:
        auth.current().require_role(*OPERATOR_ROLES)
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.check(0 <= request.priority <= 4, "priority", "must be 1 to 4, or 0 for any")
        v.raise_if_any()
        filters = dict(
            station_id=request.station_id,
            channel=enum_name(pb.Channel, request.channel, "CHANNEL_"),
            category=enum_name(pb.Category, request.category, "CATEGORY_"),
            incident_type=request.incident_type,
            priority=request.priority,
            status=enum_name(pb.ReportStatus, request.status, "REPORT_STATUS_"),
            start=from_pb(request.receive_time_start) if request.HasField("receive_time_start") else None,
            end=from_pb(request.receive_time_end) if request.HasField("receive_time_end") else None,
            query=request.query.strip(),
        )
        with self.rt.engine.connect() as conn:
            rows = ReportRepository(conn).list(limit=size + 1, after=after, filters=filters)
        page, next_token = paginate(rows, size, lambda r: {"t": r.receive_time.isoformat(), "id": r.id})
        # Caller data is personal: masked in list views.
        return pb.ListReportsResponse(reports=[report_to_pb(r, masked=True) for r in page],
                                      next_page_token=next_token)

    def LocateJurisdiction(self, request: pb.LocateJurisdictionRequest, context) -> pb.Jurisdiction:
        v = Violations()
        if v.require(request.HasField("point"), "point"):
            p = request.point
            v.check(-180 <= p.longitude <= 180, "point.longitude", "must be between -180 and 180")
            v.check(-90 <= p.latitude <= 90, "point.latitude", "must be between -90 and 90")
        v.raise_if_any()
        located = self.areas.get().locate(request.point.longitude, request.point.latitude)
        if located is None:
            raise NotFound("stations", "no police station jurisdictions are loaded")
        return pb.Jurisdiction(
            station_id=located.station_id, station_name=located.station_name, grid_id=located.grid_id,
            district=located.district, border_case=located.border_case, distance_m=located.distance_m,
        )

    def ListStations(self, request: pb.ListStationsRequest, context) -> pb.ListStationsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("offset",))
        v.raise_if_any()
        index = self.areas.get()
        stations = [s for s in index.stations if not request.district or s.district == request.district]
        start = int(token["offset"]) if token else 0
        page = stations[start:start + size]
        next_token = encode_page_token({"offset": start + size}) if start + size < len(stations) else ""
        return pb.ListStationsResponse(
            stations=[station_to_pb(s, [g for g in index.grids if g.station_id == s.station_id]) for s in page],
            next_page_token=next_token,
        )

    def GetStation(self, request: pb.GetStationRequest, context) -> pb.Station:
        v = Violations()
        station_id = resource_id(request.name, "stations", v)
        v.raise_if_any()
        index = self.areas.get()
        for s in index.stations:
            if s.station_id == station_id:
                return station_to_pb(s, [g for g in index.grids if g.station_id == station_id])
        raise NotFound(request.name)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)
