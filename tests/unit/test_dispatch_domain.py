"""Dispatch recommendation and lifecycle rules without a database."""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from services.dispatch.domain import (
    SYSTEM, Assignment, AssignmentChanged, CaseCreated, CaseUpdated, CentreError, DispatchCase, FollowUpFlagged,
    SILENT_INSTRUCTION, Receipt, Recommendation, ReportFacts, RetryPolicy, StopPayment, Unit, UnitMove, can_move, case_status,
    distance_m, duty_roster, matrix, recommend, search,
)
from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied

NOON = datetime(2026, 11, 23, 4, 0, tzinfo=timezone.utc)  # 12:00 in the city
MIDNIGHT = datetime(2026, 11, 23, 16, 0, tzinfo=timezone.utc)  # 00:00 in the city


def unit(uid, kind, station, lon, lat, fix=NOON):
    return Unit(uid, uid, kind, station, [], "", [], "AVAILABLE", lon, lat, fix, True)


def test_distance_is_metres():
    # One hundredth of a degree of latitude is about 1.11 km.
    assert 1100 < distance_m(114.3, 30.58, 114.3, 30.59) < 1125


def test_fight_needs_patrol_and_community_officer_from_the_matrix():
    m = matrix()
    units = [
        unit("far-car", "PATROL_CAR", "S01", 114.33, 30.58),
        unit("near-car", "PATROL_CAR", "S01", 114.301, 30.58),
        unit("cop", "COMMUNITY_OFFICER", "S01", 114.302, 30.58),
        unit("detective", "CRIMINAL_INVESTIGATION", "S01", 114.3001, 30.58),
    ]
    picks, gaps = recommend(units, needs=m.needs("FIGHT", NOON), station_id="S01", lon=114.30, lat=30.58,
                            stale_before=NOON - timedelta(minutes=15))
    assert [(p.unit_id, p.role, p.capability) for p in picks] == [
        ("near-car", "PRIMARY", "PATROL"), ("cop", "SUPPORT", "COMMUNITY")]
    assert not gaps
    assert "辖区内最近" in picks[0].reason and "米" in picks[0].reason


def test_missing_person_at_night_brings_a_drone():
    m = matrix()
    assert [n.capability for n in m.needs("MISSING_PERSON", MIDNIGHT)] == ["PATROL", "DRONE"]
    assert [n.capability for n in m.needs("MISSING_PERSON", NOON)] == ["PATROL", "COMMUNITY"]


def test_neighbour_is_taken_only_when_clearly_faster():
    m = matrix()
    needs = [m.need("PATROL_CAR", "PRIMARY")]
    own_far = unit("own", "PATROL_CAR", "S01", 114.35, 30.58)  # ~4.8 km
    neighbour_near = unit("nb", "PATROL_CAR", "S02", 114.302, 30.58)  # ~0.2 km
    picks, _ = recommend([own_far, neighbour_near], needs=needs, station_id="S01", lon=114.30, lat=30.58,
                         stale_before=None)
    assert picks[0].unit_id == "nb" and picks[0].cross_station and "邻近派出所" in picks[0].reason
    own_close = unit("own", "PATROL_CAR", "S01", 114.305, 30.58)  # ~0.5 km: not 60 s slower
    picks, _ = recommend([own_close, neighbour_near], needs=needs, station_id="S01", lon=114.30, lat=30.58,
                         stale_before=None)
    assert picks[0].unit_id == "own"


def test_stale_position_gets_a_penalty():
    m = matrix()
    needs = [m.need("PATROL_CAR", "PRIMARY")]
    stale = unit("stale", "PATROL_CAR", "S01", 114.301, 30.58, fix=NOON - timedelta(hours=2))
    fresh = unit("fresh", "PATROL_CAR", "S01", 114.306, 30.58)
    picks, _ = recommend([stale, fresh], needs=needs, station_id="S01", lon=114.30, lat=30.58,
                         stale_before=NOON - timedelta(minutes=15))
    assert picks[0].unit_id == "fresh"
    picks, _ = recommend([stale], needs=needs, station_id="S01", lon=114.30, lat=30.58,
                         stale_before=NOON - timedelta(minutes=15))
    assert picks[0].position_stale and "位置信息已过时" in picks[0].reason
    assert picks[0].eta_seconds >= m.stale_penalty_s


def test_lifecycle_moves_only_forward():
    assert can_move("OFFERED", "ACCEPTED") and can_move("CLEARED", "REPORTED_BACK")
    assert not can_move("OFFERED", "ON_SCENE") and not can_move("REPORTED_BACK", "CLEARED")


def test_case_status_follows_its_assignments():
    def a(state):
        return Assignment("a", "c", "u", "u", "PATROL_CAR", "S01", [], "PRIMARY", "PATROL", state, 1, "", 0,
                          NOON, None, NOON)

    assert case_status("PENDING", [a("OFFERED")]) == "PENDING"
    assert case_status("PENDING", [a("ACCEPTED"), a("OFFERED")]) == "DISPATCHED"
    assert case_status("DISPATCHED", [a("ON_SCENE"), a("EN_ROUTE")]) == "ON_SCENE"
    assert case_status("ON_SCENE", [a("CLEARED"), a("DECLINED")]) == "CLEARED"
    assert case_status("CLEARED", [a("REPORTED_BACK"), a("CLEARED")]) == "REPORTED_BACK"
    assert case_status("REPORTED_BACK", [a("REPORTED_BACK"), a("EXPIRED")]) == "CLOSED"


# -- the case aggregate: its state machine and the events it records ---------------------------------

FRAUD = "我用建设银行卡分三笔转了八万六千元，卡号6222020200112233445"
OFFICER = AuthContext(subject="P-1", roles=frozenset({"officer"}), station="S01")
DISPATCHER = AuthContext(subject="d-1", roles=frozenset({"dispatcher"}), station="S01")


def facts(incident_type="FIGHT", *, received=NOON - timedelta(seconds=20), description="有人打架",
          silent=False) -> ReportFacts:
    return ReportFacts(name="reports/r1", police=True, merged_into="", station_id="S01", grid_id="S01-G01",
                       incident_type=incident_type, priority=2, lon=114.30, lat=30.58, address_text="中山大道",
                       description=description, receive_time=received, silent=silent)


def pick(uid, role="PRIMARY", capability="PATROL") -> Recommendation:
    return Recommendation(uid, uid, "PATROL_CAR", "S01", role, 100.0, 30, "最近", capability)


def crew(uid, kind="PATROL_CAR", station="S01", status="AVAILABLE", on_duty=True) -> Unit:
    return Unit(uid, f"呼号{uid}", kind, station, [], "", [{"officer_id": "P-1" if uid == "car" else f"P-{uid}",
                                                           "name": "警员"}], status, 114.3, 30.58, NOON, on_duty)


def opened(incident_type="FIGHT", **kw) -> DispatchCase:
    return DispatchCase.open(facts(incident_type, **kw), level="STATION", arrival_target_s=60,
                             picks=[pick("car"), pick("cop", "SUPPORT", "COMMUNITY")], gaps=[], now=NOON)


def offered(*units: Unit) -> DispatchCase:
    case = opened()
    case.pull_events()
    for u in units or (crew("car"), crew("cop", "COMMUNITY_OFFICER")):
        case.offer(u, role="PRIMARY" if u.unit_id == "car" else "SUPPORT",
                   capability="COMMUNITY" if u.kind == "COMMUNITY_OFFICER" else "PATROL", reason="最近", actor=SYSTEM,
                   at=NOON, expire_at=NOON + timedelta(seconds=30))
    case.pull_events()
    case.pull_unit_moves()
    case.pull_measures()
    return case


def names(events) -> list[str]:
    return [type(e).__name__ for e in events]


def test_a_case_opens_with_its_recommendations_and_records_that_it_was_created():
    case = opened()
    assert (case.status, case.report_time, case.create_time) == ("PENDING", NOON - timedelta(seconds=20), NOON)
    assert [e.action for e in case.timeline] == ["OPENED", "RECOMMENDED"]
    assert case.timeline[1].detail == "car：最近；cop：最近" and case.timeline[0].actor == "dispatch"
    (created,) = case.pull_events()
    assert isinstance(created, CaseCreated) and created.stop_payment is None
    assert [e.action for e in created.entries] == ["OPENED", "RECOMMENDED"]
    assert case.pull_measures() == [("dispatch", 20.0)]
    need = matrix().need("COMMUNITY", "SUPPORT")
    nobody = DispatchCase.open(facts(received=None), level="STATION", arrival_target_s=0, picks=[], gaps=[need],
                               now=NOON)
    assert nobody.timeline[1].detail == f"暂无可用警力，待指挥员调派；暂无空闲的{need.label}"
    assert nobody.report_time == NOON and nobody.pull_measures() == []


def test_a_case_keeps_its_reports_channel_for_the_sla_figures():
    from smart110.intake.v1 import intake_service_pb2 as intake_pb
    from smart110.referral.v1 import referral_service_pb2 as referral_pb

    from services.dispatch import mapping

    case = DispatchCase.open(replace(facts(), channel="SILENT_ALARM"), level="STATION", arrival_target_s=60,
                             picks=[], gaps=[], now=NOON)
    assert (case.channel, case.priority) == ("SILENT_ALARM", 2)
    assert opened().channel == ""
    report = intake_pb.Report(name="reports/r9", channel=intake_pb.CHANNEL_WECHAT)
    assert mapping.report_from_pb(report).channel == "WECHAT"
    assert mapping.report_from_pb(intake_pb.Report(name="reports/r8")).channel == ""
    order = referral_pb.WorkOrder(name="workOrders/w1", status=referral_pb.WORK_ORDER_STATUS_PRELIMINARY_POLICE,
                                  preliminary_station="stations/S01", urgency=1, description="噪音")
    assert mapping.preliminary_order_from_pb(order).channel == "HOTLINE_12345"


def test_a_fraud_case_opens_with_its_stop_payment_hand_off():
    case = opened("TELECOM_FRAUD", description=FRAUD)
    (sp,) = case.stop_payments
    assert (sp.state, sp.amount_fen, sp.banks, sp.victim_account) == (
        "QUEUED", 8_600_000, ["中国建设银行"], "6222020200112233445")
    assert sp.idempotency_key == f"smart110:{sp.name}" and sp.requested_by == "dispatch"
    assert case.timeline[-1].action == "STOP_PAYMENT_QUEUED" and "8.6万元" in case.timeline[-1].detail
    (created,) = case.pull_events()
    assert created.stop_payment.id == sp.id and created.entries[-1].action == "STOP_PAYMENT_QUEUED"


def test_an_offer_records_the_assignment_change_but_no_case_update():
    case = opened()
    case.pull_events()
    a = case.offer(crew("car"), role="PRIMARY", capability="PATROL", reason="最近", actor=SYSTEM, at=NOON,
                   expire_at=NOON + timedelta(seconds=30))
    assert (a.state, a.version, a.offer_expire_time) == ("OFFERED", 1, NOON + timedelta(seconds=30))
    (event,) = case.pull_events()
    assert isinstance(event, AssignmentChanged) and event.previous_state == "" and event.assignment.state == "OFFERED"
    assert case.pull_unit_moves() == [], "the unit was claimed for the offer already"
    assert "派单给呼号car（巡逻车，主办）：最近" == case.timeline[-1].detail


def test_accepting_dispatches_the_case_and_moves_the_unit():
    case = offered()
    at = NOON + timedelta(seconds=10)
    a = case.accept(case.assignments[0].id, actor=OFFICER, unit_officers=[], at=at)
    assert (a.state, a.accept_time, a.version) == ("ACCEPTED", at, 2)
    assert (case.status, case.accept_time, case.update_time) == ("DISPATCHED", at, at)
    changed, updated = case.pull_events()
    assert isinstance(changed, AssignmentChanged) and changed.previous_state == "OFFERED"
    assert changed.case.status == "DISPATCHED" and changed.actor == OFFICER
    assert isinstance(updated, CaseUpdated) and updated.action == "DISPATCHED"
    assert updated.before.status == "PENDING" and updated.before.accept_time is None
    assert [e.action for e in updated.new_entries] == ["ACCEPTED", "DISPATCHED"]
    assert updated.new_entries[1].detail == "警情状态：已派警"
    assert case.pull_unit_moves() == [UnitMove("car", "BUSY")]
    assert case.pull_measures() == [("accept", 30.0)]


def test_who_may_act_and_what_may_follow_what():
    case = offered()
    a = case.assignments[0]
    someone = AuthContext(subject="P-9", roles=frozenset({"officer"}), station="S01")
    with pytest.raises(PermissionDenied):
        case.accept(a.id, actor=someone, unit_officers=[], at=NOON)
    elsewhere = AuthContext(subject="P-1", roles=frozenset({"officer"}), station="S99")
    with pytest.raises(PermissionDenied):
        case.accept(a.id, actor=elsewhere, unit_officers=[], at=NOON)
    case.accept(a.id, actor=someone, unit_officers=[{"officer_id": "P-9"}], at=NOON)  # the unit's officer now
    with pytest.raises(FailedPrecondition) as err:
        case.advance(a.id, target="ON_SCENE", actor=DISPATCHER, unit_officers=[], at=NOON)
    assert err.value.reason == "ILLEGAL_TRANSITION"
    with pytest.raises(FailedPrecondition) as err:
        case.accept(case.assignments[1].id, actor=DISPATCHER, unit_officers=[], at=NOON + timedelta(seconds=30))
    assert err.value.reason == "OFFER_EXPIRED"
    with pytest.raises(NotFound):
        case.assignment("nope")


def test_the_lifecycle_to_report_back_closes_the_case_and_withdraws_the_offers_nobody_answered():
    case = offered()
    a, support_offer = case.assignments
    case.accept(a.id, actor=OFFICER, unit_officers=[], at=NOON)
    case.advance(a.id, target="EN_ROUTE", actor=OFFICER, unit_officers=[], at=NOON + timedelta(seconds=5))
    case.advance(a.id, target="ON_SCENE", actor=OFFICER, unit_officers=[], at=NOON + timedelta(seconds=40))
    assert case.status == "ON_SCENE" and case.arrival_seconds == 60 and case.arrival_target_met
    assert case.timeline[-2].detail == "呼号car到达现场，距接警60秒，达到60秒到场要求"
    case.advance(a.id, target="CLEARED", actor=OFFICER, unit_officers=[], at=NOON + timedelta(seconds=100))
    assert case.status == "CLEARED"
    case.pull_events()
    assert case.pull_unit_moves() == [UnitMove("car", "BUSY"), UnitMove("car", "EN_ROUTE"),
                                      UnitMove("car", "ON_SCENE"), UnitMove("car", "AVAILABLE")]
    done = NOON + timedelta(seconds=200)
    case.report_back(a.id, outcome="MEDIATED", notes="双方已调解", evidence=[{"kind": "IMAGE"}], actor=OFFICER,
                     unit_officers=[], at=done)
    assert (case.status, case.close_time, support_offer.state) == ("CLOSED", done, "CANCELLED")
    events = case.pull_events()
    assert names(events) == ["AssignmentChanged", "CaseUpdated", "AssignmentChanged"]
    assert events[0].reason == "双方已调解" and events[1].action == "CLOSED"
    assert events[2].assignment.state == "CANCELLED" and events[2].actor == SYSTEM
    assert case.pull_unit_moves() == [UnitMove("cop", "AVAILABLE")]
    assert [s for s, _ in case.pull_measures()] == ["accept", "arrive", "close"]
    assert [e.action for e in case.timeline[-3:]] == ["REPORTED_BACK", "CLOSED", "CANCELLED"]
    assert case.timeline[-3].detail == "呼号car回告：调解处理，附证据1件"


def test_events_carry_snapshots_not_the_live_case():
    case = offered()
    a = case.assignments[0]
    case.accept(a.id, actor=OFFICER, unit_officers=[], at=NOON)
    changed, updated = case.pull_events()
    case.advance(a.id, target="EN_ROUTE", actor=OFFICER, unit_officers=[], at=NOON + timedelta(seconds=9))
    assert changed.assignment.state == "ACCEPTED" and updated.case.status == "DISPATCHED"
    assert updated.case.update_time == NOON and not updated.case.timeline and not updated.case.assignments


def test_a_declined_or_expired_offer_asks_for_a_replacement_unless_covered():
    case = offered(crew("car"), crew("car2"))
    first, second = case.assignments
    case.decline(first.id, reason="车辆故障", actor=OFFICER, unit_officers=[], at=NOON)
    assert (first.state, first.decline_reason) == ("DECLINED", "车辆故障")
    assert not case.needs_replacement(first), "the other offer covers the capability"
    assert case.expire(second.id, at=NOON + timedelta(seconds=29), timeout_s=30) is None
    expired = case.expire(second.id, at=NOON + timedelta(seconds=30), timeout_s=30)
    assert expired.state == "EXPIRED" and case.needs_replacement(expired)
    assert case.timeline[-1].detail == "呼号car2超过30秒未接单，转派下一警力"
    assert case.units_tried() == {"car", "car2"}
    assert case.pull_unit_moves() == [UnitMove("car", "AVAILABLE"), UnitMove("car2", "AVAILABLE")]


def test_offering_by_hand_checks_the_case_and_the_unit_and_picks_a_role():
    case = offered()
    for u, reason in ((crew("car"), "ALREADY_ON_CASE"), (crew("x", on_duty=False), "UNIT_OFF_DUTY"),
                      (crew("y", status="BUSY"), "UNIT_NOT_AVAILABLE")):
        with pytest.raises(FailedPrecondition) as err:
            case.offer_by_hand(u, role="", reason="", capability="PATROL", actor=DISPATCHER, at=NOON, expire_at=NOON)
        assert err.value.reason == reason
    with pytest.raises(FailedPrecondition) as err:
        case.offer_by_hand(crew("z"), role="LEGAL_GUIDANCE", reason="", capability="PATROL", actor=DISPATCHER,
                           at=NOON, expire_at=NOON)
    assert err.value.reason == "ROLE_NEEDS_LEGAL_OFFICER"
    roles = [case.offer_by_hand(u, role="", reason="", capability="", actor=DISPATCHER, at=NOON, expire_at=NOON).role
             for u in (crew("legal", "LEGAL_OFFICER"), crew("dr", "DRONE"), crew("car3"))]
    assert roles == ["LEGAL_GUIDANCE", "SPECIALIST", "REINFORCEMENT"]
    assert case.assignments[-1].reason == "指挥员指定派单"


def test_a_correction_of_the_report_is_carried_to_the_open_case():
    case = offered()
    assert not case.reclassify(incident_type="FIGHT", priority=2, at=NOON)
    assert case.reclassify(incident_type="ROBBERY", priority=0, at=NOON + timedelta(seconds=5))
    (updated,) = case.pull_events()
    assert (updated.action, updated.before.incident_type, updated.case.incident_type) == (
        "RECLASSIFIED", "FIGHT", "ROBBERY")
    assert updated.new_entries[0].detail == "接警单更正：警情类型 FIGHT → ROBBERY" and case.priority == 2
    case.status = "CLOSED"
    assert not case.reclassify(incident_type="THEFT", priority=0, at=NOON)


def test_a_silent_alarm_opens_a_silent_case_and_the_case_follows_its_report():
    case = opened("SILENT_ALARM", description="", silent=True)
    assert case.silent and case.instructions == SILENT_INSTRUCTION == "无声报警：勿回拨报警人，静默接近"
    assert [e.action for e in case.timeline] == ["OPENED", "RECOMMENDED", "SILENT_ALARM"]
    assert case.timeline[-1].detail == SILENT_INSTRUCTION
    (created,) = case.pull_events()
    assert created.case.silent and created.entries[-1].action == "SILENT_ALARM"
    assert not case.follow_silence(True, at=NOON), "already silent"
    assert case.follow_silence(False, at=NOON + timedelta(seconds=5))
    (lifted,) = case.pull_events()
    assert (lifted.action, lifted.before.silent, lifted.case.silent) == ("SILENT_ALARM_LIFTED", True, False)
    assert case.instructions == "" and case.update_time == NOON + timedelta(seconds=5)
    ordinary = offered()
    assert not ordinary.silent and ordinary.instructions == ""
    assert ordinary.follow_silence(True, at=NOON)
    (silenced,) = ordinary.pull_events()
    assert silenced.action == "SILENT_ALARM" and SILENT_INSTRUCTION in silenced.new_entries[0].detail
    ordinary.status = "CLOSED"
    assert not ordinary.follow_silence(False, at=NOON) and ordinary.silent


def test_levels_go_up_with_a_reason_and_down_only_by_command():
    case = offered()
    chief = AuthContext(subject="chief", roles=frozenset({"station_chief"}), station="S01")
    other_chief = AuthContext(subject="chief2", roles=frozenset({"station_chief"}), station="S02")
    with pytest.raises(PermissionDenied) as err:
        case.change_level("COUNTY", reason="x", actor=other_chief, at=NOON)
    assert err.value.reason == "OTHER_STATION"
    with pytest.raises(FailedPrecondition) as err:
        case.change_level("STATION", reason="x", actor=chief, at=NOON)
    assert err.value.reason == "SAME_LEVEL"
    case.change_level("CITY", reason="持械", actor=chief, at=NOON)
    (up,) = case.pull_events()
    assert (up.action, up.previous_level, up.case.level) == ("ESCALATED", "STATION", "CITY")
    assert up.new_entries[0].detail == "由派出所级升级为市级" and up.new_entries[0].reason == "持械"
    with pytest.raises(PermissionDenied) as err:
        case.change_level("STATION", reason="x", actor=chief, at=NOON)
    assert err.value.reason == "ROLE_REQUIRED"
    case.change_level("COUNTY", reason="已控制", actor=DISPATCHER, at=NOON)
    assert case.pull_events()[0].action == "DEESCALATED"
    case.status = "CLOSED"
    with pytest.raises(FailedPrecondition) as err:
        case.change_level("CITY", reason="x", actor=DISPATCHER, at=NOON)
    assert err.value.reason == "CASE_CLOSED"


def test_a_stop_payment_request_and_the_centres_news_are_case_updates_carrying_the_hand_off():
    case = opened("TELECOM_FRAUD", description=FRAUD)
    case.pull_events()
    at = NOON + timedelta(minutes=3)
    sp = case.request_stop_payment(bank="中国工商银行", victim_account="6222000011112222", amount_fen=100,
                                   actor=DISPATCHER, at=at)
    assert (sp.victim_name, sp.victim_phone, sp.description, sp.requested_by, sp.requested_roles) == (
        "", "", FRAUD, "d-1", ["dispatcher"])
    (queued,) = case.pull_events()
    assert queued.action == "STOP_PAYMENT_QUEUED" and queued.stop_payment.id == sp.id
    assert queued.before.update_time == NOON and queued.case.update_time == at
    news = sp.answered(Receipt("FROZEN", "R-1", 100), at, RetryPolicy())
    case.stop_payment_changed(sp, news, at)
    (frozen,) = case.pull_events()
    assert frozen.action == "STOP_PAYMENT_FROZEN" and frozen.stop_payment.state == "FROZEN"
    fight = opened()
    with pytest.raises(FailedPrecondition) as err:
        fight.request_stop_payment(bank="x", victim_account="1", amount_fen=0, actor=DISPATCHER, at=at)
    assert err.value.reason == "NOT_A_FRAUD_CASE"


def test_the_follow_up_needs_a_report_back_names_the_officers_and_flags_an_unsatisfied_citizen():
    case = offered()
    a = case.assignments[0]
    with pytest.raises(FailedPrecondition) as err:
        case.rate(satisfaction="SATISFIED", comment="", actor=DISPATCHER, at=NOON)
    assert err.value.reason == "NOT_REPORTED_BACK"
    case.accept(a.id, actor=OFFICER, unit_officers=[], at=NOON)
    for target in ("EN_ROUTE", "ON_SCENE", "CLEARED"):
        case.advance(a.id, target=target, actor=OFFICER, unit_officers=[], at=NOON)
    case.report_back(a.id, outcome="MEDIATED", notes="", evidence=[], actor=OFFICER, unit_officers=[], at=NOON)
    case.pull_events()
    f = case.rate(satisfaction="UNSATISFIED", comment="来得太慢", actor=DISPATCHER, at=NOON + timedelta(hours=1))
    assert f.flagged and [(o.officer_id, o.unit_id) for o in f.officers] == [("P-1", "car")]
    updated, flagged = case.pull_events()
    assert updated.action == "RATED" and updated.before.follow_up is None and updated.case.follow_up == f
    assert [e.action for e in updated.new_entries] == ["RATED", "FOLLOW_UP_FLAGGED"]
    assert isinstance(flagged, FollowUpFlagged) and flagged.follow_up == f
    with pytest.raises(FailedPrecondition) as err:
        case.rate(satisfaction="SATISFIED", comment="", actor=DISPATCHER, at=NOON)
    assert err.value.reason == "ALREADY_RATED"


# -- the stop-payment hand-off as the sender works on it ------------------------------------------------

def test_the_centres_answers_move_a_hand_off_and_release_the_lease():
    policy = RetryPolicy(base_seconds=10, cap_seconds=40, result_check_seconds=5)
    sp = StopPayment.queue(case_id="c1", banks=["中国建设银行"], victim_account="", amount_fen=100, now=NOON)
    sp.claim("a", NOON, policy)
    assert (sp.claimed_by, sp.lease_until) == ("a", NOON + policy.lease)
    assert sp.answered(CentreError("UNAVAILABLE", "down", retryable=True), NOON, policy) is None
    assert (sp.state, sp.attempts, sp.last_error, sp.claimed_by) == ("QUEUED", 1, "UNAVAILABLE: down", None)
    assert sp.next_attempt_time == NOON + policy.retry_delay(1)
    news = sp.answered(Receipt("", "R-1"), NOON, policy)
    assert (news.action, sp.state, sp.attempts, sp.checks) == ("STOP_PAYMENT_ACCEPTED", "ACCEPTED", 2, 0)
    assert news.actor == "antifraud-centre" and sp.next_attempt_time == NOON + policy.check_delay(1)
    assert sp.answered(Receipt("ACCEPTED", "R-1"), NOON, policy) is None, "still being worked on"
    assert sp.checks == 1
    assert sp.answered(CentreError("NOT_FOUND", not_found=True), NOON, policy) is None
    assert (sp.state, sp.next_attempt_time) == ("QUEUED", NOON)
    news = sp.answered(CentreError("INVALID_ARGUMENT", "bad"), NOON, policy)
    assert news.action == "STOP_PAYMENT_UNDELIVERABLE" and sp.next_attempt_time is None and sp.result_time == NOON
    done = StopPayment.queue(case_id="c1", banks=[], victim_account="", amount_fen=100, now=NOON)
    done.answered(Receipt("ACCEPTED", "R-2"), NOON, policy)
    news = done.answered(Receipt("FROZEN", "R-2", 100, "已冻结"), NOON, policy)
    assert news.detail == "止付成功（受理号R-2），已冻结1元：已冻结" and done.next_attempt_time is None


# -- units and the roster -----------------------------------------------------------------------------

def test_a_units_changes_are_kept_and_announced():
    u = crew("car", on_duty=False)
    with pytest.raises(PermissionDenied):
        u.update({"vehicle": "X"}, paths=["vehicle"], actor=OFFICER, at=NOON)
    chief = AuthContext(subject="chief", roles=frozenset({"station_chief"}), station="S01")
    with pytest.raises(PermissionDenied):
        u.update({"station_id": "S02"}, paths=["station_id"], actor=chief, at=NOON)
    u.update({"vehicle": "X"}, paths=["vehicle"], actor=chief, at=NOON)
    (event,) = u.pull_events()
    assert (event.action, event.reason, event.unit.vehicle) == ("UPDATED", "vehicle", "X")
    shift = u.add_shift(start=NOON - timedelta(hours=1), end=NOON + timedelta(hours=1), area="", actor=chief, at=NOON,
                        existing=[])
    assert u.on_duty and shift.covers(NOON) and not shift.covers(NOON + timedelta(hours=1))
    (event,) = u.pull_events()
    assert event.action == "SHIFT_ADDED" and event.shift == shift and event.unit.on_duty
    with pytest.raises(FailedPrecondition) as err:
        u.add_shift(start=NOON, end=NOON + timedelta(hours=2), area="", actor=chief, at=NOON, existing=[shift])
    assert err.value.reason == "SHIFT_OVERLAPS" and err.value.metadata == {"shift": shift.name}
    assert [e.action for e in u.timeline] == ["UPDATED", "SHIFT_ADDED"]


def test_the_sample_roster_covers_today_and_tomorrow_in_city_time():
    shifts = duty_roster(["u1"], NOON)
    assert [(s.shift_id, s.start_time.hour) for s in shifts] == [("20261123-u1", 0), ("20261124-u1", 0)]
    assert shifts[0].covers(NOON) and shifts[1].covers(NOON + timedelta(days=1))


def test_the_search_ranks_nearby_units_first_and_everyone_when_a_need_is_uncovered():
    m = matrix()
    asked = []
    near = unit("near", "PATROL_CAR", "S01", 114.301, 30.58)
    far = unit("far-cop", "COMMUNITY_OFFICER", "S09", 115.5, 31.5)

    def candidates(kinds, box):
        asked.append(box)
        return [u for u in (near, far) if u.kind in kinds and (box is None or box[0] <= u.lon <= box[2])]

    picks, gaps = search(candidates, needs=m.needs("FIGHT", NOON), station_id="S01", lon=114.30, lat=30.58,
                         stale_before=None, m=m)
    assert [p.unit_id for p in picks] == ["near", "far-cop"] and not gaps
    assert asked[0] is not None and asked[1] is None, "a need nobody nearby covers ranks all units"
    asked.clear()
    picks, _ = search(candidates, needs=[m.need("PATROL", "PRIMARY")], station_id="S01", lon=114.30, lat=30.58,
                      stale_before=None, m=m)
    assert [p.unit_id for p in picks] == ["near"] and len(asked) == 1


def test_the_centres_request_carries_the_victims_contact_read_for_the_delivery_and_old_hand_offs_keep_theirs():
    from services.dispatch import mapping
    from services.dispatch.domain import StopPayment, VictimContact

    case = opened("TELECOM_FRAUD", description=FRAUD)
    (sp,) = case.stop_payments
    assert sp.stored_victim is None, "a new hand-off keeps no caller data"
    sent = mapping.stop_payment_request_pb(sp, case, VictimContact("陈女士", "13800138000"))
    assert (sent.victim_name, sent.victim_phone, sent.report_name) == ("陈女士", "13800138000", case.report)
    bare = mapping.stop_payment_request_pb(sp, case, None)
    assert (bare.victim_name, bare.victim_phone) == ("", "") and bare.amount_fen == sp.amount_fen
    old = StopPayment.queue(case_id=case.id, banks=[], victim_account="", amount_fen=0, now=NOON,
                            victim_name="王先生", victim_phone="13900000000")
    assert old.stored_victim == VictimContact("王先生", "13900000000"), "written before: sent as it was kept"
