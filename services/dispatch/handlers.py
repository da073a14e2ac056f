"""Dispatch use cases: one function each, on a unit of work. The case aggregate makes the
decisions and records the events; a use case loads what it needs, asks the case, and saves.

"A report becomes a case": `open_case_for_report` recommends units, opens the case (which hands
a fraud case off for stop-payment), stores it, then offers it to each recommended unit
(`_offer_recommended`, `_offer_next`); so does a 12345 work order the police handle first
(`open_case_for_work_order`). `EVENT_HANDLERS` at the end names the feeds and event types dispatch
consumes.
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta

from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb

from services.runtime.consumer import Subscription
from services.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.runtime.ids import new_id
from services.runtime.timeutil import from_pb
from services.runtime.uow import UnitOfWork

from . import domain, mapping
from .domain import (
    SYSTEM, AccessGrant, Assignment, CentreError, Context, DispatchCase, Need, PositionFix, Receipt, Recommendation,
    ReportFacts, Shift, StopPayment, Unit,
)

log = logging.getLogger("smart110.dispatch.handlers")
# The case the panic button opens (民警紧急求助).
EMERGENCY_TYPE = "OFFICER_EMERGENCY"

# What a use case on an assignment answers: the case as it stood after the change, and the assignment.
Changed = tuple[DispatchCase, Assignment]


# -- recommendation --------------------------------------------------------------------------------

def _recommend(uow: UnitOfWork, *, station_id: str, lon: float | None, lat: float | None, needs: list[Need],
               at: datetime, exclude: set[str] = frozenset()) -> tuple[list[Recommendation], list[Need]]:
    """(picks, gaps) for an incident of a station's jurisdiction at (lon, lat), among the units free at `at`."""
    ctx: Context = uow.context
    units = uow.repos.units
    district = ctx.district_stations(station_id)
    return domain.search(lambda kinds, box: units.candidates(kinds, station_id=station_id, box=box, at=at,
                                                             stations=district),
                         needs=needs, station_id=station_id, lon=lon, lat=lat, stale_before=ctx.stale_before(at),
                         m=ctx.matrix, exclude=exclude)


# -- a report becomes a case -------------------------------------------------------------------------

def open_case_for_report(uow: UnitOfWork, *, report: ReportFacts) -> DispatchCase | None:
    """A police report becomes a pending case for its station, offered at once to the recommended units.

    Returns None when the report is not a police matter, is a duplicate merged
    into another report, or already has a case.
    """
    if not report.needs_case:
        return None
    ctx: Context = uow.context
    repos, now = uow.repos, uow.now()
    grid_officer = repos.units.grid_officer(report.grid_id, at=now, stale_before=ctx.stale_before(now)) \
        if domain.community_matter(report.incident_type, report.priority) else None
    if grid_officer is not None:
        # A community matter goes straight to the grid's community officer (网格责任民警直接派单).
        picks, gaps = [Recommendation(
            unit_id=grid_officer.unit_id, call_sign=grid_officer.call_sign, kind=grid_officer.kind,
            station_id=grid_officer.station_id, role="PRIMARY", distance_m=0.0, eta_seconds=0,
            reason=f"网格{report.grid_id}责任民警，社区警情直接派单", capability="COMMUNITY")], []
    else:
        picks, gaps = _recommend(uow, station_id=report.station_id, lon=report.lon, lat=report.lat,
                                 needs=ctx.matrix.needs(report.incident_type, now), at=now)
    case = DispatchCase.open(report, level=domain.initial_level(report.incident_type, report.priority),
                             arrival_target_s=repos.grids.arrival_target_s(report.grid_id), picks=picks, gaps=gaps,
                             now=now)
    if not repos.cases.add(case):
        return None
    _offer_recommended(uow, case, picks, now)
    _save(uow, case)
    return case


def _offer_recommended(uow: UnitOfWork, case: DispatchCase, picks: list[Recommendation], at: datetime) -> None:
    """Offers a new case to each recommended unit; a unit taken meanwhile is replaced by the next."""
    ctx: Context = uow.context
    for p in picks:
        unit = uow.repos.units.claim_for_offer(p.unit_id, at=at, stale_before=ctx.stale_before(at))
        if unit is not None:
            case.offer(unit, role=p.role, capability=p.capability, reason=p.reason, actor=SYSTEM, at=at,
                       expire_at=ctx.offer_expiry(at))
        else:
            _offer_next(uow, case, ctx.matrix.need(p.capability, p.role), at)


def _offer_next(uow: UnitOfWork, case: DispatchCase, need: Need, at: datetime) -> bool:
    """Offers the case to the best unit for `need` that has not had it yet; False when there is none."""
    ctx: Context = uow.context
    tried = case.units_tried()
    for _ in range(5):  # a pick may be claimed by a concurrent offer; try the next one
        picks, _gaps = _recommend(uow, station_id=case.station_id, lon=case.lon, lat=case.lat, needs=[need], at=at,
                                  exclude=tried)
        if not picks:
            break
        p = picks[0]
        tried.add(p.unit_id)
        unit = uow.repos.units.claim_for_offer(p.unit_id, at=at, stale_before=ctx.stale_before(at))
        if unit is not None:
            case.offer(unit, role=p.role, capability=p.capability, reason=p.reason, actor=SYSTEM, at=at,
                       expire_at=ctx.offer_expiry(at))
            return True
    case.no_unit_for(need, at)
    return False


def _replace(uow: UnitOfWork, case: DispatchCase, ended: Assignment, at: datetime) -> None:
    """An offer ended: the next suitable unit gets it, unless the need is covered (or the case closed),
    or too many offers went unanswered for the case's level: then offers stop and the station's duty
    dispatcher chooses (no wandering across the city)."""
    if not case.needs_replacement(ended):
        return
    limit = uow.context.settings.max_unanswered_offers.get(case.level, 3)
    if case.stop_offering(limit, at):
        return
    _offer_next(uow, case, uow.context.matrix.need(ended.capability, ended.role), at)


def _save(uow: UnitOfWork, case: DispatchCase) -> None:
    """Writes the case and its units' new statuses; its events go out at commit."""
    for move in case.pull_unit_moves():
        uow.repos.units.set_status(move.unit_id, move.status)
    uow.repos.cases.save(case)
    uow.collect(case)


def open_case_for_work_order(uow: UnitOfWork, *, order: ReportFacts) -> DispatchCase | None:
    """先期处置: a 12345 work order handed to a police station while responsibility is unclear becomes
    a case of that station, offered to units as any police report is (`mapping.preliminary_order_from_pb`).

    One case per order, named by it: None when the order already has one (a redelivered event, or
    the order handed to the police again after a reassignment).
    """
    if uow.repos.cases.id_by_report(order.name) is not None:
        return None
    return open_case_for_report(uow, report=order)


def apply_report_update(uow: UnitOfWork, *, report: ReportFacts, action: str) -> DispatchCase | None:
    """Follows intake's changes to a report (intake.ReportUpdated).

    A report corrected into a police matter, or split off a master it had been
    merged into (UNMERGED), needs a case of its own. A correction of an open
    case's incident type or priority is carried over to the case, kept in its
    timeline and announced; the units already offered stay, and the
    dispatcher may ask RecommendUnits for more. Whatever the change, an open
    case follows its report becoming a silent alarm (无声报警) or ceasing to be one.
    """
    repos, at = uow.repos, uow.now()
    case_id = repos.cases.id_by_report(report.name)
    if case_id is None:
        return open_case_for_report(uow, report=report) if action in ("CORRECTED", "UNMERGED") else None
    if action != "CORRECTED":
        # Most updates change nothing of the case: it is locked only when its silence has to follow.
        seen = repos.cases.brief(case_id)  # the case's row only: one query for most updates
        if seen is None or seen.silent == report.silent:
            return None
    case = repos.cases.get(case_id, lock=True)
    changed = case.follow_silence(report.silent, at=at)
    if action == "CORRECTED":
        changed = case.reclassify(incident_type=report.incident_type, priority=report.priority, at=at) or changed
    if not changed:
        return None
    _save(uow, case)
    return case


# -- offers and the assignment lifecycle ---------------------------------------------------------------

def _load(uow: UnitOfWork, case_id: str, assignment_id: str) -> tuple[DispatchCase, Assignment, list[dict]]:
    """The case (locked, with its assignments), one of its assignments, and the officers of its unit now."""
    case = uow.repos.cases.get(case_id, lock=True)
    name = f"cases/{case_id}/assignments/{assignment_id}"
    if case is None:
        raise NotFound(name)
    uow.in_scope(name, *case.stations)
    a = case.assignment(assignment_id)
    unit = uow.repos.units.get(a.unit_id, at=uow.now())
    return case, a, unit.officers if unit else []


def offer_by_hand(uow: UnitOfWork, *, case_id: str, unit_id: str, role: str, reason: str) -> Changed:
    """A dispatcher offers the case to a chosen unit (OfferCase)."""
    ctx: Context = uow.context
    repos, at = uow.repos, uow.now()
    case = repos.cases.get(case_id, lock=True)
    if case is None:
        raise NotFound(f"cases/{case_id}")
    uow.in_scope(f"cases/{case_id}", *case.stations)
    unit = repos.units.get(unit_id, at=at, stale_before=ctx.stale_before(at), lock=True)
    if unit is None:
        raise NotFound(f"units/{unit_id}")
    district = ctx.district_stations(case.station_id) or {unit.station_id}
    if unit.station_id not in district and not uow.actor.has_role("commander", "service"):
        raise PermissionDenied(f"{unit.name} is of another district than {case.name}: a cross-district offer is the "
                               "commander's decision", reason="CROSS_DISTRICT",
                               metadata={"unit_station_id": unit.station_id, "case_station_id": case.station_id})
    a = case.offer_by_hand(unit, role=role, reason=reason, capability=ctx.matrix.capability_of_kind(unit.kind),
                           actor=uow.actor, at=at, expire_at=ctx.offer_expiry(at))
    repos.units.claim_for_offer(unit_id, at=at)
    _save(uow, case)
    return case, a


def accept(uow: UnitOfWork, *, case_id: str, assignment_id: str) -> Changed:
    case, a, officers = _load(uow, case_id, assignment_id)
    case.accept(a.id, actor=uow.actor, unit_officers=officers, at=uow.now())
    _save(uow, case)
    return case, a


def advance(uow: UnitOfWork, *, case_id: str, assignment_id: str, target: str) -> Changed:
    case, a, officers = _load(uow, case_id, assignment_id)
    case.advance(a.id, target=target, actor=uow.actor, unit_officers=officers, at=uow.now())
    _save(uow, case)
    return case, a


def upload_evidence(uow: UnitOfWork, *, case_id: str, assignment_id: str, content_type: str, content: bytes,
                    file_name: str) -> domain.Evidence:
    """An officer's photo for the report-back, kept with its bytes (the type and size were checked)."""
    case, a, officers = _load(uow, case_id, assignment_id)
    case.gathering_evidence(a.id, actor=uow.actor, unit_officers=officers)
    at = uow.now()
    e = domain.Evidence(id=new_id(at, digits=16), case_id=case.id, assignment_id=a.id, content_type=content_type,
                        size_bytes=len(content), sha256=domain.evidence.digest(content), file_name=file_name,
                        uploaded_by=uow.actor.subject, create_time=at)
    uow.repos.evidence.add(e, content)
    return e


def _stored_evidence(uow: UnitOfWork, case_id: str, assignment_id: str, given: list[dict]) -> list[dict]:
    """The report-back's attachments, those uploaded to dispatch (named as its evidence) as dispatch
    stored them; one that names evidence of another assignment, or none, is refused."""
    if not any(domain.evidence.NAME.match(e["storage_uri"]) for e in given):
        return given
    stored = uow.repos.evidence.of_assignment(case_id, assignment_id)
    wrong = [(f"evidence[{i}].storage_uri", "names no evidence uploaded for this assignment")
             for i, e in enumerate(given) if domain.evidence.NAME.match(e["storage_uri"]) and e["storage_uri"] not in stored]
    if wrong:
        raise InvalidArgument(wrong)
    return [stored[e["storage_uri"]].attachment() if e["storage_uri"] in stored else e for e in given]


def report_back(uow: UnitOfWork, *, case_id: str, assignment_id: str, outcome: str, notes: str,
                evidence: list[dict]) -> Changed:
    case, a, officers = _load(uow, case_id, assignment_id)
    evidence = _stored_evidence(uow, case.id, a.id, evidence)
    case.report_back(a.id, outcome=outcome, notes=notes, evidence=evidence, actor=uow.actor, unit_officers=officers,
                     at=uow.now())
    _save(uow, case)
    return case, a


def decline(uow: UnitOfWork, *, case_id: str, assignment_id: str, reason: str) -> Changed:
    case, a, officers = _load(uow, case_id, assignment_id)
    at = uow.now()
    case.decline(a.id, reason=reason, actor=uow.actor, unit_officers=officers, at=at)
    answer = case.snapshot(), a.snapshot()
    _replace(uow, case, a, at)
    _save(uow, case)
    return answer


def due_offers(uow: UnitOfWork, *, limit: int = 100) -> list[tuple[str, str]]:
    """(case id, assignment id) of the offers past their expiry now."""
    return uow.repos.cases.due_offers(uow.now(), limit)


def expire_offer(uow: UnitOfWork, *, case_id: str, assignment_id: str) -> Assignment | None:
    """An offer not accepted in time goes to the next suitable unit; None when it was accepted (or
    handled by another sweeper) meanwhile."""
    ctx: Context = uow.context
    case = uow.repos.cases.get(case_id, lock=True)
    if case is None:
        raise NotFound(f"cases/{case_id}/assignments/{assignment_id}")
    at = uow.now()
    a = case.expire(assignment_id, at=at, timeout_s=ctx.settings.offer_timeout_s)
    if a is None:
        return None
    _replace(uow, case, a, at)
    _save(uow, case)
    return a


# -- closing and cancelling (办结、撤销) ------------------------------------------------------------------

def close_case(uow: UnitOfWork, *, case_id: str, outcome: str, notes: str) -> DispatchCase:
    """The command closes a case with an outcome (CloseCase)."""
    case = _whole_case(uow, case_id)
    case.close(outcome=outcome, notes=notes, actor=uow.actor, at=uow.now())
    _save(uow, case)
    return case


def cancel_case(uow: UnitOfWork, *, case_id: str, reason: str, notes: str) -> DispatchCase:
    """The command cancels a case (CancelCase)."""
    case = _whole_case(uow, case_id)
    case.cancel(reason=reason, notes=notes, actor=uow.actor, at=uow.now())
    _save(uow, case)
    return case


def unanswered_cases(uow: UnitOfWork, *, limit: int = 100) -> list[str]:
    """Cases nobody took since automatic offers stopped longer ago than the settings allow."""
    before = uow.now() - timedelta(seconds=uow.context.settings.unanswered_escalate_s)
    return uow.repos.cases.unanswered_since(before, limit)


def escalate_unanswered(uow: UnitOfWork, *, case_id: str) -> DispatchCase | None:
    """Raises a case nobody took to district command; None when it was taken or raised meanwhile."""
    case = uow.repos.cases.get(case_id, lock=True)
    if case is None or not case.escalate_unanswered(uow.now()):
        return None
    _save(uow, case)
    return case


# -- levels, stop-payment, follow-up -------------------------------------------------------------------

def _whole_case(uow: UnitOfWork, case_id: str) -> DispatchCase:
    """The case, locked, with everything it owns (what these use cases answer with)."""
    case = uow.repos.cases.get(case_id, lock=True, timeline=True, stop_payments=True)
    if case is None:
        raise NotFound(f"cases/{case_id}")
    uow.in_scope(f"cases/{case_id}", *case.stations)
    return case


def change_level(uow: UnitOfWork, *, case_id: str, level: str, reason: str) -> DispatchCase:
    """Escalates or de-escalates a case, kept in its timeline and announced as dispatch.CaseUpdated."""
    case = _whole_case(uow, case_id)
    case.change_level(level, reason=reason, actor=uow.actor, at=uow.now())
    _save(uow, case)
    return case


def request_stop_payment(uow: UnitOfWork, *, case_id: str, bank: str, victim_account: str,
                         amount_fen: int) -> StopPayment:
    """A dispatcher's stop-payment request with account details learnt after the report."""
    case = uow.repos.cases.get(case_id, lock=True, stop_payments=True)
    if case is None:
        raise NotFound(f"cases/{case_id}")
    uow.in_scope(f"cases/{case_id}", *case.stations)
    sp = case.request_stop_payment(bank=bank, victim_account=victim_account, amount_fen=amount_fen,
                                   actor=uow.actor, at=uow.now())
    _save(uow, case)
    return sp


def review_follow_up(uow: UnitOfWork, *, case_id: str, decision: str, answer: str) -> DispatchCase:
    """The station chief's review of an unsatisfied follow-up: reopened (offered again to the
    recommended units) or answered in writing."""
    case = _whole_case(uow, case_id)
    at = uow.now()
    case.review(decision=decision, answer=answer, actor=uow.actor, at=at)
    if decision == "REOPEN":
        ctx: Context = uow.context
        picks, _gaps = _recommend(uow, station_id=case.station_id, lon=case.lon, lat=case.lat,
                                  needs=ctx.matrix.needs(case.incident_type, at)[:1], at=at)
        _offer_recommended(uow, case, picks, at)
    _save(uow, case)
    return case


def rate_case(uow: UnitOfWork, *, case_id: str, satisfaction: str, comment: str) -> DispatchCase:
    """The citizen's follow-up (回访) after report-back."""
    case = _whole_case(uow, case_id)
    case.rate(satisfaction=satisfaction, comment=comment, actor=uow.actor, at=uow.now())
    _save(uow, case)
    return case


# -- the anti-fraud centre's answers ---------------------------------------------------------------------

def claim_stop_payment(uow: UnitOfWork, *, sender: str, at: datetime, policy: domain.RetryPolicy,
                       skip: set[str]) -> tuple[StopPayment, DispatchCase] | None:
    """The next hand-off due at `at` that nobody has in hand, leased to `sender`, with its case."""
    sp = uow.repos.stop_payments.claim_next(sender=sender, now=at, lease_until=at + policy.lease, skip=skip)
    if sp is None:
        return None
    return sp, uow.repos.cases.brief(sp.case_id)


def record_centre_answer(uow: UnitOfWork, *, stop_payment_id: str, sender: str, answer: Receipt | CentreError,
                         at: datetime, policy: domain.RetryPolicy) -> StopPayment | None:
    """What the centre answered `sender` (at `at`, the sender's pass): the hand-off moves on, its
    news is kept in the case timeline and announced. None when the lease passed to another sender
    during the call: that one's answer (same key, same receipt) is the one recorded."""
    sp = uow.repos.stop_payments.get(stop_payment_id, lock=True)
    if sp.claimed_by != sender:
        log.warning("the lease on %s passed to another sender during the call; its answer counts",
                    sp.idempotency_key)
        return None
    news = sp.answered(answer, at, policy)
    uow.repos.stop_payments.save(sp)
    if news is not None:
        case = uow.repos.cases.get(sp.case_id)
        case.stop_payment_changed(sp, news, at)
        _save(uow, case)
    return sp


def postpone_stop_payment(uow: UnitOfWork, *, stop_payment_id: str, sender: str, why: str, at: datetime,
                          policy: domain.RetryPolicy) -> StopPayment | None:
    """`sender` could not deliver the hand-off (the victim's contact could not be read): it is due
    again after the retry delay and its lease released. None when the lease passed to another
    sender meanwhile (that one decides)."""
    sp = uow.repos.stop_payments.get(stop_payment_id, lock=True)
    if sp.claimed_by != sender:
        return None
    sp.postponed(why, at, policy)
    uow.repos.stop_payments.save(sp)
    return sp


def next_stop_payment_due(uow: UnitOfWork) -> datetime | None:
    return uow.repos.stop_payments.next_due()


# -- units and the roster ------------------------------------------------------------------------------

def update_unit(uow: UnitOfWork, *, unit_id: str, values: dict, paths: list[str]) -> Unit:
    """Changes a unit's static data (call sign, kind, station, skills, vehicle, officers)."""
    ctx: Context = uow.context
    at = uow.now()
    unit = uow.repos.units.get(unit_id, at=at, stale_before=ctx.stale_before(at), lock=True)
    if unit is None:
        raise NotFound(f"units/{unit_id}")
    uow.in_scope(f"units/{unit_id}", unit.station_id)
    unit.update(values, paths=paths, actor=uow.actor, at=at)
    uow.repos.units.save(unit)
    uow.collect(unit)
    return unit


def set_unit_status(uow: UnitOfWork, *, unit_id: str, status: str, reason: str) -> Unit:
    """An officer says what the unit is doing; the panic button (EMERGENCY) opens a city-level case at
    the unit's position, offered at once to the nearest units (民警紧急求助)."""
    ctx: Context = uow.context
    at = uow.now()
    units = uow.repos.units
    unit = units.get(unit_id, at=at, stale_before=ctx.stale_before(at), lock=True)
    if unit is None:
        raise NotFound(f"units/{unit_id}")
    uow.in_scope(f"units/{unit_id}", unit.station_id)
    unit.change_status(status, reason=reason, actor=uow.actor, at=at, working=units.assignment_state(unit_id))
    units.set_status(unit_id, status)
    units.save(unit)
    uow.collect(unit)
    if status == "EMERGENCY":
        open_case_for_report(uow, report=ReportFacts(
            name=f"units/{unit_id}/sos/{uuid.uuid4().hex[:12]}", police=True, merged_into="",
            station_id=unit.station_id, grid_id="", incident_type=EMERGENCY_TYPE, priority=1, lon=unit.lon,
            lat=unit.lat, address_text="", receive_time=at,
            description=f"民警紧急求助：{unit.call_sign}" + (f"，{reason}" if reason else "")))
    return unit


def create_shift(uow: UnitOfWork, *, unit_id: str, start: datetime, end: datetime, area: str) -> Shift:
    """A shift of a unit's duty roster (勤务报备)."""
    ctx: Context = uow.context
    repos, at = uow.repos, uow.now()
    unit = repos.units.get(unit_id, at=at, stale_before=ctx.stale_before(at), lock=True)
    if unit is None:
        raise NotFound(f"units/{unit_id}")
    uow.in_scope(f"units/{unit_id}", unit.station_id)
    shift = unit.add_shift(start=start, end=end, area=area, actor=uow.actor, at=at,
                           existing=repos.shifts.overlapping(unit_id, start, end))
    repos.shifts.add(shift)
    repos.units.save(unit)
    uow.collect(unit)
    return shift


def report_position(uow: UnitOfWork, *, fix: PositionFix, known: dict) -> bool:
    """One position from a phone or vehicle, from the unit's officer or a dispatcher; False when refused
    (an unknown unit, someone else's, or older than what is stored for an unknown unit).

    `known` caches, for the stream the fix came on, each unit's officers and station (or None)."""
    if fix.unit_id not in known:
        unit = uow.repos.units.get(fix.unit_id, at=uow.now())
        known[fix.unit_id] = (domain.officer_ids(unit.officers), unit.station_id) if unit else None
    found = known[fix.unit_id]
    return found is not None and domain.may_act_for(uow.actor, *found) and \
        uow.repos.units.move(fix.unit_id, fix.lon, fix.lat, fix.fix_time, fix.accuracy_m)


def report_one_position(uow: UnitOfWork, *, fix: PositionFix) -> bool:
    """One position from the unit's officer or a dispatcher, answered on its own (the phone view's
    unary ReportPosition): an unknown unit is NOT_FOUND, another's PERMISSION_DENIED; False when a
    newer fix is already stored."""
    unit = uow.repos.units.get(fix.unit_id, at=uow.now())
    if unit is None:
        raise NotFound(f"units/{fix.unit_id}")
    uow.in_scope(f"units/{fix.unit_id}", unit.station_id)
    if not domain.may_act_for(uow.actor, domain.officer_ids(unit.officers), unit.station_id):
        raise PermissionDenied(f"only an officer of units/{fix.unit_id} or a dispatcher may report its position",
                               reason="NOT_ASSIGNED_OFFICER")
    return bool(uow.repos.units.place(fix.unit_id, fix.lon, fix.lat, fix.fix_time, fix.accuracy_m))


# -- access grants bound to a case (权随案走) ----------------------------------------------------------------

def request_grant(uow: UnitOfWork, *, case_id: str, scope: str, station_ids: list[str], reason: str,
                  hours: int) -> AccessGrant:
    """The officer working a case asks for access it needs; the grant policy may grant it at once."""
    case = uow.repos.cases.get(case_id)
    if case is None:
        raise NotFound(f"cases/{case_id}")
    uow.in_scope(f"cases/{case_id}", *case.stations)
    mine = [s for s in station_ids if uow.scope.sees(s)]
    if mine:
        raise FailedPrecondition(f"{', '.join(mine)} is already in your jurisdiction: no grant is needed",
                                 reason="ALREADY_IN_JURISDICTION", metadata={"stations": ",".join(mine)})
    now = uow.now()
    grant = AccessGrant.request(grant_id=new_id(now, prefix="G"), case_id=case_id, case_station_id=case.station_id,
                                incident_type=case.incident_type, case_level=case.level,
                                case_closed=case.ended, actor=uow.actor, scope=scope,
                                station_ids=station_ids, reason=reason, hours=hours, now=now)
    uow.repos.grants.add(grant)
    return grant


def _grant(uow: UnitOfWork, case_id: str, grant_id: str) -> AccessGrant:
    grant = uow.repos.grants.get(case_id, grant_id, lock=True)
    name = f"cases/{case_id}/accessGrants/{grant_id}"
    if grant is None:
        raise NotFound(name)
    if grant.grantee != uow.actor.subject:
        uow.in_scope(name, grant.case_station_id, grant.grantee_station_id)
    return grant


def decide_grant(uow: UnitOfWork, *, case_id: str, grant_id: str, approve: bool, reason: str) -> AccessGrant:
    """The case station's chief or legal officer approves or denies a pending request."""
    grant = _grant(uow, case_id, grant_id)
    now = uow.now()
    if approve:
        if uow.repos.cases.brief(case_id).ended:
            raise FailedPrecondition(f"cases/{case_id} is closed: no access can be granted for it",
                                     reason="CASE_CLOSED")
        grant.approve(uow.actor, comment=reason, now=now)
    else:
        grant.deny(uow.actor, reason=reason, now=now)
    uow.repos.grants.save(grant)
    return grant


def revoke_grant(uow: UnitOfWork, *, case_id: str, grant_id: str, reason: str) -> AccessGrant:
    grant = _grant(uow, case_id, grant_id)
    grant.revoke(uow.actor, reason=reason, now=uow.now())
    uow.repos.grants.save(grant)
    return grant


def use_grant(uow: UnitOfWork, *, stations: frozenset[str], what: str) -> AccessGrant | None:
    """The caller's active grant that opens these stations, its use recorded; None when none does."""
    for grant in uow.repos.grants.holding(uow.actor.subject, stations, uow.now(), lock=True):
        if stations <= set(grant.station_ids):
            grant.use(uow.actor, what=what, now=uow.now())
            uow.repos.grants.save(grant)
            return grant
    return None


def expire_grants(uow: UnitOfWork, *, limit: int = 100) -> int:
    """Ends the open grants whose time ran out or whose case was closed; how many ended."""
    ended = 0
    for grant, case_closed in uow.repos.grants.due(uow.now(), limit):
        if grant.expire(now=uow.now(), case_closed=case_closed):
            uow.repos.grants.save(grant)
            ended += 1
    return ended


# -- the feed dispatch consumes --------------------------------------------------------------------------

def _incident_reported(uow: UnitOfWork, event, payload: intake_pb.IncidentReported) -> None:
    open_case_for_report(uow, report=mapping.report_from_pb(payload.report))


def _report_updated(uow: UnitOfWork, event, payload: intake_pb.ReportUpdated) -> None:
    apply_report_update(uow, report=mapping.report_from_pb(payload.report), action=payload.action)


# News of a 12345 order in 先期处置 older than this when dispatch reads it opens no case: the referral
# feed read from its start (dispatch's first subscription to it, a cursor reset) would otherwise
# offer units orders long since handled. Such an order stays with the station's obligation alert and
# the 12345 desk.
PRELIMINARY_NEWS_MAX_AGE = timedelta(hours=24)


def _work_order(uow: UnitOfWork, event, payload) -> None:
    """referral.WorkOrderCreated / WorkOrderUpdated: an order in 先期处置 opens its station's case."""
    order = mapping.preliminary_order_from_pb(payload.work_order)
    if order is None:
        return
    told = from_pb(event.occur_time)
    if told is not None and uow.now() - told > PRELIMINARY_NEWS_MAX_AGE:
        log.info("%s was handed to the police at %s, too long ago to open a case now", order.name, told)
        return
    open_case_for_work_order(uow, order=order)


EVENT_HANDLERS = {
    "intake": {
        "intake.IncidentReported": Subscription(intake_pb.IncidentReported, _incident_reported),
        "intake.ReportUpdated": Subscription(intake_pb.ReportUpdated, _report_updated),
    },
    "referral": {
        "referral.WorkOrderCreated": Subscription(referral_pb.WorkOrderCreated, _work_order),
        "referral.WorkOrderUpdated": Subscription(referral_pb.WorkOrderUpdated, _work_order),
    },
}
