"""DispatchService gRPC servicer: proto -> command -> handler -> proto."""
from __future__ import annotations

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime
from services.runtime.enums import enum_name
from services.runtime.errors import NotFound
from services.runtime.validation import (
    Violations, decode_page_token, paginate, resource_id, time_keyset,
)

from .mapping import case_to_pb, unit_to_pb
from .store import CaseRepository, UnitRepository

LEVELS = ["STATION", "COUNTY", "CITY", "PROVINCE"]


class DispatchServicer(pb_grpc.DispatchServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt

    def GetCase(self, request: pb.GetCaseRequest, context) -> pb.DispatchCase:
        v = Violations()
        case_id = resource_id(request.name, "cases", v)
        v.raise_if_any()
        with self.rt.engine.connect() as conn:
            case = CaseRepository(conn).get(case_id)
        if case is None:
            raise NotFound(request.name)
        return case_to_pb(case)

    def ListCases(self, request: pb.ListCasesRequest, context) -> pb.ListCasesResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        if request.report:
            resource_id(request.report, "reports", v, "report")
        v.raise_if_any()
        min_level = enum_name(pb.CaseLevel, request.min_level, "CASE_LEVEL_")
        levels = LEVELS[LEVELS.index(min_level):] if min_level else None
        with self.rt.engine.connect() as conn:
            rows = CaseRepository(conn).list(
                limit=size + 1, after=after, station_id=request.station_id,
                status=enum_name(pb.CaseStatus, request.status, "CASE_STATUS_"), report=request.report,
                levels=levels)
        page, next_token = paginate(rows, size, lambda c: {"t": c.create_time.isoformat(), "id": c.id})
        return pb.ListCasesResponse(cases=[case_to_pb(c) for c in page], next_page_token=next_token)

    def GetUnit(self, request: pb.GetUnitRequest, context) -> pb.Unit:
        v = Violations()
        unit_id = resource_id(request.name, "units", v)
        v.raise_if_any()
        with self.rt.engine.connect() as conn:
            unit = UnitRepository(conn).get(unit_id)
        if unit is None:
            raise NotFound(request.name)
        return unit_to_pb(unit)

    def ListUnits(self, request: pb.ListUnitsRequest, context) -> pb.ListUnitsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("id",))
        v.raise_if_any()
        with self.rt.engine.connect() as conn:
            rows = UnitRepository(conn).list(
                limit=size + 1, after=token["id"] if token else None, station_id=request.station_id,
                kind=enum_name(pb.UnitKind, request.kind, "UNIT_KIND_"),
                status=enum_name(pb.UnitStatus, request.status, "UNIT_STATUS_"))
        page, next_token = paginate(rows, size, lambda u: {"id": u.unit_id})
        return pb.ListUnitsResponse(units=[unit_to_pb(u) for u in page], next_page_token=next_token)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)
