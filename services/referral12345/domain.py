"""Referral domain: 12345 departments (承办单位) and the matters they handle."""
from __future__ import annotations

from dataclasses import dataclass


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
