"""Alerts use cases, one function each taking a unit of work, by family:

- `rules`: create, change, delete rules; the standing rules; the cache of the rules in force;
- `alerts`: raising alerts for findings, acknowledging, resolving, escalating; silences;
- `detection`: reports from intake, partners' signals, scoring's warnings, matched by the rules;
- `obligations`: obligations, those other services' events imply, their warnings.

`EVENT_HANDLERS` is what the runtime subscribes to other services' feeds; `Context` is what the
service's wiring puts in `rt.context` (handlers reach it as `uow.context`, prepare steps as their
first argument).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from ..domain import CapSender, UnitPosition
from ..domain.receivers import NotifyConfig
from . import alerts, deliveries, detection, obligations, rules
from .rules import RulesCache

__all__ = ["EVENT_HANDLERS", "Context", "RulesCache", "alerts", "deliveries", "detection", "obligations", "rules"]


@dataclass
class Context:
    """The alerts service's dependencies."""

    rules: RulesCache
    # () -> available units (dispatch); raises Unavailable when dispatch never answered.
    units: Callable[..., list[UnitPosition]]
    # (lon, lat) -> the station with jurisdiction there, "" when none (intake).
    locate: Callable[[float, float], str]
    # Receivers, routes and inhibition rules (None: only the Subscribe stream is told).
    notify: NotifyConfig | None = None
    # Who signs the CAP messages and in which time zone (CAP_SENDER, CAP_SENDER_NAME, ...).
    cap_sender: CapSender = field(default_factory=CapSender)
    # (asks, t) -> the volume and anomaly rules' counts the warehouse answered (clients.WarehouseCounts);
    # None: alerts counts them itself.
    counts: Callable[[list, object], dict] | None = None


EVENT_HANDLERS = {
    "intake": detection.INTAKE,
    "dispatch": obligations.DISPATCH,
    "referral": obligations.REFERRAL,
    "scoring": detection.SCORING,
}
