"""Reads only the Open311 face needs: a page of work orders at an offset (GeoReport's page/page_size)
and the timeline entries behind the service request updates feed (servicerequestupdates)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from .domain import WorkOrder
from .queries import _work_orders_where
from .store import load_orders, order_timeline, work_orders


def work_orders_at(conn, *, filters: dict, limit: int, offset: int) -> list[WorkOrder]:
    """`limit` orders from `offset` on, newest first (the order GeoReport lists requests in)."""
    c = work_orders.c
    q = (_work_orders_where(select(work_orders), filters).order_by(c.create_time.desc(), c.id.desc())
         .limit(limit).offset(offset))
    return load_orders(conn, conn.execute(q).all())


@dataclass(frozen=True)
class Update:
    """One timeline entry of a work order, as the updates feed tells it."""

    seq: int
    work_order_id: str
    action: str
    time: datetime
    detail: str
    citizen_name: str
    order_status: str


def updates(conn, *, actions: set[str], start: datetime, end: datetime, limit: int, offset: int) -> list[Update]:
    """Timeline entries with one of `actions` recorded in [start, end), oldest first."""
    t, o = order_timeline.c, work_orders.c
    q = (select(t.seq, t.work_order_id, t.action, t.time, t.detail, o.citizen_name, o.status)
         .join(work_orders, o.id == t.work_order_id)
         .where(t.action.in_(sorted(actions)), t.time >= start, t.time < end)
         .order_by(t.time, t.seq).limit(limit).offset(offset))
    return [Update(r.seq, r.work_order_id, r.action, r.time, r.detail, r.citizen_name or "", r.status)
            for r in conn.execute(q)]
