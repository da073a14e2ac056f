"""IntakeService gRPC servicer: validate, call a handler (in a unit of work) or a query, map the answer.

The consultation face (the knowledge base and the expert queue) is in `api_consultations.py`.
"""
from __future__ import annotations

import math

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2_grpc as pb_grpc

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name
from services.runtime.errors import NotFound
from services.runtime.policy import current_jurisdiction, in_scope
from services.runtime.timeutil import from_pb
from services.runtime.validation import (
    MAX_PAGE_SIZE, Violations, decode_page_token, encode_page_token, name_id, paginate, resource_id, time_keyset,
)

from . import handlers, mapping, queries
from .api_consultations import ConsultationRpcs
from .domain import (
    CATEGORIES, CLIENT_LOCATION_SOURCES, CORRECTABLE, MAX_ACCURACY_M, MAX_ADDRESS_CHARS, check_point, taxonomy,
    validate_new_report, validate_report_so_far,
)
from .gazetteer import ADDRESS_CODE
from .rules import INCIDENT_TYPES

# People who work with reports and see callers' personal data (号码、姓名) in GetReport, each view
# recorded. Another service reads it with GetCallerContact, naming its purpose (also recorded):
# its GetReport shows the caller masked, like a list.
OPERATOR_ROLES = ("call_taker", "dispatcher", "commander", "station_chief")
CONTACT_PURPOSES = tuple(p for p in pb.CallerContactPurpose.keys() if p != "CALLER_CONTACT_PURPOSE_UNSPECIFIED")
MAX_REFERENCE_CHARS = 200
MAX_REASON_CHARS = 500


def _reason(value: str, v: Violations, *, required: bool) -> str:
    text = value.strip()
    if required:
        v.require(text, "reason", "is required: say why, it is kept in the report's timeline")
    v.check(len(text) <= MAX_REASON_CHARS, "reason", f"must be at most {MAX_REASON_CHARS} characters")
    return text


class IntakeServicer(ConsultationRpcs, pb_grpc.IntakeServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt

    @property
    def caches(self) -> handlers.Context:
        """The read models this process keeps (`rt.context`, set by the wiring)."""
        return self.rt.context

    # -- reports ------------------------------------------------------------------------

    def ReportIncident(self, request: pb.ReportIncidentRequest, context) -> pb.Report:
        v = Violations()
        v.request_id(request.request_id)
        fields = mapping.new_report_fields(request.report)
        if not request.HasField("report"):
            v.add("report", "is required")
        else:
            validate_new_report(fields, v, now=self.rt.clock())
            if fields["address_code"]:
                v.check(bool(ADDRESS_CODE.match(fields["address_code"])), "report.address_code",
                        "must be a 21-digit standard address code")
        v.raise_if_any()
        # Read outside the transaction: a refresh takes a connection of its own.
        index, gazetteer, knowledge = (self.caches.areas.get(), self.caches.addresses.get(),
                                       self.caches.knowledge.index())
        return self.rt.idempotent_work(
            "ReportIncident", request, pb.Report,
            lambda uow: handlers.report_incident(uow, fields=fields, index=index, gazetteer=gazetteer,
                                                 knowledge=knowledge),
            actor=auth.current(), respond=mapping.report_to_pb)

    def PreviewReport(self, request: pb.PreviewReportRequest, context) -> pb.ReportPreview:
        """The classification and duplicate candidates of a report still being taken; the fields
        given are checked as ReportIncident checks them, none is required."""
        v = Violations()
        fields = mapping.new_report_fields(request.report)
        if not request.HasField("report"):
            v.add("report", "is required")
        else:
            validate_report_so_far(fields, v, now=self.rt.clock())
            if fields["address_code"]:
                v.check(bool(ADDRESS_CODE.match(fields["address_code"])), "report.address_code",
                        "must be a 21-digit standard address code")
        v.raise_if_any()
        index, gazetteer = self.caches.areas.get(), self.caches.addresses.get()
        with self.rt.transaction(auth.current()) as uow:
            preview = handlers.preview_report(uow, fields=fields, index=index, gazetteer=gazetteer)
        return mapping.preview_to_pb(preview)

    def UpdateReport(self, request: pb.UpdateReportRequest, context) -> pb.Report:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        report_id = resource_id(request.report.name, "reports", v, field="report.name")
        paths = list(request.update_mask.paths)
        v.check(bool(paths), "update_mask", "is required: the paths to correct, e.g. classification.priority")
        for i, path in enumerate(paths):
            v.check(path in CORRECTABLE, f"update_mask.paths[{i}]",
                    f"{path!r} cannot be corrected; allowed: {', '.join(CORRECTABLE)}")
        v.require(request.reason.strip(), "reason", "is required: why the report is corrected (kept in the timeline)")
        v.check(len(request.reason) <= 500, "reason", "must be at most 500 characters")
        changes = mapping.correction_changes(request.report)
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
        index, gazetteer = self.caches.areas.get(), self.caches.addresses.get()
        return self.rt.idempotent_work(
            "UpdateReport", request, pb.Report,
            lambda uow: handlers.update_report(uow, report_id=report_id, paths=paths, changes=changes,
                                               reason=request.reason.strip(), index=index, gazetteer=gazetteer),
            actor=actor, respond=mapping.report_to_pb)

    def GetReport(self, request: pb.GetReportRequest, context) -> pb.Report:
        report_id = name_id(request.name, "reports")
        with read_snapshot(self.rt.engine) as conn:
            report = queries.get_report(conn, report_id)
        if report is None:
            raise NotFound(request.name)
        in_scope(request.name, *report.stations)
        actor = auth.current()
        masked = not actor.has_role(*OPERATOR_ROLES)
        if not masked:
            with self.rt.transaction(actor) as uow:
                handlers.record_personal_data_view(uow, report=report, method="GetReport")
        return mapping.report_to_pb(report, masked=masked)

    def GetCallerContact(self, request: pb.GetCallerContactRequest, context) -> pb.CallerContact:
        """A report's caller contact, unmasked, for a service (the access table admits no one else),
        recorded with the service, its purpose and reference before it is answered."""
        v = Violations()
        report_id = resource_id(request.name, "reports", v)
        purpose = enum_name(pb.CallerContactPurpose, request.purpose, "CALLER_CONTACT_PURPOSE_") \
            if request.purpose in pb.CallerContactPurpose.values() else ""
        v.check(bool(purpose), "purpose", f"is required: one of {', '.join(CONTACT_PURPOSES)}")
        reference = request.reference.strip()
        v.check(len(reference) <= MAX_REFERENCE_CHARS, "reference",
                f"must be at most {MAX_REFERENCE_CHARS} characters")
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            report = queries.get_report(conn, report_id)
        if report is None:
            raise NotFound(request.name)
        in_scope(request.name, report.station_id)
        with self.rt.transaction(auth.current()) as uow:
            handlers.record_personal_data_view(uow, report=report, method="GetCallerContact", purpose=purpose,
                                               reference=reference)
        return mapping.caller_contact_to_pb(report)

    def ListReports(self, request: pb.ListReportsRequest, context) -> pb.ListReportsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.check(0 <= request.priority <= 4, "priority", "must be 1 to 4, or 0 for any")
        filters = mapping.report_filters(request)
        for name in ("channel", "category", "status"):
            v.check(filters[name] != "?", name, "is not a value of the contract's enum")
        if filters["incident_type"]:
            v.check(filters["incident_type"] in INCIDENT_TYPES, "incident_type", "is not a code of the incident taxonomy")
        if filters["start"] and filters["end"]:
            v.check(filters["start"] < filters["end"], "receive_time_end", "must be after receive_time_start")
        v.check(len(filters["query"]) <= 100, "query", "must be at most 100 characters")
        v.raise_if_any()
        filters["stations"] = current_jurisdiction().stations_for(filters.pop("station_id"))
        with read_snapshot(self.rt.engine) as conn:
            rows = queries.list_reports(conn, size=size, after=after, filters=filters)
        page, next_token = paginate(rows, size, lambda r: {"t": r.receive_time.isoformat(), "id": r.id})
        # Caller data is personal: masked in list views.
        return pb.ListReportsResponse(reports=[mapping.report_to_pb(r, masked=True) for r in page],
                                      next_page_token=next_token)

    # -- the call answered, rating ----------------------------------------------------------

    def AnswerReport(self, request: pb.AnswerReportRequest, context) -> pb.Report:
        actor = auth.current()
        report_id = name_id(request.name, "reports", request_id=request.request_id)
        return self.rt.idempotent_work("AnswerReport", request, pb.Report,
                                       lambda uow: handlers.answer_report(uow, report_id=report_id),
                                       actor=actor, respond=mapping.report_to_pb)

    def RateReport(self, request: pb.RateReportRequest, context) -> pb.Report:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        report_id = resource_id(request.name, "reports", v)
        satisfaction = enum_name(common_pb2.Satisfaction, request.satisfaction, "SATISFACTION_")
        v.require(satisfaction, "satisfaction", "is required: SATISFIED, BASICALLY_SATISFIED or UNSATISFIED")
        comment = request.comment.strip()
        v.check(len(comment) <= MAX_REASON_CHARS, "comment", f"must be at most {MAX_REASON_CHARS} characters")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "RateReport", request, pb.Report,
            lambda uow: handlers.rate_report(uow, report_id=report_id, satisfaction=satisfaction, comment=comment),
            actor=actor, respond=mapping.report_to_pb)

    # -- merges -----------------------------------------------------------------------------

    def MergeReport(self, request: pb.MergeReportRequest, context) -> pb.Report:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        report_id = resource_id(request.name, "reports", v)
        master_id = resource_id(request.master, "reports", v, field="master")
        if report_id and master_id:
            v.check(report_id != master_id, "master", "must be another report than name")
        reason = _reason(request.reason, v, required=True)
        v.raise_if_any()
        return self.rt.idempotent_work(
            "MergeReport", request, pb.Report,
            lambda uow: handlers.merge_report(uow, report_id=report_id, master_id=master_id, reason=reason),
            actor=actor, respond=mapping.report_to_pb)

    def UnmergeReport(self, request: pb.UnmergeReportRequest, context) -> pb.Report:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        report_id = resource_id(request.name, "reports", v)
        reason = _reason(request.reason, v, required=True)
        v.raise_if_any()
        return self.rt.idempotent_work(
            "UnmergeReport", request, pb.Report,
            lambda uow: handlers.unmerge_report(uow, report_id=report_id, reason=reason),
            actor=actor, respond=mapping.report_to_pb)

    # -- statistics ---------------------------------------------------------------------------

    def GetIntakeStatistics(self, request: pb.GetIntakeStatisticsRequest, context) -> pb.IntakeStatistics:
        v = Violations()
        start = from_pb(request.start_time) if request.HasField("start_time") else None
        end = from_pb(request.end_time) if request.HasField("end_time") else None
        if start and end:
            v.check(start < end, "end_time", "must be after start_time")
        v.raise_if_any()
        stations = current_jurisdiction().stations_for(request.station_id.strip())
        with read_snapshot(self.rt.engine) as conn:
            s = queries.intake_statistics(conn, start=start, end=end, station_ids=stations)
        return mapping.statistics_to_pb(s)

    # -- places ---------------------------------------------------------------------------------

    def SearchAddresses(self, request: pb.SearchAddressesRequest, context) -> pb.SearchAddressesResponse:
        v = Violations()
        query = request.query.strip()
        v.require(query, "query", "is required: an address code or Chinese address text")
        v.check(len(query) <= MAX_ADDRESS_CHARS, "query", f"must be at most {MAX_ADDRESS_CHARS} characters")
        v.check(0 <= request.page_size <= 50, "page_size", "must be between 0 and 50")
        v.raise_if_any()
        hits = self.caches.addresses.get().search(query, limit=request.page_size or 10,
                                                   district=request.district.strip())
        return mapping.scored_addresses_to_pb(hits)

    def LocateJurisdiction(self, request: pb.LocateJurisdictionRequest, context) -> pb.Jurisdiction:
        v = Violations()
        if v.require(request.HasField("point"), "point"):
            check_point(request.point.longitude, request.point.latitude, v, "point")
        v.raise_if_any()
        located = self.caches.areas.get().locate(request.point.longitude, request.point.latitude)
        if located is None:
            raise NotFound("stations", "no police station jurisdictions are loaded")
        return mapping.jurisdiction_to_pb(located)

    def ListStations(self, request: pb.ListStationsRequest, context) -> pb.ListStationsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("offset",))
        v.raise_if_any()
        index = self.caches.areas.get()
        stations = [s for s in index.stations if not request.district or s.district == request.district]
        start = int(token["offset"]) if token else 0
        page = stations[start:start + size]
        next_token = encode_page_token({"offset": start + size}) if start + size < len(stations) else ""
        return pb.ListStationsResponse(
            stations=[mapping.station_to_pb(s, [g for g in index.grids if g.station_id == s.station_id])
                      for s in page],
            next_page_token=next_token,
        )

    def ListIncidentTypes(self, request: pb.ListIncidentTypesRequest, context) -> pb.ListIncidentTypesResponse:
        v = Violations()
        size = v.page_size(request.page_size or MAX_PAGE_SIZE)
        token = decode_page_token(request.page_token, v, ("offset",))
        v.raise_if_any()
        types = taxonomy()
        start = int(token["offset"]) if token else 0
        next_token = encode_page_token({"offset": start + size}) if start + size < len(types) else ""
        return pb.ListIncidentTypesResponse(
            incident_types=[mapping.incident_type_to_pb(t) for t in types[start:start + size]],
            next_page_token=next_token)

    def GetStation(self, request: pb.GetStationRequest, context) -> pb.Station:
        station_id = name_id(request.name, "stations")
        index = self.caches.areas.get()
        for s in index.stations:
            if s.station_id == station_id:
                return mapping.station_to_pb(s, [g for g in index.grids if g.station_id == station_id])
        raise NotFound(request.name)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)
