"""Outbound calls: dispatch's units (police strength) and intake's jurisdiction lookup.
Never called inside a transaction (the channels refuse, see services.runtime.txguard)."""
from __future__ import annotations

import logging
import threading
import time

import grpc

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as dispatch_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc

from services.runtime.errors import Unavailable

from .domain import UnitPosition

log = logging.getLogger("smart110.alerts")


class DispatchUnits:
    """Available units, from dispatch's ListUnits (call edge alerts -> dispatch), cached briefly."""

    def __init__(self, channel: grpc.Channel, ttl: float = 15.0):
        self._stub = dispatch_grpc.DispatchServiceStub(channel)
        self.ttl = ttl
        self._cache: list[UnitPosition] | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def fetch(self) -> list[UnitPosition]:
        out, token = [], ""
        while True:
            resp = self._stub.ListUnits(dispatch_pb.ListUnitsRequest(
                page_size=500, page_token=token, status=dispatch_pb.UNIT_STATUS_AVAILABLE), timeout=5)
            out += [(u.position.longitude, u.position.latitude, u.station_id) for u in resp.units
                    if u.HasField("position")]
            token = resp.next_page_token
            if not token:
                return out

    def __call__(self, fresh: bool = False) -> list[UnitPosition]:
        with self._lock:
            if fresh or self._cache is None or time.monotonic() - self._at > self.ttl:
                try:
                    self._cache, self._at = self.fetch(), time.monotonic()
                except grpc.RpcError as exc:
                    log.warning("dispatch ListUnits failed (%s); using the last known units", exc.code())
                    if self._cache is None:
                        raise Unavailable("police strength is unavailable: the dispatch service did not answer",
                                          reason="DISPATCH_UNAVAILABLE") from exc
            return self._cache


class Jurisdictions:
    """The station with jurisdiction over a point, from intake (call edge alerts -> intake)."""

    def __init__(self, channel: grpc.Channel):
        self._stub = intake_grpc.IntakeServiceStub(channel)

    def __call__(self, lon: float, lat: float) -> str:
        point = common_pb2.GeoPoint(longitude=lon, latitude=lat)
        try:
            return self._stub.LocateJurisdiction(intake_pb.LocateJurisdictionRequest(point=point),
                                                 timeout=5).station_id
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return ""
            raise Unavailable("the jurisdiction lookup is unavailable; retry, or give signal.station_id",
                              reason="INTAKE_UNAVAILABLE") from exc
