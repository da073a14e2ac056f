"""Notification receivers for real: a webhook receiver (an HTTP server on a real socket) and the
stand-in SMS centre (SMPP on a real socket), driven by the delivery worker at virtual times; the
Subscribe stream as the console receiver; inhibition; a reply by SMS acknowledging."""
from __future__ import annotations

import json
import threading
import time
import uuid
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from smart110.alerts.v1 import alerts_service_pb2 as pb
from smart110.alerts.v1 import alerts_service_pb2_grpc as pb_grpc
from services.alerts import handlers, mapping, queries
from services.alerts.__main__ import SPEC
from services.alerts.domain.receivers import SIGNATURE_HEADER, ZERO_TIME, DeliveryPolicy, NotifyConfig, verify
from services.alerts.clients import SmppSender, SmscSettings, WebhookSender
from services.alerts.workers import DeliveryWorker, SmsReplyListener
from services.runtime.auth import SERVICE_CONTEXT, AuthContext
from tests import support
from tests.integration.test_alerts_engine import make_report
from tools.fake_smsc import FakeSmsc

T0 = datetime(2026, 11, 3, 2, 0, tzinfo=timezone.utc)
SECRET = "webhook-test-secret"
CHIEF = AuthContext("chief-1", frozenset({"station_chief"}))
POLICY = DeliveryPolicy(base_seconds=10.0, cap_seconds=40.0, max_attempts=4)


class Hook:
    """A webhook receiver on a real socket: answers each POST with the next scripted status (200
    once the script is used up) and keeps what it received."""

    def __init__(self):
        self.received: list[tuple[dict, bytes]] = []
        self.script: list[int] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server interface
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status = hook.script.pop(0) if hook.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/alerts"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def hook():
    h = Hook()
    yield h
    h.close()


@pytest.fixture(scope="module")
def smsc():
    c = FakeSmsc().start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def served(admin_url):
    with support.serving(SPEC, admin_url, clock=support.Clock(T0), seed=False) as s:
        s.rt.context.units = lambda fresh=False: []
        yield s


@pytest.fixture()
def station():
    return "N" + uuid.uuid4().hex[:6]


def configure(served, hook, station: str, number: str) -> NotifyConfig:
    config = NotifyConfig.parse({
        "external_url": "https://alerts.example.test",
        "receivers": [
            {"name": "console", "kind": "console"},
            {"name": "command-hook", "kind": "webhook", "url": hook.url, "secret_env": "TEST_HOOK_SECRET"},
            {"name": "duty-sms", "kind": "sms", "numbers": {station: [number]}},
        ],
        "routes": [
            {"receivers": ["console"]},
            {"matchers": ["level=~ORANGE|RED", f"station_id={station}"], "receivers": ["command-hook", "duty-sms"]},
        ],
        "inhibit_rules": [{"source_matchers": ["area_kind=STATION"], "target_matchers": ["area_kind=GRID"],
                           "equal": ["kind", "station_id"]}],
    }, env={"TEST_HOOK_SECRET": SECRET})
    served.rt.context.notify = config
    return config


def worker(served, config, smsc) -> DeliveryWorker:
    return DeliveryWorker(served.rt, {"WEBHOOK": WebhookSender(config), "SMS": SmppSender(SmscSettings(smsc.address))},
                          policy=POLICY)


@contextmanager
def at(served, t: datetime, actor=SERVICE_CONTEXT):
    served.clock.set(t)
    with served.rt.transaction(actor) as uow:
        yield uow


def keyword_rule(served, station: str, term: str, level=pb.ALERT_LEVEL_RED):
    with at(served, T0, CHIEF) as uow:
        return handlers.rules.create_rule(uow, rule=mapping.rule_from_pb(pb.Rule(
            display_name="重大警情关键词", kind=pb.RULE_KIND_KEYWORD, level=level, enabled=True, areas=[station],
            terms=[pb.KeywordTerm(term=term)])))



def report(served, station: str, text: str, t: datetime, *, grid: str | None = None, itype="HOMICIDE"):
    r = make_report(station, text, t, itype=itype, grid=grid)
    with at(served, t) as uow:
        return handlers.detection.report_received(uow, report=mapping.report_from_pb(r), units=[])


def log_of(served, alert_id: str):
    with served.rt.transaction() as uow:
        return uow.repos.deliveries.of_alert(alert_id)


def number() -> str:
    return "86139" + uuid.uuid4().hex[:8].translate(str.maketrans("abcdef", "123456"))


# -- webhooks and SMS -----------------------------------------------------------------------------------

def test_a_red_alert_reaches_the_webhook_signed_retried_after_a_500_and_the_phone_in_chinese(
        served, hook, smsc, station):
    phone = number()
    config = configure(served, hook, station, phone)
    keyword_rule(served, station, "杀人")
    [alert] = report(served, station, "小区里有人杀人了", T0)
    queued = log_of(served, alert.id)
    assert sorted((d.kind, d.state, d.attempts) for d in queued) == [("SMS", "PENDING", 0), ("WEBHOOK", "PENDING", 0)]
    assert not any(alert.id.encode() in body for _, body in hook.received), \
        "nothing is sent by the transaction that raised the alert: the worker sends after the commit"

    sender = worker(served, config, smsc)
    hook.received.clear()
    hook.script = [500]
    due = sender.run_once(T0)
    assert len(hook.received) == 1
    log = {d.kind: d for d in log_of(served, alert.id)}
    assert log["WEBHOOK"].state == "PENDING" and log["WEBHOOK"].attempts == 1
    assert log["WEBHOOK"].last_error.startswith("HTTP 500")
    assert log["WEBHOOK"].next_attempt_time == T0 + timedelta(seconds=10) and due == T0 + timedelta(seconds=10)
    assert log["SMS"].state == "DELIVERED" and log["SMS"].attempts == 1 and log["SMS"].delivered_time == T0
    [sms] = [m for m in smsc.wait_for(1) if m.destination == phone]
    assert sms.data_coding == 8, "Chinese text goes as UCS2"
    assert sms.text.startswith("【江城110】红色预警：") and "杀人" in sms.text and sms.text.endswith("回复1签收")
    assert log["SMS"].remote_id == sms.message_id

    # Not due yet: nothing is sent again.
    sender.run_once(T0 + timedelta(seconds=5))
    assert len(hook.received) == 1
    sender.run_once(T0 + timedelta(seconds=10))
    assert len(hook.received) == 2
    [d] = [d for d in log_of(served, alert.id) if d.kind == "WEBHOOK"]
    assert (d.state, d.attempts, d.delivered_time, d.last_error) == ("DELIVERED", 2, T0 + timedelta(seconds=10), "")

    (h1, b1), (h2, b2) = hook.received
    assert b1 == b2, "a retry sends the same document"
    assert verify(SECRET, b2, h2[SIGNATURE_HEADER.lower()]) and not verify("another secret", b2,
                                                                           h2[SIGNATURE_HEADER.lower()])
    assert h2["content-type"].startswith("application/json")
    doc = json.loads(b2)
    assert doc["version"] == "4" and doc["status"] == "firing" and doc["receiver"] == "command-hook"
    assert doc["groupKey"].endswith(alert.group_key) and doc["groupLabels"] == {"kind": "KEYWORD", "station_id": station}
    [a] = doc["alerts"]
    assert a["status"] == "firing" and a["fingerprint"] == alert.fingerprint
    assert a["labels"]["alertname"] == "重大警情关键词预警" and a["labels"]["station_id"] == station
    assert a["labels"]["level"] == "RED" and a["labels"]["incident"] == alert.subject
    assert a["annotations"]["summary"].startswith("红色预警：") and a["annotations"]["alert"] == f"alerts/{alert.id}"
    assert a["startsAt"] == "2026-11-03T02:00:00.000Z" and a["endsAt"] == ZERO_TIME
    assert a["generatorURL"] == f"https://alerts.example.test/v1/alerts/{alert.id}"

    # Resolved: the receivers told it fired hear that it is over.
    with at(served, T0 + timedelta(minutes=5), CHIEF) as uow:
        handlers.alerts.resolve_alert(uow, alert_id=alert.id, reason="已抓获嫌疑人")
    sender.run_once(T0 + timedelta(minutes=5))
    resolved = json.loads(hook.received[-1][1])
    assert resolved["status"] == "resolved" and resolved["alerts"][0]["endsAt"] == "2026-11-03T02:05:00.000Z"
    texts = [m.text for m in smsc.wait_for(2) if m.destination == phone]
    assert texts[-1].startswith("【江城110】预警解除：")
    assert sorted((d.kind, d.status, d.state) for d in log_of(served, alert.id)) == [
        ("SMS", "firing", "DELIVERED"), ("SMS", "resolved", "DELIVERED"),
        ("WEBHOOK", "firing", "DELIVERED"), ("WEBHOOK", "resolved", "DELIVERED")]

    # The delivery log, as GetAlert answers it.
    got = pb_grpc.AlertsServiceStub(served.channel).GetAlert(pb.GetAlertRequest(name=alert.name), timeout=5)
    by = {(d.kind, d.status): d for d in got.deliveries}
    first = by[(pb.DELIVERY_KIND_WEBHOOK, "firing")]
    assert (first.state, first.attempts, first.receiver) == (pb.DELIVERY_STATE_DELIVERED, 2, "command-hook")
    assert first.delivered_time.ToDatetime(tzinfo=timezone.utc) == T0 + timedelta(seconds=10)
    assert first.last_attempt_time.ToDatetime(tzinfo=timezone.utc) == T0 + timedelta(seconds=10)
    assert not first.HasField("next_attempt_time") and first.target == hook.url
    assert by[(pb.DELIVERY_KIND_SMS, "firing")].target == phone[:-8] + "****" + phone[-4:], "numbers are masked"


def test_backoff_doubles_up_to_the_cap_and_a_delivery_is_given_up_with_its_last_error(served, hook, smsc, station):
    config = configure(served, hook, station, number())
    keyword_rule(served, station, "绑架")
    [alert] = report(served, station, "孩子被人绑架了", T0)
    sender = worker(served, config, smsc)
    smsc.fail_next(4)
    hook.script = [503, 503, 503, 503]
    t, gaps = T0, []
    for _ in range(4):
        sender.run_once(t)
        [d] = [d for d in log_of(served, alert.id) if d.kind == "WEBHOOK"]
        if d.next_attempt_time is None:
            break
        gaps.append((d.next_attempt_time - t).total_seconds())
        t = d.next_attempt_time
    assert gaps == [10.0, 20.0, 40.0], "2x each time"
    log = {d.kind: d for d in log_of(served, alert.id)}
    assert (log["WEBHOOK"].state, log["WEBHOOK"].attempts) == ("FAILED", 4)
    assert log["WEBHOOK"].last_error.startswith("HTTP 503") and log["WEBHOOK"].delivered_time is None
    assert (log["SMS"].state, log["SMS"].attempts) == ("FAILED", 4) and "SMPP error 0x8" in log["SMS"].last_error
    sent = len(hook.received)
    sender.run_once(t + timedelta(hours=1))
    assert len(hook.received) == sent, "a failed delivery is not tried again"


def test_a_refusing_receiver_fails_at_once_and_an_unreachable_one_is_tried_again(served, hook, smsc, station):
    config = configure(served, hook, station, number())
    keyword_rule(served, station, "爆炸")
    [alert] = report(served, station, "工地发生爆炸", T0)
    hook.script = [400]
    smsc.stop()
    try:
        worker(served, config, smsc).run_once(T0)
    finally:
        smsc.start()
    log = {d.kind: d for d in log_of(served, alert.id)}
    assert (log["WEBHOOK"].state, log["WEBHOOK"].attempts) == ("FAILED", 1) and "HTTP 400" in log["WEBHOOK"].last_error
    assert (log["SMS"].state, log["SMS"].attempts) == ("PENDING", 1) and "unreachable" in log["SMS"].last_error
    worker(served, config, smsc).run_once(T0 + timedelta(seconds=10))
    assert {d.kind: d.state for d in log_of(served, alert.id)}["SMS"] == "DELIVERED"


def test_a_station_wide_alert_inhibits_the_grid_alert_of_the_same_kind(served, hook, smsc, station):
    config = configure(served, hook, station, number())
    keyword_rule(served, station, "持枪")
    [wide] = report(served, station, "辖区内有人持枪", T0, grid="")
    [grid] = report(served, station, "网格里有人持枪", T0 + timedelta(minutes=1))
    assert wide.area.kind == "STATION" and grid.area.kind == "GRID"
    muted = log_of(served, grid.id)
    assert muted and {d.state for d in muted} == {"INHIBITED"}
    listed = pb_grpc.AlertsServiceStub(served.channel).GetAlert(pb.GetAlertRequest(name=grid.name), timeout=5)
    assert {d.state for d in listed.deliveries} == {pb.DELIVERY_STATE_INHIBITED}
    assert all(d.inhibited_by == f"alerts/{wide.id}" and d.next_attempt_time is None for d in muted)
    hook.received.clear()
    sender = worker(served, config, smsc)
    sender.run_once(T0 + timedelta(minutes=1))
    assert [json.loads(b)["alerts"][0]["fingerprint"] for _, b in hook.received] == [wide.fingerprint]
    # The station-wide alert resolves: what it held back is sent now.
    with at(served, T0 + timedelta(minutes=2), CHIEF) as uow:
        handlers.alerts.resolve_alert(uow, alert_id=wide.id, reason="已处置")
    assert {(d.state, d.inhibited_by) for d in log_of(served, grid.id)} == {("PENDING", "")}
    sender.run_once(T0 + timedelta(minutes=2))
    sent = [json.loads(b) for _, b in hook.received]
    assert sorted((d["status"], d["alerts"][0]["fingerprint"]) for d in sent[1:]) == sorted(
        [("resolved", wide.fingerprint), ("firing", grid.fingerprint)])
    assert {d.state for d in log_of(served, grid.id)} == {"DELIVERED"}


def test_routes_send_a_blue_alert_to_the_console_alone(served, hook, smsc, station):
    configure(served, hook, station, number())
    keyword_rule(served, station, "噪音", level=pb.ALERT_LEVEL_BLUE)
    [alert] = report(served, station, "楼上噪音很大", T0, itype="NOISE")
    assert log_of(served, alert.id) == []


# -- the console: the Subscribe stream -----------------------------------------------------------------

def test_stream_notifications_are_delivered_once_pushed_to_a_subscriber_not_before(served, hook, station):
    configure(served, hook, station, number())
    keyword_rule(served, station, "劫持")
    [alert] = report(served, station, "有人劫持公交车", T0)
    stub = pb_grpc.AlertsServiceStub(served.channel)
    before = stub.GetAlert(pb.GetAlertRequest(name=alert.name), timeout=5)
    assert before.notifications and not any(n.delivered for n in before.notifications)
    stream = stub.Subscribe(pb.SubscribeRequest(include_active=True, areas=[station]), timeout=10)
    change = next(iter(stream))
    assert change.action == "SNAPSHOT" and change.alert.name == alert.name
    after = None
    for _ in range(50):  # the mark is written right after the push: read it back
        after = stub.GetAlert(pb.GetAlertRequest(name=alert.name), timeout=5)
        if any(n.delivered for n in after.notifications):
            break
        time.sleep(0.1)
    stream.cancel()
    pushed = {n.recipient: n.delivered for n in after.notifications}
    assert pushed[f"screens/{station}"] and pushed[f"stations/{station}"]
    voice = [n for n in after.notifications if n.channel == pb.NOTIFICATION_CHANNEL_VOICE_CALL]
    assert voice and not any(n.delivered for n in voice), "no stream reaches a voice call"


# -- replies by SMS -----------------------------------------------------------------------------------------

def test_a_reply_of_1_by_sms_acknowledges_the_alert_the_number_was_texted_about(served, hook, smsc, station):
    phone = number()
    config = configure(served, hook, station, phone)
    keyword_rule(served, station, "砍人")
    [alert] = report(served, station, "街上有人砍人", T0)
    worker(served, config, smsc).run_once(T0)
    listener = SmsReplyListener(served.rt, SmscSettings(smsc.address))
    listener.start()
    try:
        assert smsc.receivers_bound()
        assert smsc.reply(phone, "1") >= 1
        state = None
        for _ in range(100):
            with served.rt.engine.connect() as conn:
                state = queries.alert(conn, alert.id)
            if state.state == "ACKNOWLEDGED":
                break
            time.sleep(0.1)
    finally:
        listener.stop()
    assert state.state == "ACKNOWLEDGED" and state.acknowledged.actor == f"sms:{phone}"
    assert state.acknowledged.reason == "短信回复“1”签收"
    # A reply from a number never texted acknowledges nothing.
    with at(served, T0) as uow:
        assert handlers.deliveries.sms_reply(uow, number=number(), text="1") == ""


def test_the_delivery_log_keeps_open_alerts_and_forgets_resolved_ones_after_the_retention(served, hook, smsc, station):
    from services.alerts.workers import prune_deliveries

    config = configure(served, hook, station, number())
    keyword_rule(served, station, "持刀")
    [old] = report(served, station, "有人持刀抢劫", T0)
    [still] = report(served, station, "商场门口有人持刀伤人", T0 + timedelta(hours=2), itype="ASSAULT")
    sender = worker(served, config, smsc)
    sender.run_once(T0 + timedelta(hours=2))
    with at(served, T0 + timedelta(hours=3), CHIEF) as uow:
        handlers.alerts.resolve_alert(uow, alert_id=old.id, reason="已处置")
    sender.run_once(T0 + timedelta(hours=3))  # the resolved message goes out too
    sent = {a.id: {d.state for d in log_of(served, a.id)} for a in (old, still)}
    assert sent[old.id] == {"DELIVERED"} and "DELIVERED" in sent[still.id]
    keep = timedelta(days=90)
    served.clock.set(T0 + timedelta(days=30))
    assert prune_deliveries(served.rt, keep) == 0, "within the retention nothing goes"
    served.clock.set(T0 + timedelta(days=91))
    logged = len(log_of(served, old.id))
    # (other tests' resolved alerts in this database go too)
    assert logged >= 2 and prune_deliveries(served.rt, keep, batch=1) >= logged, "in batches, until none is left"
    assert log_of(served, old.id) == []
    assert log_of(served, still.id), "an open alert keeps its log: a reply by SMS still finds it"
