"""Dispatch's use cases on a fake unit of work: in-memory repositories, the real domain and event
mapping, no database. The events a use case publishes are read back from the fake outbox."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import pytest

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from services.dispatch import handlers, mapping
from services.dispatch.domain import (
    CentreError, Context, DispatchCase, DispatchSettings, PositionFix, Receipt, ReportFacts, RetryPolicy, Shift,
    Unit, matrix,
)
from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from tests.support import START, Clock, fake_unit_of_work

FRAUD = "我用建设银行卡分三笔转了八万六千元到“安全账户”，挂了电话才知道被骗了"
DISPATCHER = AuthContext(subject="d-1", roles=frozenset({"dispatcher"}), station="S01")
COMMANDER = AuthContext(subject="c-1", roles=frozenset({"commander"}))
CALL_TAKER = AuthContext(subject="ct-1", roles=frozenset({"call_taker"}), station="S01")


# -- in-memory repositories -----------------------------------------------------------------------

class Cases:
    def __init__(self):
        self.by_id: dict[str, DispatchCase] = {}
        self.measures: list[tuple[str, float]] = []

    def get(self, case_id, *, lock=False, timeline=False, stop_payments=False):
        return self.by_id.get(case_id)

    def brief(self, case_id):
        return self.by_id.get(case_id)

    def id_by_report(self, report):
        return next((c.id for c in self.by_id.values() if c.report == report), None)

    def add(self, case):
        if self.id_by_report(case.report) is not None:
            case.pull_measures()
            return False
        self.by_id[case.id] = case
        self.save(case)
        return True

    def save(self, case):
        self.measures += case.pull_measures()

    def due_offers(self, now, limit=100):
        return [(c.id, a.id) for c in self.by_id.values() for a in c.assignments
                if a.state == "OFFERED" and a.offer_expire_time <= now][:limit]


class Units:
    def __init__(self, units: list[Unit]):
        self.by_id = {u.unit_id: u for u in units}
        self.saved: list[str] = []
        self.moved: list[tuple] = []

    def get(self, unit_id, *, at, stale_before=None, lock=False):
        return self.by_id.get(unit_id)

    def candidates(self, kinds, *, station_id, box, at, stations=None):
        return [u for u in self.by_id.values() if u.status == "AVAILABLE" and u.on_duty and u.kind in kinds and (
            stations is None or u.station_id in stations) and (
            box is None or u.station_id == station_id or (box[0] <= u.lon <= box[2] and box[1] <= u.lat <= box[3]))]

    def grid_officer(self, grid_id, *, at, stale_before=None):
        return next((u for u in self.by_id.values() if u.kind == "COMMUNITY_OFFICER" and grid_id in u.grid_ids
                     and u.status == "AVAILABLE" and u.on_duty), None)

    def claim_for_offer(self, unit_id, *, at, stale_before=None):
        u = self.by_id.get(unit_id)
        if u is None or u.status != "AVAILABLE" or not u.on_duty:
            return None
        u.status = "OFFERED"
        return u

    def set_status(self, unit_id, status):
        self.by_id[unit_id].status = status

    def save(self, unit):
        self.saved.append(unit.unit_id)

    def move(self, unit_id, lon, lat, fix_time, accuracy_m):
        self.moved.append((unit_id, lon, lat))
        return unit_id in self.by_id


class Shifts:
    def __init__(self):
        self.all: list[Shift] = []

    def add(self, s):
        self.all.append(s)
        return True

    def overlapping(self, unit_id, start, end):
        return [s for s in self.all if s.unit_id == unit_id and s.overlaps(start, end)]


class Grids:
    def arrival_target_s(self, grid_id):
        return {"S01-G01": 60}.get(grid_id, 0)


class StopPayments:
    def __init__(self, cases: Cases):
        self.cases = cases

    def _all(self):
        return [sp for c in self.cases.by_id.values() for sp in c.stop_payments]

    def claim_next(self, *, sender, now, lease_until, skip=None):
        due = sorted((sp for sp in self._all() if sp.next_attempt_time is not None and sp.next_attempt_time <= now
                      and (sp.lease_until is None or sp.lease_until <= now) and sp.id not in (skip or ())),
                     key=lambda sp: (sp.next_attempt_time, sp.id))
        if not due:
            return None
        due[0].claimed_by, due[0].lease_until = sender, lease_until
        return due[0]

    def get(self, stop_payment_id, *, lock=False):
        return next(sp for sp in self._all() if sp.id == stop_payment_id)

    def save(self, sp):
        pass

    def next_due(self):
        return min((sp.next_attempt_time for sp in self._all() if sp.next_attempt_time), default=None)


@dataclass
class Repos:
    units: Units
    cases: Cases = field(default_factory=Cases)
    shifts: Shifts = field(default_factory=Shifts)
    grids: Grids = field(default_factory=Grids)
    stop_payments: StopPayments = None

    def __post_init__(self):
        self.stop_payments = StopPayments(self.cases)


def unit(uid, kind, lon, lat, *, station="S01", status="AVAILABLE", on_duty=True):
    return Unit(uid, f"呼号{uid}", kind, station, [], "", [{"officer_id": f"P-{uid}", "name": f"警员{uid}"}], status,
                lon, lat, START, on_duty)


def city() -> Repos:
    return Repos(Units([
        unit("car-1", "PATROL_CAR", 114.301, 30.58), unit("car-2", "PATROL_CAR", 114.303, 30.58),
        unit("cop-1", "COMMUNITY_OFFICER", 114.302, 30.58), unit("cop-2", "COMMUNITY_OFFICER", 114.305, 30.58),
        unit("af-1", "ANTI_FRAUD", 114.31, 30.58), unit("legal-1", "LEGAL_OFFICER", 114.32, 30.58),
        unit("car-far", "PATROL_CAR", 114.6, 30.9, station="S02"),
    ]))


class World:
    """The repositories, the clock and a fresh unit of work per use case (as RPCs and events have)."""

    def __init__(self, repos: Repos | None = None):
        self.repos = repos or city()
        self.clock = Clock()
        self.context = Context(settings=DispatchSettings(offer_timeout_s=30), matrix=matrix())
        self.published: list[tuple] = []

    def run(self, work, actor: AuthContext | None = None):
        uow = fake_unit_of_work(self.repos, event_mapping=mapping.event_to_message, clock=self.clock, actor=actor,
                                context=self.context)
        result = work(uow)
        uow.flush()
        self.published += uow.outbox.events
        return result

    def types(self) -> list[str]:
        return [t for t, _, _ in self.published]

    def last(self, event_type: str):
        return next(p for t, _, p in reversed(self.published) if t == event_type)

    def unit(self, uid) -> Unit:
        return self.repos.units.by_id[uid]

    def officer(self, uid) -> AuthContext:
        u = self.unit(uid)
        return AuthContext(subject=u.officers[0]["officer_id"], roles=frozenset({"officer"}), station=u.station_id)


def report(name="reports/r1", *, incident_type="FIGHT", description="小区门口有人打架", police=True, merged_into="",
           priority=2, received: datetime | None = START - timedelta(seconds=20), silent=False) -> ReportFacts:
    return ReportFacts(name=name, police=police, merged_into=merged_into, station_id="S01", grid_id="S01-G01",
                       incident_type=incident_type, priority=priority, lon=114.30, lat=30.58, address_text="中山大道",
                       description=description, receive_time=received, silent=silent)


def open_case(w: World, **kw) -> DispatchCase:
    return w.run(lambda uow: handlers.open_case_for_report(uow, report=report(**kw)))


def by_role(case: DispatchCase, role: str):
    return next(a for a in case.assignments if a.role == role)


# -- a report becomes a case ---------------------------------------------------------------------

def test_a_police_report_becomes_a_case_offered_at_once_to_the_recommended_units():
    w = World()
    case = open_case(w)
    assert case.status == "PENDING" and case.level == "STATION" and case.arrival_target_s == 60
    assert [(r.unit_id, r.role) for r in case.recommendations] == [("car-1", "PRIMARY"), ("cop-1", "SUPPORT")]
    assert [(a.unit_id, a.state, a.version) for a in case.assignments] == [("car-1", "OFFERED", 1),
                                                                         ("cop-1", "OFFERED", 1)]
    assert w.unit("car-1").status == w.unit("cop-1").status == "OFFERED"
    assert w.types() == ["dispatch.CaseCreated", "dispatch.AssignmentChanged", "dispatch.AssignmentChanged"]
    created = w.last("dispatch.CaseCreated")
    assert [e.action for e in created.new_entries] == ["OPENED", "RECOMMENDED"]
    assert not created.dispatch_case.assignments and not created.HasField("stop_payment")
    offered = [p for t, _, p in w.published if t == "dispatch.AssignmentChanged"]
    assert {(p.assignment.unit, p.action, p.previous_state) for p in offered} == {
        ("units/car-1", "OFFERED", 0), ("units/cop-1", "OFFERED", 0)}
    assert all(p.stamp.actor == "dispatch" and p.assignment.case_summary.name == case.name for p in offered)
    assert [a for a, _ in w.repos.cases.measures] == ["dispatch"]
    assert [e.action for e in case.timeline] == ["OPENED", "RECOMMENDED", "OFFERED", "OFFERED"]


def test_duplicates_non_police_reports_and_a_second_delivery_get_no_case():
    w = World()
    assert open_case(w, police=False) is None
    assert open_case(w, name="reports/dup", merged_into="reports/master") is None
    assert open_case(w) is not None
    published = len(w.published)
    assert open_case(w) is None, "the report has its case already"
    assert len(w.published) == published and w.repos.cases.measures == [("dispatch", 20.0)]


def test_a_fraud_report_is_handed_off_for_stop_payment_with_the_case():
    w = World()
    case = open_case(w, incident_type="TELECOM_FRAUD", description=FRAUD)
    (sp,) = case.stop_payments
    assert sp.state == "QUEUED" and sp.amount_fen == 8_600_000 and sp.banks == ["中国建设银行"]
    assert sp.next_attempt_time == START
    assert (sp.victim_name, sp.victim_phone, sp.stored_victim) == ("", "", None), \
        "no caller data kept: the sender reads the victim's contact from intake when it delivers"
    created = w.last("dispatch.CaseCreated")
    assert created.stop_payment.idempotency_key == sp.idempotency_key
    assert [e.action for e in created.new_entries] == ["OPENED", "RECOMMENDED", "STOP_PAYMENT_QUEUED"]


def test_a_pick_taken_meanwhile_goes_to_the_next_unit_and_a_need_nobody_covers_is_noted():
    w = World()
    real_claim = w.repos.units.claim_for_offer

    def claim(unit_id, **kw):
        if unit_id == "car-1":  # another case's offer got there first
            w.unit("car-1").status = "OFFERED"
            return None
        return real_claim(unit_id, **kw)

    w.repos.units.claim_for_offer = claim
    for uid in ("cop-1", "cop-2"):
        w.unit(uid).on_duty = False
    case = open_case(w)
    assert [(a.unit_id, a.capability) for a in case.assignments] == [("car-2", "PATROL")]
    assert [e.action for e in case.timeline] == ["OPENED", "RECOMMENDED", "OFFERED"]
    assert "暂无空闲的社区民警" in case.timeline[1].detail
    w.repos.units.claim_for_offer = lambda unit_id, **kw: None  # every pick is taken by another case
    case = open_case(w, name="reports/r2")
    assert not case.assignments and [e.action for e in case.timeline] == ["OPENED", "RECOMMENDED", "NO_UNIT"]
    assert case.timeline[-1].detail == "暂无可接单的巡逻警力，请指挥员调派"


# -- the assignment lifecycle ----------------------------------------------------------------------

def test_accepting_dispatches_the_case_and_the_unit_is_busy():
    w = World()
    case = open_case(w)
    a = by_role(case, "PRIMARY")
    w.clock.advance(10)
    got_case, got = w.run(lambda uow: handlers.accept(uow, case_id=case.id, assignment_id=a.id), w.officer("car-1"))
    assert got.state == "ACCEPTED" and got.version == 2 and got_case.status == "DISPATCHED"
    assert w.unit("car-1").status == "BUSY"
    assert w.types()[-2:] == ["dispatch.AssignmentChanged", "dispatch.CaseUpdated"]
    updated = w.last("dispatch.CaseUpdated")
    assert updated.action == "DISPATCHED" and list(updated.changed_fields) == [
        "status", "update_time", "accept_time", "accept_seconds"]
    assert [e.action for e in updated.new_entries] == ["ACCEPTED", "DISPATCHED"]
    assert w.last("dispatch.AssignmentChanged").previous_state == pb.ASSIGNMENT_STATE_OFFERED
    assert ("accept", 30.0) in w.repos.cases.measures


def test_only_the_units_officer_or_a_dispatcher_acts_and_unknown_assignments_are_not_found():
    w = World()
    case = open_case(w)
    a = by_role(case, "PRIMARY")
    with pytest.raises(PermissionDenied):
        w.run(lambda uow: handlers.accept(uow, case_id=case.id, assignment_id=a.id), w.officer("cop-1"))
    with pytest.raises(NotFound):
        w.run(lambda uow: handlers.accept(uow, case_id=case.id, assignment_id="nope"), DISPATCHER)
    with pytest.raises(NotFound):
        w.run(lambda uow: handlers.accept(uow, case_id="nope", assignment_id=a.id), DISPATCHER)
    w.run(lambda uow: handlers.accept(uow, case_id=case.id, assignment_id=a.id), DISPATCHER)


def test_the_last_report_back_closes_the_case_and_withdraws_unanswered_offers():
    w = World()
    case = open_case(w)
    a, support_offer = by_role(case, "PRIMARY"), by_role(case, "SUPPORT")
    officer = w.officer("car-1")
    w.run(lambda uow: handlers.accept(uow, case_id=case.id, assignment_id=a.id), officer)
    for target in ("EN_ROUTE", "ON_SCENE", "CLEARED"):
        w.clock.advance(5)
        w.run(lambda uow: handlers.advance(uow, case_id=case.id, assignment_id=a.id, target=target), officer)
    assert w.unit("car-1").status == "AVAILABLE" and case.status == "CLEARED"
    published = len(w.published)
    w.run(lambda uow: handlers.report_back(uow, case_id=case.id, assignment_id=a.id, outcome="MEDIATED",
                                           notes="双方已调解", evidence=[]), officer)
    assert case.status == "CLOSED" and case.close_time == w.clock()
    assert support_offer.state == "CANCELLED" and w.unit("cop-1").status == "AVAILABLE"
    assert [(t, getattr(p, "action", "")) for t, _, p in w.published[published:]] == [
        ("dispatch.AssignmentChanged", "REPORTED_BACK"), ("dispatch.CaseUpdated", "CLOSED"),
        ("dispatch.AssignmentChanged", "CANCELLED")]
    cancelled = w.last("dispatch.AssignmentChanged")
    assert cancelled.stamp.actor == "dispatch" and cancelled.assignment.case_summary.status == pb.CASE_STATUS_CLOSED
    assert [s for s, _ in w.repos.cases.measures] == ["dispatch", "accept", "arrive", "close"]


def test_a_declined_offer_goes_to_the_next_unit_for_the_same_need():
    w = World()
    case = open_case(w)
    a = by_role(case, "PRIMARY")
    _, declined = w.run(lambda uow: handlers.decline(uow, case_id=case.id, assignment_id=a.id, reason="车辆故障"),
                        w.officer("car-1"))
    assert declined.state == "DECLINED" and declined.decline_reason == "车辆故障"
    nxt = case.assignments[-1]
    assert (nxt.unit_id, nxt.capability, nxt.state) == ("car-2", "PATROL", "OFFERED")
    assert w.unit("car-1").status == "AVAILABLE"
    assert [p.action for t, _, p in w.published[-2:]] == ["DECLINED", "OFFERED"]


def test_the_sweeper_expires_offers_past_their_time_and_moves_them_on():
    w = World()
    case = open_case(w)
    w.clock.advance(29)
    assert w.run(lambda uow: handlers.due_offers(uow)) == []
    w.clock.advance(1)
    due = w.run(lambda uow: handlers.due_offers(uow))
    assert len(due) == 2
    expired = [w.run(lambda uow: handlers.expire_offer(uow, case_id=c, assignment_id=a)) for c, a in due]
    assert [x.state for x in expired] == ["EXPIRED", "EXPIRED"]
    assert {a.unit_id for a in case.assignments if a.state == "OFFERED"} == {"car-2", "cop-2"}
    assert w.run(lambda uow: handlers.expire_offer(uow, case_id=due[0][0], assignment_id=due[0][1])) is None


def test_a_dispatcher_offers_by_hand_with_the_role_the_unit_kind_gives():
    w = World()
    case = open_case(w)
    _, legal = w.run(lambda uow: handlers.offer_by_hand(uow, case_id=case.id, unit_id="legal-1", role="",
                                                        reason=""), DISPATCHER)
    assert (legal.role, legal.capability, legal.reason) == ("LEGAL_GUIDANCE", "LEGAL", "指挥员指定派单")
    assert w.last("dispatch.AssignmentChanged").stamp.actor == "d-1"
    _, far = w.run(lambda uow: handlers.offer_by_hand(uow, case_id=case.id, unit_id="car-far", role="",
                                                      reason="增援"), DISPATCHER)
    assert far.role == "REINFORCEMENT" and "跨所协作" in case.timeline[-1].detail
    with pytest.raises(FailedPrecondition) as err:
        w.run(lambda uow: handlers.offer_by_hand(uow, case_id=case.id, unit_id="car-far", role="", reason=""),
              DISPATCHER)
    assert err.value.reason == "ALREADY_ON_CASE"
    with pytest.raises(NotFound):
        w.run(lambda uow: handlers.offer_by_hand(uow, case_id=case.id, unit_id="nope", role="", reason=""),
              DISPATCHER)


# -- the report changes ------------------------------------------------------------------------------

def test_a_correction_is_carried_to_the_case_and_a_report_split_off_gets_its_own():
    w = World()
    case = open_case(w)
    w.run(lambda uow: handlers.apply_report_update(uow, report=report(incident_type="ROBBERY", priority=1),
                                                   action="CORRECTED"))
    assert (case.incident_type, case.priority) == ("ROBBERY", 1)
    updated = w.last("dispatch.CaseUpdated")
    assert updated.action == "RECLASSIFIED" and {"incident_type", "priority"} <= set(updated.changed_fields)
    assert "FIGHT → ROBBERY" in updated.new_entries[0].detail
    published = len(w.published)
    w.run(lambda uow: handlers.apply_report_update(uow, report=report(incident_type="ROBBERY", priority=1),
                                                   action="CORRECTED"))
    w.run(lambda uow: handlers.apply_report_update(uow, report=report(), action="RATED"))
    assert len(w.published) == published, "nothing changed"
    split = w.run(lambda uow: handlers.apply_report_update(uow, report=report("reports/r2"), action="UNMERGED"))
    assert split is not None and split.report == "reports/r2"


def test_a_silent_alarm_reaches_the_case_and_every_offer_with_the_instruction():
    """intake.Report.silent (a silent alarm) → the case → what each officer's phone is offered."""
    intake_report = intake_pb.Report(
        name="reports/r9", station_id="S01", grid_id="S01-G01", silent=True, voice_callback_allowed=False,
        classification=intake_pb.Classification(category=intake_pb.CATEGORY_POLICE, incident_type="SILENT_ALARM",
                                                priority=1),
        location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=114.30, latitude=30.58)))
    facts = mapping.report_from_pb(intake_report)
    assert facts.silent and facts.needs_case
    assert not mapping.report_from_pb(intake_pb.Report(name="reports/r8")).silent
    w = World()
    case = w.run(lambda uow: handlers.open_case_for_report(uow, report=facts))
    assert case.silent and case.instructions == "无声报警：勿回拨报警人，静默接近"
    assert "SILENT_ALARM" in [e.action for e in case.timeline]
    created = w.last("dispatch.CaseCreated")
    assert created.dispatch_case.silent and created.dispatch_case.instructions == case.instructions
    assert any(e.action == "SILENT_ALARM" and e.detail == case.instructions for e in created.new_entries)
    offers = [p.assignment for t, _, p in w.published if t == "dispatch.AssignmentChanged"]
    assert [o.unit for o in offers] == ["units/car-1"]
    assert all(o.case_summary.silent and o.case_summary.instructions == "无声报警：勿回拨报警人，静默接近"
               for o in offers)
    detail = mapping.case_to_pb(case)
    assert detail.silent and detail.instructions == case.instructions
    assert all(a.case_summary.name == "" for a in detail.assignments), "the detail's assignments stay lean"
    ordinary = open_case(w)
    assert not ordinary.silent and mapping.case_summary_to_pb(ordinary).instructions == ""
    assert "SILENT_ALARM" not in [e.action for e in ordinary.timeline]


def test_a_case_follows_its_report_becoming_silent_or_not_whatever_the_update():
    w = World()
    case = open_case(w)
    published = len(w.published)
    w.run(lambda uow: handlers.apply_report_update(uow, report=report(silent=True), action="DUPLICATE_LINKED"))
    assert case.silent and case.instructions
    updated = w.last("dispatch.CaseUpdated")
    assert updated.action == "SILENT_ALARM" and updated.dispatch_case.silent
    assert "silent" in updated.changed_fields and "instructions" in updated.changed_fields
    assert updated.new_entries[0].detail == "接警单更正为无声报警：勿回拨报警人，静默接近"
    assert len(w.published) == published + 1
    w.run(lambda uow: handlers.apply_report_update(uow, report=report(silent=True), action="RATED"))
    assert len(w.published) == published + 1, "already silent: nothing changes"
    w.run(lambda uow: handlers.apply_report_update(
        uow, report=report(silent=False, incident_type="ROBBERY", priority=1), action="CORRECTED"))
    assert not case.silent and case.instructions == "" and case.incident_type == "ROBBERY"
    actions = [p.action for t, _, p in w.published[published + 1:] if t == "dispatch.CaseUpdated"]
    assert actions == ["SILENT_ALARM_LIFTED", "RECLASSIFIED"]
    assert not w.last("dispatch.CaseUpdated").dispatch_case.silent


# -- levels, stop-payment, follow-up --------------------------------------------------------------------

def test_escalation_is_announced_with_the_previous_level():
    w = World()
    case = open_case(w)
    got = w.run(lambda uow: handlers.change_level(uow, case_id=case.id, level="CITY", reason="多人持械"), DISPATCHER)
    assert got.level == "CITY" and got.timeline[-1].reason == "多人持械"
    updated = w.last("dispatch.CaseUpdated")
    assert (updated.action, updated.previous_level, updated.dispatch_case.level) == (
        "ESCALATED", pb.CASE_LEVEL_STATION, pb.CASE_LEVEL_CITY)
    chief = AuthContext(subject="chief", roles=frozenset({"station_chief"}), station="S01")
    with pytest.raises(PermissionDenied):
        w.run(lambda uow: handlers.change_level(uow, case_id=case.id, level="STATION", reason="降级"), chief)
    with pytest.raises(NotFound):
        w.run(lambda uow: handlers.change_level(uow, case_id="nope", level="CITY", reason="x"), DISPATCHER)


def test_a_dispatchers_stop_payment_request_takes_the_victims_words_from_the_first_hand_off():
    w = World()
    case = open_case(w, incident_type="TELECOM_FRAUD", description=FRAUD)
    w.clock.advance(180)  # the victim finds the card number
    sp = w.run(lambda uow: handlers.request_stop_payment(uow, case_id=case.id, bank="中国工商银行",
                                                         victim_account="6222020200112233445", amount_fen=100),
               DISPATCHER)
    assert (sp.description, sp.requested_by, sp.requested_roles) == (FRAUD, "d-1", ["dispatcher"])
    assert (sp.victim_name, sp.victim_phone) == ("", ""), "read from intake at delivery, not kept"
    updated = w.last("dispatch.CaseUpdated")
    assert updated.action == "STOP_PAYMENT_QUEUED" and updated.stop_payment.name == sp.name
    assert updated.stop_payment.victim_account == "*" * 15 + "3445" and list(updated.changed_fields) == ["update_time"]
    fight = open_case(w, name="reports/fight")
    with pytest.raises(FailedPrecondition) as err:
        w.run(lambda uow: handlers.request_stop_payment(uow, case_id=fight.id, bank="x", victim_account="123456",
                                                        amount_fen=0), DISPATCHER)
    assert err.value.reason == "NOT_A_FRAUD_CASE"


def test_a_delivery_without_the_victims_contact_is_postponed_and_announces_nothing():
    w = World()
    case = open_case(w, incident_type="TELECOM_FRAUD", description=FRAUD)
    policy = RetryPolicy(base_seconds=10, cap_seconds=40)
    at = w.clock()
    sp, _ = w.run(lambda uow: handlers.claim_stop_payment(uow, sender="a", at=at, policy=policy, skip=set()))
    published = len(w.published)
    why = "intake could not read the victim's contact (UNAVAILABLE); retry later"
    assert w.run(lambda uow: handlers.postpone_stop_payment(uow, stop_payment_id=sp.id, sender="b", why=why, at=at,
                                                            policy=policy)) is None, "not b's lease"
    later = w.run(lambda uow: handlers.postpone_stop_payment(uow, stop_payment_id=sp.id, sender="a", why=why, at=at,
                                                             policy=policy))
    assert (later.state, later.attempts, later.last_error, later.claimed_by, later.next_attempt_time) == (
        "QUEUED", 1, why, None, at + timedelta(seconds=10))
    assert len(w.published) == published and case.id == later.case_id


def test_the_centres_answers_move_the_hand_off_on_and_a_lost_lease_records_nothing():
    w = World()
    case = open_case(w, incident_type="TELECOM_FRAUD", description=FRAUD)
    policy = RetryPolicy(base_seconds=10, cap_seconds=40, result_check_seconds=5)
    at = w.clock()
    sp, brief = w.run(lambda uow: handlers.claim_stop_payment(uow, sender="a", at=at, policy=policy, skip=set()))
    assert brief.id == case.id and sp.claimed_by == "a" and sp.lease_until == at + policy.lease
    assert w.run(lambda uow: handlers.claim_stop_payment(uow, sender="b", at=at, policy=policy, skip=set())) is None
    published = len(w.published)
    assert w.run(lambda uow: handlers.record_centre_answer(uow, stop_payment_id=sp.id, sender="b",
                                                           answer=Receipt("ACCEPTED", "R-1"), at=at,
                                                           policy=policy)) is None
    assert len(w.published) == published and sp.state == "QUEUED"
    at += timedelta(seconds=1)  # the centre answered
    w.run(lambda uow: handlers.record_centre_answer(uow, stop_payment_id=sp.id, sender="a",
                                                    answer=Receipt("ACCEPTED", "R-1"), at=at, policy=policy))
    assert (sp.state, sp.attempts, sp.claimed_by, sp.next_attempt_time) == ("ACCEPTED", 1, None,
                                                                           at + policy.check_delay(1))
    updated = w.last("dispatch.CaseUpdated")
    assert updated.action == "STOP_PAYMENT_ACCEPTED" and list(updated.changed_fields) == ["update_time"]
    assert updated.new_entries[0].stamp.actor == "antifraud-centre"
    later = at + policy.check_delay(1)
    claimed, _ = w.run(lambda uow: handlers.claim_stop_payment(uow, sender="a", at=later, policy=policy, skip=set()))
    published = len(w.published)
    w.run(lambda uow: handlers.record_centre_answer(uow, stop_payment_id=claimed.id, sender="a",
                                                    answer=CentreError("UNAVAILABLE", retryable=True), at=later,
                                                    policy=policy))
    assert len(w.published) == published, "a transient fault is retried quietly"
    assert sp.next_attempt_time == later + policy.check_delay(1) and sp.last_error == "UNAVAILABLE:"
    assert w.run(lambda uow: handlers.next_stop_payment_due(uow)) == sp.next_attempt_time


def test_an_unsatisfied_follow_up_is_flagged_to_the_station_chief():
    w = World()
    case = open_case(w)
    a = by_role(case, "PRIMARY")
    with pytest.raises(FailedPrecondition) as err:
        w.run(lambda uow: handlers.rate_case(uow, case_id=case.id, satisfaction="SATISFIED", comment=""),
              CALL_TAKER)
    assert err.value.reason == "NOT_REPORTED_BACK"
    officer = w.officer("car-1")
    w.run(lambda uow: handlers.accept(uow, case_id=case.id, assignment_id=a.id), officer)
    for target in ("EN_ROUTE", "ON_SCENE", "CLEARED"):
        w.run(lambda uow: handlers.advance(uow, case_id=case.id, assignment_id=a.id, target=target), officer)
    w.run(lambda uow: handlers.report_back(uow, case_id=case.id, assignment_id=a.id, outcome="MEDIATED", notes="",
                                           evidence=[]), officer)
    w.clock.advance(3600)  # the citizen is called back
    rated = w.run(lambda uow: handlers.rate_case(uow, case_id=case.id, satisfaction="UNSATISFIED",
                                                 comment="态度不好"), CALL_TAKER)
    assert rated.follow_up.flagged and [o.officer_id for o in rated.follow_up.officers] == ["P-car-1"]
    assert w.types()[-2:] == ["dispatch.CaseUpdated", "dispatch.FollowUpFlagged"]
    flagged = w.last("dispatch.FollowUpFlagged")
    assert flagged.station_id == "S01" and flagged.follow_up.comment == "态度不好"
    assert flagged.dispatch_case.satisfaction == flagged.follow_up.satisfaction
    assert {"follow_up", "satisfaction", "update_time"} <= set(w.last("dispatch.CaseUpdated").changed_fields)
    with pytest.raises(FailedPrecondition) as err:
        w.run(lambda uow: handlers.rate_case(uow, case_id=case.id, satisfaction="SATISFIED", comment=""),
              CALL_TAKER)
    assert err.value.reason == "ALREADY_RATED"


# -- units and the roster --------------------------------------------------------------------------------

def test_a_unit_update_and_a_new_shift_are_kept_and_announced():
    w = World()
    updated = w.run(lambda uow: handlers.update_unit(uow, unit_id="car-1", values={"vehicle": "鄂A·12345"},
                                                     paths=["vehicle"]), DISPATCHER)
    assert updated.vehicle == "鄂A·12345" and updated.timeline[-1].detail == "修改：vehicle"
    event = w.last("dispatch.UnitUpdated")
    assert (event.action, event.stamp.reason, event.unit.vehicle) == ("UPDATED", "vehicle", "鄂A·12345")
    w.unit("car-2").on_duty = False
    start = w.clock() - timedelta(hours=1)
    shift = w.run(lambda uow: handlers.create_shift(uow, unit_id="car-2", start=start, end=start + timedelta(hours=8),
                                                    area="S01-G01"), DISPATCHER)
    assert shift.name.startswith("units/car-2/shifts/") and w.unit("car-2").on_duty
    event = w.last("dispatch.UnitUpdated")
    assert event.action == "SHIFT_ADDED" and event.unit.on_duty and event.shift.name == shift.name
    with pytest.raises(FailedPrecondition) as err:
        w.run(lambda uow: handlers.create_shift(uow, unit_id="car-2", start=start, end=start + timedelta(hours=2),
                                                area=""), DISPATCHER)
    assert err.value.reason == "SHIFT_OVERLAPS"
    chief = AuthContext(subject="chief", roles=frozenset({"station_chief"}), station="S02")
    with pytest.raises(PermissionDenied):
        w.run(lambda uow: handlers.update_unit(uow, unit_id="car-1", values={"vehicle": "x"}, paths=["vehicle"]),
              chief)


def test_positions_count_from_the_units_officer_or_a_dispatcher_only():
    w = World()
    known: dict = {}
    fix = PositionFix("car-1", 114.31, 30.59, START, 5)
    assert w.run(lambda uow: handlers.report_position(uow, fix=fix, known=known), w.officer("car-1"))
    assert not w.run(lambda uow: handlers.report_position(uow, fix=fix, known=known), w.officer("cop-1"))
    assert not w.run(lambda uow: handlers.report_position(uow, fix=replace(fix, unit_id="nope"), known=known),
                     DISPATCHER)
    assert w.repos.units.moved == [("car-1", 114.31, 30.59)]
    assert not PositionFix("car-1", 0.0, 0.0, START, 5).plausible(START)
    assert not PositionFix("car-1", 114.3, 30.5, START + timedelta(seconds=61), 5).plausible(START)
