"""The read side: work orders, the department catalogue, unreasonable-request records and typical
cases, per-department figures, and a caller's history for classification.

Each function takes a connection (the servicer reads in one snapshot) and returns domain objects
or the read models below; nothing here writes. Lists page with `services.runtime.keyset.after_key`.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select

from services.runtime.keyset import after_key
from services.runtime.validation import paginate

from . import domain, rules
from .domain import Department, Figures, Open311Service, UnreasonableRecord, Verdict, WorkOrder
from .store import (
    DepartmentRepository, UnreasonableRepository, WorkOrderRepository, assignments, citizen_updates,
    department_from_row, departments, load_orders, order_timeline, record_from_row, reviews, unreasonable, work_orders,
)


@dataclass
class Page:
    items: list
    next_page_token: str = ""


def _time_position(item) -> dict:
    return {"t": item.create_time.isoformat(), "id": item.id}


# -- work orders ---------------------------------------------------------------------

def work_order(conn, order_id: str) -> WorkOrder | None:
    return WorkOrderRepository(conn).get(order_id)


def has_order_for_report(conn, report_name: str) -> bool:
    """Whether a 110 report already has its work order (at most one per report)."""
    return conn.execute(select(work_orders.c.id).where(work_orders.c.report == report_name)).first() is not None


def work_orders_by_id(conn, order_ids: list[str]) -> list[WorkOrder]:
    """The orders of these ids that exist (ids that are "" skipped)."""
    repo = WorkOrderRepository(conn)
    return [o for o in (repo.get(i) for i in order_ids if i) if o is not None]


def _work_orders_where(q, filters: dict):
    c = work_orders.c
    for key in ("status", "source", "matter_code", "report", "hotline_ticket_id"):
        if filters.get(key):
            q = q.where(c[key] == filters[key])
    if filters.get("urgency"):
        q = q.where(c.urgency == filters["urgency"])
    if filters.get("overdue_only"):
        q = q.where(c.overdue.is_(True))
    if filters.get("start"):
        q = q.where(c.create_time >= filters["start"])
    if filters.get("end"):
        q = q.where(c.create_time < filters["end"])
    if filters.get("ids"):
        q = q.where(c.id.in_(filters["ids"]))
    if filters.get("matter_codes"):
        q = q.where(c.matter_code.in_(filters["matter_codes"]))
    if filters.get("statuses"):
        q = q.where(c.status.in_(filters["statuses"]))
    if filters.get("query"):
        like = "%" + filters["query"].replace("%", r"\%").replace("_", r"\_") + "%"
        q = q.where(or_(c.description.like(like), c.address_text.like(like)))
    if filters.get("stations") is not None:  # a police reader's jurisdiction (an empty one: nothing)
        q = q.where(c.station_id.in_(sorted(filters["stations"])))
    if filters.get("department"):
        q = q.where(c.id.in_(select(assignments.c.work_order_id).where(
            assignments.c.dept_id == filters["department"], assignments.c.state != "WITHDRAWN")))
    return q


def work_orders_page(conn, *, size: int, after: tuple[datetime, str] | None, filters: dict) -> Page:
    """Orders newest first, `size` to a page; `after` is the last one's (create time, id)."""
    q = after_key(_work_orders_where(select(work_orders), filters), work_orders.c.create_time, work_orders.c.id,
                  after, size)
    rows, token = paginate(conn.execute(q).all(), size, _time_position)
    return Page(load_orders(conn, rows), token)


def work_orders_list(conn, *, filters: dict, limit: int) -> list[WorkOrder]:
    """At most `limit` orders, newest first (Open311's unpaged list)."""
    c = work_orders.c
    q = _work_orders_where(select(work_orders), filters).order_by(c.create_time.desc(), c.id.desc()).limit(limit)
    return load_orders(conn, conn.execute(q).all())


# -- departments ---------------------------------------------------------------------

def deadline_figures(conn, *, now: datetime, soon: timedelta = timedelta(hours=1)) -> dict[str, tuple[int, int, int]]:
    """Open orders with a deadline by the lead department of their current round ("" while none
    leads, e.g. received or with the police first): (open, past the deadline, due within `soon`).

    One grouped query over the open orders (a periodic job sets the metrics from it, never a
    scrape)."""
    wo = work_orders.c
    lead = assignments.alias("lead")
    dept = func.coalesce(lead.c.dept_id, "")
    rows = conn.execute(
        select(dept.label("dept"), func.count().label("open"),
               func.count().filter(wo.deadline < now).label("overdue"),
               func.count().filter(wo.deadline >= now, wo.deadline < now + soon).label("due_soon"))
        .select_from(work_orders.outerjoin(lead, (lead.c.work_order_id == wo.id) & (lead.c.round == wo.round)
                                           & (lead.c.role == "LEAD") & (lead.c.state != "WITHDRAWN")))
        .where(wo.status.in_(sorted(domain.OPEN_STATUSES)), wo.deadline.is_not(None))
        .group_by(dept)).all()
    return {r.dept: (r.open, r.overdue, r.due_soon) for r in rows}


def department(conn, dept_id: str) -> Department | None:
    return DepartmentRepository(conn).get(dept_id)


def all_departments(conn) -> list[Department]:
    return DepartmentRepository(conn).all()


def matter_codes(conn) -> set[str]:
    """The matter codes of the 12345 catalogue."""
    return {m.code for d in all_departments(conn) for m in d.matters}


def matter_labels(conn) -> dict[str, str]:
    return domain.matter_labels(all_departments(conn))


def work_orders_at(conn, *, filters: dict, limit: int, offset: int) -> list[WorkOrder]:
    """`limit` orders from `offset` on, newest first (Open311's page/page_size)."""
    c = work_orders.c
    q = (_work_orders_where(select(work_orders), filters).order_by(c.create_time.desc(), c.id.desc())
         .limit(limit).offset(offset))
    return load_orders(conn, conn.execute(q).all())


@dataclass(frozen=True)
class OrderUpdate:
    """One timeline entry of a work order, as Open311's service request updates feed tells it."""

    seq: int
    work_order_id: str
    action: str
    time: datetime
    detail: str
    citizen_name: str
    # A citizen's update (CITIZEN_UPDATE): the order's status when it arrived, and its picture.
    order_status: str = ""
    media_url: str = ""


def order_updates(conn, *, actions: set[str], start: datetime, end: datetime, limit: int,
                  offset: int) -> list[OrderUpdate]:
    """Timeline entries with one of `actions` recorded in [start, end), oldest first."""
    t, o, cu = order_timeline.c, work_orders.c, citizen_updates.c
    q = (select(t.seq, t.work_order_id, t.action, t.time, t.detail, o.citizen_name, cu.order_status, cu.media_url)
         .join(work_orders, o.id == t.work_order_id)
         .outerjoin(citizen_updates, cu.timeline_seq == t.seq)
         .where(t.action.in_(sorted(actions)), t.time >= start, t.time < end)
         .order_by(t.time, t.seq).limit(limit).offset(offset))
    return [OrderUpdate(r.seq, r.work_order_id, r.action, r.time, r.detail, r.citizen_name or "",
                        r.order_status or "", r.media_url or "") for r in conn.execute(q)]


def work_order_exists(conn, order_id: str) -> bool:
    return conn.execute(select(work_orders.c.id).where(work_orders.c.id == order_id)).first() is not None


def open311_services(conn) -> list[Open311Service]:
    """The GeoReport services: one per matter of the catalogue."""
    return domain.open311_services(all_departments(conn))


def departments_page(conn, *, size: int, after: str | None, matter_code: str = "", district: str = "") -> Page:
    """Departments by id, `size` to a page; `after` is the last one's id."""
    q = select(departments).order_by(departments.c.dept_id).limit(size + 1)
    if after:
        q = q.where(departments.c.dept_id > after)
    if matter_code:
        q = q.where(departments.c.matters.contains([{"code": matter_code}]))
    if district:
        # An empty district list means the whole city.
        q = q.where(or_(func.cardinality(departments.c.districts) == 0, departments.c.districts.any(district)))
    page, token = paginate([department_from_row(r) for r in conn.execute(q)], size, lambda d: {"id": d.dept_id})
    return Page(page, token)


def department_statistics(conn, *, start: datetime, end: datetime, dept_id: str = "") -> list[Figures] | None:
    """Figures per department over [start, end); None when `dept_id` names no department."""
    catalogue = all_departments(conn)
    if dept_id and not any(d.dept_id == dept_id for d in catalogue):
        return None
    parts = select(assignments).where(assignments.c.assign_time >= start, assignments.c.assign_time < end)
    follow_ups = select(reviews).where(reviews.c.time >= start, reviews.c.time < end)
    if dept_id:
        parts = parts.where(assignments.c.dept_id == dept_id)
        follow_ups = follow_ups.where(reviews.c.dept_id == dept_id)
    return domain.department_figures([dict(r._mapping) for r in conn.execute(parts)],
                                     [dict(r._mapping) for r in conn.execute(follow_ups)], catalogue)


# -- unreasonable requests -----------------------------------------------------------

def unreasonable_record(conn, record_id: str) -> UnreasonableRecord | None:
    return UnreasonableRepository(conn).get(record_id)


def unreasonable_page(conn, *, size: int, after: tuple[datetime, str] | None, category: str = "", state: str = "",
                      start: datetime | None = None, end: datetime | None = None,
                      typical_only: bool = False) -> Page:
    """Records newest first, `size` to a page; `after` is the last one's (create time, id)."""
    c = unreasonable.c
    q = select(unreasonable)
    if category:
        q = q.where(c.category == category)
    if state:
        q = q.where(c.state == state)
    if start:
        q = q.where(c.create_time >= start)
    if end:
        q = q.where(c.create_time < end)
    if typical_only:
        q = q.where(c.typical_case.is_(True))
    q = after_key(q, c.create_time, c.id, after, size)
    records, token = paginate([record_from_row(r) for r in conn.execute(q)], size, _time_position)
    return Page(records, token)


def classify(conn, *, description: str, matter_code: str, phone: str, now: datetime) -> Verdict:
    """The rules' verdict on a request, with the caller's requests of the last 30 days."""
    total = same = 0
    if phone:
        orders = WorkOrderRepository(conn)
        since = now - rules.PRIOR_WINDOW
        total = orders.count_from(phone, since) + UnreasonableRepository(conn).count_from(phone, since)
        same = orders.count_from(phone, since, matter_code) if matter_code else 0
    return domain.classify_request(description, total, same)
