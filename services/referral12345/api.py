"""ReferralService and Open311Service gRPC servicers: proto -> command -> handler -> proto.

Roles: hotline_agent (12345 agents: record, assign, follow up, transfer),
department (a department's staff; the JWT claim `station` carries the
department id, e.g. "D01", and limits them to their own orders), supervisor
(everything, and overturning unreasonable-request records), service (in-cluster
callers such as the 12345 system).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from datetime import timedelta
from urllib.parse import parse_qs

from google.api import httpbody_pb2

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name
from services.runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.runtime.timeutil import from_pb, now, to_pb
from services.runtime.validation import Violations, decode_page_token, name_id, paginate, resource_id, time_keyset

from . import handlers
from .domain import (
    OPEN_STATUSES, Actor, WorkOrder, department_figures, infer_matter, matter_labels, open311_services,
)
from .mapping import (
    attachments_from_pb, department_to_pb, georeport_body, open311_service_to_pb, service_request_to_pb,
    typical_case_to_pb, unreasonable_to_pb, work_order_to_pb,
)
from .police import Place, PoliceLine
from .store import DepartmentRepository, UnreasonableRepository, WorkOrderRepository

AGENT_ROLES = ("hotline_agent", "supervisor", "service")
DEPARTMENT_ROLES = ("department", "supervisor", "service")
# The 110 side (接警、指挥、所长) reads every order: a referred report's order, a transfer's progress.
POLICE_READ_ROLES = ("call_taker", "dispatcher", "commander", "station_chief")
READ_ROLES = AGENT_ROLES + ("department",) + POLICE_READ_ROLES
MOBILE = re.compile(r"^1[3-9]\d{9}$")
LANDLINE = re.compile(r"^0\d{2,3}-?\d{7,8}$")
MAX_DESCRIPTION = 2000
MAX_ADDRESS = 300
SATISFACTIONS = {"SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED"}


def actor() -> Actor:
    ctx = auth.current()
    return Actor(ctx.subject, sorted(ctx.roles))


def own_department_only() -> str:
    """The department id a department-only caller is limited to; "" for broader roles.

    A police caller's token names a police station, not a department: it is not
    a department's limit (it would match no order at all).
    """
    ctx = auth.current()
    if ctx.has_role(*AGENT_ROLES, *POLICE_READ_ROLES):
        return ""
    return ctx.station or "-"


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
    if not matter and description:
        matter, _ = infer_matter("", description, known)
    return dict(
        source=source, report=w.report, hotline_ticket_id=w.hotline_ticket_id.strip(), category=w.category.strip(),
        matter_code=matter, description=description, urgency=w.urgency,
        lon=w.location.point.longitude if has_point else None, lat=w.location.point.latitude if has_point else None,
        accuracy_m=w.location.accuracy_m if has_point else 0.0, address_text=w.address_text.strip(),
        citizen_phone=phone, citizen_name=w.citizen.name.strip(), confidential=w.citizen.confidential,
        attachments=attachments_from_pb(w.attachments),
        request_time=from_pb(w.request_time) if w.HasField("request_time") else None,
    )


class ReferralServicer(pb_grpc.ReferralServiceServicer):
    def __init__(self, rt: Runtime, police: PoliceLine):
        self.rt = rt
        self.police = police

    # -- helpers -------------------------------------------------------------
    def _known_matters(self) -> set[str]:
        with read_snapshot(self.rt.engine) as conn:
            return {m.code for d in DepartmentRepository(conn).all() for m in d.matters}

    def place_of(self, order: WorkOrder) -> Place | None:
        if order.lon is not None and order.lat is not None:
            return self.police.locate(order.lon, order.lat)
        return self.police.station(order.station_id)

    @staticmethod
    def _where(order: WorkOrder) -> tuple:
        """What `place_of` depends on: the point, or else the station."""
        return ("point", order.lon, order.lat) if order.lon is not None and order.lat is not None \
            else ("station", order.station_id)

    def _places_ahead(self, order_ids: list[str]):
        """A `place_of` for a handler inside a transaction: the orders' places resolved now, before it.

        Intake is not called inside the transaction; an order whose location changed in between
        is refused with ABORTED (retry).
        """
        with read_snapshot(self.rt.engine) as conn:
            repo = WorkOrderRepository(conn)
            orders = [o for o in (repo.get(i) for i in order_ids if i) if o is not None]
        known = {self._where(o): self.place_of(o) for o in orders}

        def place_of(order: WorkOrder) -> Place | None:
            where = self._where(order)
            if where in known:
                return known[where]
            if where == ("station", ""):
                return None
            raise Aborted(f"{order.name} moved while it was being handled; retry", reason="ORDER_MOVED")
        return place_of

    def _place_for(self, fields: dict) -> Place | None:
        if fields["lon"] is not None:
            return self.police.locate(fields["lon"], fields["lat"])
        return None

    def _order_id(self, name: str, v: Violations, field: str = "name") -> str:
        return resource_id(name, "workOrders", v, field)

    def _view(self, order: WorkOrder, *, masked: bool = False) -> pb.WorkOrder:
        own = own_department_only()
        if own and not any(a.dept_id == own for a in order.assignments):
            raise PermissionDenied(f"{order.name} was not assigned to departments/{own}",
                                   reason="OTHER_DEPARTMENT")
        # A confidential citizen (保密) is shown only to the 12345 desk.
        hide = order.confidential and not auth.current().has_role(*AGENT_ROLES)
        return work_order_to_pb(order, masked=masked, hide_citizen=hide)

    def _department_step(self, method: str, request, verb: str, check=None):
        v = Violations()
        v.request_id(request.request_id)
        order_id = self._order_id(request.name, v)
        dept_id = resource_id(request.department, "departments", v, "department")
        if check:
            check(v)
        v.raise_if_any()
        if dept_id:
            act_for(dept_id)
        who = actor()

        def work(conn):
            if DepartmentRepository(conn).get(dept_id) is None:
                raise NotFound(request.department)
            return work_order_to_pb(handlers.change(
                conn, outbox=self.rt.outbox, order_id=order_id, action=verb,
                apply=lambda o: self._apply_step(o, verb, request, dept_id, who)))
        return self.rt.idempotent(method, request, pb.WorkOrder, work)

    @staticmethod
    def _apply_step(order: WorkOrder, verb: str, request, dept_id: str, who: Actor) -> None:
        t = now()
        if verb == "ACCEPTED":
            order.accept(dept_id, who, t)
        elif verb == "REJECTED":
            order.reject(dept_id, request.reason.strip(), request.suggested_department, who, t)
        elif verb == "STARTED":
            order.start(dept_id, who, t)
        else:
            order.resolve(dept_id, request.feedback.strip(), attachments_from_pb(request.attachments), who, t)

    # -- work orders ------------------------------------------------------------
    def CreateWorkOrder(self, request: pb.CreateWorkOrderRequest, context) -> pb.WorkOrder:
        auth.current().require_role(*AGENT_ROLES)
        v = Violations()
        v.request_id(request.request_id)
        fields = {}
        if v.require(request.HasField("work_order"), "work_order"):
            fields = work_order_fields(request.work_order, v, self._known_matters())
        v.raise_if_any()
        place = self._place_for(fields)
        who = actor()
        return self.rt.idempotent("CreateWorkOrder", request, pb.WorkOrder, lambda conn: work_order_to_pb(
            handlers.create_work_order(conn, outbox=self.rt.outbox, fields=fields, place=place, actor=who,
                                       now=now())))

    def GetWorkOrder(self, request: pb.GetWorkOrderRequest, context) -> pb.WorkOrder:
        auth.current().require_role(*READ_ROLES)
        v = Violations()
        order_id = self._order_id(request.name, v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            order = WorkOrderRepository(conn).get(order_id)
        if order is None:
            raise NotFound(request.name)
        return self._view(order)

    def ListWorkOrders(self, request: pb.ListWorkOrdersRequest, context) -> pb.ListWorkOrdersResponse:
        auth.current().require_role(*READ_ROLES)
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
        )
        with read_snapshot(self.rt.engine) as conn:
            rows = WorkOrderRepository(conn).list(limit=size + 1, after=after, filters=filters)
        page, token = paginate(rows, size, lambda o: {"t": o.create_time.isoformat(), "id": o.id})
        return pb.ListWorkOrdersResponse(work_orders=[self._view(o, masked=True) for o in page],
                                         next_page_token=token)

    def AssignWorkOrder(self, request: pb.AssignWorkOrderRequest, context) -> pb.WorkOrder:
        auth.current().require_role(*AGENT_ROLES)
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
        who = actor()
        place_of = self._places_ahead([order_id] if request.preliminary_police else [])
        return self.rt.idempotent("AssignWorkOrder", request, pb.WorkOrder, lambda conn: work_order_to_pb(
            handlers.assign(conn, outbox=self.rt.outbox, order_id=order_id, dept_ids=dept_ids,
                            reason=request.reason.strip(), preliminary=request.preliminary_police,
                            place_of=place_of, actor=who, now=now())))

    def AcceptWorkOrder(self, request: pb.AcceptWorkOrderRequest, context) -> pb.WorkOrder:
        return self._department_step("AcceptWorkOrder", request, "ACCEPTED")

    def RejectWorkOrder(self, request: pb.RejectWorkOrderRequest, context) -> pb.WorkOrder:
        def check(v: Violations) -> None:
            v.require(request.reason.strip(), "reason", "is required: why it is not this department's matter")
            if request.suggested_department:
                resource_id(request.suggested_department, "departments", v, "suggested_department")
        return self._department_step("RejectWorkOrder", request, "REJECTED", check)

    def StartWorkOrder(self, request: pb.StartWorkOrderRequest, context) -> pb.WorkOrder:
        return self._department_step("StartWorkOrder", request, "STARTED")

    def ResolveWorkOrder(self, request: pb.ResolveWorkOrderRequest, context) -> pb.WorkOrder:
        def check(v: Violations) -> None:
            v.require(request.feedback.strip(), "feedback", "is required: what was done, as told to the citizen")
            v.check(len(request.feedback) <= MAX_DESCRIPTION, "feedback", f"must be at most {MAX_DESCRIPTION} characters")
        return self._department_step("ResolveWorkOrder", request, "RESOLVED", check)

    def ReviewWorkOrder(self, request: pb.ReviewWorkOrderRequest, context) -> pb.WorkOrder:
        auth.current().require_role(*AGENT_ROLES)
        v = Violations()
        v.request_id(request.request_id)
        order_id = self._order_id(request.name, v)
        satisfaction = enum_name(common_pb2.Satisfaction, request.satisfaction, "SATISFACTION_")
        v.check(satisfaction in SATISFACTIONS, "satisfaction", "is required: satisfied, basically satisfied or unsatisfied")
        if satisfaction == "UNSATISFIED":
            v.require(request.comment.strip(), "comment", "is required when unsatisfied: the reopened order goes back with it")
        v.raise_if_any()
        who = actor()
        return self.rt.idempotent("ReviewWorkOrder", request, pb.WorkOrder, lambda conn: work_order_to_pb(
            handlers.review(conn, outbox=self.rt.outbox, order_id=order_id, satisfaction=satisfaction,
                            comment=request.comment.strip(), actor=who, now=now())))

    def TransferTo110(self, request: pb.TransferTo110Request, context) -> pb.WorkOrder:
        """一键转接: the request becomes an intake report (channel 12345), idempotent on request_id."""
        auth.current().require_role(*AGENT_ROLES)
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
        who = actor()
        why = request.reason.strip()
        # Intake is called outside any transaction: read and check first, file the report (idempotent on
        # its deterministic request id), then apply the transfer re-checking the order under its lock.
        # A retry of a committed transfer skips intake: claim() gives the first answer.
        source, place = None, None
        with read_snapshot(self.rt.engine) as conn:
            retry = self.rt.idempotency.seen(conn, "TransferTo110", request)
            if not retry and fields is None:
                source = WorkOrderRepository(conn).get(order_id)
                self._check_transferable(source, request.name)
        if fields is not None:
            intake_request_id = f"referral-transfer-{request.request_id}"
            if not retry:
                fields["request_time"] = fields["request_time"] or now()
                source = WorkOrder(id="", status="RECEIVED", create_time=fields["request_time"],
                                   update_time=fields["request_time"], **fields)
                place = self._place_for(fields)
        else:
            intake_request_id = f"referral-transfer-{order_id}"
        filed = self.police.report(intake_request_id, self._transfer_report(source, why)) if source else None

        def work(conn):
            if filed is None:  # a retry: claim() answered it, unless its record expired in between
                raise FailedPrecondition("the transfer's earlier record is gone; retry", reason="TRANSFER_RETRY")
            if fields is not None:
                order = handlers.create_work_order(conn, outbox=self.rt.outbox, fields=dict(fields), place=place,
                                                   actor=who, now=now(), route=False)
            else:
                order = WorkOrderRepository(conn).get(order_id, for_update=True)
                self._check_transferable(order, request.name)
            return work_order_to_pb(handlers.transfer_to_110(
                conn, outbox=self.rt.outbox, order=order, report=filed, why=why, actor=who, now=now()))
        return self.rt.idempotent("TransferTo110", request, pb.WorkOrder, work)

    @staticmethod
    def _check_transferable(order: WorkOrder | None, name: str) -> None:
        if order is None:
            raise NotFound(name)
        if order.status not in OPEN_STATUSES:
            raise FailedPrecondition(f"cannot transfer {order.name} in status {order.status}",
                                     reason="ILLEGAL_TRANSITION", metadata={"status": order.status})
        if order.lon is None and not order.address_text:
            raise FailedPrecondition(f"{order.name} has neither a location nor an address for 110",
                                     reason="NO_LOCATION")

    @staticmethod
    def _transfer_report(order: WorkOrder, why: str) -> intake_pb.Report:
        """The intake report a transferred order becomes (channel 12345)."""
        report = intake_pb.Report(
            channel=intake_pb.CHANNEL_HOTLINE_12345, description=f"{order.description}（12345转警：{why}）",
            caller=intake_pb.Caller(phone_number=order.citizen_phone, name=order.citizen_name),
            address_text=order.address_text, receive_time=to_pb(order.request_time))
        if order.lon is not None:
            report.location.CopyFrom(common_pb2.Location(
                point=common_pb2.GeoPoint(longitude=order.lon, latitude=order.lat), accuracy_m=order.accuracy_m))
        return report

    def SweepOverdueWorkOrders(self, request: pb.SweepOverdueWorkOrdersRequest, context):
        auth.current().require_role("supervisor", "service")
        v = Violations()
        v.request_id(request.request_id)
        v.raise_if_any()
        return self.rt.idempotent("SweepOverdueWorkOrders", request, pb.SweepOverdueWorkOrdersResponse,
                                  lambda conn: pb.SweepOverdueWorkOrdersResponse(
                                      work_orders=handlers.sweep_overdue(conn, outbox=self.rt.outbox, now=now())))

    # -- departments -------------------------------------------------------------
    def ListDepartments(self, request: pb.ListDepartmentsRequest, context) -> pb.ListDepartmentsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("id",))
        after = str(token["id"]) if token else None
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            rows = DepartmentRepository(conn).list(
                limit=size + 1, after=after,
                matter_code=request.matter_code.strip(), district=request.district.strip())
        page, next_token = paginate(rows, size, lambda d: {"id": d.dept_id})
        return pb.ListDepartmentsResponse(departments=[department_to_pb(d) for d in page],
                                          next_page_token=next_token)

    def GetDepartment(self, request: pb.GetDepartmentRequest, context) -> pb.Department:
        dept_id = name_id(request.name, "departments")
        with read_snapshot(self.rt.engine) as conn:
            department = DepartmentRepository(conn).get(dept_id)
        if department is None:
            raise NotFound(request.name)
        return department_to_pb(department)

    def GetDepartmentStatistics(self, request: pb.GetDepartmentStatisticsRequest, context):
        v = Violations()
        end = from_pb(request.end_time) if request.HasField("end_time") else None
        end = end or now()
        start = from_pb(request.start_time) if request.HasField("start_time") else None
        start = start or end - timedelta(days=30)
        v.check(start < end, "start_time", "must be before end_time")
        dept_id = resource_id(request.department, "departments", v, "department") if request.department else ""
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            departments = DepartmentRepository(conn).all()
            if dept_id and not any(d.dept_id == dept_id for d in departments):
                raise NotFound(request.department)
            repo = WorkOrderRepository(conn)
            figures = department_figures(repo.parts_between(start, end, dept_id),
                                         repo.reviews_between(start, end, dept_id), departments)
        return pb.DepartmentStatistics(
            start_time=to_pb(start), end_time=to_pb(end),
            departments=[pb.DepartmentFigures(
                department=f"departments/{f.dept_id}", department_display_name=f.dept_name, assigned=f.assigned,
                rejected=f.rejected, resolved=f.resolved, completion_rate=f.completion_rate,
                on_time_rate=f.on_time_rate, satisfaction_rate=f.satisfaction_rate, reopen_rate=f.reopen_rate,
                mean_resolve_seconds=f.mean_resolve_seconds) for f in figures])

    # -- unreasonable requests ---------------------------------------------------
    def ClassifyRequest(self, request: pb.ClassifyRequestRequest, context) -> pb.RequestClassification:
        auth.current().require_role(*AGENT_ROLES)
        v = Violations()
        description = request.description.strip()
        v.require(description, "description", "is required: the request in the citizen's words")
        v.check(len(description) <= MAX_DESCRIPTION, "description", f"must be at most {MAX_DESCRIPTION} characters")
        phone = request.phone_number.strip().replace(" ", "")
        check_phone(phone, "phone_number", v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            verdict = handlers.classify(conn, description=description, matter_code=request.matter_code.strip(),
                                        phone=phone, now=now())
        return pb.RequestClassification(
            unreasonable=verdict.unreasonable,
            category=pb.UnreasonableCategory.Value(f"UNREASONABLE_CATEGORY_{verdict.category}") if verdict.category else 0,
            reason=verdict.reason, standard_reply=verdict.standard_reply, confidence=verdict.confidence,
            rule_ids=verdict.rule_ids, prior_requests=verdict.prior_requests)

    def RecordUnreasonableRequest(self, request: pb.RecordUnreasonableRequestRequest, context):
        auth.current().require_role(*AGENT_ROLES)
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
        who = actor()
        return self.rt.idempotent("RecordUnreasonableRequest", request, pb.UnreasonableRequest,
                                  lambda conn: unreasonable_to_pb(handlers.record_unreasonable(
                                      conn, outbox=self.rt.outbox, fields=fields, actor=who, now=now())))

    def GetUnreasonableRequest(self, request: pb.GetUnreasonableRequestRequest, context):
        auth.current().require_role(*AGENT_ROLES)
        record_id = name_id(request.name, "unreasonableRequests")
        with read_snapshot(self.rt.engine) as conn:
            record = UnreasonableRepository(conn).get(record_id)
        if record is None:
            raise NotFound(request.name)
        return unreasonable_to_pb(record)

    def ListUnreasonableRequests(self, request: pb.ListUnreasonableRequestsRequest, context):
        auth.current().require_role(*AGENT_ROLES)
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            rows = UnreasonableRepository(conn).list(
                limit=size + 1, after=after,
                category=enum_name(pb.UnreasonableCategory, request.category, "UNREASONABLE_CATEGORY_"),
                state=enum_name(pb.UnreasonableRequestState, request.state, "UNREASONABLE_REQUEST_STATE_"),
                start=from_pb(request.create_time_start) if request.HasField("create_time_start") else None,
                end=from_pb(request.create_time_end) if request.HasField("create_time_end") else None)
        page, token = paginate(rows, size, lambda r: {"t": r.create_time.isoformat(), "id": r.id})
        return pb.ListUnreasonableRequestsResponse(
            unreasonable_requests=[unreasonable_to_pb(r, masked=True) for r in page], next_page_token=token)

    def OverturnUnreasonableRequest(self, request: pb.OverturnUnreasonableRequestRequest, context):
        auth.current().require_role("supervisor")
        v = Violations()
        v.request_id(request.request_id)
        record_id = resource_id(request.name, "unreasonableRequests", v)
        v.require(request.reason.strip(), "reason", "is required: why the request is to be handled after all")
        v.raise_if_any()
        who = actor()
        with read_snapshot(self.rt.engine) as conn:
            record = UnreasonableRepository(conn).get(record_id)
        place_of = self._places_ahead([record.work_order.removeprefix("workOrders/")] if record else [])
        return self.rt.idempotent("OverturnUnreasonableRequest", request, pb.UnreasonableRequest,
                                  lambda conn: unreasonable_to_pb(handlers.overturn(
                                      conn, outbox=self.rt.outbox, record_id=record_id,
                                      reason=request.reason.strip(), place_of=place_of, actor=who,
                                      now=now())))

    def ListTypicalCases(self, request: pb.ListTypicalCasesRequest, context) -> pb.ListTypicalCasesResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            rows = UnreasonableRepository(conn).list(
                limit=size + 1, after=after, state="RECORDED", typical_only=True,
                category=enum_name(pb.UnreasonableCategory, request.category, "UNREASONABLE_CATEGORY_"))
        page, token = paginate(rows, size, lambda r: {"t": r.create_time.isoformat(), "id": r.id})
        return pb.ListTypicalCasesResponse(typical_cases=[typical_case_to_pb(r) for r in page],
                                           next_page_token=token)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)


# -- Open311 GeoReport v2 ---------------------------------------------------------

GEOREPORT_KEYS = ("service_code", "lat", "long", "address_string", "address_id", "email", "device_id",
                  "account_id", "first_name", "last_name", "phone", "description", "media_url", "api_key",
                  "jurisdiction_id")
MAX_OPEN311_RESULTS = 1000


class GeoReportInvalid(InvalidArgument):
    """Bad GeoReport input; each violation also as a GeoReport error (code 400)."""

    def extra_details(self) -> list:
        return [pb.GeoReportError(code=400, description=f"{f}: {d}") for f, d in self.violations]


class GeoReportForbidden(PermissionDenied):
    """An api_key that is not one of the issued keys."""

    def extra_details(self) -> list:
        return [pb.GeoReportError(code=403, description=self.message)]


class GeoReportNotFound(NotFound):
    def extra_details(self) -> list:
        return [pb.GeoReportError(code=404, description=self.message)]


def raise_georeport(v: Violations) -> None:
    if v.items:
        raise GeoReportInvalid(v.items)


def parse_georeport_body(body: httpbody_pb2.HttpBody, v: Violations) -> dict:
    """The keys of a GeoReport POST, form-encoded or JSON."""
    raw = body.data.decode("utf-8", errors="replace")
    if "json" in body.content_type:
        try:
            data = json.loads(raw or "{}")
            if not isinstance(data, dict):
                raise ValueError
        except (ValueError, RecursionError):
            # RecursionError: a body nested too deeply for the parser.
            v.add("raw_body", "is not a JSON object")
            return {}
        return {k: str(val) for k, val in data.items() if k in GEOREPORT_KEYS and val is not None}
    return {k: vals[0] for k, vals in parse_qs(raw, keep_blank_values=False).items() if k in GEOREPORT_KEYS}


class Open311Servicer(pb_grpc.Open311ServiceServicer):
    """The GeoReport v2 face of the 12345 line.

    `jurisdiction_id` is the one this endpoint serves (OPEN311_JURISDICTION_ID);
    when it is empty, requests may name any jurisdiction or none.
    """

    def __init__(self, rt: Runtime, referral: ReferralServicer, jurisdiction_id: str = "",
                 api_keys: list[str] | tuple[str, ...] = ()):
        self.rt = rt
        self.referral = referral
        self.jurisdiction_id = jurisdiction_id
        # The keys issued to apps (OPEN311_API_KEYS); none configured means no POST is accepted.
        self.api_keys = tuple(k.encode() for k in api_keys if k)

    def _check_api_key(self, key: str) -> None:
        """GeoReport: a POST carries the app's api_key. Checked before anything else is looked at."""
        if not key:
            raise GeoReportInvalid([("api_key", "is required: the key issued to your application")])
        given = key.encode()
        # Compare with every key, so the time taken does not tell which one was close.
        if not any([hmac.compare_digest(given, k) for k in self.api_keys]):
            raise GeoReportForbidden("api_key is not valid for this endpoint", reason="API_KEY_INVALID")

    def _check_jurisdiction(self, value: str, v: Violations) -> None:
        if self.jurisdiction_id and value:
            v.check(value == self.jurisdiction_id, "jurisdiction_id",
                    f"this endpoint serves only {self.jurisdiction_id!r}")

    def _labels(self) -> dict[str, str]:
        with read_snapshot(self.rt.engine) as conn:
            return matter_labels(DepartmentRepository(conn).all())

    def ListServices(self, request: pb.ListServicesRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        self._check_jurisdiction(request.jurisdiction_id, v)
        raise_georeport(v)
        with read_snapshot(self.rt.engine) as conn:
            departments = DepartmentRepository(conn).all()
        return georeport_body([open311_service_to_pb(s) for s in open311_services(departments)])

    def CreateServiceRequest(self, request: pb.CreateServiceRequestRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        if request.api_key.strip():
            # A key outside the body is checked before the body is even parsed.
            self._check_api_key(request.api_key.strip())
        typed = {k: getattr(request, k) for k in GEOREPORT_KEYS if getattr(request, k)}
        if request.HasField("raw_body") and request.raw_body.data:
            v.check(not (set(typed) - {"jurisdiction_id", "api_key"}), "raw_body",
                    "must not be combined with the typed GeoReport fields")
            given = parse_georeport_body(request.raw_body, v)
        else:
            given = {k: str(val) for k, val in typed.items()}
        self._check_api_key(given.get("api_key", "").strip() or request.api_key.strip())
        self._check_jurisdiction(given.get("jurisdiction_id", request.jurisdiction_id), v)
        labels = self._labels()
        code = given.get("service_code", "").strip()
        if v.require(code, "service_code", "is required: a service_code from services.json"):
            v.check(code in labels, "service_code", "is not a service_code from services.json")
        lat = lon = None
        if "lat" in given or "long" in given:
            try:
                lat, lon = float(given.get("lat", "")), float(given.get("long", ""))
                check_point(lon, lat, "location", v)
            except ValueError:
                v.add("lat", "lat and long must both be decimal degrees")
        address = given.get("address_string", "").strip()
        v.check(lat is not None or bool(address) or bool(given.get("address_id")), "lat",
                "a location is required: lat and long, address_string or address_id")
        description = given.get("description", "").strip()
        v.require(description, "description", "is required: what the problem is")
        v.check(len(description) <= 4000, "description", "must be at most 4000 characters")
        phone = given.get("phone", "").strip().replace(" ", "")
        check_phone(phone, "phone", v)
        if request.request_id:
            v.request_id(request.request_id)
        raise_georeport(v)
        keyed = pb.CreateServiceRequestRequest()
        keyed.CopyFrom(request)
        if not keyed.request_id:
            # GeoReport clients send no idempotency key: the content is the key.
            digest = hashlib.sha256(json.dumps(sorted(given.items()), ensure_ascii=False).encode()).hexdigest()
            keyed.request_id = f"open311-{digest[:40]}"
        name = " ".join(x for x in (given.get("last_name", ""), given.get("first_name", "")) if x).strip()
        media = given.get("media_url", "").strip()
        fields = dict(
            source="OPEN311", matter_code=code, description=description, urgency=4, lon=lon, lat=lat,
            address_text=address or given.get("address_id", ""), citizen_phone=phone, citizen_name=name,
            hotline_ticket_id=given.get("device_id", ""),
            attachments=[dict(kind="IMAGE", content_type="", size_bytes=0, sha256="", storage_uri=media)]
            if media else [],
        )
        place = self.referral.police.locate(lon, lat) if lon is not None else None
        who = actor()

        def work(conn):
            order = handlers.create_work_order(conn, outbox=self.rt.outbox, fields=fields, place=place, actor=who,
                                               now=now())
            sr = service_request_to_pb(order, labels.get(order.matter_code, ""))
            return georeport_body([pb.ServiceRequestReceipt(
                service_request_id=order.id, service_notice=sr.service_notice,
                account_id=given.get("account_id", ""))])
        return self.rt.idempotent("CreateServiceRequest", keyed, httpbody_pb2.HttpBody, work)

    def ListServiceRequests(self, request: pb.ListServiceRequestsRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        self._check_jurisdiction(request.jurisdiction_id, v)
        ids = [i.strip() for i in request.service_request_id.split(",") if i.strip()]
        codes = [c.strip() for c in request.service_code.split(",") if c.strip()]
        statuses = [s.strip() for s in request.status.split(",") if s.strip()]
        v.check(all(s in ("open", "closed") for s in statuses), "status", "must be open, closed or both")
        end = (from_pb(request.end_date) if request.HasField("end_date") else None) or now()
        start = (from_pb(request.start_date) if request.HasField("start_date") else None) or end - timedelta(days=90)
        v.check(start < end, "start_date", "must be before end_date")
        raise_georeport(v)
        if ids:
            filters = dict(ids=ids)
        else:
            wanted = set()
            for s in statuses:
                wanted |= {"CLOSED", "TRANSFERRED_TO_110"} if s == "closed" else (
                    OPEN_STATUSES | {"RESOLVED"})
            filters = dict(matter_codes=codes, statuses=sorted(wanted), start=start, end=end)
        with read_snapshot(self.rt.engine) as conn:
            orders = WorkOrderRepository(conn).list(limit=MAX_OPEN311_RESULTS, after=None, filters=filters)
        labels = self._labels()
        return georeport_body([service_request_to_pb(o, labels.get(o.matter_code, "")) for o in orders])

    def GetServiceRequest(self, request: pb.GetServiceRequestRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        self._check_jurisdiction(request.jurisdiction_id, v)
        raw = request.service_request_id.strip()
        v.require(raw, "service_request_id")
        raise_georeport(v)
        order_id = raw.removesuffix(".json")
        if "." in order_id or "/" in order_id:
            raise GeoReportNotFound(f"requests/{raw}")
        with read_snapshot(self.rt.engine) as conn:
            order = WorkOrderRepository(conn).get(order_id)
        if order is None:
            raise GeoReportNotFound(f"requests/{raw}")
        return georeport_body([service_request_to_pb(order, self._labels().get(order.matter_code, ""))])
