"""Emergency stop-payment hand-offs (紧急止付) to the anti-fraud centre (反诈中心).

A telecom-fraud case is handed to the centre with what the victim said (amounts,
banks, an account number read from their words). A `StopPayment` is written in
the transaction that decides it (the case's) and stays until the centre's result
is final: a durable outbox of requests. The sender delivers it with its
idempotency key, retrying with backoff while the centre is unreachable, then asks
for the result until it is final; this module holds the rules of that schedule
and of what each answer does to the hand-off. One sender at a time has a hand-off
in hand, by lease (`claimed_by`, `lease_until`).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.runtime.config import env_float
from services.runtime.model import TimelineEntry

FRAUD_TYPE = "TELECOM_FRAUD"
# Who the centre's answers are recorded as.
CENTRE_ACTOR, CENTRE_ROLES = "antifraud-centre", ["partner"]

# -- what the victim told us ---------------------------------------------------------

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


# -- the delivery schedule ---------------------------------------------------------------

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

    @classmethod
    def from_env(cls) -> "RetryPolicy":
        """The service's policy: retry delays from ANTIFRAUD_RETRY_BASE_SECONDS / ANTIFRAUD_RETRY_MAX_SECONDS."""
        return cls(base_seconds=env_float("ANTIFRAUD_RETRY_BASE_SECONDS", 1.0),
                   cap_seconds=env_float("ANTIFRAUD_RETRY_MAX_SECONDS", 60.0))

    @property
    def lease(self) -> timedelta:
        return timedelta(seconds=self.call_timeout_seconds + self.lease_margin_seconds)

    def retry_delay(self, failures: int) -> timedelta:
        return timedelta(seconds=min(self.base_seconds * 2 ** max(failures - 1, 0), self.cap_seconds))

    def check_delay(self, checks: int) -> timedelta:
        return timedelta(seconds=min(self.result_check_seconds * 2 ** max(checks - 1, 0),
                                     self.result_check_cap_seconds))


FINAL_STATES = {"FROZEN", "PARTIALLY_FROZEN", "NOT_FROZEN", "REJECTED", "UNDELIVERABLE"}
RESULT_LABELS = {
    "ACCEPTED": "反诈中心已受理紧急止付请求", "FROZEN": "止付成功", "PARTIALLY_FROZEN": "部分止付",
    "NOT_FROZEN": "未能止付", "REJECTED": "反诈中心不予受理",
}


@dataclass(frozen=True)
class Receipt:
    """The centre's answer to a delivery or a question for the result."""

    state: str  # the centre's state name ("ACCEPTED", "FROZEN", ...); "" counts as ACCEPTED
    receipt_id: str = ""
    frozen_amount_fen: int = 0
    result_text: str = ""


@dataclass(frozen=True)
class CentreError:
    """A call to the centre that failed: its status code, and what that means for the hand-off."""

    code: str
    details: str = ""
    # A transient fault (try again later); anything else is the centre refusing the request itself.
    retryable: bool = False
    # The centre does not know the request (it lost what it acknowledged).
    not_found: bool = False

    @property
    def text(self) -> str:
        return f"{self.code}: {self.details or ''}".strip()


# -- the victim's contact ------------------------------------------------------------------

@dataclass(frozen=True)
class VictimContact:
    """The victim's name and phone for the centre (the caller of the case's report).

    Dispatch neither receives nor keeps them: intake's events carry no caller data, and a hand-off
    stores none (`victim_name`/`victim_phone` stay empty; hand-offs written before this was so keep
    what they have). The sender reads the contact from intake (GetCallerContact, purpose
    STOP_PAYMENT, recorded there with the hand-off's name) just before each delivery, outside any
    transaction, and sends it with the request: only the few fraud cases handed off ever read a
    caller's contact, and only for as long as the call to the centre takes.
    """

    name: str = ""
    phone: str = ""


# -- the hand-off ----------------------------------------------------------------------------

@dataclass
class StopPayment:
    id: str
    case_id: str
    # Sent to the centre on every attempt; the centre deduplicates on it.
    idempotency_key: str
    state: str
    banks: list[str]
    victim_account: str
    amount_fen: int
    victim_name: str
    victim_phone: str
    description: str
    requested_by: str
    requested_roles: list[str]
    create_time: datetime
    receipt_id: str = ""
    frozen_amount_fen: int = 0
    result_text: str = ""
    attempts: int = 0
    checks: int = 0
    last_error: str = ""
    deliver_time: datetime | None = None
    result_time: datetime | None = None
    # Due work (deliver or ask for the result); None once the result is final.
    next_attempt_time: datetime | None = None
    # The sender that has the hand-off in hand and until when.
    claimed_by: str | None = None
    lease_until: datetime | None = None

    @property
    def name(self) -> str:
        return f"cases/{self.case_id}/stopPayments/{self.id}"

    @classmethod
    def queue(cls, *, case_id: str, banks: list[str], victim_account: str, amount_fen: int, now: datetime,
              victim_name: str = "", victim_phone: str = "", description: str = "", requested_by: str = "dispatch",
              requested_roles: list[str] | None = None) -> "StopPayment":
        """A new hand-off, due for delivery at once."""
        sp_id = uuid.uuid4().hex[:16]
        return cls(id=sp_id, case_id=case_id, idempotency_key=f"smart110:cases/{case_id}/stopPayments/{sp_id}",
                   state="QUEUED", banks=list(banks), victim_account=victim_account, amount_fen=amount_fen,
                   victim_name=victim_name, victim_phone=victim_phone, description=description,
                   requested_by=requested_by,
                   requested_roles=list(requested_roles) if requested_roles is not None else ["service"],
                   create_time=now, next_attempt_time=now)

    @classmethod
    def from_victims_words(cls, *, case_id: str, text: str, now: datetime) -> "StopPayment":
        """The hand-off of a new telecom-fraud case: the amount, banks and account the victim named
        (their name and phone are read from intake when it is delivered, see `VictimContact`)."""
        return cls.queue(case_id=case_id, banks=banks_named(text), victim_account=account_named(text),
                         amount_fen=amount_fen(text), description=text, now=now)

    @property
    def stored_victim(self) -> VictimContact | None:
        """The contact a hand-off written before dispatch stopped keeping it has; None for the others."""
        if self.victim_name or self.victim_phone:
            return VictimContact(self.victim_name, self.victim_phone)
        return None

    def summary(self) -> str:
        parts = []
        if self.amount_fen:
            parts.append(f"涉案金额约{yuan(self.amount_fen)}")
        if self.banks:
            parts.append("涉及" + "、".join(self.banks))
        if self.victim_account:
            parts.append(f"受害人账户尾号{self.victim_account[-4:]}")
        return "，".join(parts) or "暂无账户和金额信息"

    def queued_entry(self) -> TimelineEntry:
        """The case-timeline entry of the hand-off being written."""
        return TimelineEntry("STOP_PAYMENT_QUEUED", self.requested_by, list(self.requested_roles), self.create_time,
                             detail=f"紧急止付请求已生成并推送反诈中心（{self.summary()}）")

    def snapshot(self) -> "StopPayment":
        return StopPayment(**{**vars(self), "banks": list(self.banks), "requested_roles": list(self.requested_roles)})

    # -- the sender ----------------------------------------------------------------------

    def claim(self, sender: str, now: datetime, policy: RetryPolicy) -> None:
        """`sender` has the hand-off in hand until the lease ends (long enough for the call's deadline)."""
        self.claimed_by, self.lease_until = sender, now + policy.lease

    def answered(self, answer: Receipt | CentreError, now: datetime, policy: RetryPolicy) -> TimelineEntry | None:
        """Applies the centre's answer to a delivery (QUEUED) or a question for the result, and
        releases the lease. Returns the case-timeline entry to announce, or None when there is
        nothing new to tell (still being worked on, or a transient fault to retry)."""
        entry = None
        if self.state == "QUEUED":
            if isinstance(answer, Receipt):
                entry = self._receipt(answer, now, policy, delivered=True)
            else:
                entry = self._failed(answer, now, policy)
        elif isinstance(answer, Receipt):
            entry = self._receipt(answer, now, policy, delivered=False)
        elif answer.not_found:
            # The centre lost what it acknowledged: deliver it again (same key).
            self.state, self.next_attempt_time = "QUEUED", now
            self.last_error = "反诈中心查无此请求，重新推送"
        else:
            entry = self._failed(answer, now, policy)
        self.claimed_by, self.lease_until = None, None
        return entry

    def postponed(self, why: str, now: datetime, policy: RetryPolicy) -> None:
        """The delivery could not go out (the victim's contact could not be read: intake is away):
        tried again after the retry delay, as after a transient fault of the centre, and the lease
        released. Counted as an attempt, so the delays grow; nothing new for the timeline."""
        self.attempts += 1
        self.last_error = why
        self.next_attempt_time = now + policy.retry_delay(self.attempts)
        self.claimed_by, self.lease_until = None, None

    def _receipt(self, receipt: Receipt, now: datetime, policy: RetryPolicy, *, delivered: bool
                 ) -> TimelineEntry | None:
        previous = self.state
        state = receipt.state or "ACCEPTED"
        final = state in FINAL_STATES
        checks = self.checks + (0 if delivered else 1)
        self.state, self.receipt_id, self.frozen_amount_fen = state, receipt.receipt_id, receipt.frozen_amount_fen
        self.result_text, self.checks, self.last_error = receipt.result_text, checks, ""
        self.next_attempt_time = None if final else now + policy.check_delay(checks + 1)
        if delivered:
            self.attempts, self.deliver_time = self.attempts + 1, now
        if final:
            self.result_time = now
        if state == previous:
            return None  # still being worked on: nothing new to tell
        detail = f"{RESULT_LABELS.get(state, state)}（受理号{receipt.receipt_id}）"
        if receipt.frozen_amount_fen:
            detail += f"，已冻结{yuan(receipt.frozen_amount_fen)}"
        if receipt.result_text:
            detail += f"：{receipt.result_text}"
        return TimelineEntry(f"STOP_PAYMENT_{state}", CENTRE_ACTOR, list(CENTRE_ROLES), now, detail=detail)

    def _failed(self, error: CentreError, now: datetime, policy: RetryPolicy) -> TimelineEntry | None:
        if error.retryable:
            self.attempts += 1
            self.last_error = error.text
            delay = policy.retry_delay(self.attempts) if self.state == "QUEUED" else policy.check_delay(self.checks + 1)
            self.next_attempt_time = now + delay
            return None
        self.state, self.attempts, self.last_error = "UNDELIVERABLE", self.attempts + 1, error.text
        self.next_attempt_time, self.result_time = None, now
        return TimelineEntry("STOP_PAYMENT_UNDELIVERABLE", CENTRE_ACTOR, list(CENTRE_ROLES), now,
                             detail=f"反诈中心拒收紧急止付请求（{error.text}），请电话联系反诈中心")
