"""Obligations (到期事项): things that must be done by a time — an inspection every two weeks, the
report-back (回告) owed after an assignment, a 12345 work order's deadline — warned of when they
come due and when they are overdue."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition
from services.runtime.labels import incident_type_label

from .alerts import Finding
from .common import LEVELS, Area, Stamp, level_rank
from .rules import Rule

REPORT_BACK_SECONDS = 2 * 3600
OPEN_ASSIGNMENT_STATES = ("ACCEPTED", "EN_ROUTE", "ON_SCENE", "CLEARED")


def obligation_state(due: datetime, done: bool, cancelled: bool, now: datetime) -> str:
    if cancelled:
        return "CANCELLED"
    if done:
        return "DONE"
    return "OVERDUE" if now >= due else "PENDING"


@dataclass(eq=False)
class Obligation:
    id: str
    kind: str
    subject: str
    station_id: str
    description: str
    due_time: datetime
    create_time: datetime
    update_time: datetime
    period_s: float = 0.0
    # PENDING, DONE or CANCELLED; OVERDUE is PENDING past due_time.
    state: str = "PENDING"
    # How far the warnings for the current due time have gone: "", "DUE_SOON", "OVERDUE".
    warned: str = ""
    completed: Stamp | None = None

    @property
    def name(self) -> str:
        return f"obligations/{self.id}"

    def state_at(self, now: datetime) -> str:
        return self.state if self.state != "PENDING" else obligation_state(self.due_time, False, False, now)

    def reschedule(self, *, due: datetime, description: str, now: datetime) -> bool:
        """The event that implies it came again with another due time: warnings start over.
        False when nothing changed (it is closed, or due then already)."""
        if self.state != "PENDING" or self.due_time == due:
            return False
        self.due_time = due
        self.warned = ""
        self.description = description
        self.update_time = now
        return True

    def close(self, state: str, actor: AuthContext, reason: str, now: datetime) -> None:
        """Done or cancelled; a recurring one done comes due again one period later."""
        if self.state != "PENDING":
            raise FailedPrecondition(f"obligations/{self.id} is {self.state}", reason="OBLIGATION_CLOSED",
                                     metadata={"state": self.state})
        self.completed = Stamp.of(actor, now, reason)
        self.update_time = now
        self.warned = ""
        if state == "DONE" and self.period_s > 0:
            self.due_time = now + timedelta(seconds=self.period_s)
        else:
            self.state = state

    def next_warning(self, now: datetime) -> str | None:
        """The warning due now ("DUE_SOON" or "OVERDUE"), recorded as given; None when given already."""
        stage = "OVERDUE" if now >= self.due_time else "DUE_SOON"
        if stage == self.warned:
            return None
        self.warned = stage
        return stage


def obligation_finding(rule: Rule, o: Obligation, stage: str) -> Finding:
    """A warning about an obligation; an overdue one is one level higher than the rule's."""
    overdue = stage == "OVERDUE"
    level = rule.level
    if overdue:
        level = LEVELS[min(level_rank(level) + 1, 4)]
    when = "已逾期" if overdue else "即将到期"
    return Finding(
        rule=rule, level=level, key=("obligation", o.id, o.due_time.isoformat()), area=Area.station(o.station_id),
        subject=o.name, summary=f"{when}：{o.description}（期限{o.due_time:%Y-%m-%d %H:%M}）",
        labels={"obligation_kind": o.kind},
        suggested_action=rule.suggested_action or "请责任单位尽快办理并在系统中登记完成")


def obligation_kinds(rule: Rule) -> list[str]:
    """The kinds of obligation an OBLIGATION rule warns of ([]: every kind)."""
    return [k for k in rule.parameters.get("kinds", "").split(",") if k]


# -- obligations other services' events imply ------------------------------------------

@dataclass
class Assignment:
    """A unit's assignment to a case, as dispatch announces its changes."""

    name: str
    unit: str
    state: str
    station_id: str = ""
    case_name: str = ""
    incident_type: str = ""
    accept_time: datetime | None = None
    clear_time: datetime | None = None


@dataclass
class Case:
    """A dispatch case, as dispatch announces its changes (CaseUpdated)."""

    name: str
    station_id: str
    status: str
    level: str = "STATION"
    incident_type: str = ""
    accepted: bool = False  # an officer has taken it since it opened (or reopened)
    offers_stopped: bool = False  # automatic offers stopped: nobody took it (OFFERS_EXHAUSTED)

    @property
    def ended(self) -> bool:
        return self.status in ("CLOSED", "CANCELLED")


# Seconds the duty dispatcher has to give a unit to a case nobody took before the warning is overdue.
ASSIGN_UNIT_SECONDS = 300.0


def assign_unit_description(c: Case) -> str:
    return f"{c.name}（{incident_type_label(c.incident_type)}）连续派单无人接单，自动派单已停止，请值班调度员立即指定警力"


def report_back_seconds(rules: list[Rule]) -> float:
    """How long after clearing (or accepting) a unit has to report back: the first OBLIGATION
    rule that says, else two hours."""
    for rule in rules:
        if rule.parameters.get("report_back_seconds"):
            return float(rule.parameters["report_back_seconds"])
    return REPORT_BACK_SECONDS


def report_back_due(a: Assignment, seconds: float, now: datetime) -> datetime:
    return (a.clear_time or a.accept_time or now) + timedelta(seconds=seconds)


def report_back_description(a: Assignment) -> str:
    return f"{a.unit}处警后回告（{a.case_name}，{incident_type_label(a.incident_type)}）"


@dataclass
class WorkOrder:
    """A 12345 work order, as referral announces it."""

    name: str
    status: str
    description: str = ""
    deadline: datetime | None = None
    preliminary_station: str = ""  # stations/{id}
    report: str = ""  # reports/{id}: the 110 report it came from

    @property
    def closed(self) -> bool:
        return self.status in ("RESOLVED", "CLOSED")

    @property
    def station_id(self) -> str:
        return self.preliminary_station.split("/", 1)[1] if self.preliminary_station else ""

    @property
    def report_id(self) -> str:
        return self.report.split("/", 1)[1] if self.report else ""

    @property
    def obligation_description(self) -> str:
        return f"12345工单办理时限：{self.description[:60]}"
