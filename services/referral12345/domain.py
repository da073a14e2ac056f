"""Referral domain: 12345 departments (承办单位), work orders (工单) and their
lifecycle, routing by matter and area, time limits, 110 reports and when they
become orders, unreasonable-request classification (不合理不合规诉求) and
per-department figures.

The work order and the unreasonable-request record are aggregates: their
state-changing methods record the domain events at the end of this module's
work-order section (`WorkOrderCreated`, `WorkOrderUpdated`,
`UnreasonableRequestRecorded`), which the unit of work publishes at commit.

Plain Python; knows nothing of gRPC or SQL.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition
from services.runtime.ids import new_id
from services.runtime.model import Aggregate, DomainEvent, TimelineEntry

from . import rules

CHINA = timezone(timedelta(hours=8))
# Who referral's own changes are made by: a consumed 110 report, the overdue sweeper.
SYSTEM = AuthContext(subject="referral", roles=frozenset({"service"}))


@dataclass(frozen=True)
class Matter:
    """A matter (事项) in the 12345 catalogue, e.g. ILLEGAL_PARKING / 违章停车."""

    code: str
    label: str


@dataclass(frozen=True)
class Department:
    dept_id: str
    name: str
    matters: tuple[Matter, ...]
    # District names covered; empty for the whole city.
    districts: tuple[str, ...]
    supervisor: str
    phone: str

    @property
    def resource_name(self) -> str:
        return f"departments/{self.dept_id}"

    @property
    def matter_codes(self) -> tuple[str, ...]:
        return tuple(m.code for m in self.matters)

    def covers(self, district: str) -> bool:
        return not self.districts or district in self.districts

    @property
    def emergency_linkage(self) -> bool:
        linked = {r.lead_matter for r in rules.LINKAGE.values()}
        linked |= {m for r in rules.LINKAGE.values() for m, _ in r.cooperating}
        return bool(linked.intersection(self.matter_codes))


@dataclass(frozen=True)
class Open311Service:
    """A GeoReport v2 service: one matter, whoever handles it."""

    code: str
    name: str
    group: str


def open311_services(departments: list[Department]) -> list[Open311Service]:
    """One service per matter code, in department order.

    Several departments can share a matter (illegal parking: city management
    and traffic police; noise: each district's street offices); GeoReport
    wants each service_code once, so the group names all of them.
    """
    labels: dict[str, str] = {}
    handlers: dict[str, list[str]] = {}
    for d in departments:
        for m in d.matters:
            labels.setdefault(m.code, m.label)
            names = handlers.setdefault(m.code, [])
            if d.name not in names:
                names.append(d.name)
    return [Open311Service(code=code, name=labels[code], group="、".join(handlers[code])) for code in labels]


def matter_labels(departments: list[Department]) -> dict[str, str]:
    return {m.code: m.label for d in departments for m in d.matters}


# -- routing (派单) ---------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    department: Department
    role: str  # LEAD or COOPERATING
    reason: str


def infer_matter(incident_type: str, description: str, known: set[str]) -> tuple[str, str]:
    """The matter code of a request and why; ("", reason) when it cannot be told."""
    if incident_type in known:
        return incident_type, f"事项编码取自接警分类“{incident_type}”"
    for code, keywords in rules.MATTER_KEYWORDS:
        for kw in keywords:
            if kw in description and code in known:
                return code, f"诉求内容含“{kw}”，归入事项“{code}”"
    return "", "诉求内容未能对应到12345事项目录"


def candidates(matter_code: str, district: str, departments: list[Department],
               exclude: frozenset[str] = frozenset()) -> list[Department]:
    """Departments handling a matter in a district: area-specific ones (属地) before citywide ones."""
    found = [d for d in departments if matter_code in d.matter_codes and d.dept_id not in exclude
             and (d.covers(district) if district else not d.districts)]
    return sorted(found, key=lambda d: (not d.districts, d.dept_id))


def _route_reason(d: Department, label: str, district: str, others: list[Department]) -> str:
    if d.districts:
        text = f"事项“{label}”由{d.name}属地办理（{district}）"
    else:
        text = f"事项“{label}”由{d.name}负责（全市范围）"
    if others:
        text += "；同类承办单位还有" + "、".join(o.name for o in others)
    return text


def route_ordinary(matter_code: str, district: str, departments: list[Department],
                   exclude: frozenset[str] = frozenset()) -> list[Route]:
    """The lead department for an ordinary order, with the reason; [] when none is responsible."""
    found = candidates(matter_code, district, departments, exclude)
    if not found:
        return []
    label = matter_labels(departments).get(matter_code, matter_code)
    return [Route(found[0], "LEAD", _route_reason(found[0], label, district, found[1:]))]


def route_linkage(rule: rules.LinkageRule, district: str, departments: list[Department]) -> list[Route]:
    """Every department of a joint rescue (联动抢险): the lead first, then the cooperating ones."""
    out: list[Route] = []
    used: set[str] = set()
    lead = candidates(rule.lead_matter, district, departments)
    if lead:
        out.append(Route(lead[0], "LEAD", f"{rule.lead_reason}（{lead[0].name}）"))
        used.add(lead[0].dept_id)
    for matter, reason in rule.cooperating:
        found = candidates(matter, district, departments, frozenset(used))
        if found:
            role = "COOPERATING" if out else "LEAD"
            out.append(Route(found[0], role, f"{reason}（{found[0].name}）"))
            used.add(found[0].dept_id)
    return out


# -- time limits (办理时限) -------------------------------------------------------

def add_working_days(start: datetime, days: int) -> datetime:
    """`days` working days after `start`, counted in China time, Saturdays and Sundays skipped."""
    local = start.astimezone(CHINA)
    counted = 0
    while counted < days:
        local += timedelta(days=1)
        if local.weekday() < 5:
            counted += 1
    return local.astimezone(timezone.utc)


def deadline_for(start: datetime, urgency: int) -> datetime:
    if urgency in rules.MINUTES_LIMIT:
        return start + rules.MINUTES_LIMIT[urgency]
    return add_working_days(start, rules.WORKING_DAYS_LIMIT.get(urgency, rules.WORKING_DAYS_LIMIT[4]))


# -- places and 110 reports ---------------------------------------------------------

@dataclass(frozen=True)
class Place:
    """A police station with jurisdiction, as intake locates it (for 先期处置 and the order's district)."""

    station_id: str
    station_name: str
    district: str


@dataclass(frozen=True)
class PoliceReport:
    """A 110 report as intake announces (or files) it: what referral reads of it."""

    name: str
    status: str  # the full intake status name, e.g. REPORT_STATUS_CLASSIFIED
    category: str = ""  # POLICE, NON_POLICE, ... ("" unclassified)
    incident_type: str = ""
    priority: int = 0
    channel: str = ""  # PHONE, HOTLINE_12345, ...
    merged_into: str = ""
    description: str = ""
    lon: float | None = None
    lat: float | None = None
    accuracy_m: float = 0.0
    address_text: str = ""
    station_id: str = ""
    caller_phone: str = ""
    caller_name: str = ""
    attachments: tuple[dict, ...] = ()
    receive_time: datetime | None = None


# The intake.ReportUpdated actions after which a report may need an order it did not have: corrected
# into a non-police (or joint-rescue) type, or un-merged from the incident it was taken as a repeat of.
REFER_ON_UPDATE = ("CORRECTED", "UNMERGED")


def needs_order(report: PoliceReport) -> bool:
    """A non-police report, or a police one of a type that needs city departments too (联动抢险)."""
    return report.category == "NON_POLICE" or (report.category == "POLICE"
                                               and report.incident_type in rules.LINKAGE)


def to_refer(report: PoliceReport) -> bool:
    """Whether a reported 110 report is one to refer: it needs an order and is one of its own (not merged
    into another)."""
    return needs_order(report) and not report.merged_into


def to_refer_after(action: str, report: PoliceReport) -> bool:
    """Whether a report updated by `action` is one to refer now (once, since an order is unique per report)."""
    return action in REFER_ON_UPDATE and to_refer(report)


@dataclass(frozen=True)
class Referral:
    """How a 110 report becomes a work order: its matter, why, how urgent, and the joint rescue if any."""

    matter_code: str
    why: str
    urgency: int
    linkage: rules.LinkageRule | None = None


def referral_of(report: PoliceReport, known: set[str]) -> Referral:
    """The terms of the order a report that is referred gets (see `referable`)."""
    linkage = rules.LINKAGE.get(report.incident_type) if report.category == "POLICE" else None
    if linkage is not None:
        return Referral(linkage.lead_matter, f"警情类型“{report.incident_type}”需城市部门联动抢险", linkage.urgency,
                        linkage)
    matter, why = infer_matter(report.incident_type, report.description, known)
    return Referral(matter, why, report.priority if 1 <= report.priority <= 4 else 4)


def referable(report: PoliceReport) -> bool:
    """A report that gets an order: one that needs it, of its own, and not from 12345 itself."""
    return needs_order(report) and not report.merged_into and report.channel != "HOTLINE_12345"


def referred_order_fields(report: PoliceReport, terms: Referral, place: Place | None) -> dict:
    """The fields of the order a referred report becomes."""
    return dict(
        source="REPORT_110", report=report.name, matter_code=terms.matter_code, description=report.description,
        urgency=terms.urgency, lon=report.lon, lat=report.lat, accuracy_m=report.accuracy_m,
        address_text=report.address_text, district=place.district if place else "", station_id=report.station_id,
        citizen_phone=report.caller_phone, citizen_name=report.caller_name,
        category=rules.EMERGENCY_CATEGORY if terms.linkage else "", joint_rescue=terms.linkage is not None,
        attachments=list(report.attachments), request_time=report.receive_time,
    )


def progress_detail(report: PoliceReport, action: str) -> str:
    """The timeline text of a transferred report's progress."""
    detail = f"110接警单 {report.name} 状态 {report.status}"
    if action:
        detail += f"（{action}）"
    if report.category:
        detail += f"；分类 {report.category}/{report.incident_type}，{report.priority}级"
    return detail


# -- work orders (工单) -------------------------------------------------------------

ACTIVE_STATES = {"ASSIGNED", "ACCEPTED", "IN_PROGRESS", "RESOLVED"}
OPEN_STATUSES = {"RECEIVED", "ASSIGNED", "ACCEPTED", "IN_PROGRESS", "REJECTED", "REOPENED", "PRELIMINARY_POLICE"}
ASSIGNABLE = {"RECEIVED", "PRELIMINARY_POLICE", "REJECTED", "REOPENED"}
DEPARTMENT_WORKING = {"ASSIGNED", "ACCEPTED", "IN_PROGRESS"}
CLOSED_FOR_OPEN311 = {"CLOSED", "TRANSFERRED_TO_110"}
SOURCE_LABEL = {"REPORT_110": "110非警务警情 {report} 转入", "HOTLINE_12345": "12345热线受理",
                "OPEN311": "Open311 接口提交"}


def open311_statuses(wanted: list[str]) -> list[str]:
    """The order statuses a GeoReport status filter ("open", "closed" or both) means; [] for any."""
    out: set[str] = set()
    for s in wanted:
        out |= CLOSED_FOR_OPEN311 if s == "closed" else OPEN_STATUSES | {"RESOLVED"}
    return sorted(out)


@dataclass
class OrderEntry(TimelineEntry):
    """A timeline entry of a work order, with the department it concerns."""

    department: str = ""


@dataclass
class Assignment:
    dept_id: str
    dept_name: str
    role: str
    state: str
    routing_reason: str
    assign_time: datetime
    deadline: datetime | None
    round: int
    accept_time: datetime | None = None
    start_time: datetime | None = None
    resolve_time: datetime | None = None
    reject_reason: str = ""
    feedback: str = ""
    attachments: list[dict] = field(default_factory=list)
    seq: int | None = None  # set once stored

    @property
    def department(self) -> str:
        return f"departments/{self.dept_id}"


@dataclass
class WorkOrder(Aggregate):
    id: str
    source: str
    matter_code: str
    description: str
    urgency: int
    status: str
    request_time: datetime
    create_time: datetime
    update_time: datetime
    deadline: datetime | None = None
    report: str = ""
    hotline_ticket_id: str = ""
    category: str = ""
    lon: float | None = None
    lat: float | None = None
    accuracy_m: float = 0.0
    address_text: str = ""
    district: str = ""
    station_id: str = ""
    citizen_phone: str = ""
    citizen_name: str = ""
    confidential: bool = False
    preliminary_station: str = ""
    preliminary_reason: str = ""
    overdue: bool = False
    satisfaction: str = ""
    satisfaction_comment: str = ""
    reopen_count: int = 0
    transferred_report: str = ""
    transferred_report_status: str = ""
    unreasonable_request: str = ""
    attachments: list[dict] = field(default_factory=list)
    close_time: datetime | None = None
    repeat_caller: bool = False
    prior_requests: int = 0
    escalated_to_name: str = ""
    escalated_to_phone: str = ""
    escalate_time: datetime | None = None
    round: int = 0
    joint_rescue: bool = False
    assignments: list[Assignment] = field(default_factory=list)
    timeline: list[OrderEntry] = field(default_factory=list)
    # Entries added since the order was loaded; the repository appends them.
    new_entries: list[OrderEntry] = field(default_factory=list)
    # The order as its last event (or its loading) showed it, and the entries added since: what the
    # next event says changed. Kept by `mark_announced()` and each recorded event.
    announced: WorkOrder | None = field(default=None, repr=False, compare=False)
    unannounced: list[OrderEntry] = field(default_factory=list, repr=False, compare=False)

    @property
    def name(self) -> str:
        return f"workOrders/{self.id}"

    @classmethod
    def receive(cls, fields: dict, *, actor: AuthContext, now: datetime,
                caller_history: tuple[int, int] | None = None) -> WorkOrder:
        """A new order (RECEIVED) from a 12345 ticket, an Open311 request or a 110 report, with its
        category, deadline and first timeline entry; recorded as WorkOrderCreated.

        `caller_history`: (the caller's earlier requests, those on the same matter lately), when the
        citizen left a number.
        """
        fields = dict(fields)
        request_time = fields.pop("request_time", None) or now
        order = cls(id=new_id(now), status="RECEIVED", request_time=request_time, create_time=now,
                    update_time=now, **fields)
        order.category = order.category or rules.CATEGORY_BY_MATTER.get(order.matter_code, "综合")
        order.deadline = deadline_for(request_time, order.urgency)
        source_label = SOURCE_LABEL[order.source].format(report=order.report)
        order._log("CREATED", actor, now, f"{source_label}；时限{rules.URGENCY_LABEL.get(order.urgency, '')}")
        if caller_history is not None:
            order.flag_repeat(*caller_history, actor, now)
        created = order._snapshot()
        order.record(WorkOrderCreated(order=created, entries=tuple(order.unannounced)))
        order.announced, order.unannounced = created, []
        return order

    @classmethod
    def draft(cls, fields: dict) -> WorkOrder:
        """An order not yet recorded (a 12345 ticket about to be transferred to 110)."""
        return cls(id="", status="RECEIVED", create_time=fields["request_time"], update_time=fields["request_time"],
                   **fields)

    def mark_announced(self) -> None:
        """The order as it now stands is known to the feed (announced, or loaded): what changes from
        here on is the next event's news."""
        self.announced = self._snapshot()
        self.unannounced = []

    def _snapshot(self) -> WorkOrder:
        """The order's state now, without its history (what an event carries)."""
        return replace(self, assignments=[replace(a) for a in self.assignments], timeline=[], new_entries=[],
                       announced=None, unannounced=[])

    def _announce(self, action: str) -> None:
        """Records WorkOrderUpdated: the order as it now stands, as it was last announced, and the entries since."""
        now = self._snapshot()
        self.record(WorkOrderUpdated(order=now, before=self.announced, action=action,
                                     entries=tuple(self.unannounced)))
        self.announced, self.unannounced = now, []

    # -- reading -------------------------------------------------------------
    @property
    def where(self) -> tuple:
        """What the order's place depends on: its point, or else its station."""
        if self.lon is not None and self.lat is not None:
            return ("point", self.lon, self.lat)
        return ("station", self.station_id)

    def current(self) -> list[Assignment]:
        return [a for a in self.assignments if a.round == self.round and a.state != "WITHDRAWN"]

    def lead(self) -> Assignment | None:
        return next((a for a in self.current() if a.role == "LEAD"), None)

    def part_of(self, dept_id: str) -> Assignment:
        part = next((a for a in self.current() if a.dept_id == dept_id), None)
        if part is None:
            raise FailedPrecondition(f"{self.name} is not assigned to departments/{dept_id}",
                                     reason="NOT_ASSIGNED_TO_DEPARTMENT", metadata={"department": dept_id})
        return part

    def rejected_departments(self) -> frozenset[str]:
        return frozenset(a.dept_id for a in self.assignments if a.state == "REJECTED")

    def latest_feedback(self) -> str:
        done = [a for a in self.assignments if a.feedback]
        return max(done, key=lambda a: a.resolve_time).feedback if done else ""

    def check_transferable(self) -> None:
        """一键转接 needs an open order and a place for 110 to route the report to."""
        if self.status not in OPEN_STATUSES:
            raise FailedPrecondition(f"cannot transfer {self.name} in status {self.status}",
                                     reason="ILLEGAL_TRANSITION", metadata={"status": self.status})
        if self.lon is None and not self.address_text:
            raise FailedPrecondition(f"{self.name} has neither a location nor an address for 110",
                                     reason="NO_LOCATION")

    # -- changing ------------------------------------------------------------
    def _log(self, action: str, actor: AuthContext, now: datetime, detail: str = "", reason: str = "",
             department: str = "") -> None:
        entry = OrderEntry(action, actor.subject, sorted(actor.roles), now, detail, reason, department)
        self.timeline.append(entry)
        self.new_entries.append(entry)
        self.unannounced.append(entry)
        self.update_time = now

    def _require(self, allowed: set[str], verb: str) -> None:
        if self.status not in allowed:
            raise FailedPrecondition(
                f"cannot {verb} {self.name} in status {self.status}",
                reason="ILLEGAL_TRANSITION", metadata={"status": self.status, "action": verb})

    def _withdraw_current(self) -> None:
        for a in self.current():
            if a.state in DEPARTMENT_WORKING:
                a.state = "WITHDRAWN"

    def _recompute(self) -> None:
        current = self.current()
        lead = self.lead()
        if lead is not None and lead.state == "REJECTED":
            self.status = "REJECTED"
            return
        live = [a for a in current if a.state != "REJECTED"]
        if not live:
            self.status = "REJECTED"
        elif all(a.state == "RESOLVED" for a in live):
            self.status = "RESOLVED"
        elif any(a.state in ("IN_PROGRESS", "RESOLVED") for a in live):
            self.status = "IN_PROGRESS"
        elif all(a.state == "ACCEPTED" for a in live):
            self.status = "ACCEPTED"
        else:
            self.status = "ASSIGNED"

    def note(self, action: str, actor: AuthContext, now: datetime, detail: str, reason: str = "") -> None:
        """A timeline entry that changes nothing else (e.g. why it was routed so); the next event carries it."""
        self._log(action, actor, now, detail, reason)

    def route(self, departments: list[Department], place: Place | None, actor: AuthContext, now: datetime, *,
              routes: list[Route] | None = None, unclear_why: str = "") -> None:
        """Sends the order to its departments; when none is known, to the local station (先期处置).

        An order the routing cannot place and that has no location stays RECEIVED
        with the 12345 dispatch desk, which then assigns it by hand.
        """
        if routes is None and self.matter_code:
            routes = route_ordinary(self.matter_code, self.district, departments, self.rejected_departments())
        if routes:
            self.assign(routes, actor, now)
            return
        if not unclear_why:
            label = self.matter_code or "未明确事项"
            unclear_why = f"事项“{label}”在{self.district or '该区域'}暂无明确承办单位，职责待厘清"
        if place is not None:
            self.hand_to_police(place.station_id, place.station_name, unclear_why, actor, now)
        else:
            self.note("AWAITING_ASSIGNMENT", actor, now,
                      f"{unclear_why}，且无位置可交属地派出所先期处置，由12345派单席人工派单")

    def assign(self, routes: list[Route], actor: AuthContext, now: datetime, reason: str = "") -> None:
        self._require(ASSIGNABLE, "assign")
        if self.status in ("REOPENED",) or self.deadline is None:
            self.deadline = deadline_for(now, self.urgency)
            self.overdue = False
        self._withdraw_current()
        self.round += 1
        for r in routes:
            self.assignments.append(Assignment(
                dept_id=r.department.dept_id, dept_name=r.department.name, role=r.role, state="ASSIGNED",
                routing_reason=r.reason, assign_time=now, deadline=self.deadline, round=self.round))
            self._log("ASSIGNED", actor, now, f"派单至{r.department.name}（{'牵头' if r.role == 'LEAD' else '协办'}）：{r.reason}",
                      reason, r.department.resource_name)
        self.status = "ASSIGNED"
        self._announce("ASSIGNED")

    def hand_to_police(self, station_id: str, station_name: str, why: str, actor: AuthContext,
                       now: datetime) -> None:
        """先期处置: the station with jurisdiction handles it while responsibility is unclear."""
        self._require(ASSIGNABLE - {"PRELIMINARY_POLICE"}, "hand to the police station")
        if self.deadline is None:
            self.deadline = deadline_for(now, self.urgency)
        self._withdraw_current()
        self.preliminary_station = f"stations/{station_id}"
        self.preliminary_reason = why
        self.status = "PRELIMINARY_POLICE"
        self._log("PRELIMINARY_POLICE", actor, now, f"由{station_name or station_id}先期处置：{why}")
        self._announce("PRELIMINARY_POLICE")

    def accept(self, dept_id: str, actor: AuthContext, now: datetime) -> None:
        self._require({"ASSIGNED", "ACCEPTED", "IN_PROGRESS"}, "accept")
        part = self.part_of(dept_id)
        if part.state != "ASSIGNED":
            raise FailedPrecondition(f"departments/{dept_id} cannot accept its part in state {part.state}",
                                     reason="ILLEGAL_TRANSITION", metadata={"state": part.state})
        part.state, part.accept_time = "ACCEPTED", now
        self._recompute()
        self._log("ACCEPTED", actor, now, f"{part.dept_name}签收", department=part.department)
        self._announce("ACCEPTED")

    def reject(self, dept_id: str, why: str, suggested: str, actor: AuthContext, now: datetime) -> None:
        self._require({"ASSIGNED", "ACCEPTED", "IN_PROGRESS"}, "reject")
        part = self.part_of(dept_id)
        if part.state not in ("ASSIGNED", "ACCEPTED"):
            raise FailedPrecondition(f"departments/{dept_id} cannot reject its part in state {part.state}",
                                     reason="ILLEGAL_TRANSITION", metadata={"state": part.state})
        part.state, part.reject_reason = "REJECTED", why
        self._recompute()
        detail = f"{part.dept_name}退单：{why}"
        if suggested:
            detail += f"；建议改派{suggested}"
        self._log("REJECTED", actor, now, detail, why, part.department)
        self._announce("REJECTED")

    def start(self, dept_id: str, actor: AuthContext, now: datetime) -> None:
        self._require({"ACCEPTED", "IN_PROGRESS"}, "start")
        part = self.part_of(dept_id)
        if part.state != "ACCEPTED":
            raise FailedPrecondition(f"departments/{dept_id} must accept before starting (state {part.state})",
                                     reason="ILLEGAL_TRANSITION", metadata={"state": part.state})
        part.state, part.start_time = "IN_PROGRESS", now
        self._recompute()
        self._log("STARTED", actor, now, f"{part.dept_name}开始办理", department=part.department)
        self._announce("STARTED")

    def resolve(self, dept_id: str, feedback: str, attachments: list[dict], actor: AuthContext,
                now: datetime) -> None:
        self._require({"IN_PROGRESS"}, "resolve")
        part = self.part_of(dept_id)
        if part.state != "IN_PROGRESS":
            raise FailedPrecondition(f"departments/{dept_id} must be handling its part to resolve it "
                                     f"(state {part.state})", reason="ILLEGAL_TRANSITION",
                                     metadata={"state": part.state})
        part.state, part.resolve_time, part.feedback, part.attachments = "RESOLVED", now, feedback, attachments
        self._recompute()
        self._log("RESOLVED", actor, now, f"{part.dept_name}办结：{feedback}", department=part.department)
        self._announce("RESOLVED")

    def review(self, satisfaction: str, comment: str, supervisor: tuple[str, str] | None,
               actor: AuthContext, now: datetime) -> None:
        """回访: satisfied closes; unsatisfied reopens (重办), and repeated reopens escalate (督办)."""
        self._require({"RESOLVED"}, "review")
        self.satisfaction, self.satisfaction_comment = satisfaction, comment
        label = {"SATISFIED": "满意", "BASICALLY_SATISFIED": "基本满意", "UNSATISFIED": "不满意"}[satisfaction]
        self._log("REVIEWED", actor, now, f"市民回访：{label}" + (f"，“{comment}”" if comment else ""), comment)
        if satisfaction == "UNSATISFIED":
            self.reopen_count += 1
            self.status = "REOPENED"
            self._log("REOPENED", actor, now, f"市民不满意，第{self.reopen_count}次重办：{comment}", comment)
            if self.reopen_count >= rules.ESCALATE_AFTER_REOPENS and supervisor is not None:
                self.escalated_to_name, self.escalated_to_phone = supervisor
                self.escalate_time = now
                self._log("ESCALATED", actor, now,
                          f"重办{self.reopen_count}次，提级督办至承办单位负责人{supervisor[0]}", comment)
                self._announce("ESCALATED")
            else:
                self._announce("REOPENED")
        else:
            self.status, self.close_time = "CLOSED", now
            self._log("CLOSED", actor, now, "市民评价后办结归档")
            self._announce("CLOSED")

    def transfer_to_110(self, report: PoliceReport, why: str, actor: AuthContext, now: datetime) -> None:
        """一键转接: the order becomes the 110 report intake filed for it, whose progress it then follows."""
        self._require(OPEN_STATUSES, "transfer to 110")
        self._withdraw_current()
        self.transferred_report, self.status = report.name, "TRANSFERRED_TO_110"
        self._log("TRANSFERRED_TO_110", actor, now, f"一键转接110，生成接警单 {report.name}", why)
        self._follow_110(report, "REPORTED", actor, now)
        self._announce("TRANSFERRED_TO_110")

    def record_110_progress(self, report: PoliceReport, action: str, actor: AuthContext, now: datetime) -> bool:
        """The transferred report's status as intake announced it; False when nothing changed."""
        if not self._follow_110(report, action, actor, now):
            return False
        self._announce("POLICE_PROGRESS")
        return True

    def _follow_110(self, report: PoliceReport, action: str, actor: AuthContext, now: datetime) -> bool:
        if report.status == self.transferred_report_status:
            return False
        self.transferred_report_status = report.status
        self._log("POLICE_PROGRESS", actor, now, progress_detail(report, action))
        return True

    def close_as_unreasonable(self, record: str, category_label: str, reply: str, actor: AuthContext,
                              now: datetime) -> None:
        self._require(OPEN_STATUSES, "close as unreasonable")
        self._withdraw_current()
        self.unreasonable_request, self.status, self.close_time = record, "CLOSED", now
        self._log("CLOSED_UNREASONABLE", actor, now, f"属不合理不合规诉求（{category_label}），已规范答复：{reply}")
        self._announce("CLOSED_UNREASONABLE")

    def reopen_overturned(self, why: str, actor: AuthContext, now: datetime) -> None:
        if self.status != "CLOSED" or not self.unreasonable_request:
            raise FailedPrecondition(f"{self.name} was not closed as unreasonable",
                                     reason="ILLEGAL_TRANSITION", metadata={"status": self.status})
        self.status, self.close_time = "RECEIVED", None
        self.deadline = deadline_for(now, self.urgency)
        self._log("OVERTURNED", actor, now, f"督导改判为正常诉求，重新受理：{why}", why)
        self._announce("OVERTURNED")

    def mark_overdue(self, actor: AuthContext, now: datetime) -> bool:
        if self.overdue or self.status not in OPEN_STATUSES or self.deadline is None or self.deadline > now:
            return False
        self.overdue = True
        late = self.current()
        who = "、".join(a.dept_name for a in late if a.state in DEPARTMENT_WORKING) or "12345派单"
        self._log("OVERDUE", actor, now, f"已超过办理时限（{self.deadline.astimezone(CHINA):%Y-%m-%d %H:%M}），"
                                         f"当前承办：{who}")
        self._announce("OVERDUE")
        return True

    def flag_repeat(self, prior: int, same_matter: int, actor: AuthContext, now: datetime) -> None:
        self.prior_requests = prior
        if same_matter + 1 >= rules.REPEAT_THRESHOLD:
            self.repeat_caller = True
            hours = int(rules.REPEAT_WINDOW.total_seconds() // 3600)
            self._log("REPEAT_CALLER", actor, now, f"同一号码{hours}小时内第{same_matter + 1}次反映同一事项（重复来电）")


@dataclass(frozen=True)
class WorkOrderCreated(DomainEvent):
    """referral.WorkOrderCreated: the new order (as it was then) and the timeline recorded with it."""

    order: WorkOrder
    entries: tuple[OrderEntry, ...]


@dataclass(frozen=True)
class WorkOrderUpdated(DomainEvent):
    """referral.WorkOrderUpdated: the order as the change left it, as it was last announced or loaded
    (None: unknown), what was done, and the entries added since."""

    order: WorkOrder
    before: WorkOrder | None
    action: str
    entries: tuple[OrderEntry, ...]


# -- unreasonable requests (不合理不合规诉求) ---------------------------------------

@dataclass
class Verdict:
    unreasonable: bool
    category: str = ""
    reason: str = ""
    standard_reply: str = ""
    confidence: float = 0.0
    rule_ids: list[str] = field(default_factory=list)
    prior_requests: int = 0


def classify_request(description: str, prior_total: int = 0, prior_same_matter: int = 0) -> Verdict:
    """Rules as data (rules.UNREASONABLE_RULES); the first rule whose every keyword group hits decides."""
    fired: list[tuple[rules.UnreasonableRule, list[str]]] = []
    for rule in rules.UNREASONABLE_RULES:
        hits = []
        for group in rule.groups:
            hit = next((kw for kw in group if kw in description), None)
            if hit is None:
                break
            hits.append(hit)
        else:
            fired.append((rule, hits))
    if fired:
        rule, hits = fired[0]
        return Verdict(True, rule.category, rule.reason.format(*hits),
                       rules.STANDARD_REPLY[rule.category], 0.9 if len(rule.groups) > 1 else 0.8,
                       [r.rule_id for r, _ in fired], prior_total)
    if prior_same_matter >= rules.MALICIOUS_REPEAT_THRESHOLD:
        days = rules.PRIOR_WINDOW.days
        return Verdict(True, "MALICIOUS_REPEATED",
                       f"同一号码{days}天内已就同一事项反映{prior_same_matter}次，疑似恶意重复诉求，请核实此前答复",
                       rules.STANDARD_REPLY["MALICIOUS_REPEATED"], 0.6, ["ur-repeat"], prior_total)
    return Verdict(False, prior_requests=prior_total)


@dataclass
class UnreasonableRecord(Aggregate):
    id: str
    description: str
    category: str
    reason: str
    standard_reply: str
    state: str
    create_time: datetime
    record_actor: str
    record_roles: list[str]
    work_order: str = ""
    citizen_phone: str = ""
    citizen_name: str = ""
    typical_case: bool = False
    prior_requests: int = 0
    overturn_actor: str = ""
    overturn_roles: list[str] = field(default_factory=list)
    overturn_time: datetime | None = None
    overturn_reason: str = ""

    @property
    def name(self) -> str:
        return f"unreasonableRequests/{self.id}"

    @classmethod
    def create(cls, fields: dict, *, prior_requests: int, actor: AuthContext, now: datetime) -> UnreasonableRecord:
        """A request recorded as unreasonable, with the standard reply of its category unless one is given."""
        record = cls(id=new_id(now), state="RECORDED", create_time=now, record_actor=actor.subject,
                     record_roles=sorted(actor.roles), prior_requests=prior_requests, **fields)
        record.standard_reply = record.standard_reply or rules.STANDARD_REPLY[record.category]
        record.record(UnreasonableRequestRecorded(record, "RECORDED"))
        return record

    def overturn(self, why: str, actor: AuthContext, now: datetime) -> None:
        """A supervisor overturns the record (改判): the request is to be handled after all."""
        if self.state != "RECORDED":
            raise FailedPrecondition(f"{self.name} was already overturned", reason="ILLEGAL_TRANSITION",
                                     metadata={"state": self.state})
        self.state, self.overturn_actor, self.overturn_roles = "OVERTURNED", actor.subject, sorted(actor.roles)
        self.overturn_time, self.overturn_reason = now, why
        self.record(UnreasonableRequestRecorded(self, "OVERTURNED"))


@dataclass(frozen=True)
class UnreasonableRequestRecorded(DomainEvent):
    """referral.UnreasonableRequestRecorded (action RECORDED or OVERTURNED): the record as the unit of
    work commits it (a record changes once in a unit of work, so this is the record the change left)."""

    record: UnreasonableRecord
    action: str


_PHONE = re.compile(r"(?<!\d)(1[3-9]\d{9}|0\d{2,3}-?\d{7,8})(?!\d)")
_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_PLATE = re.compile(r"[京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼][A-Z]·?[A-Z0-9]{5,6}")
_ADDRESS = re.compile(r"[\u4e00-\u9fa5]{1,10}(?:路|街|大道|巷)\d+号(?:[\u4e00-\u9fa5A-Za-z0-9]{0,12}(?:栋|单元|室|楼))*")
_COMMUNITY = re.compile(r"[\u4e00-\u9fa5]{2,8}(?:小区|花园|公寓|家园)")
_TITLE = re.compile(r"[\u4e00-\u9fa5](?:先生|女士|师傅|老师|阿姨)")
_DIGITS = re.compile(r"\d{5,}")


def anonymise(text: str, citizen_name: str = "") -> str:
    """A description fit for publication: no names, numbers, addresses or ids."""
    out = text
    if citizen_name:
        out = out.replace(citizen_name, "某市民")
    out = _ID_NUMBER.sub("[身份证号]", out)
    out = _PHONE.sub("[电话]", out)
    out = _PLATE.sub("[车牌]", out)
    out = _ADDRESS.sub("[地址]", out)
    out = _COMMUNITY.sub("某小区", out)
    out = _TITLE.sub(lambda m: "某" + m.group(0)[1:], out)
    out = _DIGITS.sub("[数字]", out)
    return out


def typical_case_id(record_id: str) -> str:
    """A public id that does not reveal the record's id."""
    return hashlib.sha256(f"typical-case:{record_id}".encode()).hexdigest()[:16]


# -- figures per department ------------------------------------------------------

@dataclass
class Figures:
    dept_id: str
    dept_name: str
    assigned: int = 0
    rejected: int = 0
    resolved: int = 0
    on_time: int = 0
    reviewed: int = 0
    satisfied: int = 0
    reopened: int = 0
    resolve_seconds: float = 0.0

    @property
    def completion_rate(self) -> float:
        base = self.assigned - self.rejected
        return self.resolved / base if base > 0 else 0.0

    @property
    def on_time_rate(self) -> float:
        return self.on_time / self.resolved if self.resolved else 0.0

    @property
    def satisfaction_rate(self) -> float:
        return self.satisfied / self.reviewed if self.reviewed else 0.0

    @property
    def reopen_rate(self) -> float:
        return self.reopened / self.resolved if self.resolved else 0.0

    @property
    def mean_resolve_seconds(self) -> float:
        return self.resolve_seconds / self.resolved if self.resolved else 0.0


def department_figures(parts: list[dict], reviews: list[dict], departments: list[Department]) -> list[Figures]:
    """Figures from assignments (dicts with dept_id, work_order_id, state, assign_time, resolve_time,
    deadline) and reviews of orders each department led (dept_id, work_order_id, satisfaction).

    An order counts once per department: its latest part there decides.
    """
    names = {d.dept_id: d.name for d in departments}
    figures: dict[str, Figures] = {}
    latest: dict[tuple[str, str], dict] = {}
    for p in parts:
        if p["state"] == "WITHDRAWN":
            continue
        key = (p["dept_id"], p["work_order_id"])
        if key not in latest or p["assign_time"] >= latest[key]["assign_time"]:
            latest[key] = p
    resolved_orders: dict[str, set[str]] = {}
    for (dept_id, order_id), p in latest.items():
        f = figures.setdefault(dept_id, Figures(dept_id, names.get(dept_id, dept_id)))
        f.assigned += 1
        if p["state"] == "REJECTED":
            f.rejected += 1
        elif p["state"] == "RESOLVED":
            f.resolved += 1
            resolved_orders.setdefault(dept_id, set()).add(order_id)
            if p["deadline"] is None or p["resolve_time"] <= p["deadline"]:
                f.on_time += 1
            f.resolve_seconds += (p["resolve_time"] - p["assign_time"]).total_seconds()
    reopened: dict[str, set[str]] = {}
    for r in reviews:
        f = figures.setdefault(r["dept_id"], Figures(r["dept_id"], names.get(r["dept_id"], r["dept_id"])))
        f.reviewed += 1
        if r["satisfaction"] in ("SATISFIED", "BASICALLY_SATISFIED"):
            f.satisfied += 1
        else:
            reopened.setdefault(r["dept_id"], set()).add(r["work_order_id"])
    for dept_id, orders in reopened.items():
        figures[dept_id].reopened = len(orders & resolved_orders.get(dept_id, set()))
    return sorted(figures.values(), key=lambda f: f.dept_id)
