"""What a case message carries beyond the case row: its stop-payment
hand-offs (紧急止付), citizen follow-up (回访) and response-circle arrival."""
from __future__ import annotations

from smart110.dispatch.v1 import dispatch_service_pb2 as pb

from .domain import DispatchCase
from .mapping import case_to_pb


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
