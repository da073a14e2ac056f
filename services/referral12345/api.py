"""ReferralService and Open311Service gRPC servicers: proto -> query -> proto."""
from __future__ import annotations

from google.api import httpbody_pb2

from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime
from services.runtime.errors import NotFound
from services.runtime.validation import Violations, decode_page_token, paginate, resource_id

from .domain import open311_services
from .mapping import department_to_pb, georeport_body, open311_service_to_pb
from .store import DepartmentRepository


class ReferralServicer(pb_grpc.ReferralServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt

    def ListDepartments(self, request: pb.ListDepartmentsRequest, context) -> pb.ListDepartmentsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("id",))
        after = str(token["id"]) if token else None
        v.raise_if_any()
        with self.rt.engine.connect() as conn:
            rows = DepartmentRepository(conn).list(
                limit=size + 1, after=after,
                matter_code=request.matter_code.strip(), district=request.district.strip())
        page, next_token = paginate(rows, size, lambda d: {"id": d.dept_id})
        return pb.ListDepartmentsResponse(departments=[department_to_pb(d) for d in page],
                                          next_page_token=next_token)

    def GetDepartment(self, request: pb.GetDepartmentRequest, context) -> pb.Department:
        v = Violations()
        dept_id = resource_id(request.name, "departments", v)
        v.raise_if_any()
        with self.rt.engine.connect() as conn:
            department = DepartmentRepository(conn).get(dept_id)
        if department is None:
            raise NotFound(request.name)
        return department_to_pb(department)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)


class Open311Servicer(pb_grpc.Open311ServiceServicer):
    """The GeoReport v2 face of the 12345 line.

    `jurisdiction_id` is the one this endpoint serves (OPEN311_JURISDICTION_ID);
    when it is empty, requests may name any jurisdiction or none.
    """

    def __init__(self, rt: Runtime, jurisdiction_id: str = ""):
        self.rt = rt
        self.jurisdiction_id = jurisdiction_id

    def _check_jurisdiction(self, value: str, v: Violations) -> None:
        if self.jurisdiction_id and value:
            v.check(value == self.jurisdiction_id, "jurisdiction_id",
                    f"this endpoint serves only {self.jurisdiction_id!r}")

    def ListServices(self, request: pb.ListServicesRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        self._check_jurisdiction(request.jurisdiction_id, v)
        v.raise_if_any()
        with self.rt.engine.connect() as conn:
            departments = DepartmentRepository(conn).all()
        return georeport_body([open311_service_to_pb(s) for s in open311_services(departments)])
