"""Figures per department (承办单位考核): assigned, rejected, resolved, on time, satisfaction, reopens."""
from __future__ import annotations

from dataclasses import dataclass

from .departments import Department


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
