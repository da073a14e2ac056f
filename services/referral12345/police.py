"""The referral side of the 110 line: intake over gRPC (jurisdiction lookups
and one-button transfers, 一键转接). Data crosses only as calls."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import grpc

from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc

from services.runtime.errors import FailedPrecondition, Unavailable

TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Place:
    station_id: str
    station_name: str
    district: str


class PoliceLine:
    def __init__(self, channel_factory):
        self._channel_factory = channel_factory
        self._stub = None
        self._lock = threading.Lock()
        self._stations: dict[str, Place] = {}

    def stub(self) -> intake_grpc.IntakeServiceStub:
        with self._lock:
            if self._stub is None:
                self._stub = intake_grpc.IntakeServiceStub(self._channel_factory("intake"))
            return self._stub

    def _call(self, what: str, fn):
        try:
            return fn()
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            if exc.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                              grpc.StatusCode.ALREADY_EXISTS):
                raise FailedPrecondition(f"intake refused to {what}: {exc.details()}",
                                         reason="INTAKE_REFUSED") from exc
            raise Unavailable(f"intake could not {what} ({exc.code().name}); retry later",
                              reason="INTAKE_UNAVAILABLE") from exc

    def locate(self, lon: float, lat: float) -> Place | None:
        found = self._call("locate the point", lambda: self.stub().LocateJurisdiction(
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
        found = self._call("find the station", lambda: self.stub().GetStation(
            intake_pb.GetStationRequest(name=f"stations/{station_id}"), timeout=TIMEOUT_SECONDS))
        if found is None:
            return None
        place = Place(found.station_id, found.display_name, found.district)
        with self._lock:
            self._stations[station_id] = place
        return place

    def report(self, request_id: str, report: intake_pb.Report) -> intake_pb.Report:
        """Files a report with intake; the same request_id always gives the same report."""
        return self._call("record the transferred report", lambda: self.stub().ReportIncident(
            intake_pb.ReportIncidentRequest(request_id=request_id, report=report), timeout=TIMEOUT_SECONDS))
