"""Referral's use cases on a fake unit of work: in-memory repositories, the real event mapping, a FakeOutbox,
and a fake intake for the steps that run before the transaction.

The fakes keep what the database adds: one order per 110 report, and an order read back as a fresh copy
(announced as it was stored), so that the events' `changed_fields` and `new_entries` are what they are
in the service.
"""
from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest

from sampledata import city
from smart110.common.v1 import common_pb2, events_pb2
from smart110.intake.v1 import intake_service_pb2 as ipb
from smart110.referral.v1 import referral_service_pb2 as pb

from services.referral12345 import handlers, mapping
from services.referral12345.domain import (
    OPEN_STATUSES, SYSTEM, CitizenContact, Department, Matter, Place, PoliceReport,
)
from services.runtime.auth import AuthContext
from services.runtime.errors import AlreadyExists, Aborted, FailedPrecondition, NotFound, Unavailable
from tests.support import Clock, fake_unit_of_work

UTC = timezone.utc
T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)  # a Monday, 10:00 in the city
AGENT = AuthContext("agent-07", frozenset({"hotline_agent"}))
STAFF = AuthContext("staff-D01", frozenset({"department"}), station="D01")
SUPERVISOR = AuthContext("supervisor-01", frozenset({"supervisor"}))
JIANGAN = Place("S01", "大智路派出所", "江岸区")


# -- in-memory repositories ------------------------------------------------------------------

class Departments:
    def __init__(self):
        self.by_id = {d.dept_id: Department(d.dept_id, d.name, tuple(Matter(m.code, m.label) for m in d.matters),
                                            tuple(d.districts), d.supervisor, d.phone) for d in city.departments()}

    def get(self, dept_id):
        return self.by_id.get(dept_id)

    def all(self):
        return [self.by_id[k] for k in sorted(self.by_id)]


def _loaded(order):
    """An order as the repository reads it back: a copy, announced as it stands."""
    fresh = copy.deepcopy(order)
    fresh.pull_events()
    fresh.new_entries = []
    fresh.mark_announced()
    return fresh


class WorkOrders:
    def __init__(self):
        self.by_id = {}
        self.timelines = {}
        self.reviews = []

    def _store(self, order):
        self.timelines.setdefault(order.id, []).extend(order.new_entries)
        order.new_entries = []
        stored = copy.deepcopy(order)
        stored.pull_events()
        self.by_id[order.id] = stored

    def add(self, order):
        if order.report and any(o.report == order.report for o in self.by_id.values()):
            return False
        self._store(order)
        return True

    def save(self, order):
        assert order.id in self.by_id
        self._store(order)

    def get(self, order_id, *, for_update=False):
        return _loaded(self.by_id[order_id]) if order_id in self.by_id else None

    def by_transferred_report(self, report):
        found = next((o for o in self.by_id.values() if o.transferred_report == report), None)
        return _loaded(found) if found else None

    def due(self, now, limit=500):
        due = [o for o in self.by_id.values() if not o.overdue and o.deadline and o.deadline < now
               and o.status in OPEN_STATUSES]
        return [o.id for o in sorted(due, key=lambda o: o.deadline)][:limit]

    def count_from(self, phone, since, matter_code="", exclude=""):
        return sum(1 for o in self.by_id.values() if o.citizen_phone == phone and o.request_time >= since
                   and (not matter_code or o.matter_code == matter_code) and o.id != exclude)

    def add_review(self, order_id, dept_id, satisfaction, comment, time):
        self.reviews.append((order_id, dept_id, satisfaction))


class Unreasonable:
    def __init__(self):
        self.by_id = {}

    def add(self, r):
        self.save(r)

    def save(self, r):
        stored = copy.deepcopy(r)
        stored.pull_events()
        self.by_id[r.id] = stored

    def get(self, record_id, *, for_update=False):
        found = self.by_id.get(record_id)
        return copy.deepcopy(found) if found else None

    def count_from(self, phone, since):
        return sum(1 for r in self.by_id.values() if r.citizen_phone == phone and r.create_time >= since)


class Repos:
    def __init__(self):
        self.departments = Departments()
        self.work_orders = WorkOrders()
        self.unreasonable = Unreasonable()


class FakeIntake:
    """The calls referral makes to intake, recorded; places by point or station, callers by report."""

    def __init__(self, place: Place | None = JIANGAN, contacts: dict | None = None, away: bool = False):
        self.place_found = place
        self.contacts = {"reports/r9": CitizenContact("13900001111", "李女士")} if contacts is None else contacts
        self.away = away
        self.calls = []
        self.filed = {}

    def caller_contact(self, report_name):
        self.calls.append(("contact", report_name))
        if self.away:
            raise Unavailable("intake could not read the caller's contact (UNAVAILABLE); retry later",
                              reason="INTAKE_UNAVAILABLE")
        return self.contacts.get(report_name)

    def locate(self, lon, lat):
        self.calls.append(("locate", lon, lat))
        return self.place_found

    def station(self, station_id):
        self.calls.append(("station", station_id))
        return self.place_found if station_id else None

    def place(self, lon, lat, station_id):
        return self.locate(lon, lat) if lon is not None and lat is not None else self.station(station_id)

    def file_transfer(self, request_id, order, why):
        self.calls.append(("file", request_id))
        return self.filed.setdefault(request_id, PoliceReport(
            name=f"reports/r-{len(self.filed) + 1}", status="REPORT_STATUS_CLASSIFIED", category="POLICE",
            incident_type="FIGHT", priority=1, channel="HOTLINE_12345", description=f"{order.description}（{why}）"))


def unit(repos, *, at=T0, actor=AGENT, intake=None):
    return fake_unit_of_work(repos, event_mapping=mapping.event_to_message, clock=Clock(at), actor=actor,
                             context=handlers.Context(intake=intake or FakeIntake()))


def published(uow) -> list[tuple]:
    """(type, action) of what the unit of work publishes at commit."""
    uow.flush()
    out = []
    for event_type, _, payload in uow.outbox.events:
        out.append((event_type, getattr(payload, "action", "")))
    return out


def payloads(uow) -> list:
    uow.flush()
    return [payload for _, _, payload in uow.outbox.events]


def ticket(description="小区门口消防车道上长期有私家车违章停车", matter="ILLEGAL_PARKING", *, phone="13912345678",
           lon=114.374283, lat=30.57589, **kw) -> dict:
    """A new order's fields as the servicer validated them."""
    base = dict(source="HOTLINE_12345", report="", hotline_ticket_id="T1", category="", matter_code=matter,
                description=description, urgency=4, lon=lon, lat=lat, accuracy_m=10.0 if lon is not None else 0.0,
                address_text="", citizen_phone=phone, citizen_name="张先生", confidential=False, attachments=[],
                request_time=None)
    return {**base, **kw}


def report(category="NON_POLICE", incident_type="ILLEGAL_PARKING", *, name="reports/r1", status="REPORT_STATUS_CLASSIFIED",
           **kw) -> PoliceReport:
    base = dict(name=name, status=status, category=category, incident_type=incident_type, priority=4, channel="PHONE",
                description="楼下有辆白色轿车违章停车，堵住了小区出口", lon=114.374283, lat=30.57589, accuracy_m=10.0,
                station_id="S01", receive_time=T0)
    return PoliceReport(**{**base, **kw})


def created(repos, fields=None, *, place=JIANGAN, at=T0):
    uow = unit(repos, at=at)
    order = handlers.create_work_order(uow, fields=fields or ticket(), place=place)
    uow.flush()
    return order


# -- recording and routing -------------------------------------------------------------------

def test_a_ticket_is_recorded_routed_and_announced_in_one_unit_of_work():
    repos = Repos()
    uow = unit(repos)
    order = handlers.create_work_order(uow, fields=ticket(), place=JIANGAN)
    assert order.status == "ASSIGNED" and order.district == "江岸区" and order.station_id == "S01"
    assert [(a.dept_id, a.role) for a in order.assignments] == [("D01", "LEAD")]
    assert published(uow) == [("referral.WorkOrderCreated", ""), ("referral.WorkOrderUpdated", "ASSIGNED")]
    made, assigned = uow.outbox.events
    assert made[1] == assigned[1] == order.name
    # Created: the order as it was received, with its first entry; Updated: what the routing changed.
    assert made[2].work_order.status == pb.WORK_ORDER_STATUS_RECEIVED
    assert [e.action for e in made[2].new_entries] == ["CREATED"]
    assert made[2].new_entries[0].stamp.actor == "agent-07" and made[2].new_entries[0].stamp.roles == ["hotline_agent"]
    # One time for the whole unit of work: only the status changed that the event shows (the
    # assignments are left out of events).
    assert assigned[2].changed_fields == ["status"]
    assert [e.action for e in assigned[2].new_entries] == ["ASSIGNED"]
    assert not assigned[2].work_order.assignments and not assigned[2].work_order.timeline
    stored = repos.work_orders.timelines[order.id]
    assert [e.action for e in stored] == ["CREATED", "ASSIGNED"]


def test_the_matter_is_told_from_the_description_when_none_is_given():
    repos = Repos()
    order = created(repos, ticket("我们这栋楼停电一整天了", matter=""))
    assert order.matter_code == "POWER_OUTAGE"


def test_an_order_with_no_responsible_department_goes_to_the_local_station_or_stays_with_the_desk():
    repos = Repos()
    uow = unit(repos)
    first = handlers.create_work_order(uow, fields=ticket("不知道该归哪个部门管的事情", matter=""), place=JIANGAN)
    assert first.status == "PRELIMINARY_POLICE" and first.preliminary_station == "stations/S01"
    assert published(uow)[-1] == ("referral.WorkOrderUpdated", "PRELIMINARY_POLICE")

    uow = unit(repos)
    alone = handlers.create_work_order(uow, fields=ticket("不知道该归哪个部门管的事情", matter="", lon=None, lat=None),
                                       place=None)
    assert alone.status == "RECEIVED" and [e.action for e in alone.timeline] == ["CREATED", "AWAITING_ASSIGNMENT"]
    # A note changes nothing announced: only the creation is published; the note waits for the next event.
    assert published(uow) == [("referral.WorkOrderCreated", "")]


def test_a_third_call_about_the_same_matter_flags_a_repeat_caller():
    repos = Repos()
    for n in range(3):
        order = created(repos, at=T0 + timedelta(hours=n))
    assert order.repeat_caller and order.prior_requests == 2
    assert "REPEAT_CALLER" in [e.action for e in order.timeline]


def test_a_report_already_referred_gets_no_second_order():
    repos = Repos()
    uow = unit(repos, actor=SYSTEM)
    first = handlers.refer_report(uow, report=report(), place=JIANGAN)
    assert first is not None and first.source == "REPORT_110" and first.report == "reports/r1"
    assert [e.action for e in first.timeline] == ["CREATED", "ROUTING", "ASSIGNED"]
    assert {e.actor for e in first.timeline} == {"referral"}
    again = unit(repos)
    assert handlers.refer_report(again, report=report(), place=JIANGAN) is None
    assert published(again) == [], "nothing published for the duplicate"
    with pytest.raises(AlreadyExists) as err:
        handlers.create_work_order(unit(repos), fields=ticket(source="REPORT_110", report="reports/r1"),
                                   place=JIANGAN)
    assert err.value.reason == "REPORT_ALREADY_REFERRED"


@pytest.mark.parametrize("r", [
    report(category="POLICE", incident_type="FIGHT"),
    report(merged_into="reports/r0"),
    report(channel="HOTLINE_12345"),
    report(category="CONSULTATION", incident_type=""),
])
def test_reports_that_need_no_order_of_their_own_get_none(r):
    repos = Repos()
    uow = unit(repos)
    assert handlers.refer_report(uow, report=r, place=JIANGAN) is None
    assert repos.work_orders.by_id == {} and published(uow) == []


def test_a_cut_gas_main_is_a_level_one_order_to_every_department_of_the_rescue():
    repos = Repos()
    uow = unit(repos)
    order = handlers.refer_report(uow, report=report(category="POLICE", incident_type="GAS_LEAK", priority=1),
                                  place=JIANGAN)
    assert order.joint_rescue and order.urgency == 1 and order.category == "紧急抢险"
    assert [a.role for a in order.assignments] == ["LEAD", "COOPERATING", "COOPERATING"]
    assert order.deadline - order.request_time == timedelta(minutes=30)
    assert published(uow) == [("referral.WorkOrderCreated", ""), ("referral.WorkOrderUpdated", "ASSIGNED")]


# -- the intake feed -------------------------------------------------------------------------

def intake_report(**kw) -> ipb.Report:
    r = ipb.Report(name="reports/r9", status=ipb.REPORT_STATUS_CLASSIFIED, channel=ipb.CHANNEL_PHONE,
                   description="小区路灯坏了一个多星期", station_id="S06",
                   classification=ipb.Classification(category=ipb.CATEGORY_NON_POLICE, incident_type="STREET_LIGHT",
                                                      priority=4))
    r.location.CopyFrom(common_pb2.Location(point=common_pb2.GeoPoint(longitude=114.34, latitude=30.57)))
    for k, v in kw.items():
        setattr(r, k, v)
    return r


EVENT = events_pb2.Event(event_id="e1", type="intake.IncidentReported", subject="reports/r9")


CONTACT = CitizenContact("13900001111", "李女士")


def test_the_prepare_steps_locate_and_read_the_caller_only_of_reports_that_will_be_referred():
    intake = FakeIntake()
    context = handlers.Context(intake=intake)
    subs = handlers.EVENT_HANDLERS["intake"]
    reported, updated = subs["intake.IncidentReported"], subs["intake.ReportUpdated"]
    assert reported.payload_type is ipb.IncidentReported and updated.payload_type is ipb.ReportUpdated
    assert reported.prepare(context, EVENT, ipb.IncidentReported(report=intake_report())) == \
        handlers.ReportAhead(JIANGAN, CONTACT)
    assert intake.calls == [("locate", 114.34, 30.57), ("contact", "reports/r9")]
    assert reported.prepare(context, EVENT, ipb.IncidentReported(report=intake_report(merged_into="reports/r1"))) is None
    police = intake_report()
    police.classification.category = ipb.CATEGORY_POLICE
    assert reported.prepare(context, EVENT, ipb.IncidentReported(report=police)) is None
    assert updated.prepare(context, EVENT, ipb.ReportUpdated(report=intake_report(), action="DISPATCHED")) is None
    assert len(intake.calls) == 2, "no call for a report that will not be referred"
    no_point = intake_report()
    no_point.ClearField("location")
    assert updated.prepare(context, EVENT, ipb.ReportUpdated(report=no_point, action="UNMERGED")) == \
        handlers.ReportAhead(JIANGAN, CONTACT)
    assert intake.calls[-2:] == [("station", "S06"), ("contact", "reports/r9")]
    # 12345's own transfer comes back on the feed: located as before, its citizen is 12345's already.
    ours = intake_report(channel=ipb.CHANNEL_HOTLINE_12345)
    assert reported.prepare(context, EVENT, ipb.IncidentReported(report=ours)) == handlers.ReportAhead(JIANGAN, None)
    assert intake.calls[-1] == ("locate", 114.34, 30.57), "no contact read for 12345's own transfer"


def test_a_report_that_has_its_order_already_is_not_read_again():
    intake = FakeIntake()
    context = handlers.Context(intake=intake, referred=lambda name: name == "reports/r9")
    prepare = handlers.EVENT_HANDLERS["intake"]["intake.ReportUpdated"].prepare
    ahead = prepare(context, EVENT, ipb.ReportUpdated(report=intake_report(), action="CORRECTED"))
    assert ahead == handlers.ReportAhead(JIANGAN, None)
    assert [c[0] for c in intake.calls] == ["locate"], "no second read of the caller"


def test_intake_away_while_the_caller_is_read_is_waited_out_not_parked():
    context = handlers.Context(intake=FakeIntake(away=True))
    prepare = handlers.EVENT_HANDLERS["intake"]["intake.IncidentReported"].prepare
    with pytest.raises(Unavailable) as err:  # the consumer backs off and retries on Unavailable, never parks
        prepare(context, EVENT, ipb.IncidentReported(report=intake_report()))
    assert err.value.reason == "INTAKE_UNAVAILABLE"


def test_a_reported_event_refers_with_the_caller_read_ahead_and_an_update_refers_only_after_a_correction():
    repos = Repos()
    subs = handlers.EVENT_HANDLERS["intake"]
    uow = unit(repos)
    assert not intake_report().HasField("caller"), "intake's events carry no caller"
    subs["intake.IncidentReported"].handler(uow, EVENT, ipb.IncidentReported(report=intake_report()),
                                            prepared=handlers.ReportAhead(JIANGAN, CONTACT))
    [order] = repos.work_orders.by_id.values()
    assert order.matter_code == "STREET_LIGHT" and order.district == "江岸区"
    assert (order.citizen_phone, order.citizen_name) == ("13900001111", "李女士"), "for follow-up (回访)"
    assert published(uow) == [("referral.WorkOrderCreated", ""), ("referral.WorkOrderUpdated", "ASSIGNED")]

    other = intake_report(name="reports/r10")
    uow = unit(repos)
    subs["intake.ReportUpdated"].handler(uow, EVENT, ipb.ReportUpdated(report=other, action="DISPATCHED"),
                                         prepared=None)
    assert published(uow) == [] and len(repos.work_orders.by_id) == 1
    uow = unit(repos)
    subs["intake.ReportUpdated"].handler(uow, EVENT, ipb.ReportUpdated(report=other, action="CORRECTED"),
                                         prepared=handlers.ReportAhead(JIANGAN, None))
    assert len(repos.work_orders.by_id) == 2
    late = next(o for o in repos.work_orders.by_id.values() if o.report == "reports/r10")
    assert late.citizen_phone == "" and not late.repeat_caller, "a caller intake does not know: no contact"


def test_a_referred_callers_earlier_orders_make_a_repeat_caller():
    repos = Repos()
    for n in range(3):
        uow = unit(repos, at=T0 + timedelta(hours=n), actor=SYSTEM)
        order = handlers.refer_report(uow, report=report(name=f"reports/r{n}"), place=JIANGAN, contact=CONTACT)
        uow.flush()
    assert order.citizen_phone == CONTACT.phone and order.prior_requests == 2 and order.repeat_caller


# -- lifecycle ---------------------------------------------------------------------------------

def test_department_steps_and_the_follow_up_each_announce_their_action():
    repos = Repos()
    order = created(repos)
    actions = []
    for step, kw in ((handlers.accept, {}), (handlers.start, {}),
                     (handlers.resolve, dict(feedback="已拖移违停车辆", attachments=[]))):
        uow = unit(repos, actor=STAFF)
        step(uow, order_id=order.id, dept_id="D01", **kw)
        actions += published(uow)
    uow = unit(repos)
    done = handlers.review(uow, order_id=order.id, satisfaction="UNSATISFIED", comment="车又停回来了")
    actions += published(uow)
    assert [a for _, a in actions] == ["ACCEPTED", "STARTED", "RESOLVED", "REOPENED"]
    assert done.status == "REOPENED" and repos.work_orders.reviews == [(order.id, "D01", "UNSATISFIED")]
    [reopened] = uow.outbox.events
    assert [e.action for e in reopened[2].new_entries] == ["REVIEWED", "REOPENED"]
    assert {"status", "satisfaction", "reopen_count"} <= set(reopened[2].changed_fields)


def test_the_second_reopen_escalates_to_the_departments_supervisor():
    repos = Repos()
    order = created(repos)
    for n in (1, 2):
        if n == 2:
            handlers.assign(unit(repos), order_id=order.id, dept_ids=[], reason="", preliminary=False,
                            place_of=lambda o: None)
        for step, kw in ((handlers.accept, {}), (handlers.start, {}),
                         (handlers.resolve, dict(feedback="已处置", attachments=[]))):
            step(unit(repos, actor=STAFF), order_id=order.id, dept_id="D01", **kw)
        uow = unit(repos)
        reviewed = handlers.review(uow, order_id=order.id, satisfaction="UNSATISFIED", comment="没解决")
    assert published(uow) == [("referral.WorkOrderUpdated", "ESCALATED")]
    assert reviewed.escalated_to_name == repos.departments.get("D01").supervisor


def test_steps_refuse_unknown_departments_and_orders_and_illegal_moves():
    repos = Repos()
    order = created(repos)
    with pytest.raises(NotFound) as no_dept:
        handlers.accept(unit(repos), order_id=order.id, dept_id="D99")
    assert no_dept.value.resource_name == "departments/D99"
    with pytest.raises(NotFound):
        handlers.accept(unit(repos), order_id="20260101-000000000000", dept_id="D01")
    with pytest.raises(FailedPrecondition) as early:
        handlers.resolve(unit(repos), order_id=order.id, dept_id="D01", feedback="已处置", attachments=[])
    assert early.value.reason == "ILLEGAL_TRANSITION"
    with pytest.raises(FailedPrecondition) as again:
        handlers.assign(unit(repos), order_id=order.id, dept_ids=[], reason="", preliminary=False,
                        place_of=lambda o: None)
    assert again.value.reason == "ILLEGAL_TRANSITION"


def test_handing_to_the_police_station_needs_a_place():
    repos = Repos()
    order = created(repos, ticket("说不清的事情", matter="", lon=None, lat=None), place=None)
    with pytest.raises(FailedPrecondition) as nowhere:
        handlers.assign(unit(repos), order_id=order.id, dept_ids=[], reason="", preliminary=True,
                        place_of=lambda o: None)
    assert nowhere.value.reason == "NO_JURISDICTION"
    uow = unit(repos)
    handed = handlers.assign(uow, order_id=order.id, dept_ids=[], reason="", preliminary=True,
                             place_of=lambda o: JIANGAN)
    assert handed.status == "PRELIMINARY_POLICE" and handed.preliminary_reason == "职责不清，由属地派出所先期处置"
    uow.flush()
    [event] = uow.outbox.events
    # The desk's earlier note went out with no event, and an order read back is announced as it stood:
    # this event's news is the hand-over alone.
    assert [e.action for e in event[2].new_entries] == ["PRELIMINARY_POLICE"]


def test_places_ahead_refuses_an_order_that_moved_in_between():
    repos = Repos()
    order = created(repos)
    intake = FakeIntake()
    place_of = handlers.places_ahead(handlers.Context(intake=intake), [order])
    assert place_of(order) == JIANGAN and intake.calls == [("locate", order.lon, order.lat)]
    moved = repos.work_orders.get(order.id)
    moved.lon += 0.01
    with pytest.raises(Aborted) as err:
        place_of(moved)
    assert err.value.reason == "ORDER_MOVED"
    nowhere = created(repos, ticket("说不清的事情", matter="", lon=None, lat=None), place=None)
    assert handlers.places_ahead(handlers.Context(intake=intake), [])(nowhere) is None


def test_the_sweeper_flags_overdue_orders_once():
    repos = Repos()
    order = created(repos, ticket("路面塌陷出现一个大坑", matter="ROAD_DAMAGE", urgency=2))
    assert handlers.sweep_overdue(unit(repos, at=order.deadline - timedelta(minutes=1))) == []
    uow = unit(repos, at=order.deadline + timedelta(minutes=1))
    assert [o.name for o in handlers.sweep_overdue(uow)] == [order.name]
    assert published(uow) == [("referral.WorkOrderUpdated", "OVERDUE")]
    assert handlers.sweep_overdue(unit(repos, at=order.deadline + timedelta(hours=5))) == []
    assert repos.work_orders.timelines[order.id][-1].actor == "referral"


# -- one-button transfer (一键转接) ------------------------------------------------------------

def test_a_new_ticket_is_filed_with_intake_before_the_transaction_then_recorded_as_transferred():
    repos = Repos()
    intake = FakeIntake()
    context = handlers.Context(intake=intake)
    fields = ticket("邻居家传出呼救声，怀疑有人持刀伤人", matter="")
    transfer = handlers.file_transfer(context, request_id="req-1", why="涉嫌持刀伤人", now=T0, fields=fields)
    assert intake.calls == [("locate", fields["lon"], fields["lat"]), ("file", "referral-transfer-req-1")]
    assert transfer.fields["request_time"] == T0 and transfer.place == JIANGAN
    uow = unit(repos, at=T0 + timedelta(seconds=1), intake=intake)
    order = handlers.transfer_to_110(uow, transfer=transfer, why="涉嫌持刀伤人")
    assert intake.calls[-1] == ("file", "referral-transfer-req-1"), "no call inside the transaction"
    assert order.status == "TRANSFERRED_TO_110" and order.transferred_report == "reports/r-1"
    assert order.request_time == T0 and order.transferred_report_status == "REPORT_STATUS_CLASSIFIED"
    assert [e.action for e in order.timeline] == ["CREATED", "TRANSFERRED_TO_110", "POLICE_PROGRESS"]
    assert published(uow) == [("referral.WorkOrderCreated", ""), ("referral.WorkOrderUpdated", "TRANSFERRED_TO_110")]
    assert [e.action for e in uow.outbox.events[-1][2].new_entries] == ["TRANSFERRED_TO_110", "POLICE_PROGRESS"]


def test_an_existing_order_is_checked_filed_under_its_own_id_and_transferred_once():
    repos = Repos()
    intake = FakeIntake()
    context = handlers.Context(intake=intake)
    order = created(repos)
    source = repos.work_orders.get(order.id)
    transfer = handlers.file_transfer(context, request_id="req-2", why="老人走失", now=T0, order_id=order.id,
                                      source=source)
    assert intake.calls == [("file", f"referral-transfer-{order.id}")]
    uow = unit(repos)
    moved = handlers.transfer_to_110(uow, transfer=transfer, why="老人走失", order_id=order.id)
    assert all(a.state == "WITHDRAWN" for a in moved.assignments)
    assert published(uow) == [("referral.WorkOrderUpdated", "TRANSFERRED_TO_110")]
    with pytest.raises(FailedPrecondition) as twice:
        handlers.file_transfer(context, request_id="req-3", why="再次", now=T0, order_id=order.id,
                               source=repos.work_orders.get(order.id))
    assert twice.value.reason == "ILLEGAL_TRANSITION"
    with pytest.raises(NotFound):
        handlers.file_transfer(context, request_id="req-4", why="x", now=T0, order_id="nope", source=None)
    with pytest.raises(FailedPrecondition) as gone:
        handlers.transfer_to_110(unit(repos), transfer=None, why="x", order_id=order.id)
    assert gone.value.reason == "TRANSFER_RETRY"


def test_an_order_without_a_place_cannot_be_transferred():
    repos = Repos()
    order = created(repos, ticket("说不清的事情", matter="", lon=None, lat=None), place=None)
    with pytest.raises(FailedPrecondition) as err:
        handlers.file_transfer(handlers.Context(intake=FakeIntake()), request_id="r", why="x", now=T0,
                               order_id=order.id, source=repos.work_orders.get(order.id))
    assert err.value.reason == "NO_LOCATION"


def test_the_transferred_reports_progress_is_kept_on_its_order_once_per_status():
    repos = Repos()
    intake = FakeIntake()
    transfer = handlers.file_transfer(handlers.Context(intake=intake), request_id="q", why="打架", now=T0,
                                      fields=ticket("有人打架", matter=""))
    order = handlers.transfer_to_110(unit(repos), transfer=transfer, why="打架")
    dispatched = ipb.Report(name=order.transferred_report, status=ipb.REPORT_STATUS_DISPATCHED,
                            channel=ipb.CHANNEL_HOTLINE_12345)
    on_updated = handlers.EVENT_HANDLERS["intake"]["intake.ReportUpdated"].handler
    uow = unit(repos, at=T0 + timedelta(minutes=3))
    on_updated(uow, EVENT, ipb.ReportUpdated(report=dispatched, action="DISPATCHED"), prepared=None)
    assert published(uow) == [("referral.WorkOrderUpdated", "POLICE_PROGRESS")]
    [(_, _, progress)] = uow.outbox.events
    assert progress.changed_fields == ["update_time", "transferred_report_status"]
    assert "已派警" in progress.new_entries[0].detail and "DISPATCHED" not in progress.new_entries[0].detail
    again = unit(repos)
    on_updated(again, EVENT, ipb.ReportUpdated(report=dispatched, action="DISPATCHED"), prepared=None)
    assert published(again) == []


# -- unreasonable requests -------------------------------------------------------------------

def unreasonable_fields(**kw) -> dict:
    base = dict(work_order="", description="我想查询我丈夫的工资", citizen_phone="13900002222", citizen_name="吴女士",
                category="OTHERS_PRIVATE_DATA", reason="索要他人隐私", standard_reply="", typical_case=False)
    return {**base, **kw}


def test_recording_an_unreasonable_request_closes_its_order_then_announces_the_record():
    repos = Repos()
    order = created(repos, ticket("我想查询我丈夫的工资", matter="", phone="13900002222"))
    uow = unit(repos)
    record = handlers.record_unreasonable(uow, fields=unreasonable_fields(work_order=order.name, description=""))
    assert record.description == "我想查询我丈夫的工资" and record.standard_reply and record.prior_requests == 0
    assert record.record_actor == "agent-07" and record.record_roles == ["hotline_agent"]
    assert published(uow) == [("referral.WorkOrderUpdated", "CLOSED_UNREASONABLE"),
                              ("referral.UnreasonableRequestRecorded", "RECORDED")]
    assert repos.work_orders.get(order.id).status == "CLOSED"
    with pytest.raises(NotFound):
        handlers.record_unreasonable(unit(repos), fields=unreasonable_fields(work_order="workOrders/nope"))


def test_an_overturned_record_without_an_order_becomes_a_new_routed_order():
    repos = Repos()
    record = handlers.record_unreasonable(unit(repos), fields=unreasonable_fields(
        description="单位拖欠工资三个月不发", category="OUTSIDE_GOVERNMENT_POWERS"))
    uow = unit(repos, actor=SUPERVISOR)
    overturned = handlers.overturn(uow, record_id=record.id, reason="实为欠薪", place_of=lambda o: None)
    assert overturned.state == "OVERTURNED" and overturned.overturn_actor == "supervisor-01"
    order = repos.work_orders.get(overturned.work_order.removeprefix("workOrders/"))
    assert order.matter_code == "WAGE_ARREARS" and order.unreasonable_request == record.name
    assert order.status == "ASSIGNED"
    events = published(uow)
    assert events == [("referral.WorkOrderCreated", ""), ("referral.WorkOrderUpdated", "ASSIGNED"),
                      ("referral.UnreasonableRequestRecorded", "OVERTURNED")]
    assert uow.outbox.events[-1][2].unreasonable_request.work_order == order.name
    with pytest.raises(FailedPrecondition) as twice:
        handlers.overturn(unit(repos, actor=SUPERVISOR), record_id=record.id, reason="再次", place_of=lambda o: None)
    assert twice.value.reason == "ILLEGAL_TRANSITION"


def test_an_overturned_record_reopens_the_order_it_closed():
    repos = Repos()
    order = created(repos, ticket("要求政府帮我还信用卡", matter=""))
    record = handlers.record_unreasonable(unit(repos), fields=unreasonable_fields(
        work_order=order.name, category="OUTSIDE_GOVERNMENT_POWERS", reason="要求政府代还个人债务"))
    uow = unit(repos, actor=SUPERVISOR)
    handlers.overturn(uow, record_id=record.id, reason="可按临时救助办理", place_of=lambda o: JIANGAN)
    reopened = repos.work_orders.get(order.id)
    assert reopened.status in ("ASSIGNED", "PRELIMINARY_POLICE") and reopened.close_time is None
    events = published(uow)
    assert events[0] == ("referral.WorkOrderUpdated", "OVERTURNED")
    assert events[-1] == ("referral.UnreasonableRequestRecorded", "OVERTURNED")
