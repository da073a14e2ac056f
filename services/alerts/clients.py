"""Outbound calls: dispatch's units (police strength), intake's jurisdiction lookup, the warehouse's
threshold checks (the volume and anomaly rules' counts); the notification receivers' webhooks and the
SMS gateway (SMPP). Never called inside a transaction
(the channels refuse, and the senders check, see services.runtime.txguard).

- `WebhookSender` POSTs a delivery's queued body with its HMAC-SHA256 signature; 2xx is
  delivered, 408, 429 and 5xx (and an unreachable receiver) are tried again, other answers are final.
- `SmppSender` binds to the SMS gateway as a transmitter, submits the text in UCS2 (split in
  concatenated parts when long) and takes the gateway's message ids as the receipt.
- `SmscReceiver` stays bound as a receiver and hands each reply (deliver_sm) on."""
from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import grpc
import httpx
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.dispatch.v1 import dispatch_service_pb2_grpc as dispatch_grpc
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.intake.v1 import intake_service_pb2_grpc as intake_grpc
from smart110.warehouse.v1 import warehouse_service_pb2 as warehouse_pb
from smart110.warehouse.v1 import warehouse_service_pb2_grpc as warehouse_grpc

from services.runtime import metrics, txguard
from services.runtime.config import env_str
from services.runtime.errors import Unavailable
from services.runtime.timeutil import to_pb

from .domain import Area, HourCounts, UnitPosition, WindowCount
from .domain.receivers import SIGNATURE_HEADER, Delivery, NotifyConfig, Outcome, sign

log = logging.getLogger("smart110.alerts")
# smpplib logs every PDU (phone numbers and texts) at DEBUG, and its own view of errors that the
# senders report with their outcome: only its errors are wanted.
logging.getLogger("smpp").setLevel(logging.ERROR)


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


class WarehouseCounts:
    """The volume and anomaly rules' counts from the warehouse's CheckThreshold (call edge alerts ->
    warehouse; 警情数据大水库), asked all at once before the transaction.

    `__call__(asks, t)` gives {ask.key: figure} for the asks the warehouse answered: a WindowCount's count
    of (start, t], an HourCounts' (hourly counts, first hour). An ask the warehouse cannot answer (an
    H3 resolution it does not keep) or did not answer is left out, logged and counted in
    smart110_alerts_rule_counts_total{source="local"}: the handler has alerts' own count alone for it.

    The report being handled is counted by itself, not asked of the warehouse: the two services read
    intake's feed apart, so the warehouse may or may not hold it yet. Each window is asked up to, not
    including, its receive time, and the report added as one. An anomaly rule's past hours are asked
    once per hour and area and kept (they do not change within the hour; a history imported meanwhile
    counts from the next hour on); its current hour is alerts' own count."""

    RESOLUTIONS = (7, 8, 9)

    # Anomaly histories kept at most (an area's rule within one hour is one entry).
    HISTORY_ENTRIES = 4096

    def __init__(self, channel: grpc.Channel, timeout: float = 2.0):
        self._stub = warehouse_grpc.WarehouseServiceStub(channel)
        self.timeout = timeout
        # An anomaly rule's past hours do not change within the current hour: asked once per hour and
        # area, not on every report (an hour's history is up to `history_weeks` calls).
        self._history: dict[tuple, tuple[dict, datetime | None]] = {}

    @classmethod
    def from_env(cls, channel: Callable[[], grpc.Channel]) -> "WarehouseCounts | None":
        """Where the volume and anomaly rules' counts come from (ALERTS_RULE_COUNTS): the warehouse
        besides alerts' own tables (default, `warehouse`), or alerts' own tables only (`local`: None)."""
        source = env_str("ALERTS_RULE_COUNTS", "warehouse")
        if source not in ("warehouse", "local"):
            raise SystemExit(f"ALERTS_RULE_COUNTS must be warehouse or local, not {source!r}")
        return cls(channel()) if source == "warehouse" else None

    def _area(self, area: Area, resolution: int) -> dict | None:
        if area.kind == "STATION":
            return {"station_id": area.id}
        if area.kind == "GRID":
            return {"grid_id": area.id}
        if area.kind == "H3" and resolution in self.RESOLUTIONS:
            return {"cell": area.id}
        return None

    def _ask(self, area: dict, types, start: datetime, end: datetime):
        return self._stub.CheckThreshold.future(warehouse_pb.CheckThresholdRequest(
            start_time=to_pb(start), end_time=to_pb(end), incident_types=[t for t in types if t],
            counted_only=True, **area), timeout=self.timeout)

    def __call__(self, asks: list, t: datetime) -> dict:
        calls: dict = {}  # ask -> [(hour or None, future)]
        for ask in asks:
            if isinstance(ask, WindowCount):
                area = self._area(ask.area, ask.resolution)
                if area is not None:
                    # (start, t]: the warehouse counts [start, end) to the microsecond.
                    calls[ask.key] = (ask, [(None, self._ask(area, ask.incident_types, ask.start + _US, t))])
            elif isinstance(ask, HourCounts):
                area = self._area(ask.area, 8 if ask.area.kind == "H3" else 0)
                if area is not None and ask.key not in self._history:
                    # The past hours only: the current one alerts' own tables count as it fills.
                    calls[ask.key] = (ask, [(h, self._ask(area, ask.incident_types, h, h + _HOUR))
                                            for h in ask.hours if h != ask.hour])
        out = {}
        for key, (ask, futures) in calls.items():
            try:
                counts = {key: f.result().count for key, f in futures}
            except grpc.RpcError as exc:
                log.warning("warehouse CheckThreshold failed (%s); %s counted from alerts' own tables",
                            exc.code(), ask.area.name)
                continue
            if isinstance(ask, WindowCount):
                out[key] = counts[None] + 1
            else:
                history = sorted(h for h in counts if counts[h] > 0)
                # The area's history starts at its first hour with a report (a new area has none).
                if len(self._history) >= self.HISTORY_ENTRIES:
                    self._history.clear()
                self._history[key] = (counts, history[0] if history else None)
        for ask in asks:
            if isinstance(ask, HourCounts) and ask.key in self._history:
                past, first = self._history[ask.key]
                out[ask.key] = ({**past, ask.hour: 1}, first or ask.hour)
        local = len(asks) - len(out)
        if out:
            metrics.ALERTS_RULE_COUNTS.labels(metrics.service(), "warehouse").inc(len(out))
        if local:
            metrics.ALERTS_RULE_COUNTS.labels(metrics.service(), "local").inc(local)
        return out


_US = timedelta(microseconds=1)
_HOUR = timedelta(hours=1)


# -- webhooks --------------------------------------------------------------------------------------

class WebhookSender:
    def __init__(self, config: NotifyConfig, timeout: float = 5.0):
        self.config = config
        self.timeout = timeout

    def send(self, d: Delivery) -> Outcome:
        receiver = self.config.receivers.get(d.receiver)
        if receiver is None:
            return Outcome(False, f"receiver {d.receiver!r} is no longer configured", retryable=False)
        body = d.body.encode("utf-8")
        txguard.check(f"POST {d.target}")
        try:
            r = httpx.post(d.target, content=body, timeout=self.timeout, headers={
                "Content-Type": "application/json; charset=utf-8", SIGNATURE_HEADER: sign(receiver.secret, body),
                "User-Agent": "smart110-alerts", "X-Smart110-Delivery": d.id})
        except httpx.HTTPError as err:
            return Outcome(False, f"{type(err).__name__}: {err}")
        if 200 <= r.status_code < 300:
            return Outcome(True, remote_id=r.headers.get("X-Request-Id", ""))
        retryable = r.status_code in (408, 429) or r.status_code >= 500
        return Outcome(False, f"HTTP {r.status_code}: {r.text[:200]}", retryable=retryable)


# -- SMS through SMPP ------------------------------------------------------------------------------

@dataclass(frozen=True)
class SmscSettings:
    """Where the SMS gateway is and who we are to it (SMSC_ADDR, SMSC_SYSTEM_ID, SMSC_PASSWORD,
    SMSC_SOURCE_ADDR: the number texts come from)."""

    address: str
    system_id: str = "smart110"
    password: str = ""
    source_addr: str = "12110"
    timeout: float = 5.0

    @classmethod
    def from_env(cls) -> "SmscSettings":
        return cls(env_str("SMSC_ADDR", "127.0.0.1:2775"), env_str("SMSC_SYSTEM_ID", "smart110"),
                   env_str("SMSC_PASSWORD", ""), env_str("SMSC_SOURCE_ADDR", "12110"))

    @property
    def host_port(self) -> tuple[str, int]:
        host, _, port = self.address.rpartition(":")
        return host or "127.0.0.1", int(port)


def _client(settings: SmscSettings) -> smpplib.client.Client:
    host, port = settings.host_port
    return smpplib.client.Client(host, port, timeout=settings.timeout, allow_unknown_opt_params=True)


class SmppSender:
    def __init__(self, settings: SmscSettings):
        self.settings = settings

    def send(self, d: Delivery) -> Outcome:
        s = self.settings
        txguard.check(f"SMPP submit_sm {s.address}")
        parts, coding, esm_class = smpplib.gsm.make_parts(d.body, encoding=smpplib.consts.SMPP_ENCODING_ISO10646)
        client = _client(s)
        ids: list[str] = []
        client.set_message_sent_handler(lambda pdu, **_: ids.append(_text(pdu.message_id)))
        try:
            client.connect()
            client.bind_transmitter(system_id=s.system_id, password=s.password)
            for part in parts:
                client.send_message(
                    source_addr_ton=smpplib.consts.SMPP_TON_ALNUM, source_addr_npi=smpplib.consts.SMPP_NPI_UNK,
                    source_addr=s.source_addr, dest_addr_ton=smpplib.consts.SMPP_TON_INTL,
                    dest_addr_npi=smpplib.consts.SMPP_NPI_ISDN, destination_addr=d.target, short_message=part,
                    data_coding=coding, esm_class=esm_class, registered_delivery=0)
                client.read_once(auto_send_enquire_link=False)
            client.unbind()
        except smpplib.exceptions.PDUError as err:
            status = err.args[1] if len(err.args) > 1 else 0
            # Throttled (0x58) or a gateway fault (0x08 system error, 0x14 queue full) passes; the rest is final.
            return Outcome(False, f"SMPP error {status:#x}: {err.args[0]}", retryable=status in (0x08, 0x14, 0x58))
        except (smpplib.exceptions.ConnectionError, OSError) as err:
            return Outcome(False, f"SMSC unreachable: {err or type(err).__name__}")
        finally:
            try:
                client.disconnect()
            except OSError:
                pass
        return Outcome(True, remote_id=",".join(ids))


def _text(value) -> str:
    return value.decode("ascii", "replace") if isinstance(value, (bytes, bytearray)) else str(value or "")


class SmscReceiver:
    """A receiver session with the SMS gateway: `listen(on_reply, stopped)` binds, hands each
    deliver_sm to `on_reply(number, text)` (the library answers it) and returns when `stopped`
    is set or the session ends."""

    def __init__(self, settings: SmscSettings):
        self.settings = settings

    def listen(self, on_reply: Callable[[str, str], None], stopped: threading.Event) -> None:
        s = self.settings
        client = _client(SmscSettings(s.address, s.system_id, s.password, s.source_addr, timeout=1.0))

        def received(pdu, **_):
            raw = pdu.short_message or b""
            ucs2 = pdu.data_coding == smpplib.consts.SMPP_ENCODING_ISO10646
            on_reply(_text(pdu.source_addr), raw.decode("utf-16-be", "replace") if ucs2 else raw.decode("latin-1"))

        client.set_message_received_handler(received)
        try:
            client.connect()
            client.bind_receiver(system_id=s.system_id, password=s.password)
            while not stopped.is_set():
                try:
                    client.read_once(auto_send_enquire_link=False)
                except socket.timeout:
                    continue
        finally:
            try:
                client.disconnect()
            except OSError:
                pass
