"""Alerts use cases on a fake unit of work: in-memory repositories, the events they publish
through the service's own event mapping, no database."""
from __future__ import annotations

import copy
import dataclasses
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from services.alerts import domain, handlers, mapping, workers
from services.alerts.domain import Alert, Incident, KeywordTerm, Obligation, Report, Rule, RuleCounts, Signal, Silence
from services.runtime.auth import AuthContext
from services.runtime.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from tests.support import Clock, fake_unit_of_work

T0 = datetime(2026, 11, 2, 20, 0, tzinfo=timezone.utc)
CHIEF = AuthContext("chief-1", frozenset({"station_chief"}))
POINT = (114.30, 30.58)


# -- in-memory repositories -----------------------------------------------------------

class Rules:
    def __init__(self):
        self.versions: dict[str, list[Rule]] = {}

    def get(self, rule_id, *, lock=True):
        if rule_id not in self.versions:
            raise NotFound(f"rules/{rule_id}")
        return copy.deepcopy(self.versions[rule_id][-1])

    def ids(self):
        return set(self.versions)

    def add(self, rule):
        self.versions[rule.id] = [copy.deepcopy(rule)]

    def add_version(self, rule):
        self.versions[rule.id].append(copy.deepcopy(rule))

    def active(self, kind=None):
        return [copy.deepcopy(v[-1]) for _, v in sorted(self.versions.items())
                if v[-1].enabled and v[-1].delete_time is None and (not kind or v[-1].kind == kind)]

    def revision(self):
        return len(self.versions), sum(len(v) for v in self.versions.values())


class Alerts:
    def __init__(self):
        self.rows: dict[str, Alert] = {}

    def _stored(self, alert):
        alert.new_notifications, alert.new_entries = [], []
        kept = copy.copy(alert)
        kept._events = []
        self.rows[alert.id] = copy.deepcopy(kept)

    def _loaded(self, alert_id):
        return dataclasses.replace(copy.deepcopy(self.rows[alert_id]))  # as loaded: its changes start from here

    def find_open(self, fingerprint):
        found = [a for a in self.rows.values() if a.fingerprint == fingerprint and a.state != "RESOLVED"]
        return self._loaded(found[0].id) if found else None

    def get(self, alert_id, *, whole=False):
        if alert_id not in self.rows:
            raise NotFound(f"alerts/{alert_id}")
        return self._loaded(alert_id)

    def add(self, alert):
        if self.find_open(alert.fingerprint) is not None:
            return False
        self._stored(alert)
        return True

    def save(self, alert):
        self._stored(alert)

    def open_mentioning(self, fingerprint, subject):
        found = self.find_open(fingerprint)
        return found is not None and found.mentions(subject)

    def firing_labels(self):
        return [(a.id, dict(a.labels)) for a in self.rows.values() if a.state == "FIRING"]

    def held_by(self, silence_id):
        return [self._loaded(a.id) for a in self.rows.values() if a.silence_id == silence_id and a.state == "SILENCED"]

    def due_for_escalation(self, now):
        due = [a for a in self.rows.values() if a.state == "FIRING" and a.next_escalation_time is not None
               and a.next_escalation_time <= now]
        return [self._loaded(a.id) for a in sorted(due, key=lambda a: a.next_escalation_time)]

    def auto_resolvable(self, now):
        return [a.id for a in self.rows.values() if a.state != "RESOLVED" and a.auto_resolve_time is not None
                and a.auto_resolve_time <= now]

    def open_about(self, subject):
        return [a.id for a in self.rows.values() if a.subject == subject and a.state != "RESOLVED"]


class Silences:
    def __init__(self):
        self.rows: dict[str, Silence] = {}

    def add(self, s):
        self.rows[s.id] = copy.deepcopy(s)

    def get(self, silence_id):
        if silence_id not in self.rows:
            raise NotFound(f"silences/{silence_id}")
        return copy.deepcopy(self.rows[silence_id])

    def save(self, s):
        self.rows[s.id] = copy.deepcopy(s)

    def active(self, now):
        return [copy.deepcopy(s) for s in sorted(self.rows.values(), key=lambda s: s.create_time)
                if s.state(now) == "ACTIVE"]

    def starting(self, now):
        return [copy.deepcopy(s) for s in self.rows.values() if not s.applied and s.state(now) == "ACTIVE"]

    def ending(self, now):
        return [copy.deepcopy(s) for s in self.rows.values() if not s.released and s.state(now) == "EXPIRED"]


class Incidents:
    def __init__(self):
        self.rows: dict[str, Incident] = {}
        self.hours: Counter = Counter()

    def record(self, i):
        if i.report_id in self.rows:
            return False
        self.rows[i.report_id] = i
        return True

    def roll_up(self, keys):
        self.hours.update(keys)

    def record_counted(self, i, keys):
        if not self.record(i):
            return False
        self.roll_up(keys)
        return True

    def counts(self, end, windows, hours, cells):
        """What the store's one statement gives, asked one at a time."""
        out = RuleCounts()
        out.windows = [self.count_window(w.area, w.resolution, w.start, end, list(w.incident_types)) for w in windows]
        for h in hours:
            hourly = self.hourly(h.area, list(h.incident_types), list(h.hours))
            out.hours.append((hourly, self.first_hour(h.area) if hourly.get(h.hour, 0) >= h.min_count else None))
        out.cells = [self.police_by_cell(c.resolution, c.start, end, list(c.cells), list(c.incident_types))
                     for c in cells]
        return out

    def set_merged(self, report_id, merged_into):
        self.rows[report_id].merged_into = merged_into

    def correct(self, report_id, *, category, incident_type, station_id, grid_id):
        i = self.rows[report_id]
        i.category, i.incident_type, i.station_id, i.grid_id = category, incident_type, station_id, grid_id

    def station_of(self, report_id):
        return self.rows[report_id].station_id if report_id in self.rows else ""

    def _counted(self, start, end, incident_types, police=False):
        return [i for i in self.rows.values() if start < i.receive_time <= end and not i.merged_into
                and (i.category == "POLICE" if police else i.category not in ("INVALID", ""))
                and (not incident_types or i.incident_type in incident_types)]

    def count_window(self, area, resolution, start, end, incident_types):
        def inside(i):
            if area.kind == "STATION":
                return i.station_id == area.id
            if area.kind == "GRID":
                return i.grid_id == area.id
            return bool(i.cells) and i.cells[resolution - 6] == area.id
        return sum(1 for i in self._counted(start, end, incident_types) if inside(i))

    def hourly(self, area, incident_types, hours):
        out = Counter()
        for (kind, area_id, itype, hour), n in self.hours.items():
            if kind == area.kind and area_id == area.id and itype in incident_types and hour in hours:
                out[hour] += n
        return dict(out)

    def first_hour(self, area):
        hours = [h for (k, a, _, h) in self.hours if k == area.kind and a == area.id]
        return min(hours) if hours else None

    def police_by_cell(self, resolution, start, end, cells, incident_types):
        return Counter(i.cells[resolution - 6] for i in self._counted(start, end, incident_types, police=True)
                       if i.cells and i.cells[resolution - 6] in cells)


class Signals:
    def __init__(self):
        self.rows: dict[str, Signal] = {}
        self.bodies: dict[str, bytes] = {}

    def body_by_external_id(self, source, external_id):
        found = [s for s in self.rows.values() if (s.source, s.external_id) == (source, external_id)]
        return self.bodies[found[0].id] if found else None

    def add(self, s, body):
        if s.external_id and self.body_by_external_id(s.source, s.external_id) is not None:
            return False
        self.rows[s.id], self.bodies[s.id] = copy.deepcopy(s), body
        return True

    def save_alerts(self, s, alert_names, body):
        self.rows[s.id], self.bodies[s.id] = copy.deepcopy(s), body


class Obligations:
    def __init__(self):
        self.rows: dict[str, Obligation] = {}

    def add(self, o):
        self.rows[o.id] = copy.deepcopy(o)

    def get(self, obligation_id):
        if obligation_id not in self.rows:
            raise NotFound(f"obligations/{obligation_id}")
        return copy.deepcopy(self.rows[obligation_id])

    def find(self, kind, subject):
        found = [o for o in self.rows.values() if (o.kind, o.subject) == (kind, subject)]
        return copy.deepcopy(found[0]) if found else None

    def pending_id(self, kind, subject):
        found = [o.id for o in self.rows.values() if (o.kind, o.subject, o.state) == (kind, subject, "PENDING")]
        return found[0] if found else None

    def due_for_warning(self, now, lead_s, kinds, stations):
        return [copy.deepcopy(o) for o in self.rows.values()
                if o.state == "PENDING" and o.due_time - timedelta(seconds=lead_s) <= now and o.warned != "OVERDUE"
                and (not kinds or o.kind in kinds) and (not stations or o.station_id in stations)]

    def save(self, o):
        self.rows[o.id] = copy.deepcopy(o)


class Repos:
    def __init__(self):
        self.rules = Rules()
        self.alerts = Alerts()
        self.silences = Silences()
        self.incidents = Incidents()
        self.signals = Signals()
        self.obligations = Obligations()


class Service:
    """One alerts service in memory: its repositories, its context, a clock; a unit of work per step."""

    def __init__(self):
        self.repos = Repos()
        self.clock = Clock(T0)
        self.units: list | None = []
        self.context = handlers.Context(rules=handlers.RulesCache(), units=self._units, locate=lambda lon, lat: "S01")
        self.published: list[tuple] = []

    def _units(self, fresh=False):
        if self.units is None:
            raise Unavailable("dispatch did not answer")
        return self.units

    def step(self, work, *, at: datetime | None = None, actor: AuthContext | None = None):
        """Runs `work(uow)` in a unit of work at `at`, publishes what it recorded, returns its result."""
        if at is not None:
            self.clock.set(at)
        uow = fake_unit_of_work(self.repos, event_mapping=mapping.event_to_message, clock=self.clock, actor=actor,
                                context=self.context)
        result = work(uow)
        uow.flush()
        self.published += uow.outbox.events
        return result

    def events(self) -> list[tuple[str, str]]:
        """(type, action) of what was published since last asked."""
        out = [(t, payload.action if t == "alerts.AlertUpdated" else "FIRED") for t, _, payload in self.published]
        self.published = []
        return out

    def rule(self, **fields) -> Rule:
        content = Rule(enabled=True, **fields)
        return self.step(lambda uow: handlers.rules.create_rule(uow, rule=content), actor=CHIEF)

    def report(self, text: str, *, at: datetime, station="S01", **kw) -> list[Alert]:
        fields = dict(name=f"reports/r{len(self.repos.incidents.rows)}", description=text, station_id=station,
                      grid_id=f"{station}-G01", category="POLICE", incident_type="FIGHT", receive_time=at, point=POINT)
        fields.update(kw)
        r = Report(**fields)
        return self.step(lambda uow: handlers.detection.report_received(uow, report=r, units=self.units), at=at)

    def sweep(self, at: datetime) -> dict:
        return self.step(workers.sweep, at=at)


@pytest.fixture()
def svc() -> Service:
    return Service()


def keyword(svc, term="抢劫", **kw) -> Rule:
    fields = dict(display_name="关键词", kind="KEYWORD", level="BLUE", terms=[KeywordTerm(term)], escalate_after=120.0)
    fields.update(kw)
    return svc.rule(**fields)


# -- detection and the alert lifecycle -----------------------------------------------------

def test_a_report_raises_an_alert_a_repeat_folds_in_a_redelivery_changes_nothing(svc):
    keyword(svc)
    assert svc.report("不是抢劫，是误会", at=T0) == []
    [alert] = svc.report("有人抢劫", at=T0 + timedelta(minutes=1))
    assert alert.state == "FIRING" and alert.count == 1 and svc.events() == [("alerts.AlertFired", "FIRED")]
    # A repeat call merged into the incident (重复警情) folds into its alert.
    [again] = svc.report("又有人抢劫", at=T0 + timedelta(minutes=2), merged_into=alert.subject)
    assert again.id == alert.id and again.count == 2 and svc.events() == [("alerts.AlertUpdated", "UPDATED")]
    repeated = Report(name="reports/r1", description="有人抢劫", station_id="S01", category="POLICE", receive_time=T0)
    assert svc.step(lambda uow: handlers.detection.report_received(uow, report=repeated, units=[])) == []
    assert svc.events() == [] and svc.repos.alerts.rows[alert.id].count == 2
    # Another incident with the same word is an alert of its own, not a third count of this one.
    [other] = svc.report("商场门口有人抢劫", at=T0 + timedelta(minutes=3))
    assert other.id != alert.id and other.count == 1 and svc.events() == [("alerts.AlertFired", "FIRED")]
    assert svc.repos.alerts.rows[alert.id].count == 2


def test_the_fired_event_carries_the_alert_as_notified(svc):
    keyword(svc, level="RED")
    svc.report("有人抢劫", at=T0)
    [(kind, subject, payload)] = svc.published
    assert kind == "alerts.AlertFired" and subject.startswith("alerts/a20261102-")
    assert payload.alert.level == pb.ALERT_LEVEL_RED and payload.alert.labels["term"] == "抢劫"
    assert payload.alert.recipients[-1] == "command/city" and "command/city（语音电话）" in payload.new_entries[1].detail
    assert [e.action for e in payload.new_entries] == ["FIRED", "NOTIFIED"]
    assert not payload.alert.notifications and not payload.alert.timeline


def test_each_update_says_what_its_change_set_and_appended(svc):
    keyword(svc)
    [alert] = svc.report("有人抢劫", at=T0)
    svc.report("又有人抢劫", at=T0 + timedelta(minutes=1), merged_into=alert.subject)
    svc.step(lambda uow: handlers.alerts.acknowledge_alert(uow, alert_id=alert.id, comment="已派员"),
             at=T0 + timedelta(minutes=2), actor=CHIEF)
    _, (_, _, repeated), (_, _, acked) = svc.published
    assert repeated.action == "UPDATED" and [e.action for e in repeated.new_entries] == ["REPEATED"]
    assert {"subject", "related_subjects", "last_seen_time", "count", "update_time"} <= set(repeated.changed_fields)
    assert "state" not in repeated.changed_fields
    assert acked.action == "ACKNOWLEDGED" and [e.stamp.reason for e in acked.new_entries] == ["已派员"]
    assert list(acked.changed_fields) == ["state", "acknowledge_stamp", "update_time"]
    assert not acked.alert.timeline and not acked.alert.notifications


def test_volume_counts_in_the_window_and_the_alert_resolves_once_quiet(svc):
    svc.rule(display_name="网格打架", kind="VOLUME", level="ORANGE", window=1800.0, threshold=2, area_kind="GRID",
             incident_types=["FIGHT"])
    svc.report("打架", at=T0)
    svc.report("打架", at=T0 + timedelta(minutes=1), merged_into="reports/r0")
    svc.report("打架", at=T0 + timedelta(minutes=2))
    assert svc.events() == [], "two counted (a merged repeat is not)"
    [alert] = svc.report("打架", at=T0 + timedelta(minutes=3))
    assert alert.labels["window_count"] == "3" and alert.auto_resolve_time == T0 + timedelta(minutes=33)
    assert svc.sweep(T0 + timedelta(minutes=32)) == {}
    assert svc.sweep(T0 + timedelta(minutes=34)) == {"resolved": 1}
    assert svc.repos.alerts.rows[alert.id].resolved.actor == "alerts"


def test_strength_gap_rules_wait_for_nobody_when_dispatch_does_not_answer(svc):
    keyword(svc, term="纵火")
    svc.rule(display_name="缺口", kind="STRENGTH_GAP", level="ORANGE", window=3600.0, threshold=1,
             parameters={"min_incidents": "1"})
    svc.units = None
    [alert] = svc.report("有人纵火", at=T0)
    assert alert.kind == "KEYWORD"
    svc.units = []
    kinds = sorted(a.kind for a in svc.report("有人纵火", at=T0 + timedelta(minutes=1)))
    assert kinds == ["KEYWORD", "STRENGTH_GAP"]


def test_the_prepare_step_asks_dispatch_only_for_police_reports(svc):
    police = intake_pb.IncidentReported(report=intake_pb.Report(
        classification=intake_pb.Classification(category=intake_pb.CATEGORY_POLICE)))
    svc.units = [(114.3, 30.5, "S01")]
    assert handlers.detection.police_strength(svc.context, None, police) == [(114.3, 30.5, "S01")]
    assert handlers.detection.police_strength(svc.context, None, intake_pb.IncidentReported()) is None
    svc.units = None
    assert handlers.detection.police_strength(svc.context, None, police) is None


def test_volume_counts_come_from_the_warehouse_when_it_answers(svc):
    """The prepare step asks the warehouse for the rules the report is matched by (as last read); the
    handler takes those figures, and counts only what the warehouse did not answer."""
    svc.rule(display_name="量", kind="VOLUME", level="YELLOW", window=3600.0, threshold=3, area_kind="STATION")
    svc.report("有人吵架", at=T0, incident_type="NOISE")  # the rules cache reads the rule
    asked = []

    def warehouse(asks, t):
        asked.append((asks, t))
        return {a.key: 9 for a in asks}

    svc.context.counts = warehouse
    payload = intake_pb.IncidentReported(report=intake_pb.Report(
        name="reports/w1", station_id="S01", grid_id="S01-G01", description="有人打架",
        classification=intake_pb.Classification(category=intake_pb.CATEGORY_POLICE, incident_type="FIGHT")))
    payload.report.receive_time.FromDatetime(T0 + timedelta(minutes=1))
    prepared = handlers.detection.prepare_report(svc.context, None, payload)
    [(asks, t)] = asked
    assert [(a.area.kind, a.area.id, a.start) for a in asks] == [("STATION", "S01", T0 + timedelta(minutes=1)
                                                                  - timedelta(hours=1))]

    def received(prepared):
        return svc.step(lambda uow: handlers.detection.report_received(
            uow, report=mapping.report_from_pb(payload.report), units=prepared.units, figures=prepared.figures),
            at=T0 + timedelta(minutes=1))

    [alert] = received(prepared)
    assert alert.labels["window_count"] == "9"
    # Unanswered (the warehouse down): alerts' own three reports are not above three.
    svc.context.counts = lambda asks, t: {}
    payload.report.name = "reports/w2"
    prepared = handlers.detection.prepare_report(svc.context, None, payload)
    assert prepared.figures == {}
    assert received(prepared) == []


def test_a_corrected_report_is_matched_again_once(svc):
    keyword(svc, term="持枪")
    svc.report("有人闹事", at=T0)
    corrected = intake_pb.ReportUpdated(action="CORRECTED", report=intake_pb.Report(
        name="reports/r0", description="有人闹事，对方持枪", station_id="S01",
        classification=intake_pb.Classification(category=intake_pb.CATEGORY_POLICE)))
    for minute in (1, 2):
        svc.step(lambda uow: handlers.detection.on_report_updated(uow, None, corrected),
                 at=T0 + timedelta(minutes=minute))
    assert svc.events() == [("alerts.AlertFired", "FIRED")]
    merged = intake_pb.ReportUpdated(action="MERGED", report=intake_pb.Report(name="reports/r0", merged_into="reports/x"))
    svc.step(lambda uow: handlers.detection.on_report_updated(uow, None, merged))
    assert svc.repos.incidents.rows["r0"].merged_into == "reports/x"


def test_acknowledge_is_for_those_who_see_the_alert_and_only_once(svc):
    keyword(svc)
    [alert] = svc.report("有人抢劫", at=T0)
    with pytest.raises(NotFound):
        svc.step(lambda uow: handlers.alerts.acknowledge_alert(uow, alert_id=alert.id, comment="", visible=["S99"]))
    acked = svc.step(lambda uow: handlers.alerts.acknowledge_alert(uow, alert_id=alert.id, comment="已派员",
                                                                   visible=["S01"]), actor=CHIEF)
    assert acked.state == "ACKNOWLEDGED" and acked.acknowledged.actor == "chief-1"
    assert svc.events()[-1] == ("alerts.AlertUpdated", "ACKNOWLEDGED")
    with pytest.raises(FailedPrecondition):
        svc.step(lambda uow: handlers.alerts.acknowledge_alert(uow, alert_id=alert.id, comment=""))
    assert svc.sweep(T0 + timedelta(hours=1)) == {}, "an acknowledged alert does not escalate"


def test_an_unacknowledged_alert_escalates_then_resolves_by_hand(svc):
    keyword(svc)
    [alert] = svc.report("有人抢劫", at=T0)
    assert svc.sweep(T0 + timedelta(seconds=119)) == {}
    assert svc.sweep(T0 + timedelta(seconds=121)) == {"escalated": 1}
    assert svc.repos.alerts.rows[alert.id].recipients[-1] == "stations/S01/chief"
    svc.events()
    done = svc.step(lambda uow: handlers.alerts.resolve_alert(uow, alert_id=alert.id, reason="已处置"), actor=CHIEF)
    assert done.state == "RESOLVED" and svc.events() == [("alerts.AlertUpdated", "RESOLVED")]
    with pytest.raises(FailedPrecondition):
        svc.step(lambda uow: handlers.alerts.resolve_alert(uow, alert_id=alert.id, reason="again"))


# -- silences ---------------------------------------------------------------------------

def test_a_silence_holds_new_and_firing_alerts_until_it_ends(svc):
    keyword(svc)
    [firing] = svc.report("有人抢劫", at=T0, station="S01")
    silence = svc.step(lambda uow: handlers.alerts.create_silence(
        uow, matchers=[domain.Matcher("station_id", "S01")], start=T0, expire=T0 + timedelta(minutes=30),
        reason="演练"), at=T0 + timedelta(minutes=1), actor=CHIEF)
    assert silence.creator == "chief-1" and silence.applied
    assert svc.repos.alerts.rows[firing.id].state == "SILENCED"
    svc.events()
    keyword(svc, term="绑架")
    [held] = svc.report("孩子被绑架", at=T0 + timedelta(minutes=2))
    assert held.state == "SILENCED" and held.notifications == []
    assert svc.sweep(T0 + timedelta(minutes=10)) == {}, "silenced alerts do not escalate"
    svc.events()
    assert svc.sweep(T0 + timedelta(minutes=30)) == {"unsilenced": 2}
    assert sorted(svc.events()) == [("alerts.AlertUpdated", "UPDATED")] * 2
    assert {a.state for a in svc.repos.alerts.rows.values()} == {"FIRING"}
    assert svc.repos.silences.rows[silence.id].released


def test_a_silence_ended_early_passes_its_alerts_to_another_that_holds_them(svc):
    keyword(svc)
    [alert] = svc.report("有人抢劫", at=T0)
    first = svc.step(lambda uow: handlers.alerts.create_silence(
        uow, matchers=[domain.Matcher("station_id", "S01")], start=T0, expire=T0 + timedelta(hours=1), reason="一"))
    second = svc.step(lambda uow: handlers.alerts.create_silence(
        uow, matchers=[domain.Matcher("kind", "KEYWORD")], start=T0, expire=T0 + timedelta(hours=2), reason="二"))
    svc.events()
    ended = svc.step(lambda uow: handlers.alerts.expire_silence(uow, silence_id=first.id, reason="提前结束"),
                     at=T0 + timedelta(minutes=5), actor=CHIEF)
    assert ended.expired.reason == "提前结束" and ended.state(T0 + timedelta(minutes=5)) == "EXPIRED"
    assert svc.repos.alerts.rows[alert.id].silence_id == second.id and svc.events() == []
    with pytest.raises(FailedPrecondition):
        svc.step(lambda uow: handlers.alerts.expire_silence(uow, silence_id=first.id, reason=""))


def test_a_later_silence_applies_when_it_starts(svc):
    keyword(svc, escalate_after=None)
    [alert] = svc.report("有人抢劫", at=T0)
    svc.step(lambda uow: handlers.alerts.create_silence(
        uow, matchers=[domain.Matcher("station_id", "S01")], start=T0 + timedelta(minutes=5),
        expire=T0 + timedelta(hours=1), reason="演练"))
    assert svc.repos.alerts.rows[alert.id].state == "FIRING"
    assert svc.sweep(T0 + timedelta(minutes=5)) == {"silenced": 1}


# -- rules ------------------------------------------------------------------------------

def test_rule_changes_are_versions_and_take_effect_at_once(svc):
    r = keyword(svc, term="纵火")
    assert svc.report("有人放火", at=T0) == []
    patch = Rule(terms=[KeywordTerm("纵火"), KeywordTerm("放火")])
    v2 = svc.step(lambda uow: handlers.rules.update_rule(uow, rule_id=r.id, patch=patch, paths=["terms"],
                                                         expected_version=1, reason="补充"), actor=CHIEF)
    assert v2.version == 2 and v2.version_stamp.actor == "chief-1"
    [alert] = svc.report("有人放火", at=T0 + timedelta(minutes=1))
    assert alert.rule_version == 2
    with pytest.raises(Aborted):
        svc.step(lambda uow: handlers.rules.update_rule(uow, rule_id=r.id, patch=patch, paths=["terms"],
                                                        expected_version=1, reason=""))
    with pytest.raises(InvalidArgument):
        svc.step(lambda uow: handlers.rules.update_rule(uow, rule_id=r.id, patch=Rule(), paths=["terms"],
                                                        expected_version=0, reason=""))
    gone = svc.step(lambda uow: handlers.rules.delete_rule(uow, rule_id=r.id, reason="停用"))
    assert gone.version == 3 and not gone.enabled
    assert svc.report("有人放火", at=T0 + timedelta(minutes=2)) == [], "a deleted rule raises nothing"
    with pytest.raises(NotFound):
        svc.step(lambda uow: handlers.rules.delete_rule(uow, rule_id="nope", reason=""))


def test_the_standing_rules_are_added_once(svc):
    standing = {"k": Rule(display_name="关键词", kind="KEYWORD", level="RED", enabled=True, terms=[KeywordTerm("x")])}
    assert svc.step(lambda uow: handlers.rules.add_standing_rules(uow, standing)) == ["k"]
    assert svc.step(lambda uow: handlers.rules.add_standing_rules(uow, standing)) == []
    assert svc.repos.rules.get("k").version_stamp.reason == "初始规则"


# -- signals and warnings ---------------------------------------------------------------

def test_a_signal_is_stored_once_and_raises_its_alerts(svc):
    svc.rule(display_name="取现", kind="EXTERNAL_SIGNAL", level="ORANGE", threshold=0.5,
             signal_types=["ABNORMAL_CASH_WITHDRAWAL"])
    signal = mapping.signal_from_pb(pb.Signal(
        source="bank:x", signal_type="ABNORMAL_CASH_WITHDRAWAL", external_id="e1", risk_score=0.9, station_id="S01",
        location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=114.3, latitude=30.5))))
    first = svc.step(lambda uow: handlers.detection.ingest_signal(uow, signal=signal))
    assert first.name.startswith("signals/g20261102-") and first.receive_time == T0 and len(first.alerts) == 1
    stored = pb.Signal.FromString(svc.repos.signals.bodies[first.id])
    assert stored.name == first.name and list(stored.alerts) == first.alerts, "stored as its message, naming its alerts"
    again = svc.step(lambda uow: handlers.detection.ingest_signal(uow, signal=signal), at=T0 + timedelta(minutes=1))
    assert again.name == first.name and again.alerts == first.alerts
    assert svc.events() == [("alerts.AlertFired", "FIRED")]


def test_a_scoring_warning_becomes_an_alert_of_the_station(svc):
    svc.rule(display_name="执法", kind="ENFORCEMENT", level="YELLOW")
    from_feed = handlers.detection.SCORING["scoring.WarningRaised"]
    payload = from_feed.payload_type()
    payload.warning.name, payload.warning.station_id, payload.warning.detail = "warnings/w1", "S02", "超时"
    svc.step(lambda uow: from_feed.handler(uow, None, payload))
    [alert] = svc.repos.alerts.rows.values()
    assert alert.area.station_id == "S02" and alert.subject == "warnings/w1" and alert.kind == "ENFORCEMENT"


# -- obligations --------------------------------------------------------------------------

def test_an_obligation_warns_then_alerts_overdue_and_its_alerts_resolve_when_done(svc):
    svc.rule(display_name="到期", kind="OBLIGATION", level="BLUE", threshold=3600)
    due = T0 + timedelta(days=14)
    o = svc.step(lambda uow: handlers.obligations.create_obligation(
        uow, kind="INSPECTION", subject="places/p1", station_id="S01", description="消防检查", due=due,
        period_s=14 * 86400))
    assert svc.sweep(due - timedelta(hours=2)) == {}
    assert svc.sweep(due - timedelta(minutes=30)) == {"obligations": 1}
    assert svc.sweep(due - timedelta(minutes=20)) == {}, "warned of once"
    assert svc.sweep(due + timedelta(minutes=1)) == {"obligations": 1}
    [alert] = svc.repos.alerts.rows.values()
    assert (alert.level, alert.count) == ("YELLOW", 2), "overdue: the same alert, one level up"
    assert alert.summary.startswith("已逾期：消防检查")
    svc.events()
    done = svc.step(lambda uow: handlers.obligations.complete_obligation(uow, obligation_id=o.id, comment="已检查"),
                    at=due + timedelta(hours=1), actor=CHIEF)
    assert done.state == "PENDING" and done.due_time == due + timedelta(hours=1, days=14)
    assert svc.events() == [("alerts.AlertUpdated", "RESOLVED")]
    assert svc.repos.alerts.rows[alert.id].resolved.actor == "chief-1"


def test_report_back_is_owed_after_an_assignment_and_closed_by_reporting_back(svc):
    a = domain.Assignment(name="cases/c1/assignments/a1", unit="units/U1", state="ACCEPTED", station_id="S01",
                          case_name="cases/c1", incident_type="FIGHT", accept_time=T0)
    svc.step(lambda uow: handlers.obligations.assignment_changed(uow, assignment=a))
    [o] = svc.repos.obligations.rows.values()
    assert o.kind == "REPORT_BACK" and o.due_time == T0 + timedelta(hours=2)
    a.state, a.clear_time = "CLEARED", T0 + timedelta(hours=1)
    svc.step(lambda uow: handlers.obligations.assignment_changed(uow, assignment=a))
    assert svc.repos.obligations.rows[o.id].due_time == T0 + timedelta(hours=3), "rescheduled from the clearing"
    a.state = "REPORTED_BACK"
    svc.step(lambda uow: handlers.obligations.assignment_changed(uow, assignment=a))
    assert svc.repos.obligations.rows[o.id].state == "DONE" and svc.repos.obligations.rows[o.id].completed.reason == "已回告"


def test_a_work_order_deadline_is_an_obligation_of_the_reporting_station(svc):
    svc.report("路灯坏了", at=T0, station="S07", category="NON_POLICE")
    order = domain.WorkOrder(name="workOrders/w1", status="ASSIGNED", description="路灯不亮",
                             deadline=T0 + timedelta(hours=24), report="reports/r0")
    svc.step(lambda uow: handlers.obligations.work_order_changed(uow, order=order))
    [o] = svc.repos.obligations.rows.values()
    assert o.station_id == "S07" and o.description == "12345工单办理时限：路灯不亮"
    order.status = "CLOSED"
    svc.step(lambda uow: handlers.obligations.work_order_changed(uow, order=order))
    assert svc.repos.obligations.rows[o.id].state == "DONE"
    with pytest.raises(FailedPrecondition):
        svc.step(lambda uow: handlers.obligations.close_obligation(uow, obligation_id=o.id, state="DONE", reason=""))


def test_the_event_handlers_are_those_the_feeds_carry():
    assert {source: sorted(subs) for source, subs in handlers.EVENT_HANDLERS.items()} == {
        "intake": ["intake.IncidentReported", "intake.ReportUpdated"],
        "dispatch": ["dispatch.AssignmentChanged", "dispatch.CaseUpdated"],
        "referral": ["referral.WorkOrderCreated", "referral.WorkOrderUpdated"],
        "scoring": ["scoring.WarningRaised"],
    }
    assert handlers.EVENT_HANDLERS["intake"]["intake.IncidentReported"].prepare is handlers.detection.prepare_report
