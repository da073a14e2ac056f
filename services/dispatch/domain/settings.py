"""What dispatch's use cases, servicers and workers share: the settings, the capability matrix
and the fan-out of assignment changes to phones, built once by the wiring (`rt.context`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from services.runtime.config import env_float, env_str

from .recommend import Matrix, matrix


DEFAULT_MAX_UNANSWERED = {"STATION": 3, "COUNTY": 5, "CITY": 8, "PROVINCE": 8}


def parse_limits(text: str) -> dict[str, int]:
    """`STATION=3,COUNTY=5` over the defaults; a malformed setting stops the service at start-up."""
    limits = dict(DEFAULT_MAX_UNANSWERED)
    for part in filter(None, (p.strip() for p in text.split(","))):
        level, _, value = part.partition("=")
        if level.strip() not in limits or not value.strip().isdigit() or int(value) < 1:
            raise SystemExit(f"configuration error: DISPATCH_MAX_UNANSWERED_OFFERS: {part!r} is not LEVEL=N "
                             f"(levels {', '.join(limits)}, N at least 1)")
        limits[level.strip()] = int(value)
    return limits


@dataclass(frozen=True)
class DispatchSettings:
    # An offer not accepted within this time goes to the next unit.
    offer_timeout_s: float = 30.0
    # A unit position older than this is stale: its ETA gets a penalty.
    position_stale_s: float = 900.0
    # How often the offer sweeper looks for expired offers.
    sweep_interval_s: float = 1.0
    # How often access grants past their time or on closed cases are ended.
    grant_sweep_interval_s: float = 30.0
    # Offers declined or expired after which automatic offers stop (the case no longer wanders), by level.
    max_unanswered_offers: dict = field(default_factory=lambda: dict(DEFAULT_MAX_UNANSWERED))
    # A case still untaken this long after automatic offers stopped goes up to district command.
    unanswered_escalate_s: float = 180.0
    # How long GetSituation waits for the alerts service before answering without its alerts.
    situation_alerts_timeout_s: float = 0.8

    @classmethod
    def from_env(cls) -> "DispatchSettings":
        return cls(
            offer_timeout_s=env_float("DISPATCH_OFFER_TIMEOUT_SECONDS", 30.0),
            position_stale_s=env_float("DISPATCH_POSITION_STALE_SECONDS", 900.0),
            sweep_interval_s=env_float("DISPATCH_SWEEP_SECONDS", 1.0),
            grant_sweep_interval_s=env_float("DISPATCH_GRANT_SWEEP_SECONDS", 30.0),
            max_unanswered_offers=parse_limits(env_str("DISPATCH_MAX_UNANSWERED_OFFERS", "")),
            unanswered_escalate_s=env_float("DISPATCH_UNANSWERED_ESCALATE_SECONDS", 180.0),
            situation_alerts_timeout_s=env_float("DISPATCH_SITUATION_ALERTS_SECONDS", 0.8),
        )


@dataclass
class Context:
    """Dispatch's dependencies (`rt.context`, `uow.context`)."""

    settings: DispatchSettings = field(default_factory=DispatchSettings)
    matrix: Matrix = field(default_factory=matrix)
    # The hub that pushes every AssignmentChanged of the service's feed to the units' open
    # WatchAssignments streams (workers.AssignmentHub); None where nothing watches.
    hub: Any = None
    # The alerts in a map view for GetSituation (clients.AlertsInView); None: not asked.
    situation_alerts: Any = None
    # The organisation's stations and districts (services.runtime.policy.org()); None: no districts.
    org: Any = None

    def district_stations(self, station_id: str) -> frozenset[str] | None:
        """The stations of a station's district: automatic offers and recommendations stay inside it
        (a cross-district offer is the commander's decision); None for a station of no known district."""
        district = self.org.district_of.get(station_id) if self.org is not None else None
        return self.org.stations_of(district) if district else None

    def stale_before(self, at: datetime) -> datetime:
        """Positions fixed before this are stale at `at`."""
        return at - timedelta(seconds=self.settings.position_stale_s)

    def offer_expiry(self, at: datetime) -> datetime:
        """An offer made at `at` expires then."""
        return at + timedelta(seconds=self.settings.offer_timeout_s)
