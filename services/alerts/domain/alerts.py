"""Alerts (预警) and silences: the alert aggregate's state machine (firing, acknowledged, silenced,
resolved), who is told and how escalation climbs the command chain, and which alerts a silence holds."""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from services.runtime.model import Aggregate, Box, DomainEvent, TimelineEntry

from .common import LEVEL_CN, SYSTEM, Area, Stamp, fingerprint, level_rank, max_level
from .rules import Rule

STATES = ("FIRING", "ACKNOWLEDGED", "RESOLVED", "SILENCED")
OPEN_STATES = ("FIRING", "ACKNOWLEDGED", "SILENCED")

# -- routing and escalation -----------------------------------------------------
#
# Who hears of an alert first, by level (按级别分级推送), and the command chain
# escalation climbs when nobody acknowledges in time.
CITY_SCREEN = "screens/city"
CITY_COMMAND = "command/city"


def _station_recipients(station: str) -> dict[str, str]:
    return {"screen": f"screens/{station}", "officer": f"stations/{station}",
            "chief": f"stations/{station}/chief"}


ROUTES = {
    "BLUE": ["screen", "officer"],
    "YELLOW": ["screen", "officer", "chief"],
    "ORANGE": ["screen", "officer", "chief", CITY_SCREEN],
    "RED": ["screen", "officer", "chief", CITY_SCREEN, CITY_COMMAND],
}
CHAIN = ["officer", "chief", CITY_COMMAND]


def _resolve(role: str, station: str) -> str:
    if "/" in role:
        return role
    return _station_recipients(station)[role] if station else CITY_SCREEN


def route(level: str, station: str, rule_recipients: list[str] | None = None) -> list[str]:
    """The first recipients: the rule's own, or those of the level for the station."""
    if rule_recipients:
        names = list(rule_recipients)
        if station and f"screens/{station}" not in names:
            names.insert(0, f"screens/{station}")
        return names
    names = [_resolve(role, station) for role in ROUTES.get(level, ROUTES["BLUE"])]
    return list(dict.fromkeys(names))


def next_recipient(recipients: list[str], station: str) -> str | None:
    """The next step up the command chain not told yet; None at the top."""
    for role in CHAIN:
        name = _resolve(role, station)
        if name not in recipients:
            return name
    return None


CHANNEL_CN = {"BIG_SCREEN": "大屏", "APP_PUSH": "移动警务推送", "SMS": "短信", "VOICE_CALL": "语音电话"}


def channel_for(recipient: str, escalation_level: int) -> str:
    if recipient.startswith("screens/"):
        return "BIG_SCREEN"
    if recipient.startswith("command/"):
        return "VOICE_CALL"
    return "SMS" if escalation_level > 0 else "APP_PUSH"


# -- who sees what --------------------------------------------------------------

# The stations a caller sees come from the access table's jurisdiction (services.runtime.policy);
# None below means every station.

def ensure_visible(station_id: str | None, visible: list[str] | None, name: str, shared=()) -> None:
    """An alert of a station the caller does not see (nor a border case shared with one it sees) is,
    for the caller, not there."""
    if visible is not None and (station_id is None or station_id not in visible) \
            and not set(shared) & set(visible):
        raise NotFound(name)


@dataclass(frozen=True)
class AlertFilter:
    """What a subscriber (a big screen) wants pushed."""

    areas: frozenset[str] = frozenset()
    min_level: str = ""
    kinds: frozenset[str] = frozenset()
    # The map's view: only alerts whose area centre lies in it (None: anywhere).
    box: Box | None = None

    @classmethod
    def for_caller(cls, areas: set[str], visible: list[str] | None, min_level: str,
                   kinds: set[str], box: Box | None = None) -> "AlertFilter":
        """A caller who sees one station may only ask for its areas, and gets them by default."""
        if visible is not None:
            outside = [a for a in areas if a.split("-")[0] not in visible]
            if outside:
                raise PermissionDenied(f"areas outside the caller's station: {', '.join(outside)}",
                                       reason="AREA_NOT_VISIBLE")
            areas = areas or set(visible)
        return cls(frozenset(areas), min_level, frozenset(kinds), box)

    def wants(self, station_id: str, grid_id: str, level: str, kind: str, shared=(),
              center: tuple[float, float] | None = None) -> bool:
        if self.areas and station_id not in self.areas and grid_id not in self.areas \
                and not self.areas.intersection(shared):
            return False
        if self.box is not None and (center is None or not self.box.contains(*center)):
            return False
        if level_rank(level) < level_rank(self.min_level):
            return False
        return not self.kinds or kind in self.kinds


# -- silences -------------------------------------------------------------------

@dataclass(frozen=True)
class Matcher:
    label: str
    value: str
    operator: str = "EQUAL"  # EQUAL, NOT_EQUAL, REGEX

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.label, "")
        if self.operator == "NOT_EQUAL":
            return actual != self.value
        if self.operator == "REGEX":
            return re.fullmatch(self.value, actual) is not None
        return actual == self.value


def silence_state(start: datetime, expire: datetime, expired_early: datetime | None, now: datetime) -> str:
    if expired_early is not None and expired_early <= now:
        return "EXPIRED"
    if now >= expire:
        return "EXPIRED"
    return "PENDING" if now < start else "ACTIVE"


def silenced_by(matchers: list[Matcher], labels: dict[str, str]) -> bool:
    return bool(matchers) and all(m.matches(labels) for m in matchers)


@dataclass(eq=False)
class Silence:
    """Mutes notifications of matching alerts for a time (a planned event that will trip rules)."""

    id: str
    matchers: list[Matcher]
    start_time: datetime
    expire_time: datetime
    reason: str
    creator: str
    create_time: datetime
    # Expired early by DeleteSilence.
    expired: Stamp | None = None
    # Matching alerts were silenced once it started; the alerts it held were released once it ended.
    applied: bool = False
    released: bool = False

    @property
    def name(self) -> str:
        return f"silences/{self.id}"

    @property
    def expired_time(self) -> datetime | None:
        return self.expired.time if self.expired is not None else None

    @property
    def last_change_time(self) -> datetime:
        return self.expired_time or self.create_time

    def state(self, now: datetime) -> str:
        return silence_state(self.start_time, self.expire_time, self.expired_time, now)

    def holds(self, labels: dict[str, str]) -> bool:
        return silenced_by(self.matchers, labels)

    def expire(self, actor: AuthContext, reason: str, now: datetime) -> None:
        if self.state(now) == "EXPIRED":
            raise FailedPrecondition(f"silences/{self.id} has already expired", reason="SILENCE_EXPIRED")
        self.expired = Stamp.of(actor, now, reason)


def silence_holding(silences: list[Silence], labels: dict[str, str]) -> Silence | None:
    """The first of the active silences (oldest first) that holds an alert with these labels."""
    return next((s for s in silences if s.holds(labels)), None)


# -- findings -------------------------------------------------------------------

@dataclass
class Finding:
    """A condition a rule found: raised as a new alert or folded into the open one."""

    rule: Rule
    level: str
    key: tuple[str, ...]  # what makes the condition the same one
    area: Area
    subject: str
    summary: str
    labels: dict[str, str] = field(default_factory=dict)
    suggested_action: str = ""
    hot_cells: list[str] = field(default_factory=list)
    cold_cells: list[str] = field(default_factory=list)
    auto_resolve_time: datetime | None = None

    @property
    def kind(self) -> str:
        return self.rule.kind

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule.id, *self.key)

    def alert_labels(self) -> dict[str, str]:
        """The labels of the alert it raises (what silences match on)."""
        return {"kind": self.kind, "level": self.level, "rule": self.rule.name, "station_id": self.area.station_id,
                "grid_id": self.area.grid_id, "area": self.area.id, "area_kind": self.area.kind, **self.labels}


# -- the alert --------------------------------------------------------------------

@dataclass(frozen=True)
class Notification:
    channel: str  # BIG_SCREEN, APP_PUSH, SMS, VOICE_CALL
    recipient: str
    send_time: datetime
    escalation_level: int
    # BIG_SCREEN and APP_PUSH: pushed on an open Subscribe stream (set when pushed, never before);
    # SMS and VOICE_CALL: the command chain's own channels, not delivered by this record (the
    # routed receivers' deliveries are what reaches a phone).
    delivered: bool = False
    error: str = ""


@dataclass(frozen=True)
class AlertChanged(DomainEvent):
    """An alert fired ("FIRED") or changed ("UPDATED", "ACKNOWLEDGED", "ESCALATED", "SILENCED",
    "RESOLVED"). Events carry what changed, bounded in size: `alert` is the alert right after the
    change and `before` right before it (None for a new alert), both without their notifications
    and timeline (lists that grow with its history); `new_entries` are the timeline entries the
    change appended."""

    action: str
    alert: "Alert"
    before: "Alert | None"
    new_entries: tuple[TimelineEntry, ...]


@dataclass(eq=False)
class Alert(Aggregate):
    id: str
    fingerprint: str
    group_key: str
    kind: str
    level: str
    state: str
    rule_id: str
    rule_version: int
    area: Area
    subject: str
    summary: str
    first_seen_time: datetime
    last_seen_time: datetime
    update_time: datetime
    related_subjects: list[str] = field(default_factory=list)
    suggested_action: str = ""
    recipients: list[str] = field(default_factory=list)
    count: int = 1
    escalation_level: int = 0
    escalate_after_s: float = 0.0
    # When the sweeper escalates it if still unacknowledged; None: never.
    next_escalation_time: datetime | None = None
    # When the sweeper resolves it unless matched again (volume, anomaly, strength gap).
    auto_resolve_time: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    hot_cells: list[str] = field(default_factory=list)
    cold_cells: list[str] = field(default_factory=list)
    silence_id: str = ""
    acknowledged: Stamp | None = None
    resolved: Stamp | None = None
    # The notifications and the timeline as loaded (all of them, or none when loaded to be
    # changed) and what was added since.
    notifications: list[Notification] = field(default_factory=list)
    timeline: list[TimelineEntry] = field(default_factory=list)
    # The deliveries to routed receivers as loaded (whole alerts only; the worker writes them).
    deliveries: list = field(default_factory=list)
    # Added since loaded, not yet saved (the repository writes and clears them).
    new_notifications: list[Notification] = field(default_factory=list)
    new_entries: list[TimelineEntry] = field(default_factory=list)
    # The alert as it stood after its last change (or as loaded; None when new), and the timeline
    # entries the change under way appended: what the change's event says changed.
    _settled: "Alert | None" = field(default=None, init=False, repr=False)
    _appended: list[TimelineEntry] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self._settle()

    @property
    def name(self) -> str:
        return f"alerts/{self.id}"

    @property
    def station_id(self) -> str:
        return self.area.station_id

    @classmethod
    def fire(cls, f: Finding, *, alert_id: str, now: datetime, silence: Silence | None) -> "Alert":
        """A new alert for a finding: notified by level (or held by the silence), escalation scheduled."""
        rule = f.rule
        alert = cls(
            id=alert_id, fingerprint=f.fingerprint, group_key=f"{f.kind}:{f.area.station_id or f.area.id or 'city'}",
            kind=f.kind, level=f.level, state="FIRING", rule_id=rule.id, rule_version=rule.version,
            area=copy.copy(f.area), subject=f.subject, summary=f.summary,
            suggested_action=f.suggested_action or rule.suggested_action,
            recipients=route(f.level, f.area.station_id, list(rule.recipients)),
            first_seen_time=now, last_seen_time=now, update_time=now, escalate_after_s=rule.escalate_after_s,
            auto_resolve_time=f.auto_resolve_time, labels=f.alert_labels(), hot_cells=list(f.hot_cells),
            cold_cells=list(f.cold_cells),
        )
        alert._settled = None  # new: there was nothing before
        alert._log("FIRED", f"{LEVEL_CN.get(f.level, '')}预警（规则 {rule.display_name} 第{rule.version}版）："
                            f"{f.summary}", SYSTEM, now)
        if silence is not None:
            alert.state = "SILENCED"
            alert.silence_id = silence.id
            alert._log("SILENCED", f"静默 silences/{silence.id}：{silence.reason}", SYSTEM, now)
        else:
            alert._notify(alert.recipients, 0, now)
            if alert.escalate_after_s > 0:
                alert.next_escalation_time = now + timedelta(seconds=alert.escalate_after_s)
        alert._changed("FIRED")
        return alert

    def repeat(self, f: Finding, now: datetime) -> None:
        """The same condition again: counted, its latest facts taken; a higher level tells more people."""
        related = list(self.related_subjects)
        if f.subject and f.subject != self.subject:
            related = list(dict.fromkeys([self.subject] + related))[:100] if self.subject else related
        before = self.level
        level = max_level(before, f.level)
        self.count += 1
        self.last_seen_time = now
        self.subject = f.subject or self.subject
        self.related_subjects = related
        self.summary = f.summary
        self.level = level
        self.rule_version = f.rule.version
        self.labels = {**f.alert_labels(), "level": level}
        self.update_time = now
        if f.auto_resolve_time is not None:
            self.auto_resolve_time = f.auto_resolve_time
        if f.hot_cells:
            self.hot_cells, self.cold_cells = list(f.hot_cells), list(f.cold_cells)
        if f.suggested_action:
            self.suggested_action = f.suggested_action
        added = []
        if level_rank(level) > level_rank(before):
            added = [r for r in route(level, self.station_id, list(f.rule.recipients)) if r not in self.recipients]
            self.recipients = list(self.recipients) + added
        self._log("REPEATED", f"第{self.count}次：{f.summary}", SYSTEM, now)
        if added and self.state == "FIRING":
            self._notify(added, self.escalation_level, now)
        self._changed("UPDATED")

    def acknowledge(self, actor: AuthContext, comment: str, now: datetime) -> None:
        if self.state not in ("FIRING", "SILENCED"):
            raise FailedPrecondition(f"alerts/{self.id} is {self.state}, only a firing or silenced alert can be "
                                     "acknowledged", reason="ALERT_NOT_FIRING", metadata={"state": self.state})
        self.state = "ACKNOWLEDGED"
        self.acknowledged = Stamp.of(actor, now, comment)
        self.next_escalation_time = None
        self.update_time = now
        self._log("ACKNOWLEDGED", "已签收，停止升级", actor, now, comment)
        self._changed("ACKNOWLEDGED")

    def resolve(self, actor: AuthContext, reason: str, now: datetime) -> None:
        if self.state == "RESOLVED":
            raise FailedPrecondition(f"alerts/{self.id} is already resolved", reason="ALERT_RESOLVED")
        self.state = "RESOLVED"
        self.resolved = Stamp.of(actor, now, reason)
        self.next_escalation_time = None
        self.update_time = now
        self._log("RESOLVED", "预警解除", actor, now, reason)
        self._changed("RESOLVED")

    def escalate(self, now: datetime) -> bool:
        """Unacknowledged in time: the next step up the chain is told. False at the top (it stops)."""
        nxt = next_recipient(list(self.recipients), self.station_id)
        if nxt is None:
            self.next_escalation_time = None
            self._settle()
            return False
        self.escalation_level += 1
        self.recipients = list(self.recipients) + [nxt]
        self.update_time = now
        self.next_escalation_time = now + timedelta(seconds=self.escalate_after_s)
        self._log("ESCALATED", f"{self.escalate_after_s:.0f}秒未签收，升级至 {nxt}", SYSTEM, now)
        self._notify([nxt], self.escalation_level, now)
        self._changed("ESCALATED")
        return True

    def hold(self, silence: Silence, now: datetime) -> None:
        """A firing alert a silence matches: nobody is notified, it does not escalate."""
        self.state = "SILENCED"
        self.silence_id = silence.id
        self.next_escalation_time = None
        self.update_time = now
        self._log("SILENCED", f"静默 silences/{silence.id}：{silence.reason}", SYSTEM, now)
        self._changed("SILENCED")

    def pass_to(self, other: Silence, now: datetime) -> None:
        """Its silence ended but another one holds it."""
        self.silence_id = other.id
        self.update_time = now
        self._log("SILENCED", f"静默 silences/{other.id}：{other.reason}", SYSTEM, now)
        self._settle()  # no event: the next change's says what it changed, not this one

    def release(self, silence_id: str, now: datetime) -> None:
        """Its silence ended: it fires again and its recipients are notified now."""
        self.state = "FIRING"
        self.silence_id = ""
        self.next_escalation_time = now + timedelta(seconds=self.escalate_after_s) if self.escalate_after_s > 0 \
            else None
        self.update_time = now
        self._log("UNSILENCED", f"静默 silences/{silence_id} 已结束", SYSTEM, now)
        self._notify(list(self.recipients), self.escalation_level, now)
        self._changed("UPDATED")

    def mentions(self, subject: str) -> bool:
        return self.subject == subject or subject in self.related_subjects

    # -- inside ------------------------------------------------------------------
    def _log(self, action: str, detail: str, actor: AuthContext, now: datetime, reason: str = "") -> None:
        entry = TimelineEntry(action, actor.subject, sorted(actor.roles), now, detail, reason)
        self.timeline.append(entry)
        self.new_entries.append(entry)
        self._appended.append(entry)

    def _notify(self, recipients: list[str], escalation_level: int, now: datetime) -> None:
        sent = [Notification(channel_for(r, escalation_level), r, now, escalation_level) for r in recipients]
        if sent:
            self.notifications.extend(sent)
            self.new_notifications.extend(sent)
            detail = "；".join(f"{n.recipient}（{CHANNEL_CN.get(n.channel, n.channel)}）" for n in sent)
            self._log("NOTIFIED", f"通知 {detail}", SYSTEM, now)

    def _changed(self, action: str) -> None:
        after = self.snapshot()
        self.record(AlertChanged(action, after, self._settled, tuple(self._appended)))
        self._settle(after)

    def _settle(self, state: "Alert | None" = None) -> None:
        """A change is done (or the alert just loaded): the next change is told apart from this state."""
        self._settled, self._appended = state if state is not None else self.snapshot(), []

    def snapshot(self) -> "Alert":
        """A copy as it is now without its notifications and timeline, for an event."""
        view = copy.copy(self)
        view.area = copy.copy(self.area)
        view.related_subjects = list(self.related_subjects)
        view.recipients = list(self.recipients)
        view.labels = dict(self.labels)
        view.hot_cells = list(self.hot_cells)
        view.cold_cells = list(self.cold_cells)
        view.notifications, view.timeline, view.deliveries = [], [], []
        view.new_notifications, view.new_entries = [], []
        view._settled, view._appended = None, []
        view._events = []
        return view
