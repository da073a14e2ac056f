"""The work order (工单) aggregate: its lifecycle from receipt through routing, the departments'
steps, follow-up, transfer to 110 and closing, and the events it records (`WorkOrderCreated`,
`WorkOrderUpdated`), which the unit of work publishes at commit."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime

from services.runtime import labels
from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition
from services.runtime.ids import new_id
from services.runtime.model import Aggregate, DomainEvent, TimelineEntry

from .. import rules
from . import police_cases
from .departments import CHINA, Department, Route, deadline_for, matter_labels, route_ordinary
from .police_cases import PoliceCaseNews
from .reports import PROGRESS_ACTIONS, Place, PoliceReport, progress_detail

# Who referral's own changes are made by: a consumed 110 report, the overdue sweeper.
SYSTEM = AuthContext(subject="referral", roles=frozenset({"service"}))

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


def attributes_text(values: list[dict]) -> str:
    """Service attribute answers in words: "井盖现状：缺失；井盖位于：机动车道"."""
    return "；".join(f"{a['description']}：{a['value_text']}" for a in values)


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
    # The answers to the service definition's attributes (Open311), in its order:
    # [{"code", "description", "value", "value_text"}].
    service_attributes: list[dict] = field(default_factory=list)
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
        if order.service_attributes:
            order._log("SERVICE_ATTRIBUTES", actor, now, f"市民填写的事项信息：{attributes_text(order.service_attributes)}")
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

    def add_citizen_update(self, detail: str, media_url: str, actor: AuthContext, now: datetime) -> None:
        """A citizen's update posted through Open311 (市民补充说明), for the departments to read, its
        picture (a link) among the attachments; it changes nothing else: a citizen's "fixed" does not
        close the order, the follow-up (回访) does."""
        if media_url:
            self.attachments = [*self.attachments, dict(kind="IMAGE", content_type="", size_bytes=0, sha256="",
                                                        storage_uri=media_url)]
        self._log("CITIZEN_UPDATE", actor, now, detail)
        self._announce("CITIZEN_UPDATE")

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
            label = (matter_labels(departments).get(self.matter_code) or labels.incident_type_label(self.matter_code)
                     or "未明确事项")
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
        label = labels.SATISFACTION_LABELS[satisfaction]
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
        """Keeps a new status of the transferred report, or news that keeps it (an officer on scene)."""
        if report.status == self.transferred_report_status and action not in PROGRESS_ACTIONS:
            return False
        self.transferred_report_status = report.status
        self._log("POLICE_PROGRESS", actor, now, progress_detail(report, action))
        return True

    def follow_police_case(self, news: PoliceCaseNews, actor: AuthContext, now: datetime) -> bool:
        """先期处置: the station's case for this order moved on (opened, a unit accepted, on scene,
        reported back, closed or cancelled); kept on the timeline. A case closed with an outcome
        that settles the request resolves an order still with the police (RESOLVED: the citizen's
        follow-up is next); one handed on, or cancelled, leaves it to the 12345 desk's assignment.
        False when the news is known already (nothing changed)."""
        seen = {(e.action, e.detail) for e in self.timeline}
        closed_before = any(e.action == police_cases.TIMELINE_ACTIONS[police_cases.CLOSED] for e in self.timeline)
        fresh = [(action, detail) for action, detail in police_cases.entries_of(news)
                 if (action, detail) not in seen
                 and not (closed_before and action == police_cases.TIMELINE_ACTIONS[police_cases.CLOSED])]
        if not fresh:
            return False
        for action, detail in fresh:
            self._log(action, actor, now, detail)
        if news.resolves and not closed_before and self.status == "PRELIMINARY_POLICE":
            self.status = "RESOLVED"
        self._announce(fresh[-1][0])
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
