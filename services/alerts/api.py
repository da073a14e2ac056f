"""AlertsService gRPC servicer: check the request, run one use case (or a query), map the answer."""
from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict
from datetime import timedelta

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from smart110.common.v1 import events_pb2

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.db import read_snapshot
from services.runtime.errors import InvalidArgument, NotFound, OutOfRange, PermissionDenied
from services.runtime.policy import current_jurisdiction
from services.runtime.timeutil import from_pb, to_pb
from services.runtime.validation import (
    Violations, check_box, decode_page_token, name_id, paginate, resource_id, time_keyset,
)

from . import domain, handlers, mapping, queries
from .domain import UPDATABLE, validate_rule

RULE_EDITORS = ("commander", "supervisor", "service")
RESPONDERS = ("officer", "station_chief", "commander", "dispatcher", "call_taker", "supervisor", "service")
SILENCERS = ("commander", "station_chief", "supervisor", "service")
OBLIGATION_EDITORS = ("station_chief", "commander", "supervisor", "service")

LABEL_KEYS = {"kind", "level", "rule", "station_id", "grid_id", "area", "area_kind", "incident_type", "incident",
              "signal_type", "term", "officer_id", "obligation_kind", "warning"}
HEARTBEAT_SECONDS = 15.0
# What the Subscribe stream delivers, and the changes that tell someone new.
STREAM_CHANNELS = ("BIG_SCREEN", "APP_PUSH")
PUSHED_ACTIONS = ("FIRED", "ESCALATED", "UPDATED")
MARKS_KEPT = 10_000
log = logging.getLogger("smart110.alerts")


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



def _visible() -> list[str] | None:
    """The stations whose alerts the caller sees (None: every station), from the access table's jurisdiction."""
    j = current_jurisdiction()
    return None if j.everything else sorted(j.stations)


def _listed(station_id: str) -> list[str] | None:
    """The stations a list covers; a filter for a station outside the jurisdiction is refused."""
    found = current_jurisdiction().stations_for(station_id)
    return None if found is None else sorted(found)

class AlertsServicer(pb_grpc.AlertsServiceServicer):
    def __init__(self, rt: Runtime):
        self.rt = rt
        # The pushes recorded lately: (alert, time) (see `_pushed`).
        self._marked: OrderedDict = OrderedDict()
        self._marks_lock = threading.Lock()

    def _work(self, method: str, request, response_type, work, respond):
        return self.rt.idempotent_work(method, request, response_type, work, actor=auth.current(), respond=respond)

    # -- rules -------------------------------------------------------------------
    def CreateRule(self, request: pb.CreateRuleRequest, context) -> pb.Rule:
        v = Violations()
        v.request_id(request.request_id)
        rule = mapping.rule_from_pb(request.rule)
        if v.require(request.HasField("rule"), "rule"):
            validate_rule(rule, v)
        v.raise_if_any()
        return self._work("CreateRule", request, pb.Rule, lambda uow: handlers.rules.create_rule(uow, rule=rule),
                          mapping.rule_to_pb)

    def GetRule(self, request: pb.GetRuleRequest, context) -> pb.Rule:
        v = Violations()
        rule_id, version = rule_name(request.name, v)
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            return mapping.rule_to_pb(queries.rule(conn, rule_id, version))

    def ListRules(self, request: pb.ListRulesRequest, context) -> pb.ListRulesResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        token = decode_page_token(request.page_token, v, ("id",))
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            ids = queries.rule_ids(conn, after_id=token["id"] if token else None, size=size,
                                   kind=mapping.kind_name(request.kind) if request.kind else "",
                                   enabled_only=request.enabled_only, show_deleted=request.show_deleted)
            page, next_token = paginate(ids, size, lambda i: {"id": i})
            return pb.ListRulesResponse(rules=[mapping.rule_to_pb(queries.rule(conn, i)) for i in page],
                                        next_page_token=next_token)

    def UpdateRule(self, request: pb.UpdateRuleRequest, context) -> pb.Rule:
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
        patch = mapping.rule_from_pb(request.rule)
        return self._work("UpdateRule", request, pb.Rule, lambda uow: handlers.rules.update_rule(
            uow, rule_id=rule_id, patch=patch, paths=paths, expected_version=request.expected_version,
            reason=request.reason), mapping.rule_to_pb)

    def DeleteRule(self, request: pb.DeleteRuleRequest, context) -> pb.Rule:
        rule_id = name_id(request.name, "rules", request_id=request.request_id)
        return self._work("DeleteRule", request, pb.Rule, lambda uow: handlers.rules.delete_rule(
            uow, rule_id=rule_id, reason=request.reason), mapping.rule_to_pb)

    # -- alerts ------------------------------------------------------------------
    def _visible_alert(self, name: str) -> domain.Alert:
        alert_id = name_id(name, "alerts")
        with read_snapshot(self.rt.engine) as conn:
            alert = queries.alert(conn, alert_id)
        domain.ensure_visible(alert.station_id, _visible(), name, alert.area.shared_station_ids)
        return alert

    def GetAlert(self, request: pb.GetAlertRequest, context) -> pb.Alert:
        return mapping.alert_to_pb(self._visible_alert(request.name))

    def ListAlerts(self, request: pb.ListAlertsRequest, context) -> pb.ListAlertsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        rule_id = resource_id(request.rule, "rules", v, "rule") if request.rule else ""
        box = check_box(request.bounds, v) if request.HasField("bounds") else None
        v.raise_if_any()
        query = queries.AlertQuery(box=box,
            state=mapping.state_name(request.state) if request.state else "", min_level=request.min_level,
            kind=mapping.kind_name(request.kind) if request.kind else "", station_id=request.station_id,
            grid_id=request.grid_id, subject=request.subject, group_key=request.group_key, rule_id=rule_id,
            seen_from=from_pb(request.last_seen_time_start) if request.HasField("last_seen_time_start") else None,
            seen_before=from_pb(request.last_seen_time_end) if request.HasField("last_seen_time_end") else None,
            stations=_listed(request.station_id))
        with read_snapshot(self.rt.engine) as conn:
            rows = queries.alert_page(conn, query, after, size)
            page, next_token = paginate(rows, size, lambda r: {"t": r.last_seen_time.isoformat(), "id": r.id})
            return pb.ListAlertsResponse(
                alerts=[mapping.alert_to_pb(a) for a in queries.alerts_by_id(conn, [r.id for r in page])],
                next_page_token=next_token)

    def AcknowledgeAlert(self, request: pb.AcknowledgeAlertRequest, context) -> pb.Alert:
        alert_id = name_id(request.name, "alerts", request_id=request.request_id)
        visible = _visible()
        return self._work("AcknowledgeAlert", request, pb.Alert, lambda uow: handlers.alerts.acknowledge_alert(
            uow, alert_id=alert_id, comment=request.comment, visible=visible), mapping.alert_to_pb)

    def ResolveAlert(self, request: pb.ResolveAlertRequest, context) -> pb.Alert:
        v = Violations()
        v.request_id(request.request_id)
        alert_id = resource_id(request.name, "alerts", v)
        v.require(request.reason.strip(), "reason", "is required: why the alert is resolved")
        v.raise_if_any()
        visible = _visible()
        return self._work("ResolveAlert", request, pb.Alert, lambda uow: handlers.alerts.resolve_alert(
            uow, alert_id=alert_id, reason=request.reason, visible=visible), mapping.alert_to_pb)

    # -- silences ----------------------------------------------------------------
    def CreateSilence(self, request: pb.CreateSilenceRequest, context) -> pb.Silence:
        v = Violations()
        v.request_id(request.request_id)
        s = request.silence
        t = self.rt.clock()
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
        matchers = mapping.matchers_from_pb(s.matchers)
        # A silence is answered as it is when made (or ended): its state at that time.
        return self._work("CreateSilence", request, pb.Silence, lambda uow: handlers.alerts.create_silence(
            uow, matchers=matchers, start=start or t, expire=expire, reason=s.reason.strip()),
            lambda silence: mapping.silence_to_pb(silence, silence.last_change_time))

    def ListSilences(self, request: pb.ListSilencesRequest, context) -> pb.ListSilencesResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        t = self.rt.clock()
        with read_snapshot(self.rt.engine) as conn:
            rows = queries.silence_page(conn, state=mapping.silence_state_name(request.state), now=t, after=after,
                                        size=size)
        page, next_token = paginate(rows, size, lambda r: {"t": r.create_time.isoformat(), "id": r.id})
        return pb.ListSilencesResponse(silences=[mapping.silence_to_pb(r, t) for r in page],
                                       next_page_token=next_token)

    def DeleteSilence(self, request: pb.DeleteSilenceRequest, context) -> pb.Silence:
        sid = name_id(request.name, "silences", request_id=request.request_id)
        return self._work("DeleteSilence", request, pb.Silence, lambda uow: handlers.alerts.expire_silence(
            uow, silence_id=sid, reason=request.reason),
            lambda silence: mapping.silence_to_pb(silence, silence.last_change_time))

    # -- partner signals ---------------------------------------------------------
    def IngestSignal(self, request: pb.IngestSignalRequest, context) -> pb.Signal:
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
        signal = mapping.signal_from_pb(s)
        if not signal.station_id:
            # Outside the transaction: intake says whose jurisdiction the place is in.
            signal.station_id = self.rt.context.locate(s.location.point.longitude, s.location.point.latitude)
            if not signal.station_id:
                raise InvalidArgument([("signal.location", "lies in no station's jurisdiction")])
        return self._work("IngestSignal", request, pb.Signal,
                          lambda uow: handlers.detection.ingest_signal(uow, signal=signal), mapping.signal_to_pb)

    # -- live push ---------------------------------------------------------------
    def Subscribe(self, request: pb.SubscribeRequest, context):
        v = Violations()
        v.check(request.after_sequence >= 0, "after_sequence", "must be 0 or more")
        v.check(0 <= request.min_level <= 4, "min_level", "must be an alert level")
        for i, k in enumerate(request.kinds):
            v.check(k in pb.RuleKind.values() and k != 0, f"kinds[{i}]", "must be a rule kind")
        box = check_box(request.bounds, v) if request.HasField("bounds") else None
        v.raise_if_any()
        wanted = domain.AlertFilter.for_caller(
            set(request.areas), _visible(), mapping.level_name(request.min_level),
            {mapping.kind_name(k) for k in request.kinds}, box)
        latest = self.rt.feed.latest_sequence()
        if request.after_sequence > latest:
            raise OutOfRange(f"after_sequence {request.after_sequence} is past the end of the feed ({latest}); "
                             "reconnect with 0 and include_active", reason="SEQUENCE_OUT_OF_RANGE")
        after = request.after_sequence or latest
        if request.include_active:
            with read_snapshot(self.rt.engine) as conn:
                active = [a for a in queries.active_alerts(conn)
                          if wanted.wants(a.area.station_id, a.area.grid_id, a.level, a.kind,
                                          a.area.shared_station_ids, a.area.center)]
            for alert in active:
                yield pb.AlertChange(sequence=after, action="SNAPSHOT", alert=mapping.alert_to_pb(alert),
                                     time=to_pb(self.rt.clock()))
                self._pushed(alert.name, alert.update_time)
        feed_request = events_pb2.StreamEventsRequest(after_sequence=after,
                                                      types=["alerts.AlertFired", "alerts.AlertUpdated"])
        for event in self.rt.feed.stream(feed_request, context, idle_seconds=HEARTBEAT_SECONDS):
            if event is None:
                yield pb.AlertChange(sequence=after, action="HEARTBEAT", time=to_pb(self.rt.clock()))
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
            if wanted.wants(*mapping.alert_facets(payload.alert), payload.alert.area.shared_station_ids,
                            mapping.area_center(payload.alert.area)):
                yield pb.AlertChange(sequence=event.sequence, action=action, alert=payload.alert,
                                     time=event.occur_time, changed_fields=changed, new_entries=payload.new_entries)
                if action in PUSHED_ACTIONS:
                    self._pushed(payload.alert.name, from_pb(event.occur_time))

    def _pushed(self, alert_name: str, until) -> None:
        """The console receiver: an alert's stream notifications (big screen, app push) sent by
        `until` count as delivered once a change is pushed on an open Subscribe stream, not before.
        Once per change and process, however many screens it is pushed to."""
        key = (alert_name, until)
        with self._marks_lock:
            if key in self._marked:
                return
            self._marked[key] = None
            while len(self._marked) > MARKS_KEPT:
                self._marked.popitem(last=False)
        try:
            with self.rt.transaction() as uow:
                uow.repos.alerts.mark_pushed(alert_name.removeprefix("alerts/"), STREAM_CHANNELS, until)
        except Exception:  # noqa: BLE001 - the push happened; a lost mark must not end the stream
            log.exception("could not record the push of %s", alert_name)
            with self._marks_lock:
                self._marked.pop(key, None)

    # -- heat map ----------------------------------------------------------------
    def GetHeatMap(self, request: pb.GetHeatMapRequest, context) -> pb.HeatMap:
        v = Violations()
        res = request.resolution or 8
        v.check(6 <= res <= 10, "resolution", "must be 6 to 10")
        t = self.rt.clock()
        end = from_pb(request.end_time) if request.HasField("end_time") else t
        start = from_pb(request.start_time) if request.HasField("start_time") else end - timedelta(hours=1)
        v.check(start < end, "start_time", "must be before end_time")
        box = mapping.box_from_pb(request.bounds) if request.HasField("bounds") else None
        if box is not None:
            v.check(box.west < box.east and box.south < box.north, "bounds",
                    "south_west must lie south-west of north_east")
        station = request.station_id
        if box is None and not station:
            station = auth.current().station
        if not current_jurisdiction().sees(station):
            raise PermissionDenied("the heat map of a station outside your jurisdiction",
                                   reason="OUT_OF_JURISDICTION", metadata={"field": "station_id"})
        v.raise_if_any()
        with read_snapshot(self.rt.engine) as conn:
            counted = queries.incidents_by_cell(conn, resolution=res, start=start, end=end, station=station,
                                                bounds=box, incident_types=list(request.incident_types))
        units = self.rt.context.units(fresh=True)
        cells = domain.heat_map(counted, units, resolution=res, station=station, bounds=box)
        return mapping.heat_map_to_pb(res, start, end, cells, self.rt.clock())

    def ExportCap(self, request: pb.ExportCapRequest, context) -> pb.CapDocument:
        return mapping.cap_document(self._visible_alert(request.name), self.rt.context.cap_sender)

    def GetCapMessage(self, request: pb.GetCapMessageRequest, context):
        return mapping.cap_message_body(self._visible_alert(request.name), self.rt.context.cap_sender)

    def GetCapFeed(self, request: pb.GetCapFeedRequest, context):
        v = Violations()
        v.check(0 <= request.page_size <= 500, "page_size", "must be 0 to 500")
        v.raise_if_any()
        stations = _listed(request.station_id)
        with read_snapshot(self.rt.engine) as conn:
            found = [a for a in queries.active_alerts(conn)
                     if stations is None or {a.area.station_id, *a.area.shared_station_ids} & set(stations)]
        found.sort(key=lambda a: (a.update_time, a.id), reverse=True)
        scope = request.station_id or ("city" if stations is None else "-".join(stations))
        return mapping.cap_feed_body(found[:request.page_size or 100], self.rt.context.cap_sender, scope=scope,
                                     updated=self.rt.clock())

    # -- obligations -------------------------------------------------------------
    def CreateObligation(self, request: pb.CreateObligationRequest, context) -> pb.Obligation:
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
            v.check(mapping.seconds(o.period) >= 0, "obligation.period", "must not be negative")
        v.raise_if_any()
        # An obligation is answered as it is when made (or completed): its state at that time.
        return self._work("CreateObligation", request, pb.Obligation, lambda uow: handlers.obligations.create_obligation(
            uow, kind=o.kind, subject=o.subject.strip(), station_id=o.station_id, description=o.description.strip(),
            due=from_pb(o.due_time), period_s=mapping.seconds(o.period)),
            lambda created: mapping.obligation_to_pb(created, created.update_time))

    def GetObligation(self, request: pb.GetObligationRequest, context) -> pb.Obligation:
        oid = name_id(request.name, "obligations")
        with read_snapshot(self.rt.engine) as conn:
            found = queries.obligation(conn, oid)
        if found is None:
            raise NotFound(request.name)
        return mapping.obligation_to_pb(found, self.rt.clock())

    def ListObligations(self, request: pb.ListObligationsRequest, context) -> pb.ListObligationsResponse:
        v = Violations()
        size = v.page_size(request.page_size)
        after = time_keyset(decode_page_token(request.page_token, v, ("t", "id")), v)
        v.raise_if_any()
        t = self.rt.clock()
        with read_snapshot(self.rt.engine) as conn:
            rows = queries.obligation_page(conn, state=mapping.obligation_state_name(request.state),
                                           station_id=request.station_id, kind=request.kind, now=t, after=after,
                                           size=size)
        page, next_token = paginate(rows, size, lambda r: {"t": r.due_time.isoformat(), "id": r.id})
        return pb.ListObligationsResponse(obligations=[mapping.obligation_to_pb(r, t) for r in page],
                                          next_page_token=next_token)

    def CompleteObligation(self, request: pb.CompleteObligationRequest, context) -> pb.Obligation:
        oid = name_id(request.name, "obligations", request_id=request.request_id)
        return self._work("CompleteObligation", request, pb.Obligation,
                          lambda uow: handlers.obligations.complete_obligation(uow, obligation_id=oid,
                                                                               comment=request.comment),
                          lambda done: mapping.obligation_to_pb(done, done.update_time))

    def StreamEvents(self, request, context):
        yield from self.rt.feed.stream(request, context)
