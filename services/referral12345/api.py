"""ReferralService gRPC servicer: validate, call a handler (in a unit of work) or a query, map the answer.
(The Open311 GeoReport face is open311.py.)

Roles: hotline_agent (12345 agents: record, assign, follow up, transfer),
department (a department's staff; the JWT claim `department`, or in older
tokens `station`, carries the department id, e.g. "D01", and limits them to
their own orders), supervisor
(everything, and overturning unreasonable-request records), service (in-cluster
callers such as the 12345 system).
"""
from __future__ import annotations

import math
import re
from datetime import timedelta

from smart110.common.v1 import common_pb2
from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name
from services.runtime.errors import NotFound, PermissionDenied
from services.runtime.policy import current_jurisdiction, department_of
from services.runtime.timeutil import from_pb
from services.runtime.validation import Violations, decode_page_token, name_id, resource_id, time_keyset

from . import handlers, mapping, queries
from .domain import WorkOrder

AGENT_ROLES = ("hotline_agent", "supervisor", "service")
DEPARTMENT_ROLES = ("department", "supervisor", "service")
# The 110 side (接警、指挥、所长) reads every order: a referred report's order, a transfer's progress.
POLICE_READ_ROLES = ("call_taker", "dispatcher", "commander", "station_chief")
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
MAX_DESCRIPTION = 2000
MAX_ADDRESS = 300
SATISFACTIONS = {"SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED"}


def own_department_only() -> str:
    """The department id a department-only caller is limited to; "" for broader roles.

    A police caller's token names a police station, not a department: it is not
    a department's limit (it would match no order at all).
    """
    ctx = auth.current()
    if ctx.has_role(*AGENT_ROLES, *POLICE_READ_ROLES):
        return ""
    return department_of(ctx) or "-"


def police_stations() -> frozenset[str] | None:
    """The stations whose work orders a police reader sees (the orders the 12345 line handed to, or
    took from, their station's jurisdiction); None for the 12345 desk, departments (their own rule)
    and city command."""
    ctx = auth.current()
    if ctx.has_role(*AGENT_ROLES) or not ctx.has_role(*POLICE_READ_ROLES):
        return None
    return current_jurisdiction().stations_for((), "station_id")


def act_for(dept_id: str) -> None:
    auth.current().require_role(*DEPARTMENT_ROLES)
    own = own_department_only()
    if own and own != dept_id:
        raise PermissionDenied(f"this token acts for departments/{own}, not departments/{dept_id}",
                               reason="OTHER_DEPARTMENT", metadata={"department": dept_id})


def check_phone(phone: str, field: str, v: Violations) -> None:
    if phone:
        v.check(bool(MOBILE.match(phone) or LANDLINE.match(phone)), field,
                "must be a mainland mobile number (11 digits, 1[3-9]…) or a landline like 027-85551234")


def check_point(lon: float, lat: float, prefix: str, v: Violations) -> None:
    v.check(math.isfinite(lon) and -180 <= lon <= 180, f"{prefix}.longitude", "must be between -180 and 180")
    v.check(math.isfinite(lat) and -90 <= lat <= 90, f"{prefix}.latitude", "must be between -90 and 90")


def work_order_fields(w: pb.WorkOrder, v: Violations, known: set[str], prefix: str = "work_order",
                      source: str = "") -> dict:
    """A new order's fields from the request, every bad field recorded on `v`."""
    source = source or enum_name(pb.WorkOrderSource, w.source, "WORK_ORDER_SOURCE_")
    v.check(source in ("REPORT_110", "HOTLINE_12345", "OPEN311"), f"{prefix}.source",
            "is required: WORK_ORDER_SOURCE_REPORT_110, _HOTLINE_12345 or _OPEN311")
    if source == "REPORT_110":
        resource_id(w.report, "reports", v, f"{prefix}.report")
    elif w.report:
        v.add(f"{prefix}.report", "is only for orders from a 110 report (WORK_ORDER_SOURCE_REPORT_110)")
    matter = w.matter_code.strip()
    if matter:
        v.check(matter in known, f"{prefix}.matter_code", "is not a matter code of the 12345 catalogue")
    description = w.description.strip()
    v.require(description, f"{prefix}.description", "is required: the request in the citizen's words")
    v.check(len(description) <= MAX_DESCRIPTION, f"{prefix}.description", f"must be at most {MAX_DESCRIPTION} characters")
    v.check(1 <= w.urgency <= 4, f"{prefix}.urgency", "is required: 1 (emergency) to 4 (routine)")
    v.check(len(w.address_text) <= MAX_ADDRESS, f"{prefix}.address_text", f"must be at most {MAX_ADDRESS} characters")
    has_point = w.HasField("location") and w.location.HasField("point")
    if has_point:
        check_point(w.location.point.longitude, w.location.point.latitude, f"{prefix}.location.point", v)
    phone = w.citizen.phone_number.strip().replace(" ", "")
    check_phone(phone, f"{prefix}.citizen.phone_number", v)
    v.check(len(w.citizen.name) <= 50, f"{prefix}.citizen.name", "must be at most 50 characters")
    return dict(
        source=source, report=w.report, hotline_ticket_id=w.hotline_ticket_id.strip(), category=w.category.strip(),
        matter_code=matter, description=description, urgency=w.urgency,
        lon=w.location.point.longitude if has_point else None, lat=w.location.point.latitude if has_point else None,
        accuracy_m=w.location.accuracy_m if has_point else 0.0, address_text=w.address_text.strip(),
        citizen_phone=phone, citizen_name=w.citizen.name.strip(), confidential=w.citizen.confidential,
        attachments=mapping.attachments_from_pb(w.attachments),
        request_time=from_pb(w.request_time) if w.HasField("request_time") else None,
    )


class ReferralServicer(pb_grpc.ReferralServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt

    # -- helpers -------------------------------------------------------------
    def _known_matters(self) -> set[str]:
        with read_snapshot(self.rt.engine) as conn:
            return queries.matter_codes(conn)

    def _places_ahead(self, order_ids: list[str]):
        """The places of these orders, resolved with intake before the transaction (handlers.places_ahead)."""
        with read_snapshot(self.rt.engine) as conn:
            orders = queries.work_orders_by_id(conn, order_ids)
        return handlers.places_ahead(self.rt.context, orders)

    def _order_id(self, name: str, v: Violations, field: str = "name") -> str:
        return resource_id(name, "workOrders", v, field)

    def _view(self, order: WorkOrder, *, masked: bool = False) -> pb.WorkOrder:
        stations = police_stations()
        if stations is not None and order.station_id not in stations:
            raise NotFound(order.name)  # another station's order: for this reader, not there
        own = own_department_only()
        if own and not any(a.dept_id == own for a in order.assignments):
            raise PermissionDenied(f"{order.name} was not assigned to departments/{own}",
                                   reason="OTHER_DEPARTMENT")
        # A confidential citizen (保密) is shown only to the 12345 desk.
        hide = order.confidential and not auth.current().has_role(*AGENT_ROLES)
        return mapping.work_order_to_pb(order, masked=masked, hide_citizen=hide)

    def _department_step(self, method: str, request, step, check=None):
        v = Violations()
        v.request_id(request.request_id)
        order_id = self._order_id(request.name, v)
        dept_id = resource_id(request.department, "departments", v, "department")
        if check:
            check(v)
        v.raise_if_any()
        if dept_id:
            act_for(dept_id)
        return self.rt.idempotent_work(method, request, pb.WorkOrder,
                                       lambda uow: step(uow, order_id=order_id, dept_id=dept_id),
                                       actor=auth.current(), respond=mapping.work_order_to_pb)

    # -- work orders ------------------------------------------------------------
    def CreateWorkOrder(self, request: pb.CreateWorkOrderRequest, context) -> pb.WorkOrder:
        v = Violations()
        v.request_id(request.request_id)
        fields = {}
        if v.require(request.HasField("work_order"), "work_order"):
            fields = work_order_fields(request.work_order, v, self._known_matters())
        v.raise_if_any()
        place = handlers.locate(self.rt.context, fields["lon"], fields["lat"])
        return self.rt.idempotent_work(
            "CreateWorkOrder", request, pb.WorkOrder,
            lambda uow: handlers.create_work_order(uow, fields=fields, place=place),
            actor=auth.current(), respond=mapping.work_order_to_pb)

    def GetWorkOrder(self, request: pb.GetWorkOrderRequest, context) -> pb.WorkOrder:
        v = Violations()
        order_id = self._order_id(request.name, v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            order = queries.work_order(conn, order_id)
        if order is None:
            raise NotFound(request.name)
        return self._view(order)

    def ListWorkOrders(self, request: pb.ListWorkOrdersRequest, context) -> pb.ListWorkOrdersResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.check(0 <= request.urgency <= 4, "urgency", "must be 1 to 4, or 0 for any")
        dept_id = resource_id(request.department, "departments", v, "department") if request.department else ""
        if request.report:
            resource_id(request.report, "reports", v, "report")
        own = own_department_only()
        if own:
            v.check(not dept_id or dept_id == own, "department", f"this token may list only departments/{own}")
            dept_id = own
        v.raise_if_any()
        filters = dict(
            status=enum_name(pb.WorkOrderStatus, request.status, "WORK_ORDER_STATUS_"),
            source=enum_name(pb.WorkOrderSource, request.source, "WORK_ORDER_SOURCE_"),
            matter_code=request.matter_code.strip(), report=request.report,
            hotline_ticket_id=request.hotline_ticket_id.strip(), urgency=request.urgency,
            overdue_only=request.overdue_only, department=dept_id, query=request.query.strip(),
            start=from_pb(request.create_time_start) if request.HasField("create_time_start") else None,
            end=from_pb(request.create_time_end) if request.HasField("create_time_end") else None,
            stations=police_stations(),
        )
        with read_snapshot(self.rt.engine) as conn:
            page = queries.work_orders_page(conn, size=size, after=after, filters=filters)
        return pb.ListWorkOrdersResponse(work_orders=[self._view(o, masked=True) for o in page.items],
                                         next_page_token=page.next_page_token)

    def AssignWorkOrder(self, request: pb.AssignWorkOrderRequest, context) -> pb.WorkOrder:
        v = Violations()
        v.request_id(request.request_id)
        order_id = self._order_id(request.name, v)
        dept_ids = [resource_id(d, "departments", v, f"departments[{i}]") for i, d in enumerate(request.departments)]
        v.check(len(set(dept_ids)) == len(dept_ids), "departments", "must not name a department twice")
        if request.preliminary_police:
            v.check(not dept_ids, "departments", "must be empty when handing the order to the police station")
        elif dept_ids:
            v.require(request.reason.strip(), "reason", "is required when departments are named by hand")
        v.raise_if_any()
        place_of = self._places_ahead([order_id] if request.preliminary_police else [])
        return self.rt.idempotent_work(
            "AssignWorkOrder", request, pb.WorkOrder,
            lambda uow: handlers.assign(uow, order_id=order_id, dept_ids=dept_ids, reason=request.reason.strip(),
                                        preliminary=request.preliminary_police, place_of=place_of),
            actor=auth.current(), respond=mapping.work_order_to_pb)

    def AcceptWorkOrder(self, request: pb.AcceptWorkOrderRequest, context) -> pb.WorkOrder:
        return self._department_step("AcceptWorkOrder", request, handlers.accept)

    def RejectWorkOrder(self, request: pb.RejectWorkOrderRequest, context) -> pb.WorkOrder:
        def check(v: Violations) -> None:
            v.require(request.reason.strip(), "reason", "is required: why it is not this department's matter")
            if request.suggested_department:
                resource_id(request.suggested_department, "departments", v, "suggested_department")

        def step(uow, **ids):
            return handlers.reject(uow, **ids, reason=request.reason.strip(), suggested=request.suggested_department)
        return self._department_step("RejectWorkOrder", request, step, check)

    def StartWorkOrder(self, request: pb.StartWorkOrderRequest, context) -> pb.WorkOrder:
        return self._department_step("StartWorkOrder", request, handlers.start)

    def ResolveWorkOrder(self, request: pb.ResolveWorkOrderRequest, context) -> pb.WorkOrder:
        def check(v: Violations) -> None:
            v.require(request.feedback.strip(), "feedback", "is required: what was done, as told to the citizen")
            v.check(len(request.feedback) <= MAX_DESCRIPTION, "feedback", f"must be at most {MAX_DESCRIPTION} characters")

        def step(uow, **ids):
            return handlers.resolve(uow, **ids, feedback=request.feedback.strip(),
                                    attachments=mapping.attachments_from_pb(request.attachments))
        return self._department_step("ResolveWorkOrder", request, step, check)

    def ReviewWorkOrder(self, request: pb.ReviewWorkOrderRequest, context) -> pb.WorkOrder:
        v = Violations()
        v.request_id(request.request_id)
        order_id = self._order_id(request.name, v)
        satisfaction = enum_name(common_pb2.Satisfaction, request.satisfaction, "SATISFACTION_")
        v.check(satisfaction in SATISFACTIONS, "satisfaction", "is required: satisfied, basically satisfied or unsatisfied")
        if satisfaction == "UNSATISFIED":
            v.require(request.comment.strip(), "comment", "is required when unsatisfied: the reopened order goes back with it")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "ReviewWorkOrder", request, pb.WorkOrder,
            lambda uow: handlers.review(uow, order_id=order_id, satisfaction=satisfaction,
                                        comment=request.comment.strip()),
            actor=auth.current(), respond=mapping.work_order_to_pb)

    def TransferTo110(self, request: pb.TransferTo110Request, context) -> pb.WorkOrder:
        """一键转接: the request becomes an intake report (channel 12345), idempotent on request_id."""
        v = Violations()
        v.request_id(request.request_id)
        v.require(request.reason.strip(), "reason", "is required: why it is a police matter")
        target = request.WhichOneof("target")
        order_id, fields = "", None
        if target == "name":
            order_id = self._order_id(request.name, v)
        elif target == "work_order":
            fields = work_order_fields(request.work_order, v, self._known_matters(), source="HOTLINE_12345")
            v.check(fields["lon"] is not None or bool(fields["address_text"]), "work_order.location",
                    "a location point or work_order.address_text is required for 110 to route the report")
        else:
            v.add("target", "is required: name (an existing work order) or work_order (a new 12345 ticket)")
        v.raise_if_any()
        why = request.reason.strip()
        # Intake is called outside any transaction: read and check first, file the report (idempotent on
        # its deterministic request id), then record the transfer, re-checking the order under its lock.
        # A retry of a committed transfer skips intake: the idempotency record gives the first answer.
        with read_snapshot(self.rt.engine) as conn:
            retry = self.rt.idempotency.seen(conn, "TransferTo110", request)
            source = queries.work_order(conn, order_id) if order_id and not retry else None
        transfer = None if retry else handlers.file_transfer(
            self.rt.context, request_id=request.request_id, why=why, now=self.rt.clock(), order_id=order_id,
            source=source, fields=fields)
        return self.rt.idempotent_work(
            "TransferTo110", request, pb.WorkOrder,
            lambda uow: handlers.transfer_to_110(uow, transfer=transfer, why=why, order_id=order_id),
            actor=auth.current(), respond=mapping.work_order_to_pb)

    def SweepOverdueWorkOrders(self, request: pb.SweepOverdueWorkOrdersRequest, context):
        v = Violations()
        v.request_id(request.request_id)
        v.raise_if_any()
        return self.rt.idempotent_work("SweepOverdueWorkOrders", request, pb.SweepOverdueWorkOrdersResponse,
                                       handlers.sweep_overdue, actor=auth.current(), respond=mapping.sweep_to_pb)

    # -- departments -------------------------------------------------------------
    def ListDepartments(self, request: pb.ListDepartmentsRequest, context) -> pb.ListDepartmentsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("id",))
        after = str(token["id"]) if token else None
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            page = queries.departments_page(conn, size=size, after=after, matter_code=request.matter_code.strip(),
                                            district=request.district.strip())
        return pb.ListDepartmentsResponse(departments=[mapping.department_to_pb(d) for d in page.items],
                                          next_page_token=page.next_page_token)

    def GetDepartment(self, request: pb.GetDepartmentRequest, context) -> pb.Department:
        dept_id = name_id(request.name, "departments")
        with read_snapshot(self.rt.engine) as conn:
            department = queries.department(conn, dept_id)
        if department is None:
            raise NotFound(request.name)
        return mapping.department_to_pb(department)

    def GetDepartmentStatistics(self, request: pb.GetDepartmentStatisticsRequest, context):
        v = Violations()
        end = from_pb(request.end_time) if request.HasField("end_time") else None
        end = end or self.rt.clock()
        start = from_pb(request.start_time) if request.HasField("start_time") else None
        start = start or end - timedelta(days=30)
        v.check(start < end, "start_time", "must be before end_time")
        dept_id = resource_id(request.department, "departments", v, "department") if request.department else ""
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            figures = queries.department_statistics(conn, start=start, end=end, dept_id=dept_id)
        if figures is None:
            raise NotFound(request.department)
        return mapping.statistics_to_pb(start, end, figures)

    # -- unreasonable requests ---------------------------------------------------
    def ClassifyRequest(self, request: pb.ClassifyRequestRequest, context) -> pb.RequestClassification:
        v = Violations()
        description = request.description.strip()
        v.require(description, "description", "is required: the request in the citizen's words")
        v.check(len(description) <= MAX_DESCRIPTION, "description", f"must be at most {MAX_DESCRIPTION} characters")
        phone = request.phone_number.strip().replace(" ", "")
        check_phone(phone, "phone_number", v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            verdict = queries.classify(conn, description=description, matter_code=request.matter_code.strip(),
                                       phone=phone, now=self.rt.clock())
        return mapping.classification_to_pb(verdict)

    def RecordUnreasonableRequest(self, request: pb.RecordUnreasonableRequestRequest, context):
        v = Violations()
        v.request_id(request.request_id)
        u = request.unreasonable_request
        fields = {}
        if v.require(request.HasField("unreasonable_request"), "unreasonable_request"):
            p = "unreasonable_request"
            if u.work_order:
                resource_id(u.work_order, "workOrders", v, f"{p}.work_order")
            else:
                v.require(u.description.strip(), f"{p}.description",
                          "is required unless the request arrived as a work order")
            v.check(len(u.description) <= MAX_DESCRIPTION, f"{p}.description",
                    f"must be at most {MAX_DESCRIPTION} characters")
            category = enum_name(pb.UnreasonableCategory, u.category, "UNREASONABLE_CATEGORY_")
            v.check(bool(category), f"{p}.category", "is required")
            v.require(u.reason.strip(), f"{p}.reason", "is required: why the request is unreasonable")
            phone = u.citizen.phone_number.strip().replace(" ", "")
            check_phone(phone, f"{p}.citizen.phone_number", v)
            fields = dict(work_order=u.work_order, description=u.description.strip(), citizen_phone=phone,
                          citizen_name=u.citizen.name.strip(), category=category, reason=u.reason.strip(),
                          standard_reply=u.standard_reply.strip(), typical_case=u.typical_case)
        v.raise_if_any()
        return self.rt.idempotent_work(
            "RecordUnreasonableRequest", request, pb.UnreasonableRequest,
            lambda uow: handlers.record_unreasonable(uow, fields=fields),
            actor=auth.current(), respond=mapping.unreasonable_to_pb)

    def GetUnreasonableRequest(self, request: pb.GetUnreasonableRequestRequest, context):
        record_id = name_id(request.name, "unreasonableRequests")
        with read_snapshot(self.rt.engine) as conn:
            record = queries.unreasonable_record(conn, record_id)
        if record is None:
            raise NotFound(request.name)
        return mapping.unreasonable_to_pb(record)

    def ListUnreasonableRequests(self, request: pb.ListUnreasonableRequestsRequest, context):
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            page = queries.unreasonable_page(
                conn, size=size, after=after,
                category=enum_name(pb.UnreasonableCategory, request.category, "UNREASONABLE_CATEGORY_"),
                state=enum_name(pb.UnreasonableRequestState, request.state, "UNREASONABLE_REQUEST_STATE_"),
                start=from_pb(request.create_time_start) if request.HasField("create_time_start") else None,
                end=from_pb(request.create_time_end) if request.HasField("create_time_end") else None)
        return pb.ListUnreasonableRequestsResponse(
            unreasonable_requests=[mapping.unreasonable_to_pb(r, masked=True) for r in page.items],
            next_page_token=page.next_page_token)

    def OverturnUnreasonableRequest(self, request: pb.OverturnUnreasonableRequestRequest, context):
        v = Violations()
        v.request_id(request.request_id)
        record_id = resource_id(request.name, "unreasonableRequests", v)
        v.require(request.reason.strip(), "reason", "is required: why the request is to be handled after all")
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            record = queries.unreasonable_record(conn, record_id)
        place_of = self._places_ahead([record.work_order.removeprefix("workOrders/")] if record else [])
        return self.rt.idempotent_work(
            "OverturnUnreasonableRequest", request, pb.UnreasonableRequest,
            lambda uow: handlers.overturn(uow, record_id=record_id, reason=request.reason.strip(), place_of=place_of),
            actor=auth.current(), respond=mapping.unreasonable_to_pb)

    def ListTypicalCases(self, request: pb.ListTypicalCasesRequest, context) -> pb.ListTypicalCasesResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            page = queries.unreasonable_page(
                conn, size=size, after=after, state="RECORDED", typical_only=True,
                category=enum_name(pb.UnreasonableCategory, request.category, "UNREASONABLE_CATEGORY_"))
        return pb.ListTypicalCasesResponse(typical_cases=[mapping.typical_case_to_pb(r) for r in page.items],
                                           next_page_token=page.next_page_token)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)
