"""Events carry what changed, bounded in size (ARCHITECTURE.md, "Events").

Resources are given long histories through the services' real code paths
(hundreds of timeline entries, many duplicates, offers, stop-payments,
reassignments, reopenings, notifications), with the fields a caller sets at
their validation limits. Each event type's serialized payload must stay under
the documented bound (outbox.MAX_EVENT_BYTES), and the same event late in a
resource's history must be no larger than early in it: what grows with the
history (timelines, lists of duplicates, assignments, stop-payments,
notifications) is read through the owner's Get RPC, not carried by events.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from smart110.alerts.v1 import alerts_service_pb2 as alerts_pb
from smart110.common.v1 import common_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as intake_pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from services.runtime.outbox import MAX_EVENT_BYTES

# A later event may take a few bytes more than an earlier one of the same kind
# (a larger count or time as a varint), never more.
SLACK = 16
HISTORY = 300  # timeline entries a long-running resource is given, at least


def raw_events(engine, t, subject: str) -> list[tuple[str, bytes]]:
    """(type, serialized payload) of the events in outbox table `t` about one resource, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(t.c.type, t.c.payload).where(t.c.subject == subject).order_by(t.c.sequence)).all()
    return [(r.type, bytes(r.payload)) for r in rows]


def assert_bounded(early: bytes, late: bytes, what: str) -> None:
    assert len(late) < MAX_EVENT_BYTES, f"{what}: {len(late)} bytes, above the {MAX_EVENT_BYTES}-byte bound"
    assert len(late) <= len(early) + SLACK, f"{what} grew with the history: {len(early)} -> {len(late)} bytes"


def all_under_bound(events: list[tuple[str, bytes]]) -> None:
    big = [(t, len(p)) for t, p in events if len(p) >= MAX_EVENT_BYTES]
    assert not big, f"events above the {MAX_EVENT_BYTES}-byte bound: {big}"


def chinese(n: int, text: str = "小区门口有两个人打架，其中一人持械，现场围观群众较多，") -> str:
    """`n` characters of realistic Chinese (3 bytes each in UTF-8)."""
    return (text * (n // len(text) + 1))[:n]


def uri(i: int) -> str:
    return f"s3://smart110-evidence/2026/11/23/{uuid.uuid4().hex}/{'现场照片-' * 20}{i:03d}.jpg"


# -- intake ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def intake(admin_url):
    from services.intake.__main__ import SPEC
    from smart110.intake.v1 import intake_service_pb2_grpc
    from tests import support

    with support.serving(SPEC, admin_url) as served:
        yield served.rt, intake_service_pb2_grpc.IntakeServiceStub(served.channel)


def largest_report(at, point) -> intake_pb.Report:
    """A report with every field a caller sets at its validation limit."""
    from services.intake.domain import MAX_ADDRESS_CHARS, MAX_ATTACHMENTS, MAX_DESCRIPTION_CHARS
    from tests.integration.intake_support import caller, report

    r = report(chinese(MAX_DESCRIPTION_CHARS), point=point, at=at, phone=caller(),
               address=chinese(MAX_ADDRESS_CHARS, "江城市江岸区大智街道三阳社区中山大道128号3栋"))
    r.caller.name = "欧阳" * 25
    r.attachments.extend(common_pb2.Attachment(
        kind=common_pb2.ATTACHMENT_KIND_IMAGE, content_type="image/jpeg", size_bytes=20 * 1024 * 1024,
        sha256=uuid.uuid4().hex * 2, storage_uri=uri(i)) for i in range(MAX_ATTACHMENTS))
    return r


def test_intake_events_stay_small_however_long_a_report_is_handled(intake):
    from google.protobuf import field_mask_pb2

    from tests.integration.intake_support import CALL_TAKER, HANKOU, WUCHANG, rid, submit, time_slot

    rt, stub = intake
    t = time_slot()
    report = submit(stub, largest_report(t, HANKOU))
    reason = chinese(500, "报警人再次来电说明情况，")
    points = [WUCHANG, HANKOU]
    for i in range(HISTORY // 3):
        # A priority correction (one entry) and a relocation (a correction and a new routing), a second apart.
        rt.clock.advance(1)
        fixed = intake_pb.Report(name=report.name, classification=intake_pb.Classification(priority=1 + i % 2))
        stub.UpdateReport(intake_pb.UpdateReportRequest(
            request_id=rid(), report=fixed, reason=reason,
            update_mask=field_mask_pb2.FieldMask(paths=["classification.priority"])), metadata=CALL_TAKER)
        rt.clock.advance(1)
        moved = intake_pb.Report(name=report.name)
        moved.location.point.longitude, moved.location.point.latitude = points[i % 2]
        moved.location.accuracy_m = 10
        stub.UpdateReport(intake_pb.UpdateReportRequest(
            request_id=rid(), report=moved, reason=reason, update_mask=field_mask_pb2.FieldMask(paths=["location"])),
            metadata=CALL_TAKER)
    whole = stub.GetReport(intake_pb.GetReportRequest(name=report.name), metadata=CALL_TAKER)
    assert len(whole.timeline) >= HISTORY

    events = raw_events(rt.engine, rt.tables.outbox, report.name)
    all_under_bound(events)
    assert events[0][0] == "intake.IncidentReported"
    created = intake_pb.IncidentReported.FromString(events[0][1])
    assert not created.report.timeline and [e.action for e in created.new_entries][:1] == ["REPORTED"]
    assert len(created.report.attachments) == 20 and len(created.report.description) == 2000
    updates = [(intake_pb.ReportUpdated.FromString(p), p) for _, p in events[1:]]
    priority = [p for u, p in updates if "classification.priority" in u.changed_fields]
    moves = [p for u, p in updates if "location.point.longitude" in u.changed_fields]
    assert len(priority) == len(moves) == HISTORY // 3
    assert_bounded(priority[1], priority[-1], "ReportUpdated CORRECTED (priority)")
    assert_bounded(moves[1], moves[-1], "ReportUpdated CORRECTED (location)")

    last = intake_pb.ReportUpdated.FromString(moves[-1])
    assert not last.report.timeline and last.action == "CORRECTED"
    assert [e.action for e in last.new_entries] == ["CORRECTED", "ROUTED"]
    assert last.new_entries[0].stamp.reason == reason
    assert {"location.point.longitude", "location.point.latitude", "update_time"} <= set(last.changed_fields)
    # The whole report is what the old events carried: many times the bound by now.
    assert len(whole.SerializeToString()) > 4 * len(moves[-1])


def test_a_master_report_with_many_duplicates_announces_each_one_alone(intake):
    from tests.integration.intake_support import CALL_TAKER, WUCHANG, report, submit, time_slot

    rt, stub = intake
    t = time_slot()
    master = submit(stub, report("超市门口有人抢手机，往东边跑了", point=WUCHANG, at=t))
    for i in range(150):
        rt.clock.advance(1)
        dup = submit(stub, report(f"超市门口有人抢手机，我是第{i}个报警的", point=WUCHANG, at=t + timedelta(seconds=i)))
        assert dup.merged_into == master.name
    whole = stub.GetReport(intake_pb.GetReportRequest(name=master.name), metadata=CALL_TAKER)
    assert len(whole.duplicates) == 150

    linked = [p for kind, p in raw_events(rt.engine, rt.tables.outbox, master.name) if kind == "intake.ReportUpdated"]
    assert len(linked) == 150
    assert_bounded(linked[1], linked[-1], "ReportUpdated DUPLICATE_LINKED")
    last = intake_pb.ReportUpdated.FromString(linked[-1])
    assert last.action == "DUPLICATE_LINKED" and not last.report.duplicates
    [entry] = last.new_entries
    assert entry.action == "DUPLICATE_LINKED" and whole.duplicates[-1] in entry.detail
    assert list(last.changed_fields) == ["update_time"]


# -- dispatch ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def h(admin_url):
    from tests.integration.dispatch_harness import dispatch_service

    with dispatch_service(admin_url) as harness:
        yield harness


def far_unit(h) -> dispatch_pb.Unit:
    """A unit no S01 case is offered by itself (another district's): the one a dispatcher names by hand."""
    return next(u for u in h.units_of("S23", "PATROL_CAR") if u.status == dispatch_pb.UNIT_STATUS_AVAILABLE)


def as_dispatcher() -> tuple:
    from tests import support

    return support.caller(["dispatcher"], sub="t-dispatcher")


def hand_offer(h, case_name: str, unit: dispatch_pb.Unit, reason: str) -> dispatch_pb.Assignment:
    """Offered by the commander: a unit of another district is the commander's decision."""
    from tests import support

    return h.stub.OfferCase(dispatch_pb.OfferCaseRequest(
        request_id=uuid.uuid4().hex, name=case_name, unit=unit.name, reason=reason),
        metadata=support.caller(["commander"], sub="t-commander"))


def see_through_by_hand(h, case_name: str, unit: dispatch_pb.Unit) -> None:
    """The named unit takes the case to report-back with notes and evidence at their limits; the
    other offers are declined; the citizen is unsatisfied, at length."""
    from services.dispatch.api import MAX_EVIDENCE, MAX_NOTES
    from services.dispatch.domain import MAX_COMMENT
    from tests import support
    from tests.integration.dispatch_harness import officer_of

    dispatcher = as_dispatcher()
    for a in h.case(case_name).assignments:
        if a.state == dispatch_pb.ASSIGNMENT_STATE_OFFERED:
            h.stub.DeclineAssignment(dispatch_pb.DeclineAssignmentRequest(
                request_id=uuid.uuid4().hex, name=a.name, reason="警力另有任务"), metadata=dispatcher)
    a = hand_offer(h, case_name, unit, "指挥员指定就近警力处置")
    for other in h.case(case_name).assignments:  # declining offered the case on; those go too
        if other.state == dispatch_pb.ASSIGNMENT_STATE_OFFERED and other.name != a.name:
            h.stub.DeclineAssignment(dispatch_pb.DeclineAssignmentRequest(
                request_id=uuid.uuid4().hex, name=other.name, reason="警力另有任务"), metadata=dispatcher)
    officer = officer_of(unit)
    h.stub.AcceptAssignment(dispatch_pb.AcceptAssignmentRequest(request_id=uuid.uuid4().hex, name=a.name),
                            metadata=officer)
    for state in ("EN_ROUTE", "ON_SCENE", "CLEARED"):
        h.stub.AdvanceAssignment(dispatch_pb.AdvanceAssignmentRequest(
            request_id=uuid.uuid4().hex, name=a.name,
            state=dispatch_pb.AssignmentState.Value(f"ASSIGNMENT_STATE_{state}")), metadata=officer)
    evidence = [common_pb2.Attachment(kind=common_pb2.ATTACHMENT_KIND_IMAGE, content_type="image/jpeg",
                                      size_bytes=4_000_000, sha256=uuid.uuid4().hex * 2, storage_uri=uri(i))
                for i in range(MAX_EVIDENCE)]
    h.stub.ReportBack(dispatch_pb.ReportBackRequest(
        request_id=uuid.uuid4().hex, name=a.name, outcome=dispatch_pb.OUTCOME_ADMINISTRATIVE_CASE,
        notes=chinese(MAX_NOTES, "现场调查取证，询问当事人及证人，"), evidence=evidence), metadata=officer)
    h.stub.RateCase(dispatch_pb.RateCaseRequest(
        request_id=uuid.uuid4().hex, name=case_name, satisfaction=common_pb2.SATISFACTION_UNSATISFIED,
        comment=chinese(MAX_COMMENT, "出警太慢，处理结果不满意，")),
        metadata=support.caller(["call_taker"], sub="t-dispatcher"))


def decoded(events: list[tuple[str, bytes]]) -> list[tuple[str, object, bytes]]:
    kinds = {"dispatch.CaseCreated": dispatch_pb.CaseCreated, "dispatch.CaseUpdated": dispatch_pb.CaseUpdated,
             "dispatch.AssignmentChanged": dispatch_pb.AssignmentChanged,
             "dispatch.FollowUpFlagged": dispatch_pb.FollowUpFlagged}
    return [(t, kinds[t].FromString(p), p) for t, p in events]


def by_kind(h, case_name: str, unit: dispatch_pb.Unit) -> dict[tuple[str, str], list[bytes]]:
    """The payloads of a case's events and of `unit`'s assignments' events, by (type, action), oldest first.

    A case's recommendations are fixed when it opens and name the units free then, which differ
    between two cases: they are left out of the sizes compared."""
    case = h.case(case_name)
    subjects = [case_name] + [a.name for a in case.assignments if a.unit == unit.name]
    events = [e for s in subjects for e in raw_events(h.rt.engine, h.rt.tables.outbox, s)]
    out: dict[tuple[str, str], list[bytes]] = {}
    for t, body, payload in decoded(events):
        if hasattr(body, "dispatch_case"):
            body.dispatch_case.ClearField("recommendations")
            payload = body.SerializeToString()
        key = (t, getattr(body, "action", "") or ("FLAGGED" if t.endswith("Flagged") else "CREATED"))
        out.setdefault(key, []).append(payload)
    return out


def test_dispatch_events_stay_small_however_long_a_case_runs(h):
    from services.dispatch.api import MAX_REASON

    dispatcher = as_dispatcher()
    unit = far_unit(h)
    light = h.case_of(h.report(incident_type="TELECOM_FRAUD")).name
    see_through_by_hand(h, light, unit)

    heavy = h.case_of(h.report(incident_type="TELECOM_FRAUD")).name
    reason = chinese(MAX_REASON, "现场情况变化，")
    for _ in range(100):  # escalated and de-escalated with the longest reasons
        for level in (dispatch_pb.CASE_LEVEL_COUNTY, dispatch_pb.CASE_LEVEL_STATION):
            h.stub.EscalateCase(dispatch_pb.EscalateCaseRequest(
                request_id=uuid.uuid4().hex, name=heavy, level=level, reason=reason), metadata=dispatcher)
    for i in range(40):  # stop-payment hand-offs for every account the victim names
        h.stub.RequestStopPayment(dispatch_pb.RequestStopPaymentRequest(
            request_id=uuid.uuid4().hex, name=heavy, bank="中国建设银行" + "江城市分行营业部" * 4,
            victim_account=f"{6217000000000000000 + i:032d}", amount_fen=8_600_000), metadata=dispatcher)
    for _ in range(40):  # offers a dispatcher makes and the unit turns down
        a = hand_offer(h, heavy, unit, reason)
        h.stub.DeclineAssignment(dispatch_pb.DeclineAssignmentRequest(
            request_id=uuid.uuid4().hex, name=a.name, reason=reason), metadata=dispatcher)
    see_through_by_hand(h, heavy, unit)
    whole = h.case(heavy)
    assert len(whole.timeline) >= HISTORY and len(whole.assignments) > 40 and len(whole.stop_payments) == 41

    events = by_kind(h, heavy, unit)
    all_under_bound([(t, p) for (t, _), ps in events.items() for p in ps])
    for key in (("dispatch.CaseUpdated", "ESCALATED"), ("dispatch.CaseUpdated", "DEESCALATED"),
                ("dispatch.CaseUpdated", "STOP_PAYMENT_QUEUED"), ("dispatch.AssignmentChanged", "DECLINED")):
        assert len(events[key]) >= 40, key
        assert_bounded(events[key][1], events[key][-1], " ".join(key))
    early = by_kind(h, light, unit)
    once = [k for k in early if k[1] in ("DISPATCHED", "ON_SCENE", "CLEARED", "CLOSED", "RATED", "FLAGGED",
                                         "ACCEPTED", "EN_ROUTE", "REPORTED_BACK")]
    assert {("dispatch.CaseUpdated", "RATED"), ("dispatch.FollowUpFlagged", "FLAGGED"),
            ("dispatch.AssignmentChanged", "REPORTED_BACK"), ("dispatch.CaseUpdated", "CLOSED")} <= set(once)
    for key in once:
        assert_bounded(early[key][-1], events[key][-1], " ".join(key) + " (short history -> long)")

    last = dispatch_pb.CaseUpdated.FromString(events[("dispatch.CaseUpdated", "STOP_PAYMENT_QUEUED")][-1])
    assert not last.dispatch_case.timeline and not last.dispatch_case.stop_payments
    queued = {dispatch_pb.CaseUpdated.FromString(p).stop_payment.name
              for p in events[("dispatch.CaseUpdated", "STOP_PAYMENT_QUEUED")]}
    assert len(queued) == 40 and queued <= {sp.name for sp in whole.stop_payments}, "each event names its hand-off"
    assert list(last.stop_payment.banks) == ["中国建设银行" + "江城市分行营业部" * 4]
    assert [e.action for e in last.new_entries] == ["STOP_PAYMENT_QUEUED"]
    down = dispatch_pb.CaseUpdated.FromString(events[("dispatch.CaseUpdated", "DEESCALATED")][-1])
    assert down.previous_level == dispatch_pb.CASE_LEVEL_COUNTY and "level" in down.changed_fields
    assert down.new_entries[0].stamp.reason == reason
    assert len(whole.SerializeToString()) > 4 * len(events[("dispatch.CaseUpdated", "RATED")][-1])


# -- referral ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def suite(admin_url):
    from tests.integration.referral_support import serving_suite

    with serving_suite(admin_url) as s:
        yield s


def test_referral_events_stay_small_however_often_an_order_is_reopened(suite):
    from tests import support
    from tests.integration.referral_support import rid, ticket

    agent = support.caller(["hotline_agent"], sub="agent-size")
    department = support.caller(["department"], station="D01", sub="staff-D01")
    r = suite.referral
    w = ticket(chinese(2000, "小区门口消防车道上长期有私家车违章停车，"), "ILLEGAL_PARKING", name="欧阳" * 25)
    w.address_text = chinese(300, "江城市江岸区大智街道三阳社区中山大道128号")
    w.attachments.extend(common_pb2.Attachment(kind=common_pb2.ATTACHMENT_KIND_IMAGE, content_type="image/jpeg",
                                               size_bytes=1_000_000, storage_uri=uri(i)) for i in range(20))
    order = r.CreateWorkOrder(referral_pb.CreateWorkOrderRequest(request_id=rid(), work_order=w), metadata=agent,
                              timeout=10)
    d = "departments/D01"
    for n in range(50):
        if n:
            r.AssignWorkOrder(referral_pb.AssignWorkOrderRequest(request_id=rid(), name=order.name), metadata=agent,
                              timeout=10)
        for call, kind, extra in ((r.AcceptWorkOrder, referral_pb.AcceptWorkOrderRequest, {}),
                                  (r.StartWorkOrder, referral_pb.StartWorkOrderRequest, {}),
                                  (r.ResolveWorkOrder, referral_pb.ResolveWorkOrderRequest,
                                   {"feedback": chinese(2000, "已派执法队员到场处置，")})):
            call(kind(request_id=rid(), name=order.name, department=d, **extra), metadata=department, timeout=10)
        r.ReviewWorkOrder(referral_pb.ReviewWorkOrderRequest(
            request_id=rid(), name=order.name, satisfaction=common_pb2.SATISFACTION_UNSATISFIED,
            comment=chinese(500, "问题没有解决，车又停回来了，")), metadata=agent, timeout=10)
    whole = r.GetWorkOrder(referral_pb.GetWorkOrderRequest(name=order.name), metadata=agent, timeout=10)
    assert len(whole.timeline) >= HISTORY and len(whole.assignments) == 50

    events = raw_events(suite.referral_rt.engine, suite.referral_rt.tables.outbox, order.name)
    all_under_bound(events)
    created = referral_pb.WorkOrderCreated.FromString(events[0][1])
    assert not created.work_order.attachments and created.new_entries[0].action == "CREATED"
    updates: dict[str, list[bytes]] = {}
    for _, p in events[1:]:
        updates.setdefault(referral_pb.WorkOrderUpdated.FromString(p).action, []).append(p)
    for action in ("ASSIGNED", "ACCEPTED", "STARTED", "RESOLVED", "ESCALATED"):
        assert len(updates[action]) >= 40, action
        # From the third round on: the order is escalated (督办) by then, as it stays.
        assert_bounded(updates[action][3], updates[action][-1], f"WorkOrderUpdated {action}")
    last = referral_pb.WorkOrderUpdated.FromString(updates["RESOLVED"][-1])
    assert not last.work_order.assignments and not last.work_order.timeline
    assert [(e.action, e.department) for e in last.new_entries] == [("RESOLVED", d)]
    assert {"status", "update_time"} <= set(last.changed_fields)
    assert len(whole.SerializeToString()) > 4 * len(updates["RESOLVED"][-1])


# -- alerts --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def alerts_served(admin_url):
    """The alerts service on a fresh database, without standing rules, its clock set by the test."""
    from datetime import datetime, timezone

    from services.alerts.__main__ import SPEC
    from tests import support

    with support.serving(SPEC, admin_url, clock=support.Clock(datetime(2026, 11, 2, 20, 0, tzinfo=timezone.utc)),
                         seed=False) as served:
        yield served


def test_alert_events_stay_small_however_often_an_alert_repeats_or_is_silenced(alerts_served):
    from datetime import datetime, timezone

    from services.alerts import domain, handlers, mapping, queries, workers
    from services.runtime.auth import SERVICE_CONTEXT, AuthContext

    served = alerts_served
    chief = AuthContext("chief-1", frozenset({"station_chief"}))
    t0 = datetime(2026, 11, 2, 20, 0, tzinfo=timezone.utc)
    station = "T" + uuid.uuid4().hex[:6]

    def work(t, action, actor=SERVICE_CONTEXT):
        served.clock.set(t)
        with served.rt.transaction(actor) as uow:
            return action(uow)

    work(t0, lambda uow: handlers.rules.create_rule(uow, rule=mapping.rule_from_pb(alerts_pb.Rule(
        enabled=True, display_name="关键词", kind=alerts_pb.RULE_KIND_KEYWORD, level=alerts_pb.ALERT_LEVEL_BLUE,
        areas=[station], terms=[alerts_pb.KeywordTerm(term="噪音")]))), chief)

    first = f"reports/{uuid.uuid4().hex[:16]}"

    def feed(n: int, t):
        # Repeat calls about one incident, merged into it: they fold into its alert.
        report = intake_pb.Report(
            name=first if n == 0 else f"reports/{uuid.uuid4().hex[:16]}", merged_into="" if n == 0 else first,
            description=chinese(2000, f"楼上噪音第{n}次，"), station_id=station, grid_id=f"{station}-G01",
            classification=intake_pb.Classification(category=intake_pb.CATEGORY_POLICE, incident_type="NOISE",
                                                     priority=3))
        report.receive_time.FromDatetime(t)
        return work(t, lambda uow: handlers.detection.report_received(uow, report=mapping.report_from_pb(report),
                                                                      units=[]))

    [alert] = feed(0, t0)
    for n in range(1, 121):  # past the 100 related subjects an alert keeps
        feed(n, t0 + timedelta(seconds=n))
    t = t0 + timedelta(minutes=10)
    for i in range(100):  # silenced and released again: notified anew each time
        work(t, lambda uow: handlers.alerts.create_silence(
            uow, matchers=[domain.Matcher("station_id", station, "EQUAL")], start=t, expire=t + timedelta(minutes=1),
            reason=chinese(200, "大型活动保障，")), chief)
        t += timedelta(minutes=1)
        work(t, workers.sweep)
        t += timedelta(minutes=1)
    with served.rt.engine.connect() as conn:
        whole = mapping.alert_to_pb(queries.alert(conn, alert.id))
    assert len(whole.timeline) >= HISTORY and len(whole.notifications) > 100

    events = raw_events(served.rt.engine, served.rt.tables.outbox, alert.name)
    all_under_bound(events)
    fired = alerts_pb.AlertFired.FromString(events[0][1])
    assert [e.action for e in fired.new_entries] == ["FIRED", "NOTIFIED"]
    kinds: dict[str, list[bytes]] = {}
    for _, p in events[1:]:
        u = alerts_pb.AlertUpdated.FromString(p)
        kinds.setdefault("UNSILENCED" if u.new_entries[0].action == "UNSILENCED" else u.action, []).append(p)
    assert_bounded(kinds["UPDATED"][110], kinds["UPDATED"][119], "AlertUpdated UPDATED (repeated)")
    for action in ("SILENCED", "UNSILENCED"):
        assert len(kinds[action]) == 100, action
        assert_bounded(kinds[action][1], kinds[action][-1], f"AlertUpdated {action}")
    last = alerts_pb.AlertUpdated.FromString(kinds["UNSILENCED"][-1])
    assert not last.alert.timeline and not last.alert.notifications
    assert [e.action for e in last.new_entries] == ["UNSILENCED", "NOTIFIED"]
    assert {"state", "silence", "update_time"} <= set(last.changed_fields)
    assert len(whole.SerializeToString()) > 4 * len(kinds["UNSILENCED"][-1])
