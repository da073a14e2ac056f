"""Background work: the sweeper, the delivery worker and the SMS reply listener.

- `sweep`: everything time alone changes — escalations, silences starting and ending,
  obligations coming due, conditions that stopped holding. Safe to run from several processes
  (rows are locked, and skipped when another sweeper holds them).
- `DeliveryWorker` sends queued deliveries to the notification receivers. Several replicas run
  one each: a worker takes a due delivery with a lease (`claimed_by`, `lease_until`) in a short
  transaction, sends it with no transaction open, then records the outcome (delivered, or the
  error and when to try again, with exponential backoff) and releases the lease in a second
  one. A worker whose lease was taken over meanwhile does not record its outcome.
- `prune_deliveries`: the delivery log keeps deliveries of resolved alerts for
  ALERT_DELIVERY_RETENTION_DAYS (default 90); older ones are deleted (they hold phone numbers and
  texts sent).
- `SmsReplyListener` stays bound to the SMS gateway: a reply of "1" (or 收到) acknowledges the
  alert the number was last texted about.
"""
from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta

from services.runtime.app import Runtime
from services.runtime.leased import LeasedSender
from services.runtime.uow import UnitOfWork

from .clients import SmscReceiver, SmscSettings
from .domain.receivers import DeliveryPolicy, Outcome
from .handlers import alerts, deliveries, obligations

log = logging.getLogger("smart110.alerts.workers")


def sweep(uow: UnitOfWork) -> dict[str, int]:
    """One pass, in one unit of work; what it did, by kind (kinds with nothing done left out)."""
    done = {
        "escalated": alerts.escalate_due(uow),
        "silenced": alerts.start_silences(uow),
        "unsilenced": alerts.end_silences(uow),
        "obligations": obligations.warn_due_obligations(uow),
        "resolved": alerts.resolve_lapsed(uow),
    }
    return {kind: n for kind, n in done.items() if n}


def sweep_once(rt: Runtime) -> dict[str, int]:
    with rt.transaction() as uow:
        return sweep(uow)


def prune_deliveries(rt: Runtime, keep: timedelta, batch: int = 5000) -> int:
    """The delivery log's retention: deliveries of resolved alerts older than `keep` are deleted, a
    batch per transaction; returns how many."""
    total = 0
    while True:
        with rt.transaction() as uow:
            n = uow.repos.deliveries.prune(rt.clock() - keep, batch)
        total += n
        if n < batch:
            break
    if total:
        log.info("delivery log: %d deliveries older than %s days deleted", total, keep.days)
    return total


# -- the worker -------------------------------------------------------------------------------------

class DeliveryWorker(LeasedSender):
    """Sends queued deliveries; `run_once(now)` does the work due at `now` and returns when the next is
    due. The background thread calls it with the runtime's clock, waking early when the service's own
    feed announces a commit (a queued delivery comes with its alert's event)."""

    thread_name, what = "alert-deliveries", "alert delivery"

    def __init__(self, rt: Runtime, senders: dict, *, policy: DeliveryPolicy | None = None,
                 idle_seconds: float = 5.0):
        self.policy = policy or DeliveryPolicy()
        super().__init__(rt, call_timeout_seconds=self.policy.call_timeout_seconds, idle_seconds=idle_seconds)
        self.senders = senders  # kind (WEBHOOK, SMS) -> sender

    def _next_due(self, uow) -> datetime | None:
        return deliveries.next_delivery_due(uow)

    def _handle_one(self, now: datetime, handled: set[str]) -> bool:
        with self.rt.transaction() as uow:
            d = deliveries.claim_delivery(uow, sender=self.name, at=now, policy=self.policy, skip=handled)
        if d is None:
            return False
        handled.add(d.id)
        sender = self.senders.get(d.kind)
        # The call, with no transaction open (the lease keeps other workers off the delivery).
        outcome = sender.send(d) if sender is not None else Outcome(False, f"no sender for {d.kind}", False)
        with self.rt.transaction() as uow:
            recorded = deliveries.record_outcome(uow, delivery_id=d.id, sender=self.name, outcome=outcome, at=now,
                                                 policy=self.policy)
        if recorded is not None and not outcome.ok:
            log.warning("delivery %s to %s %s failed (attempt %d): %s", d.id, d.kind, d.receiver, recorded.attempts,
                        outcome.error)
        return True


# -- replies by SMS ------------------------------------------------------------------------------------

class SmsReplyListener:
    """Bound to the SMS gateway as a receiver; each reply goes to `deliveries.sms_reply`, and the
    session is opened again when the gateway drops it."""

    def __init__(self, rt: Runtime, settings: SmscSettings):
        self.rt = rt
        self.receiver = SmscReceiver(settings)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sms-replies", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def handle(self, number: str, text: str) -> str:
        """One reply: acknowledges the alert the number was last texted about (its name, or "")."""
        try:
            with self.rt.transaction(deliveries.sms_actor(number)) as uow:
                acked = deliveries.sms_reply(uow, number=number, text=text)
        except Exception:  # noqa: BLE001 - a reply that cannot be applied is not retried
            log.exception("SMS reply not applied")
            return ""
        if acked:
            log.info("%s acknowledged by SMS reply", acked)
        return acked

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.receiver.listen(self.handle, self._stop)
            except Exception as err:  # noqa: BLE001 - the gateway is away: bind again shortly
                log.debug("SMS reply listener unbound: %s", err)
            self._stop.wait(2.0)
