"""DispatchService gRPC servicer: validate, call a handler (in a unit of work) or a query, map the answer.

Cases and their assignments (offers to officers' phones, the lifecycle to report-back), units and
the duty roster, and the casework beyond the first dispatch: the anti-fraud hand-off (紧急止付),
escalation and the command centres' live view (同步同息感知), the situation map (一张图), citizen
follow-up (回访) and response circles; a case exported as a NENA EIDO document for another system to
take it over (`eido`).
"""
from __future__ import annotations

import queue
import re

from google.api import httpbody_pb2
from smart110.common.v1 import common_pb2, events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as pb_grpc

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name, enum_value
from services.runtime.errors import NotFound, PermissionDenied
from services.runtime.policy import current_jurisdiction, in_scope, org
from services.runtime.timeutil import from_pb, to_pb
from services.runtime.validation import (
    Violations, check_box, decode_page_token, name_id, resource_id, time_keyset,
)

from . import clients, domain, eido, handlers, mapping, queries
from .clients import IntakeContacts
from .policy import PERSONAL_DATA_ROLES
from .domain import ADVANCE_TARGETS, MAX_COMMENT, UNIT_FIELDS, Context
from .domain import grant as grant_domain

ASSIGNMENT_NAME = re.compile(r"^cases/([^/]+)/assignments/([^/]+)$")
GRANT_NAME = re.compile(r"^cases/([^/]+)/accessGrants/([^/]+)$")
# Who sees every grant of their jurisdiction; an officer alone sees their own.
GRANT_OVERSEERS = ("station_chief", "legal_officer", "commander", "district_commander", "supervisor", "dispatcher",
                   "service")
SKILL = re.compile(r"^[A-Z][A-Z_]{1,39}$")
ACCOUNT = re.compile(r"^[0-9]{6,32}$")
STATION_ID = re.compile(r"^S[0-9]{2,4}$")
GRID_ID = re.compile(r"^S[0-9]{2,4}-G[0-9]{1,4}$")
MAX_NOTES = 4000
# How often WatchUnits looks for recorded unit changes, and how long it stays silent at most.
UNIT_POLL_SECONDS = 1.0
HEARTBEAT_SECONDS = 15.0
MAX_EVIDENCE = 50
MAX_REASON = 500
MAX_AMOUNT_FEN = 10**13
CASE_EVENTS = {"dispatch.CaseCreated": pb.CaseCreated, "dispatch.CaseUpdated": pb.CaseUpdated}
ASSIGNMENT_CHANGED = "dispatch.AssignmentChanged"
# Assignment states in which a unit is working a case (an offer included), as the events carry them.
ACTIVE_ASSIGNMENT_STATES = {pb.AssignmentState.Value(f"ASSIGNMENT_STATE_{s}") for s in queries.ACTIVE_ASSIGNMENT_STATES}


def eido_stations() -> dict[str, eido.Station]:
    """The organisation's stations as EIDO agencies (their names and public phones)."""
    directory = org()
    return {s: eido.Station(s, directory.station_names.get(s, ""), directory.station_phones.get(s, ""))
            for s in directory.district_of}


def grant_id(name: str, v: Violations, field: str = "name") -> tuple[str, str]:
    m = GRANT_NAME.match(name or "")
    if not m:
        v.add(field, "is required, as cases/{case}/accessGrants/{grant}" if not name
              else "must look like cases/{case}/accessGrants/{grant}")
        return "", ""
    return m.group(1), m.group(2)


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


class DispatchServicer(pb_grpc.DispatchServiceServicer):
    def __init__(self, rt: Runtime, contacts: IntakeContacts | None = None):
        self.rt = rt
        # Intake's caller contacts, for an EIDO export by someone who may see them.
        self.contacts = contacts
        self.eido_issuer = eido.Issuer.from_env()

    @property
    def ctx(self) -> Context:
        return self.rt.context

    # -- cases ---------------------------------------------------------------
    def GetCase(self, request: pb.GetCaseRequest, context) -> pb.DispatchCase:
        case_id = name_id(request.name, "cases")
        with read_snapshot(self.rt.engine) as conn:
            case = queries.case(conn, case_id)
        if case is None:
            raise NotFound(request.name)
        self._in_scope_or_granted(request.name, case)
        return mapping.case_to_pb(case)

    def ExportCaseEido(self, request: pb.ExportCaseEidoRequest, context):
        """The case as a NENA EIDO JSON document, read as GetCase reads it (jurisdiction or grant);
        the caller's contact only for a requester who may see it, read from intake (recorded there)."""
        v = Violations()
        case_id = resource_id(request.name, "cases", v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            case = queries.case(conn, case_id)
        if case is None:
            raise NotFound(request.name)
        self._in_scope_or_granted(request.name, case)
        actor = auth.current()
        caller = None
        if self.contacts is not None and actor.has_role(*PERSONAL_DATA_ROLES) \
                and not case.report.startswith("units/"):
            found = self.contacts.caller_of(case, reference=f"{case.name}:exportEido {actor.subject}")
            caller = eido.Caller(name=found.name, phone=found.phone) if found is not None else None
        doc = eido.document(case, issuer=self.eido_issuer, stations=eido_stations(), caller=caller)
        return httpbody_pb2.HttpBody(content_type=eido.CONTENT_TYPE, data=eido.to_json(doc))

    def _in_scope_or_granted(self, name: str, case: domain.DispatchCase) -> None:
        """A case outside the caller's jurisdiction is read only under an active grant of theirs
        that opens its station (权随案走); the use is written on the grant's case timeline."""
        try:
            in_scope(name, *case.stations)
        except NotFound:
            if not self._granted(frozenset({case.station_id}), name):
                raise

    def _granted(self, stations: frozenset[str], what: str) -> bool:
        actor = auth.current()
        if not actor.subject or not stations:
            return False
        with self.rt.transaction(actor) as uow:
            return handlers.use_grant(uow, stations=stations, what=what) is not None

    def ListCases(self, request: pb.ListCasesRequest, context) -> pb.ListCasesResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        if request.report and not request.report.startswith("workOrders/"):
            # A 110 report, or the 12345 work order a case was opened for (先期处置).
            resource_id(request.report, "reports", v, "report")
        elif request.report:
            resource_id(request.report, "workOrders", v, "report")
        v.raise_if_any()
        try:
            stations = current_jurisdiction().stations_for(request.station_id)
        except PermissionDenied:
            if not self._granted(frozenset({request.station_id}), f"{request.station_id}的警情列表"):
                raise
            stations = frozenset({request.station_id})
        min_level = enum_name(pb.CaseLevel, request.min_level, "CASE_LEVEL_")
        with read_snapshot(self.rt.engine) as conn:
            page = queries.cases_page(
                conn, size=size, after=after, station_ids=stations,
                status=enum_name(pb.CaseStatus, request.status, "CASE_STATUS_"), report=request.report,
                levels=domain.levels_from(min_level) if min_level else None, flagged=request.follow_up_flagged)
        return pb.ListCasesResponse(cases=[mapping.case_to_pb(c) for c in page.items],
                                    next_page_token=page.next_page_token)

    def RecommendUnits(self, request: pb.RecommendUnitsRequest, context) -> pb.RecommendUnitsResponse:
        v = Violations()
        case_id = resource_id(request.name, "cases", v)
        v.check(0 <= request.max_results <= 50, "max_results", "must be between 0 and 50")
        v.raise_if_any()
        at = self.rt.clock()
        with read_snapshot(self.rt.engine) as conn:
            case = queries.case(conn, case_id, whole=False)
            if case is None:
                raise NotFound(request.name)
            in_scope(request.name, *case.stations)
            picks, _gaps = queries.recommendations(conn, self.ctx, case, at)
        if request.max_results:
            picks = picks[:request.max_results]
        return pb.RecommendUnitsResponse(recommendations=[mapping.recommendation_to_pb(p) for p in picks])

    def OfferCase(self, request: pb.OfferCaseRequest, context) -> pb.Assignment:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        unit_id = resource_id(request.unit, "units", v, "unit")
        v.check(len(request.reason) <= 500, "reason", "at most 500 characters")
        v.raise_if_any()
        role = enum_name(pb.AssignmentRole, request.role, "ASSIGNMENT_ROLE_")
        return self.rt.idempotent_work(
            "OfferCase", request, pb.Assignment,
            lambda uow: handlers.offer_by_hand(uow, case_id=case_id, unit_id=unit_id, role=role,
                                               reason=request.reason),
            actor=actor, respond=mapping.case_assignment_to_pb)

    def CloseCase(self, request: pb.CloseCaseRequest, context) -> pb.DispatchCase:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        outcome = enum_name(pb.Outcome, request.outcome, "OUTCOME_") if request.outcome in pb.Outcome.values() else ""
        v.check(outcome in domain.OUTCOME_LABELS, "outcome",
                f"is required: one of {', '.join(domain.OUTCOME_LABELS)}")
        notes = request.notes.strip()
        v.check(len(notes) <= MAX_NOTES, "notes", f"at most {MAX_NOTES} characters")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "CloseCase", request, pb.DispatchCase,
            lambda uow: handlers.close_case(uow, case_id=case_id, outcome=outcome, notes=notes),
            actor=actor, respond=mapping.case_to_pb)

    def CancelCase(self, request: pb.CancelCaseRequest, context) -> pb.DispatchCase:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        reason = enum_name(pb.CancelReason, request.reason, "CANCEL_REASON_") \
            if request.reason in pb.CancelReason.values() else ""
        v.check(reason in domain.CANCEL_REASONS, "reason", f"is required: one of {', '.join(domain.CANCEL_REASONS)}")
        notes = request.notes.strip()
        if reason in ("FALSE_ALARM", "HANDLED_BY_PHONE"):
            v.require(notes, "notes", "is required for this reason: what was found or said")
        v.check(len(notes) <= MAX_NOTES, "notes", f"at most {MAX_NOTES} characters")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "CancelCase", request, pb.DispatchCase,
            lambda uow: handlers.cancel_case(uow, case_id=case_id, reason=reason, notes=notes),
            actor=actor, respond=mapping.case_to_pb)

    # -- assignments ---------------------------------------------------------
    def GetAssignment(self, request: pb.GetAssignmentRequest, context) -> pb.Assignment:
        v = Violations()
        case_id, aid = assignment_id(request.name, v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            case = queries.case(conn, case_id, whole=False)
        a = next((x for x in case.assignments if x.id == aid), None) if case else None
        if a is None:
            raise NotFound(request.name)
        self._in_scope_or_granted(request.name, case)
        return mapping.assignment_to_pb(a, case)

    def _mutation(self, method: str, request, check, work):
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id, aid = assignment_id(request.name, v)
        check(v)
        v.raise_if_any()
        return self.rt.idempotent_work(method, request, pb.Assignment,
                                       lambda uow: work(uow, case_id=case_id, assignment_id=aid),
                                       actor=actor, respond=mapping.case_assignment_to_pb)

    def AcceptAssignment(self, request: pb.AcceptAssignmentRequest, context) -> pb.Assignment:
        return self._mutation("AcceptAssignment", request, lambda v: None, handlers.accept)

    def DeclineAssignment(self, request: pb.DeclineAssignmentRequest, context) -> pb.Assignment:
        def check(v):
            v.check(len(request.reason) <= 500, "reason", "at most 500 characters")

        return self._mutation("DeclineAssignment", request, check,
                              lambda uow, **kw: handlers.decline(uow, reason=request.reason, **kw))

    def AdvanceAssignment(self, request: pb.AdvanceAssignmentRequest, context) -> pb.Assignment:
        target = enum_name(pb.AssignmentState, request.state, "ASSIGNMENT_STATE_")

        def check(v):
            v.check(target in ADVANCE_TARGETS, "state", "must be EN_ROUTE, ON_SCENE or CLEARED")

        return self._mutation("AdvanceAssignment", request, check,
                              lambda uow, **kw: handlers.advance(uow, target=target, **kw))

    def ReportBack(self, request: pb.ReportBackRequest, context) -> pb.Assignment:
        outcome = enum_name(pb.Outcome, request.outcome, "OUTCOME_")

        def check(v):
            v.require(outcome, "outcome", "is required (CRIMINAL_CASE, MEDIATED, NO_ISSUE_FOUND, ...)")
            v.check(len(request.notes) <= MAX_NOTES, "notes", f"at most {MAX_NOTES} characters")
            check_evidence(request.evidence, v)

        return self._mutation("ReportBack", request, check, lambda uow, **kw: handlers.report_back(
            uow, outcome=outcome, notes=request.notes, evidence=mapping.evidence_from_pb(request.evidence), **kw))

    def UploadEvidence(self, request: pb.UploadEvidenceRequest, context) -> pb.Evidence:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id, aid = assignment_id(request.parent, v, "parent")
        for f, problem in domain.evidence.problems(request.content_type, request.content, request.file_name):
            v.add(f, problem)
        v.raise_if_any()
        return self.rt.idempotent_work(
            "UploadEvidence", request, pb.Evidence,
            lambda uow: handlers.upload_evidence(uow, case_id=case_id, assignment_id=aid,
                                                 content_type=request.content_type, content=request.content,
                                                 file_name=request.file_name),
            actor=actor, respond=mapping.evidence_to_pb)

    def DownloadEvidence(self, request: pb.DownloadEvidenceRequest, context):
        """The bytes, read as GetCase reads the case (jurisdiction or grant); else NOT_FOUND."""
        m = domain.evidence.NAME.match(request.name or "")
        if not m:
            v = Violations()
            v.add("name", "is required, as cases/{case}/assignments/{assignment}/evidence/{evidence}"
                  if not request.name else "must look like cases/{case}/assignments/{assignment}/evidence/{evidence}")
            v.raise_if_any()
        case_id, aid, eid = m.groups()
        with read_snapshot(self.rt.engine) as conn:
            case = queries.case(conn, case_id, whole=False)
            found = queries.evidence_file(conn, case_id, aid, eid) if case is not None else None
        if found is None:
            raise NotFound(request.name)
        self._in_scope_or_granted(request.name, case)
        e, content = found
        return httpbody_pb2.HttpBody(content_type=e.content_type, data=content)

    def WatchAssignments(self, request: pb.WatchAssignmentsRequest, context):
        actor = auth.current()
        v = Violations()
        unit_id = resource_id(request.unit, "units", v, "unit")
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            unit = queries.unit(conn, unit_id, at=self.rt.clock())
        if unit is None:
            raise NotFound(request.unit)
        in_scope(request.unit, unit.station_id)
        if not unit.may_be_acted_for_by(actor):
            raise PermissionDenied(f"only an officer of {request.unit} or a dispatcher may watch its assignments",
                                   reason="NOT_ASSIGNED_OFFICER")
        hub = self.ctx.hub
        q = hub.subscribe(unit_id)
        try:
            # Subscribed first, then the snapshot: nothing committed in between is missed,
            # and versions drop whatever the snapshot already covers.
            seen: dict[str, int] = {}
            with read_snapshot(self.rt.engine) as conn:
                snapshot = [mapping.assignment_to_pb(a, case)
                            for case, a in queries.active_assignments_of_unit(conn, unit_id)]
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
            hub.unsubscribe(unit_id, q)

    # -- units and roster ------------------------------------------------------
    def GetUnit(self, request: pb.GetUnitRequest, context) -> pb.Unit:
        unit_id = name_id(request.name, "units")
        at = self.rt.clock()
        with read_snapshot(self.rt.engine) as conn:
            unit = queries.unit(conn, unit_id, at=at, stale_before=self.ctx.stale_before(at), timeline=True)
        if unit is None:
            raise NotFound(request.name)
        in_scope(request.name, unit.station_id)
        return mapping.unit_with_timeline_to_pb(unit)

    def SetUnitStatus(self, request: pb.SetUnitStatusRequest, context) -> pb.Unit:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        unit_id = resource_id(request.name, "units", v)
        status = enum_name(pb.UnitStatus, request.status, "UNIT_STATUS_") if request.status in pb.UnitStatus.values() \
            else ""
        v.check(status in domain.REPORTABLE_STATUSES, "status", f"must be one of {', '.join(domain.REPORTABLE_STATUSES)}")
        reason = request.reason.strip()
        v.check(len(reason) <= MAX_REASON, "reason", f"at most {MAX_REASON} characters")
        if status == "OUT_OF_SERVICE":
            v.require(reason, "reason", "is required: why the unit is out of service")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "SetUnitStatus", request, pb.Unit,
            lambda uow: handlers.set_unit_status(uow, unit_id=unit_id, status=status, reason=reason),
            actor=actor, respond=mapping.unit_to_pb)

    def WatchUnits(self, request: pb.WatchUnitsRequest, context):
        v = Violations()
        for i, station in enumerate(request.station_ids):
            v.check(bool(STATION_ID.match(station)), f"station_ids[{i}]", "must be a station id like S07")
        box = check_box(request.bounds, v) if request.HasField("bounds") else None
        v.check(request.after_sequence >= 0, "after_sequence", "must not be negative")
        v.raise_if_any()
        stations = current_jurisdiction().stations_for(request.station_ids, "station_ids")
        after = request.after_sequence
        if not after:
            at = self.rt.clock()
            with read_snapshot(self.rt.engine) as conn:
                after = queries.last_unit_change(conn)
                found = queries.units_on_duty(conn, box=box, station_ids=stations, at=at,
                                              stale_before=self.ctx.stale_before(at))
            for u in found:
                yield pb.UnitChange(action="SNAPSHOT", unit=mapping.unit_to_pb(u), sequence=after)
        quiet = 0.0
        while context.is_active() and not self.rt.feed.closed:
            at = self.rt.clock()
            with read_snapshot(self.rt.engine) as conn:
                changes = queries.unit_changes(conn, after=after, station_ids=stations, box=box, at=at,
                                               stale_before=self.ctx.stale_before(at))
            for seq, recorded, u in changes:
                after = seq
                yield pb.UnitChange(action="CHANGED", unit=mapping.unit_to_pb(u), sequence=seq,
                                    record_time=to_pb(recorded))
            if changes:
                quiet = 0.0
                continue
            quiet += UNIT_POLL_SECONDS
            if quiet >= HEARTBEAT_SECONDS:
                quiet = 0.0
                yield pb.UnitChange(action="HEARTBEAT", sequence=after)
            self.rt.feed.wait_closed(UNIT_POLL_SECONDS)

    def ListUnits(self, request: pb.ListUnitsRequest, context) -> pb.ListUnitsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("id",))
        v.raise_if_any()
        stations = current_jurisdiction().stations_for(request.station_id)
        at = self.rt.clock()
        with read_snapshot(self.rt.engine) as conn:
            page = queries.units_page(
                conn, size=size, after=token["id"] if token else None, at=at,
                stale_before=self.ctx.stale_before(at), station_ids=stations,
                kind=enum_name(pb.UnitKind, request.kind, "UNIT_KIND_"),
                status=enum_name(pb.UnitStatus, request.status, "UNIT_STATUS_"))
        return pb.ListUnitsResponse(units=[mapping.unit_to_pb(u) for u in page.items],
                                    next_page_token=page.next_page_token)

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
        if "call_sign" in paths and v.require(u.call_sign.strip(), "unit.call_sign"):
            v.check(len(u.call_sign) <= 30, "unit.call_sign", "at most 30 characters")
        if "kind" in paths:
            v.check(u.kind != pb.UNIT_KIND_UNSPECIFIED, "unit.kind", "is required")
        if "station_id" in paths and v.require(u.station_id, "unit.station_id"):
            v.check(len(u.station_id) <= 20, "unit.station_id", "at most 20 characters")
        if "skills" in paths:
            for i, s in enumerate(u.skills):
                v.check(bool(SKILL.match(s)), f"unit.skills[{i}]", "must be an UPPER_SNAKE_CASE skill code")
        if "vehicle" in paths:
            v.check(len(u.vehicle) <= 30, "unit.vehicle", "at most 30 characters")
        if "officers" in paths:
            for i, o in enumerate(u.officers):
                v.require(o.officer_id, f"unit.officers[{i}].officer_id")
                v.require(o.display_name, f"unit.officers[{i}].display_name")
        if "grid_ids" in paths:
            v.check(len(u.grid_ids) <= 20, "unit.grid_ids", "at most 20 grids")
            for i, g in enumerate(u.grid_ids):
                v.check(bool(GRID_ID.match(g)), f"unit.grid_ids[{i}]", "must be a grid id like S07-G03")
        v.raise_if_any()
        values = mapping.unit_values_from_pb(u, paths)
        return self.rt.idempotent_work(
            "UpdateUnit", request, pb.Unit,
            lambda uow: handlers.update_unit(uow, unit_id=unit_id, values=values, paths=paths),
            actor=actor, respond=mapping.unit_to_pb)

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
        return self.rt.idempotent_work(
            "CreateShift", request, pb.Shift,
            lambda uow: handlers.create_shift(uow, unit_id=unit_id, start=start, end=end, area=request.shift.area),
            actor=actor, respond=mapping.shift_to_pb)

    def ListShifts(self, request: pb.ListShiftsRequest, context) -> pb.ListShiftsResponse:
        v = Violations()
        unit_id = resource_id(request.parent, "units", v, "parent")
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            unit = queries.unit(conn, unit_id, at=self.rt.clock())
            if unit is None:
                raise NotFound(request.parent)
            in_scope(request.parent, unit.station_id)
            page = queries.shifts_page(conn, unit_id, size=size, after=after)
        return pb.ListShiftsResponse(shifts=[mapping.shift_to_pb(s) for s in page.items],
                                     next_page_token=page.next_page_token)

    def ReportPositions(self, request_iterator, context) -> pb.ReportPositionsResponse:
        """Each fix is checked on its own: a bad one is counted as rejected, the stream goes on."""
        actor = auth.current()
        accepted = rejected = 0
        known: dict[str, tuple[set[str], str] | None] = {}
        for req in request_iterator:
            at = self.rt.clock()
            fix = mapping.position_fix_from_pb(req, at)
            ok = fix.plausible(at)
            if ok:
                with self.rt.transaction(actor) as uow:
                    ok = handlers.report_position(uow, fix=fix, known=known)
            accepted, rejected = (accepted + 1, rejected) if ok else (accepted, rejected + 1)
        return pb.ReportPositionsResponse(accepted=accepted, rejected=rejected)

    def ReportPosition(self, request: pb.ReportPositionRequest, context) -> pb.ReportPositionResponse:
        """One fix, with the stream's checks answered as errors naming the fields."""
        actor = auth.current()
        v = Violations()
        resource_id(request.unit, "units", v, "unit")
        at = self.rt.clock()
        fix = mapping.position_fix_from_pb(request, at)
        if v.require(request.HasField("position"), "position"):
            ok = v.check(-180 <= fix.lon <= 180, "position.longitude", "must be -180 to 180")
            ok &= v.check(-90 <= fix.lat <= 90, "position.latitude", "must be -90 to 90")
            if ok:
                v.check((fix.lon, fix.lat) != (0.0, 0.0), "position", "must not be 0,0 (no fix)")
        v.check(request.accuracy_m >= 0, "accuracy_m", "must not be negative")
        v.check((fix.fix_time - at).total_seconds() <= domain.MAX_FIX_AHEAD_S, "fix_time", "must not be in the future")
        v.raise_if_any()
        with self.rt.transaction(actor) as uow:
            applied = handlers.report_one_position(uow, fix=fix)
        return pb.ReportPositionResponse(applied=applied)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)

    # -- the anti-fraud hand-off (紧急止付) ------------------------------------------------------
    def RequestStopPayment(self, request: pb.RequestStopPaymentRequest, context) -> pb.StopPayment:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        if v.require(request.bank.strip(), "bank"):
            v.check(len(request.bank) <= 40, "bank", "must be at most 40 characters")
        v.check(bool(ACCOUNT.match(request.victim_account)), "victim_account", "must be 6-32 digits")
        v.check(0 <= request.amount_fen <= MAX_AMOUNT_FEN, "amount_fen",
                "must be 0 (unknown) or a positive amount in fen")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "RequestStopPayment", request, pb.StopPayment,
            lambda uow: handlers.request_stop_payment(uow, case_id=case_id, bank=request.bank.strip(),
                                                      victim_account=request.victim_account,
                                                      amount_fen=request.amount_fen),
            actor=actor, respond=mapping.stop_payment_to_pb)

    # -- levels and the command centres' view (同步同息感知) ------------------------------------------
    def EscalateCase(self, request: pb.EscalateCaseRequest, context) -> pb.DispatchCase:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        level = enum_name(pb.CaseLevel, request.level, "CASE_LEVEL_") if request.level in pb.CaseLevel.values() \
            else None
        v.check(bool(level), "level", "must be CASE_LEVEL_STATION, _COUNTY, _CITY or _PROVINCE")
        if v.require(request.reason.strip(), "reason", "is required: why the level changes"):
            v.check(len(request.reason) <= MAX_REASON, "reason", f"must be at most {MAX_REASON} characters")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "EscalateCase", request, pb.DispatchCase,
            lambda uow: handlers.change_level(uow, case_id=case_id, level=level, reason=request.reason.strip()),
            actor=actor, respond=mapping.case_to_pb)

    def WatchCases(self, request: pb.WatchCasesRequest, context):
        v = Violations()
        v.check(request.after_sequence >= 0, "after_sequence", "must be 0 or more")
        v.check(request.min_level in pb.CaseLevel.values(), "min_level", "is not a case level")
        for i, station in enumerate(request.station_ids):
            v.check(bool(STATION_ID.match(station)), f"station_ids[{i}]", "must be a station id like S07")
        box = check_box(request.bounds, v) if request.HasField("bounds") else None
        v.raise_if_any()
        stations = current_jurisdiction().stations_for(request.station_ids, "station_ids")
        levels = domain.levels_from(enum_name(pb.CaseLevel, request.min_level, "CASE_LEVEL_"))
        level_values = {enum_value(pb.CaseLevel, lv, "CASE_LEVEL_") for lv in levels}
        after = request.after_sequence
        if after == 0:
            after = self.rt.feed.latest_sequence()
            with read_snapshot(self.rt.engine) as conn:
                found = queries.active_cases(conn, box=box, station_ids=stations, levels=levels)
            for case in found:
                yield pb.CaseChange(dispatch_case=mapping.case_to_pb(case), action="SNAPSHOT", in_view=True)
        # Other stations' cases this watcher's units help with (跨所协作) are in view too: known at the
        # start, then followed through the assignment changes.
        helped: set[str] = set()
        if stations is not None:
            with read_snapshot(self.rt.engine) as conn:
                helped = queries.helped_cases(conn, stations)
        types = sorted(CASE_EVENTS) + ([ASSIGNMENT_CHANGED] if stations is not None else [])
        feed_request = events_pb2.StreamEventsRequest(after_sequence=after, types=types)
        for event in self.rt.feed.stream(feed_request, context):
            if event.type == ASSIGNMENT_CHANGED:
                change = pb.AssignmentChanged()
                event.payload.Unpack(change)
                if change.assignment.station_id in stations:
                    if change.assignment.state in ACTIVE_ASSIGNMENT_STATES:
                        helped.add(change.case_name)
                    else:
                        helped.discard(change.case_name)
                continue
            body = CASE_EVENTS[event.type]()
            event.payload.Unpack(body)
            case = body.dispatch_case
            view = domain.view_of(case.level, getattr(body, "previous_level", 0), level_values)
            point = (case.location.point.longitude, case.location.point.latitude) \
                if case.location.HasField("point") else None
            # Its own station's, a border case shared with it (边界警情) or one its units help with.
            shared = stations is not None and bool(stations.intersection(case.shared_station_ids))
            in_area = domain.in_area(case.station_id, point, stations, box) or (
                (shared or case.name in helped) and domain.in_area(case.station_id, point, None, box))
            if view is None or not in_area:
                continue
            yield pb.CaseChange(dispatch_case=case, action=getattr(body, "action", "") or "CREATED", in_view=view,
                                sequence=event.sequence, changed_fields=getattr(body, "changed_fields", []),
                                new_entries=body.new_entries)

    # -- the situation map (一张图) ------------------------------------------------------------------
    def GetSituation(self, request: pb.GetSituationRequest, context) -> pb.Situation:
        v = Violations()
        box = check_box(request.bounds, v) if request.HasField("bounds") else None
        if request.station_id:
            v.check(bool(STATION_ID.match(request.station_id)), "station_id", "must be a station id like S07")
        elif not request.HasField("bounds"):
            v.add("bounds", "is required unless station_id is given")
        v.raise_if_any()
        stations = current_jurisdiction().stations_for(request.station_id)
        at = self.rt.clock()
        # Alerts first, outside the read snapshot (an outbound call never holds a connection).
        in_view = self._situation_alerts(box, request.station_id, stations)
        with read_snapshot(self.rt.engine) as conn:
            found = queries.situation(conn, box=box, station_ids=stations, at=at,
                                      stale_before=self.ctx.stale_before(at))
        return mapping.situation_to_pb(found, in_view)

    def _situation_alerts(self, box, station_id: str, stations: frozenset[str] | None):
        """The active alerts of the view that the caller's jurisdiction covers (alerts answers this
        service's credential with every station's); None when alerts is away or slow."""
        source = self.ctx.situation_alerts
        found = source.active(box=box, station_id=station_id) if source is not None else None
        if found is None or stations is None:
            return found
        mine = [a for a in found.alerts
                if a.area.station_id in stations or stations.intersection(a.area.shared_station_ids)]
        return clients.AlertsFound(mine, found.truncated)

    # -- citizen follow-up (回访) and statistics ----------------------------------------------------------
    def RateCase(self, request: pb.RateCaseRequest, context) -> pb.DispatchCase:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        known = request.satisfaction in common_pb2.Satisfaction.values()
        satisfaction = enum_name(common_pb2.Satisfaction, request.satisfaction, "SATISFACTION_") if known else ""
        v.check(bool(satisfaction), "satisfaction", "must be SATISFIED, BASICALLY_SATISFIED or UNSATISFIED")
        comment = request.comment.strip()
        v.check(len(comment) <= MAX_COMMENT, "comment", f"must be at most {MAX_COMMENT} characters")
        if satisfaction == "UNSATISFIED":
            v.require(comment, "comment", "is required when unsatisfied: what the citizen said")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "RateCase", request, pb.DispatchCase,
            lambda uow: handlers.rate_case(uow, case_id=case_id, satisfaction=satisfaction, comment=comment),
            actor=actor, respond=mapping.case_to_pb)

    def ReviewFollowUp(self, request: pb.ReviewFollowUpRequest, context) -> pb.DispatchCase:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        decision = {pb.REVIEW_DECISION_REOPEN: "REOPEN", pb.REVIEW_DECISION_ANSWER: "ANSWER"}.get(request.decision, "")
        v.require(decision, "decision", "is required: REOPEN or ANSWER")
        answer = request.answer.strip()
        if v.require(answer, "answer", "is required: the answer to the citizen, or what must be done again"):
            v.check(len(answer) <= 2000, "answer", "at most 2000 characters")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "ReviewFollowUp", request, pb.DispatchCase,
            lambda uow: handlers.review_follow_up(uow, case_id=case_id, decision=decision, answer=answer),
            actor=actor, respond=mapping.case_to_pb)

    def GetFollowUpStats(self, request: pb.GetFollowUpStatsRequest, context) -> pb.FollowUpStats:
        stations, start, end = self._stats_scope(request)
        with read_snapshot(self.rt.engine) as conn:
            found = queries.follow_up_stats(conn, station_ids=stations, start=start, end=end)
        return mapping.follow_up_stats_to_pb(found)

    def GetResponseCircleStats(self, request: pb.GetResponseCircleStatsRequest, context) -> pb.ResponseCircleStats:
        stations, start, end = self._stats_scope(request)
        with read_snapshot(self.rt.engine) as conn:
            found = queries.response_circle_stats(conn, station_ids=stations, start=start, end=end,
                                                  now=self.rt.clock())
        return mapping.response_circles_to_pb(found)

    def _stats_scope(self, request):
        """(stations, start, end) of a statistics request, checked, within the caller's jurisdiction."""
        v = Violations()
        if request.station_id:
            v.check(bool(STATION_ID.match(request.station_id)), "station_id", "must be a station id like S07")
        start = from_pb(request.start_time) if request.HasField("start_time") else None
        end = from_pb(request.end_time) if request.HasField("end_time") else None
        if start and end:
            v.check(start < end, "end_time", "must be after start_time")
        v.raise_if_any()
        return current_jurisdiction().stations_for(request.station_id), start, end

    # -- access grants bound to a case (权随案走) -------------------------------------------------------
    def RequestAccessGrant(self, request: pb.RequestAccessGrantRequest, context) -> pb.AccessGrant:
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.parent, "cases", v, "parent")
        scope = enum_name(pb.AccessScope, request.scope, "ACCESS_SCOPE_") if request.scope in \
            pb.AccessScope.values() else ""
        v.check(scope in grant_domain.SCOPES, "scope", "must be STATION_CASES")
        stations = list(request.station_ids)
        if v.require(stations, "station_ids", "is required: the stations whose cases the grant opens"):
            v.check(len(stations) <= grant_domain.MAX_STATIONS, "station_ids",
                    f"at most {grant_domain.MAX_STATIONS} stations")
            for i, station in enumerate(stations):
                v.check(org().knows_station(station), f"station_ids[{i}]", "is not a station of this city")
        reason = request.reason.strip()
        if v.require(reason, "reason", "is required: why the case needs it"):
            v.check(len(reason) <= MAX_REASON, "reason", f"at most {MAX_REASON} characters")
        v.check(0 <= request.hours <= grant_domain.MAX_HOURS, "hours",
                f"must be 1 to {grant_domain.MAX_HOURS} (0 for {grant_domain.DEFAULT_HOURS})")
        v.raise_if_any()
        return self.rt.idempotent_work(
            "RequestAccessGrant", request, pb.AccessGrant,
            lambda uow: handlers.request_grant(uow, case_id=case_id, scope=scope, station_ids=stations, reason=reason,
                                               hours=request.hours or grant_domain.DEFAULT_HOURS),
            actor=actor, respond=mapping.grant_to_pb)

    def _grant_change(self, method: str, request, work, *, reason_required: bool = False, reason: str = ""):
        actor = auth.current()
        v = Violations()
        v.request_id(request.request_id)
        ids = grant_id(request.name, v)
        text = reason.strip()
        if reason_required:
            v.require(text, "reason", "is required")
        v.check(len(text) <= MAX_REASON, "reason" if reason_required or method != "ApproveAccessGrant" else "comment",
                f"at most {MAX_REASON} characters")
        v.raise_if_any()
        return self.rt.idempotent_work(method, request, pb.AccessGrant,
                                       lambda uow: work(uow, case_id=ids[0], grant_id=ids[1], reason=text),
                                       actor=actor, respond=mapping.grant_to_pb)

    def ApproveAccessGrant(self, request: pb.ApproveAccessGrantRequest, context) -> pb.AccessGrant:
        return self._grant_change("ApproveAccessGrant", request,
                                  lambda uow, **kw: handlers.decide_grant(uow, approve=True, **kw),
                                  reason=request.comment)

    def DenyAccessGrant(self, request: pb.DenyAccessGrantRequest, context) -> pb.AccessGrant:
        return self._grant_change("DenyAccessGrant", request,
                                  lambda uow, **kw: handlers.decide_grant(uow, approve=False, **kw),
                                  reason_required=True, reason=request.reason)

    def RevokeAccessGrant(self, request: pb.RevokeAccessGrantRequest, context) -> pb.AccessGrant:
        return self._grant_change("RevokeAccessGrant", request, handlers.revoke_grant, reason=request.reason)

    def ListAccessGrants(self, request: pb.ListAccessGrantsRequest, context) -> pb.ListAccessGrantsResponse:
        actor = auth.current()
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        case_id = resource_id(request.case, "cases", v, "case") if request.case else ""
        if request.station_id:
            v.check(bool(STATION_ID.match(request.station_id)), "station_id", "must be a station id like S07")
        v.check(len(request.grantee) <= 128, "grantee", "at most 128 characters")
        state = enum_name(pb.AccessGrantState, request.state, "ACCESS_GRANT_STATE_") \
            if request.state in pb.AccessGrantState.values() else None
        v.check(state is not None, "state", "must be a known AccessGrantState")
        v.raise_if_any()
        grantee = request.grantee
        if not actor.has_role(*GRANT_OVERSEERS):
            # An officer sees the grants they asked for, nobody else's.
            if grantee and grantee != actor.subject:
                raise PermissionDenied("an officer lists only their own access grants", reason="OTHERS_GRANTS")
            grantee = actor.subject
        stations = current_jurisdiction().stations_for(request.station_id)
        with read_snapshot(self.rt.engine) as conn:
            page = queries.grants_page(conn, size=size, after=after, station_ids=stations, grantee=grantee,
                                       case_id=case_id, state=state or "")
        return pb.ListAccessGrantsResponse(access_grants=[mapping.grant_to_pb(g) for g in page.items],
                                           next_page_token=page.next_page_token)

    def GetAccessGrantStats(self, request: pb.GetAccessGrantStatsRequest, context) -> pb.AccessGrantStats:
        stations, start, end = self._stats_scope(request)
        with read_snapshot(self.rt.engine) as conn:
            found = queries.grant_stats(conn, station_ids=stations, start=start, end=end)
        return mapping.grant_stats_to_pb(found)
