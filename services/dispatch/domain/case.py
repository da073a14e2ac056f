"""The dispatch case (警情) and everything it owns: its assignments (派单 to report-back 回告),
its level (who follows it), its stop-payment hand-offs and its citizen follow-up (回访).

`DispatchCase` is the aggregate: every change of a case or of one of its assignments goes
through it, keeps who and when in its timeline and records the events that announce it
(`CaseCreated`, `AssignmentChanged`, `CaseUpdated`, `FollowUpFlagged`); the unit of work
publishes them at commit. Events carry snapshots: the case as it stood when the event was
recorded (and, for `CaseUpdated`, as it stood before the change).

The assignment lifecycle: offered -> accepted -> en route -> on scene -> cleared -> reported
back; an offer may instead be declined, expire, or be cancelled when the case closes first.
A case's status follows its assignments. A unit's status follows its assignment
(`unit_moves`), the repository of units writes it.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.runtime.ids import new_id
from services.runtime.model import Aggregate, Box, DomainEvent, TimelineEntry

from .evidence import GATHERING
from .recommend import Need, Recommendation
from .stop_payment import FRAUD_TYPE, StopPayment
from .unit import KIND_LABELS, Unit, entry, may_act_for, officer_ids

# Dispatch acting on its own account (a consumed report, the offer sweeper).
SYSTEM = AuthContext(subject="dispatch", roles=frozenset({"service"}))

# -- assignments ---------------------------------------------------------------------------

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "OFFERED": ("ACCEPTED", "DECLINED", "EXPIRED", "CANCELLED"),
    "ACCEPTED": ("EN_ROUTE", "WITHDRAWN"),
    "EN_ROUTE": ("ON_SCENE", "WITHDRAWN"),
    "ON_SCENE": ("CLEARED", "WITHDRAWN"),
    "CLEARED": ("REPORTED_BACK", "WITHDRAWN"),
}
ADVANCE_TARGETS = ("EN_ROUTE", "ON_SCENE", "CLEARED")
ENDED_OFFER = ("DECLINED", "EXPIRED", "CANCELLED")
# A unit taken off a case the command closed or cancelled before it reported back (收队).
WITHDRAWN = "WITHDRAWN"
# Where a unit is while it holds an assignment in a state; None: unchanged.
UNIT_STATUS_FOR = {
    "OFFERED": "OFFERED", "ACCEPTED": "BUSY", "EN_ROUTE": "EN_ROUTE", "ON_SCENE": "ON_SCENE",
    "CLEARED": "AVAILABLE", "DECLINED": "AVAILABLE", "EXPIRED": "AVAILABLE", "CANCELLED": "AVAILABLE",
    "WITHDRAWN": "AVAILABLE",
    "REPORTED_BACK": None,
}
STATE_LABELS = {
    "OFFERED": "派单", "ACCEPTED": "接单", "DECLINED": "拒单", "EXPIRED": "超时未接单", "CANCELLED": "撤销派单",
    "EN_ROUTE": "出警途中", "ON_SCENE": "到达现场", "CLEARED": "处置完毕", "REPORTED_BACK": "回告",
    "WITHDRAWN": "收队",
}
OUTCOME_LABELS = {
    "CRIMINAL_CASE": "刑事立案", "ADMINISTRATIVE_CASE": "行政案件", "MEDIATED": "调解处理",
    "NO_ISSUE_FOUND": "现场无警情", "REFERRED": "移交处理", "ASSISTANCE_GIVEN": "求助已处置",
}
ROLE_LABELS = {"PRIMARY": "主办", "SUPPORT": "协办", "SPECIALIST": "专业支援", "REINFORCEMENT": "增援",
               "LEGAL_GUIDANCE": "法制指导"}
SPECIALIST_KINDS = {"CRIMINAL_INVESTIGATION", "PUBLIC_SECURITY", "ECONOMIC_CRIME", "NARCOTICS", "TRAFFIC",
                    "SPECIAL_POLICE", "DRONE", "ANTI_FRAUD"}
CASE_STATUS_LABELS = {
    "PENDING": "待接单", "DISPATCHED": "已派警", "ON_SCENE": "已到场", "CLEARED": "现场处置完毕",
    "REPORTED_BACK": "部分回告", "CLOSED": "全部回告，警情办结", "CANCELLED": "警情撤销",
}
# A case in one of these is over: nothing more is offered, changed or escalated.
FINAL_STATUSES = ("CLOSED", "CANCELLED")
# Why a case is cancelled rather than closed (撤销警情).
CANCEL_REASONS = {"DUPLICATE": "重复报警", "FALSE_ALARM": "误报或虚假警情", "CALLER_WITHDREW": "报警人撤警",
                  "HANDLED_BY_PHONE": "电话处置完毕"}
# What the responding officers are told about a silent alarm (无声报警): the caller cannot speak and
# may be overheard, so nobody calls back by voice and the police arrive without sirens.
SILENT_INSTRUCTION = "无声报警：勿回拨报警人，静默接近"
# A case is on the map until the citizen has been told the outcome (回告).
ACTIVE_STATUSES = ("PENDING", "DISPATCHED", "ON_SCENE", "CLEARED")
# Community matters (求助, disputes to mediate, noise) that are not urgent go straight to the grid's
# community officer (网格责任民警直接派单); emergencies keep the nearest suitable units.
COMMUNITY_TYPES = frozenset({"DISPUTE", "NOISE", "OTHER"})
COMMUNITY_MIN_PRIORITY = 3


def source_label(name: str) -> str:
    """What a case was opened from, in words: a 110 report, a 12345 work order handled by the police
    first, or an officer's panic button."""
    if name.startswith("workOrders/"):
        return "12345工单（先期处置）"
    if name.startswith("units/"):
        return "民警紧急求助"
    return "接警单"


def community_matter(incident_type: str, priority: int) -> bool:
    return incident_type in COMMUNITY_TYPES and priority >= COMMUNITY_MIN_PRIORITY


# Cases that can still be waiting for a first unit on scene.
WAITING_STATUSES = ("PENDING", "DISPATCHED")


def seconds_between(start: datetime | None, end: datetime | None) -> int:
    if start is None or end is None:
        return 0
    return max(0, int(round((end - start).total_seconds())))


def can_move(state: str, target: str) -> bool:
    return target in TRANSITIONS.get(state, ())


@dataclass
class Assignment:
    """One unit's part in a case, from the offer to the report-back (回告)."""

    id: str
    case_id: str
    unit_id: str
    call_sign: str
    kind: str
    station_id: str  # the unit's station
    officers: list[dict]
    role: str
    capability: str
    state: str
    version: int
    reason: str
    arrival_target_s: int
    offer_time: datetime
    offer_expire_time: datetime | None
    update_time: datetime
    accept_time: datetime | None = None
    en_route_time: datetime | None = None
    arrive_time: datetime | None = None
    clear_time: datetime | None = None
    report_back_time: datetime | None = None
    decline_reason: str = ""
    outcome: str = ""
    notes: str = ""
    evidence: list[dict] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"cases/{self.case_id}/assignments/{self.id}"

    @property
    def unit(self) -> str:
        return f"units/{self.unit_id}"

    @property
    def live(self) -> bool:
        """Not an offer that ended (declined, expired, cancelled), nor a unit withdrawn."""
        return self.state not in ENDED_OFFER and self.state != WITHDRAWN

    def snapshot(self) -> "Assignment":
        return replace(self, officers=[dict(o) for o in self.officers], evidence=[dict(e) for e in self.evidence])

    def require_move(self, target: str) -> None:
        if not can_move(self.state, target):
            raise FailedPrecondition(
                f"{self.name} is {self.state}; it cannot become {target}", reason="ILLEGAL_TRANSITION",
                metadata={"state": self.state, "target": target})


def authorize(actor: AuthContext, a: Assignment, unit_officers: list[dict]) -> None:
    """The unit's own officer (role officer, matching police number and station) or a dispatcher."""
    if may_act_for(actor, officer_ids(a.officers) | officer_ids(unit_officers), a.station_id):
        return
    raise PermissionDenied(f"only an officer of {a.unit} or a dispatcher may act on {a.name}",
                           reason="NOT_ASSIGNED_OFFICER", metadata={"unit": a.unit})


def case_status(current: str, assignments: list[Assignment]) -> str:
    """A case's status follows its assignments.

    Pending until a unit accepts; dispatched, then on scene as the furthest
    unit gets there; cleared once every unit that took the case has left the
    scene; reported back once some have reported back and the rest cleared;
    closed when all have reported back.
    """
    if current in FINAL_STATUSES:
        return current
    taken = [a for a in assignments if a.state not in ("OFFERED", WITHDRAWN) + ENDED_OFFER]
    if not taken:
        return "PENDING"
    states = {a.state for a in taken}
    if states == {"REPORTED_BACK"}:
        return "CLOSED"
    if "ON_SCENE" in states:
        return "ON_SCENE"
    if states & {"ACCEPTED", "EN_ROUTE"}:
        return "DISPATCHED"
    if "REPORTED_BACK" in states:
        return "REPORTED_BACK"
    return "CLEARED"


# -- levels: who follows a case (同步同息感知) -----------------------------------------------

LEVELS = ("STATION", "COUNTY", "CITY", "PROVINCE")
LEVEL_LABELS = {"STATION": "派出所级", "COUNTY": "分局（县）级", "CITY": "市级", "PROVINCE": "省级"}
# The level a case opens at: the higher of its type's and its priority's.
INITIAL_LEVEL_BY_TYPE = {
    "HOMICIDE": "CITY",
    "KIDNAPPING": "CITY",
    # An officer pressed the panic button (民警紧急求助): the city centre follows it at once.
    "OFFICER_EMERGENCY": "CITY",
    "EXPLOSION": "CITY",
    "HOSTAGE": "CITY",
    "TERRORISM": "PROVINCE",
    "ROBBERY": "COUNTY",
    "FIRE": "COUNTY",
    "GAS_LEAK": "COUNTY",
    "DROWNING_RISK": "COUNTY",
}
INITIAL_LEVEL_BY_PRIORITY = {1: "COUNTY"}
ESCALATE_ROLES = ("commander", "dispatcher", "station_chief")
# A station cannot take a case off a higher centre's screen.
DEESCALATE_ROLES = ("commander", "dispatcher")


def rank(level: str) -> int:
    return LEVELS.index(level)


def initial_level(incident_type: str, priority: int) -> str:
    by_type = INITIAL_LEVEL_BY_TYPE.get(incident_type, "STATION")
    by_priority = INITIAL_LEVEL_BY_PRIORITY.get(priority, "STATION")
    return max(by_type, by_priority, key=rank)


def levels_from(min_level: str) -> list[str]:
    """The levels a centre of `min_level` sees: its own and above."""
    return list(LEVELS[rank(min_level):]) if min_level else list(LEVELS)




def in_area(station_id: str, point: tuple[float, float] | None, station_ids: frozenset[str] | None,
            box: Box | None) -> bool:
    """A case of `station_id` at `point` is among the stations (None: any) and inside the box a centre watches."""
    if station_ids is not None and station_id not in station_ids:
        return False
    if box is not None:
        return point is not None and box.contains(*point)
    return True


def view_of(level, previous_level, levels: set) -> bool | None:
    """True: the case is in view; False: this change took it out of view; None: never was, skip."""
    if level in levels:
        return True
    if previous_level in levels:
        return False
    return None


# -- follow-up (回访) ------------------------------------------------------------------------

RATE_ROLES = ("call_taker", "dispatcher", "supervisor", "hotline_agent", "service")
# Some unit has reported back (回告): the citizen can be asked.
RATEABLE_STATUSES = ("REPORTED_BACK", "CLOSED")
# The units rated with a case: those that saw it through to the end.
RATED_ASSIGNMENT_STATES = ("CLEARED", "REPORTED_BACK")
SATISFACTION_LABELS = {"SATISFIED": "满意", "BASICALLY_SATISFIED": "基本满意", "UNSATISFIED": "不满意"}
MAX_COMMENT = 1000


@dataclass(frozen=True)
class RatedOfficer:
    officer_id: str
    name: str
    station_id: str
    unit_id: str


@dataclass(frozen=True)
class FollowUp:
    """The citizen's answer after report-back; an unsatisfied one is flagged to the station chief."""

    satisfaction: str
    comment: str
    actor: str
    roles: list[str]
    rate_time: datetime
    flagged: bool
    # The officers of the units that saw the case through, by police number.
    officers: list[RatedOfficer] = field(default_factory=list)
    # The station chief's review of an unsatisfied follow-up (回访不满意复核): OPEN until decided,
    # then REOPENED (the case is handled again) or ANSWERED (a written answer to the citizen).
    review_state: str = ""
    reviewed_by: str = ""
    review_time: datetime | None = None
    review_answer: str = ""


# -- what a case is opened from ------------------------------------------------------------

@dataclass(frozen=True)
class ReportFacts:
    """What dispatch reads of an intake report."""

    name: str
    police: bool
    merged_into: str
    station_id: str
    grid_id: str
    incident_type: str
    priority: int
    lon: float | None
    lat: float | None
    address_text: str
    description: str
    receive_time: datetime | None
    # A silent alarm (无声报警): no voice call-back, approach quietly.
    silent: bool = False
    # A border case's neighbouring stations (边界警情), which see the case as their own.
    shared_station_ids: tuple[str, ...] = ()
    # The report's channel (PHONE, SMS, ... HOTLINE_12345; "" unknown), for the SLA figures.
    channel: str = ""

    @property
    def needs_case(self) -> bool:
        """A police matter that is not a duplicate merged into another report."""
        return self.police and not self.merged_into


# -- events -------------------------------------------------------------------------------

@dataclass(frozen=True)
class CaseCreated(DomainEvent):
    case: "DispatchCase"
    entries: tuple[TimelineEntry, ...]
    stop_payment: StopPayment | None = None


@dataclass(frozen=True)
class CaseUpdated(DomainEvent):
    case: "DispatchCase"
    before: "DispatchCase"
    action: str
    new_entries: tuple[TimelineEntry, ...]
    stop_payment: StopPayment | None = None
    previous_level: str = ""


@dataclass(frozen=True)
class AssignmentChanged(DomainEvent):
    case: "DispatchCase"
    assignment: Assignment
    previous_state: str
    actor: AuthContext
    time: datetime
    reason: str = ""


@dataclass(frozen=True)
class FollowUpFlagged(DomainEvent):
    case: "DispatchCase"
    follow_up: FollowUp


@dataclass(frozen=True)
class UnitMove:
    """A unit's status follows the assignment it holds."""

    unit_id: str
    status: str


# -- the case ---------------------------------------------------------------------------------

@dataclass
class DispatchCase(Aggregate):
    id: str
    report: str
    station_id: str
    grid_id: str
    incident_type: str
    priority: int
    level: str
    status: str
    lon: float | None
    lat: float | None
    address_text: str
    summary: str
    recommendations: list[Recommendation]
    report_time: datetime
    create_time: datetime
    update_time: datetime
    # The timeline as loaded (possibly not at all), then what the case appended.
    timeline: list[TimelineEntry] = field(default_factory=list)
    arrival_target_s: int = 0
    accept_time: datetime | None = None
    arrive_time: datetime | None = None
    close_time: datetime | None = None
    assignments: list[Assignment] = field(default_factory=list)
    # The hand-offs, oldest first, when loaded (and those the case queued).
    stop_payments: list[StopPayment] = field(default_factory=list)
    follow_up: FollowUp | None = None
    # From a silent alarm (无声报警): officers must not call the caller back by voice and approach quietly.
    silent: bool = False
    # A border case's neighbouring stations (边界警情): they see the case as their own.
    shared_station_ids: list[str] = field(default_factory=list)
    # How the command closed it (an OUTCOME_LABELS code) or why it cancelled it (CANCEL_REASONS), with notes.
    outcome: str = ""
    cancel_reason: str = ""
    close_notes: str = ""
    # When automatic offers stopped because nobody took the case (OFFERS_EXHAUSTED).
    offers_exhausted_time: datetime | None = None
    # When a review reopened the case (重新处置): its status follows the assignments made since.
    reopen_time: datetime | None = None
    # The report's channel ("" unknown), which the SLA figures are split by.
    channel: str = ""

    @property
    def name(self) -> str:
        return f"cases/{self.id}"

    @property
    def ended(self) -> bool:
        """Closed or cancelled: nothing more is offered, changed or escalated."""
        return self.status in FINAL_STATUSES

    def _require_open(self) -> None:
        if self.ended:
            raise FailedPrecondition(f"{self.name} is {self.status.lower()}", reason="CASE_CLOSED",
                                     metadata={"status": self.status})

    @property
    def instructions(self) -> str:
        """What the responding officers must heed, in their words; empty when nothing special."""
        return SILENT_INSTRUCTION if self.silent else ""

    @property
    def accept_seconds(self) -> int:
        return seconds_between(self.report_time, self.accept_time)

    @property
    def arrival_seconds(self) -> int:
        """Seconds from the report to the first unit on scene; 0 before arrival (1-3-5 minute circle)."""
        if self.arrive_time is None:
            return 0
        return max(0, round((self.arrive_time - self.report_time).total_seconds()))

    @property
    def arrival_target_met(self) -> bool:
        return self.arrive_time is not None and bool(self.arrival_target_s) \
            and self.arrival_seconds <= self.arrival_target_s

    def snapshot(self) -> "DispatchCase":
        """The case as events carry it: its fields now, without the lists that grow with its history."""
        return replace(self, recommendations=list(self.recommendations), timeline=[], assignments=[],
                       stop_payments=[])

    # -- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, report: ReportFacts, *, level: str, arrival_target_s: int, picks: list[Recommendation],
             gaps: list[Need], now: datetime) -> "DispatchCase":
        """A police report becomes a pending case for its station, with the units recommended for it;
        a telecom-fraud case is handed off for emergency stop-payment at once."""
        case = cls(
            id=new_id(now), report=report.name, station_id=report.station_id, grid_id=report.grid_id,
            incident_type=report.incident_type, priority=report.priority, level=level, status="PENDING",
            lon=report.lon, lat=report.lat, address_text=report.address_text, summary=report.description[:200],
            recommendations=list(picks), report_time=report.receive_time or now, create_time=now, update_time=now,
            arrival_target_s=arrival_target_s, silent=report.silent, channel=report.channel,
            shared_station_ids=sorted(set(report.shared_station_ids) - {report.station_id}))
        detail = "；".join(f"{p.call_sign}：{p.reason}" for p in picks) or "暂无可用警力，待指挥员调派"
        if gaps:
            detail += "；暂无空闲的" + "、".join(g.label for g in gaps)
        case.timeline = [entry(SYSTEM, now, "OPENED", f"由{source_label(report.name)} {report.name} 生成"),
                         entry(SYSTEM, now, "RECOMMENDED", detail)]
        if case.silent:
            case.timeline.append(entry(SYSTEM, now, "SILENT_ALARM", SILENT_INSTRUCTION))
        if case.shared_station_ids:
            case.timeline.append(entry(SYSTEM, now, "SHARED", "边界警情，同步相邻派出所 "
                                       + "、".join(case.shared_station_ids)))
        hand_off = None
        if case.incident_type == FRAUD_TYPE:
            hand_off = StopPayment.from_victims_words(case_id=case.id, text=report.description, now=now)
            case.stop_payments.append(hand_off)
            case.timeline.append(hand_off.queued_entry())
        if report.receive_time is not None:
            case._measure("dispatch", (case.create_time - case.report_time).total_seconds())
        case.record(CaseCreated(case.snapshot(), tuple(case.timeline),
                                hand_off.snapshot() if hand_off is not None else None))
        return case

    # -- offers -------------------------------------------------------------------------

    def offer(self, unit: Unit, *, role: str, capability: str, reason: str, actor: AuthContext, at: datetime,
              expire_at: datetime) -> Assignment:
        """Offers the case to a unit (claimed for it already) straight to its officers' phones."""
        a = Assignment(
            id=uuid.uuid4().hex[:12], case_id=self.id, unit_id=unit.unit_id, call_sign=unit.call_sign,
            kind=unit.kind, station_id=unit.station_id, officers=list(unit.officers), role=role,
            capability=capability, state="OFFERED", version=0, reason=reason, arrival_target_s=self.arrival_target_s,
            offer_time=at, offer_expire_time=expire_at, update_time=at)
        where = f"（跨所协作，{unit.station_id}）" if unit.station_id != self.station_id else ""
        detail = (f"派单给{unit.call_sign}（{KIND_LABELS.get(unit.kind, unit.kind)}，{ROLE_LABELS.get(role, role)}）"
                  f"{where}：{reason}")
        self._changed(a, previous="", actor=actor, at=at, detail=detail)
        return a

    def offer_by_hand(self, unit: Unit, *, role: str, reason: str, capability: str, actor: AuthContext,
                      at: datetime, expire_at: datetime) -> Assignment:
        """A dispatcher offers the case to a chosen unit (cross-station help, a legal officer)."""
        self._require_open()
        if any(a.unit_id == unit.unit_id and a.live for a in self.assignments):
            raise FailedPrecondition(f"{unit.name} already has {self.name}", reason="ALREADY_ON_CASE")
        if not unit.on_duty:
            raise FailedPrecondition(f"{unit.name} is not on duty", reason="UNIT_OFF_DUTY")
        if unit.status != "AVAILABLE":
            raise FailedPrecondition(f"{unit.name} is {unit.status}, not available", reason="UNIT_NOT_AVAILABLE",
                                     metadata={"status": unit.status})
        if role == "LEGAL_GUIDANCE" and unit.kind != "LEGAL_OFFICER":
            raise FailedPrecondition("legal guidance needs a legal officer (法制员) unit",
                                     reason="ROLE_NEEDS_LEGAL_OFFICER")
        return self.offer(unit, role=role or self._default_role(unit), capability=capability,
                          reason=reason or "指挥员指定派单", actor=actor, at=at, expire_at=expire_at)

    def _default_role(self, unit: Unit) -> str:
        if unit.kind == "LEGAL_OFFICER":
            return "LEGAL_GUIDANCE"
        if unit.kind in SPECIALIST_KINDS:
            return "SPECIALIST"
        return "REINFORCEMENT" if any(a.role == "PRIMARY" for a in self.assignments if a.live) else "PRIMARY"

    def units_tried(self) -> set[str]:
        """The units that had the case (offered, on it, or declined it)."""
        return {a.unit_id for a in self.assignments}

    def no_unit_for(self, need: Need, at: datetime) -> None:
        """Nobody could be offered the case for a need: the dispatcher is asked to step in."""
        self._append([entry(SYSTEM, at, "NO_UNIT", f"暂无可接单的{need.label}，请指挥员调派")])

    def needs_replacement(self, ended: Assignment) -> bool:
        """An ended offer's capability is still needed: the case is open and no other live
        assignment covers it."""
        return not self.ended and bool(ended.capability) and not any(
            x.id != ended.id and x.capability == ended.capability and x.live for x in self.assignments)

    # -- the assignment lifecycle ------------------------------------------------------------

    @property
    def stations(self) -> tuple[str, ...]:
        """The stations whose police see this case: its own, the neighbours of a border case (边界警情)
        and those of every unit assigned to it (跨所协作)."""
        others = ({a.station_id for a in self.assignments} | set(self.shared_station_ids)) - {self.station_id}
        return (self.station_id, *sorted(others))

    def assignment(self, assignment_id: str) -> Assignment:
        a = next((x for x in self.assignments if x.id == assignment_id), None)
        if a is None:
            raise NotFound(f"cases/{self.id}/assignments/{assignment_id}")
        return a

    def accept(self, assignment_id: str, *, actor: AuthContext, unit_officers: list[dict], at: datetime
               ) -> Assignment:
        a = self.assignment(assignment_id)
        authorize(actor, a, unit_officers)
        a.require_move("ACCEPTED")
        if a.offer_expire_time is not None and at >= a.offer_expire_time:
            raise FailedPrecondition(f"the offer {a.name} expired at {a.offer_expire_time.isoformat()}",
                                     reason="OFFER_EXPIRED")
        previous, a.state, a.accept_time = a.state, "ACCEPTED", at
        self._changed(a, previous=previous, actor=actor, at=at,
                      detail=f"{a.call_sign}（{KIND_LABELS.get(a.kind, a.kind)}）接单")
        return a

    def advance(self, assignment_id: str, *, target: str, actor: AuthContext, unit_officers: list[dict],
                at: datetime) -> Assignment:
        """En route, on scene, cleared."""
        a = self.assignment(assignment_id)
        authorize(actor, a, unit_officers)
        a.require_move(target)
        previous, a.state = a.state, target
        detail = f"{a.call_sign}{STATE_LABELS[target]}"
        if target == "EN_ROUTE":
            a.en_route_time = at
        elif target == "ON_SCENE":
            a.arrive_time = at
            secs = int((at - self.report_time).total_seconds())
            target_s = a.arrival_target_s
            if target_s:
                detail += f"，距接警{secs}秒，{'达到' if secs <= target_s else '未达到'}{target_s}秒到场要求"
        elif target == "CLEARED":
            a.clear_time = at
        self._changed(a, previous=previous, actor=actor, at=at, detail=detail)
        return a

    def gathering_evidence(self, assignment_id: str, *, actor: AuthContext, unit_officers: list[dict]
                           ) -> Assignment:
        """The assignment an officer adds evidence to: their unit's own (or the command's), accepted
        and not yet reported back."""
        a = self.assignment(assignment_id)
        authorize(actor, a, unit_officers)
        if a.state not in GATHERING:
            raise FailedPrecondition(
                f"{a.name} is {a.state}; evidence is added from accepting the job to the report-back",
                reason="NOT_GATHERING_EVIDENCE", metadata={"state": a.state})
        return a

    def report_back(self, assignment_id: str, *, outcome: str, notes: str, evidence: list[dict],
                    actor: AuthContext, unit_officers: list[dict], at: datetime) -> Assignment:
        """The unit reports the outcome back (回告); the last one closes the case, and offers nobody
        answered are withdrawn."""
        a = self.assignment(assignment_id)
        authorize(actor, a, unit_officers)
        a.require_move("REPORTED_BACK")
        previous, a.state, a.report_back_time = a.state, "REPORTED_BACK", at
        a.outcome, a.notes, a.evidence = outcome, notes, evidence
        detail = f"{a.call_sign}回告：{OUTCOME_LABELS.get(outcome, outcome)}"
        if evidence:
            detail += f"，附证据{len(evidence)}件"
        self._changed(a, previous=previous, actor=actor, at=at, detail=detail, reason=notes[:200])
        if self.status == "CLOSED":
            for x in list(self.assignments):
                if x.state == "OFFERED":
                    previous, x.state = x.state, "CANCELLED"
                    self._changed(x, previous=previous, actor=SYSTEM, at=at,
                                  detail=f"警情已办结，撤销对{x.call_sign}的派单")
        return a

    def decline(self, assignment_id: str, *, reason: str, actor: AuthContext, unit_officers: list[dict],
                at: datetime) -> Assignment:
        a = self.assignment(assignment_id)
        authorize(actor, a, unit_officers)
        a.require_move("DECLINED")
        previous, a.state, a.decline_reason = a.state, "DECLINED", reason
        self._changed(a, previous=previous, actor=actor, at=at,
                      detail=f"{a.call_sign}拒单" + (f"：{reason}" if reason else ""), reason=reason)
        return a

    def expire(self, assignment_id: str, *, at: datetime, timeout_s: float) -> Assignment | None:
        """An offer not accepted in time; None when it was answered (or expired) meanwhile."""
        a = self.assignment(assignment_id)
        if a.state != "OFFERED" or a.offer_expire_time is None or a.offer_expire_time > at:
            return None
        previous, a.state = a.state, "EXPIRED"
        self._changed(a, previous=previous, actor=SYSTEM, at=at,
                      detail=f"{a.call_sign}超过{timeout_s:.0f}秒未接单，转派下一警力")
        return a

    def _changed(self, a: Assignment, *, previous: str, actor: AuthContext, at: datetime, detail: str,
                 reason: str = "") -> None:
        """An assignment changed (or, with no `previous` state, is new): its version, the unit's status,
        the case's stamps and status, the timeline, and the events."""
        before = self.snapshot()
        a.version += 1
        a.update_time = at
        if previous:
            status = UNIT_STATUS_FOR.get(a.state)
            if status is not None and previous != a.state:
                self._pending("_unit_moves").append(UnitMove(a.unit_id, status))
        if all(x.id != a.id for x in self.assignments):
            self.assignments.append(a)
        entries = [entry(actor, at, a.state, detail, reason)]
        status_before = self.status
        self._follow(a, at)
        if self.status != status_before:
            entries.append(entry(actor, at, self.status,
                                 f"警情状态：{CASE_STATUS_LABELS.get(self.status, self.status)}"))
        self.update_time = at
        self._append(entries)
        self.record(AssignmentChanged(self.snapshot(), a.snapshot(), previous, actor, at, reason))
        if self.status != status_before:
            self.record(CaseUpdated(self.snapshot(), before, self.status, tuple(entries)))

    def _follow(self, a: Assignment, at: datetime) -> None:
        """The case's stamps and status follow its assignments; the SLA figures are measured."""
        if a.state == "ACCEPTED" and self.accept_time is None:
            self.accept_time = at
            self._measure("accept", (at - self.report_time).total_seconds())
        if a.state == "ON_SCENE" and self.arrive_time is None:
            self.arrive_time = at
            self._measure("arrive", (at - self.report_time).total_seconds())
        since = [x for x in self.assignments if self.reopen_time is None or x.offer_time >= self.reopen_time]
        self.status = case_status(self.status, since)
        if self.status == "CLOSED" and self.close_time is None:
            self.close_time = at
            self._measure("close", (at - self.report_time).total_seconds())

    # -- closing and cancelling (办结、撤销) ------------------------------------------------------

    def close(self, *, outcome: str, notes: str, actor: AuthContext, at: datetime) -> None:
        """The command closes the case with an outcome: open offers are withdrawn, units still on it
        stand down (收队)."""
        self._authorise_closing(actor)
        self.outcome, self.close_notes = outcome, notes
        self._finish("CLOSED", actor, at, f"指挥员办结警情：{OUTCOME_LABELS.get(outcome, outcome)}", notes)

    def cancel(self, *, reason: str, notes: str, actor: AuthContext, at: datetime) -> None:
        """The command cancels the case (a duplicate, a false alarm, the caller withdrew, handled by
        phone): open offers are withdrawn, units still on it stand down."""
        self._authorise_closing(actor)
        self.cancel_reason, self.close_notes = reason, notes
        self._finish("CANCELLED", actor, at, f"撤销警情：{CANCEL_REASONS.get(reason, reason)}", notes)

    def _authorise_closing(self, actor: AuthContext) -> None:
        if not actor.has_role("commander", "dispatcher") and self.station_id != actor.station:
            raise PermissionDenied(f"{self.name} belongs to station {self.station_id}, not {actor.station or 'yours'}",
                                   reason="OTHER_STATION", metadata={"station_id": self.station_id})
        self._require_open()

    def _finish(self, status: str, actor: AuthContext, at: datetime, detail: str, reason: str) -> None:
        before = self.snapshot()
        self.status, self.update_time = status, at
        if self.close_time is None:
            self.close_time = at
            if status == "CLOSED":
                self._measure("close", (at - self.report_time).total_seconds())
        for a in list(self.assignments):
            if a.state == "OFFERED":
                a.state = "CANCELLED"
                self._changed(a, previous="OFFERED", actor=actor, at=at, detail=f"撤销对{a.call_sign}的派单")
            elif can_move(a.state, WITHDRAWN):
                previous, a.state = a.state, WITHDRAWN
                self._changed(a, previous=previous, actor=actor, at=at, detail=f"{a.call_sign}收队")
        entries = [entry(actor, at, status, detail, reason)]
        self._append(entries)
        self.record(CaseUpdated(self.snapshot(), before, status, tuple(entries)))

    # -- nobody takes it ------------------------------------------------------------------------

    def unanswered_offers(self) -> int:
        """Offers declined or left to expire."""
        return sum(1 for a in self.assignments if a.state in ("DECLINED", "EXPIRED"))

    def stop_offering(self, limit: int, at: datetime) -> bool:
        """After `limit` offers nobody took, automatic offers stop and the station's duty dispatcher is
        asked to choose (the case no longer wanders from unit to unit); True once stopped."""
        if self.offers_exhausted_time is not None:
            return True
        count = self.unanswered_offers()
        if count < limit:
            return False
        before = self.snapshot()
        self.offers_exhausted_time = self.update_time = at
        entries = [entry(SYSTEM, at, "OFFERS_EXHAUSTED",
                         f"已连续{count}次派单无人接单，停止自动派单，请{self.station_id}值班调度员指定警力")]
        self._append(entries)
        self.record(CaseUpdated(self.snapshot(), before, "OFFERS_EXHAUSTED", tuple(entries)))
        return True

    def escalate_unanswered(self, at: datetime) -> bool:
        """Still not taken well after automatic offers stopped: raised to district (county) command;
        False when taken meanwhile, over, or already at county level or above."""
        if self.ended or self.accept_time is not None or rank(self.level) >= rank("COUNTY"):
            return False
        before, previous = self.snapshot(), self.level
        self.level, self.update_time = "COUNTY", at
        entries = [entry(SYSTEM, at, "ESCALATED", f"由{LEVEL_LABELS[previous]}升级为{LEVEL_LABELS['COUNTY']}",
                         "派单无人接单，值班调度员未能指定警力，升级分局（县）指挥")]
        self._append(entries)
        self.record(CaseUpdated(self.snapshot(), before, "ESCALATED", tuple(entries), previous_level=previous))
        return True

    # -- the report changed ------------------------------------------------------------------

    def reclassify(self, *, incident_type: str, priority: int, at: datetime) -> bool:
        """Intake corrected the report's incident type or priority: carried over to an open case,
        kept in its timeline and announced. False when nothing changes."""
        changes = []
        if incident_type and incident_type != self.incident_type:
            changes.append(f"警情类型 {self.incident_type} → {incident_type}")
        if priority and priority != self.priority:
            changes.append(f"优先级 {self.priority} → {priority}")
        if not changes or self.ended:
            return False
        before = self.snapshot()
        self.incident_type = incident_type or self.incident_type
        self.priority = priority or self.priority
        self.update_time = at
        entries = [entry(SYSTEM, at, "RECLASSIFIED", "接警单更正：" + "，".join(changes))]
        self._append(entries)
        self.record(CaseUpdated(self.snapshot(), before, "RECLASSIFIED", tuple(entries)))
        return True

    def follow_silence(self, silent: bool, *, at: datetime) -> bool:
        """The report became a silent alarm (无声报警) or stopped being one: carried over to an open
        case, kept in its timeline and announced. False when nothing changes."""
        if silent == self.silent or self.ended:
            return False
        before = self.snapshot()
        self.silent, self.update_time = silent, at
        if silent:
            entries = [entry(SYSTEM, at, "SILENT_ALARM", "接警单更正为" + SILENT_INSTRUCTION)]
        else:
            entries = [entry(SYSTEM, at, "SILENT_ALARM_LIFTED", "接警单更正：不再是无声报警，可正常联系报警人")]
        self._append(entries)
        self.record(CaseUpdated(self.snapshot(), before, entries[0].action, tuple(entries)))
        return True

    # -- levels ------------------------------------------------------------------------------

    def change_level(self, level: str, *, reason: str, actor: AuthContext, at: datetime) -> None:
        """Escalates or de-escalates the case, kept in its timeline with who and why."""
        if not actor.has_role("commander", "dispatcher") and self.station_id != actor.station:
            raise PermissionDenied(f"{self.name} belongs to station {self.station_id}, not {actor.station or 'yours'}",
                                   reason="OTHER_STATION", metadata={"station_id": self.station_id})
        if self.ended:
            raise FailedPrecondition(f"{self.name} is {self.status.lower()}; its level cannot change",
                                     reason="CASE_CLOSED", metadata={"status": self.status})
        if level == self.level:
            raise FailedPrecondition(f"{self.name} is already at level {level}", reason="SAME_LEVEL",
                                     metadata={"level": level})
        up = rank(level) > rank(self.level)
        if not up and not actor.has_role(*DEESCALATE_ROLES):
            raise PermissionDenied("only a commander or dispatcher may de-escalate a case",
                                   reason="ROLE_REQUIRED", metadata={"required_roles": ",".join(DEESCALATE_ROLES)})
        action = "ESCALATED" if up else "DEESCALATED"
        before, previous = self.snapshot(), self.level
        self.level, self.update_time = level, at
        verb = "升级" if up else "降级"
        entries = [entry(actor, at, action, f"由{LEVEL_LABELS[previous]}{verb}为{LEVEL_LABELS[level]}", reason)]
        self._append(entries)
        self.record(CaseUpdated(self.snapshot(), before, action, tuple(entries), previous_level=previous))

    # -- stop-payment hand-offs --------------------------------------------------------------

    def request_stop_payment(self, *, bank: str, victim_account: str, amount_fen: int, actor: AuthContext,
                             at: datetime) -> StopPayment:
        """A dispatcher's hand-off with account details learnt after the report (the victim's words
        come from the case's first hand-off; their name and phone are read from intake when it is
        delivered)."""
        if self.incident_type != FRAUD_TYPE:
            raise FailedPrecondition(
                f"{self.name} is a {self.incident_type} case; stop-payment is for {FRAUD_TYPE} cases",
                reason="NOT_A_FRAUD_CASE")
        self._require_open()
        first = self.stop_payments[0] if self.stop_payments else None
        sp = StopPayment.queue(
            case_id=self.id, banks=[bank], victim_account=victim_account, amount_fen=amount_fen,
            description=first.description if first else self.summary, requested_by=actor.subject or "anonymous",
            requested_roles=sorted(actor.roles), now=at)
        self.stop_payments.append(sp)
        self.stop_payment_changed(sp, sp.queued_entry(), at)
        return sp

    def stop_payment_changed(self, sp: StopPayment, news: TimelineEntry, at: datetime) -> None:
        """A hand-off moved on (queued, acknowledged, a result): kept in the timeline and announced
        with the hand-off as it now stands."""
        before = self.snapshot()
        self.update_time = at
        self._append([news])
        self.record(CaseUpdated(self.snapshot(), before, news.action, (news,), stop_payment=sp.snapshot()))

    # -- follow-up ---------------------------------------------------------------------------

    def rate(self, *, satisfaction: str, comment: str, actor: AuthContext, at: datetime) -> FollowUp:
        """The citizen's follow-up (回访) after report-back, with the officers who saw the case through;
        an unsatisfied citizen is flagged to the station chief."""
        if self.status not in RATEABLE_STATUSES:
            raise FailedPrecondition(f"{self.name} has not been reported back yet (status {self.status})",
                                     reason="NOT_REPORTED_BACK", metadata={"status": self.status})
        if self.follow_up is not None:
            raise FailedPrecondition(f"{self.name} already has its follow-up", reason="ALREADY_RATED")
        rated: dict[str, RatedOfficer] = {}
        for a in self.assignments:
            if a.state in RATED_ASSIGNMENT_STATES:
                for o in a.officers:
                    rated.setdefault(o["officer_id"], RatedOfficer(o["officer_id"], o.get("name", ""),
                                                                   a.station_id, a.unit_id))
        who, roles = actor.subject or "anonymous", sorted(actor.roles)
        flagged = satisfaction == "UNSATISFIED"
        before = self.snapshot()
        self.follow_up = FollowUp(satisfaction=satisfaction, comment=comment, actor=who, roles=roles, rate_time=at,
                                  flagged=flagged, officers=sorted(rated.values(), key=lambda o: o.officer_id),
                                  review_state="OPEN" if flagged else "")
        detail = f"群众回访：{SATISFACTION_LABELS[satisfaction]}" + (f"。{comment}" if comment else "")
        entries = [entry(actor, at, "RATED", detail)]
        if flagged:
            entries.append(entry(actor, at, "FOLLOW_UP_FLAGGED", f"群众不满意，已推送{self.station_id}所长核查"))
        self.update_time = at
        self._append(entries)
        self.record(CaseUpdated(self.snapshot(), before, "RATED", tuple(entries)))
        if flagged:
            self.record(FollowUpFlagged(self.snapshot(), self.follow_up))
        return self.follow_up

    def review(self, *, decision: str, answer: str, actor: AuthContext, at: datetime) -> None:
        """The station chief's review of an unsatisfied follow-up (复核): REOPEN hands the case back
        for handling (the command offers it again); ANSWER closes the review with a written answer
        to the citizen. Either way on the timeline."""
        if not actor.has_role("commander", "dispatcher") and self.station_id != actor.station:
            raise PermissionDenied(f"{self.name} belongs to station {self.station_id}, not {actor.station or 'yours'}",
                                   reason="OTHER_STATION", metadata={"station_id": self.station_id})
        f = self.follow_up
        if f is None or f.review_state != "OPEN":
            raise FailedPrecondition(f"{self.name} has no unsatisfied follow-up waiting for review",
                                     reason="NO_OPEN_REVIEW", metadata={"review_state": f.review_state if f else ""})
        before = self.snapshot()
        self.follow_up = replace(f, reviewed_by=actor.subject or "anonymous", review_time=at, review_answer=answer,
                                 review_state="REOPENED" if decision == "REOPEN" else "ANSWERED")
        if decision == "REOPEN":
            self.status, self.reopen_time, self.close_time, self.update_time = "PENDING", at, None, at
            self.outcome = self.cancel_reason = ""
            entries = [entry(actor, at, "REOPENED", "回访不满意，所长复核后重新处置，待重新派警", answer)]
        else:
            self.update_time = at
            entries = [entry(actor, at, "REVIEW_ANSWERED", "回访不满意，所长复核并书面答复群众", answer)]
        self._append(entries)
        self.record(CaseUpdated(self.snapshot(), before, entries[0].action, tuple(entries)))

    # -- what the repositories take along -----------------------------------------------------

    def _append(self, entries: list[TimelineEntry]) -> None:
        self.timeline.extend(entries)

    def _measure(self, stage: str, seconds: float) -> None:
        self._pending("_measures").append((stage, seconds))

    def _pending(self, name: str) -> list:
        found = self.__dict__.get(name)
        if found is None:
            found = self.__dict__[name] = []
        return found

    def pull_unit_moves(self) -> list[UnitMove]:
        """The statuses the case's units move to (their repository writes them)."""
        moves, self.__dict__["_unit_moves"] = self._pending("_unit_moves"), []
        return moves

    def pull_measures(self) -> list[tuple[str, float]]:
        """SLA figures reached by the case's changes (stage, seconds since the report), counted once
        the transaction commits."""
        measures, self.__dict__["_measures"] = self._pending("_measures"), []
        return measures
