"""Dispatch's outbound calls: the anti-fraud centre (反诈中心), a partner outside the suite, over
`smart110.partners.antifraud.v1` (ANTIFRAUD_ADDR), intake (call edge dispatch -> intake) for the
victim's contact of a stop-payment hand-off and the caller's contact of an EIDO export, and alerts
(call edge dispatch -> alerts) for the active alerts of the situation map. Never called inside a
transaction (the channels refuse, see services.runtime.txguard)."""
from __future__ import annotations

from dataclasses import dataclass

import grpc

from smart110.alerts.v1 import alerts_service_pb2 as alerts_pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as alerts_grpc
from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from smart110.partners.antifraud.v1 import antifraud_pb2 as af_pb
from smart110.partners.antifraud.v1 import antifraud_pb2_grpc as af_grpc

from services.runtime import calls

from . import mapping
from .domain import Box, CentreError, DispatchCase, Receipt, StopPayment, VictimContact

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

    def request(self, sp: StopPayment, case: DispatchCase, victim: VictimContact | None) -> Receipt | CentreError:
        """Delivers a hand-off (again, after a failure: the same idempotency key), with the victim's
        contact read for this delivery."""
        return self._call(self.stub.RequestStopPayment, mapping.stop_payment_request_pb(sp, case, victim))

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


class IntakeContacts:
    """Intake's GetCallerContact: the victim's contact for one delivery of a hand-off, the caller's
    for one EIDO export.

    Read with purpose STOP_PAYMENT and the hand-off's name as reference, which intake records with
    this service's identity (个人信息查看留痕). NOT_FOUND (intake does not know the report) is None;
    intake away or slow raises `Unavailable` (the sender then postpones the delivery).
    """

    def __init__(self, channel: grpc.Channel, *, timeout_seconds: float = 5.0):
        self._stub = intake_grpc.IntakeServiceStub(channel)
        self.timeout_seconds = timeout_seconds

    def victim_of(self, sp: StopPayment, case: DispatchCase) -> VictimContact | None:
        found = calls.call("intake", "read the victim's contact", lambda: self._stub.GetCallerContact(
            intake_pb.GetCallerContactRequest(name=case.report, purpose=intake_pb.CALLER_CONTACT_PURPOSE_STOP_PAYMENT,
                                              reference=sp.name),
            timeout=self.timeout_seconds))
        if found is None:
            return None
        return VictimContact(name=found.caller.name, phone=found.caller.phone_number)

    def caller_of(self, case: DispatchCase, *, reference: str) -> VictimContact | None:
        """The caller of the case's report for an incident handed over (purpose INCIDENT_TRANSFER,
        `reference` kept by intake with the read); None when intake does not know the report.
        Intake away or slow raises `Unavailable`."""
        found = calls.call("intake", "read the caller's contact", lambda: self._stub.GetCallerContact(
            intake_pb.GetCallerContactRequest(name=case.report,
                                              purpose=intake_pb.CALLER_CONTACT_PURPOSE_INCIDENT_TRANSFER,
                                              reference=reference[:200]),
            timeout=self.timeout_seconds))
        if found is None:
            return None
        return VictimContact(name=found.caller.name, phone=found.caller.phone_number)


@dataclass(frozen=True)
class AlertsFound:
    """The active alerts of a map view: most severe and latest first; `truncated` when more were active."""

    alerts: list
    truncated: bool


class AlertsInView:
    """Alerts' ListAlerts for the situation map (一张图): the firing and the acknowledged alerts in a
    box or of a station, asked at once (two calls in parallel) with one short deadline. None when
    alerts does not answer in time or at all: the situation is then answered without them."""

    MAX = 200

    def __init__(self, channel: grpc.Channel, *, timeout_seconds: float):
        self._stub = alerts_grpc.AlertsServiceStub(channel)
        self.timeout_seconds = timeout_seconds

    def active(self, *, box: Box | None, station_id: str = "") -> AlertsFound | None:
        bounds = None if box is None else common_pb2.BoundingBox(
            south_west=common_pb2.GeoPoint(longitude=box.west, latitude=box.south),
            north_east=common_pb2.GeoPoint(longitude=box.east, latitude=box.north))
        calls = [self._stub.ListAlerts.future(
            alerts_pb.ListAlertsRequest(state=state, bounds=bounds, station_id=station_id, page_size=self.MAX),
            timeout=self.timeout_seconds)
            for state in (alerts_pb.ALERT_STATE_FIRING, alerts_pb.ALERT_STATE_ACKNOWLEDGED)]
        try:
            pages = [c.result() for c in calls]
        except grpc.RpcError:
            for c in calls:
                c.cancel()
            return None
        found = [a for page in pages for a in page.alerts]
        found.sort(key=lambda a: (-a.level, -a.last_seen_time.ToNanoseconds()))
        truncated = len(found) > self.MAX or any(page.next_page_token for page in pages)
        return AlertsFound(found[:self.MAX], truncated)
