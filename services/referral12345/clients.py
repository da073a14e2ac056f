"""Outbound calls: the 110 side, intake over gRPC (call edge referral -> intake): jurisdiction
lookups, one-button transfers (一键转接) and the citizen's contact of a referred 110 report. Data crosses only as calls, never inside a transaction
(the channel refuses, see services.runtime.txguard)."""
from __future__ import annotations

import threading

import grpc

from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc

from services.runtime import calls

from .domain import CitizenContact, Place, PoliceReport, WorkOrder
from .mapping import police_report_from_pb, transfer_report_pb

TIMEOUT_SECONDS = 10.0


class Intake:
    """Intake's IntakeService: where a point or station is, and filing a transferred report."""

    def __init__(self, channel: grpc.Channel):
        self._stub = intake_grpc.IntakeServiceStub(channel)
        self._lock = threading.Lock()
        self._stations: dict[str, Place] = {}

    def _call(self, what: str, fn):
        return calls.call("intake", what, fn)

    def locate(self, lon: float, lat: float) -> Place | None:
        found = self._call("locate the point", lambda: self._stub.LocateJurisdiction(
            intake_pb.LocateJurisdictionRequest(point={"longitude": lon, "latitude": lat}),
            timeout=TIMEOUT_SECONDS))
        if found is None or not found.station_id:
            return None
        return Place(found.station_id, found.station_name, found.district)

    def station(self, station_id: str) -> Place | None:
        if not station_id:
            return None
        with self._lock:
            known = self._stations.get(station_id)
        if known:
            return known
        found = self._call("find the station", lambda: self._stub.GetStation(
            intake_pb.GetStationRequest(name=f"stations/{station_id}"), timeout=TIMEOUT_SECONDS))
        if found is None:
            return None
        place = Place(found.station_id, found.display_name, found.district)
        with self._lock:
            self._stations[station_id] = place
        return place

    def place(self, lon: float | None, lat: float | None, station_id: str) -> Place | None:
        """Where something is: the station of its point, or else its station."""
        if lon is not None and lat is not None:
            return self.locate(lon, lat)
        return self.station(station_id)

    def caller_contact(self, report_name: str) -> CitizenContact | None:
        """The caller of a 110 report, read for the work order it becomes (follow-up and repeat-caller
        detection); intake records the read. None when intake does not know the report."""
        found = self._call("read the caller's contact", lambda: self._stub.GetCallerContact(
            intake_pb.GetCallerContactRequest(name=report_name,
                                              purpose=intake_pb.CALLER_CONTACT_PURPOSE_WORK_ORDER),
            timeout=TIMEOUT_SECONDS))
        if found is None:
            return None
        return CitizenContact(phone=found.caller.phone_number, name=found.caller.name)

    def file_transfer(self, request_id: str, order: WorkOrder, why: str) -> PoliceReport | None:
        """Files the report a transferred order becomes (channel 12345); the same request_id always
        gives the same report."""
        filed = self._call("record the transferred report", lambda: self._stub.ReportIncident(
            intake_pb.ReportIncidentRequest(request_id=request_id, report=transfer_report_pb(order, why)),
            timeout=TIMEOUT_SECONDS))
        return police_report_from_pb(filed) if filed is not None else None
