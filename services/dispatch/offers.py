"""Offers straight to the officer's phone (派单/接单).

A case is offered to the recommended units as soon as it opens; a dispatcher
can offer it to any available unit by hand (cross-station help, a legal
officer to guide evidence collection). An offer that is declined or not
accepted in time goes to the next suitable unit: the sweeper looks for
expired offers in the background. `AssignmentHub` tails the service's own
feed and pushes every change of a unit's assignments to its open
WatchAssignments streams.
"""
from __future__ import annotations

import logging
import math
import queue
import threading
import uuid
from datetime import datetime

from smart110.common.v1 import events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime.auth import AuthContext
from services.runtime.errors import FailedPrecondition, NotFound

from .context import SYSTEM, Dispatch, entry
from .domain import ENDED_OFFER, KIND_LABELS, Assignment, DispatchCase, Recommendation, Unit
from .lifecycle import authorize, load, record, require_move
from .recommend import Need, recommend
from .store import AssignmentRepository, CaseRepository, UnitRepository

log = logging.getLogger("smart110.dispatch.offers")

ROLE_LABELS = {"PRIMARY": "主办", "SUPPORT": "协办", "SPECIALIST": "专业支援", "REINFORCEMENT": "增援",
               "LEGAL_GUIDANCE": "法制指导"}
SPECIALIST_KINDS = {"CRIMINAL_INVESTIGATION", "PUBLIC_SECURITY", "ECONOMIC_CRIME", "NARCOTICS", "TRAFFIC",
                    "SPECIAL_POLICE", "DRONE", "ANTI_FRAUD"}


# Units are first looked for within this distance of the incident (plus all of
# the station's own); the answer is exact whenever every pick is faster than
# anything outside could be, else all units are ranked.
SEARCH_RADIUS_M = 3000.0


def recommend_for(conn, d: Dispatch, case: DispatchCase, at: datetime, *, exclude: set[str] = frozenset(),
                  needs: list[Need] | None = None):
    """(picks, gaps) for a case now, by the capability matrix."""
    m = d.matrix
    needs = needs if needs is not None else m.needs(case.incident_type, at)
    kinds = m.all_kinds(needs)
    repo = UnitRepository(conn, now=at)
    kw = dict(needs=needs, station_id=case.station_id, lon=case.lon, lat=case.lat,
              stale_before=d.stale_before(at), exclude=exclude, m=m)
    if case.lon is not None and kinds:
        dlat = SEARCH_RADIUS_M / 111_320.0
        dlon = dlat / max(math.cos(math.radians(case.lat)), 0.01)
        box = (case.lon - dlon, case.lat - dlat, case.lon + dlon, case.lat + dlat)
        picks, gaps = recommend(repo.candidates(kinds, station_id=case.station_id, box=box), **kw)
        # No unit of a need's kinds outside the box can arrive sooner than this.
        bound = {n.capability: SEARCH_RADIUS_M * m.road_factor / max(m.speed(k) for k in n.kinds) for n in needs}
        if not gaps and all(p.eta_seconds <= bound[p.capability] for p in picks):
            return picks, gaps
    return recommend(repo.candidates(kinds, station_id=case.station_id, box=None), **kw)


def _new_assignment(case: DispatchCase, unit: Unit, *, role: str, capability: str, reason: str, at: datetime,
                    d: Dispatch, arrival_target_s: int) -> Assignment:
    return Assignment(
        id=uuid.uuid4().hex[:12], case_id=case.id, unit_id=unit.unit_id, call_sign=unit.call_sign, kind=unit.kind,
        station_id=unit.station_id, officers=list(unit.officers), role=role, capability=capability,
        state="OFFERED", version=0, reason=reason, arrival_target_s=arrival_target_s, offer_time=at,
        offer_expire_time=d.offer_expiry(at), update_time=at)


def _offer(conn, d: Dispatch, case: DispatchCase, unit: Unit, *, role: str, capability: str, reason: str,
           actor: AuthContext, at: datetime) -> pb.Assignment:
    a = _new_assignment(case, unit, role=role, capability=capability, reason=reason, at=at, d=d,
                        arrival_target_s=case.arrival_target_s)
    where = f"（跨所协作，{unit.station_id}）" if unit.station_id != case.station_id else ""
    detail = (f"派单给{unit.call_sign}（{KIND_LABELS.get(unit.kind, unit.kind)}，{ROLE_LABELS.get(role, role)}）"
              f"{where}：{reason}")
    return record(conn, d, case, a, previous="", actor=actor, at=at, detail=detail)


def offer_recommended(conn, d: Dispatch, case: DispatchCase, picks: list[Recommendation], at: datetime) -> None:
    """Offers a new case to each recommended unit; a unit taken meanwhile is replaced by the next."""
    units = UnitRepository(conn, now=at, stale_before=d.stale_before(at))
    for p in picks:
        unit = units.claim_for_offer(p.unit_id)
        if unit is not None:
            _offer(conn, d, case, unit, role=p.role, capability=p.capability, reason=p.reason, actor=SYSTEM, at=at)
        else:
            offer_next(conn, d, case, d.matrix.need(p.capability, p.role), at)


def offer_next(conn, d: Dispatch, case: DispatchCase, need: Need, at: datetime) -> bool:
    """Offers the case to the best unit for `need` that has not had it yet; False when there is none."""
    units = UnitRepository(conn, now=at, stale_before=d.stale_before(at))
    tried = {a.unit_id for a in case.assignments}
    for _ in range(5):  # a pick may be claimed by a concurrent offer; try the next one
        picks, _gaps = recommend_for(conn, d, case, at, exclude=tried, needs=[need])
        if not picks:
            break
        p = picks[0]
        tried.add(p.unit_id)
        unit = units.claim_for_offer(p.unit_id)
        if unit is not None:
            _offer(conn, d, case, unit, role=p.role, capability=p.capability, reason=p.reason,
                   actor=SYSTEM, at=at)
            return True
    CaseRepository(conn).save(case, [entry(SYSTEM, at, "NO_UNIT", f"暂无可接单的{need.label}，请指挥员调派")])
    return False


def offer_by_hand(conn, d: Dispatch, *, case_id: str, unit_id: str, role: str, reason: str,
                  actor: AuthContext) -> pb.Assignment:
    """A dispatcher offers the case to a chosen unit (OfferCase)."""
    at = d.now()
    case = CaseRepository(conn).get(case_id, lock=True, with_timeline=False)
    if case is None:
        raise NotFound(f"cases/{case_id}")
    units = UnitRepository(conn, now=at, stale_before=d.stale_before(at))
    unit = units.get(unit_id, lock=True)
    if unit is None:
        raise NotFound(f"units/{unit_id}")
    if case.status == "CLOSED":
        raise FailedPrecondition(f"{case.name} is closed", reason="CASE_CLOSED")
    if any(a.unit_id == unit_id and a.state not in ENDED_OFFER for a in case.assignments):
        raise FailedPrecondition(f"units/{unit_id} already has {case.name}", reason="ALREADY_ON_CASE")
    if not unit.on_duty:
        raise FailedPrecondition(f"units/{unit_id} is not on duty", reason="UNIT_OFF_DUTY")
    if unit.status != "AVAILABLE":
        raise FailedPrecondition(f"units/{unit_id} is {unit.status}, not available", reason="UNIT_NOT_AVAILABLE",
                                 metadata={"status": unit.status})
    if role == "LEGAL_GUIDANCE" and unit.kind != "LEGAL_OFFICER":
        raise FailedPrecondition("legal guidance needs a legal officer (法制员) unit", reason="ROLE_NEEDS_LEGAL_OFFICER")
    role = role or _default_role(case, unit)
    units.claim_for_offer(unit_id)
    text = reason or "指挥员指定派单"
    return _offer(conn, d, case, unit, role=role, capability=d.matrix.capability_of_kind(unit.kind), reason=text,
                  actor=actor, at=at)


def _default_role(case: DispatchCase, unit: Unit) -> str:
    if unit.kind == "LEGAL_OFFICER":
        return "LEGAL_GUIDANCE"
    if unit.kind in SPECIALIST_KINDS:
        return "SPECIALIST"
    live = [a for a in case.assignments if a.state not in ENDED_OFFER]
    return "REINFORCEMENT" if any(a.role == "PRIMARY" for a in live) else "PRIMARY"


def _end_offer(conn, d: Dispatch, case: DispatchCase, a: Assignment, *, state: str, actor: AuthContext,
               at: datetime, detail: str, reason: str = "") -> pb.Assignment:
    previous, a.state = a.state, state
    if state == "DECLINED":
        a.decline_reason = reason
    msg = record(conn, d, case, a, previous=previous, actor=actor, at=at, detail=detail, reason=reason)
    if case.status != "CLOSED" and a.capability and not _need_covered(case, a):
        offer_next(conn, d, case, d.matrix.need(a.capability, a.role), at)
    return msg


def _need_covered(case: DispatchCase, ended: Assignment) -> bool:
    """Another live assignment of the case already covers the ended one's capability."""
    return any(x.id != ended.id and x.capability == ended.capability and x.state not in ENDED_OFFER
               for x in case.assignments)


def decline(conn, d: Dispatch, *, case_id: str, assignment_id: str, reason: str, actor: AuthContext
            ) -> pb.Assignment:
    case, a = load(conn, case_id, assignment_id)
    unit = UnitRepository(conn, now=d.now()).get(a.unit_id)
    authorize(actor, a, unit.officers if unit else [])
    require_move(a, "DECLINED")
    detail = f"{a.call_sign}拒单" + (f"：{reason}" if reason else "")
    return _end_offer(conn, d, case, a, state="DECLINED", actor=actor, at=d.now(), detail=detail, reason=reason)


def expire_due(d: Dispatch, engine, *, limit: int = 100) -> int:
    """Expires offers past their time and offers the case to the next unit; returns how many expired."""
    at = d.now()
    with engine.connect() as conn:
        due = AssignmentRepository(conn).due_offers(at, limit)
    expired = 0
    for case_id, assignment_id in due:
        with engine.begin() as conn:
            case, a = load(conn, case_id, assignment_id)
            if a.state != "OFFERED" or a.offer_expire_time is None or a.offer_expire_time > at:
                continue  # accepted or handled by another sweeper meanwhile
            _end_offer(conn, d, case, a, state="EXPIRED", actor=SYSTEM, at=at,
                       detail=f"{a.call_sign}超过{d.settings.offer_timeout_s:.0f}秒未接单，转派下一警力")
            expired += 1
    return expired


def cancel_open_offers(conn, d: Dispatch, case: DispatchCase, at: datetime) -> None:
    """The case closed: offers nobody answered are withdrawn."""
    for a in list(case.assignments):
        if a.state == "OFFERED":
            AssignmentRepository(conn).get(case.id, a.id, lock=True)
            previous, a.state = a.state, "CANCELLED"
            record(conn, d, case, a, previous=previous, actor=SYSTEM, at=at, detail=f"警情已办结，撤销对{a.call_sign}的派单")


class _Alive:
    """A stand-in RPC context for the hub's own reading of the feed."""

    def __init__(self, stopped: threading.Event):
        self.stopped = stopped

    def is_active(self) -> bool:
        return not self.stopped.is_set()


class AssignmentHub:
    """Fans the service's own AssignmentChanged events out to the units' open watch streams.

    Reading the outbox (not in-process calls) means an offer made by any
    replica reaches a phone connected to any other.
    """

    def __init__(self, feed):
        self.feed = feed
        self._subscribers: dict[str, set[queue.Queue]] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is not None:
                return
            start = self.feed.latest_sequence()
            self._thread = threading.Thread(target=self._run, args=(start,), name="assignment-hub", daemon=True)
            self._thread.start()

    def subscribe(self, unit_id: str) -> queue.Queue:
        self._ensure_started()
        q: queue.Queue = queue.Queue()
        with self._lock:
            self._subscribers.setdefault(unit_id, set()).add(q)
        return q

    def unsubscribe(self, unit_id: str, q: queue.Queue) -> None:
        with self._lock:
            subs = self._subscribers.get(unit_id)
            if subs:
                subs.discard(q)
                if not subs:
                    del self._subscribers[unit_id]

    def start(self) -> None:
        self._ensure_started()

    def stop(self) -> None:
        self._stopped.set()

    def _run(self, after: int) -> None:
        while not self._stopped.is_set():
            try:
                request = events_pb2.StreamEventsRequest(after_sequence=after, types=["dispatch.AssignmentChanged"])
                for event in self.feed.stream(request, _Alive(self._stopped)):
                    after = event.sequence
                    changed = pb.AssignmentChanged()
                    event.payload.Unpack(changed)
                    unit_id = changed.assignment.unit.removeprefix("units/")
                    with self._lock:
                        targets = list(self._subscribers.get(unit_id, ()))
                    for q in targets:
                        q.put(changed.assignment)
                if self.feed.closed:
                    return
            except Exception:  # noqa: BLE001 - resume from the last event seen
                log.exception("assignment hub lost the feed; resuming after %d", after)
                self._stopped.wait(1.0)
