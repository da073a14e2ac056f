"""Access grants bound to a case (权随案走、因事提权): elevated access an officer working a case asks
for, for that case's sake, with a reason.

A grant names the case, the officer (the grantee, by subject), what it opens and until when. Today
a grant opens the cases of named other stations (跨所警情查阅: related incidents across a station's
border) for reading. The grant policy (`auto_grant`) grants at once a criminal case at county
level or above; any other request waits for the approval of the case's station chief (所长) or
legal officer (法制员). A grant ends when its time runs out, when its case is closed or when it is
revoked; every request, decision, use and end is written on the case's timeline (全程留痕).

`AccessGrant` is the aggregate; its pending timeline entries are written with it (`pull_entries`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, PermissionDenied
from services.runtime.model import TimelineEntry

from .unit import entry

SCOPES = ("STATION_CASES",)
SCOPE_LABELS = {"STATION_CASES": "跨所警情查阅"}
STATES = ("PENDING", "ACTIVE", "DENIED", "REVOKED", "EXPIRED")
STATE_LABELS = {"PENDING": "待审批", "ACTIVE": "已授权", "DENIED": "已驳回", "REVOKED": "已撤销", "EXPIRED": "已失效"}
OPEN_STATES = ("PENDING", "ACTIVE")
# Who may ask: the police who work cases at a station (a station claim is required).
REQUEST_ROLES = ("officer", "station_chief", "legal_officer", "dispatcher")
# Who approves, denies or revokes for the case's station; the city's command for any.
APPROVER_ROLES = ("station_chief", "legal_officer")
COMMAND_ROLES = ("commander",)
# Criminal matters (刑事案件): granted at once when the case is at county level or above.
CRIMINAL_TYPES = frozenset({
    "HOMICIDE", "ROBBERY", "KIDNAPPING", "THEFT", "TELECOM_FRAUD", "ASSAULT", "DOMESTIC_VIOLENCE", "DRUGS",
    "SEXUAL_ASSAULT", "HOSTAGE", "TERRORISM", "EXPLOSION",
})
AUTO_GRANT_LEVELS = ("COUNTY", "CITY", "PROVINCE")
DEFAULT_HOURS = 24
MAX_HOURS = 72
MAX_STATIONS = 10
POLICY_ACTOR = "grant-policy"


def auto_grant(incident_type: str, level: str) -> bool:
    """The grant policy: a criminal case at county level or above is granted without waiting."""
    return incident_type in CRIMINAL_TYPES and level in AUTO_GRANT_LEVELS


@dataclass
class AccessGrant:
    id: str
    case_id: str
    case_station_id: str
    incident_type: str
    case_level: str
    grantee: str
    grantee_station_id: str
    grantee_roles: list[str]
    scope: str
    station_ids: list[str]
    reason: str
    hours: int
    state: str
    request_time: datetime
    auto_granted: bool = False
    decided_by: str = ""
    decision_reason: str = ""
    grant_time: datetime | None = None
    expire_time: datetime | None = None
    end_time: datetime | None = None
    end_reason: str = ""
    uses: int = 0
    last_use_time: datetime | None = None
    version: int = 1
    _entries: list[TimelineEntry] = field(default_factory=list, repr=False, compare=False)

    @property
    def name(self) -> str:
        return f"cases/{self.case_id}/accessGrants/{self.id}"

    @property
    def case_name(self) -> str:
        return f"cases/{self.case_id}"

    def _what(self) -> str:
        return f"{SCOPE_LABELS[self.scope]}（{'、'.join(self.station_ids)}）"

    # -- lifecycle ------------------------------------------------------------------------------

    @classmethod
    def request(cls, *, grant_id: str, case_id: str, case_station_id: str, incident_type: str, case_level: str,
                case_closed: bool, actor: AuthContext, scope: str, station_ids: list[str], reason: str,
                hours: int, now: datetime) -> "AccessGrant":
        """A request by the officer working the case; granted at once where the policy says so."""
        if case_closed:
            raise FailedPrecondition(f"cases/{case_id} is closed: no access can be granted for it",
                                     reason="CASE_CLOSED")
        if not actor.station:
            raise PermissionDenied("an access grant is asked for by an officer of a station (station claim)",
                                   reason="STATION_REQUIRED")
        grant = cls(id=grant_id, case_id=case_id, case_station_id=case_station_id, incident_type=incident_type,
                    case_level=case_level, grantee=actor.subject, grantee_station_id=actor.station,
                    grantee_roles=sorted(actor.roles), scope=scope, station_ids=sorted(set(station_ids)),
                    reason=reason, hours=hours, state="PENDING", request_time=now)
        grant._entries.append(entry(actor, now, "ACCESS_REQUESTED", f"申请{grant._what()}，期限{hours}小时", reason))
        if auto_grant(incident_type, case_level):
            grant._activate(POLICY_ACTOR, [], now, auto=True,
                            why="刑事案件且警情为分局（县）级及以上，按授权策略自动授权")
        return grant

    def _activate(self, by: str, roles: list[str], now: datetime, *, auto: bool, why: str) -> None:
        self.state, self.auto_granted, self.decided_by, self.decision_reason = "ACTIVE", auto, by, why
        self.grant_time, self.expire_time = now, now + timedelta(hours=self.hours)
        self._entries.append(TimelineEntry("ACCESS_GRANTED", by, roles, now,
                                           f"授权{self.grantee}{self._what()}，至{self.expire_time.isoformat()}", why))
        self.version += 1

    def _authorise_decision(self, actor: AuthContext, verb: str) -> None:
        if actor.has_role(*COMMAND_ROLES):
            return
        if not actor.has_role(*APPROVER_ROLES) or actor.station != self.case_station_id:
            raise PermissionDenied(f"only the station chief or legal officer of {self.case_station_id}, or the "
                                   f"city's command, may {verb} this grant", reason="NOT_APPROVER",
                                   metadata={"station_id": self.case_station_id})

    def approve(self, actor: AuthContext, *, comment: str, now: datetime) -> None:
        self._authorise_decision(actor, "approve")
        if actor.subject == self.grantee:
            raise PermissionDenied("a grant is approved by someone other than the officer who asked for it",
                                   reason="SELF_APPROVAL")
        self._must_be("PENDING", "approved")
        self._activate(actor.subject, sorted(actor.roles), now, auto=False, why=comment)

    def deny(self, actor: AuthContext, *, reason: str, now: datetime) -> None:
        self._authorise_decision(actor, "deny")
        self._must_be("PENDING", "denied")
        self.state, self.decided_by, self.decision_reason, self.end_time = "DENIED", actor.subject, reason, now
        self._entries.append(entry(actor, now, "ACCESS_DENIED", f"驳回{self.grantee}的{self._what()}申请", reason))
        self.version += 1

    def revoke(self, actor: AuthContext, *, reason: str, now: datetime) -> None:
        if actor.subject != self.grantee:
            self._authorise_decision(actor, "revoke")
        if self.state not in OPEN_STATES:
            raise FailedPrecondition(f"{self.name} is {self.state.lower()}: only a pending or active grant can be "
                                     "revoked", reason="GRANT_ENDED", metadata={"state": self.state})
        self._end("REVOKED", actor.subject, sorted(actor.roles), now, reason or "撤销授权", "ACCESS_REVOKED")

    def expire(self, *, now: datetime, case_closed: bool) -> bool:
        """Ends an open grant whose time ran out or whose case was closed; False when it still holds."""
        if self.state not in OPEN_STATES:
            return False
        if case_closed:
            why = "警情办结或撤销，授权终止"
        elif self.state == "ACTIVE" and self.expire_time is not None and self.expire_time <= now:
            why = "授权期限届满"
        elif self.state == "PENDING" and self.request_time + timedelta(hours=self.hours) <= now:
            why = "申请期限内未审批，自动失效"
        else:
            return False
        self._end("EXPIRED", POLICY_ACTOR, [], now, why, "ACCESS_EXPIRED")
        return True

    def _end(self, state: str, by: str, roles: list[str], now: datetime, why: str, action: str) -> None:
        self.state, self.end_time, self.end_reason = state, now, why
        self._entries.append(TimelineEntry(action, by, roles, now, f"{self.grantee}的{self._what()}{STATE_LABELS[state]}",
                                           why))
        self.version += 1

    def holds(self, now: datetime) -> bool:
        return self.state == "ACTIVE" and self.expire_time is not None and now < self.expire_time

    def use(self, actor: AuthContext, *, what: str, now: datetime) -> None:
        """The grantee read something the grant opened: counted and written on the case's timeline."""
        self.uses += 1
        self.last_use_time = now
        self._entries.append(entry(actor, now, "ACCESS_USED", f"依授权{self.name}查阅{what}"))

    def _must_be(self, state: str, verb: str) -> None:
        if self.state != state:
            raise FailedPrecondition(f"{self.name} is {self.state.lower()}: only a {state.lower()} grant can be {verb}",
                                     reason="GRANT_NOT_PENDING", metadata={"state": self.state})

    def pull_entries(self) -> list[TimelineEntry]:
        """The case-timeline entries recorded since the grant was last saved."""
        out, self._entries = self._entries, []
        return out
