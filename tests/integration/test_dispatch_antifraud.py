"""Anti-fraud hand-off (紧急止付): telecom-fraud cases reach the anti-fraud centre over
its gRPC contract, through a stand-in centre on a real socket, with a real Postgres."""
from __future__ import annotations

import threading
from datetime import timedelta

import grpc
import pytest
from sqlalchemy import func, select

from smart110.dispatch.v1 import dispatch_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from services.dispatch import clients, handlers, mapping, workers
from services.dispatch.domain import RetryPolicy
from services.dispatch.store import stop_payments
from services.runtime import timeutil, txguard
from services.runtime.app import RECONNECT_OPTIONS
from tests import support
from tests.conftest import eventually
from tests.integration.dispatch_harness import StandInIntake, dispatch_service, running
from tools.fake_antifraud import FakeAntiFraudCentre

FRAUD = "我刚接到自称公安局的电话，说我涉嫌洗钱，我用建设银行卡分三笔转了八万六千元到“安全账户”，挂了电话才知道被骗了。"
POLICY = RetryPolicy(base_seconds=10, cap_seconds=40, result_check_seconds=5, call_timeout_seconds=5)
DISPATCHER = support.caller(["dispatcher"], sub="p-test")


@pytest.fixture(scope="module")
def centre():
    c = FakeAntiFraudCentre().start()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def intake():
    """A stand-in intake answering GetCallerContact for the reports the harness files (its callers
    are set once the service is up)."""
    i = StandInIntake().start()
    yield i
    i.stop()


@pytest.fixture(scope="module")
def dispatch(admin_url, centre, intake):
    """Dispatch without units (no offers: a case's timeline ends with its hand-off), its sender not
    started, its clock at the wall clock's time (tests move it)."""
    env = {"ANTIFRAUD_ADDR": centre.address, "ANTIFRAUD_RETRY_BASE_SECONDS": "0.05",
           "ANTIFRAUD_RETRY_MAX_SECONDS": "0.2", "INTAKE_ADDR": intake.address}
    with dispatch_service(admin_url, seed=False, workers=False, env=env) as d:
        intake.callers = d.callers
        d.clock.set(timeutil.now())
        yield d


@pytest.fixture(scope="module")
def intake_channel(intake):
    with support.channel(intake.address, options=RECONNECT_OPTIONS) as ch:
        yield ch


@pytest.fixture(scope="module")
def channel(centre):
    with support.channel(centre.address, options=RECONNECT_OPTIONS) as ch:
        yield ch


@pytest.fixture
def sender(dispatch, channel, intake_channel):
    """A sender driven by the test's own clock: `run_once(now)` does what is due at `now`."""
    return new_sender(dispatch, channel, intake_channel)


def new_sender(dispatch, channel, intake_channel) -> workers.StopPaymentSender:
    """A sender of this service (as another replica would run one), to the stand-in centre and intake."""
    return workers.StopPaymentSender(
        dispatch.rt, clients.AntiFraudCentre(channel, timeout_seconds=POLICY.call_timeout_seconds),
        clients.IntakeContacts(intake_channel, timeout_seconds=POLICY.call_timeout_seconds), policy=POLICY)


def get(dispatch, case) -> pb.DispatchCase:
    return dispatch.stub.GetCase(pb.GetCaseRequest(name=case.name), timeout=10)


def actions(case: pb.DispatchCase) -> list[str]:
    return [e.action for e in case.timeline]


def back_up(centre, channel):
    centre.start()
    grpc.channel_ready_future(channel).result(timeout=30)


# -- the hand-off is written with the case -----------------------------------------

def test_a_fraud_case_is_queued_for_stop_payment_with_what_the_victim_said(dispatch):
    case = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD)
    assert len(case.stop_payments) == 1
    sp = case.stop_payments[0]
    assert sp.state == pb.STOP_PAYMENT_STATE_QUEUED
    assert sp.amount_fen == 8_600_000 and list(sp.banks) == ["中国建设银行"]
    assert sp.name.startswith(case.name + "/stopPayments/") and sp.idempotency_key
    assert sp.attempts == 0 and sp.HasField("next_attempt_time")
    assert actions(case)[-1] == "STOP_PAYMENT_QUEUED" and "8.6万元" in case.timeline[-1].detail
    created = [body for e, body in dispatch.events(subject=case.name) if e.type == "dispatch.CaseCreated"]
    assert len(created) == 1 and created[0].stop_payment.idempotency_key == sp.idempotency_key
    assert not created[0].dispatch_case.stop_payments, "events carry the hand-off, not the case's list"
    assert [e.action for e in created[0].new_entries] == ["OPENED", "RECOMMENDED", "STOP_PAYMENT_QUEUED"]


def test_other_cases_are_not_handed_off(dispatch):
    case = dispatch.open_case(incident_type="FIGHT", description="两个人在打架，有人转了八百元")
    assert not case.stop_payments and "STOP_PAYMENT_QUEUED" not in actions(case)


def test_no_hand_off_survives_a_case_that_was_rolled_back(dispatch):
    with dispatch.rt.engine.connect() as conn:
        before = conn.execute(select(func.count()).select_from(stop_payments)).scalar()
    report = intake_pb.Report(
        name="reports/rolled-back", description=FRAUD, station_id="S01",
        classification=intake_pb.Classification(category=intake_pb.CATEGORY_POLICE, incident_type="TELECOM_FRAUD"))
    with pytest.raises(RuntimeError):
        with dispatch.rt.transaction() as uow:
            assert handlers.open_case_for_report(uow, report=mapping.report_from_pb(report))
            raise RuntimeError("the consumer's transaction fails after the case was written")
    with dispatch.rt.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(stop_payments)).scalar() == before


# -- delivery and result -----------------------------------------------------------

def test_hand_off_reaches_the_centre_and_the_result_is_recorded_on_the_case(dispatch, centre, sender):
    t0 = timeutil.now()
    case = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD, now=t0)
    after = dispatch.latest_sequence()

    sender.run_once(t0)
    got = centre.requests_for(case.name)
    assert len(got) == 1
    request = got[0].request
    assert request.idempotency_key == case.stop_payments[0].idempotency_key
    assert request.amount_fen == 8_600_000
    assert (request.victim_name, request.victim_phone) == ("陈女士", "13800138000"), "read from intake to deliver"
    assert [a.bank for a in request.victim_accounts] == ["中国建设银行"] and request.station_id == "S01"
    accepted = get(dispatch, case).stop_payments[0]
    assert accepted.state == pb.STOP_PAYMENT_STATE_ACCEPTED and accepted.receipt_id == got[0].receipt.receipt_id
    assert accepted.attempts == 1 and accepted.HasField("deliver_time")

    sender.run_once(t0 + POLICY.check_delay(1) - timedelta(seconds=1))
    assert get(dispatch, case).stop_payments[0].state == pb.STOP_PAYMENT_STATE_ACCEPTED, "not asked before due"
    sender.run_once(t0 + POLICY.check_delay(1))
    done = get(dispatch, case)
    sp = done.stop_payments[0]
    assert sp.state == pb.STOP_PAYMENT_STATE_FROZEN and sp.frozen_amount_fen == 8_600_000
    assert sp.result_text and sp.HasField("result_time") and not sp.HasField("next_attempt_time")
    assert actions(done)[-2:] == ["STOP_PAYMENT_ACCEPTED", "STOP_PAYMENT_FROZEN"]
    assert done.timeline[-1].stamp.actor == "antifraud-centre" and "8.6万元" in done.timeline[-1].detail

    updates = [body for e, body in dispatch.events(subject=case.name, after=after) if e.type == "dispatch.CaseUpdated"]
    assert [u.action for u in updates] == ["STOP_PAYMENT_ACCEPTED", "STOP_PAYMENT_FROZEN"]
    assert updates[-1].stop_payment.name == sp.name and updates[-1].stop_payment.state == pb.STOP_PAYMENT_STATE_FROZEN
    assert [e.action for e in updates[-1].new_entries] == ["STOP_PAYMENT_FROZEN"]
    assert list(updates[-1].changed_fields) == ["update_time"], "the hand-off changed, the case only its stamp"

    calls = len(centre.calls)
    sender.run_once(t0 + timedelta(hours=1))
    assert not [c for c in centre.calls[calls:] if c[1] == sp.idempotency_key], "a final result is not asked again"


def test_the_victims_contact_is_read_from_intake_for_the_delivery_only_and_never_kept(
        dispatch, centre, intake, sender):
    t0 = timeutil.now()
    case = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD, now=t0,
                              caller_phone="13800138111", caller_name="林女士")
    assert not dispatch.reports[case.report].HasField("caller"), "the event the case came from has no caller"
    sp = case.stop_payments[0]
    sender.run_once(t0)
    assert [r for r in intake.reads if r[0] == case.report] == [
        (case.report, intake_pb.CALLER_CONTACT_PURPOSE_STOP_PAYMENT, sp.name)], "one read, for this hand-off"
    (got,) = centre.requests_for(case.name)
    assert (got.request.victim_name, got.request.victim_phone) == ("林女士", "13800138111")
    with dispatch.rt.engine.connect() as conn:
        kept = conn.execute(select(stop_payments.c.victim_name, stop_payments.c.victim_phone)
                            .where(stop_payments.c.id == sp.name.rsplit("/", 1)[1])).one()
    assert tuple(kept) == ("", ""), "dispatch keeps no caller data"
    sender.run_once(t0 + POLICY.check_delay(1))
    assert get(dispatch, case).stop_payments[0].state == pb.STOP_PAYMENT_STATE_FROZEN
    assert len([r for r in intake.reads if r[0] == case.report]) == 1, "asking for the result needs no contact"
    # A case of a report intake does not know (NOT_FOUND) is delivered without the contact.
    unknown = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD, now=t0)
    del dispatch.callers[unknown.report]
    sender.run_once(t0)
    (bare,) = centre.requests_for(unknown.name)
    assert (bare.request.victim_name, bare.request.victim_phone) == ("", "") and bare.request.amount_fen == 8_600_000


def test_with_intake_away_the_delivery_waits_and_goes_out_with_the_contact_when_it_is_back(
        dispatch, centre, intake, intake_channel, sender):
    t0 = timeutil.now()
    case = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD, now=t0)
    intake.stop()
    try:
        sender.run_once(t0)
        sp = get(dispatch, case).stop_payments[0]
        assert sp.state == pb.STOP_PAYMENT_STATE_QUEUED and sp.attempts == 1
        assert "intake" in sp.last_error and timeutil.from_pb(sp.next_attempt_time) == t0 + POLICY.retry_delay(1)
        assert centre.requests_for(case.name) == [], "nothing sent without the contact while intake is away"
        assert lease_of(dispatch, case) == (None, None), "the lease is released"
        assert "STOP_PAYMENT_UNDELIVERABLE" not in actions(get(dispatch, case))
    finally:
        intake.start()
        grpc.channel_ready_future(intake_channel).result(timeout=30)
    sender.run_once(t0 + POLICY.retry_delay(1))
    (got,) = centre.requests_for(case.name)
    assert got.request.victim_phone == "13800138000" and got.deliveries == 1
    assert get(dispatch, case).stop_payments[0].state == pb.STOP_PAYMENT_STATE_ACCEPTED


def test_with_the_centre_down_the_request_is_kept_retried_with_backoff_and_delivered_once(
        dispatch, centre, channel, sender):
    centre.stop()
    try:
        t0 = timeutil.now()
        case = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD, now=t0)
        sender.run_once(t0)
        sp = get(dispatch, case).stop_payments[0]
        assert sp.state == pb.STOP_PAYMENT_STATE_QUEUED and sp.attempts == 1
        assert sp.last_error.startswith("UNAVAILABLE")
        assert timeutil.from_pb(sp.next_attempt_time) == t0 + POLICY.retry_delay(1)

        sender.run_once(t0 + POLICY.retry_delay(1) - timedelta(seconds=1))
        assert get(dispatch, case).stop_payments[0].attempts == 1, "no attempt before it is due"
        t1 = t0 + POLICY.retry_delay(1)
        sender.run_once(t1)
        sp = get(dispatch, case).stop_payments[0]
        assert sp.attempts == 2 and timeutil.from_pb(sp.next_attempt_time) == t1 + POLICY.retry_delay(2)
        assert POLICY.retry_delay(2) == 2 * POLICY.retry_delay(1)
        assert POLICY.retry_delay(10) == timedelta(seconds=POLICY.cap_seconds)
    finally:
        back_up(centre, channel)

    sender.run_once(t1 + POLICY.retry_delay(2))
    sp = get(dispatch, case).stop_payments[0]
    assert sp.state == pb.STOP_PAYMENT_STATE_ACCEPTED and sp.attempts == 3 and sp.last_error == ""
    got = centre.requests_for(case.name)
    assert len(got) == 1 and got[0].deliveries == 1


def test_a_reply_lost_on_the_way_back_is_retried_with_the_same_key_and_not_duplicated(dispatch, centre, sender):
    t0 = timeutil.now()
    case = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD, now=t0)
    centre.lose_replies(1)
    sender.run_once(t0)
    assert get(dispatch, case).stop_payments[0].state == pb.STOP_PAYMENT_STATE_QUEUED
    assert len(centre.requests_for(case.name)) == 1, "the centre did the work; the reply was lost"

    sender.run_once(t0 + POLICY.retry_delay(1))
    got = centre.requests_for(case.name)
    assert len(got) == 1 and got[0].deliveries == 2, "one request at the centre, delivered twice with one key"
    sp = get(dispatch, case).stop_payments[0]
    assert sp.state == pb.STOP_PAYMENT_STATE_ACCEPTED and sp.receipt_id == got[0].receipt.receipt_id
    assert actions(get(dispatch, case)).count("STOP_PAYMENT_ACCEPTED") == 1


def test_a_request_the_centre_refuses_as_malformed_is_marked_undeliverable_not_retried(dispatch, centre, sender):
    t0 = timeutil.now()
    case = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD, now=t0)
    centre.refuse_next(grpc.StatusCode.INVALID_ARGUMENT, "victim_phone: 格式不正确")
    sender.run_once(t0)
    done = get(dispatch, case)
    sp = done.stop_payments[0]
    assert sp.state == pb.STOP_PAYMENT_STATE_UNDELIVERABLE and sp.last_error.startswith("INVALID_ARGUMENT")
    assert not sp.HasField("next_attempt_time") and actions(done)[-1] == "STOP_PAYMENT_UNDELIVERABLE"
    assert not centre.requests_for(case.name)


def test_the_centre_rejects_a_report_with_neither_amount_nor_bank_and_the_case_says_so(dispatch, centre, sender):
    t0 = timeutil.now()
    case = dispatch.open_case(incident_type="TELECOM_FRAUD", description="有人冒充客服骗我，我也说不清被骗了多少", now=t0)
    assert case.stop_payments[0].amount_fen == 0 and not case.stop_payments[0].banks
    sender.run_once(t0)
    sp = get(dispatch, case).stop_payments[0]
    assert sp.state == pb.STOP_PAYMENT_STATE_REJECTED and "不予受理" in sp.result_text


# -- RequestStopPayment ------------------------------------------------------------

def test_request_stop_payment_validates_every_field(dispatch):
    with pytest.raises(grpc.RpcError) as err:
        dispatch.stub.RequestStopPayment(pb.RequestStopPaymentRequest(
            name="case/x", victim_account="12ab", amount_fen=-5), metadata=DISPATCHER, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(support.field_violations(err.value)) == {"request_id", "name", "bank", "victim_account", "amount_fen"}


def test_request_stop_payment_needs_a_role_and_a_known_fraud_case(dispatch):
    fight = dispatch.open_case(incident_type="FIGHT")
    ok = dict(bank="中国工商银行", victim_account="6222020200112233445", amount_fen=100_00)
    for metadata in (support.caller(["officer"], station="S01", sub="p-test"), None):
        with pytest.raises(grpc.RpcError) as err:
            dispatch.stub.RequestStopPayment(pb.RequestStopPaymentRequest(
                request_id="sp-role", name=fight.name, **ok), metadata=metadata, timeout=10)
        assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(grpc.RpcError) as err:
        dispatch.stub.RequestStopPayment(pb.RequestStopPaymentRequest(
            request_id="sp-unknown", name="cases/nope", **ok), metadata=DISPATCHER, timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        dispatch.stub.RequestStopPayment(pb.RequestStopPaymentRequest(
            request_id="sp-fight", name=fight.name, **ok), metadata=DISPATCHER, timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert support.error_reason(err.value) == "NOT_A_FRAUD_CASE"
    assert not get(dispatch, fight).stop_payments


def test_request_stop_payment_with_account_details_is_idempotent_and_delivered(dispatch, centre, sender):
    t0 = timeutil.now()
    case = dispatch.open_case(incident_type="TELECOM_FRAUD", description="被骗了，钱转走了", now=t0)
    dispatch.clock.set(t0 + timedelta(minutes=3))  # the victim finds the card number
    request = pb.RequestStopPaymentRequest(request_id="sp-details-1", name=case.name, bank="中国工商银行",
                                           victim_account="6222020200112233445", amount_fen=2_300_000)
    first = dispatch.stub.RequestStopPayment(request, metadata=DISPATCHER, timeout=10)
    again = dispatch.stub.RequestStopPayment(request, metadata=DISPATCHER, timeout=10)
    assert again == first and first.state == pb.STOP_PAYMENT_STATE_QUEUED
    assert first.requested.actor == "p-test" and list(first.requested.roles) == ["dispatcher"]
    assert first.victim_account == "*" * 15 + "3445", "the case shows only the last four digits"
    changed = pb.RequestStopPaymentRequest()
    changed.CopyFrom(request)
    changed.amount_fen = 1
    with pytest.raises(grpc.RpcError) as err:
        dispatch.stub.RequestStopPayment(changed, metadata=DISPATCHER, timeout=10)
    assert err.value.code() == grpc.StatusCode.ALREADY_EXISTS

    now_case = get(dispatch, case)
    assert [s.name for s in now_case.stop_payments][-1] == first.name and len(now_case.stop_payments) == 2
    sender.run_once(dispatch.clock())
    sent = [r.request for r in centre.requests_for(case.name) if r.request.idempotency_key == first.idempotency_key]
    assert len(sent) == 1
    assert [(a.bank, a.account_number) for a in sent[0].victim_accounts] == [("中国工商银行", "6222020200112233445")]
    assert sent[0].requested_by == "p-test" and sent[0].amount_fen == 2_300_000


# -- the background sender, as the service runs it -----------------------------------

def test_the_service_sender_delivers_after_an_outage_without_being_asked(dispatch, centre):
    worker = dispatch.rt.workers[0]
    assert isinstance(worker, workers.StopPaymentSender)
    centre.stop()
    with running(dispatch.clock):  # the sender runs on the wall clock's time here
        worker.start()
        try:
            case = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD)
            eventually(lambda: get(dispatch, case).stop_payments[0].attempts >= 2)
            assert get(dispatch, case).stop_payments[0].state == pb.STOP_PAYMENT_STATE_QUEUED
            centre.start()
            done = eventually(lambda: (sp := get(dispatch, case).stop_payments[0]).state
                              == pb.STOP_PAYMENT_STATE_FROZEN and sp)
            assert done.frozen_amount_fen == 8_600_000
            assert len(centre.requests_for(case.name)) == 1
        finally:
            worker.stop()


# -- several replicas: one sender at a time, by lease --------------------------------

class HeldCentre:
    """A sender's view of the centre whose delivery waits until released."""

    def __init__(self, centre: clients.AntiFraudCentre):
        self.centre = centre
        self.entered = threading.Event()
        self.release = threading.Event()
        self.transactions_open = None

    def request(self, sp, case, victim):
        self.transactions_open = txguard.open_transactions()
        self.entered.set()
        assert self.release.wait(30)
        return self.centre.request(sp, case, victim)

    def result(self, sp):
        return self.centre.result(sp)


def lease_of(dispatch, case) -> tuple:
    with dispatch.rt.engine.connect() as conn:
        return conn.execute(select(stop_payments.c.claimed_by, stop_payments.c.lease_until)
                            .where(stop_payments.c.case_id == case.name.split("/", 1)[1])).one()


def test_a_hand_off_in_one_senders_hand_is_left_alone_by_the_others(dispatch, centre, channel, intake_channel):
    first, second = new_sender(dispatch, channel, intake_channel), new_sender(dispatch, channel, intake_channel)
    held = HeldCentre(first.centre)
    first.centre = held
    t0 = timeutil.now()
    case = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD, now=t0)
    worker = threading.Thread(target=first.run_once, args=(t0,))
    worker.start()
    try:
        assert held.entered.wait(30)
        assert held.transactions_open == 0, "the call to the centre holds no transaction"
        claimed_by, lease_until = lease_of(dispatch, case)
        assert claimed_by == first.name and lease_until == t0 + POLICY.lease
        second.run_once(t0 + timedelta(seconds=1))
        assert centre.requests_for(case.name) == [], "the second sender did not send it meanwhile"
    finally:
        held.release.set()
        worker.join(30)
    got = centre.requests_for(case.name)
    assert len(got) == 1 and got[0].deliveries == 1
    assert get(dispatch, case).stop_payments[0].state == pb.STOP_PAYMENT_STATE_ACCEPTED
    assert lease_of(dispatch, case) == (None, None)


def test_a_lease_ends_so_another_sender_takes_over_and_the_late_answer_is_not_recorded(
        dispatch, centre, channel, intake_channel):
    stalled, other = new_sender(dispatch, channel, intake_channel), new_sender(dispatch, channel, intake_channel)
    held = HeldCentre(stalled.centre)
    stalled.centre = held
    t0 = timeutil.now()
    case = dispatch.open_case(incident_type="TELECOM_FRAUD", description=FRAUD, now=t0)
    worker = threading.Thread(target=stalled.run_once, args=(t0,))
    worker.start()
    try:
        assert held.entered.wait(30)
        other.run_once(t0 + POLICY.lease - timedelta(seconds=1))
        assert centre.requests_for(case.name) == []
        other.run_once(t0 + POLICY.lease)  # the stalled sender's lease has ended
        assert centre.requests_for(case.name)[0].deliveries == 1
        accepted = get(dispatch, case)
        assert accepted.stop_payments[0].state == pb.STOP_PAYMENT_STATE_ACCEPTED
    finally:
        held.release.set()
        worker.join(30)
    got = centre.requests_for(case.name)
    assert len(got) == 1 and got[0].deliveries == 2, "one request at the centre, sent twice with one key"
    after = get(dispatch, case)
    assert actions(after).count("STOP_PAYMENT_ACCEPTED") == 1, "the stalled sender's late answer is not recorded"
    assert after.stop_payments[0].attempts == accepted.stop_payments[0].attempts == 1
