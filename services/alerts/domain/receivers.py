"""Notification receivers (通知接收方), routes and inhibition rules, as data, in the manner of
Alertmanager: a route matches an alert's labels (level, station, rule, kind, ...) and names the
receivers it goes to; an inhibition rule mutes an alert (the target) while another open alert (the
source) with the same values of some labels holds.

Receivers are of three kinds:

- `console`: the officer's phone and the big screens, i.e. the Subscribe stream. It has no queue:
  an alert's notifications are pushed to whoever subscribes, and marked delivered when pushed on
  an open stream (never before).
- `webhook`: an Alertmanager-compatible JSON document (version "4") POSTed to a URL, signed with
  HMAC-SHA256 over the body, retried with exponential backoff.
- `sms`: a short message through an SMPP gateway (UCS2), to the receiver's numbers for the
  alert's station, retried the same way.

Plain values in, plain values out: the configuration is read from JSON (`NotifyConfig.parse`);
secrets and URLs may be named by environment variable (`url_env`, `secret_env`).
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from services.runtime.config import env_float, env_int, env_str

from .alerts import Alert, Matcher
from .cap import CAP_EVENT
from .common import LEVEL_CN

RECEIVER_KINDS = ("console", "webhook", "sms")
# The configuration a service reads unless ALERTS_RECEIVERS_FILE names another.
DEFAULT_CONFIG = Path(__file__).resolve().parents[1] / "receivers.json"
SIGNATURE_HEADER = "X-Smart110-Signature"
# Alertmanager's "no end yet".
ZERO_TIME = "0001-01-01T00:00:00Z"
_MATCHER = re.compile(r"^\s*([a-z_][a-z0-9_]*)\s*(=~|!=|=)\s*\"?(.*?)\"?\s*$")
_OPERATORS = {"=": "EQUAL", "!=": "NOT_EQUAL", "=~": "REGEX"}


class ConfigError(ValueError):
    """The receivers configuration is wrong: which entry, and why."""


def parse_matcher(text: str, where: str) -> Matcher:
    """`level=RED`, `station_id!=S01`, `level=~ORANGE|RED` (Alertmanager's matcher syntax)."""
    m = _MATCHER.match(text)
    if m is None:
        raise ConfigError(f"{where}: {text!r} is not a matcher (label=value, label!=value, label=~regex)")
    label, op, value = m.groups()
    if op == "=~":
        try:
            re.compile(value)
        except re.error as err:
            raise ConfigError(f"{where}: {value!r} is not a regular expression ({err})") from err
    return Matcher(label, value, _OPERATORS[op])


def _matchers(items, where: str) -> tuple[Matcher, ...]:
    return tuple(parse_matcher(t, f"{where}[{i}]") for i, t in enumerate(items or []))


def matches_all(matchers: tuple[Matcher, ...], labels: dict[str, str]) -> bool:
    return all(m.matches(labels) for m in matchers)


@dataclass(frozen=True)
class Receiver:
    name: str
    kind: str
    url: str = ""
    secret: str = ""
    # SMS: the numbers to text, by station id ("*": every station).
    numbers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    send_resolved: bool = True

    @property
    def enabled(self) -> bool:
        """A webhook without a URL (its variable unset) is off, as is an SMS receiver without numbers."""
        if self.kind == "webhook":
            return bool(self.url)
        if self.kind == "sms":
            return any(self.numbers.values())
        return True

    def numbers_for(self, station_id: str) -> list[str]:
        return list(dict.fromkeys([*self.numbers.get(station_id, ()), *self.numbers.get("*", ())]))


@dataclass(frozen=True)
class Route:
    """Alerts whose labels all match go to `receivers`; `stop`: later routes are not looked at."""

    receivers: tuple[str, ...]
    matchers: tuple[Matcher, ...] = ()
    stop: bool = False


@dataclass(frozen=True)
class InhibitRule:
    """While an open alert matching `source` holds, an alert matching `target` with the same values
    of the `equal` labels is not notified (Alertmanager's inhibit_rules)."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()

    def mutes(self, target: dict[str, str], source: dict[str, str]) -> bool:
        return (matches_all(self.target, target) and matches_all(self.source, source)
                and all(target.get(k, "") == source.get(k, "") for k in self.equal))


@dataclass(frozen=True)
class NotifyConfig:
    receivers: dict[str, Receiver]
    routes: tuple[Route, ...]
    inhibit_rules: tuple[InhibitRule, ...] = ()
    external_url: str = ""

    @classmethod
    def parse(cls, data: dict, env: dict[str, str] | None = None) -> "NotifyConfig":
        env = os.environ if env is None else env
        receivers: dict[str, Receiver] = {}
        for i, r in enumerate(data.get("receivers", [])):
            where = f"receivers[{i}]"
            name, kind = r.get("name", ""), r.get("kind", "")
            if not name:
                raise ConfigError(f"{where}.name is required")
            if name in receivers:
                raise ConfigError(f"{where}.name {name!r} is used twice")
            if kind not in RECEIVER_KINDS:
                raise ConfigError(f"{where}.kind must be one of {', '.join(RECEIVER_KINDS)}")
            url = r.get("url") or (env.get(r["url_env"], "") if r.get("url_env") else "")
            secret = env.get(r["secret_env"], "") if r.get("secret_env") else r.get("secret", "")
            if kind == "webhook" and url and not secret:
                raise ConfigError(f"{where}: a webhook needs a signing secret (secret_env)")
            numbers = {station: tuple(str(n) for n in nums) for station, nums in (r.get("numbers") or {}).items()}
            receivers[name] = Receiver(name, kind, url, secret, numbers, bool(r.get("send_resolved", True)))
        routes = []
        for i, rt in enumerate(data.get("routes", [])):
            names = tuple(rt.get("receivers", []))
            unknown = [n for n in names if n not in receivers]
            if not names or unknown:
                raise ConfigError(f"routes[{i}].receivers: {'unknown ' + ', '.join(unknown) if unknown else 'required'}")
            routes.append(Route(names, _matchers(rt.get("matchers"), f"routes[{i}].matchers"), bool(rt.get("stop"))))
        inhibit = tuple(InhibitRule(_matchers(x.get("source_matchers"), f"inhibit_rules[{i}].source_matchers"),
                                    _matchers(x.get("target_matchers"), f"inhibit_rules[{i}].target_matchers"),
                                    tuple(x.get("equal", [])))
                        for i, x in enumerate(data.get("inhibit_rules", [])))
        return cls(receivers, tuple(routes), inhibit, str(data.get("external_url", "")))

    @classmethod
    def load(cls, path: str, env: dict[str, str] | None = None) -> "NotifyConfig":
        with open(path, encoding="utf-8") as f:
            return cls.parse(json.load(f), env)

    @classmethod
    def from_env(cls) -> "NotifyConfig":
        """The service's configuration: the file ALERTS_RECEIVERS_FILE names, else `DEFAULT_CONFIG`."""
        return cls.load(env_str("ALERTS_RECEIVERS_FILE", str(DEFAULT_CONFIG)))

    @property
    def sends_sms(self) -> bool:
        return any(r.kind == "sms" and r.enabled for r in self.receivers.values())

    def receivers_for(self, labels: dict[str, str]) -> list[Receiver]:
        """The enabled receivers of every route the labels match, in order, each once."""
        names: list[str] = []
        for route in self.routes:
            if matches_all(route.matchers, labels):
                names.extend(route.receivers)
                if route.stop:
                    break
        return [self.receivers[n] for n in dict.fromkeys(names) if self.receivers[n].enabled]

    def inhibited_by(self, labels: dict[str, str], others: list[tuple[str, dict[str, str]]]) -> str:
        """The open alert (of `others`: (name, labels)) that mutes an alert with `labels`, "" when none."""
        for rule in self.inhibit_rules:
            for name, source in others:
                if source is not labels and rule.mutes(labels, source):
                    return name
        return ""


# -- what a receiver is sent ---------------------------------------------------------------------

def rfc3339(t: datetime | None) -> str:
    if t is None:
        return ZERO_TIME
    return t.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def alert_labels(alert: Alert) -> dict[str, str]:
    """What a receiver sees as labels: the alert's, and an `alertname` in words."""
    return {"alertname": CAP_EVENT.get(alert.kind, "预警"), **{k: v for k, v in alert.labels.items() if v}}


def annotations(alert: Alert) -> dict[str, str]:
    out = {"summary": f"{LEVEL_CN.get(alert.level, '')}预警：{alert.summary}", "description": alert.summary,
           "level": LEVEL_CN.get(alert.level, alert.level), "alert": alert.name}
    if alert.suggested_action:
        out["suggested_action"] = alert.suggested_action
    return out


def webhook_payload(receiver: Receiver, alert: Alert, status: str, external_url: str = "") -> dict:
    """Alertmanager's webhook document (version 4) for one alert of a group."""
    labels = alert_labels(alert)
    group_labels = {k: labels[k] for k in ("kind", "station_id") if k in labels}
    ends = alert.resolved.time if status == "resolved" and alert.resolved is not None else None
    base = external_url.rstrip("/")
    return {
        "version": "4",
        "groupKey": "{}:" + json.dumps(group_labels, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
                    + f"/{alert.group_key}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": receiver.name,
        "groupLabels": group_labels,
        "commonLabels": labels,
        "commonAnnotations": annotations(alert),
        "externalURL": base,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations(alert),
            "startsAt": rfc3339(alert.first_seen_time),
            "endsAt": rfc3339(ends),
            "generatorURL": f"{base}/v1/{alert.name}" if base else f"/v1/{alert.name}",
            "fingerprint": alert.fingerprint,
        }],
    }


def webhook_body(payload: dict) -> bytes:
    """The exact bytes sent (and signed): kept as queued, so a retry sends the same."""
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: `sha256=` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(sign(secret, body), header or "")


def sms_text(alert: Alert, status: str) -> str:
    """The short message, in Chinese; a firing one asks for a reply to acknowledge."""
    if status == "resolved":
        return f"【江城110】预警解除：{alert.summary[:60]}"
    action = f"。{alert.suggested_action}" if alert.suggested_action else ""
    return f"【江城110】{LEVEL_CN.get(alert.level, '')}预警：{alert.summary}{action}。回复1签收"


# -- the delivery schedule --------------------------------------------------------------------------

@dataclass(frozen=True)
class DeliveryPolicy:
    """Delay before attempt n+1 after n failures: base * 2^(n-1), at most `cap` seconds; after
    `max_attempts` failures a delivery is given up (FAILED, with its last error)."""

    base_seconds: float = 2.0
    cap_seconds: float = 300.0
    max_attempts: int = 8
    call_timeout_seconds: float = 5.0
    lease_margin_seconds: float = 10.0

    @classmethod
    def from_env(cls) -> "DeliveryPolicy":
        """ALERTS_DELIVERY_RETRY_BASE_SECONDS, ALERTS_DELIVERY_RETRY_MAX_SECONDS, ALERTS_DELIVERY_MAX_ATTEMPTS."""
        return cls(base_seconds=env_float("ALERTS_DELIVERY_RETRY_BASE_SECONDS", 2.0),
                   cap_seconds=env_float("ALERTS_DELIVERY_RETRY_MAX_SECONDS", 300.0),
                   max_attempts=env_int("ALERTS_DELIVERY_MAX_ATTEMPTS", 8))

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.call_timeout_seconds + self.lease_margin_seconds)

    def retry_delay(self, failures: int) -> timedelta:
        return timedelta(seconds=min(self.base_seconds * 2 ** max(failures - 1, 0), self.cap_seconds))


@dataclass(frozen=True)
class Outcome:
    """What a send came to: delivered (with the receiver's id for it), or an error (retryable or not)."""

    ok: bool
    error: str = ""
    retryable: bool = True
    remote_id: str = ""


@dataclass
class Delivery:
    """One message to one receiver's target (a URL, a phone number) and what became of it."""

    id: str
    alert_id: str
    receiver: str
    kind: str  # WEBHOOK, SMS
    target: str
    status: str  # firing, resolved
    body: str
    create_time: datetime
    state: str = "PENDING"  # PENDING, DELIVERED, FAILED, INHIBITED
    attempts: int = 0
    last_error: str = ""
    next_attempt_time: datetime | None = None
    last_attempt_time: datetime | None = None
    delivered_time: datetime | None = None
    remote_id: str = ""  # the gateway's message id
    # INHIBITED: the open alert that mutes it (it is sent once that one resolves, unless another mutes it).
    inhibited_by: str = ""
    claimed_by: str | None = None
    lease_until: datetime | None = None

    def delivered(self, now: datetime, remote_id: str = "") -> None:
        self.attempts += 1
        self.state, self.delivered_time, self.last_attempt_time = "DELIVERED", now, now
        self.remote_id, self.last_error, self.next_attempt_time = remote_id, "", None
        self.claimed_by = self.lease_until = None

    def release(self, now: datetime, still_muted_by: str = "") -> None:
        """The alert that muted it resolved: it is sent now, or stays muted by another open alert."""
        if still_muted_by:
            self.inhibited_by = still_muted_by
        else:
            self.state, self.next_attempt_time, self.inhibited_by = "PENDING", now, ""

    def failed(self, now: datetime, error: str, policy: DeliveryPolicy, *, retryable: bool = True) -> None:
        self.attempts += 1
        self.last_attempt_time, self.last_error = now, error[:500]
        self.claimed_by = self.lease_until = None
        if retryable and self.attempts < policy.max_attempts:
            self.next_attempt_time = now + policy.retry_delay(self.attempts)
        else:
            self.state, self.next_attempt_time = "FAILED", None


def plan(config: NotifyConfig, alert: Alert, status: str, *, now: datetime, new_id,
         open_alerts: list[tuple[str, dict[str, str]]] = (), told: set[str] | None = None) -> list[Delivery]:
    """What an alert's change sends to the routed receivers: one delivery per webhook and per SMS
    number. A firing alert that an inhibition rule mutes is recorded (INHIBITED) and not sent;
    a resolved one goes only to receivers that were told it fired (`told`: their names) and want
    resolutions. The console receiver has no deliveries: the Subscribe stream is its queue."""
    out: list[Delivery] = []
    muted_by = config.inhibited_by(alert.labels, [o for o in open_alerts if o[0] != alert.name]) \
        if status == "firing" else ""
    for receiver in config.receivers_for(alert.labels):
        if receiver.kind == "console":
            continue
        if status == "resolved" and (not receiver.send_resolved or receiver.name not in (told or set())):
            continue
        if receiver.kind == "webhook":
            body = webhook_body(webhook_payload(receiver, alert, status, config.external_url)).decode("utf-8")
            targets = [("WEBHOOK", receiver.url, body)]
        else:
            text = sms_text(alert, status)
            targets = [("SMS", n, text) for n in receiver.numbers_for(alert.station_id)]
        for kind, target, body in targets:
            d = Delivery(id=new_id(now, prefix="d"), alert_id=alert.id, receiver=receiver.name, kind=kind,
                         target=target, status=status, body=body, create_time=now, next_attempt_time=now)
            if muted_by:
                d.state, d.next_attempt_time, d.inhibited_by = "INHIBITED", None, muted_by
            out.append(d)
    return out
