"""Who may call what, over which data: roles, jurisdiction (管辖范围) and one policy table per service.

Each service declares, in its `policy.py`, a `POLICY` table: for every method of its gRPC
services, the roles that may call it. The server interceptor consults the table before the
handler runs (a caller without one of the roles gets PERMISSION_DENIED; a method missing from
the table is refused and `check_complete` fails the build), and sets the caller's
`Jurisdiction`, which handlers and queries apply to every read, list, stream and mutation:

- a city-level role (`commander` whatever station it sits at, and `dispatcher` / `call_taker` of
  the city 110 centre, i.e. without a station or district claim) sees the whole city;
- `district_commander` (of its `district` claim, or of its station's district), or a city-level
  role with a `district` claim, sees that district's stations;
- a station role (`officer`, `station_chief`, `legal_officer`) or any police role with a
  `station` claim sees that station (plus what it is assigned to or granted: the services add
  those per resource);
- a `department` of 12345 sees its own work orders (`department` claim);
- `supervisor` (督察, the centre's supervision of both lines) sees the whole city, as the access
  tables let it (mostly reads, statistics and overturning);
- the 12345 centre's `hotline_agent` (without a department claim) sees every work order, and no
  police data;
- the `service` credential sees everything; everyone else sees no police data at all.

Handlers apply it in three ways, all here: `in_scope(name, *stations)` for one resource (out of
scope answers NOT_FOUND, like an unknown one, so ids cannot be probed), `stations_for(requested)` for
a list, stream or statistic (a filter for another station is refused, not silently widened) and
`Jurisdiction.sees` for a stream's events.
"""
from __future__ import annotations

import contextvars
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from sampledata import city

from .auth import AuthContext
from .errors import NotFound, PermissionDenied

# -- roles -----------------------------------------------------------------------------------

SERVICE = "service"
CITY_ROLES = frozenset({"commander"})
# Police roles that work at the city 110 centre unless a station or district claim places them.
CENTRE_ROLES = frozenset({"dispatcher", "call_taker"})
DISTRICT_ROLES = frozenset({"district_commander"})
STATION_ROLES = frozenset({"officer", "station_chief", "legal_officer"})
POLICE_ROLES = CITY_ROLES | CENTRE_ROLES | DISTRICT_ROLES | STATION_ROLES
HOTLINE_ROLES = frozenset({"hotline_agent", "supervisor", "department"})
# The 12345 centre's agents: every work order unless a department claim places them.
HOTLINE_CENTRE_ROLES = frozenset({"hotline_agent"})
# Supervision (督察) of both lines: the whole city.
SUPERVISION_ROLES = frozenset({"supervisor"})
# `partner`: a partner system that files reports (an alarm company, another government system).
OTHER_ROLES = frozenset({"expert", "open311_client", "sre", "partner"})
ALL_ROLES = POLICE_ROLES | HOTLINE_ROLES | OTHER_ROLES | {SERVICE}
ANY_PERSON = frozenset(ALL_ROLES - {SERVICE})


# -- the organisation --------------------------------------------------------------------------

@dataclass(frozen=True)
class Org:
    """Stations and the districts they belong to, with each station's name and public phone (for
    documents other systems read, e.g. dispatch's EIDO export)."""

    district_of: dict[str, str]
    station_names: dict[str, str] = field(default_factory=dict)
    station_phones: dict[str, str] = field(default_factory=dict)

    def stations_of(self, district: str) -> frozenset[str]:
        return frozenset(s for s, d in self.district_of.items() if d == district)

    def knows_station(self, station: str) -> bool:
        return station in self.district_of

    def knows_district(self, district: str) -> bool:
        return district in set(self.district_of.values())


@lru_cache(maxsize=1)
def org() -> Org:
    """`ORG_DIRECTORY_PATH` (JSON `{"stations": [{"station_id", "district_id", "name"?, "phone"?}]}`),
    else the sample city."""
    path = os.environ.get("ORG_DIRECTORY_PATH")
    if path:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        return Org({s["station_id"]: s["district_id"] for s in data["stations"]},
                   {s["station_id"]: s.get("name", "") for s in data["stations"]},
                   {s["station_id"]: s.get("phone", "") for s in data["stations"]})
    sts = city.stations()
    return Org({s.station_id: s.district_id for s in sts}, {s.station_id: s.name for s in sts},
               {s.station_id: s.phone for s in sts})


# -- jurisdiction ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Jurisdiction:
    """The stations (or the whole city) whose police data a caller may see and act on."""

    everything: bool = False
    stations: frozenset[str] = field(default_factory=frozenset)
    departments: frozenset[str] = field(default_factory=frozenset)
    district: str = ""
    # Every 12345 work order (the 12345 centre), without police data.
    all_departments: bool = False

    def covers_department(self, dept_id: str) -> bool:
        return self.everything or self.all_departments or dept_id in self.departments

    def sees(self, *station_ids: str) -> bool:
        """Whether a resource of these stations (its own, the ones assigned to it or sharing it) is in view."""
        return self.everything or any(s in self.stations for s in station_ids if s)

    def stations_for(self, requested=(), field_name: str = "station_id") -> frozenset[str] | None:
        """The stations a list, stream or statistic covers: None for no limit (the whole city),
        else the requested ones, or all of the caller's when none is asked for. A requested
        station outside the jurisdiction is refused (OUT_OF_JURISDICTION), not silently dropped."""
        wanted = frozenset({requested} if isinstance(requested, str) else requested) - {""}
        if self.everything:
            return wanted or None
        outside = wanted - self.stations
        if outside:
            raise PermissionDenied(f"{', '.join(sorted(outside))} is outside your jurisdiction",
                                   reason="OUT_OF_JURISDICTION",
                                   metadata={"field": field_name, "stations": ",".join(sorted(outside))})
        return wanted or self.stations

    @property
    def nothing(self) -> bool:
        return not (self.everything or self.stations or self.departments or self.all_departments)


NO_JURISDICTION = Jurisdiction()
EVERYTHING = Jurisdiction(everything=True)
_jurisdiction: contextvars.ContextVar[Jurisdiction] = contextvars.ContextVar("smart110_jurisdiction",
                                                                           default=NO_JURISDICTION)


def current_jurisdiction() -> Jurisdiction:
    """The jurisdiction of the caller of the RPC being handled (set after its access was checked)."""
    return _jurisdiction.get()


def set_jurisdiction(j: Jurisdiction) -> contextvars.Token:
    return _jurisdiction.set(j)


def reset_jurisdiction(token: contextvars.Token) -> None:
    _jurisdiction.reset(token)


def in_jurisdiction(j: Jurisdiction, name: str, *station_ids: str) -> None:
    """A resource of these stations outside `j` is, for its caller, not there (NOT_FOUND)."""
    if not j.sees(*station_ids):
        raise NotFound(name)


def in_scope(name: str, *station_ids: str) -> None:
    """A resource of these stations outside the caller's jurisdiction is, for the caller, not there."""
    in_jurisdiction(current_jurisdiction(), name, *station_ids)


def jurisdiction_of(ctx: AuthContext, directory: Org | None = None) -> Jurisdiction:
    directory = directory or org()
    if ctx.has_role(SERVICE):
        return EVERYTHING
    departments = frozenset({department_of(ctx)}) if department_of(ctx) else frozenset()
    police = ctx.roles & POLICE_ROLES
    if ctx.roles & SUPERVISION_ROLES and not departments and not ctx.station and not ctx.district:
        return EVERYTHING
    if not police:
        return Jurisdiction(departments=departments,
                            all_departments=bool(ctx.roles & HOTLINE_CENTRE_ROLES) and not departments)
    if ctx.district and police & (CITY_ROLES | CENTRE_ROLES | DISTRICT_ROLES):
        return Jurisdiction(stations=directory.stations_of(ctx.district), departments=departments,
                            district=ctx.district)
    if police & CITY_ROLES:
        # The city's command: a station claim says where they sit, not what they command.
        return EVERYTHING
    home = directory.district_of.get(ctx.station, "") if ctx.station else ""
    if police & DISTRICT_ROLES and home:
        return Jurisdiction(stations=directory.stations_of(home), departments=departments, district=home)
    if ctx.station:
        return Jurisdiction(stations=frozenset({ctx.station}), departments=departments, district=home)
    if police & CENTRE_ROLES:
        return EVERYTHING
    return Jurisdiction(departments=departments)


def department_of(ctx: AuthContext) -> str:
    """The 12345 department a department's staff act for: the `department` claim (older tokens
    name it in the `station` claim)."""
    if not ctx.has_role("department"):
        return ""
    return ctx.department or ("" if ctx.roles & POLICE_ROLES else ctx.station)


def check_claims(ctx: AuthContext, directory: Org | None = None) -> None:
    """A police caller's station claim, and a district claim, must name one the organisation has."""
    directory = directory or org()
    if ctx.station and ctx.roles & POLICE_ROLES and not directory.knows_station(ctx.station):
        raise PermissionDenied(f"station {ctx.station!r} is not a station of this city", reason="STATION_UNKNOWN",
                               metadata={"station": ctx.station})
    if ctx.district and not directory.knows_district(ctx.district):
        raise PermissionDenied(f"district {ctx.district!r} is not a district of this city",
                               reason="DISTRICT_UNKNOWN", metadata={"district": ctx.district})


# -- the per-service table ---------------------------------------------------------------------

@dataclass(frozen=True)
class Access:
    """Who may call one method. `scoped`: the method applies the caller's jurisdiction."""

    roles: frozenset[str]
    scoped: bool = True
    why: str = ""

    def __init__(self, *roles: str, scoped: bool = True, why: str = ""):
        unknown = set(roles) - ALL_ROLES
        if unknown:
            raise ValueError(f"unknown roles {sorted(unknown)}")
        object.__setattr__(self, "roles", frozenset(roles))
        object.__setattr__(self, "scoped", scoped)
        object.__setattr__(self, "why", why)


class Policy:
    """{"/pkg.Service/Method" or "Method": Access} for one service's methods."""

    def __init__(self, service: str, table: dict[str, Access]):
        self.service = service
        self.table = dict(table)

    def access(self, method: str) -> Access | None:
        name = method.rsplit("/", 1)[-1]
        return self.table.get(method) or self.table.get(name)

    def authorize(self, method: str, ctx: AuthContext) -> Jurisdiction:
        rule = self.access(method)
        if rule is None:
            raise PermissionDenied(f"{method} has no access policy", reason="NO_POLICY")
        if not ctx.roles & rule.roles:
            raise PermissionDenied(f"this action needs one of the roles {', '.join(sorted(rule.roles))}",
                                   reason="ROLE_REQUIRED", metadata={"required_roles": ",".join(sorted(rule.roles))})
        check_claims(ctx)
        return jurisdiction_of(ctx)

    def missing(self, methods: list[str]) -> list[str]:
        """Methods of the service's contract that the table does not cover."""
        return [m for m in methods if self.access(m) is None]
