"""Referral use cases: one function each, on a unit of work; the order's state, timeline and
events in one transaction.

What needs intake (where a point or station is, filing a transferred report, a referred report's
caller) runs before the transaction, in the steps that take the service's `Context` first
(`locate`, `places_ahead`, `file_transfer`, and the prepare steps of the events consumed). `EVENT_HANDLERS` at the end
names the feeds and event types referral consumes: intake's reports, and dispatch's cases of the
orders the police handle first (先期处置).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb

from services.runtime.consumer import Subscription
from services.runtime.errors import Aborted, AlreadyExists, FailedPrecondition, NotFound
from services.runtime.uow import UnitOfWork

from . import domain, mapping, rules
from .clients import Intake
from .domain import (
    SYSTEM, CitizenContact, CitizenUpdate, Place, PoliceCaseNews, PoliceReport, Route, UnreasonableRecord, WorkOrder,
)


def _no_order_yet(report_name: str) -> bool:
    return False


@dataclass
class Context:
    """Referral's dependencies, as its wiring built them (`Runtime.context`). `referred(report)`:
    whether a 110 report has its work order already (read on a snapshot of its own, before the
    consumer's transaction), so a redelivered or repeated event does not read its caller again."""

    intake: Intake
    referred: Callable[[str], bool] = _no_order_yet


# -- before the transaction: places and transfers ----------------------------------

def locate(context: Context, lon: float | None, lat: float | None) -> Place | None:
    """The station with jurisdiction over a point; None without one."""
    return context.intake.locate(lon, lat) if lon is not None else None


def places_ahead(context: Context, orders: list[WorkOrder]) -> Callable[[WorkOrder], Place | None]:
    """A `place_of` for a handler inside a transaction: the orders' places resolved now, before it.

    Intake is not called inside the transaction; an order whose location changed in between
    is refused with ABORTED (retry).
    """
    known = {o.where: context.intake.place(o.lon, o.lat, o.station_id) for o in orders}

    def place_of(order: WorkOrder) -> Place | None:
        where = order.where
        if where in known:
            return known[where]
        if where == ("station", ""):
            return None
        raise Aborted(f"{order.name} moved while it was being handled; retry", reason="ORDER_MOVED")
    return place_of


@dataclass(frozen=True)
class Transfer:
    """What 一键转接 did before its transaction: the report intake filed (None: intake found nothing),
    and for a new 12345 ticket its fields and place."""

    report: PoliceReport | None
    fields: dict | None = None
    place: Place | None = None


def file_transfer(context: Context, *, request_id: str, why: str, now, order_id: str = "",
                  source: WorkOrder | None = None, fields: dict | None = None) -> Transfer:
    """Files the transferred request with intake, before the transaction that records the transfer.

    `fields`: a new 12345 ticket, filed under the request's id; else the existing order `source`
    (`order_id`), checked first and filed under its own id. Intake is idempotent on that id, so a
    retry after a failure files nothing new.
    """
    if fields is not None:
        fields = dict(fields, request_time=fields["request_time"] or now)
        source = WorkOrder.draft(fields)
        place = locate(context, fields["lon"], fields["lat"])
        intake_request_id = f"referral-transfer-{request_id}"
    else:
        if source is None:
            raise NotFound(f"workOrders/{order_id}")
        source.check_transferable()
        place = None
        intake_request_id = f"referral-transfer-{order_id}"
    return Transfer(context.intake.file_transfer(intake_request_id, source, why), fields, place)


# -- recording and routing ------------------------------------------------------

def _receive(uow: UnitOfWork, fields: dict, actor) -> WorkOrder | None:
    """Stores a new order (its creation recorded); None when its 110 report already has one."""
    orders = uow.repos.work_orders
    now = uow.now()
    request_time = fields.get("request_time") or now
    history = None
    if fields.get("citizen_phone"):
        phone, matter = fields["citizen_phone"], fields.get("matter_code", "")
        history = (orders.count_from(phone, request_time - rules.PRIOR_WINDOW),
                   orders.count_from(phone, request_time - rules.REPEAT_WINDOW, matter) if matter else 0)
    order = WorkOrder.receive(fields, actor=actor, now=now, caller_history=history)
    if not orders.add(order):
        return None
    uow.collect(order)
    return order


def create_work_order(uow: UnitOfWork, *, fields: dict, place: Place | None, route: bool = True) -> WorkOrder:
    """A 12345 ticket or Open311 request: recorded, then routed by matter and area.

    Without a matter code, the matter is told from the description.
    """
    repos = uow.repos
    fields = dict(fields)
    if place is not None:
        fields.setdefault("district", place.district)
        fields.setdefault("station_id", place.station_id)
    departments = repos.departments.all() if route or not fields.get("matter_code") else []
    if not fields.get("matter_code") and fields.get("description"):
        known = {m.code for d in departments for m in d.matters}
        fields["matter_code"], _ = domain.infer_matter("", fields["description"], known)
    order = _receive(uow, fields, uow.actor)
    if order is None:
        raise AlreadyExists(f"{fields.get('report')} already has a work order", reason="REPORT_ALREADY_REFERRED",
                            metadata={"report": fields.get("report", "")})
    if route:
        order.route(departments, place, uow.actor, uow.now())
        repos.work_orders.save(order)
    return order


def refer_report(uow: UnitOfWork, *, report: PoliceReport, place: Place | None,
                 contact: CitizenContact | None = None) -> WorkOrder | None:
    """From 110: a non-police report becomes a work order, once; a police report of a type that needs
    city departments (联动抢险, e.g. a cut gas main) becomes a level-1 order to all of them at once.
    `place` and `contact` (the caller, for follow-up and repeat-caller detection) were read from
    intake before the transaction (`ahead_of_referral`).

    Returns None when the report needs no order, is a duplicate (merged), came from 12345 itself,
    or already has one.
    """
    if not domain.referable(report):
        return None
    repos = uow.repos
    now = uow.now()
    departments = repos.departments.all()
    terms = domain.referral_of(report, {m.code for d in departments for m in d.matters})
    order = _receive(uow, domain.referred_order_fields(report, terms, place, contact), SYSTEM)
    if order is None:
        return None
    order.note("ROUTING", SYSTEM, now, terms.why)
    routes = domain.route_linkage(terms.linkage, order.district, departments) if terms.linkage else None
    order.route(departments, place, SYSTEM, now, routes=routes,
                unclear_why="" if terms.matter_code else f"{terms.why}，职责待厘清")
    repos.work_orders.save(order)
    return order


def record_police_progress(uow: UnitOfWork, *, report: PoliceReport, action: str) -> WorkOrder | None:
    """The progress of a report transferred from 12345 (一键转接), kept on its work order; None when
    the report is no transfer's or its status did not change."""
    orders = uow.repos.work_orders
    order = orders.by_transferred_report(report.name)
    if order is None or not order.record_110_progress(report, action, SYSTEM, uow.now()):
        return None
    orders.save(order)
    uow.collect(order)
    return order


def follow_police_case(uow: UnitOfWork, *, news: PoliceCaseNews) -> WorkOrder | None:
    """先期处置: the progress of the station's case for an order, kept on the order (timeline, and
    RESOLVED when the case closes with an outcome that settles it); None when the order is unknown or
    the news known already."""
    orders = uow.repos.work_orders
    order = orders.get(news.order_id, for_update=True)
    if order is None or not order.follow_police_case(news, SYSTEM, uow.now()):
        return None
    orders.save(order)
    uow.collect(order)
    return order


# -- lifecycle ---------------------------------------------------------------------

def _order(uow: UnitOfWork, order_id: str) -> WorkOrder:
    order = uow.repos.work_orders.get(order_id, for_update=True)
    if order is None:
        raise NotFound(f"workOrders/{order_id}")
    return order


def _department_step(uow: UnitOfWork, order_id: str, dept_id: str,
                     apply: Callable[[WorkOrder], None]) -> WorkOrder:
    """A department's step on its part of an order."""
    if uow.repos.departments.get(dept_id) is None:
        raise NotFound(f"departments/{dept_id}")
    order = _order(uow, order_id)
    apply(order)
    uow.repos.work_orders.save(order)
    uow.collect(order)
    return order


def accept(uow: UnitOfWork, *, order_id: str, dept_id: str) -> WorkOrder:
    return _department_step(uow, order_id, dept_id, lambda o: o.accept(dept_id, uow.actor, uow.now()))


def reject(uow: UnitOfWork, *, order_id: str, dept_id: str, reason: str, suggested: str = "") -> WorkOrder:
    return _department_step(uow, order_id, dept_id,
                            lambda o: o.reject(dept_id, reason, suggested, uow.actor, uow.now()))


def start(uow: UnitOfWork, *, order_id: str, dept_id: str) -> WorkOrder:
    return _department_step(uow, order_id, dept_id, lambda o: o.start(dept_id, uow.actor, uow.now()))


def resolve(uow: UnitOfWork, *, order_id: str, dept_id: str, feedback: str, attachments: list[dict]) -> WorkOrder:
    return _department_step(uow, order_id, dept_id,
                            lambda o: o.resolve(dept_id, feedback, attachments, uow.actor, uow.now()))


def assign(uow: UnitOfWork, *, order_id: str, dept_ids: list[str], reason: str, preliminary: bool,
           place_of: Callable[[WorkOrder], Place | None]) -> WorkOrder:
    """The 12345 desk assigns an order: to named departments, by the routing, or to the local station."""
    repos = uow.repos
    actor, now = uow.actor, uow.now()
    order = _order(uow, order_id)
    departments = repos.departments.all()
    by_id = {d.dept_id: d for d in departments}
    missing = [d for d in dept_ids if d not in by_id]
    if missing:
        raise NotFound(f"departments/{missing[0]}")
    if preliminary:
        place = place_of(order)
        if place is None:
            raise FailedPrecondition(f"{order.name} has no location, so no station can handle it first",
                                     reason="NO_JURISDICTION")
        order.hand_to_police(place.station_id, place.station_name, reason or "职责不清，由属地派出所先期处置",
                             actor, now)
    else:
        if dept_ids:
            routes = [Route(by_id[d], "LEAD" if i == 0 else "COOPERATING", reason) for i, d in enumerate(dept_ids)]
        else:
            routes = domain.route_ordinary(order.matter_code, order.district, departments,
                                           order.rejected_departments())
            if not routes and order.rejected_departments():
                # Every responsible department refused once: back to the first of them.
                routes = domain.route_ordinary(order.matter_code, order.district, departments)
            if not routes:
                raise FailedPrecondition(
                    f"no department handles matter {order.matter_code or '(none)'} in "
                    f"{order.district or 'the city'}; name the departments or hand it to the police station",
                    reason="NO_RESPONSIBLE_DEPARTMENT")
        order.assign(routes, actor, now, reason)
    repos.work_orders.save(order)
    uow.collect(order)
    return order


def review(uow: UnitOfWork, *, order_id: str, satisfaction: str, comment: str) -> WorkOrder:
    """The citizen's follow-up (回访) of a resolved order."""
    repos = uow.repos
    now = uow.now()
    order = _order(uow, order_id)
    lead = order.lead()
    supervisor = None
    if lead is not None:
        dept = repos.departments.get(lead.dept_id)
        supervisor = (dept.supervisor, dept.phone) if dept else None
    order.review(satisfaction, comment, supervisor, uow.actor, now)
    if lead is not None:
        repos.work_orders.add_review(order.id, lead.dept_id, satisfaction, comment, now)
    repos.work_orders.save(order)
    uow.collect(order)
    return order


def transfer_to_110(uow: UnitOfWork, *, transfer: Transfer | None, why: str, order_id: str = "") -> WorkOrder:
    """一键转接, in the transaction: records the report intake filed on the order (a new one for a
    12345 ticket), re-checking an existing order under its lock. `transfer` None: a retry whose
    first answer is gone."""
    if transfer is None or transfer.report is None:
        # A retry: the idempotency record answers it, unless that expired in between.
        raise FailedPrecondition("the transfer's earlier record is gone; retry", reason="TRANSFER_RETRY")
    if transfer.fields is not None:
        order = create_work_order(uow, fields=transfer.fields, place=transfer.place, route=False)
    else:
        order = _order(uow, order_id)
        order.check_transferable()
    order.transfer_to_110(transfer.report, why, uow.actor, uow.now())
    uow.repos.work_orders.save(order)
    uow.collect(order)
    return order


def sweep_overdue(uow: UnitOfWork) -> list[WorkOrder]:
    """Flags open orders past their deadline (超期) at the unit of work's time, each announced."""
    orders = uow.repos.work_orders
    now = uow.now()
    flagged = []
    for order_id in orders.due(now):
        order = orders.get(order_id, for_update=True)
        if order is not None and order.mark_overdue(SYSTEM, now):
            orders.save(order)
            uow.collect(order)
            flagged.append(order)
    return flagged


# -- citizens' updates (Open311) ----------------------------------------------------

def add_citizen_update(uow: UnitOfWork, *, update: CitizenUpdate) -> tuple[CitizenUpdate, bool]:
    """A citizen's update to a request, posted by an app (市民补充说明): an entry on the order's
    timeline and the record of who sent it. The app's update id counts once: the same id again with
    the same content returns the first update (and False: nothing new), with other content it is
    ALREADY_EXISTS."""
    repos = uow.repos
    order = _order(uow, update.work_order_id)
    # Looked for under the order's lock: a repeat racing the first waits for it.
    known = repos.citizen_updates.get(update.client, update.client_update_id)
    if known is not None:
        if known.fingerprint != update.fingerprint:
            raise AlreadyExists(f"update_id {update.client_update_id!r} was already sent with other content",
                                reason="UPDATE_ID_REUSED", metadata={"update_id": update.client_update_id})
        return known, False
    update.order_status = order.status
    order.add_citizen_update(update.timeline_detail(), update.media_url, uow.actor, uow.now())
    repos.work_orders.save(order)
    update.timeline_seq = repos.work_orders.last_entry_seq(order.id, "CITIZEN_UPDATE")
    if not repos.citizen_updates.add(update):
        # The same app update id, sent at once for another order: the other one won.
        raise Aborted(f"update_id {update.client_update_id!r} is being recorded; retry", reason="UPDATE_ID_RACE")
    uow.collect(order)
    return update, True


def erase_update_contacts(uow: UnitOfWork, *, closed_before) -> int:
    """Retention: the senders' contacts of updates to orders closed before `closed_before` are erased
    (a batch a round); the timeline keeps the words without them. Returns how many."""
    found = uow.repos.citizen_updates.closed_before(closed_before)
    now = uow.now()
    for u in found:
        if u.erase_contact(now):
            uow.repos.citizen_updates.save_erased(u)
    return len(found)


# -- unreasonable requests ---------------------------------------------------------

def record_unreasonable(uow: UnitOfWork, *, fields: dict) -> UnreasonableRecord:
    """Records a request as unreasonable (不合理不合规诉求); the order it arrived as, if any, is closed
    with the standard reply."""
    repos = uow.repos
    actor, now = uow.actor, uow.now()
    fields = dict(fields)
    order = None
    if fields["work_order"]:
        order = repos.work_orders.get(fields["work_order"].removeprefix("workOrders/"), for_update=True)
        if order is None:
            raise NotFound(fields["work_order"])
        fields["citizen_phone"] = fields["citizen_phone"] or order.citizen_phone
        fields["citizen_name"] = fields["citizen_name"] or order.citizen_name
        fields["description"] = fields["description"] or order.description
    total = 0
    if fields["citizen_phone"]:
        since = now - rules.PRIOR_WINDOW
        total = (repos.work_orders.count_from(fields["citizen_phone"], since)
                 + repos.unreasonable.count_from(fields["citizen_phone"], since))
    record = UnreasonableRecord.create(fields, prior_requests=total - (1 if order is not None else 0),
                                       actor=actor, now=now)
    repos.unreasonable.add(record)
    if order is not None:
        order.close_as_unreasonable(record.name, rules.CATEGORY_LABEL[record.category], record.standard_reply,
                                    actor, now)
        repos.work_orders.save(order)
    uow.collect(order, record)
    return record


def overturn(uow: UnitOfWork, *, record_id: str, reason: str,
             place_of: Callable[[WorkOrder], Place | None]) -> UnreasonableRecord:
    """A supervisor overturns a record: the request is handled as an ordinary work order."""
    repos = uow.repos
    actor, now = uow.actor, uow.now()
    record = repos.unreasonable.get(record_id, for_update=True)
    if record is None:
        raise NotFound(f"unreasonableRequests/{record_id}")
    record.overturn(reason, actor, now)
    departments = repos.departments.all()
    if record.work_order:
        order = repos.work_orders.get(record.work_order.removeprefix("workOrders/"), for_update=True)
        order.reopen_overturned(reason, actor, now)
        uow.collect(order)
    else:
        known = {m.code for d in departments for m in d.matters}
        matter, _ = domain.infer_matter("", record.description, known)
        order = _receive(uow, dict(
            source="HOTLINE_12345", matter_code=matter, description=record.description, urgency=4,
            citizen_phone=record.citizen_phone, citizen_name=record.citizen_name), actor)
        order.unreasonable_request = record.name
        order.note("OVERTURNED", actor, now, f"督导改判为正常诉求，生成工单：{reason}", reason)
        record.work_order = order.name
    order.route(departments, place_of(order), actor, now)
    repos.work_orders.save(order)
    repos.unreasonable.save(record)
    uow.collect(record)
    return record


# -- from 110: the intake feed -----------------------------------------------------

@dataclass(frozen=True)
class ReportAhead:
    """What a 110 report to refer needs from intake, read before the consumer's transaction: its
    place, and its caller's contact (None: not one referral refers, or intake does not know it)."""

    place: Place | None = None
    contact: CitizenContact | None = None


def ahead_of_referral(context: Context, event, payload: intake_pb.IncidentReported) -> ReportAhead | None:
    """Before the transaction: the place of a report that will be referred and, for one that gets an
    order (`domain.referable`: not 12345's own transfers, which have their citizen already) and
    has none yet, its caller's contact. The event carries no caller data; intake records the read. Intake away raises
    `Unavailable`: the consumer waits and retries the event, it does not park it."""
    report = mapping.police_report_from_pb(payload.report)
    if not domain.to_refer(report):
        return None
    place = context.intake.place(report.lon, report.lat, report.station_id)
    wanted = domain.referable(report) and not context.referred(report.name)
    return ReportAhead(place, context.intake.caller_contact(report.name) if wanted else None)


def ahead_of_update(context: Context, event, payload: intake_pb.ReportUpdated) -> ReportAhead | None:
    if payload.action in domain.REFER_ON_UPDATE:
        return ahead_of_referral(context, event, payload)
    return None


def on_reported(uow: UnitOfWork, event, payload: intake_pb.IncidentReported,
                prepared: ReportAhead | None = None) -> None:
    """intake.IncidentReported: a transferred report's first status, or a report to refer."""
    report = mapping.police_report_from_pb(payload.report)
    if record_police_progress(uow, report=report, action="REPORTED"):
        return
    if domain.to_refer(report):
        ahead = prepared or ReportAhead()
        refer_report(uow, report=report, place=ahead.place, contact=ahead.contact)


def on_updated(uow: UnitOfWork, event, payload: intake_pb.ReportUpdated, prepared: ReportAhead | None = None) -> None:
    """intake.ReportUpdated: a transferred report's progress, or a report that needs an order now."""
    report = mapping.police_report_from_pb(payload.report)
    if record_police_progress(uow, report=report, action=payload.action):
        return
    if domain.to_refer_after(payload.action, report):
        ahead = prepared or ReportAhead()
        refer_report(uow, report=report, place=ahead.place, contact=ahead.contact)


def on_police_case(uow: UnitOfWork, event, payload) -> None:
    """dispatch.CaseCreated / AssignmentChanged / CaseUpdated: news of an order's police case."""
    news = mapping.police_case_news(payload)
    if news is not None:
        follow_police_case(uow, news=news)


# From 110: the intake feed. What a report that will be referred needs from intake (its place, its
# caller's contact) is read before the consumer's transaction (`prepare`), so no call holds a
# connection.
EVENT_HANDLERS = {
    "intake": {
        "intake.IncidentReported": Subscription(intake_pb.IncidentReported, on_reported, prepare=ahead_of_referral),
        "intake.ReportUpdated": Subscription(intake_pb.ReportUpdated, on_updated, prepare=ahead_of_update),
    },
    # The police cases of orders in 先期处置 (dispatch names each by its order).
    "dispatch": {
        "dispatch.CaseCreated": Subscription(dispatch_pb.CaseCreated, on_police_case),
        "dispatch.AssignmentChanged": Subscription(dispatch_pb.AssignmentChanged, on_police_case),
        "dispatch.CaseUpdated": Subscription(dispatch_pb.CaseUpdated, on_police_case),
    },
}
