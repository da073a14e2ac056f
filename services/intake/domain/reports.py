"""The report aggregate (警情): recorded from any channel, located, classified and checked for a
duplicate or a consultation at intake, corrected by the call-taker, answered, rated, merged and
un-merged, then following its dispatch case or 12345 work order until it closes.

Every change appends to the report's timeline (全程留痕) and records the event that announces it:
`IncidentReported` once intake is done, `ReportUpdated` for each change after, with the report as it
stood before (the event says which fields changed) and the entries the change appended, and
`KnowledgeEntryAdded` when an expert's answer joins the knowledge base. Pure: no database, no gRPC.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from services.runtime import language
from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, InvalidArgument
from services.runtime.model import Aggregate, DomainEvent, TimelineEntry

from .. import knowledge, rules
from ..classifier.evidence import ASKED_ABOUT
from ..duplicates import MERGEABLE_CATEGORIES, DuplicateOf
from ..knowledge import Consultation, Entry
from .classification import CATEGORY_LABELS, Classification, LabelledExample, classify
from .places import AddressMatch

STATUS_BY_CATEGORY = {
    "POLICE": "CLASSIFIED",
    "NON_POLICE": "CLASSIFIED",
    "CONSULTATION": "CLASSIFIED",
    "INVALID": "CLOSED",
}
# A report a call-taker may still merge: recorded, not yet handed anywhere.
MERGEABLE_STATUSES = ("RECEIVED", "CLASSIFIED")
# A report in these states has left intake; its category can no longer change here.
SETTLED = {"ASSIGNING", "DISPATCHED", "REFERRED", "ANSWERED"}
# A report whose case waits for an officer, or not handed anywhere yet: the first acceptance makes it DISPATCHED.
BEFORE_DISPATCH = (*MERGEABLE_STATUSES, "ASSIGNING")
# Report fields a call-taker may correct, by update_mask path.
CORRECTABLE = ("classification", "classification.category", "classification.incident_type",
               "classification.priority", "location", "address_text", "address_code")
SATISFACTION_WORDS = {"SATISFIED": "满意", "BASICALLY_SATISFIED": "基本满意", "UNSATISFIED": "不满意"}
# Intake itself, in the timeline of what the dispatch and referral feeds tell it.
SYSTEM = AuthContext(subject="intake", roles=frozenset({"service"}))
_METHOD_LABELS = {"EXACT_CODE": "地址编码精确匹配", "EXACT_TEXT": "地址文本精确匹配", "FUZZY_TEXT": "地址文本模糊匹配"}


def entry(action: str, actor: AuthContext, now: datetime, detail: str = "", reason: str = "") -> TimelineEntry:
    """A timeline entry stamped with who (subject and roles) and when."""
    return TimelineEntry(action, actor.subject, sorted(actor.roles), now, detail, reason)


@dataclass
class Attachment:
    kind: str
    content_type: str
    size_bytes: int
    sha256: str
    storage_uri: str


@dataclass
class Report(Aggregate):
    id: str
    channel: str
    caller_phone: str
    caller_name: str
    lon: float | None
    lat: float | None
    accuracy_m: float
    location_source: str
    address_text: str
    description: str
    attachments: list[Attachment]
    language: str
    classification: Classification | None
    status: str
    station_id: str
    grid_id: str
    border_case: bool
    merged_into: str
    receive_time: datetime
    answer_time: datetime | None
    classify_time: datetime | None
    hand_off_time: datetime | None
    satisfaction: str
    create_time: datetime
    update_time: datetime
    timeline: list[TimelineEntry] = field(default_factory=list)
    # What happened after intake.
    consultation: Consultation | None = None
    duplicates: list[str] = field(default_factory=list)
    merge_reason: str = ""
    dispatch_case: str = ""
    work_order: str = ""
    satisfaction_comment: str = ""
    address_code: str = ""
    address_match: AddressMatch | None = None
    rate_time: datetime | None = None
    # A border case's neighbouring stations (边界警情): they see the report as their own.
    shared_station_ids: list[str] = field(default_factory=list)
    # When the first officer of its case arrived on scene (到达现场).
    on_scene_time: datetime | None = None

    @property
    def stations(self) -> tuple[str, ...]:
        """The stations whose police see this report: its own and, for a border case, its neighbours."""
        return (self.station_id, *self.shared_station_ids)

    @property
    def name(self) -> str:
        return f"reports/{self.id}"

    @property
    def silent(self) -> bool:
        """A silent alarm (无声报警): the caller cannot speak."""
        return self.channel == "SILENT_ALARM"

    @property
    def voice_callback_allowed(self) -> bool:
        return not self.silent

    # -- intake --------------------------------------------------------------------

    @classmethod
    def received(cls, report_id: str, fields: dict, *, actor: AuthContext, now: datetime) -> Report:
        """A new report from validated plain values, REPORTED (and FLAGGED when silent) in its timeline."""
        report = cls(
            id=report_id, channel=fields["channel"], caller_phone=fields["caller_phone"],
            caller_name=fields["caller_name"], lon=fields["lon"], lat=fields["lat"], accuracy_m=fields["accuracy_m"],
            location_source=fields["location_source"], address_text=fields["address_text"],
            description=fields["description"], attachments=fields["attachments"],
            language=fields["language"] or "zh-CN", classification=None, status="RECEIVED", station_id="",
            grid_id="", border_case=False, merged_into="", receive_time=fields["receive_time"] or now,
            answer_time=None, classify_time=None, hand_off_time=None, satisfaction="", create_time=now,
            update_time=now, timeline=[], address_code=fields.get("address_code", ""),
        )
        report._log("REPORTED", actor, now, f"渠道 {fields['channel']}")
        if report.silent:
            report._log("FLAGGED", actor, now, "无声报警：报警人无法通话，仅限文字联系，禁止语音回拨")
        return report

    def locate(self, index, gazetteer, *, actor: AuthContext, now: datetime) -> None:
        """Point → station and grid (就近、属地) through the jurisdiction index; a report with only an
        address goes through the gazetteer (`gazetteer.match(code=, text=)` → AddressMatch) first."""
        if self.lon is None and (self.address_text or self.address_code):
            match = gazetteer.match(code=self.address_code, text=self.address_text)
            self.address_match = match
            if match.method == "STREET":
                a = match.address
                self.station_id, self.grid_id, self.border_case = a.station_id, "", False
                self.shared_station_ids = []
                self._log("GEOCODED", actor, now, (
                    f"地址“{self.address_text}”未匹配到门牌，按所述街道（{a.street}）定位至 {a.station_id} 辖区，"
                    f"最接近 {a.full_address}（置信度 {match.confidence:.2f}），待接警员确认具体位置"))
                self._log("ROUTED", actor, now, f"属地 {a.station_id}（按街道）")
                return
            if match.method != "NO_MATCH":
                a = match.address
                self.lon, self.lat, self.location_source = a.lon, a.lat, "GAZETTEER"
                self._log("GEOCODED", actor, now, (
                    f"标准地址 {a.full_address}（{a.code}），{_METHOD_LABELS[match.method]}，置信度 {match.confidence:.2f}"))
            else:
                best = f"，最接近 {match.address.full_address}（置信度 {match.confidence:.2f}）" if match.address else ""
                self._log("GEOCODED", actor, now, f"地址“{self.address_text or self.address_code}”未能匹配标准地址{best}，"
                                                  "待接警员确认位置")
        self.station_id = self.grid_id = ""
        self.border_case = False
        self.shared_station_ids = []
        if self.lon is None:
            return
        located = index.locate(self.lon, self.lat)
        if located is None:
            return
        self.station_id, self.grid_id, self.border_case = located.station_id, located.grid_id, located.border_case
        self.shared_station_ids = list(located.shared_station_ids)
        where = f"属地 {located.station_name}（{located.station_id}）网格 {located.grid_id}"
        if located.border_case:
            where += f"；边界警情，距辖区 {located.distance_m:.0f} 米，按最近派出所"
        if self.shared_station_ids:
            where += f"；同步相邻派出所 {'、'.join(self.shared_station_ids)}"
        self._log("ROUTED", actor, now, where)

    @property
    def repeat_invalid_since(self) -> datetime:
        """Invalid calls from the caller's number since this time count against this report."""
        return self.receive_time - timedelta(minutes=rules.REPEAT_INVALID.window_minutes)

    def classify_by_rules(self, *, recent_invalid_calls: int, actor: AuthContext, now: datetime) -> None:
        """Category, type and priority from the rule tables, with repeated invalid calls counted."""
        self.classification = classify(self.description, self.channel, at=self.receive_time,
                                       recent_invalid_calls=recent_invalid_calls)
        self.classify_time = now
        self.status = STATUS_BY_CATEGORY[self.classification.category]
        self._log("CLASSIFIED", actor, now, self.classification.reason)

    def merge_at_intake(self, found: DuplicateOf, *, actor: AuthContext, now: datetime) -> None:
        """A duplicate of an open incident is merged into it as it is recorded."""
        self.status = "MERGED"
        self.merged_into = found.master_id
        self.merge_reason = f"自动合并：{found.reason}"
        self._log("MERGED", actor, now, f"合并至主警情 reports/{found.master_id}：{found.reason}")

    @property
    def is_consultation(self) -> bool:
        return self.classification is not None and self.classification.category == "CONSULTATION"

    @property
    def asks_about_a_service(self) -> bool:
        """A question about a service matter (护照怎么办, 身份证丢了去哪补): the knowledge base may answer it."""
        c = self.classification
        return c is not None and c.category == "NON_POLICE" and c.incident_type in ASKED_ABOUT \
            and bool(language.asks(self.description))

    def answer_question(self, c: Consultation, *, actor: AuthContext, now: datetime) -> bool:
        """A question about a service matter that the knowledge base answers at once is a consultation
        on its topic, answered (即问即复); otherwise it stays the 12345 matter it is."""
        if c.status != "ANSWERED":
            return False
        topic = ASKED_ABOUT[self.classification.incident_type]
        self.classification = replace(
            self.classification, category="CONSULTATION", incident_type=topic,
            rule_ids=[*self.classification.rule_ids, "question-answered"],
            reason=f"{self.classification.reason}；来电是在询问，知识库可即时答复（{c.entry_id}），"
                   f"改为咨询“{rules.INCIDENT_TYPES[topic].label}”")
        self.status = STATUS_BY_CATEGORY["CONSULTATION"]
        self.consult(c, actor=actor, now=now)
        return True

    def consult(self, c: Consultation, *, actor: AuthContext, now: datetime) -> None:
        """A consultation is answered at once from the knowledge base (即问即复) or queued for an expert."""
        self.consultation = c
        if c.status == "ANSWERED":
            self.status = "ANSWERED"
            self.answer_time = self.answer_time or now
            self._log("CONSULTATION_ANSWERED", actor, now,
                      f"即问即复：知识库条目 {c.entry_id}（{c.topic}），匹配度 {c.score:.2f}")
        else:
            self._log("CONSULTATION_QUEUED", actor, now,
                      f"知识库无足够匹配（最高 {c.score:.2f}），转为民服务圈专家答复")

    def reported(self) -> None:
        """Intake is done: records IncidentReported, the report with every entry recorded with it."""
        self.record(IncidentReported(self._view(), tuple(self.timeline)))

    # -- corrections by the call-taker (UpdateReport) ----------------------------------

    def correct(self, *, paths: list[str], changes: dict, reason: str, index, gazetteer, actor: AuthContext,
                now: datetime) -> bool:
        """Applies a call-taker's field-masked correction, kept in the timeline as CORRECTED (old → new);
        a report moved or re-addressed is located again, one corrected into or out of a consultation
        joins or leaves the expert queue. False when the correction changes nothing."""
        if self.status == "MERGED":
            raise FailedPrecondition(f"reports/{self.id} is merged into {self.merged_into}; correct the master report",
                                     reason="REPORT_MERGED")
        before = self._view()
        old_c = self.classification
        details: list[str] = []
        wanted = set(paths)
        if "classification" in wanted:
            wanted |= {"classification.category", "classification.incident_type", "classification.priority"}
        new_c = replace(old_c)
        if "classification.category" in wanted:
            new_c.category = changes["category"]
        if "classification.incident_type" in wanted:
            new_c.incident_type = changes["incident_type"]
        if "classification.priority" in wanted:
            new_c.priority = changes["priority"]
        _check_classification(new_c, wanted)
        if new_c.category != old_c.category and self.status in SETTLED:
            raise FailedPrecondition(f"reports/{self.id} is {self.status.lower()}; its category can no longer change",
                                     reason="REPORT_SETTLED")
        for label, attr in (("类别", "category"), ("类型", "incident_type"), ("等级", "priority")):
            old, new = getattr(old_c, attr), getattr(new_c, attr)
            if old != new:
                details.append(f"{label} {_label(attr, old)} → {_label(attr, new)}")
        relocate = False
        if "location" in wanted:
            lon, lat = changes["lon"], changes["lat"]
            if (lon, lat) != (self.lon, self.lat) or changes["accuracy_m"] != self.accuracy_m:
                details.append(f"位置 {_point(self.lon, self.lat)} → {_point(lon, lat)}")
                self.lon, self.lat = lon, lat
                self.accuracy_m = changes["accuracy_m"]
                self.location_source = changes["location_source"] or "CALL_TAKER"
                self.address_match = None
                relocate = True
        for path, label in (("address_text", "地址"), ("address_code", "地址编码")):
            if path in wanted and changes[path] != getattr(self, path):
                details.append(f"{label} “{getattr(self, path)}” → “{changes[path]}”")
                setattr(self, path, changes[path])
                # A point the caller or call-taker gave stands; one found from the old address is found again.
                if "location" not in wanted and self.location_source in ("", "GAZETTEER"):
                    self.lon = self.lat = None
                    self.location_source = ""
                    relocate = True
        if not details:
            return False
        if new_c != old_c:
            new_c.corrected = True
            new_c.confidence, new_c.needs_confirmation = 1.0, False
            new_c.reason = f"接警员更正：{reason}（原判：{self._rules_reason(old_c)}）"
            self.classification = new_c
            if self.status in STATUS_BY_CATEGORY.values() or self.status == "RECEIVED":
                self.status = STATUS_BY_CATEGORY[new_c.category]
        entries = [self._log("CORRECTED", actor, now, "；".join(details), reason)]
        if relocate:
            start = len(self.timeline)
            self.locate(index, gazetteer, actor=actor, now=now)
            entries += self.timeline[start:]
        self.update_time = now
        entries += self._consultation_follows(old_c.category, actor=actor, now=now)
        self._updated("CORRECTED", before, entries)
        return True

    def labelled_example(self, before: Classification, *, reason: str, actor: AuthContext,
                         now: datetime) -> LabelledExample | None:
        """The correction of `before` into the report's classification as a labelled example for
        training, when it changed the category, type or priority."""
        c = self.classification
        if (c.category, c.incident_type, c.priority) == (before.category, before.incident_type, before.priority):
            return None
        return LabelledExample(self.id, self.description, self.channel, c.category, c.incident_type, c.priority,
                               before.category, before.incident_type, before.priority,
                               before.classifier_version, actor.subject, reason, now)

    def _consultation_follows(self, old_category: str, *, actor: AuthContext, now: datetime) -> list[TimelineEntry]:
        """A report corrected into a consultation joins the expert queue; one corrected out of it leaves;
        a question still waiting in a station's queue follows its report routed to another station."""
        new_category = self.classification.category
        current = self.consultation
        if new_category == old_category:
            if (current is not None and current.status == "QUEUED" and self.station_id
                    and current.station_id != self.station_id):
                old_station, current.station_id = current.station_id, self.station_id
                return [self._log("CONSULTATION_MOVED", actor, now,
                                  f"随报警改派，由 {old_station} 的专家答复队列转至 {self.station_id}")]
            return []
        if new_category == "CONSULTATION" and current is None:
            self.consultation = Consultation(report_id=self.id, question=self.description, status="QUEUED",
                                             station_id=self.station_id, create_time=now)
            return [self._log("CONSULTATION_QUEUED", actor, now, "更正为咨询，转为民服务圈专家答复")]
        if old_category == "CONSULTATION" and current is not None and current.status != "ANSWERED":
            self.consultation = None
            return [self._log("CONSULTATION_WITHDRAWN", actor, now, "更正为非咨询，撤出专家答复队列")]
        return []

    def _rules_reason(self, c: Classification) -> str:
        """Why the rules classified the report as they did (原判), however often it was corrected since.

        The reason of a corrected classification quotes this, not the last correction's reason, so it
        stays the same size after any number of corrections; each correction's words are in the timeline.
        """
        if not c.corrected:
            return c.reason
        return next((e.detail for e in self.timeline if e.action == "CLASSIFIED"), c.reason)

    # -- the call answered, the citizen's rating ----------------------------------------

    def answer(self, *, actor: AuthContext, now: datetime) -> float:
        """Stamps the time a call-taker answered the report (once); returns the seconds it took."""
        if self.answer_time is not None:
            raise FailedPrecondition(f"{self.name} was already answered at {self.answer_time.isoformat()}",
                                     reason="ALREADY_ANSWERED")
        before = self._view()
        answered = max(now, self.receive_time)
        seconds = (answered - self.receive_time).total_seconds()
        self.answer_time, self.update_time = answered, now
        self._updated("ANSWERED", before, [self._log("ANSWERED", actor, now, f"接警员应答，用时 {seconds:.1f} 秒")])
        return seconds

    def rate(self, *, satisfaction: str, comment: str, actor: AuthContext, now: datetime) -> None:
        """Records the citizen's satisfaction with the intake, once per report."""
        if self.satisfaction:
            raise FailedPrecondition(f"{self.name} was already rated {self.satisfaction}", reason="ALREADY_RATED")
        before = self._view()
        self.satisfaction, self.satisfaction_comment, self.rate_time, self.update_time = \
            satisfaction, comment, now, now
        detail = f"群众评价：{SATISFACTION_WORDS[satisfaction]}" + (f"（{comment}）" if comment else "")
        self._updated("RATED", before, [self._log("RATED", actor, now, detail)])

    # -- merge and un-merge by a call-taker -----------------------------------------------

    def merge_into(self, master: Report, *, reason: str, actor: AuthContext, now: datetime,
                   leaving: Report | None = None) -> None:
        """The call-taker merges this report into `master`: both say so in their timelines.

        A report merged automatically into the earliest incident it repeats is moved to another
        incident of the call-taker's choice when `leaving` is the master it is merged into now: that
        one unlinks it."""
        moving = bool(self.merged_into) and leaving is not None and leaving.id == self.merged_into \
            and master.id != self.merged_into
        if self.merged_into and not moving:
            raise FailedPrecondition(f"{self.name} is already merged into reports/{self.merged_into}",
                                     reason="ALREADY_MERGED", metadata={"master": f"reports/{self.merged_into}"})
        if master.merged_into:
            raise FailedPrecondition(
                f"{master.name} is itself merged into reports/{master.merged_into}; merge into that report",
                reason="MASTER_IS_MERGED", metadata={"master": f"reports/{master.merged_into}"})
        if self.duplicates:
            raise FailedPrecondition(f"{self.name} is the master of {len(self.duplicates)} reports; "
                                     "merge those into the new master first", reason="REPORT_IS_MASTER")
        category = self.classification.category
        if category not in MERGEABLE_CATEGORIES or master.classification.category != category:
            raise FailedPrecondition(
                f"only police or non-police reports of the same category merge; {self.name} is {category}, "
                f"{master.name} is {master.classification.category}", reason="CATEGORY_MISMATCH")
        if not moving and self.status not in MERGEABLE_STATUSES:
            raise FailedPrecondition(f"{self.name} is {self.status} and already handled; it cannot be merged",
                                     reason="REPORT_IN_HANDLING", metadata={"status": self.status})
        before = self._view()
        detail = f"合并至主警情 {master.name}"
        if moving:
            leaving.unlink_duplicate(self.id, reason=reason, actor=actor, now=now)
            detail = f"由 {leaving.name} 改为合并至主警情 {master.name}"
        self.status, self.merged_into, self.merge_reason, self.update_time = \
            "MERGED", master.id, f"接警员合并：{reason}", now
        master.link_duplicate(self.id, reason=reason, actor=actor, now=now)
        self._updated("MERGED", before, [self._log("MERGED", actor, now, detail, reason)])

    def link_duplicate(self, duplicate_id: str, *, reason: str = "", actor: AuthContext, now: datetime) -> None:
        """A duplicate was merged into this report (at intake or by a call-taker)."""
        before = self._view()
        self.update_time = now
        if duplicate_id not in self.duplicates:
            self.duplicates.append(duplicate_id)
        self._updated("DUPLICATE_LINKED", before, [self._log(
            "DUPLICATE_LINKED", actor, now, f"重复警情 reports/{duplicate_id} 已合并至本警情", reason)])

    def master_to_leave(self) -> str:
        """The id of the report this one is merged into; refused when it is merged into none."""
        if not self.merged_into:
            raise FailedPrecondition(f"{self.name} is not merged", reason="NOT_MERGED")
        return self.merged_into

    def unmerge(self, master: Report, *, reason: str, actor: AuthContext, now: datetime) -> None:
        """The report becomes its own incident again; its ReportUpdated "UNMERGED" asks for handling."""
        master_id = self.master_to_leave()
        before = self._view()
        self.status, self.merged_into, self.merge_reason, self.update_time = "CLASSIFIED", "", "", now
        master.unlink_duplicate(self.id, reason=reason, actor=actor, now=now)
        self._updated("UNMERGED", before, [self._log(
            "UNMERGED", actor, now, f"撤销合并，与 reports/{master_id} 分开，作为独立警情处理", reason)])

    def unlink_duplicate(self, duplicate_id: str, *, reason: str, actor: AuthContext, now: datetime) -> None:
        before = self._view()
        self.update_time = now
        if duplicate_id in self.duplicates:
            self.duplicates.remove(duplicate_id)
        self._updated("DUPLICATE_UNLINKED", before, [self._log(
            "DUPLICATE_UNLINKED", actor, now, f"reports/{duplicate_id} 撤销合并，作为独立警情处理", reason)])

    # -- the expert queue (为民服务圈) ---------------------------------------------------------

    def _queued_consultation(self) -> Consultation:
        return knowledge.require(self.consultation, f"consultations/{self.id}")

    def claim_consultation(self, *, actor: AuthContext, now: datetime) -> Consultation:
        """An expert officer takes the report's queued consultation."""
        c = self._queued_consultation()
        before = self._view()
        step = knowledge.claim(c, actor, now)
        self.update_time = now
        self.timeline.append(step)
        self._updated("CONSULTATION_CLAIMED", before, [step])
        return c

    def answer_consultation(self, *, text: str, topic: str, question: str, keywords: list[str], entry_id: str,
                            actor: AuthContext, now: datetime) -> Entry:
        """The expert who claimed it answers: the answer goes to the citizen (the report is ANSWERED) and
        joins the knowledge base as entry `entry_id`, which is returned."""
        c = self._queued_consultation()
        before = self._view()
        step = knowledge.answer(c, actor, text=text, entry_id=entry_id, topic=topic, now=now)
        added = knowledge.expert_entry(c, entry_id=entry_id, topic=topic, question=question, text=text,
                                       keywords=keywords, now=now)
        self.status, self.update_time = "ANSWERED", now
        if self.answer_time is None:
            self.answer_time = now
        self.timeline.append(step)
        self._updated("CONSULTATION_ANSWERED", before, [step])
        self.record(KnowledgeEntryAdded(added))
        return added

    # -- following the dispatch case and the 12345 work order ---------------------------------

    def case_opened(self, case_name: str, *, now: datetime) -> None:
        """dispatch.CaseCreated: the report is linked to its case and is ASSIGNING (派警中) until an
        officer accepts."""
        before = self._view()
        self.dispatch_case = case_name
        if self.status in MERGEABLE_STATUSES:
            self._move(before, "ASSIGNING", "CASE_OPENED", f"已生成处警单 {case_name}，等待民警接单", now)

    def assignment_accepted(self, unit: str, accept_time: datetime | None, *, now: datetime) -> None:
        """The first acceptance of an assignment of its case stamps the hand-off to an officer (交给民警)
        and makes the report DISPATCHED (已派警)."""
        if self.hand_off_time is not None:
            return
        before = self._view()
        handed = accept_time or now
        seconds = (handed - self.receive_time).total_seconds()
        self.hand_off_time = handed
        status = "DISPATCHED" if self.status in BEFORE_DISPATCH else self.status
        self._move(before, status, "HANDED_OFF", f"民警接单（{unit}），距接报 {seconds:.0f} 秒", now)

    def assignment_on_scene(self, unit: str, arrive_time: datetime | None, *, now: datetime) -> None:
        """The first unit of its case on scene stamps the arrival (到达现场); the status stays."""
        if self.on_scene_time is not None:
            return
        before = self._view()
        arrived = arrive_time or now
        seconds = (arrived - self.receive_time).total_seconds()
        self.on_scene_time = arrived
        if self.status in BEFORE_DISPATCH:  # the acceptance's news is still on its way
            self.status = "DISPATCHED"
        self._move(before, self.status, "ON_SCENE", f"民警到达现场（{unit}），距接报 {seconds:.0f} 秒", now)

    def case_changed(self, case_name: str, *, closed: bool, now: datetime) -> None:
        """dispatch.CaseUpdated: a closed case closes its report."""
        before = self._view()
        self.dispatch_case = case_name
        if closed and self.status not in ("CLOSED", "MERGED"):
            self._move(before, "CLOSED", "CLOSED", f"处警单 {case_name} 已办结", now)

    def work_order_changed(self, work_order: str, *, closed: bool, now: datetime) -> None:
        """The report follows its 12345 work order: REFERRED, CLOSED when the order closes, REFERRED
        again when it is reopened."""
        before = self._view()
        self.work_order = work_order
        if self.status == "MERGED":
            return
        if closed and self.status != "CLOSED":
            self._move(before, "CLOSED", "CLOSED", f"12345工单 {work_order} 已办结", now)
        elif not closed and self.status != "REFERRED":
            self._move(before, "REFERRED", "REFERRED", f"已转12345工单 {work_order}", now)

    def joint_order_opened(self, work_order: str, *, now: datetime) -> None:
        """A joint-rescue order (联动抢险): city departments join a police incident. The report is linked
        to the order and says so in its timeline, but keeps following its police case."""
        before = self._view()
        self.work_order = work_order
        self._updated("JOINT_RESCUE", before, [self._log(
            "JOINT_RESCUE", SYSTEM, now, f"已同步派发联动抢险工单 {work_order}（12345 部门协同处置）")])

    # -- the timeline and the events ----------------------------------------------------------

    def _log(self, action: str, actor: AuthContext, now: datetime, detail: str = "", reason: str = "") -> TimelineEntry:
        e = entry(action, actor, now, detail, reason)
        self.timeline.append(e)
        return e

    def _move(self, before: Report, status: str, action: str, detail: str, now: datetime) -> None:
        self.status, self.update_time = status, now
        self._updated(action, before, [self._log(action, SYSTEM, now, detail)])

    def _updated(self, action: str, before: Report, entries: list[TimelineEntry]) -> None:
        self.record(ReportUpdated(self._view(), action, before, tuple(entries)))

    def _view(self) -> Report:
        """The report as its events carry it, at this moment: without its timeline and duplicates (the
        lists that grow with its history), apart from later changes."""
        return replace(
            self, timeline=[], duplicates=[], attachments=list(self.attachments),
            classification=replace(self.classification) if self.classification is not None else None,
            consultation=replace(self.consultation) if self.consultation is not None else None,
        )


@dataclass(frozen=True)
class IncidentReported(DomainEvent):
    """A new report, as intake leaves it, and the entries recorded with it."""

    report: Report
    new_entries: tuple[TimelineEntry, ...]


@dataclass(frozen=True)
class ReportUpdated(DomainEvent):
    """A change to a report: the report after it, the action, the report before it, the entries added."""

    report: Report
    action: str
    before: Report
    new_entries: tuple[TimelineEntry, ...]


@dataclass(frozen=True)
class KnowledgeEntryAdded(DomainEvent):
    entry: Entry


def _check_classification(c: Classification, wanted: set[str]) -> None:
    bad = []
    itype = rules.INCIDENT_TYPES.get(c.incident_type)
    if "classification.incident_type" in wanted and itype is None:
        bad.append(("report.classification.incident_type", "is not a code of the incident taxonomy"))
    elif itype is not None and itype.category != c.category:
        field_path = ("report.classification.incident_type" if "classification.incident_type" in wanted
                      else "report.classification.category")
        bad.append((field_path, f"{c.incident_type} is a {itype.category} type, not {c.category}; "
                                "correct category and incident_type together"))
    if not 1 <= c.priority <= 4:
        bad.append(("report.classification.priority", "must be 1 (most urgent) to 4"))
    if bad:
        raise InvalidArgument(bad)


def _label(attr: str, value) -> str:
    if attr == "category":
        return CATEGORY_LABELS.get(value, value)
    if attr == "incident_type":
        t = rules.INCIDENT_TYPES.get(value)
        return f"{t.label}（{value}）" if t else value
    return f"{value}级"


def _point(lon, lat) -> str:
    return "无" if lon is None else f"({lon:.6f}, {lat:.6f})"


# -- what other services' events say of a report (translated by mapping.py) ---------------------

@dataclass(frozen=True)
class CaseNews:
    """A dispatch case, as dispatch.CaseCreated / CaseUpdated tell it."""

    case_name: str
    report_name: str
    closed: bool


@dataclass(frozen=True)
class AssignmentNews:
    """An assignment of a dispatch case, as dispatch.AssignmentChanged tells it."""

    case_name: str
    unit: str
    accepted: bool
    accept_time: datetime | None
    on_scene: bool = False
    arrive_time: datetime | None = None


@dataclass(frozen=True)
class WorkOrderNews:
    """A 12345 work order, as referral.WorkOrderCreated / WorkOrderUpdated tell it."""

    work_order: str
    report_name: str
    from_110_report: bool
    transferred_to_110: bool
    joint_rescue: bool
    closed: bool
    created: bool


def report_id_of(name: str) -> str | None:
    """`reports/{id}` → id; None for any other name."""
    return name[len("reports/"):] if name.startswith("reports/") and len(name) > len("reports/") else None
