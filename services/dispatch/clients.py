"""Dispatch's outbound calls: the anti-fraud centre (反诈中心), a partner outside the suite, over
`smart110.partners.antifraud.v1` (ANTIFRAUD_ADDR). Never called inside a transaction."""
from __future__ import annotations

import grpc

from smart110.partners.antifraud.v1 import antifraud_pb2 as af_pb
from smart110.partners.antifraud.v1 import antifraud_pb2_grpc as af_grpc

from . import mapping
from .domain import CentreError, DispatchCase, Receipt, StopPayment

# Transient faults: try again later. Anything else means the centre refuses
# the request itself, which no retry can change.
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED,
}


def centre_channel(rt) -> grpc.Channel:
    """The channel to the centre at ANTIFRAUD_ADDR, presenting the service's credential (the
    sender has its own retry schedule; the channel reconnects within the runtime's short pauses)."""
    return rt.channel("antifraud")


class AntiFraudCentre:
    """The centre's stop-payment contract, answering in the domain's terms (a `Receipt` or a `CentreError`)."""

    def __init__(self, channel: grpc.Channel, *, timeout_seconds: float = 5.0):
        self.stub = af_grpc.AntiFraudCentreServiceStub(channel)
        self.timeout_seconds = timeout_seconds

    def request(self, sp: StopPayment, case: DispatchCase) -> Receipt | CentreError:
        """Delivers a hand-off (again, after a failure: the same idempotency key)."""
        return self._call(self.stub.RequestStopPayment, mapping.stop_payment_request_pb(sp, case))

    def result(self, sp: StopPayment) -> Receipt | CentreError:
        """Asks for the result of a delivered hand-off."""
        return self._call(self.stub.GetStopPayment, af_pb.GetStopPaymentRequest(idempotency_key=sp.idempotency_key))

    def _call(self, method, request) -> Receipt | CentreError:
        try:
            return mapping.receipt_from_pb(method(request, timeout=self.timeout_seconds))
        except grpc.RpcError as exc:
            code = exc.code()
            return CentreError(code=code.name, details=exc.details() or "", retryable=code in RETRYABLE,
                               not_found=code == grpc.StatusCode.NOT_FOUND)
