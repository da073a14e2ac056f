"""What every part of the alerts domain shares: the four-colour levels, audit stamps, areas, H3 cells."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

import h3

from services.runtime.auth import AuthContext

# Alert levels, the four-colour scale (蓝 黄 橙 红); higher is more severe. A level's rank
# (its index here) is also its number in the protos.
LEVELS = ["", "BLUE", "YELLOW", "ORANGE", "RED"]
LEVEL_CN = {"BLUE": "蓝色", "YELLOW": "黄色", "ORANGE": "橙色", "RED": "红色"}

# Who automatic changes (a rule matching, the sweeper) are recorded as.
SYSTEM = AuthContext(subject="alerts", roles=frozenset({"service"}))


def level_rank(level: str) -> int:
    return LEVELS.index(level) if level in LEVELS else 0


def max_level(*levels: str) -> str:
    return LEVELS[max(level_rank(lv) for lv in levels)]


def fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Stamp:
    """Who did something, when and why (全程留痕)."""

    actor: str
    roles: list[str]
    time: datetime
    reason: str = ""

    @classmethod
    def of(cls, actor: AuthContext, time: datetime, reason: str = "") -> "Stamp":
        return cls(actor.subject, sorted(actor.roles), time, reason)


@dataclass
class Area:
    """Where a condition holds: a station's jurisdiction, a grid or an H3 cell."""

    kind: str = ""  # STATION, GRID, H3
    id: str = ""
    name: str = ""
    station_id: str = ""
    grid_id: str = ""
    center: tuple[float, float] | None = None  # lon, lat
    # A border case's neighbouring stations (边界警情), which see an alert about it as their own.
    shared_station_ids: tuple[str, ...] = ()

    @property
    def stations(self) -> tuple[str, ...]:
        return (self.station_id, *self.shared_station_ids)

    @classmethod
    def station(cls, station: str, grid: str = "", center: tuple[float, float] | None = None) -> "Area":
        return cls("STATION", station, f"{station}辖区", station, grid, center)

    @classmethod
    def grid(cls, grid: str, station: str) -> "Area":
        return cls("GRID", grid, f"网格{grid}", station, grid)

    @classmethod
    def cell(cls, cell: str, station: str, grid: str) -> "Area":
        return cls("H3", cell, f"H3单元{cell}", station, grid, cell_center(cell))


# -- H3 cells -------------------------------------------------------------------

H3_RESOLUTIONS = range(6, 11)


def h3_cells(lon: float | None, lat: float | None) -> list[str]:
    """The point's H3 cells at resolutions 6..10 (index = resolution - 6)."""
    if lon is None or lat is None:
        return []
    return [h3.latlng_to_cell(lat, lon, r) for r in H3_RESOLUTIONS]


def cell_center(cell: str) -> tuple[float, float]:
    lat, lon = h3.cell_to_latlng(cell)
    return lon, lat


def cell_of(lon: float, lat: float, resolution: int) -> str:
    return h3.latlng_to_cell(lat, lon, resolution)


def disk(cell: str, ring: int) -> list[str]:
    return h3.grid_disk(cell, ring)


def hour_of(t: datetime) -> datetime:
    return t.replace(minute=0, second=0, microsecond=0)


def window_text(sec: float) -> str:
    """A window in words: 1小时, 30分钟."""
    if sec % 3600 == 0:
        return f"{int(sec // 3600)}小时"
    return f"{int(sec // 60)}分钟"
