"""The alerts read side: lists of rules, alerts, silences and obligations, and the incident
counts of the heat map. Reads on the caller's connection (a read snapshot); nothing is locked."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select

from services.runtime.errors import NotFound
from services.runtime.keyset import after_key

from .domain import LEVELS, Alert, Box, Obligation, Rule, Silence
from .store import (
    alert_of, alerts, alerts_of, incidents, load_rule, obligation_of, obligations, rules, silence_of, silences,
)


# -- rules ----------------------------------------------------------------------

def rule(conn, rule_id: str, version: int | None = None) -> Rule:
    return load_rule(conn, rule_id, version)


def rule_ids(conn, *, after_id: str | None, size: int, kind: str = "", enabled_only: bool = False,
             show_deleted: bool = False) -> list[str]:
    """Rule ids in order after `after_id`, one more than a page (to tell whether another follows)."""
    q = select(rules.c.id).order_by(rules.c.id).limit(size + 1)
    if after_id:
        q = q.where(rules.c.id > after_id)
    if kind:
        q = q.where(rules.c.kind == kind)
    if enabled_only:
        q = q.where(rules.c.enabled.is_(True))
    if not show_deleted:
        q = q.where(rules.c.delete_time.is_(None))
    return [r.id for r in conn.execute(q)]


# -- alerts ---------------------------------------------------------------------

def alert(conn, alert_id: str) -> Alert:
    """One alert with all its timeline."""
    row = conn.execute(select(alerts).where(alerts.c.id == alert_id)).first()
    if row is None:
        raise NotFound(f"alerts/{alert_id}")
    return alert_of(conn, row)


@dataclass(frozen=True)
class AlertQuery:
    """ListAlerts' filters ("" / None: not filtered)."""

    state: str = ""
    min_level: int = 0  # a level's rank
    kind: str = ""
    station_id: str = ""
    grid_id: str = ""
    subject: str = ""
    group_key: str = ""
    rule_id: str = ""
    seen_from: datetime | None = None
    seen_before: datetime | None = None
    stations: list[str] | None = None  # the stations the caller sees (None: all)
    box: Box | None = None  # only alerts whose area centre lies in it


def alert_page(conn, query: AlertQuery, after: tuple[datetime, str] | None, size: int) -> list:
    """(id, last_seen_time) rows, latest seen first, one more than a page."""
    q = select(alerts.c.id, alerts.c.last_seen_time)
    if query.state:
        q = q.where(alerts.c.state == query.state)
    if query.min_level:
        q = q.where(alerts.c.level.in_(LEVELS[query.min_level:]))
    if query.kind:
        q = q.where(alerts.c.kind == query.kind)
    for col, value in (("station_id", query.station_id), ("grid_id", query.grid_id),
                       ("subject", query.subject), ("group_key", query.group_key)):
        if value:
            q = q.where(alerts.c[col] == value)
    if query.rule_id:
        q = q.where(alerts.c.rule_id == query.rule_id)
    if query.seen_from is not None:
        q = q.where(alerts.c.last_seen_time >= query.seen_from)
    if query.seen_before is not None:
        q = q.where(alerts.c.last_seen_time < query.seen_before)
    if query.box is not None:
        b = query.box
        q = q.where(alerts.c.center_lon.between(b.west, b.east), alerts.c.center_lat.between(b.south, b.north))
    if query.stations is not None:
        # Its station's, and a border case's shared with one of them (边界警情).
        q = q.where(or_(alerts.c.station_id.in_(query.stations),
                        alerts.c.shared_station_ids.overlap(query.stations)))
    return conn.execute(after_key(q, alerts.c.last_seen_time, alerts.c.id, after, size)).all()


def alerts_by_id(conn, ids: list[str]) -> list[Alert]:
    """Whole alerts in the order of `ids` (a page of ListAlerts), in three queries."""
    rows = {r.id: r for r in conn.execute(select(alerts).where(alerts.c.id.in_(ids)))} if ids else {}
    return alerts_of(conn, [rows[i] for i in ids if i in rows])


def active_alerts(conn) -> list[Alert]:
    """Firing and acknowledged alerts, the longest quiet first (a subscriber's snapshot), in three queries."""
    rows = conn.execute(select(alerts).where(alerts.c.state.in_(("FIRING", "ACKNOWLEDGED")))
                        .order_by(alerts.c.last_seen_time)).all()
    return alerts_of(conn, rows)


# -- silences -------------------------------------------------------------------

def silence_page(conn, *, state: str, now: datetime, after: tuple[datetime, str] | None, size: int) -> list[Silence]:
    """Silences in a state at `now` (all with ""), latest created first, one more than a page."""
    q = select(silences)
    not_early = or_(silences.c.expired_time.is_(None), silences.c.expired_time > now)
    if state == "ACTIVE":
        q = q.where(silences.c.start_time <= now, silences.c.expire_time > now, not_early)
    elif state == "PENDING":
        q = q.where(silences.c.start_time > now, silences.c.expire_time > now, not_early)
    elif state == "EXPIRED":
        q = q.where(or_(silences.c.expire_time <= now, silences.c.expired_time <= now))
    return [silence_of(r) for r in conn.execute(after_key(q, silences.c.create_time, silences.c.id, after, size))]


# -- obligations ------------------------------------------------------------------

def obligation(conn, obligation_id: str) -> Obligation | None:
    row = conn.execute(select(obligations).where(obligations.c.id == obligation_id)).first()
    return obligation_of(row) if row is not None else None


def obligation_page(conn, *, state: str, station_id: str, kind: str, now: datetime,
                    after: tuple[datetime, str] | None, size: int) -> list[Obligation]:
    """Obligations in a state at `now` (OVERDUE: pending past due), soonest due first, one more than a page."""
    q = select(obligations)
    if state == "PENDING":
        q = q.where(obligations.c.state == "PENDING", obligations.c.due_time > now)
    elif state == "OVERDUE":
        q = q.where(obligations.c.state == "PENDING", obligations.c.due_time <= now)
    elif state:
        q = q.where(obligations.c.state == state)
    if station_id:
        q = q.where(obligations.c.station_id == station_id)
    if kind:
        q = q.where(obligations.c.kind == kind)
    q = after_key(q, obligations.c.due_time, obligations.c.id, after, size, descending=False)
    return [obligation_of(r) for r in conn.execute(q)]


# -- the heat map -----------------------------------------------------------------

def incidents_by_cell(conn, *, resolution: int, start: datetime, end: datetime, station: str = "",
                      bounds: Box | None = None, incident_types: list[str] | None = None) -> list[tuple[str, str, int]]:
    """Counted police incidents in [start, end) per (cell at the resolution, station)."""
    col = incidents.c.cells[resolution - 5]
    q = (select(col.label("cell"), incidents.c.station_id, func.count().label("n"))
         .where(incidents.c.receive_time >= start, incidents.c.receive_time < end,
                incidents.c.category == "POLICE", incidents.c.merged_into == "",
                func.cardinality(incidents.c.cells) > 0)
         .group_by(col, incidents.c.station_id))
    if station:
        q = q.where(incidents.c.station_id == station)
    if bounds is not None:
        q = q.where(incidents.c.lon.between(bounds.west, bounds.east),
                    incidents.c.lat.between(bounds.south, bounds.north))
    if incident_types:
        q = q.where(incidents.c.incident_type.in_(list(incident_types)))
    return [(r.cell, r.station_id, r.n) for r in conn.execute(q)]
