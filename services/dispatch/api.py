"""DispatchService gRPC servicer: proto -> command -> handler -> proto."""
from __future__ import annotations

import queue
import re

from sqlalchemy.exc import IntegrityError

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.audit import timeline_to_pb
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name
from services.runtime.errors import AlreadyExists, NotFound, PermissionDenied
from services.runtime.timeutil import from_pb
from services.runtime.validation import Violations, decode_page_token, name_id, paginate, resource_id, time_keyset

from . import caseinfo, lifecycle, offers, roster
from .api_handling import HandlingServicer
from .context import Dispatch, entry
from .domain import ADVANCE_TARGETS, ENDED_OFFER
from .lifecycle import COMMAND_ROLES
from .mapping import assignment_to_pb, case_to_pb, evidence_from_pb, recommendation_to_pb, unit_to_pb
from .store import AssignmentRepository, CaseRepository, ShiftRepository, UnitRepository, unit_timeline

LEVELS = ["STATION", "COUNTY", "CITY", "PROVINCE"]
RECOMMEND_ROLES = ("dispatcher", "commander", "call_taker", "station_chief", "service")
ASSIGNMENT_NAME = re.compile(r"^cases/([^/]+)/assignments/([^/]+)$")
SKILL = re.compile(r"^[A-Z][A-Z_]{1,39}$")
UNIT_FIELDS = ("call_sign", "kind", "station_id", "skills", "vehicle", "officers")
MAX_NOTES = 4000
MAX_EVIDENCE = 50


def assignment_id(name: str, v: Violations, field: str = "name") -> tuple[str, str]:
    m = ASSIGNMENT_NAME.match(name or "")
    if not m:
        v.add(field, "is required, as cases/{case}/assignments/{assignment}" if not name
              else "must look like cases/{case}/assignments/{assignment}")
        return "", ""
    return m.group(1), m.group(2)


def check_evidence(items, v: Violations) -> None:
    v.check(len(items) <= MAX_EVIDENCE, "evidence", f"at most {MAX_EVIDENCE} attachments")
    for i, a in enumerate(items):
        f = f"evidence[{i}]"
        v.check(a.kind != common_pb2.ATTACHMENT_KIND_UNSPECIFIED, f"{f}.kind", "is required (IMAGE, VIDEO, ...)")
        v.require(a.storage_uri, f"{f}.storage_uri")
        v.check(a.size_bytes >= 0, f"{f}.size_bytes", "must not be negative")
        if a.sha256:
            v.check(bool(re.fullmatch(r"[0-9a-fA-F]{64}", a.sha256)), f"{f}.sha256", "must be 64 hex digits")


class DispatchServicer(HandlingServicer, pb_grpc.DispatchServiceServicer):
    def __init__(self, rt: Runtime, d: Dispatch, hub: offers.AssignmentHub):
        self.rt = rt
        self.d = d
        self.hub = hub

    # -- cases ---------------------------------------------------------------
    def GetCase(self, request: pb.GetCaseRequest, context) -> pb.DispatchCase:
        case_id = name_id(request.name, "cases")
        with read_snapshot(self.rt.engine) as conn:
            case = CaseRepository(conn).get(case_id)
            if case is None:
                raise NotFound(request.name)
            return caseinfo.case_message(conn, case)

    def ListCases(self, request: pb.ListCasesRequest, context) -> pb.ListCasesResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        if request.report:
            resource_id(request.report, "reports", v, "report")
        v.raise_if_any()
        min_level = enum_name(pb.CaseLevel, request.min_level, "CASE_LEVEL_")
        levels = LEVELS[LEVELS.index(min_level):] if min_level else None
        with read_snapshot(self.rt.engine) as conn:
            rows = CaseRepository(conn).list(
                limit=size + 1, after=after, station_id=request.station_id,
                status=enum_name(pb.CaseStatus, request.status, "CASE_STATUS_"), report=request.report,
                levels=levels, flagged=request.follow_up_flagged)
            page, next_token = paginate(rows, size, lambda c: {"t": c.create_time.isoformat(), "id": c.id})
            messages = caseinfo.fill(conn, [case_to_pb(c) for c in page])
        return pb.ListCasesResponse(cases=messages, next_page_token=next_token)

    def RecommendUnits(self, request: pb.RecommendUnitsRequest, context) -> pb.RecommendUnitsResponse:
        auth.current().require_role(*RECOMMEND_ROLES)
        v = Violations()
        case_id = resource_id(request.name, "cases", v)
        v.check(0 <= request.max_results <= 50, "max_results", "must be between 0 and 50")
        v.raise_if_any()
        at = self.d.now()
        with read_snapshot(self.rt.engine) as conn:
            case = CaseRepository(conn).get(case_id, with_timeline=False)
            if case is None:
                raise NotFound(request.name)
            on_case = {a.unit_id for a in case.assignments if a.state not in ENDED_OFFER}
            picks, _gaps = offers.recommend_for(conn, self.d, case, at, exclude=on_case)
        if request.max_results:
            picks = picks[:request.max_results]
        return pb.RecommendUnitsResponse(recommendations=[recommendation_to_pb(p) for p in picks])

    def OfferCase(self, request: pb.OfferCaseRequest, context) -> pb.Assignment:
        actor = auth.current()
        actor.require_role("dispatcher", "commander", "service")
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        unit_id = resource_id(request.unit, "units", v, "unit")
        v.check(len(request.reason) <= 500, "reason", "at most 500 characters")
        v.raise_if_any()
        role = enum_name(pb.AssignmentRole, request.role, "ASSIGNMENT_ROLE_")
        return self.rt.idempotent("OfferCase", request, pb.Assignment, lambda conn: offers.offer_by_hand(
            conn, self.d, case_id=case_id, unit_id=unit_id, role=role, reason=request.reason, actor=actor))

    # -- assignments ---------------------------------------------------------
    def GetAssignment(self, request: pb.GetAssignmentRequest, context) -> pb.Assignment:
        v = Violations()
        case_id, aid = assignment_id(request.name, v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            case = CaseRepository(conn).get(case_id, with_timeline=False)
            a = next((x for x in case.assignments if x.id == aid), None) if case else None
        if a is None:
            raise NotFound(request.name)
        return assignment_to_pb(a, case)

    def _mutation(self, method: str, request, check, work):
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id, aid = assignment_id(request.name, v)
        check(v)
        v.raise_if_any()
        return self.rt.idempotent(method, request, pb.Assignment,
                                  lambda conn: work(conn, case_id=case_id, assignment_id=aid, actor=actor))

    def AcceptAssignment(self, request: pb.AcceptAssignmentRequest, context) -> pb.Assignment:
        return self._mutation("AcceptAssignment", request, lambda v: None,
                              lambda conn, **kw: lifecycle.accept(conn, self.d, **kw))

    def DeclineAssignment(self, request: pb.DeclineAssignmentRequest, context) -> pb.Assignment:
        def check(v):
            v.check(len(request.reason) <= 500, "reason", "at most 500 characters")

        return self._mutation("DeclineAssignment", request, check,
                              lambda conn, **kw: offers.decline(conn, self.d, reason=request.reason, **kw))

    def AdvanceAssignment(self, request: pb.AdvanceAssignmentRequest, context) -> pb.Assignment:
        target = enum_name(pb.AssignmentState, request.state, "ASSIGNMENT_STATE_")

        def check(v):
            v.check(target in ADVANCE_TARGETS, "state", "must be EN_ROUTE, ON_SCENE or CLEARED")

        return self._mutation("AdvanceAssignment", request, check,
                              lambda conn, **kw: lifecycle.advance(conn, self.d, target=target, **kw))

    def ReportBack(self, request: pb.ReportBackRequest, context) -> pb.Assignment:
        outcome = enum_name(pb.Outcome, request.outcome, "OUTCOME_")

        def check(v):
            v.require(outcome, "outcome", "is required (CRIMINAL_CASE, MEDIATED, NO_ISSUE_FOUND, ...)")
            v.check(len(request.notes) <= MAX_NOTES, "notes", f"at most {MAX_NOTES} characters")
            check_evidence(request.evidence, v)

        return self._mutation("ReportBack", request, check, lambda conn, **kw: lifecycle.report_back(
            conn, self.d, outcome=outcome, notes=request.notes, evidence=evidence_from_pb(request.evidence), **kw))

    def WatchAssignments(self, request: pb.WatchAssignmentsRequest, context):
        actor = auth.current()
        v = Violations()
        unit_id = resource_id(request.unit, "units", v, "unit")
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            unit = UnitRepository(conn, now=self.d.now()).get(unit_id)
        if unit is None:
            raise NotFound(request.unit)
        if not actor.has_role(*COMMAND_ROLES) and not (
                actor.has_role("officer") and actor.subject in {o["officer_id"] for o in unit.officers}
                and actor.station in ("", unit.station_id)):
            raise PermissionDenied(f"only an officer of {request.unit} or a dispatcher may watch its assignments",
                                   reason="NOT_ASSIGNED_OFFICER")
        q = self.hub.subscribe(unit_id)
        try:
            # Subscribed first, then the snapshot: nothing committed in between is missed,
            # and versions drop whatever the snapshot already covers.
            seen: dict[str, int] = {}
            with read_snapshot(self.rt.engine) as conn:
                current = AssignmentRepository(conn).active_of_unit(unit_id)
                snapshot = []
                for a in current:
                    case = CaseRepository(conn).get(a.case_id, with_timeline=False)
                    snapshot.append(assignment_to_pb(a, case))
            for msg in snapshot:
                seen[msg.name] = msg.version
                yield msg
            while context.is_active() and not self.rt.feed.closed:
                try:
                    msg = q.get(timeout=1.0)
                except queue.Empty:
                    continue
                if msg.version <= seen.get(msg.name, 0):
                    continue
                seen[msg.name] = msg.version
                yield msg
        finally:
            self.hub.unsubscribe(unit_id, q)

    # -- units and roster ------------------------------------------------------
    def GetUnit(self, request: pb.GetUnitRequest, context) -> pb.Unit:
        unit_id = name_id(request.name, "units")
        at = self.d.now()
        with read_snapshot(self.rt.engine) as conn:
            unit = UnitRepository(conn, now=at, stale_before=self.d.stale_before(at)).get(unit_id)
            if unit is None:
                raise NotFound(request.name)
            msg = unit_to_pb(unit)
            timeline_to_pb(unit_timeline.of(conn, unit_id), msg.timeline)
        return msg

    def ListUnits(self, request: pb.ListUnitsRequest, context) -> pb.ListUnitsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("id",))
        v.raise_if_any()
        at = self.d.now()
        with read_snapshot(self.rt.engine) as conn:
            rows = UnitRepository(conn, now=at, stale_before=self.d.stale_before(at)).list(
                limit=size + 1, after=token["id"] if token else None, station_id=request.station_id,
                kind=enum_name(pb.UnitKind, request.kind, "UNIT_KIND_"),
                status=enum_name(pb.UnitStatus, request.status, "UNIT_STATUS_"))
        page, next_token = paginate(rows, size, lambda u: {"id": u.unit_id})
        return pb.ListUnitsResponse(units=[unit_to_pb(u) for u in page], next_page_token=next_token)

    def UpdateUnit(self, request: pb.UpdateUnitRequest, context) -> pb.Unit:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        unit_id = resource_id(request.unit.name, "units", v, "unit.name")
        paths = list(request.update_mask.paths)
        v.check(bool(paths), "update_mask", f"is required: some of {', '.join(UNIT_FIELDS)}")
        for p in paths:
            v.check(p in UNIT_FIELDS, "update_mask", f"{p!r} cannot be changed; one of {', '.join(UNIT_FIELDS)}")
        u = request.unit
        values: dict = {}
        if "call_sign" in paths and v.require(u.call_sign.strip(), "unit.call_sign"):
            v.check(len(u.call_sign) <= 30, "unit.call_sign", "at most 30 characters")
            values["call_sign"] = u.call_sign.strip()
        if "kind" in paths and v.check(u.kind != pb.UNIT_KIND_UNSPECIFIED, "unit.kind", "is required"):
            values["kind"] = enum_name(pb.UnitKind, u.kind, "UNIT_KIND_")
        if "station_id" in paths and v.require(u.station_id, "unit.station_id"):
            v.check(len(u.station_id) <= 20, "unit.station_id", "at most 20 characters")
            values["station_id"] = u.station_id
        if "skills" in paths:
            for i, s in enumerate(u.skills):
                v.check(bool(SKILL.match(s)), f"unit.skills[{i}]", "must be an UPPER_SNAKE_CASE skill code")
            values["skills"] = list(dict.fromkeys(u.skills))
        if "vehicle" in paths:
            v.check(len(u.vehicle) <= 30, "unit.vehicle", "at most 30 characters")
            values["vehicle"] = u.vehicle
        if "officers" in paths:
            for i, o in enumerate(u.officers):
                v.require(o.officer_id, f"unit.officers[{i}].officer_id")
                v.require(o.display_name, f"unit.officers[{i}].display_name")
            values["officers"] = [{"officer_id": o.officer_id, "name": o.display_name} for o in u.officers]
        v.raise_if_any()

        def work(conn):
            at = self.d.now()
            repo = UnitRepository(conn, now=at, stale_before=self.d.stale_before(at))
            unit = repo.get(unit_id, lock=True)
            if unit is None:
                raise NotFound(u.name)
            roster.authorize_roster(actor, unit.station_id)
            if "station_id" in values:
                roster.authorize_roster(actor, values["station_id"])
            try:
                with conn.begin_nested():
                    repo.update(unit_id, values)
            except IntegrityError as exc:
                raise AlreadyExists(f"call sign {values.get('call_sign')!r} is taken",
                                    reason="CALL_SIGN_TAKEN") from exc
            msg = unit_to_pb(repo.get(unit_id))
            unit_timeline.add(conn, unit_id, [entry(actor, at, "UPDATED", "修改：" + "、".join(paths))])
            self.d.outbox.publish(conn, "dispatch.UnitUpdated", msg.name, pb.UnitUpdated(
                unit=msg, action="UPDATED", stamp=lifecycle.stamp(actor, at, ",".join(paths))))
            return msg

        return self.rt.idempotent("UpdateUnit", request, pb.Unit, work)

    def CreateShift(self, request: pb.CreateShiftRequest, context) -> pb.Shift:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        unit_id = resource_id(request.parent, "units", v, "parent")
        start, end = from_pb(request.shift.start_time), from_pb(request.shift.end_time)
        v.check(start is not None, "shift.start_time", "is required")
        v.check(end is not None, "shift.end_time", "is required")
        if start and end:
            v.check(end > start, "shift.end_time", "must be after shift.start_time")
            v.check((end - start).total_seconds() <= 36 * 3600, "shift.end_time", "a shift lasts at most 36 hours")
        v.check(len(request.shift.area) <= 40, "shift.area", "at most 40 characters")
        v.raise_if_any()

        def work(conn):
            at = self.d.now()
            shift = roster.create_shift(conn, unit_id=unit_id, start=start, end=end, area=request.shift.area,
                                        actor=actor, now=at)
            unit = unit_to_pb(UnitRepository(conn, now=at, stale_before=self.d.stale_before(at)).get(unit_id))
            area = f"，区域{request.shift.area}" if request.shift.area else ""
            unit_timeline.add(conn, unit_id, [entry(actor, at, "SHIFT_ADDED", f"勤务报备：{start.isoformat()} 至 "
                                                                          f"{end.isoformat()}{area}")])
            self.d.outbox.publish(conn, "dispatch.UnitUpdated", unit.name, pb.UnitUpdated(
                unit=unit, action="SHIFT_ADDED", stamp=lifecycle.stamp(actor, at, ""), shift=shift))
            return shift

        return self.rt.idempotent("CreateShift", request, pb.Shift, work)

    def ListShifts(self, request: pb.ListShiftsRequest, context) -> pb.ListShiftsResponse:
        v = Violations()
        unit_id = resource_id(request.parent, "units", v, "parent")
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            if UnitRepository(conn, now=self.d.now()).get(unit_id) is None:
                raise NotFound(request.parent)
            rows = ShiftRepository(conn).list(unit_id, limit=size + 1, after=after)
        page, next_token = paginate(rows, size, lambda r: {"t": r.start_time.isoformat(), "id": r.shift_id})
        return pb.ListShiftsResponse(shifts=[roster.shift_to_pb(r) for r in page], next_page_token=next_token)

    def ReportPositions(self, request_iterator, context) -> pb.ReportPositionsResponse:
        """Each fix is checked on its own: a bad one is counted as rejected, the stream goes on."""
        actor = auth.current()
        accepted = rejected = 0
        officers_of: dict[str, tuple[set[str], str] | None] = {}
        for req in request_iterator:
            at = self.d.now()
            p = req.position
            unit_id = req.unit.removeprefix("units/") if req.unit.startswith("units/") else ""
            fix = from_pb(req.fix_time) or at
            ok = (unit_id and req.HasField("position") and -180 <= p.longitude <= 180 and -90 <= p.latitude <= 90
                  and (p.longitude, p.latitude) != (0.0, 0.0) and req.accuracy_m >= 0
                  and (fix - at).total_seconds() <= 60)
            if ok:
                with self.rt.engine.begin() as conn:
                    repo = UnitRepository(conn, now=at)
                    if unit_id not in officers_of:
                        unit = repo.get(unit_id)
                        officers_of[unit_id] = ({o["officer_id"] for o in unit.officers}, unit.station_id) \
                            if unit else None
                    known = officers_of[unit_id]
                    ok = known is not None and (actor.has_role(*COMMAND_ROLES) or (
                        actor.has_role("officer") and actor.subject in known[0]
                        and actor.station in ("", known[1])))
                    ok = ok and repo.move(unit_id, p.longitude, p.latitude, fix, req.accuracy_m)
            accepted, rejected = (accepted + 1, rejected) if ok else (accepted, rejected + 1)
        return pb.ReportPositionsResponse(accepted=accepted, rejected=rejected)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)

