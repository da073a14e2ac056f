"""Intake's use cases on a fake unit of work: in-memory repositories, the real event mapping, a FakeOutbox.

The in-memory reports keep what the store keeps (a report as saved, its duplicates found by their
`merged_into`, invalid calls by number and time, open candidates of a duplicate search), so that the
use cases' decisions and the events they publish are tested without a database.
"""
from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta, timezone

import pytest

import sampledata as sd
from sampledata import gazetteer as sample_gazetteer
from sampledata import knowledge as seed
from smart110.dispatch.v1 import dispatch_service_pb2 as dpb
from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2 as rpb

from services.intake import duplicates, handlers, mapping
from services.intake.domain import Address
from services.intake.gazetteer import Gazetteer
from services.intake.knowledge import Entry, KnowledgeIndex
from services.intake.seed import sample_jurisdiction
from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.runtime.timeutil import to_pb
from tests.support import Clock, fake_unit_of_work

UTC = timezone.utc
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)  # 10:00 in 江城
HANKOU = (114.30, 30.58)
WUCHANG = (114.33, 30.55)
TAKER = AuthContext(subject="ct-1001", roles=frozenset({"call_taker"}), name="接警员李娜")
EXPERT = AuthContext(subject="expert-zhou", roles=frozenset({"expert"}), name="户政专家周敏")
OTHER_EXPERT = AuthContext(subject="expert-wu", roles=frozenset({"expert"}), name="交管专家吴强")
KINDS = {"intake.IncidentReported": pb.IncidentReported, "intake.ReportUpdated": pb.ReportUpdated,
         "intake.KnowledgeEntryAdded": pb.KnowledgeEntryAdded}


# -- in-memory repositories ------------------------------------------------------------------

class Reports:
    def __init__(self):
        self.rows = {}
        self.locked: list[str] = []
        self.search_locks: list[int] = []
        # Reports handed out without their history (ids of the objects): saving one appends its entries.
        self._without_history: set[int] = set()

    def _copy(self, report):
        out = copy.deepcopy(report)
        out._events = []
        return out

    def get(self, report_id, *, lock=False, history=True):
        if report_id not in self.rows:
            return None
        if lock:
            self.locked.append(report_id)
        report = self._copy(self.rows[report_id])
        if not history:  # as the store reads it: no timeline, no duplicates
            report.timeline, report.duplicates = [], []
            self._without_history.add(id(report))
            return report
        report.duplicates = [r.id for r in sorted(self.rows.values(), key=lambda r: (r.receive_time, r.id))
                             if r.merged_into == report_id]
        return report

    def get_by_case(self, case_name, *, history=True):
        report_id = self.report_of_case(case_name)
        return self.get(report_id, lock=True, history=history) if report_id is not None else None

    def lock(self, *report_ids):
        self.locked += report_ids

    def add(self, report, *, saving=()):
        assert report.id not in self.rows
        self.rows[report.id] = self._copy(report)
        for other in saving:
            self.save(other)

    def save(self, report):
        assert report.id in self.rows
        saved = self._copy(report)
        if id(report) in self._without_history:  # the timeline is append-only: the new entries follow
            saved.timeline = self.rows[report.id].timeline + saved.timeline
        self.rows[report.id] = saved

    def recent_invalid_calls(self, phone, since):
        return sum(1 for r in self.rows.values() if r.caller_phone == phone and r.receive_time >= since
                   and r.classification.category == "INVALID")

    def report_of_case(self, case_name):
        return next((r.id for r in self.rows.values() if r.dispatch_case == case_name), None)

    def lock_duplicate_search(self, key):
        self.search_locks.append(key)

    def open_candidates(self, new):
        return sorted((duplicates.candidate_of(r) for r in self.rows.values()
                       if not r.merged_into and r.status in duplicates.OPEN_STATUSES
                       and r.classification.category == new.category and r.id != new.report_id
                       and abs(r.receive_time - new.receive_time) <= duplicates.SEARCH_WINDOW),
                      key=lambda c: c.receive_time)


class Knowledge:
    def __init__(self):
        self.added: list[tuple[Entry, str]] = []

    def add(self, entry, *, author):
        self.added.append((entry, author))


class Sla:
    def __init__(self):
        self.observed: list[tuple[str, float]] = []
        self.labels: list[dict] = []

    def observe(self, stage, seconds, *, priority=None, channel=""):
        self.observed.append((stage, seconds))
        self.labels.append({"priority": priority, "channel": channel})


class Examples:
    """Labelled examples from call-takers' corrections."""

    def __init__(self):
        self.added = []

    def add(self, example):
        self.added.append(example)


class Repos:
    def __init__(self):
        self.reports = Reports()
        self.knowledge = Knowledge()
        self.sla = Sla()
        self.examples = Examples()


@pytest.fixture(scope="module")
def places():
    index = sample_jurisdiction()
    gazetteer = Gazetteer([Address(a.code, a.full_address, a.district, a.street, a.community, a.road,
                                   a.house_number, a.building, a.lon, a.lat, a.station_id, a.grid_id)
                           for a in sample_gazetteer.addresses()])
    return index, gazetteer


@pytest.fixture(scope="module")
def kb():
    return KnowledgeIndex([Entry(s.entry_id, s.topic, s.question, s.answer, s.keywords) for s in seed.entries()])


class Intake:
    """Use cases run one unit of work each, on the same repositories and clock (a second passes after
    each), events collected."""

    def __init__(self, places, kb):
        self.repos = Repos()
        self.clock = Clock(T0 + timedelta(hours=1))
        self.index, self.gazetteer = places
        self.kb = kb
        self.events: list[tuple[str, str, object]] = []
        self.at = self.clock()

    def run(self, fn, *, actor=TAKER, **kw):
        uow = fake_unit_of_work(self.repos, event_mapping=mapping.event_to_message, clock=self.clock, actor=actor)
        self.at = uow.now()  # the time of the last unit of work
        try:
            result = fn(uow, **kw)
        finally:
            self.clock.advance(1)
        uow.flush()
        self.events += uow.outbox.events
        return result

    def deliver(self, source, event_type, payload):
        uow = fake_unit_of_work(self.repos, event_mapping=mapping.event_to_message, clock=self.clock)
        handlers.EVENT_HANDLERS[source][event_type].handler(uow, None, payload)
        self.clock.advance(1)
        uow.flush()
        self.events += uow.outbox.events

    def report(self, description, *, at=T0, point=HANKOU, phone="13912345678", address="", channel="PHONE"):
        fields = dict(channel=channel, caller_phone=phone, caller_name="王女士", lon=point[0] if point else None,
                      lat=point[1] if point else None, accuracy_m=20.0, location_source="GNSS" if point else "",
                      address_text=address, address_code="", description=description, attachments=[],
                      language="zh-CN", receive_time=at)
        return self.run(handlers.report_incident, fields=fields, index=self.index, gazetteer=self.gazetteer,
                        knowledge=self.kb)

    def taken(self) -> list[tuple[str, str, object]]:
        """The events published since the last call, payloads decoded."""
        out = [(t, s, KINDS[t].FromString(p.SerializeToString())) for t, s, p in self.events]
        self.events = []
        return out


@pytest.fixture
def intake(places, kb):
    return Intake(places, kb)


def actions(report) -> list[str]:
    return [e.action for e in report.timeline]


# -- recording a report ------------------------------------------------------------------------

def test_a_report_is_located_classified_stored_and_announced_once(intake):
    r = intake.report("小区门口有两个人打架，其中一人拿着棍子")
    assert re.fullmatch(r"20261120-[0-9a-f]{12}", r.id)
    assert r.status == "CLASSIFIED" and r.classification.incident_type == "FIGHT" and r.station_id
    assert r.create_time == r.update_time == r.classify_time == intake.at
    assert actions(r) == ["REPORTED", "ROUTED", "CLASSIFIED"]
    assert all(e.actor == "ct-1001" and e.roles == ["call_taker"] for e in r.timeline)
    assert intake.repos.reports.rows[r.id].timeline == r.timeline
    [(kind, subject, event)] = intake.taken()
    assert (kind, subject) == ("intake.IncidentReported", r.name)
    assert not event.report.timeline and [e.action for e in event.new_entries] == actions(r)
    assert event.report.status == pb.REPORT_STATUS_CLASSIFIED and event.report.station_id == r.station_id
    assert r.caller_phone == "13912345678" and not event.report.HasField("caller"), "kept, but not announced"
    assert intake.repos.reports.search_locks == [duplicates.lock_key(duplicates.candidate_of(r), area=r.station_id)]


def test_a_silent_alarm_is_flagged_and_an_address_only_report_is_geocoded(intake):
    silent = intake.report("救命", channel="SILENT_ALARM", phone="13900000001")
    assert actions(silent)[:2] == ["REPORTED", "FLAGGED"] and not silent.voice_callback_allowed
    a = sample_gazetteer.addresses()[321]
    located = intake.report("门口有人打架", point=None, address=a.full_address, phone="13900000002")
    assert located.location_source == "GAZETTEER" and located.address_match.address.code == a.code
    assert located.station_id == a.station_id and "GEOCODED" in actions(located)


def test_repeated_invalid_calls_from_one_number_become_harassment(intake):
    for i, text in enumerate(["打错了", "哈哈开玩笑的", "骗你的，试试110"]):
        assert intake.report(text, at=T0 + timedelta(minutes=i), phone="13911112222").status == "CLOSED"
    fourth = intake.report("喂？喂？", at=T0 + timedelta(minutes=3), phone="13911112222")
    assert (fourth.classification.category, fourth.classification.incident_type) == ("INVALID", "HARASSING_CALL")
    assert intake.report("喂？喂？", at=T0 + timedelta(minutes=4), phone="13933334444").classification.category \
        == "POLICE"


def test_a_witness_of_the_same_fight_is_merged_and_the_master_is_announced_first(intake):
    first = intake.report("小区门口有两个人打架，其中一人拿着棍子", phone="13900000011")
    intake.taken()
    second = intake.report("楼下好多人在打架，有人头被打破了", at=T0 + timedelta(minutes=6),
                           point=(HANKOU[0] + 0.001, HANKOU[1]), phone="13900000012")
    assert second.status == "MERGED" and second.merged_into == first.id and "相距" in second.merge_reason
    assert actions(second)[-1] == "MERGED"
    master = intake.repos.reports.get(first.id)
    assert master.duplicates == [second.id] and actions(master)[-1] == "DUPLICATE_LINKED"
    assert first.id in intake.repos.reports.locked
    (k1, s1, linked), (k2, s2, reported) = intake.taken()
    assert (k1, s1, linked.action) == ("intake.ReportUpdated", first.name, "DUPLICATE_LINKED")
    assert list(linked.changed_fields) == ["update_time"] and not linked.report.duplicates
    assert [e.detail for e in linked.new_entries] == [f"重复警情 {second.name} 已合并至本警情"]
    assert (k2, s2) == ("intake.IncidentReported", second.name)
    assert reported.report.merged_into == first.name and reported.report.status == pb.REPORT_STATUS_MERGED


def test_a_consultation_is_answered_at_once_and_counts_for_the_answer_time(intake):
    r = intake.report("身份证掉了去哪里补办", point=None, address="江城市江岸区")
    assert r.status == "ANSWERED" and r.answer_time == intake.at
    c = r.consultation
    assert c.answered_at_once and c.entry_id == "KB-HZ-001" and actions(r)[-1] == "CONSULTATION_ANSWERED"
    assert intake.repos.sla.observed == [("answer", (r.answer_time - r.receive_time).total_seconds())]
    [(_, _, event)] = intake.taken()
    assert event.report.consultation.knowledge_entry_id == "KB-HZ-001"


def test_a_consultation_the_knowledge_base_cannot_answer_is_queued(intake):
    r = intake.report("请问公积金贷款买二手房，公积金中心需要派出所开什么证明？")
    assert r.status == "CLASSIFIED" and r.consultation.status == "QUEUED" and r.answer_time is None
    assert r.consultation.suggestions and actions(r)[-1] == "CONSULTATION_QUEUED"
    assert intake.repos.sla.observed == []


# -- corrections -------------------------------------------------------------------------------

def correct(intake, report_id, paths, reason="回拨核实", **changes):
    values = dict(category="", incident_type="", priority=0, address_text="", address_code="", lon=None, lat=None,
                  accuracy_m=0.0, location_source="")
    values.update(changes)
    return intake.run(handlers.update_report, report_id=report_id, paths=paths, changes=values, reason=reason,
                      index=intake.index, gazetteer=intake.gazetteer)


def test_a_correction_is_kept_in_the_timeline_and_announced_with_what_changed(intake):
    r = intake.report("买菜的跟摊主吵起来了，谁也不让谁")
    intake.taken()
    intake.clock.advance(60)
    fixed = correct(intake, r.id, ["classification.incident_type", "classification.priority"],
                    reason="回拨核实为夫妻间家暴", category="POLICE", incident_type="DOMESTIC_VIOLENCE", priority=2)
    c = fixed.classification
    assert (c.incident_type, c.priority, c.corrected) == ("DOMESTIC_VIOLENCE", 2, True)
    assert c.reason.startswith("接警员更正：回拨核实为夫妻间家暴（原判：")
    entry = fixed.timeline[-1]
    assert entry.action == "CORRECTED" and entry.reason == "回拨核实为夫妻间家暴"
    assert "纠纷（DISPUTE） → 家庭暴力（DOMESTIC_VIOLENCE）" in entry.detail and "3级 → 2级" in entry.detail
    [(kind, _, event)] = intake.taken()
    assert kind == "intake.ReportUpdated" and event.action == "CORRECTED"
    # A correction is certain: the classifier's confidence becomes 1.
    assert list(event.changed_fields) == ["classification.incident_type", "classification.priority",
                                          "classification.reason", "classification.corrected",
                                          "classification.confidence", "update_time"]
    assert [e.action for e in event.new_entries] == ["CORRECTED"]
    assert intake.repos.reports.rows[r.id].timeline == fixed.timeline
    # The same correction again changes nothing and says nothing.
    again = correct(intake, r.id, ["classification.incident_type", "classification.priority"],
                    category="POLICE", incident_type="DOMESTIC_VIOLENCE", priority=2)
    assert len(again.timeline) == len(fixed.timeline) and intake.taken() == []


def test_a_moved_report_is_routed_again_and_a_consultation_correction_joins_and_leaves_the_queue(intake):
    r = intake.report("河边有几个小孩在野泳，水很深，也没个大人看着", point=WUCHANG)
    home = r.station_id
    target = sd.stations()[10]
    assert target.station_id != home
    moved = correct(intake, r.id, ["location"], lon=target.hq[0], lat=target.hq[1], accuracy_m=5.0)
    assert moved.station_id == target.station_id and moved.location_source == "CALL_TAKER"
    assert actions(moved)[-2:] == ["CORRECTED", "ROUTED"]
    queued = correct(intake, r.id, ["classification.category", "classification.incident_type"],
                     category="CONSULTATION", incident_type="CONSULTATION_OTHER")
    assert queued.consultation.status == "QUEUED" and queued.consultation.station_id == target.station_id
    assert actions(queued)[-2:] == ["CORRECTED", "CONSULTATION_QUEUED"]
    # Routed back home, the question still waiting for an expert follows it to that station's queue.
    followed = correct(intake, r.id, ["location"], lon=WUCHANG[0], lat=WUCHANG[1], accuracy_m=5.0)
    assert followed.station_id == home and followed.consultation.station_id == home
    assert actions(followed)[-3:] == ["CORRECTED", "ROUTED", "CONSULTATION_MOVED"]
    back = correct(intake, r.id, ["classification.category", "classification.incident_type"],
                   category="POLICE", incident_type="DROWNING_RISK")
    assert back.consultation is None and actions(back)[-1] == "CONSULTATION_WITHDRAWN"
    events = intake.taken()[1:]
    assert [[e.action for e in ev.new_entries] for _, _, ev in events] == [
        ["CORRECTED", "ROUTED"], ["CORRECTED", "CONSULTATION_QUEUED"], ["CORRECTED", "ROUTED", "CONSULTATION_MOVED"],
        ["CORRECTED", "CONSULTATION_WITHDRAWN"]]
    assert "consultation" in events[1][2].changed_fields and "consultation" in events[3][2].changed_fields
    assert "consultation.station_id" in events[2][2].changed_fields


def test_corrections_that_cannot_be(intake):
    with pytest.raises(NotFound):
        correct(intake, "20260101-000000000000", ["classification.priority"], priority=1)
    r = intake.report("买菜的跟摊主吵起来了，谁也不让谁")
    with pytest.raises(InvalidArgument):
        correct(intake, r.id, ["classification.incident_type"], incident_type="WATER_OUTAGE")
    dup_master = intake.report("小区门口有两个人打架", point=WUCHANG, phone="13900000021")
    dup = intake.report("刚才报的打架，警察怎么还没到", point=WUCHANG, phone="13900000021", at=T0 + timedelta(minutes=5))
    assert dup.merged_into == dup_master.id
    with pytest.raises(FailedPrecondition) as err:
        correct(intake, dup.id, ["classification.priority"], priority=1)
    assert err.value.reason == "REPORT_MERGED"


# -- the call answered, rating, merges -------------------------------------------------------------

def test_a_report_is_answered_and_rated_once(intake):
    r = intake.report("有人在小区里偷电动车", point=WUCHANG)
    intake.taken()
    intake.clock.set(r.receive_time + timedelta(seconds=2))
    answered = intake.run(handlers.answer_report, report_id=r.id)
    assert answered.answer_time == r.receive_time + timedelta(seconds=2)
    assert answered.timeline[-1].detail == "接警员应答，用时 2.0 秒"
    assert intake.repos.sla.observed == [("answer", 2.0)]
    assert intake.repos.sla.labels == [{"priority": r.classification.priority, "channel": "PHONE"}]
    with pytest.raises(FailedPrecondition) as err:
        intake.run(handlers.answer_report, report_id=r.id)
    assert err.value.reason == "ALREADY_ANSWERED"
    rated = intake.run(handlers.rate_report, report_id=r.id, satisfaction="BASICALLY_SATISFIED", comment="态度好")
    assert rated.satisfaction_comment == "态度好" and rated.rate_time == intake.at
    assert rated.timeline[-1].detail == "群众评价：基本满意（态度好）"
    with pytest.raises(FailedPrecondition) as err:
        intake.run(handlers.rate_report, report_id=r.id, satisfaction="SATISFIED", comment="")
    assert err.value.reason == "ALREADY_RATED"
    assert [(ev.action, list(ev.changed_fields)) for _, _, ev in intake.taken()] == [
        ("ANSWERED", ["answer_time", "update_time"]),
        ("RATED", ["satisfaction", "update_time", "satisfaction_comment"])]
    with pytest.raises(NotFound):
        intake.run(handlers.answer_report, report_id="nope")


def test_a_call_taker_merges_and_unmerges(intake):
    master = intake.report("商场门口有人抢包后往地铁站方向跑了", phone="13900000031")
    other = intake.report("有个小偷在偷电动车电瓶", point=WUCHANG, phone="13900000032", at=T0 + timedelta(minutes=5))
    intake.taken()
    intake.clock.advance(10)
    merged = intake.run(handlers.merge_report, report_id=other.id, master_id=master.id, reason="同一嫌疑人")
    assert merged.status == "MERGED" and merged.merged_into == master.id and merged.merge_reason == "接警员合并：同一嫌疑人"
    assert intake.repos.reports.locked[-2:] == sorted([other.id, master.id])
    assert [(s, ev.action) for _, s, ev in intake.taken()] == [(master.name, "DUPLICATE_LINKED"), (other.name, "MERGED")]
    for report_id, master_id, reason in ((other.id, master.id, "ALREADY_MERGED"), (master.id, other.id, "MASTER_IS_MERGED")):
        with pytest.raises(FailedPrecondition) as err:
            intake.run(handlers.merge_report, report_id=report_id, master_id=master_id, reason="再次")
        assert err.value.reason == reason
    question = intake.report("请问身份证丢了怎么补办？", point=WUCHANG, phone="13900000033")
    with pytest.raises(FailedPrecondition) as err:
        intake.run(handlers.merge_report, report_id=question.id, master_id=master.id, reason="同一人")
    assert err.value.reason == "CATEGORY_MISMATCH"
    with pytest.raises(FailedPrecondition) as err:
        intake.run(handlers.merge_report, report_id=master.id, master_id=question.id, reason="同一人")
    assert err.value.reason == "REPORT_IS_MASTER"
    intake.taken()
    intake.clock.advance(10)
    alone = intake.run(handlers.unmerge_report, report_id=other.id, reason="另一起盗窃")
    assert (alone.status, alone.merged_into, alone.merge_reason) == ("CLASSIFIED", "", "")
    assert intake.repos.reports.get(master.id).duplicates == []
    (_, s1, unlinked), (_, s2, unmerged) = intake.taken()
    assert (s1, unlinked.action, s2, unmerged.action) == (master.name, "DUPLICATE_UNLINKED", other.name, "UNMERGED")
    assert list(unmerged.changed_fields) == ["status", "merged_into", "update_time", "merge_reason"]
    with pytest.raises(FailedPrecondition) as err:
        intake.run(handlers.unmerge_report, report_id=other.id, reason="再撤一次")
    assert err.value.reason == "NOT_MERGED"


# -- the expert queue ----------------------------------------------------------------------------------

def test_an_expert_claims_and_answers_a_queued_consultation_into_the_knowledge_base(intake):
    r = intake.report("请问公积金贷款买二手房，公积金中心需要派出所开什么证明？")
    intake.taken()
    with pytest.raises(FailedPrecondition) as err:
        intake.run(handlers.answer_consultation, actor=EXPERT, report_id=r.id, text="……", topic="其他", question="",
                   keywords=[])
    assert err.value.reason == "CONSULTATION_NOT_CLAIMED"
    intake.clock.advance(30)
    claimed = intake.run(handlers.claim_consultation, actor=EXPERT, report_id=r.id)
    assert (claimed.status, claimed.expert, claimed.expert_name) == ("CLAIMED", "expert-zhou", "户政专家周敏")
    with pytest.raises(FailedPrecondition) as err:
        intake.run(handlers.claim_consultation, actor=OTHER_EXPERT, report_id=r.id)
    assert err.value.reason == "CONSULTATION_CLAIMED"
    with pytest.raises(PermissionDenied):
        intake.run(handlers.answer_consultation, actor=OTHER_EXPERT, report_id=r.id, text="不需要", topic="户政",
                   question="", keywords=[])
    intake.clock.advance(30)
    answered = intake.run(handlers.answer_consultation, actor=EXPERT, report_id=r.id, text="一般不需要派出所开具证明。",
                          topic="户政", question="公积金贷款需要派出所开证明吗？", keywords=["公积金", "证明"])
    assert answered.status == "ANSWERED" and re.fullmatch(r"KB-EX-20261120-[0-9a-f]{8}", answered.entry_id)
    [(entry, author)] = intake.repos.knowledge.added
    assert (entry.entry_id, entry.source, entry.source_consultation, author) == (
        answered.entry_id, "EXPERT", f"consultations/{r.id}", "expert-zhou")
    assert entry.question == "公积金贷款需要派出所开证明吗？" and entry.keywords == ("公积金", "证明")
    stored = intake.repos.reports.get(r.id)
    assert stored.status == "ANSWERED" and stored.answer_time == intake.at
    assert actions(stored)[-2:] == ["CONSULTATION_CLAIMED", "CONSULTATION_ANSWERED"]
    assert intake.repos.sla.observed == [("answer", (intake.at - r.receive_time).total_seconds())]
    events = intake.taken()
    assert [(k, getattr(ev, "action", "")) for k, _, ev in events] == [
        ("intake.ReportUpdated", "CONSULTATION_CLAIMED"), ("intake.ReportUpdated", "CONSULTATION_ANSWERED"),
        ("intake.KnowledgeEntryAdded", "")]
    assert events[2][1] == f"knowledge/{answered.entry_id}" and events[2][2].entry.answer == "一般不需要派出所开具证明。"
    with pytest.raises(NotFound) as err:
        intake.run(handlers.claim_consultation, actor=EXPERT, report_id="nope")
    assert "consultations/nope" in str(err.value)


# -- following the dispatch case and the 12345 work order -------------------------------------------

def test_the_report_follows_its_dispatch_case(intake):
    r = intake.report("有人在地铁站持刀抢劫")
    intake.taken()
    case = dpb.DispatchCase(name="cases/c1", report=r.name, status=dpb.CASE_STATUS_PENDING)
    intake.deliver("dispatch", "dispatch.CaseCreated", dpb.CaseCreated(dispatch_case=case))
    stored = intake.repos.reports.get(r.id)
    assert stored.status == "ASSIGNING" and stored.dispatch_case == "cases/c1"
    assert stored.timeline[-1].actor == "intake" and stored.timeline[-1].roles == ["service"]
    offered = dpb.Assignment(name="cases/c1/assignments/a1", unit="units/U-S01-001",
                             state=dpb.ASSIGNMENT_STATE_OFFERED)
    intake.deliver("dispatch", "dispatch.AssignmentChanged", dpb.AssignmentChanged(assignment=offered, case_name=case.name))
    assert intake.repos.reports.get(r.id).hand_off_time is None
    assert intake.repos.reports.get(r.id).status == "ASSIGNING"
    for seconds in (25, 90):  # a second unit accepting does not move the hand-off
        accepted = dpb.Assignment(name="cases/c1/assignments/a1", unit="units/U-S01-001",
                                  state=dpb.ASSIGNMENT_STATE_ACCEPTED, accept_time=to_pb(T0 + timedelta(seconds=seconds)))
        intake.deliver("dispatch", "dispatch.AssignmentChanged",
                       dpb.AssignmentChanged(assignment=accepted, case_name=case.name))
    handed = intake.repos.reports.get(r.id)
    assert handed.hand_off_time == T0 + timedelta(seconds=25) and handed.timeline[-1].detail == \
        "民警接单（units/U-S01-001），距接报 25 秒"
    assert handed.status == "DISPATCHED"
    for minutes in (4, 6):  # the first unit on scene stamps the arrival
        arrived = dpb.Assignment(name="cases/c1/assignments/a1", unit="units/U-S01-001",
                                 state=dpb.ASSIGNMENT_STATE_ON_SCENE, arrive_time=to_pb(T0 + timedelta(minutes=minutes)))
        intake.deliver("dispatch", "dispatch.AssignmentChanged",
                       dpb.AssignmentChanged(assignment=arrived, case_name=case.name))
    on_scene = intake.repos.reports.get(r.id)
    assert on_scene.on_scene_time == T0 + timedelta(minutes=4) and on_scene.status == "DISPATCHED"
    assert on_scene.timeline[-1].detail == "民警到达现场（units/U-S01-001），距接报 240 秒"
    case.status = dpb.CASE_STATUS_CLOSED
    intake.deliver("dispatch", "dispatch.CaseUpdated", dpb.CaseUpdated(dispatch_case=case, action="CLOSED"))
    assert intake.repos.reports.get(r.id).status == "CLOSED"
    assert [(ev.action, list(ev.changed_fields)) for _, _, ev in intake.taken()] == [
        ("CASE_OPENED", ["status", "update_time", "dispatch_case"]),
        ("HANDED_OFF", ["status", "hand_off_time", "update_time"]), ("ON_SCENE", ["update_time", "on_scene_time"]),
        ("CLOSED", ["status", "update_time"])]
    # Cases of reports intake does not know change nothing.
    elsewhere = dpb.DispatchCase(name="cases/elsewhere", report="reports/not-here")
    intake.deliver("dispatch", "dispatch.CaseCreated", dpb.CaseCreated(dispatch_case=elsewhere))
    intake.deliver("dispatch", "dispatch.AssignmentChanged", dpb.AssignmentChanged(
        assignment=dpb.Assignment(state=dpb.ASSIGNMENT_STATE_ACCEPTED), case_name="cases/unknown"))
    assert intake.taken() == []


def test_the_report_follows_its_12345_work_order_and_a_joint_rescue_only_links(intake):
    r = intake.report("小区停水两天了，物业也不管，请帮忙协调自来水公司", point=WUCHANG)
    police = intake.report("燃气管道被挖断了，有很大的燃气味", phone="13900000041")
    intake.taken()
    order = rpb.WorkOrder(name="workOrders/w1", report=r.name, source=rpb.WORK_ORDER_SOURCE_REPORT_110,
                          status=rpb.WORK_ORDER_STATUS_ASSIGNED)
    intake.deliver("referral", "referral.WorkOrderCreated", rpb.WorkOrderCreated(work_order=order))
    statuses = [intake.repos.reports.get(r.id).status]
    for status in (rpb.WORK_ORDER_STATUS_IN_PROGRESS, rpb.WORK_ORDER_STATUS_CLOSED, rpb.WORK_ORDER_STATUS_REOPENED):
        order.status = status
        intake.deliver("referral", "referral.WorkOrderUpdated", rpb.WorkOrderUpdated(work_order=order))
        statuses.append(intake.repos.reports.get(r.id).status)
    assert statuses == ["REFERRED", "REFERRED", "CLOSED", "REFERRED"]
    assert intake.repos.reports.get(r.id).work_order == "workOrders/w1"
    # Orders from the 12345 hotline itself and orders transferred to 110 leave the report as it is.
    for other in (rpb.WorkOrder(name="workOrders/h1", report=r.name, source=rpb.WORK_ORDER_SOURCE_HOTLINE_12345,
                                status=rpb.WORK_ORDER_STATUS_CLOSED),
                  rpb.WorkOrder(name="workOrders/t1", report=r.name, source=rpb.WORK_ORDER_SOURCE_REPORT_110,
                                status=rpb.WORK_ORDER_STATUS_TRANSFERRED_TO_110)):
        intake.deliver("referral", "referral.WorkOrderUpdated", rpb.WorkOrderUpdated(work_order=other))
    assert intake.repos.reports.get(r.id).status == "REFERRED"
    joint = rpb.WorkOrder(name="workOrders/j1", report=police.name, source=rpb.WORK_ORDER_SOURCE_REPORT_110,
                          status=rpb.WORK_ORDER_STATUS_ASSIGNED, joint_rescue=True)
    intake.deliver("referral", "referral.WorkOrderCreated", rpb.WorkOrderCreated(work_order=joint))
    joint.status = rpb.WORK_ORDER_STATUS_CLOSED
    intake.deliver("referral", "referral.WorkOrderUpdated", rpb.WorkOrderUpdated(work_order=joint))
    linked = intake.repos.reports.get(police.id)
    assert linked.work_order == "workOrders/j1" and linked.status == police.status
    assert actions(linked)[-1] == "JOINT_RESCUE"
    assert [(s, ev.action) for _, s, ev in intake.taken()] == [
        (r.name, "REFERRED"), (r.name, "CLOSED"), (r.name, "REFERRED"), (police.name, "JOINT_RESCUE")]


def test_event_handlers_name_the_feeds_intake_consumes():
    assert {source: set(types) for source, types in handlers.EVENT_HANDLERS.items()} == {
        "dispatch": {"dispatch.CaseCreated", "dispatch.CaseUpdated", "dispatch.AssignmentChanged"},
        "referral": {"referral.WorkOrderCreated", "referral.WorkOrderUpdated"},
    }
