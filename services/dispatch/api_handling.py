"""The DispatchService RPCs of case handling beyond the first dispatch: the
anti-fraud hand-off (紧急止付), escalation and the command centres' view
(同步同息感知), the situation map (一张图), citizen follow-up (回访) and
response circles. Mixed into `DispatchServicer`; proto -> handler -> proto."""
from __future__ import annotations

import re

from smart110.common.v1 import common_pb2, events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime import auth
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name, enum_value
from services.runtime.errors import PermissionDenied
from services.runtime.timeutil import from_pb
from services.runtime.validation import Violations, resource_id

from . import antifraud, circles, escalation, followup, situation
from .caseinfo import fill
from .mapping import case_to_pb

STOP_PAYMENT_ROLES = ("dispatcher", "commander", "call_taker", "station_chief")
ACCOUNT = re.compile(r"^[0-9]{6,32}$")
STATION_ID = re.compile(r"^S[0-9]{2,4}$")
MAX_REASON = 500
SITUATION_ROLES = ("call_taker", "dispatcher", "commander", "station_chief", "supervisor", "service")
WATCH_ROLES = escalation.WATCH_ROLES + ("service",)
CASE_EVENTS = {"dispatch.CaseCreated": pb.CaseCreated, "dispatch.CaseUpdated": pb.CaseUpdated}
MAX_AMOUNT_FEN = 10**13


def actor() -> tuple[str, list[str]]:
    who = auth.current()
    return who.subject or "anonymous", sorted(who.roles)


class HandlingServicer:
    """Needs `self.rt` (the service's Runtime) and `self.d` (its Dispatch context)."""

    def RequestStopPayment(self, request: pb.RequestStopPaymentRequest, context) -> pb.StopPayment:
        auth.current().require_role(*STOP_PAYMENT_ROLES)
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        if v.require(request.bank.strip(), "bank"):
            v.check(len(request.bank) <= 40, "bank", "must be at most 40 characters")
        v.check(bool(ACCOUNT.match(request.victim_account)), "victim_account", "must be 6-32 digits")
        v.check(0 <= request.amount_fen <= MAX_AMOUNT_FEN, "amount_fen", "must be 0 (unknown) or a positive amount in fen")
        v.raise_if_any()
        who, roles = actor()
        return self.rt.idempotent(
            "RequestStopPayment", request, pb.StopPayment,
            lambda conn: antifraud.request_stop_payment(
                conn, outbox=self.rt.outbox, case_id=case_id, bank=request.bank.strip(),
                victim_account=request.victim_account, amount=request.amount_fen, actor=who, roles=roles,
                now=self.d.now()))

    def EscalateCase(self, request: pb.EscalateCaseRequest, context) -> pb.DispatchCase:
        who = auth.current()
        who.require_role(*escalation.ESCALATE_ROLES)
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        level = enum_name(pb.CaseLevel, request.level, "CASE_LEVEL_") if request.level in pb.CaseLevel.values() \
            else None
        v.check(bool(level), "level", "must be CASE_LEVEL_STATION, _COUNTY, _CITY or _PROVINCE")
        if v.require(request.reason.strip(), "reason", "is required: why the level changes"):
            v.check(len(request.reason) <= MAX_REASON, "reason", f"must be at most {MAX_REASON} characters")
        v.raise_if_any()
        subject, roles = actor()
        return self.rt.idempotent(
            "EscalateCase", request, pb.DispatchCase,
            lambda conn: escalation.change_level(
                conn, outbox=self.rt.outbox, case_id=case_id, level=level, reason=request.reason.strip(),
                actor=subject, roles=roles, station=who.station, now=self.d.now()))

    def WatchCases(self, request: pb.WatchCasesRequest, context):
        who = auth.current()
        who.require_role(*WATCH_ROLES)
        v = Violations()
        v.check(request.after_sequence >= 0, "after_sequence", "must be 0 or more")
        v.check(request.min_level in pb.CaseLevel.values(), "min_level", "is not a case level")
        for i, station in enumerate(request.station_ids):
            v.check(bool(STATION_ID.match(station)), f"station_ids[{i}]", "must be a station id like S07")
        box = situation.check_box(request.bounds, v) if request.HasField("bounds") else None
        v.raise_if_any()
        stations = set(request.station_ids)
        if not who.has_role("commander", "dispatcher", "supervisor", "service"):
            # A station chief follows their own station.
            if not who.station or stations - {who.station}:
                raise PermissionDenied(f"a station chief of {who.station or 'no station'} sees only that station",
                                       reason="OTHER_STATION")
            stations = {who.station}
        levels = escalation.levels_from(enum_name(pb.CaseLevel, request.min_level, "CASE_LEVEL_"))
        level_values = {enum_value(pb.CaseLevel, lv, "CASE_LEVEL_") for lv in levels}
        bounds = request.bounds if box is not None else None
        after = request.after_sequence
        if after == 0:
            after = self.rt.feed.latest_sequence()
            with read_snapshot(self.rt.engine) as conn:
                found = situation.active_cases(conn, box=box, station_ids=stations, levels=levels)
                snapshot = fill(conn, [case_to_pb(c) for c in found])
            for msg in snapshot:
                yield pb.CaseChange(dispatch_case=msg, action="SNAPSHOT", in_view=True)
        feed_request = events_pb2.StreamEventsRequest(after_sequence=after, types=sorted(CASE_EVENTS))
        for event in self.rt.feed.stream(feed_request, context):
            body = CASE_EVENTS[event.type]()
            event.payload.Unpack(body)
            action = getattr(body, "action", "") or "CREATED"
            previous = getattr(body, "previous_level", 0)
            view = escalation.view_of(body.dispatch_case, previous, level_values)
            if view is None or not escalation.in_area(body.dispatch_case, stations, bounds):
                continue
            yield pb.CaseChange(dispatch_case=body.dispatch_case, action=action, in_view=view,
                                sequence=event.sequence, changed_fields=getattr(body, "changed_fields", []),
                                new_entries=body.new_entries)

    def GetSituation(self, request: pb.GetSituationRequest, context) -> pb.Situation:
        auth.current().require_role(*SITUATION_ROLES)
        v = Violations()
        box = situation.check_box(request.bounds, v) if request.HasField("bounds") else None
        if request.station_id:
            v.check(bool(STATION_ID.match(request.station_id)), "station_id", "must be a station id like S07")
        elif not request.HasField("bounds"):
            v.add("bounds", "is required unless station_id is given")
        v.raise_if_any()
        at = self.d.now()
        with read_snapshot(self.rt.engine) as conn:
            return situation.situation(conn, box=box, station_id=request.station_id, at=at,
                                       stale_before=self.d.stale_before(at))

    def RateCase(self, request: pb.RateCaseRequest, context) -> pb.DispatchCase:
        auth.current().require_role(*followup.RATE_ROLES)
        v = Violations()
        v.request_id(request.request_id)
        case_id = resource_id(request.name, "cases", v)
        known = request.satisfaction in common_pb2.Satisfaction.values()
        satisfaction = enum_name(common_pb2.Satisfaction, request.satisfaction, "SATISFACTION_") if known else ""
        v.check(bool(satisfaction), "satisfaction", "must be SATISFIED, BASICALLY_SATISFIED or UNSATISFIED")
        comment = request.comment.strip()
        v.check(len(comment) <= followup.MAX_COMMENT, "comment", f"must be at most {followup.MAX_COMMENT} characters")
        if satisfaction == "UNSATISFIED":
            v.require(comment, "comment", "is required when unsatisfied: what the citizen said")
        v.raise_if_any()
        subject, roles = actor()
        return self.rt.idempotent(
            "RateCase", request, pb.DispatchCase,
            lambda conn: followup.rate(conn, outbox=self.rt.outbox, case_id=case_id, satisfaction=satisfaction,
                                       comment=comment, actor=subject, roles=roles, now=self.d.now()))

    def GetFollowUpStats(self, request: pb.GetFollowUpStatsRequest, context) -> pb.FollowUpStats:
        station, start, end = self._stats_scope(request)
        with read_snapshot(self.rt.engine) as conn:
            return followup.stats(conn, station_id=station, start=start, end=end)

    def GetResponseCircleStats(self, request: pb.GetResponseCircleStatsRequest, context) -> pb.ResponseCircleStats:
        station, start, end = self._stats_scope(request)
        with read_snapshot(self.rt.engine) as conn:
            return circles.stats(conn, station_id=station, start=start, end=end, now=self.d.now())

    def _stats_scope(self, request):
        """(station, start, end) of a statistics request, checked; a station chief sees their own station."""
        who = auth.current()
        who.require_role(*followup.STATS_ROLES)
        v = Violations()
        if request.station_id:
            v.check(bool(STATION_ID.match(request.station_id)), "station_id", "must be a station id like S07")
        start = from_pb(request.start_time) if request.HasField("start_time") else None
        end = from_pb(request.end_time) if request.HasField("end_time") else None
        if start and end:
            v.check(start < end, "end_time", "must be after start_time")
        v.raise_if_any()
        station = request.station_id
        if not who.has_role("commander", "supervisor", "dispatcher", "service"):
            if not who.station or (station and station != who.station):
                raise PermissionDenied(f"a station chief of {who.station or 'no station'} sees only that station",
                                       reason="OTHER_STATION")
            station = who.station
        return station, start, end
