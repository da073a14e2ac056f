"""The 12345 catalogue: departments (承办单位) and their matters (事项), the Open311 services they make,
routing by matter and area (派单), and time limits (办理时限)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from services.runtime import labels, workdays

from .. import rules

CHINA = timezone(timedelta(hours=8))


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
        return incident_type, f"事项取自接警分类“{labels.incident_type_label(incident_type)}”"
    for code, keywords in rules.MATTER_KEYWORDS:
        for kw in keywords:
            if kw in description and code in known:
                return code, f"诉求内容含“{kw}”，归入事项“{labels.incident_type_label(code)}”"
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
    """`days` working days after `start`, counted in China time: weekends and public holidays skipped,
    make-up working days (调休) counted (`services.runtime.workdays`)."""
    return workdays.add_working_days(start, days)


def deadline_for(start: datetime, urgency: int) -> datetime:
    if urgency in rules.MINUTES_LIMIT:
        return start + rules.MINUTES_LIMIT[urgency]
    return add_working_days(start, rules.WORKING_DAYS_LIMIT.get(urgency, rules.WORKING_DAYS_LIMIT[4]))
