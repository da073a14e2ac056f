"""IntakeService gRPC servicer: proto -> command -> handler -> proto."""
from __future__ import annotations

import math
import threading

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2_grpc as pb_grpc

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name, enum_value
from services.runtime.errors import NotFound
from services.runtime.timeutil import from_pb, now
from services.runtime.validation import (
    Violations, decode_page_token, encode_page_token, name_id, paginate, resource_id, time_keyset,
)

from . import handlers
from .domain import (
    CATEGORIES, CLIENT_LOCATION_SOURCES, DEFAULT_LANGUAGE, MAX_ACCURACY_M, MAX_ADDRESS_CHARS, JurisdictionIndex,
    check_point, normalize_phone, validate_new_report,
)
from .gazetteer import ADDRESS_CODE, Gazetteer
from .handling_api import HandlingRpcs
from .knowledge import KnowledgeBase
from .mapping import address_to_pb, attachments_from_pb, report_to_pb, station_to_pb
from .rules import INCIDENT_TYPES
from .store import ReportRepository, load_addresses, load_areas


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
                with read_snapshot(self.rt.engine) as conn:
                    self._index = JurisdictionIndex(*load_areas(conn))
            return self._index


class GazetteerCache:
    """The address gazetteer, built from the addresses table on first use."""

    def __init__(self, rt: Runtime):
        self.rt = rt
        self._gazetteer: Gazetteer | None = None
        self._lock = threading.Lock()

    def get(self) -> Gazetteer:
        with self._lock:
            if self._gazetteer is None or len(self._gazetteer) == 0:
                with read_snapshot(self.rt.engine) as conn:
                    self._gazetteer = Gazetteer(load_addresses(conn))
            return self._gazetteer


def _enum(enum, value: int, prefix: str) -> str:
    """The plain name of an enum value; "?" for a number the contract does not define."""
    try:
        return enum_name(enum, value, prefix)
    except ValueError:
        return "?"


def location_fields(loc, present: bool) -> dict:
    has_point = present and loc.HasField("point")
    return dict(
        lon=loc.point.longitude if has_point else None,
        lat=loc.point.latitude if has_point else None,
        accuracy_m=loc.accuracy_m,
        location_source=_enum(common_pb2.LocationSource, loc.source, "LOCATION_SOURCE_"),
    )


class IntakeServicer(HandlingRpcs, pb_grpc.IntakeServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt
        self.areas = JurisdictionCache(rt)
        self.addresses = GazetteerCache(rt)
        self.knowledge = KnowledgeBase(rt.engine)

    def ReportIncident(self, request: pb.ReportIncidentRequest, context) -> pb.Report:
        v = Violations()
        v.request_id(request.request_id)
        r = request.report
        fields = dict(
            channel=_enum(pb.Channel, r.channel, "CHANNEL_"),
            caller_phone=normalize_phone(r.caller.phone_number),
            caller_name=r.caller.name.strip(),
            **location_fields(r.location, r.HasField("location")),
            address_text=r.address_text.strip(),
            address_code=r.address_code.strip(),
            description=r.description.strip(),
            attachments=attachments_from_pb(r.attachments),
            language=r.language.strip() or DEFAULT_LANGUAGE,
            receive_time=from_pb(r.receive_time) if r.HasField("receive_time") else None,
        )
        if not request.HasField("report"):
            v.add("report", "is required")
        else:
            validate_new_report(fields, v, now=now())
            if fields["address_code"]:
                v.check(bool(ADDRESS_CODE.match(fields["address_code"])), "report.address_code",
                        "must be a 21-digit standard address code")
        v.raise_if_any()
        actor = auth.current()
        knowledge = self.knowledge.index()  # outside the transaction: a refresh takes a connection of its own
        return self.rt.idempotent(
            "ReportIncident", request, pb.Report,
            lambda conn: report_to_pb(handlers.report_incident(
                conn, outbox=self.rt.outbox, index=self.areas.get(), gazetteer=self.addresses.get(),
                fields=fields, actor=actor, now=now(), knowledge=knowledge)),
        )

    def UpdateReport(self, request: pb.UpdateReportRequest, context) -> pb.Report:
        actor = auth.current()
        actor.require_role("call_taker")
        v = Violations()
        v.request_id(request.request_id)
        report_id = resource_id(request.report.name, "reports", v, field="report.name")
        paths = list(request.update_mask.paths)
        v.check(bool(paths), "update_mask", "is required: the paths to correct, e.g. classification.priority")
        for i, path in enumerate(paths):
            v.check(path in handlers.CORRECTABLE, f"update_mask.paths[{i}]",
                    f"{path!r} cannot be corrected; allowed: {', '.join(handlers.CORRECTABLE)}")
        v.require(request.reason.strip(), "reason", "is required: why the report is corrected (kept in the timeline)")
        v.check(len(request.reason) <= 500, "reason", "must be at most 500 characters")
        r = request.report
        c = r.classification
        changes = dict(
            category=_enum(pb.Category, c.category, "CATEGORY_"), incident_type=c.incident_type.strip(),
            priority=c.priority, address_text=r.address_text.strip(), address_code=r.address_code.strip(),
            **location_fields(r.location, r.HasField("location")),
        )
        wanted = set(paths)
        if wanted & {"classification", "classification.category"}:
            v.check(changes["category"] in CATEGORIES, "report.classification.category",
                    "must be CATEGORY_POLICE, CATEGORY_NON_POLICE, CATEGORY_CONSULTATION or CATEGORY_INVALID")
        if wanted & {"classification", "classification.priority"}:
            v.check(1 <= changes["priority"] <= 4, "report.classification.priority", "must be 1 (most urgent) to 4")
        if "location" in wanted:
            if v.check(changes["lon"] is not None, "report.location.point", "is required to correct the location"):
                check_point(changes["lon"], changes["lat"], v, "report.location.point")
                v.check(math.isfinite(changes["accuracy_m"]) and 0 <= changes["accuracy_m"] <= MAX_ACCURACY_M,
                        "report.location.accuracy_m", f"must be between 0 and {MAX_ACCURACY_M:.0f} metres")
                v.check(changes["location_source"] in CLIENT_LOCATION_SOURCES, "report.location.source",
                        "must be GNSS, CELL, CALL_TAKER or FIXED_DEVICE")
        if "address_text" in wanted:
            v.check(len(changes["address_text"]) <= MAX_ADDRESS_CHARS, "report.address_text",
                    f"must be at most {MAX_ADDRESS_CHARS} characters")
        if "address_code" in wanted and changes["address_code"]:
            v.check(bool(ADDRESS_CODE.match(changes["address_code"])), "report.address_code",
                    "must be a 21-digit standard address code")
        v.raise_if_any()
        return self.rt.idempotent(
            "UpdateReport", request, pb.Report,
            lambda conn: report_to_pb(handlers.update_report(
                conn, outbox=self.rt.outbox, index=self.areas.get(), gazetteer=self.addresses.get(),
                report_id=report_id, paths=paths, changes=changes, reason=request.reason.strip(), actor=actor,
                now=now())),
        )

    def SearchAddresses(self, request: pb.SearchAddressesRequest, context) -> pb.SearchAddressesResponse:
        v = Violations()
        query = request.query.strip()
        v.require(query, "query", "is required: an address code or Chinese address text")
        v.check(len(query) <= MAX_ADDRESS_CHARS, "query", f"must be at most {MAX_ADDRESS_CHARS} characters")
        v.check(0 <= request.page_size <= 50, "page_size", "must be between 0 and 50")
        v.raise_if_any()
        hits = self.addresses.get().search(query, limit=request.page_size or 10, district=request.district.strip())
        return pb.SearchAddressesResponse(results=[
            pb.ScoredAddress(address=address_to_pb(a), score=score,
                             method=enum_value(pb.AddressMatchMethod, method, "ADDRESS_MATCH_METHOD_"))
            for a, score, method in hits
        ])

    def GetReport(self, request: pb.GetReportRequest, context) -> pb.Report:
        report_id = name_id(request.name, "reports")
        with read_snapshot(self.rt.engine) as conn:
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
        filters = dict(
            station_id=request.station_id.strip(),
            channel=_enum(pb.Channel, request.channel, "CHANNEL_"),
            category=_enum(pb.Category, request.category, "CATEGORY_"),
            incident_type=request.incident_type.strip(),
            priority=request.priority,
            status=_enum(pb.ReportStatus, request.status, "REPORT_STATUS_"),
            start=from_pb(request.receive_time_start) if request.HasField("receive_time_start") else None,
            end=from_pb(request.receive_time_end) if request.HasField("receive_time_end") else None,
            query=request.query.strip(),
        )
        for name in ("channel", "category", "status"):
            v.check(filters[name] != "?", name, "is not a value of the contract's enum")
        if filters["incident_type"]:
            v.check(filters["incident_type"] in INCIDENT_TYPES, "incident_type", "is not a code of the incident taxonomy")
        if filters["start"] and filters["end"]:
            v.check(filters["start"] < filters["end"], "receive_time_end", "must be after receive_time_start")
        v.check(len(filters["query"]) <= 100, "query", "must be at most 100 characters")
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            rows = ReportRepository(conn).list(limit=size + 1, after=after, filters=filters)
        page, next_token = paginate(rows, size, lambda r: {"t": r.receive_time.isoformat(), "id": r.id})
        # Caller data is personal: masked in list views.
        return pb.ListReportsResponse(reports=[report_to_pb(r, masked=True) for r in page],
                                      next_page_token=next_token)

    def LocateJurisdiction(self, request: pb.LocateJurisdictionRequest, context) -> pb.Jurisdiction:
        v = Violations()
        if v.require(request.HasField("point"), "point"):
            check_point(request.point.longitude, request.point.latitude, v, "point")
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
        station_id = name_id(request.name, "stations")
        index = self.areas.get()
        for s in index.stations:
            if s.station_id == station_id:
                return station_to_pb(s, [g for g in index.grids if g.station_id == station_id])
        raise NotFound(request.name)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)
