"""AlertsService gRPC servicer: proto -> command -> handler -> proto."""
from __future__ import annotations

import logging
import re
import threading
import time
from collections import Counter
from datetime import timedelta

import grpc
from sqlalchemy import and_, func, or_, select

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from smart110.common.v1 import common_pb2, events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as dispatch_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.db import read_snapshot
from services.runtime.enums import enum_name
from services.runtime.errors import InvalidArgument, NotFound, OutOfRange, PermissionDenied, Unavailable
from services.runtime.timeutil import from_pb, now, to_pb
from services.runtime.validation import Violations, decode_page_token, name_id, paginate, resource_id, time_keyset

from . import domain, handlers
from .handlers import Actor, MatcherCache
from .mapping import cap_of, obligation_to_pb, silence_to_pb
from .store import alerts, incidents, obligations, rules, silences

log = logging.getLogger("smart110.alerts")

RULE_EDITORS = ("commander", "supervisor", "service")
RESPONDERS = ("officer", "station_chief", "commander", "dispatcher", "call_taker", "supervisor", "service")
SILENCERS = ("commander", "station_chief", "supervisor", "service")
SIGNAL_SENDERS = ("service", "commander", "dispatcher")
OBLIGATION_EDITORS = ("station_chief", "commander", "supervisor", "service")
# Roles that see every area; others see their own station only.
CITY_WIDE = ("commander", "dispatcher", "call_taker", "supervisor", "service")

UPDATABLE = {"display_name", "enabled", "level", "description", "terms", "window", "threshold", "area_kind",
             "h3_resolution", "areas", "incident_types", "signal_types", "parameters", "suggested_action",
             "recipients", "escalate_after"}
RECIPIENT = re.compile(r"^(stations/[A-Za-z0-9-]+(/chief)?|roles/[a-z_]+|units/[A-Za-z0-9-]+|screens/[A-Za-z0-9-]+|"
                       r"command/[a-z]+|officers/[A-Za-z0-9-]+)$")
LABEL_KEYS = {"kind", "level", "rule", "station_id", "grid_id", "area", "incident_type", "signal_type", "term",
              "officer_id", "obligation_kind", "warning"}
HEARTBEAT_SECONDS = 15.0


def actor() -> Actor:
    ctx = auth.current()
    return Actor(ctx.subject, tuple(sorted(ctx.roles)))


def validate_rule(rule: pb.Rule, v: Violations, prefix: str = "rule", paths: set[str] | None = None) -> None:
    """Checks a rule (or, with `paths`, only the fields an update changes)."""
    def on(name: str) -> bool:
        return paths is None or name in paths

    kind = handlers.kind_name(rule.kind)
    if on("display_name"):
        v.require(rule.display_name.strip(), f"{prefix}.display_name")
    if paths is None:
        v.require(kind, f"{prefix}.kind", "is required: KEYWORD, VOLUME, ANOMALY, STRENGTH_GAP, EXTERNAL_SIGNAL, "
                                          "OBLIGATION or ENFORCEMENT")
    if on("level"):
        v.check(rule.level in (1, 2, 3, 4), f"{prefix}.level", "is required: BLUE, YELLOW, ORANGE or RED")
    if on("terms"):
        if kind == "KEYWORD":
            v.check(len(rule.terms) > 0, f"{prefix}.terms", "a KEYWORD rule needs at least one term")
        for i, t in enumerate(rule.terms):
            v.check(bool(t.term.strip()), f"{prefix}.terms[{i}].term", "must not be empty")
            v.check(t.grade in (0, 1, 2, 3, 4), f"{prefix}.terms[{i}].grade", "must be an alert level")
            for j, ex in enumerate(t.exclusions):
                v.check(t.term in ex, f"{prefix}.terms[{i}].exclusions[{j}]",
                        "must contain the term it cancels (e.g. 剧本杀 for 杀)")
    if on("window"):
        if kind in ("VOLUME", "STRENGTH_GAP"):
            v.check(handlers.seconds(rule.window) > 0, f"{prefix}.window", f"a {kind} rule needs a positive window")
        v.check(handlers.seconds(rule.window) >= 0, f"{prefix}.window", "must not be negative")
    if on("threshold"):
        if kind in ("VOLUME", "ANOMALY", "STRENGTH_GAP"):
            v.check(rule.threshold > 0, f"{prefix}.threshold", f"a {kind} rule needs a positive threshold")
        v.check(rule.threshold >= 0, f"{prefix}.threshold", "must not be negative")
    if on("area_kind") and kind in ("VOLUME", "ANOMALY"):
        v.check(rule.area_kind != 0, f"{prefix}.area_kind", "is required: STATION, GRID or H3")
    if on("h3_resolution"):
        v.check(rule.h3_resolution == 0 or 6 <= rule.h3_resolution <= 10, f"{prefix}.h3_resolution",
                "must be 6 to 10")
        if kind == "ANOMALY" and rule.area_kind == pb.AREA_KIND_H3:
            v.check(rule.h3_resolution in (0, 8), f"{prefix}.h3_resolution",
                    "anomaly history is kept at H3 resolution 8")
    if on("escalate_after"):
        v.check(handlers.seconds(rule.escalate_after) >= 0, f"{prefix}.escalate_after", "must not be negative")
    if on("recipients"):
        for i, r in enumerate(rule.recipients):
            v.check(bool(RECIPIENT.match(r)), f"{prefix}.recipients[{i}]",
                    "must be stations/{id}, stations/{id}/chief, roles/{role}, units/{id}, screens/{id} "
                    "or command/{name}")
    if on("parameters"):
        for key, value in rule.parameters.items():
            if key in ("history_weeks", "min_count", "min_incidents", "ring", "cold_ring", "report_back_seconds"):
                v.check(value.isdigit() and int(value) > 0, f"{prefix}.parameters[{key}]",
                        "must be a positive whole number")


def rule_name(name: str, v: Violations) -> tuple[str, int | None]:
    """'rules/r1' -> ('r1', None); 'rules/r1@3' -> ('r1', 3)."""
    base, _, ver = name.partition("@")
    rule_id = resource_id(base, "rules", v)
    if ver:
        if not ver.isdigit() or int(ver) < 1:
            v.add("name", "the version after @ must be a positive number")
            return rule_id, None
        return rule_id, int(ver)
    return rule_id, None


class DispatchUnits:
    """Available units, from dispatch's ListUnits (call edge alerts -> dispatch), cached briefly."""

    def __init__(self, rt: Runtime, ttl: float = 15.0):
        self.rt = rt
        self.ttl = ttl
        self._stub = None
        self._cache: list[tuple[float, float, str]] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def fetch(self) -> list[tuple[float, float, str]]:
        if self._stub is None:
            self._stub = dispatch_grpc.DispatchServiceStub(self.rt.channel("dispatch"))
        out, token = [], ""
        while True:
            resp = self._stub.ListUnits(dispatch_pb.ListUnitsRequest(
                page_size=500, page_token=token, status=dispatch_pb.UNIT_STATUS_AVAILABLE), timeout=5)
            out += [(u.position.longitude, u.position.latitude, u.station_id) for u in resp.units
                    if u.HasField("position")]
            token = resp.next_page_token
            if not token:
                return out

    def __call__(self, fresh: bool = False) -> list[tuple[float, float, str]]:
        with self._lock:
            if fresh or self._cache is None or time.monotonic() - self._at > self.ttl:
                try:
                    self._cache, self._at = self.fetch(), time.monotonic()
                except grpc.RpcError as exc:
                    log.warning("dispatch ListUnits failed (%s); using the last known units", exc.code())
                    if self._cache is None:
                        raise Unavailable("police strength is unavailable: the dispatch service did not answer",
                                          reason="DISPATCH_UNAVAILABLE") from exc
            return self._cache


class AlertsServicer(pb_grpc.AlertsServiceServicer):
    def __init__(self, rt: Runtime, units: DispatchUnits | None = None, matchers: MatcherCache | None = None):
        self.rt = rt
        self.units = units or DispatchUnits(rt)
        self.matchers = matchers or MatcherCache()
        self._intake = None

    # -- rules -------------------------------------------------------------------
    def CreateRule(self, request: pb.CreateRuleRequest, context) -> pb.Rule:
        auth.current().require_role(*RULE_EDITORS)
        v = Violations()
        v.request_id(request.request_id)
        if v.require(request.HasField("rule"), "rule"):
            validate_rule(request.rule, v)
        v.raise_if_any()
        who = actor()
        return self.rt.idempotent("CreateRule", request, pb.Rule, lambda conn: handlers.create_rule(
            conn, rule=request.rule, actor=who, now=now()))

    def GetRule(self, request: pb.GetRuleRequest, context) -> pb.Rule:
        v = Violations()
        rule_id, version = rule_name(request.name, v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            return handlers.get_rule(conn, rule_id, version)

    def ListRules(self, request: pb.ListRulesRequest, context) -> pb.ListRulesResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("id",))
        v.raise_if_any()
        q = select(rules.c.id).order_by(rules.c.id).limit(size + 1)
        if token:
            q = q.where(rules.c.id > token["id"])
        if request.kind:
            q = q.where(rules.c.kind == handlers.kind_name(request.kind))
        if request.enabled_only:
            q = q.where(rules.c.enabled.is_(True))
        if not request.show_deleted:
            q = q.where(rules.c.delete_time.is_(None))
        with read_snapshot(self.rt.engine) as conn:
            ids = [r.id for r in conn.execute(q)]
            page, next_token = paginate(ids, size, lambda i: {"id": i})
            return pb.ListRulesResponse(rules=[handlers.get_rule(conn, i) for i in page], next_page_token=next_token)

    def UpdateRule(self, request: pb.UpdateRuleRequest, context) -> pb.Rule:
        auth.current().require_role(*RULE_EDITORS)
        v = Violations()
        v.request_id(request.request_id)
        rule_id = resource_id(request.rule.name, "rules", v, "rule.name")
        paths = list(request.update_mask.paths)
        if v.require(paths, "update_mask", "is required: the fields to change"):
            for p in paths:
                v.check(p in UPDATABLE, "update_mask", f"{p!r} cannot be changed (changeable: "
                                                       f"{', '.join(sorted(UPDATABLE))})")
        v.check(request.expected_version >= 0, "expected_version", "must not be negative")
        v.raise_if_any()
        who = actor()

        def work(conn):
            merged = handlers.apply_mask(handlers.get_rule(conn, rule_id), request.rule, paths)
            check = Violations()
            validate_rule(merged, check)
            check.raise_if_any()
            return handlers.update_rule(conn, rule_id=rule_id, patch=request.rule, paths=paths,
                                        expected_version=request.expected_version, actor=who, now=now(),
                                        reason=request.reason)

        return self.rt.idempotent("UpdateRule", request, pb.Rule, work)

    def DeleteRule(self, request: pb.DeleteRuleRequest, context) -> pb.Rule:
        auth.current().require_role(*RULE_EDITORS)
        rule_id = name_id(request.name, "rules", request_id=request.request_id)
        who = actor()
        return self.rt.idempotent("DeleteRule", request, pb.Rule, lambda conn: handlers.delete_rule(
            conn, rule_id=rule_id, actor=who, now=now(), reason=request.reason))

    # -- alerts ------------------------------------------------------------------
    def _visible_stations(self) -> list[str] | None:
        """None: every station; else the caller's own station only."""
        ctx = auth.current()
        if ctx.has_role(*CITY_WIDE) or not ctx.station:
            return None
        return [ctx.station]

    def GetAlert(self, request: pb.GetAlertRequest, context) -> pb.Alert:
        alert_id = name_id(request.name, "alerts")
        with read_snapshot(self.rt.engine) as conn:
            alert = handlers.load_alert(conn, alert_id)
        visible = self._visible_stations()
        if visible is not None and alert.area.station_id not in visible:
            raise NotFound(request.name)
        return alert

    def ListAlerts(self, request: pb.ListAlertsRequest, context) -> pb.ListAlertsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        if request.rule:
            resource_id(request.rule, "rules", v, "rule")
        v.raise_if_any()
        q = select(alerts.c.id, alerts.c.last_seen_time)
        if request.state:
            q = q.where(alerts.c.state == enum_name(pb.AlertState, request.state, "ALERT_STATE_"))
        if request.min_level:
            q = q.where(alerts.c.level.in_(domain.LEVELS[request.min_level:]))
        if request.kind:
            q = q.where(alerts.c.kind == handlers.kind_name(request.kind))
        for col, value in (("station_id", request.station_id), ("grid_id", request.grid_id),
                           ("subject", request.subject), ("group_key", request.group_key)):
            if value:
                q = q.where(alerts.c[col] == value)
        if request.rule:
            q = q.where(alerts.c.rule_id == request.rule.split("/", 1)[1])
        if request.HasField("last_seen_time_start"):
            q = q.where(alerts.c.last_seen_time >= from_pb(request.last_seen_time_start))
        if request.HasField("last_seen_time_end"):
            q = q.where(alerts.c.last_seen_time < from_pb(request.last_seen_time_end))
        visible = self._visible_stations()
        if visible is not None:
            q = q.where(alerts.c.station_id.in_(visible))
        if after:
            t, aid = after
            q = q.where(or_(alerts.c.last_seen_time < t, and_(alerts.c.last_seen_time == t, alerts.c.id < aid)))
        q = q.order_by(alerts.c.last_seen_time.desc(), alerts.c.id.desc()).limit(size + 1)
        with read_snapshot(self.rt.engine) as conn:
            rows = conn.execute(q).all()
            page, next_token = paginate(rows, size, lambda r: {"t": r.last_seen_time.isoformat(), "id": r.id})
            return pb.ListAlertsResponse(alerts=[handlers.load_alert(conn, r.id) for r in page],
                                         next_page_token=next_token)

    def _check_station(self, conn, alert_id: str, name: str) -> None:
        visible = self._visible_stations()
        if visible is None:
            return
        station = conn.execute(select(alerts.c.station_id).where(alerts.c.id == alert_id)).scalar()
        if station is None or station not in visible:
            raise NotFound(name)

    def AcknowledgeAlert(self, request: pb.AcknowledgeAlertRequest, context) -> pb.Alert:
        auth.current().require_role(*RESPONDERS)
        alert_id = name_id(request.name, "alerts", request_id=request.request_id)
        who = actor()

        def work(conn):
            self._check_station(conn, alert_id, request.name)
            return handlers.acknowledge(conn, self.rt.outbox, alert_id=alert_id, actor=who,
                                        comment=request.comment, now=now())
        return self.rt.idempotent("AcknowledgeAlert", request, pb.Alert, work)

    def ResolveAlert(self, request: pb.ResolveAlertRequest, context) -> pb.Alert:
        auth.current().require_role(*RESPONDERS)
        v = Violations()
        v.request_id(request.request_id)
        alert_id = resource_id(request.name, "alerts", v)
        v.require(request.reason.strip(), "reason", "is required: why the alert is resolved")
        v.raise_if_any()
        who = actor()

        def work(conn):
            self._check_station(conn, alert_id, request.name)
            return handlers.resolve(conn, self.rt.outbox, alert_id=alert_id, actor=who, reason=request.reason,
                                    now=now())
        return self.rt.idempotent("ResolveAlert", request, pb.Alert, work)

    # -- silences ----------------------------------------------------------------
    def CreateSilence(self, request: pb.CreateSilenceRequest, context) -> pb.Silence:
        auth.current().require_role(*SILENCERS)
        v = Violations()
        v.request_id(request.request_id)
        s = request.silence
        t = now()
        start = from_pb(s.start_time) if s.HasField("start_time") else None
        expire = from_pb(s.expire_time) if s.HasField("expire_time") else None
        if v.require(request.HasField("silence"), "silence"):
            if v.require(len(s.matchers) > 0, "silence.matchers", "at least one matcher is required"):
                for i, m in enumerate(s.matchers):
                    v.check(m.label in LABEL_KEYS, f"silence.matchers[{i}].label",
                            f"must be one of {', '.join(sorted(LABEL_KEYS))}")
                    if m.operator == pb.MATCHER_OPERATOR_REGEX:
                        try:
                            re.compile(m.value)
                        except re.error:
                            v.add(f"silence.matchers[{i}].value", "is not a valid regular expression")
            if v.require(expire is not None, "silence.expire_time"):
                v.check(expire > (start or t), "silence.expire_time", "must be after the start time (and now)")
            v.require(s.reason.strip(), "silence.reason", "is required: why nobody should be notified")
        v.raise_if_any()
        matchers = [dict(label=m.label, value=m.value,
                         operator=enum_name(pb.MatcherOperator, m.operator, "MATCHER_OPERATOR_") or "EQUAL")
                    for m in s.matchers]
        who = actor()

        def work(conn):
            sid = handlers.create_silence(conn, self.rt.outbox, matchers=matchers, start=start or t, expire=expire,
                                          reason=s.reason.strip(), actor=who, now=t)
            return silence_to_pb(conn.execute(select(silences).where(silences.c.id == sid)).one(), t)
        return self.rt.idempotent("CreateSilence", request, pb.Silence, work)

    def ListSilences(self, request: pb.ListSilencesRequest, context) -> pb.ListSilencesResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        t = now()
        q = select(silences)
        state = enum_name(pb.SilenceState, request.state, "SILENCE_STATE_")
        not_early = or_(silences.c.expired_time.is_(None), silences.c.expired_time > t)
        if state == "ACTIVE":
            q = q.where(silences.c.start_time <= t, silences.c.expire_time > t, not_early)
        elif state == "PENDING":
            q = q.where(silences.c.start_time > t, silences.c.expire_time > t, not_early)
        elif state == "EXPIRED":
            q = q.where(or_(silences.c.expire_time <= t, silences.c.expired_time <= t))
        if after:
            at, sid = after
            q = q.where(or_(silences.c.create_time < at, and_(silences.c.create_time == at, silences.c.id < sid)))
        q = q.order_by(silences.c.create_time.desc(), silences.c.id.desc()).limit(size + 1)
        with read_snapshot(self.rt.engine) as conn:
            rows = conn.execute(q).all()
        page, next_token = paginate(rows, size, lambda r: {"t": r.create_time.isoformat(), "id": r.id})
        return pb.ListSilencesResponse(silences=[silence_to_pb(r, t) for r in page], next_page_token=next_token)

    def DeleteSilence(self, request: pb.DeleteSilenceRequest, context) -> pb.Silence:
        auth.current().require_role(*SILENCERS)
        sid = name_id(request.name, "silences", request_id=request.request_id)
        who = actor()

        def work(conn):
            t = now()
            handlers.expire_silence(conn, self.rt.outbox, silence_id=sid, actor=who, reason=request.reason, now=t)
            return silence_to_pb(conn.execute(select(silences).where(silences.c.id == sid)).one(), t)
        return self.rt.idempotent("DeleteSilence", request, pb.Silence, work)

    # -- partner signals ---------------------------------------------------------
    def _locate(self, point: common_pb2.GeoPoint) -> str:
        """The station with jurisdiction over a point, from intake (call edge alerts -> intake)."""
        if self._intake is None:
            self._intake = intake_grpc.IntakeServiceStub(self.rt.channel("intake"))
        try:
            return self._intake.LocateJurisdiction(intake_pb.LocateJurisdictionRequest(point=point),
                                                   timeout=5).station_id
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return ""
            raise Unavailable("the jurisdiction lookup is unavailable; retry, or give signal.station_id",
                              reason="INTAKE_UNAVAILABLE") from exc

    def IngestSignal(self, request: pb.IngestSignalRequest, context) -> pb.Signal:
        auth.current().require_role(*SIGNAL_SENDERS)
        v = Violations()
        v.request_id(request.request_id)
        s = request.signal
        if v.require(request.HasField("signal"), "signal"):
            v.require(s.source.strip(), "signal.source")
            if v.require(s.signal_type.strip(), "signal.signal_type"):
                v.check(bool(re.match(r"^[A-Z][A-Z0-9_]{1,59}$", s.signal_type)), "signal.signal_type",
                        "must be UPPER_SNAKE_CASE, e.g. ABNORMAL_CASH_WITHDRAWAL")
            v.check(0 <= s.risk_score <= 1, "signal.risk_score", "must be between 0 and 1")
            has_point = s.HasField("location") and s.location.HasField("point")
            if has_point:
                p = s.location.point
                v.check(-180 <= p.longitude <= 180, "signal.location.point.longitude", "must be between -180 and 180")
                v.check(-90 <= p.latitude <= 90, "signal.location.point.latitude", "must be between -90 and 90")
            v.check(bool(s.station_id) or has_point, "signal.station_id",
                    "give the station, or signal.location (the person's address) to locate it")
        v.raise_if_any()
        signal = pb.Signal()
        signal.CopyFrom(s)
        if not signal.station_id:
            signal.station_id = self._locate(s.location.point)
            if not signal.station_id:
                raise InvalidArgument([("signal.location", "lies in no station's jurisdiction")])
        return self.rt.idempotent("IngestSignal", request, pb.Signal, lambda conn: handlers.ingest_signal(
            conn, self.rt.outbox, signal=signal, now=now()))

    # -- live push ---------------------------------------------------------------
    def Subscribe(self, request: pb.SubscribeRequest, context):
        v = Violations()
        v.check(request.after_sequence >= 0, "after_sequence", "must be 0 or more")
        v.check(0 <= request.min_level <= 4, "min_level", "must be an alert level")
        for i, k in enumerate(request.kinds):
            v.check(k in pb.RuleKind.values() and k != 0, f"kinds[{i}]", "must be a rule kind")
        v.raise_if_any()
        areas = set(request.areas)
        visible = self._visible_stations()
        if visible is not None:
            outside = [a for a in areas if a.split("-")[0] not in visible]
            if outside:
                raise PermissionDenied(f"areas outside the caller's station: {', '.join(outside)}",
                                       reason="AREA_NOT_VISIBLE")
            areas = areas or set(visible)
        kinds = set(request.kinds)

        def wanted(alert: pb.Alert) -> bool:
            if areas and alert.area.station_id not in areas and alert.area.grid_id not in areas:
                return False
            if alert.level < request.min_level:
                return False
            return not kinds or alert.kind in kinds

        latest = self.rt.feed.latest_sequence()
        if request.after_sequence > latest:
            raise OutOfRange(f"after_sequence {request.after_sequence} is past the end of the feed ({latest}); "
                             "reconnect with 0 and include_active", reason="SEQUENCE_OUT_OF_RANGE")
        after = request.after_sequence or latest
        if request.include_active:
            with read_snapshot(self.rt.engine) as conn:
                ids = conn.execute(select(alerts.c.id).where(alerts.c.state.in_(("FIRING", "ACKNOWLEDGED")))
                                   .order_by(alerts.c.last_seen_time)).scalars().all()
                for alert_id in ids:
                    alert = handlers.load_alert(conn, alert_id)
                    if wanted(alert):
                        yield pb.AlertChange(sequence=after, action="SNAPSHOT", alert=alert, time=to_pb(now()))
        feed_request = events_pb2.StreamEventsRequest(after_sequence=after,
                                                      types=["alerts.AlertFired", "alerts.AlertUpdated"])
        for event in self.rt.feed.stream(feed_request, context, idle_seconds=HEARTBEAT_SECONDS):
            if event is None:
                yield pb.AlertChange(sequence=after, action="HEARTBEAT", time=to_pb(now()))
                continue
            after = event.sequence
            if event.type == "alerts.AlertFired":
                payload = pb.AlertFired()
                event.payload.Unpack(payload)
                action, changed = "FIRED", []
            else:
                payload = pb.AlertUpdated()
                event.payload.Unpack(payload)
                action, changed = payload.action, payload.changed_fields
            if wanted(payload.alert):
                yield pb.AlertChange(sequence=event.sequence, action=action, alert=payload.alert,
                                     time=event.occur_time, changed_fields=changed, new_entries=payload.new_entries)

    # -- heat map ----------------------------------------------------------------
    def GetHeatMap(self, request: pb.GetHeatMapRequest, context) -> pb.HeatMap:
        v = Violations()
        res = request.resolution or 8
        v.check(6 <= res <= 10, "resolution", "must be 6 to 10")
        t = now()
        end = from_pb(request.end_time) if request.HasField("end_time") else t
        start = from_pb(request.start_time) if request.HasField("start_time") else end - timedelta(hours=1)
        v.check(start < end, "start_time", "must be before end_time")
        box = request.bounds if request.HasField("bounds") else None
        if box is not None:
            v.check(box.south_west.longitude < box.north_east.longitude and
                    box.south_west.latitude < box.north_east.latitude, "bounds",
                    "south_west must lie south-west of north_east")
        station = request.station_id
        if box is None and not station:
            station = auth.current().station
        visible = self._visible_stations()
        if visible is not None and station not in visible:
            raise PermissionDenied("the heat map of another station", reason="AREA_NOT_VISIBLE")
        v.raise_if_any()
        col = incidents.c.cells[res - 5]
        q = (select(col.label("cell"), incidents.c.station_id, func.count().label("n"))
             .where(incidents.c.receive_time >= start, incidents.c.receive_time < end,
                    incidents.c.category == "POLICE", incidents.c.merged_into == "",
                    func.cardinality(incidents.c.cells) > 0)
             .group_by(col, incidents.c.station_id))
        if station:
            q = q.where(incidents.c.station_id == station)
        if box is not None:
            q = q.where(incidents.c.lon.between(box.south_west.longitude, box.north_east.longitude),
                        incidents.c.lat.between(box.south_west.latitude, box.north_east.latitude))
        if request.incident_types:
            q = q.where(incidents.c.incident_type.in_(list(request.incident_types)))
        inc, cell_station = Counter(), {}
        with read_snapshot(self.rt.engine) as conn:
            for row in conn.execute(q):
                inc[row.cell] += row.n
                cell_station.setdefault(row.cell, row.station_id)
        units = Counter()
        for lon, lat, unit_station in self.units(fresh=True):
            if station and unit_station != station:
                continue
            if box is not None and not (box.south_west.longitude <= lon <= box.north_east.longitude and
                                        box.south_west.latitude <= lat <= box.north_east.latitude):
                continue
            cell = domain.h3.latlng_to_cell(lat, lon, res)
            units[cell] += 1
            cell_station.setdefault(cell, unit_station)
        cells = []
        for cell in sorted(set(inc) | set(units)):
            lon, lat = domain.cell_center(cell)
            cells.append(pb.HeatMapCell(
                cell=cell, center=common_pb2.GeoPoint(longitude=lon, latitude=lat), incident_count=inc[cell],
                available_units=units[cell], gap=inc[cell] / max(units[cell], 1),
                station_id=cell_station.get(cell, "")))
        cells.sort(key=lambda c: (-c.gap, c.cell))
        return pb.HeatMap(resolution=res, start_time=to_pb(start), end_time=to_pb(end), cells=cells,
                          compute_time=to_pb(now()))

    def ExportCap(self, request: pb.ExportCapRequest, context) -> pb.CapDocument:
        alert = self.GetAlert(pb.GetAlertRequest(name=request.name), context)
        cap = cap_of(alert)
        return pb.CapDocument(identifier=cap.identifier, xml=domain.cap_xml(cap))

    # -- obligations -------------------------------------------------------------
    def CreateObligation(self, request: pb.CreateObligationRequest, context) -> pb.Obligation:
        auth.current().require_role(*OBLIGATION_EDITORS)
        v = Violations()
        v.request_id(request.request_id)
        o = request.obligation
        if v.require(request.HasField("obligation"), "obligation"):
            if v.require(o.kind, "obligation.kind", "is required, e.g. INSPECTION"):
                v.check(bool(re.match(r"^[A-Z][A-Z0-9_]{1,39}$", o.kind)), "obligation.kind",
                        "must be UPPER_SNAKE_CASE, e.g. INSPECTION")
            v.require(o.subject.strip(), "obligation.subject", "is required, e.g. places/{id}")
            v.require(o.description.strip(), "obligation.description")
            v.require(o.HasField("due_time"), "obligation.due_time")
            v.check(handlers.seconds(o.period) >= 0, "obligation.period", "must not be negative")
        v.raise_if_any()

        def work(conn):
            t = now()
            oid = handlers.create_obligation(
                conn, kind=o.kind, subject=o.subject.strip(), station_id=o.station_id,
                description=o.description.strip(), due=from_pb(o.due_time), period_s=handlers.seconds(o.period),
                now=t)
            return obligation_to_pb(conn.execute(select(obligations).where(obligations.c.id == oid)).one(), t)
        return self.rt.idempotent("CreateObligation", request, pb.Obligation, work)

    def GetObligation(self, request: pb.GetObligationRequest, context) -> pb.Obligation:
        oid = name_id(request.name, "obligations")
        with read_snapshot(self.rt.engine) as conn:
            row = conn.execute(select(obligations).where(obligations.c.id == oid)).first()
        if row is None:
            raise NotFound(request.name)
        return obligation_to_pb(row, now())

    def ListObligations(self, request: pb.ListObligationsRequest, context) -> pb.ListObligationsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        t = now()
        q = select(obligations)
        state = enum_name(pb.ObligationState, request.state, "OBLIGATION_STATE_")
        if state == "PENDING":
            q = q.where(obligations.c.state == "PENDING", obligations.c.due_time > t)
        elif state == "OVERDUE":
            q = q.where(obligations.c.state == "PENDING", obligations.c.due_time <= t)
        elif state:
            q = q.where(obligations.c.state == state)
        if request.station_id:
            q = q.where(obligations.c.station_id == request.station_id)
        if request.kind:
            q = q.where(obligations.c.kind == request.kind)
        if after:
            at, oid = after
            q = q.where(or_(obligations.c.due_time > at, and_(obligations.c.due_time == at, obligations.c.id > oid)))
        q = q.order_by(obligations.c.due_time, obligations.c.id).limit(size + 1)
        with read_snapshot(self.rt.engine) as conn:
            rows = conn.execute(q).all()
        page, next_token = paginate(rows, size, lambda r: {"t": r.due_time.isoformat(), "id": r.id})
        return pb.ListObligationsResponse(obligations=[obligation_to_pb(r, t) for r in page],
                                          next_page_token=next_token)

    def CompleteObligation(self, request: pb.CompleteObligationRequest, context) -> pb.Obligation:
        auth.current().require_role(*(OBLIGATION_EDITORS + ("officer",)))
        oid = name_id(request.name, "obligations", request_id=request.request_id)
        who = actor()

        def work(conn):
            t = now()
            handlers.close_obligation(conn, self.rt.outbox, obligation_id=oid, state="DONE", actor=who,
                                      reason=request.comment, now=t)
            return obligation_to_pb(conn.execute(select(obligations).where(obligations.c.id == oid)).one(), t)
        return self.rt.idempotent("CompleteObligation", request, pb.Obligation, work)

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)
