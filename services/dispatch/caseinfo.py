"""What a case message carries beyond the case row: its stop-payment
hand-offs (紧急止付), citizen follow-up (回访) and response-circle arrival."""
from __future__ import annotations

from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from services.runtime.audit import TimelineEntry
from services.runtime.outbox import Outbox

from .domain import DispatchCase
from .mapping import case_to_pb, case_updated_pb


def fill(conn, messages: list[pb.DispatchCase]) -> list[pb.DispatchCase]:
    """Adds the side records of each case to its message, in one query per kind."""
    from . import antifraud, circles, followup

    ids = [m.name.split("/", 1)[1] for m in messages]
    payments = antifraud.stop_payments_of(conn, ids)
    followups = followup.followups_of(conn, ids)
    for case_id, msg in zip(ids, messages):
        msg.stop_payments.extend(payments.get(case_id, []))
        if case_id in followups:
            msg.follow_up.CopyFrom(followups[case_id])
            msg.satisfaction = followups[case_id].satisfaction
        msg.arrival_seconds, msg.arrival_target_met = circles.arrival(msg)
    return messages


def case_message(conn, case: DispatchCase) -> pb.DispatchCase:
    return fill(conn, [case_to_pb(case)])[0]


def announce(conn, outbox: Outbox, case: DispatchCase, action: str, *, before: pb.DispatchCase,
             entries: list[TimelineEntry], stop_payment: pb.StopPayment | None = None,
             previous_level: int = 0) -> pb.DispatchCase:
    """Publishes dispatch.CaseUpdated for `case` as it now stands, with what changed since `before`
    (its message read before the change) and the timeline entries the change appended.

    Returns the whole case message."""
    message = case_message(conn, case)
    outbox.publish(conn, "dispatch.CaseUpdated", case.name, case_updated_pb(
        message, action, before=before, new_entries=entries, stop_payment=stop_payment,
        previous_level=previous_level))
    return message
