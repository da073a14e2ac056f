"""Dispatch's background work: the stop-payment sender, the offer sweeper and the assignment hub.

- `StopPaymentSender` delivers queued hand-offs (紧急止付) to the anti-fraud centre and follows
  them to a result. Several replicas run a sender each: a sender takes a due hand-off with a
  lease (`claimed_by`, `lease_until`) in a short transaction, calls the centre with no
  transaction open, then records the answer and releases the lease in a second one. Only one
  sender has a hand-off in hand at a time: the others skip it until the lease ends, which is
  long enough for the call's deadline, so only a sender that died mid-call (or lost its
  database) lets another take over. A sender whose lease was taken over meanwhile does not
  record its answer; the new holder's answer (same key, same receipt) is the one recorded.
  A request is never lost (the row stays until the centre acknowledged it) and never
  duplicated at the centre (the key). Just before each delivery, with no transaction open, the
  sender reads the victim's name and phone from intake (GetCallerContact, purpose STOP_PAYMENT,
  recorded by intake): dispatch keeps no caller data, and only a hand-off being delivered needs
  it, not every case, nor the consumer that opens cases. Intake away postpones the delivery like
  a transient fault of the centre (retried with the same backoff); a report intake does not know,
  or a read intake refuses, is delivered without the contact.
- `sweep_offers` expires unanswered offers and moves them on (one sweeper per replica is fine:
  due offers are read with SKIP LOCKED and re-checked under the case's lock).
- `AssignmentHub` tails the service's own feed and pushes every change of a unit's assignments
  to its open WatchAssignments streams: reading the outbox (not in-process calls) means an offer
  made by any replica reaches a phone connected to any other.
"""
from __future__ import annotations

import logging
import queue
import threading
from datetime import datetime

from smart110.common.v1 import events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime.app import Runtime
from services.runtime.leased import LeasedSender
from services.runtime.errors import FailedPrecondition, Unavailable

from . import handlers
from .clients import AntiFraudCentre, IntakeContacts
from .domain import CentreError, RetryPolicy

log = logging.getLogger("smart110.dispatch.workers")


# -- the stop-payment sender ------------------------------------------------------------------------

class StopPaymentSender(LeasedSender):
    """Delivers queued hand-offs to the anti-fraud centre and follows them to a result.

    `run_once(now)` does the work due at `now` and returns when the next is
    due; the background thread calls it with the runtime's clock, waking early
    when the dispatch feed announces a commit (a new hand-off comes with an event).
    """

    thread_name, what = "stop-payment-sender", "stop-payment delivery"

    def __init__(self, rt: Runtime, centre: AntiFraudCentre, contacts: IntakeContacts, *,
                 policy: RetryPolicy | None = None, idle_seconds: float = 5.0):
        self.policy = policy or RetryPolicy()
        super().__init__(rt, call_timeout_seconds=self.policy.call_timeout_seconds, idle_seconds=idle_seconds)
        self.centre = centre
        self.contacts = contacts

    def _next_due(self, uow) -> datetime | None:
        return handlers.next_stop_payment_due(uow)

    def _handle_one(self, now: datetime, handled: set[str]) -> bool:
        with self.rt.transaction() as uow:
            claimed = handlers.claim_stop_payment(uow, sender=self.name, at=now, policy=self.policy, skip=handled)
        if claimed is None:
            return False
        sp, case = claimed
        handled.add(sp.id)
        # The calls to intake and the centre, with no transaction open (the lease keeps other senders
        # off the hand-off).
        if sp.state == "QUEUED":
            try:
                victim = sp.stored_victim or self.contacts.victim_of(sp, case)
            except Unavailable as exc:
                with self.rt.transaction() as uow:
                    postponed = handlers.postpone_stop_payment(uow, stop_payment_id=sp.id, sender=self.name,
                                                               why=exc.message, at=now, policy=self.policy)
                if postponed is not None:
                    log.warning("victim's contact for %s unreadable (%s); next attempt in %.0fs", sp.idempotency_key,
                                exc.reason, (postponed.next_attempt_time - now).total_seconds())
                return True
            except FailedPrecondition as exc:  # intake refuses the read itself: no retry changes that
                log.error("intake refused the victim's contact for %s (%s); delivering without it",
                          sp.idempotency_key, exc.reason)
                victim = None
            answer = self.centre.request(sp, case, victim)
        else:
            answer = self.centre.result(sp)
        with self.rt.transaction() as uow:
            recorded = handlers.record_centre_answer(uow, stop_payment_id=sp.id, sender=self.name, answer=answer,
                                                     at=now, policy=self.policy)
        if recorded is not None and isinstance(answer, CentreError) and answer.retryable:
            log.warning("anti-fraud centre unreachable for %s (%s); next attempt in %.0fs", sp.idempotency_key,
                        answer.code, (recorded.next_attempt_time - now).total_seconds())
        return True


# -- the offer sweeper ----------------------------------------------------------------------------------

def sweep_offers(rt: Runtime, *, limit: int = 100) -> int:
    """One round: expires the offers past their time and offers each case to the next unit, and raises
    the cases nobody took to district command; returns how many offers expired."""
    with rt.transaction() as uow:
        due = handlers.due_offers(uow, limit=limit)
    expired = 0
    for case_id, assignment_id in due:
        with rt.transaction() as uow:
            if handlers.expire_offer(uow, case_id=case_id, assignment_id=assignment_id) is not None:
                expired += 1
    # Cases nobody took since automatic offers stopped go up to district command.
    with rt.transaction() as uow:
        unanswered = handlers.unanswered_cases(uow, limit=limit)
    for case_id in unanswered:
        with rt.transaction() as uow:
            handlers.escalate_unanswered(uow, case_id=case_id)
    return expired


def sweep_grants(rt: Runtime, *, limit: int = 100) -> int:
    """One round: ends the access grants whose time ran out or whose case was closed (each end on
    its case's timeline); returns how many ended."""
    ended = total = 0
    while True:
        with rt.transaction() as uow:
            ended = handlers.expire_grants(uow, limit=limit)
        total += ended
        if ended < limit:
            return total


# -- the assignment hub ------------------------------------------------------------------------------------

class _Alive:
    """A stand-in RPC context for the hub's own reading of the feed."""

    def __init__(self, stopped: threading.Event):
        self.stopped = stopped

    def is_active(self) -> bool:
        return not self.stopped.is_set()


class AssignmentHub:
    """Fans the service's own AssignmentChanged events out to the units' open watch streams."""

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
