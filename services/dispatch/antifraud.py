"""Anti-fraud hand-off (紧急止付): telecom-fraud cases go to the anti-fraud centre
for emergency stop-payment.

A hand-off is a row of `stop_payments`, written in the same transaction as
the case that needs it (or as the dispatcher's request): a durable outbox of
hand-offs. `StopPaymentSender` delivers each row to the centre, always with
the row's idempotency key, retrying with backoff while the centre is
unreachable; then it asks for the result until it is final. A request is
never lost (the row stays until the centre acknowledged it) and never
duplicated at the centre (the key). Every acknowledgement and result is kept
in the case timeline and announced as `dispatch.CaseUpdated` with the hand-off as it now stands.

Several replicas run a sender each. A sender takes a due row with a lease
(`claimed_by`, `lease_until`) in a short transaction, calls the centre with
no transaction open, then records the answer and releases the lease in a
second one. Only one sender has a row in hand at a time: the others skip it
until the lease ends, which is long enough for the call's deadline, so only
a sender that died mid-call (or lost its database) lets another take over.
A sender whose lease was taken over meanwhile does not record its answer;
the new holder's answer (same key, same receipt) is the one recorded.
"""
from __future__ import annotations

import logging
import os
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

import grpc
from sqlalchemy import func, or_, select, update

from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.partners.antifraud.v1 import antifraud_pb2 as af_pb
from smart110.partners.antifraud.v1 import antifraud_pb2_grpc as af_grpc

from services.runtime import timeutil
from services.runtime.audit import TimelineEntry
from services.runtime.enums import enum_name, enum_value
from services.runtime.errors import FailedPrecondition, NotFound
from services.runtime.outbox import Outbox

from .domain import DispatchCase
from .store import CaseRepository, case_timeline, cases, stop_payments

log = logging.getLogger("smart110.dispatch.antifraud")

FRAUD_TYPE = "TELECOM_FRAUD"
CENTRE_ACTOR = dict(actor="antifraud-centre", roles=["partner"])

# -- domain: what the victim told us ---------------------------------------------

# Banks and payment platforms a victim names, as the centre knows them.
BANKS = (
    ("工商银行", "中国工商银行"), ("工行", "中国工商银行"), ("建设银行", "中国建设银行"), ("建行", "中国建设银行"),
    ("农业银行", "中国农业银行"), ("农行", "中国农业银行"), ("中国银行", "中国银行"), ("交通银行", "交通银行"),
    ("招商银行", "招商银行"), ("邮储", "中国邮政储蓄银行"), ("邮政储蓄", "中国邮政储蓄银行"), ("浦发", "上海浦东发展银行"),
    ("兴业银行", "兴业银行"), ("中信银行", "中信银行"), ("民生银行", "中国民生银行"), ("光大银行", "中国光大银行"),
    ("平安银行", "平安银行"), ("华夏银行", "华夏银行"), ("汉口银行", "汉口银行"), ("农商行", "农村商业银行"),
    ("支付宝", "支付宝"), ("微信", "微信支付"), ("财付通", "微信支付"),
)
_DIGITS = {"零": 0, "〇": 0, "一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_UNITS = {"十": 10, "百": 100, "千": 1000}
_AMOUNT = re.compile(r"([0-9][0-9,]*(?:\.[0-9]+)?)\s*(万|亿)?\s*(?:元|块)|([零〇一二两三四五六七八九十百千万亿]+)\s*(?:元|块)")
_ACCOUNT = re.compile(r"(?<![0-9])([0-9]{12,19})(?![0-9])")


def _chinese_number(text: str) -> int:
    """"八万六千" -> 86000, "十五" -> 15, "两千三百万" -> 23000000."""
    total, section, digit = 0, 0, 0
    for ch in text:
        if ch in _DIGITS:
            digit = _DIGITS[ch]
        elif ch in _UNITS:
            section += (digit or 1) * _UNITS[ch]
            digit = 0
        elif ch == "万":
            total += (section + digit) * 10_000
            section, digit = 0, 0
        else:  # 亿 scales everything before it
            total = (total + section + digit) * 100_000_000
            section, digit = 0, 0
    return total + section + digit


def amount_fen(text: str) -> int:
    """The largest amount of money named in `text`, in fen; 0 when none.

    Victims say "分三笔转了八万六千元" or "转了15000元"; the largest figure is
    the one to stop (smaller ones are usually the bait, "返了几十块钱").
    """
    best = 0
    for arabic, big_unit, chinese in _AMOUNT.findall(text):
        if arabic:
            value = float(arabic.replace(",", "")) * {"万": 10_000, "亿": 100_000_000}.get(big_unit, 1)
        else:
            value = float(_chinese_number(chinese))
        best = max(best, int(round(value * 100)))
    return best


def banks_named(text: str) -> list[str]:
    """Banks and payment platforms named in `text`, in the centre's spelling, each once."""
    found: list[str] = []
    for word, bank in BANKS:
        if word in text and bank not in found:
            found.append(bank)
    return found


def account_named(text: str) -> str:
    """A card or account number written in `text` (12-19 digits), or ""."""
    m = _ACCOUNT.search(text)
    return m.group(1) if m else ""


def mask_account(number: str) -> str:
    """Personal data: case views show only the last four digits ("************3445")."""
    return "*" * max(len(number) - 4, 0) + number[-4:]


def yuan(fen: int) -> str:
    """2300000 -> "2.3万元", 15000 -> "150元"."""
    value = fen / 100
    if value >= 10_000:
        return f"{value / 10_000:g}万元"
    return f"{value:g}元"


# -- delivery schedule -----------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    """Delay before attempt n+1 after n failures: base * 2^(n-1), at most `cap` seconds."""

    base_seconds: float = 1.0
    cap_seconds: float = 60.0
    # Between questions for the result while the centre works on it.
    result_check_seconds: float = 2.0
    result_check_cap_seconds: float = 60.0
    call_timeout_seconds: float = 5.0
    # A lease outlives the call's deadline by this much (recording the answer, clock skew between replicas).
    lease_margin_seconds: float = 10.0

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.call_timeout_seconds + self.lease_margin_seconds)

    def retry_delay(self, failures: int) -> timedelta:
        return timedelta(seconds=min(self.base_seconds * 2 ** max(failures - 1, 0), self.cap_seconds))

    def check_delay(self, checks: int) -> timedelta:
        return timedelta(seconds=min(self.result_check_seconds * 2 ** max(checks - 1, 0),
                                     self.result_check_cap_seconds))


# Transient faults: try again later. Anything else means the centre refuses
# the request itself, which no retry can change.
RETRYABLE = {
    grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.CANCELLED,
}
# The sender has its own retry schedule: the channel should not add long
# reconnect pauses of its own after the centre was away.
PARTNER_CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                           ("grpc.max_reconnect_backoff_ms", 2000)]
FINAL_STATES = {"FROZEN", "PARTIALLY_FROZEN", "NOT_FROZEN", "REJECTED", "UNDELIVERABLE"}
RESULT_LABELS = {
    "ACCEPTED": "反诈中心已受理紧急止付请求", "FROZEN": "止付成功", "PARTIALLY_FROZEN": "部分止付",
    "NOT_FROZEN": "未能止付", "REJECTED": "反诈中心不予受理",
}


# -- writing hand-offs -----------------------------------------------------------

@dataclass
class HandOff:
    case_id: str
    banks: list[str]
    victim_account: str
    amount_fen: int
    victim_name: str = ""
    victim_phone: str = ""
    description: str = ""
    requested_by: str = "dispatch"
    requested_roles: list[str] = field(default_factory=lambda: ["service"])
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])

    @property
    def idempotency_key(self) -> str:
        return f"smart110:cases/{self.case_id}/stopPayments/{self.id}"

    def summary(self) -> str:
        parts = []
        if self.amount_fen:
            parts.append(f"涉案金额约{yuan(self.amount_fen)}")
        if self.banks:
            parts.append("涉及" + "、".join(self.banks))
        if self.victim_account:
            parts.append(f"受害人账户尾号{self.victim_account[-4:]}")
        return "，".join(parts) or "暂无账户和金额信息"


def _queue(conn, h: HandOff, now: datetime) -> TimelineEntry:
    conn.execute(stop_payments.insert().values(
        id=h.id, case_id=h.case_id, idempotency_key=h.idempotency_key, state="QUEUED", banks=h.banks,
        victim_account=h.victim_account, amount_fen=h.amount_fen, victim_name=h.victim_name,
        victim_phone=h.victim_phone, description=h.description, requested_by=h.requested_by,
        requested_roles=h.requested_roles, create_time=now, next_attempt_time=now,
    ))
    entry = TimelineEntry("STOP_PAYMENT_QUEUED", h.requested_by, list(h.requested_roles), now,
                          detail=f"紧急止付请求已生成并推送反诈中心（{h.summary()}）")
    case_timeline.add(conn, h.case_id, [entry])
    return entry


def hand_off_new_case(conn, case: DispatchCase, report: intake_pb.Report, now: datetime) -> None:
    """Inside the transaction that opens `case`: a telecom-fraud case is queued for stop-payment."""
    if case.incident_type != FRAUD_TYPE:
        return
    text = report.description
    h = HandOff(case_id=case.id, banks=banks_named(text), victim_account=account_named(text),
                amount_fen=amount_fen(text), victim_name=report.caller.name,
                victim_phone=report.caller.phone_number, description=text)
    case.timeline.append(_queue(conn, h, now))


def request_stop_payment(conn, *, outbox: Outbox, case_id: str, bank: str, victim_account: str,
                         amount: int, actor: str, roles: list[str], now: datetime) -> pb.StopPayment:
    """A dispatcher's stop-payment request with account details learnt after the report."""
    row = conn.execute(select(cases).where(cases.c.id == case_id).with_for_update()).first()
    if row is None:
        raise NotFound(f"cases/{case_id}")
    if row.incident_type != FRAUD_TYPE:
        raise FailedPrecondition(
            f"cases/{case_id} is a {row.incident_type} case; stop-payment is for {FRAUD_TYPE} cases",
            reason="NOT_A_FRAUD_CASE")
    if row.status == "CLOSED":
        raise FailedPrecondition(f"cases/{case_id} is closed", reason="CASE_CLOSED")
    first = conn.execute(select(stop_payments).where(stop_payments.c.case_id == case_id)
                         .order_by(stop_payments.c.create_time).limit(1)).first()
    h = HandOff(case_id=case_id, banks=[bank], victim_account=victim_account, amount_fen=amount,
                victim_name=first.victim_name if first else "", victim_phone=first.victim_phone if first else "",
                description=first.description if first else row.summary, requested_by=actor,
                requested_roles=roles)
    entry = _queue(conn, h, now)
    return _announce(conn, outbox, case_id, "STOP_PAYMENT_QUEUED", now, stop_payment_id=h.id, entries=[entry])


# -- reading ---------------------------------------------------------------------

def _row(conn, stop_payment_id: str):
    return conn.execute(select(stop_payments).where(stop_payments.c.id == stop_payment_id)).one()


def stop_payment_to_pb(r) -> pb.StopPayment:
    return pb.StopPayment(
        name=f"cases/{r.case_id}/stopPayments/{r.id}", idempotency_key=r.idempotency_key,
        state=enum_value(pb.StopPaymentState, r.state, "STOP_PAYMENT_STATE_"), banks=list(r.banks),
        victim_account=mask_account(r.victim_account), amount_fen=r.amount_fen, receipt_id=r.receipt_id,
        frozen_amount_fen=r.frozen_amount_fen, result_text=r.result_text, attempts=r.attempts,
        last_error=r.last_error, create_time=timeutil.to_pb(r.create_time),
        deliver_time=timeutil.to_pb(r.deliver_time), result_time=timeutil.to_pb(r.result_time),
        next_attempt_time=timeutil.to_pb(r.next_attempt_time),
        requested=common_pb2.AuditStamp(actor=r.requested_by, roles=list(r.requested_roles),
                                        time=timeutil.to_pb(r.create_time)),
    )


def stop_payments_of(conn, case_ids: list[str]) -> dict[str, list[pb.StopPayment]]:
    out: dict[str, list[pb.StopPayment]] = {}
    if not case_ids:
        return out
    rows = conn.execute(select(stop_payments).where(stop_payments.c.case_id.in_(case_ids))
                        .order_by(stop_payments.c.create_time, stop_payments.c.id))
    for r in rows:
        out.setdefault(r.case_id, []).append(stop_payment_to_pb(r))
    return out


def _announce(conn, outbox: Outbox, case_id: str, action: str, now: datetime, *, stop_payment_id: str,
              entries: list[TimelineEntry]) -> pb.StopPayment:
    """A hand-off changed: stamp its case and publish dispatch.CaseUpdated with the hand-off as it
    now stands; returns that."""
    from .caseinfo import announce, case_message

    repo = CaseRepository(conn)
    # Events carry no stop-payment list: read now, the case is as it was before this change.
    before = case_message(conn, repo.get(case_id, with_timeline=False))
    conn.execute(update(cases).where(cases.c.id == case_id).values(update_time=now))
    stop_payment = stop_payment_to_pb(_row(conn, stop_payment_id))
    announce(conn, outbox, repo.get(case_id, with_timeline=False), action, before=before, entries=entries,
             stop_payment=stop_payment)
    return stop_payment


# -- delivery --------------------------------------------------------------------

class StopPaymentSender:
    """Delivers queued hand-offs to the anti-fraud centre and follows them to a result.

    `run_once(now)` does the work due at `now` and returns when the next is
    due; the background thread calls it with the clock, waking early when the
    dispatch feed announces a commit (a new hand-off comes with an event).
    """

    def __init__(self, *, engine, outbox: Outbox, channel: grpc.Channel, policy: RetryPolicy | None = None,
                 clock: Callable[[], datetime] = timeutil.now, feed=None, idle_seconds: float = 5.0):
        self.engine = engine
        self.outbox = outbox
        self.stub = af_grpc.AntiFraudCentreServiceStub(channel)
        self.policy = policy or RetryPolicy()
        self.clock = clock
        self.feed = feed
        self.idle_seconds = idle_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Who holds a lease: this process and this sender.
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    # -- background ------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="stop-payment-sender", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=self.policy.call_timeout_seconds + 2)

    def _run(self) -> None:
        seen = 0
        while not self._stop.is_set():
            wait = self.idle_seconds
            try:
                due = self.run_once()
                if due is not None:
                    wait = min(max((due - self.clock()).total_seconds(), 0.05), self.idle_seconds)
            except Exception:  # noqa: BLE001 - the rows stay queued; try again
                log.exception("stop-payment delivery failed; retrying")
                wait = 1.0
            if self.feed is not None and not self.feed.closed:
                seen = self.feed.wait_for_new(seen, wait)
            else:
                self._stop.wait(wait)

    # -- one pass --------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> datetime | None:
        """Handles every hand-off due at `now`; returns when the next one is due (None: nothing waits)."""
        now = now or self.clock()
        handled: set[str] = set()
        while not self._stop.is_set() and self._handle_one(now, handled):
            pass
        with self.engine.connect() as conn:
            # A row another sender has in hand is due again only when its lease ends.
            return conn.execute(
                select(func.min(func.greatest(stop_payments.c.next_attempt_time, stop_payments.c.lease_until)))
                .where(stop_payments.c.next_attempt_time.is_not(None))
            ).scalar()

    def claim(self, now: datetime, handled: set[str] | None = None):
        """Takes the next due hand-off nobody has in hand, with a lease; returns (row, case) or None."""
        sp = stop_payments.c
        with self.engine.begin() as conn:
            q = (select(stop_payments)
                 .where(sp.next_attempt_time <= now, or_(sp.lease_until.is_(None), sp.lease_until <= now))
                 .order_by(sp.next_attempt_time, sp.id)
                 .limit(1).with_for_update(skip_locked=True))
            if handled:
                q = q.where(sp.id.not_in(handled))
            row = conn.execute(q).first()
            if row is None:
                return None
            conn.execute(update(stop_payments).where(sp.id == row.id)
                         .values(claimed_by=self.name, lease_until=now + self.policy.lease))
            case = conn.execute(select(cases).where(cases.c.id == row.case_id)).one()
        return row, case

    def _handle_one(self, now: datetime, handled: set[str]) -> bool:
        claimed = self.claim(now, handled)
        if claimed is None:
            return False
        row, case = claimed
        handled.add(row.id)
        # The call to the centre, with no transaction open (the lease keeps other senders off the row).
        try:
            if row.state == "QUEUED":
                receipt = self.stub.RequestStopPayment(self._request(row, case),
                                                       timeout=self.policy.call_timeout_seconds)
            else:
                receipt = self.stub.GetStopPayment(af_pb.GetStopPaymentRequest(idempotency_key=row.idempotency_key),
                                                   timeout=self.policy.call_timeout_seconds)
            error = None
        except grpc.RpcError as exc:
            receipt, error = None, exc
        with self.engine.begin() as conn:
            current = conn.execute(select(stop_payments).where(stop_payments.c.id == row.id).with_for_update()).one()
            if current.claimed_by != self.name:
                log.warning("the lease on %s passed to another sender during the call; its answer counts",
                            row.idempotency_key)
                return True
            if current.state == "QUEUED":
                if error is None:
                    self._record(conn, current, receipt, now, delivered=True)
                else:
                    self._failed(conn, current, error, now)
            elif error is None:
                self._record(conn, current, receipt, now, delivered=False)
            elif error.code() == grpc.StatusCode.NOT_FOUND:
                # The centre lost what it acknowledged: deliver it again (same key).
                conn.execute(update(stop_payments).where(stop_payments.c.id == row.id).values(
                    state="QUEUED", next_attempt_time=now, last_error="反诈中心查无此请求，重新推送"))
            else:
                self._failed(conn, current, error, now)
            conn.execute(update(stop_payments).where(stop_payments.c.id == row.id)
                         .values(claimed_by=None, lease_until=None))
        return True

    @staticmethod
    def _request(row, case) -> af_pb.RequestStopPaymentRequest:
        return af_pb.RequestStopPaymentRequest(
            idempotency_key=row.idempotency_key, case_name=f"cases/{row.case_id}", report_name=case.report,
            station_id=case.station_id, victim_name=row.victim_name, victim_phone=row.victim_phone,
            victim_accounts=[af_pb.VictimAccount(bank=b, account_number=row.victim_account if i == 0 else "")
                             for i, b in enumerate(row.banks or [""])],
            amount_fen=row.amount_fen, report_time=timeutil.to_pb(case.report_time),
            description=row.description, requested_by=row.requested_by,
        )

    def _failed(self, conn, row, exc: grpc.RpcError, now: datetime) -> None:
        code = exc.code()
        error = f"{code.name}: {exc.details() or ''}".strip()
        if code in RETRYABLE:
            attempts = row.attempts + 1
            delay = (self.policy.retry_delay(attempts) if row.state == "QUEUED"
                     else self.policy.check_delay(row.checks + 1))
            conn.execute(update(stop_payments).where(stop_payments.c.id == row.id).values(
                attempts=attempts, last_error=error, next_attempt_time=now + delay))
            log.warning("anti-fraud centre unreachable for %s (%s); next attempt in %.0fs",
                        row.idempotency_key, code.name, delay.total_seconds())
            return
        conn.execute(update(stop_payments).where(stop_payments.c.id == row.id).values(
            state="UNDELIVERABLE", attempts=row.attempts + 1, last_error=error, next_attempt_time=None,
            result_time=now))
        entries = [TimelineEntry("STOP_PAYMENT_UNDELIVERABLE", time=now,
                                 detail=f"反诈中心拒收紧急止付请求（{error}），请电话联系反诈中心", **CENTRE_ACTOR)]
        case_timeline.add(conn, row.case_id, entries)
        _announce(conn, self.outbox, row.case_id, "STOP_PAYMENT_UNDELIVERABLE", now, stop_payment_id=row.id,
                  entries=entries)

    def _record(self, conn, row, receipt: af_pb.StopPaymentReceipt, now: datetime, *, delivered: bool) -> None:
        state = enum_name(af_pb.StopPaymentState, receipt.state, "STOP_PAYMENT_STATE_") or "ACCEPTED"
        final = state in FINAL_STATES
        checks = row.checks + (0 if delivered else 1)
        values = dict(state=state, receipt_id=receipt.receipt_id, frozen_amount_fen=receipt.frozen_amount_fen,
                      result_text=receipt.result_text, checks=checks, last_error="",
                      next_attempt_time=None if final else now + self.policy.check_delay(checks + 1))
        if delivered:
            values.update(attempts=row.attempts + 1, deliver_time=now)
        if final:
            values["result_time"] = now
        conn.execute(update(stop_payments).where(stop_payments.c.id == row.id).values(**values))
        if state == row.state:
            return  # still being worked on: nothing new to tell
        action = f"STOP_PAYMENT_{state}"
        detail = f"{RESULT_LABELS.get(state, state)}（受理号{receipt.receipt_id}）"
        if receipt.frozen_amount_fen:
            detail += f"，已冻结{yuan(receipt.frozen_amount_fen)}"
        if receipt.result_text:
            detail += f"：{receipt.result_text}"
        entries = [TimelineEntry(action, time=now, detail=detail, **CENTRE_ACTOR)]
        case_timeline.add(conn, row.case_id, entries)
        _announce(conn, self.outbox, row.case_id, action, now, stop_payment_id=row.id, entries=entries)


def start_sender(rt, *, clock: Callable[[], datetime] = timeutil.now) -> StopPaymentSender:
    """The service's sender, to the centre at ANTIFRAUD_ADDR (retry delays from the environment)."""
    from services.runtime.config import env_float

    policy = RetryPolicy(base_seconds=env_float("ANTIFRAUD_RETRY_BASE_SECONDS", 1.0),
                         cap_seconds=env_float("ANTIFRAUD_RETRY_MAX_SECONDS", 60.0))
    sender = StopPaymentSender(engine=rt.engine, outbox=rt.outbox,
                               channel=rt.channel("antifraud", PARTNER_CHANNEL_OPTIONS), policy=policy, feed=rt.feed,
                               clock=clock)
    rt.workers.append(sender)
    return sender
