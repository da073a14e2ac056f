"""Alerts protobuf <-> domain: stored rule versions read and write as they always did, a signal
survives its round trip, and domain events become the alerts feed's messages."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from google.protobuf import duration_pb2, json_format

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from services.alerts import domain, mapping, seed
from services.alerts.domain import Alert, Area, Finding, Rule

T0 = datetime(2026, 11, 2, 20, 0, tzinfo=timezone.utc)


def full_rule() -> pb.Rule:
    return pb.Rule(
        name="rules/r1", version=4, display_name="网格打架", kind=pb.RULE_KIND_VOLUME, enabled=True,
        level=pb.ALERT_LEVEL_ORANGE, description="30分钟超过3起",
        terms=[pb.KeywordTerm(term="杀人", grade=pb.ALERT_LEVEL_RED, exclusions=["杀人游戏"]), pb.KeywordTerm(term="打")],
        window=duration_pb2.Duration(seconds=1800), threshold=3.5, area_kind=pb.AREA_KIND_GRID, h3_resolution=9,
        areas=["S01-G01"], incident_types=["FIGHT"], signal_types=["X"], parameters={"ring": "2"},
        suggested_action="增派", recipients=["stations/S01"], escalate_after=duration_pb2.Duration(seconds=1, nanos=5))


def stored_spec(rule: pb.Rule) -> dict:
    """How a rule version's spec was always written: the message without what the server sets."""
    copy = pb.Rule()
    copy.CopyFrom(rule)
    for f in ("name", "version", "version_stamp", "create_time", "update_time", "delete_time"):
        copy.ClearField(f)
    return json_format.MessageToDict(copy, preserving_proto_field_name=True)


@pytest.mark.parametrize("msg", [
    full_rule(),
    pb.Rule(display_name="空"),
    pb.Rule(display_name="零窗口", window=duration_pb2.Duration(), level=7, terms=[pb.KeywordTerm(term="x", grade=9)]),
])
def test_a_rule_is_stored_as_it_always_was_and_reads_back_the_same(msg):
    spec = domain.rule_spec(mapping.rule_from_pb(msg))
    assert spec == stored_spec(msg)
    back = mapping.rule_to_pb(domain.rule_from_spec(spec))
    assert stored_spec(back) == spec
    assert back.HasField("window") == msg.HasField("window"), "an explicit 0s stays apart from no window"


@pytest.mark.parametrize("window", [0.5, 1.25, 90.000001, 7.000000001, 3600.0, -0.5, -2.75])
def test_durations_are_written_and_read_as_protobuf_does(window):
    msg = pb.Rule(display_name="窗口", window=mapping._duration(window), escalate_after=mapping._duration(window / 3))
    rule = mapping.rule_from_pb(msg)
    spec = domain.rule_spec(rule)
    assert spec == stored_spec(msg)
    assert domain.rule_from_spec(spec) == rule == mapping.rule_from_pb(json_format.ParseDict(spec, pb.Rule()))


def test_the_stored_form_of_every_standing_rule_is_protobufs():
    for name, rule in seed.STANDING_RULES.items():
        msg = mapping.rule_to_pb(rule)
        assert domain.rule_spec(rule) == stored_spec(msg), name
        assert domain.rule_from_spec(stored_spec(msg)) == mapping.rule_from_pb(msg), name


@pytest.mark.parametrize("spec", [
    {"display_name": "数字", "kind": 2, "level": 3, "area_kind": 1, "terms": [{"term": "x", "grade": 4}, {}]},
    {"display_name": "未知", "kind": 42, "level": 9, "area_kind": 7, "terms": [{"grade": 11}]},
    {"display_name": "零", "kind": "RULE_KIND_UNSPECIFIED", "level": 0, "threshold": "NaN", "h3_resolution": "8"},
    {"display_name": "无穷", "threshold": "Infinity", "enabled": True, "window": "0s", "parameters": {"ring": "2"}},
    {"display_name": "空值", "description": None, "terms": None, "window": None, "name": "rules/x", "version": "3",
     "threshold": 2},
])
def test_a_stored_spec_reads_as_protobuf_reads_it(spec):
    ours = domain.rule_from_spec(spec)
    theirs = mapping.rule_from_pb(json_format.ParseDict(spec, pb.Rule(), ignore_unknown_fields=True))
    assert repr(ours) == repr(theirs)  # repr: NaN is not equal to itself


def test_undefined_enum_numbers_are_kept_for_validation_to_refuse():
    rule = mapping.rule_from_pb(pb.Rule(level=7, kind=42, terms=[pb.KeywordTerm(term="x", grade=9)]))
    assert (rule.level, rule.kind, rule.terms[0].grade) == ("7", "42", "9")


def test_the_standing_rules_keep_their_stored_form():
    spec = domain.rule_spec(seed.STANDING_RULES["keyword-major"])
    assert spec["kind"] == "RULE_KIND_KEYWORD" and spec["escalate_after"] == "120s" and spec["level"] == "ALERT_LEVEL_YELLOW"
    assert spec["terms"][0] == {"term": "杀人", "grade": "ALERT_LEVEL_RED", "exclusions": ["杀人游戏", "剧本杀人"]}
    gap = domain.rule_spec(seed.STANDING_RULES["strength-gap"])
    assert gap["window"] == "3600s" and gap["threshold"] == 3.0 and gap["h3_resolution"] == 8


def test_a_rule_answers_with_its_version_and_stamps():
    rule = mapping.rule_from_pb(full_rule())
    rule.id, rule.version = "r1", 4
    rule.version_stamp = domain.Stamp("chief", ["station_chief"], T0, "调整")
    rule.create_time, rule.update_time = T0 - timedelta(days=1), T0
    msg = mapping.rule_to_pb(rule)
    assert msg.name == "rules/r1" and msg.version == 4 and msg.version_stamp.reason == "调整"
    assert not msg.HasField("delete_time") and msg.escalate_after.nanos == 5


def test_a_signal_survives_its_round_trip():
    msg = pb.Signal(name="signals/g1", source="bank:x", signal_type="ABNORMAL_CASH_WITHDRAWAL", external_id="e1",
                    location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=114.3, latitude=30.5),
                                                 accuracy_m=12.5, source=common_pb2.LOCATION_SOURCE_GNSS),
                    address_text="某路1号", person_masked="张*", risk_score=0.8, description="多次取现",
                    attributes={"amount": "5000"}, alerts=["alerts/a1"], station_id="S01")
    msg.observe_time.FromDatetime(T0)
    msg.receive_time.FromDatetime(T0 + timedelta(seconds=1))
    assert mapping.signal_to_pb(mapping.signal_from_body(msg.SerializeToString())) == msg
    bare = pb.Signal(source="s", signal_type="T", location=common_pb2.Location(accuracy_m=3))
    assert mapping.signal_to_pb(mapping.signal_from_pb(bare)) == bare


def test_a_report_as_alerts_sees_it():
    msg = intake_pb.Report(name="reports/r1", description="有人打架", station_id="S01", grid_id="S01-G01",
                           classification=intake_pb.Classification(category=intake_pb.CATEGORY_POLICE,
                                                                   incident_type="FIGHT"),
                           merged_into="reports/r0", address_text="某小区")
    report = mapping.report_from_pb(msg)
    assert (report.id, report.category, report.point, report.receive_time) == ("r1", "POLICE", None, None)
    msg.location.point.CopyFrom(common_pb2.GeoPoint(longitude=114.3, latitude=30.5))
    msg.receive_time.FromDatetime(T0)
    report = mapping.report_from_pb(msg)
    assert report.point == (114.3, 30.5) and report.receive_time == T0 and not report.counted


def test_an_alert_change_is_the_feed_event_of_its_action():
    rule = Rule(id="k1", version=1, display_name="关键词", kind="KEYWORD", level="RED")
    f = Finding(rule=rule, level="RED", key=("term", "绑架"), area=Area("GRID", "S01-G01", "网格", "S01", "S01-G01",
                                                                       (114.3, 30.5)),
                subject="reports/r1", summary="绑架")
    alert = Alert.fire(f, alert_id="a1", now=T0, silence=None)
    alert.acknowledge(domain.SYSTEM, "收到", T0 + timedelta(minutes=1))
    fired, acked = alert.pull_events()
    kind, subject, payload = mapping.event_to_message(fired)
    assert (kind, subject) == ("alerts.AlertFired", "alerts/a1") and isinstance(payload, pb.AlertFired)
    assert payload.alert.state == pb.ALERT_STATE_FIRING and payload.alert.area.center.longitude == 114.3
    assert not payload.alert.notifications and not payload.alert.timeline, "events carry what changed"
    assert [(e.action, e.stamp.actor) for e in payload.new_entries] == [("FIRED", "alerts"), ("NOTIFIED", "alerts")]
    assert "通知 screens/S01（大屏）" in payload.new_entries[1].detail
    assert payload.alert.labels["rule"] == "rules/k1" and payload.alert.labels["level"] == "RED"
    kind, _, payload = mapping.event_to_message(acked)
    assert kind == "alerts.AlertUpdated" and payload.action == "ACKNOWLEDGED"
    assert payload.alert.acknowledge_stamp.actor == "alerts" and payload.alert.acknowledge_stamp.reason == "收到"
    assert not payload.alert.timeline and not payload.alert.notifications
    assert [(e.action, e.stamp.reason) for e in payload.new_entries] == [("ACKNOWLEDGED", "收到")]
    assert list(payload.changed_fields) == ["state", "acknowledge_stamp", "update_time"]
    with pytest.raises(TypeError):
        mapping.event_to_message(domain.Incident("r", T0, "", "", "", "", "", None, None, []))
