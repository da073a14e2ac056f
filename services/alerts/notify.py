"""Sending to notification receivers: the webhook and SMS (SMPP) senders, the delivery worker that
drives them, and the listener for SMS replies.

- `DeliveryWorker` sends queued deliveries. Several replicas run one each: a worker takes a due
  delivery with a lease (`claimed_by`, `lease_until`) in a short transaction, sends it with no
  transaction open, then records the outcome (delivered, or the error and when to try again,
  with exponential backoff) and releases the lease in a second one. A worker whose lease was
  taken over meanwhile does not record its outcome.
- `WebhookSender` POSTs the queued body with its HMAC-SHA256 signature; 2xx is delivered, 408,
  429 and 5xx (and an unreachable receiver) are tried again, other answers are final.
- `SmppSender` binds to the SMS gateway as a transmitter, submits the text in UCS2 (split in
  concatenated parts when long) and takes the gateway's message id as the receipt.
- `SmsReplyListener` stays bound as a receiver: a reply of "1" (or 收到) acknowledges the alert the
  number was last texted about.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime

import httpx
import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.gsm

from services.runtime import txguard
from services.runtime.app import Runtime
from services.runtime.config import env_float, env_int, env_str

from .domain.receivers import SIGNATURE_HEADER, Delivery, DeliveryPolicy, NotifyConfig, sign
from .handlers import deliveries
from .handlers.deliveries import Outcome

log = logging.getLogger("smart110.alerts.notify")
DEFAULT_CONFIG = os.path.join(os.path.dirname(__file__), "receivers.json")


def load_config() -> NotifyConfig:
    """The receivers configuration: ALERTS_RECEIVERS_FILE, else the one beside this module."""
    return NotifyConfig.load(env_str("ALERTS_RECEIVERS_FILE", DEFAULT_CONFIG))


def policy_from_env() -> DeliveryPolicy:
    return DeliveryPolicy(base_seconds=env_float("ALERTS_DELIVERY_RETRY_BASE_SECONDS", 2.0),
                          cap_seconds=env_float("ALERTS_DELIVERY_RETRY_MAX_SECONDS", 300.0),
                          max_attempts=env_int("ALERTS_DELIVERY_MAX_ATTEMPTS", 8))


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


# -- the worker -------------------------------------------------------------------------------------

class DeliveryWorker:
    """Sends queued deliveries; `run_once(now)` does the work due at `now` and returns when the next is
    due. The background thread calls it with the runtime's clock, waking early when the service's own
    feed announces a commit (a queued delivery comes with its alert's event)."""

    def __init__(self, rt: Runtime, senders: dict, *, policy: DeliveryPolicy | None = None,
                 idle_seconds: float = 5.0):
        self.rt = rt
        self.senders = senders  # kind (WEBHOOK, SMS) -> sender
        self.policy = policy or DeliveryPolicy()
        self.idle_seconds = idle_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="alert-deliveries", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.policy.call_timeout_seconds + 2)

    def _run(self) -> None:
        seen = 0
        feed = self.rt.feed
        while not self._stop.is_set():
            wait = self.idle_seconds
            try:
                due = self.run_once()
                if due is not None:
                    wait = min(max((due - self.rt.clock()).total_seconds(), 0.05), self.idle_seconds)
            except Exception:  # noqa: BLE001 - the rows stay queued; try again
                log.exception("alert delivery failed; retrying")
                wait = 1.0
            if feed is not None and not feed.closed:
                seen = feed.wait_for_new(seen, wait)
            else:
                self._stop.wait(wait)

    def run_once(self, now: datetime | None = None) -> datetime | None:
        """Sends every delivery due at `now` (each once); returns when the next one is due."""
        now = now or self.rt.clock()
        handled: set[str] = set()
        while not self._stop.is_set() and self._handle_one(now, handled):
            pass
        with self.rt.transaction() as uow:
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
    """Bound to the gateway as a receiver; each deliver_sm (a reply) goes to `deliveries.sms_reply`."""

    def __init__(self, rt: Runtime, settings: SmscSettings):
        self.rt = rt
        self.settings = settings
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sms-replies", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.settings.timeout + 2)

    def handle(self, number: str, text: str) -> str:
        """One reply: acknowledges the alert the number was last texted about (its name, or "")."""
        with self.rt.transaction(deliveries.sms_actor(number)) as uow:
            return deliveries.sms_reply(uow, number=number, text=text)

    def _run(self) -> None:
        while not self._stop.is_set():
            client = _client(SmscSettings(self.settings.address, self.settings.system_id, self.settings.password,
                                          self.settings.source_addr, timeout=1.0))
            client.set_message_received_handler(self._received)
            try:
                client.connect()
                client.bind_receiver(system_id=self.settings.system_id, password=self.settings.password)
                while not self._stop.is_set():
                    try:
                        client.read_once(auto_send_enquire_link=False)
                    except socket.timeout:
                        continue
            except Exception as err:  # noqa: BLE001 - the gateway is away: bind again shortly
                log.debug("SMS reply listener unbound: %s", err)
            finally:
                try:
                    client.disconnect()
                except OSError:
                    pass
            self._stop.wait(2.0)

    def _received(self, pdu, **_) -> None:
        """A deliver_sm; returns None, so the library answers it with status OK."""
        raw = pdu.short_message or b""
        text = raw.decode("utf-16-be", "replace") if pdu.data_coding == smpplib.consts.SMPP_ENCODING_ISO10646 \
            else raw.decode("latin-1")
        try:
            acked = self.handle(_text(pdu.source_addr), text)
            if acked:
                log.info("%s acknowledged by SMS reply", acked)
        except Exception:  # noqa: BLE001 - a reply that cannot be applied is not retried
            log.exception("SMS reply from %s not applied", _text(pdu.source_addr))


def wire(rt: Runtime, config: NotifyConfig) -> DeliveryWorker:
    """The delivery worker (and the reply listener when an SMS receiver is configured), as workers of `rt`."""
    settings = SmscSettings.from_env()
    policy = policy_from_env()
    worker = DeliveryWorker(rt, {"WEBHOOK": WebhookSender(config, policy.call_timeout_seconds),
                                 "SMS": SmppSender(settings)}, policy=policy)
    rt.workers.append(worker)
    if any(r.kind == "sms" and r.enabled for r in config.receivers.values()):
        rt.workers.append(SmsReplyListener(rt, settings))
    return worker
