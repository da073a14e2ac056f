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
    reviewed: int = 0  # orders followed up, each once
    satisfied: int = 0  # of those, orders whose last follow-up was satisfied
    reopened: int = 0  # resolved orders with an unsatisfied follow-up, each once
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
        """Followed-up orders whose last follow-up was satisfied or basically satisfied."""
        return self.satisfied / self.reviewed if self.reviewed else 0.0

    @property
    def reopen_rate(self) -> float:
        """Resolved orders reopened at least once (each counted once)."""
        return self.reopened / self.resolved if self.resolved else 0.0

    @property
    def mean_resolve_seconds(self) -> float:
        return self.resolve_seconds / self.resolved if self.resolved else 0.0


SATISFIED = ("SATISFIED", "BASICALLY_SATISFIED")


def department_figures(parts: list[dict], reviews: list[dict], departments: list[Department]) -> list[Figures]:
    """Figures from assignments (dicts with dept_id, work_order_id, state, assign_time, resolve_time,
    deadline) and follow-ups (回访) of orders each department led (dept_id, work_order_id, satisfaction,
    time).

    Everything counts per order, by its outcome: an order counts once per department, its latest part
    there deciding whether it was rejected or resolved; its last follow-up decides whether the citizen
    was satisfied (an order reopened once and then satisfied is one satisfied order); and it counts once
    as reopened however many times it was (重办), when any follow-up was unsatisfied and the
    department's latest part is resolved.
    """
    names = {d.dept_id: d.name for d in departments}
    figures: dict[str, Figures] = {}

    def of(dept_id: str) -> Figures:
        return figures.setdefault(dept_id, Figures(dept_id, names.get(dept_id, dept_id)))

    latest: dict[tuple[str, str], dict] = {}
    for p in parts:
        if p["state"] == "WITHDRAWN":
            continue
        key = (p["dept_id"], p["work_order_id"])
        if key not in latest or p["assign_time"] >= latest[key]["assign_time"]:
            latest[key] = p
    resolved: set[tuple[str, str]] = set()
    for key, p in latest.items():
        f = of(key[0])
        f.assigned += 1
        if p["state"] == "REJECTED":
            f.rejected += 1
        elif p["state"] == "RESOLVED":
            f.resolved += 1
            resolved.add(key)
            if p["deadline"] is None or p["resolve_time"] <= p["deadline"]:
                f.on_time += 1
            f.resolve_seconds += (p["resolve_time"] - p["assign_time"]).total_seconds()
    last_review: dict[tuple[str, str], dict] = {}
    reopened: set[tuple[str, str]] = set()
    for r in sorted(reviews, key=lambda r: (r["time"], r.get("seq") or 0)):
        key = (r["dept_id"], r["work_order_id"])
        last_review[key] = r
        if r["satisfaction"] not in SATISFIED:
            reopened.add(key)
    for key, r in last_review.items():
        f = of(key[0])
        f.reviewed += 1
        if r["satisfaction"] in SATISFIED:
            f.satisfied += 1
    for key in reopened & resolved:
        figures[key[0]].reopened += 1
    return sorted(figures.values(), key=lambda f: f.dept_id)
