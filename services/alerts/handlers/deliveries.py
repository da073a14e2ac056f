"""Delivery use cases: the worker claims a due delivery (a lease, in a short transaction), sends
it with no transaction open, and records the outcome in a second one; a reply by SMS acknowledges
the alert the number was last texted about."""
from __future__ import annotations

from datetime import datetime

from services.runtime.auth import AuthContext
from services.runtime.uow import UnitOfWork

from ..domain.receivers import Delivery, DeliveryPolicy, Outcome
from .alerts import acknowledge_alert

ACK_REPLIES = ("1", "收到", "签收", "ok", "OK")


def claim_delivery(uow: UnitOfWork, *, sender: str, at: datetime, policy: DeliveryPolicy,
                   skip: set[str] | None = None) -> Delivery | None:
    return uow.repos.deliveries.claim_next(sender=sender, now=at, lease_until=at + policy.lease, skip=skip)


def record_outcome(uow: UnitOfWork, *, delivery_id: str, sender: str, outcome: Outcome, at: datetime,
                   policy: DeliveryPolicy) -> Delivery | None:
    """Records a send's outcome; None when the lease was lost meanwhile (another sender's counts)."""
    d = uow.repos.deliveries.get(delivery_id, lock=True)
    if d is None or d.claimed_by != sender or d.state != "PENDING":
        return None
    if outcome.ok:
        d.delivered(at, outcome.remote_id)
    else:
        d.failed(at, outcome.error, policy, retryable=outcome.retryable)
    uow.repos.deliveries.save(d)
    return d


def next_delivery_due(uow: UnitOfWork) -> datetime | None:
    return uow.repos.deliveries.next_due()


def sms_actor(number: str) -> AuthContext:
    """Who a reply by SMS is recorded as: the number that answered."""
    return AuthContext(subject=f"sms:{number}", roles=frozenset({"officer"}))


def sms_reply(uow: UnitOfWork, *, number: str, text: str) -> str:
    """A reply from a number texted about an alert: "1" (or 收到, 签收) acknowledges the alert of the
    latest firing message delivered to it, recorded as the unit of work's actor (`sms_actor`).
    Returns the alert acknowledged ("" when none was)."""
    if text.strip() not in ACK_REPLIES:
        return ""
    last = uow.repos.deliveries.last_sms_to(number)
    if last is None:
        return ""
    alert = uow.repos.alerts.get(last.alert_id)
    if alert.state not in ("FIRING", "SILENCED"):
        return ""
    acknowledge_alert(uow, alert_id=alert.id, comment=f"短信回复“{text.strip()}”签收")
    return alert.name
