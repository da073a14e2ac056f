"""Unreasonable and non-compliant requests (不合理不合规诉求): the rules' verdict, the record aggregate
(recorded, overturned once, each recorded as `UnreasonableRequestRecorded`), and the anonymised
typical cases published from records."""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition
from services.runtime.ids import new_id
from services.runtime.model import Aggregate, DomainEvent

from .. import rules


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
