"""Warehouse use cases: one function each, on a unit of work.

A report's fact row and the rollups it counts in change in one transaction, so the rollups always equal
a GROUP BY over the facts. The consumer's inbox makes a redelivered event a no-op; the advisory lock on
the report makes two feeds' events for one report take turns. `EVENT_HANDLERS` at the end names the feeds
and event types the warehouse consumes.
"""
from __future__ import annotations

from datetime import datetime

from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb

from services.runtime.consumer import Subscription
from services.runtime.timeutil import from_pb
from services.runtime.uow import UnitOfWork

from . import domain, mapping
from .domain import Outcome, ReportFact, RollupChange


def _move(uow: UnitOfWork, before: ReportFact | None, after: ReportFact) -> list[RollupChange]:
    changes = domain.rollup_changes(before, after)
    centres = {ch.key[1]: domain.cell_center(ch.key[1]) for ch in changes if ch.rollup in domain.CELL_ROLLUPS}
    uow.repos.rollups.apply(changes, centres)
    return changes


def record_report(uow: UnitOfWork, *, fact: ReportFact) -> ReportFact:
    """Intake's view of a report: a new fact row (with any outcome that came first), or the kept row
    brought up to date. The rollups move by the difference."""
    repos = uow.repos
    repos.facts.lock(fact.report)
    kept = repos.facts.get(fact.report)
    if kept is None and _archived(uow, fact.receive_time):
        return fact  # its month is archived: counted in the rollups, not written again
    if kept is None:
        waiting = repos.outcomes.take(fact.report)
        new = fact.with_outcome(waiting) if waiting is not None else fact
        repos.facts.add(new)
        _move(uow, None, new)
        return new
    new = kept.updated_by(fact)
    if new != kept:
        repos.facts.save(new)
        _move(uow, kept, new)
    return new


def _archived(uow: UnitOfWork, receive_time: datetime) -> bool:
    """Whether the report's month is archived. The current month never is (retention keeps at least
    it), so a live report costs no query."""
    if receive_time >= domain.month_partition(uow.now()).start:
        return False
    horizon = uow.repos.archive.archived_horizon()
    return horizon is not None and receive_time < horizon


def record_outcome(uow: UnitOfWork, *, outcome: Outcome) -> ReportFact | None:
    """Dispatch's or referral's word on a report's handling; kept until the report arrives when it has not."""
    repos = uow.repos
    repos.facts.lock(outcome.report)
    kept = repos.facts.get(outcome.report)
    if kept is None:
        repos.outcomes.put(outcome)
        return None
    new = kept.with_outcome(outcome)
    if new != kept:
        repos.facts.save(new)
        _move(uow, kept, new)
    return new


def prepare_partitions(uow: UnitOfWork, *, now: datetime | None = None, months: int = domain.MONTHS_AHEAD) -> list[str]:
    """The maintenance job: this month's partition and the next `months`; returns those created."""
    return uow.repos.partitions.ensure(domain.partitions_ahead(now or uow.now(), months))


# -- the feeds the warehouse consumes -----------------------------------------------------------

def _report(uow: UnitOfWork, event, payload) -> None:
    fact = mapping.report_fact(payload.report, from_pb(event.occur_time))
    if fact is not None:
        record_report(uow, fact=fact)


def _case(uow: UnitOfWork, event, payload) -> None:
    outcome = mapping.case_outcome(payload.dispatch_case)
    if outcome is not None:
        record_outcome(uow, outcome=outcome)


def _work_order(uow: UnitOfWork, event, payload) -> None:
    outcome = mapping.work_order_outcome(payload.work_order)
    if outcome is not None:
        record_outcome(uow, outcome=outcome)


EVENT_HANDLERS = {
    "intake": {
        "intake.IncidentReported": Subscription(intake_pb.IncidentReported, _report),
        "intake.ReportUpdated": Subscription(intake_pb.ReportUpdated, _report),
    },
    "dispatch": {
        "dispatch.CaseCreated": Subscription(dispatch_pb.CaseCreated, _case),
        "dispatch.CaseUpdated": Subscription(dispatch_pb.CaseUpdated, _case),
    },
    "referral": {
        "referral.WorkOrderCreated": Subscription(referral_pb.WorkOrderCreated, _work_order),
        "referral.WorkOrderUpdated": Subscription(referral_pb.WorkOrderUpdated, _work_order),
    },
}
