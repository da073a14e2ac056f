"""A day of the sample city (一天的警情): police reports from the labelled corpus, classified by
intake's classifier and routed by intake's jurisdiction index, arrive over 24 hours of a virtual
clock, busier in the evening; officers accept most offers, decline or miss some; callers withdraw a
few; district command takes over what nobody accepts. At the end of the day no case is open without
an owner: each is closed or cancelled, or an officer has it, or it stands escalated to a named level
of command with its offers stopped.

The offer sweeper is run by hand, every 30 s of the clock while a case waits for an officer, so
offer timeouts and escalation follow the clock and not the wall.
"""
from __future__ import annotations

import heapq
import json
import random
from collections import Counter
from datetime import datetime, timedelta, timezone

from sampledata import city
from services.dispatch import workers
from services.intake.classifier import artifacts
from services.intake.classifier.corpus import TRAIN, reports as corpus_reports
from services.intake.seed import sample_jurisdiction
from tests import support
from tests.integration.dispatch_harness import officer_of, pb
# The closing tests' dispatch (offers run out after 30 s, a case nobody takes goes up 120 s after its
# offers stop), a fresh one for this module.
from tests.integration.test_dispatch_closing import h, rid

__all__ = ["h"]  # the fixture

S = pb.AssignmentState
COMMANDER = support.caller(["commander"], sub="p-day-command", name="指挥中心值班长")
DISPATCHER = support.caller(["dispatcher"], sub="p-day-desk", name="值班调度员")
START = datetime(2026, 11, 24, 0, 0, tzinfo=timezone(timedelta(hours=8)))
# Reports per hour of the day (a weekday: quiet at night, busiest in the evening).
PER_HOUR = (3, 2, 2, 1, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 5, 5, 6, 6, 7, 8, 8, 7, 5, 4)
# Hours of the night the officers' phones are off the network (集群通信故障): offers reach nobody
# and command takes the cases over by radio.
OUTAGE = (1, 5)
TERMINAL = {pb.CASE_STATUS_CLOSED, pb.CASE_STATUS_CANCELLED}
WORKING = {S.ASSIGNMENT_STATE_ACCEPTED, S.ASSIGNMENT_STATE_EN_ROUTE, S.ASSIGNMENT_STATE_ON_SCENE,
           S.ASSIGNMENT_STATE_CLEARED}


def police_reports(rng: random.Random) -> list[tuple[str, str, int]]:
    """(text, type, priority) of the corpus's train-split texts the classifier puts on the police path."""
    clf = artifacts.default()
    out = []
    for row in corpus_reports(TRAIN):
        d = clf.classify(row["text"], row.get("channel", ""))
        if d.category == "POLICE" and d.incident_type != "OTHER":
            out.append((row["text"], d.incident_type, d.priority))
    rng.shuffle(out)
    return out


def places(rng: random.Random, n: int) -> list:
    """`n` points spread over the city's stations, each located as intake locates a report."""
    index = sample_jurisdiction()
    grids = list(city.grids())
    out = []
    while len(out) < n:
        g = rng.choice(grids)
        minx, miny, maxx, maxy = g.polygon.bounds
        lon, lat = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
        located = index.locate(lon, lat)
        if located is not None and located.grid_id:
            out.append((lon, lat, located))
    return out


class Day:
    """The day's events in clock order; each officer, caller and command decision is a seeded draw."""

    def __init__(self, h, rng: random.Random):
        self.h, self.rng = h, rng
        self.queue: list[tuple[datetime, int, str, tuple]] = []
        self.seq = 0
        self.cases: dict[str, pb.DispatchCase] = {}
        self.seen_offers: set[str] = set()
        self.taken_over: set[str] = set()
        self.asked: set[str] = set()
        self.counts: Counter = Counter()
        self.settled: set[str] = set()  # escalated, command tried and found no unit: command owns it
        self._officers: dict[str, tuple] = {}

    def officer(self, unit_name: str) -> tuple:
        if unit_name not in self._officers:
            self._officers[unit_name] = officer_of(self.h.stub.GetUnit(pb.GetUnitRequest(name=unit_name)))
        return self._officers[unit_name]

    def at(self, when: datetime, what: str, *args) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (when, self.seq, what, args))

    def now(self) -> datetime:
        return self.h.clock()

    # -- what happens ------------------------------------------------------------------------
    def report(self, text: str, itype: str, priority: int, place) -> None:
        lon, lat, located = place
        case = self.h.open_case(incident_type=itype, description=text, priority=priority, station=located.station_id,
                                grid=located.grid_id, lon=lon, lat=lat, caller_phone=f"139{self.seq:08d}")
        self.cases[case.name] = case
        self.counts["reports"] += 1
        if self.rng.random() < 0.04:  # the caller rings back: it was a misunderstanding
            self.at(self.now() + timedelta(minutes=self.rng.uniform(2, 8)), "withdraw", case.name)
        self.look(case.name)

    def look(self, name: str) -> None:
        """Each new offer of the case reaches its officer, who accepts, declines or does not answer."""
        case = self.cases[name] = self.h.case(name)
        for a in case.assignments:
            if a.state != S.ASSIGNMENT_STATE_OFFERED or a.name in self.seen_offers:
                continue
            self.seen_offers.add(a.name)
            draw = self.rng.random()
            if name not in self.taken_over and OUTAGE[0] <= self.now().hour < OUTAGE[1]:
                draw = 1.0  # the phones' network is down: the offer reaches nobody
            if draw < 0.7 or name in self.taken_over:
                self.at(self.now() + timedelta(seconds=self.rng.uniform(5, 25)), "accept", name, a.name, a.unit)
            elif draw < 0.8:
                self.at(self.now() + timedelta(seconds=self.rng.uniform(5, 20)), "decline", name, a.name, a.unit)
            else:
                self.counts["offers_missed"] += 1

    def accept(self, name: str, assignment: str, unit_name: str) -> None:
        officer = self.officer(unit_name)
        current = self.h.stub.GetAssignment(pb.GetAssignmentRequest(name=assignment))
        if current.state != S.ASSIGNMENT_STATE_OFFERED:  # it ran out, or the case ended, before the answer
            self.counts["answers_too_late"] += 1
            return
        self.h.stub.AcceptAssignment(pb.AcceptAssignmentRequest(request_id=rid(), name=assignment), metadata=officer)
        self.counts["accepted"] += 1
        t = self.now()
        for state, minutes in (("EN_ROUTE", 0.5), ("ON_SCENE", self.rng.uniform(4, 15)),
                               ("CLEARED", self.rng.uniform(15, 60))):
            t += timedelta(minutes=minutes)
            self.at(t, "advance", name, assignment, unit_name, state)
        self.at(t + timedelta(minutes=self.rng.uniform(2, 15)), "report_back", name, assignment, unit_name)

    def decline(self, name: str, assignment: str, unit_name: str) -> None:
        officer = self.officer(unit_name)
        if self.h.stub.GetAssignment(pb.GetAssignmentRequest(name=assignment)).state != S.ASSIGNMENT_STATE_OFFERED:
            return
        self.h.stub.DeclineAssignment(pb.DeclineAssignmentRequest(request_id=rid(), name=assignment,
                                                                  reason="正在处置另一起警情"), metadata=officer)
        self.counts["declined"] += 1
        self.look(name)

    def advance(self, name: str, assignment: str, unit_name: str, state: str) -> None:
        if self._ended(name, assignment):
            return
        officer = self.officer(unit_name)
        self.h.stub.AdvanceAssignment(pb.AdvanceAssignmentRequest(
            request_id=rid(), name=assignment, state=S.Value(f"ASSIGNMENT_STATE_{state}")), metadata=officer)

    def report_back(self, name: str, assignment: str, unit_name: str) -> None:
        if self._ended(name, assignment):
            return
        officer = self.officer(unit_name)
        self.h.stub.ReportBack(pb.ReportBackRequest(request_id=rid(), name=assignment, outcome=pb.OUTCOME_MEDIATED,
                                                    notes="现场已处置完毕"), metadata=officer)
        self.counts["reported_back"] += 1
        case = self.cases[name] = self.h.case(name)
        if case.status == pb.CASE_STATUS_REPORTED_BACK:  # the desk checks the report-back and closes the case
            self.at(self.now() + timedelta(minutes=self.rng.uniform(1, 10)), "close", name)

    def close(self, name: str) -> None:
        if self.h.case(name).status in TERMINAL:
            return
        self.cases[name] = self.h.stub.CloseCase(pb.CloseCaseRequest(
            request_id=rid(), name=name, outcome=pb.OUTCOME_MEDIATED, notes="经回告核实，已办结"), metadata=DISPATCHER)

    def withdraw(self, name: str) -> None:
        if self.h.case(name).status in TERMINAL:
            return
        self.cases[name] = self.h.stub.CancelCase(pb.CancelCaseRequest(
            request_id=rid(), name=name, reason=pb.CANCEL_REASON_CALLER_WITHDREW, notes="报警人来电说明是误会"),
            metadata=DISPATCHER)
        self.counts["withdrawn"] += 1

    def take_over(self, name: str) -> None:
        """The duty dispatcher (or command, once escalated) offers the case to an available unit of its station."""
        case = self.cases[name] = self.h.case(name)
        if case.status in TERMINAL or self._has_officer(case):
            return
        busy = {a.unit for a in case.assignments}
        free = [u for u in self.h.units_of(case.station_id)
                if u.status == pb.UNIT_STATUS_AVAILABLE and u.on_duty and u.name not in busy and u.officers]
        if not free:
            self.counts["take_over_without_unit"] += 1
            self.settled.add(name)
            return
        self.taken_over.add(name)
        self.h.stub.OfferCase(pb.OfferCaseRequest(name=name, unit=free[0].name, role=pb.ASSIGNMENT_ROLE_PRIMARY,
                                                  reason="无人接单，指挥中心指派", request_id=rid()), metadata=COMMANDER)
        self.counts["taken_over"] += 1
        self.look(name)

    def sweep(self) -> None:
        if workers.sweep_offers(self.h.rt):
            for name in self.waiting():
                self.look(name)
                case = self.cases[name]
                # Offers stopped (the duty dispatcher is asked, and warned by an alert) or the case went
                # up to command: a person picks a unit within minutes. In the outage the duty desk is
                # cut off too, and only command, once the case reaches it, can.
                outage = OUTAGE[0] <= self.now().hour < OUTAGE[1]
                escalated = any(e.action == "ESCALATED" for e in case.timeline)
                if ((case.HasField("offers_exhausted_time") and not outage) or escalated) and \
                        name not in self.taken_over and name not in self.asked:
                    self.asked.add(name)
                    self.at(self.now() + timedelta(minutes=self.rng.uniform(1, 5)), "take_over", name)

    # -- reading -------------------------------------------------------------------------------
    @staticmethod
    def _has_officer(case: pb.DispatchCase) -> bool:
        return any(a.state in WORKING for a in case.assignments)

    def _ended(self, name: str, assignment: str) -> bool:
        case = self.h.case(name)
        mine = next(a for a in case.assignments if a.name == assignment)
        return case.status in TERMINAL or mine.state not in WORKING

    def waiting(self) -> list[str]:
        """Open cases no officer has yet."""
        return [n for n, c in self.cases.items()
                if c.status not in TERMINAL and not self._has_officer(c) and n not in self.settled]

    def run(self, until: datetime) -> None:
        tick = self.now()
        while self.queue or self.now() < until:
            due = self.queue[0][0] if self.queue else until
            if self.waiting() and tick + timedelta(seconds=30) <= due:
                tick += timedelta(seconds=30)
                self.h.clock.set(tick)
                self.sweep()
                continue
            if not self.queue:
                break
            when, _, what, args = heapq.heappop(self.queue)
            self.h.clock.set(max(when, self.now()))
            tick = max(tick, self.now())
            getattr(self, what)(*args)


def accepted_before(case: pb.DispatchCase, action: str) -> bool:
    """Whether an officer accepted the case before the first timeline entry of `action`."""
    for entry in case.timeline:
        if entry.action == action:
            return False
        if entry.action == "ACCEPTED":
            return True
    return False


def accepted_an_offer_still_out(case: pb.DispatchCase, timeout_s: float) -> bool:
    """Whether an officer accepted, after the offers stopped, an offer made before they stopped (one
    still out: an automatic offer lives `timeout_s`, the service's offer timeout, and none is made
    once offers stop)."""
    stopped = None
    for entry in case.timeline:
        when = entry.stamp.time.ToDatetime(timezone.utc)
        if entry.action == "OFFERS_EXHAUSTED" and stopped is None:
            stopped = when
        elif entry.action == "ACCEPTED" and stopped is not None:
            return (when - stopped).total_seconds() <= timeout_s
    return False


def owner_of(case: pb.DispatchCase) -> str:
    """Who has the case: '' when nobody does."""
    if case.status in TERMINAL:
        return "ended"
    if Day._has_officer(case):
        return "officer"
    if case.status == pb.CASE_STATUS_REPORTED_BACK:
        return "desk"  # reported back, waiting for the desk to close it
    if case.level > pb.CASE_LEVEL_STATION and any(e.action == "ESCALATED" for e in case.timeline):
        return "command"
    return ""


def test_a_day_of_reports_ends_with_no_case_left_without_an_owner(h):
    rng = random.Random(20261124)
    texts = police_reports(rng)
    n = sum(PER_HOUR)
    assert len(texts) >= n, "the corpus has a day's worth of police reports"
    spots = places(rng, n)
    h.clock.set(START)
    day = Day(h, rng)
    k = 0
    for hour, count in enumerate(PER_HOUR):
        for _ in range(count):
            text, itype, priority = texts[k]
            day.at(START + timedelta(hours=hour, seconds=rng.uniform(0, 3600)), "report", text, itype, priority,
                   spots[k])
            k += 1
    day.run(START + timedelta(hours=24))

    cases = {name: h.case(name) for name in day.cases}
    owners = Counter(owner_of(c) for c in cases.values())
    print(json.dumps({"counts": dict(day.counts), "owners": dict(owners),
                      "statuses": dict(Counter(pb.CaseStatus.Name(c.status) for c in cases.values()))},
                     ensure_ascii=False))
    assert day.counts["reports"] == n and len(cases) == n
    nobody = [(name, pb.CaseStatus.Name(c.status), pb.CaseLevel.Name(c.level), [e.action for e in c.timeline])
              for name, c in cases.items() if not owner_of(c)]
    assert not nobody, nobody
    # Missed offers happened and were caught: a case whose offers stopped before any officer took it
    # was given a unit by the duty dispatcher, or went up to command when nobody had yet, or was taken
    # by an officer answering an offer still out when they stopped.
    assert day.counts["offers_missed"] > 0 and day.counts["declined"] > 0
    unowned_when_stopped = [c for c in cases.values() if c.HasField("offers_exhausted_time") and not accepted_before(
        c, "OFFERS_EXHAUSTED")]
    assert unowned_when_stopped, "the night's outage left cases nobody took"
    timeout_s = h.served.rt.context.settings.offer_timeout_s
    caught = [c for c in unowned_when_stopped if not accepted_an_offer_still_out(c, timeout_s)]
    assert all(c.level > pb.CASE_LEVEL_STATION or c.name in day.taken_over for c in caught), [
        c.name for c in caught if c.level == pb.CASE_LEVEL_STATION and c.name not in day.taken_over]
    assert any(any(e.action == "ESCALATED" for e in c.timeline) for c in unowned_when_stopped), \
        "the outage's cases went up to command"
    # A day's work is mostly done by its end: only the last hour's cases may still be under way.
    late = START + timedelta(hours=23)
    unfinished = [c for c in cases.values() if c.status not in TERMINAL and c.create_time.ToDatetime(
        timezone.utc) < late]
    assert not unfinished, [(c.name, pb.CaseStatus.Name(c.status)) for c in unfinished]
    # Automatic offers stayed in each case's district; only command's own offers may cross.
    from services.runtime.policy import org
    for c in cases.values():
        district = org().stations_of(org().district_of[c.station_id])
        assert {a.station_id for a in c.assignments} <= district, c.name
