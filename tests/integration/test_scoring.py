"""Scoring against a real Postgres: events through the real consumer (cursor + inbox), the API over a real
gRPC channel with the callers' JWT claims, an injected clock for everything time-dependent (the service
as `serve` assembles it, on a database of its own: `tests.support.serving`).
"""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import grpc
import psycopg
import pytest
from google.protobuf import any_pb2, timestamp_pb2
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from sampledata import city
from smart110.common.v1 import common_pb2, events_pb2
from smart110.dispatch.v1 import dispatch_service_pb2 as dpb
from smart110.intake.v1 import intake_service_pb2 as ipb
from smart110.referral.v1 import referral_service_pb2 as rpb
from smart110.scoring.v1 import scoring_service_pb2 as pb
from smart110.scoring.v1 import scoring_service_pb2_grpc as pb_grpc
from services.scoring import workers
from services.scoring.__main__ import SPEC
from services.scoring.store import ledger_entries, warnings
from tests import support
from tests.support import caller

UTC = timezone.utc


def grid_with_target(seconds: int):
    return next(g for g in city.grids() if g.arrival_target_s == seconds)


@pytest.fixture(scope="module")
def env(admin_url):
    clock = support.Clock(datetime(2028, 3, 1, tzinfo=UTC))
    with support.serving(SPEC, admin_url, clock=clock) as served:
        yield dict(rt=served.rt, clock=clock, served=served, stub=pb_grpc.ScoringServiceStub(served.channel))


# -- helpers -----------------------------------------------------------------------------

COMMANDER = caller(["commander"], sub="cmd-1")


def ts(t: datetime) -> timestamp_pb2.Timestamp:
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(t)
    return out


def event(type_: str, payload, subject: str, when: datetime, event_id: str | None = None) -> events_pb2.Event:
    packed = any_pb2.Any()
    packed.Pack(payload)
    return events_pb2.Event(event_id=event_id or str(uuid.uuid4()), sequence=1, type=type_, subject=subject,
                            occur_time=ts(when), payload=packed, source=type_.split(".")[0])


def deliver(env, e: events_pb2.Event) -> bool:
    """Hands an event, as its source's feed has it, to scoring's consumer of that feed."""
    return env["served"].consumer(e.source).apply(e)


def sweep(env, at: datetime) -> list:
    """One round of the report-back sweeper with the clock at `at`."""
    clock = env["clock"]
    before = clock()
    clock.set(at)
    try:
        return workers.sweep_report_backs(env["rt"])
    finally:
        clock.set(before)


class Case:
    """A dispatch case and one unit's assignment on it, driven through dispatch's events."""

    def __init__(self, env, *, station: str, grid: str = "", incident_type: str = "FIGHT", officers=None,
                 start: datetime):
        self.env = env
        self.station = station
        self.incident_type = incident_type
        self.name = f"cases/{uuid.uuid4().hex[:12]}"
        self.report = f"reports/{uuid.uuid4().hex[:12]}"
        self.officers = officers or [(f"P{uuid.uuid4().int % 10**7:07d}", "张警官")]
        self.assignment = dpb.Assignment(name=f"{self.name}/assignments/{uuid.uuid4().hex[:8]}",
                                         unit="units/U-TEST", offer_time=ts(start))
        self.start = start
        deliver(env, event("dispatch.CaseCreated", dpb.CaseCreated(dispatch_case=dpb.DispatchCase(
            name=self.name, report=self.report, station_id=station, grid_id=grid, incident_type=incident_type,
            report_time=ts(start))), self.name, start))

    @property
    def officer_ids(self):
        return [o for o, _ in self.officers]

    def change(self, state, at: timedelta, *, outcome=0, evidence=0, event_id=None) -> bool:
        when = self.start + at
        field = {dpb.ASSIGNMENT_STATE_ACCEPTED: "accept_time", dpb.ASSIGNMENT_STATE_ON_SCENE: "arrive_time",
                 dpb.ASSIGNMENT_STATE_CLEARED: "clear_time",
                 dpb.ASSIGNMENT_STATE_REPORTED_BACK: "report_back_time"}.get(state)
        if field:
            getattr(self.assignment, field).CopyFrom(ts(when))
        self.assignment.state = state
        if outcome:
            self.assignment.outcome = outcome
        if evidence:
            self.assignment.evidence.extend([common_pb2.Attachment(
                kind=common_pb2.ATTACHMENT_KIND_IMAGE, storage_uri=f"s3://evidence/{i}.jpg") for i in range(evidence)])
        payload = dpb.AssignmentChanged(
            assignment=self.assignment, case_name=self.name, station_id=self.station,
            incident_type=self.incident_type,
            officers=[common_pb2.OfficerRef(officer_id=o, display_name=n, station_id=self.station)
                      for o, n in self.officers])
        return deliver(self.env, event("dispatch.AssignmentChanged", payload, self.assignment.name, when,
                                       event_id=event_id))

    def run(self, *, accept_s=30, arrive_s=120, clear_s=1200, report_back_s=1800,
            outcome=dpb.OUTCOME_MEDIATED, evidence=1):
        self.change(dpb.ASSIGNMENT_STATE_ACCEPTED, timedelta(seconds=accept_s))
        self.change(dpb.ASSIGNMENT_STATE_EN_ROUTE, timedelta(seconds=accept_s + 5))
        self.change(dpb.ASSIGNMENT_STATE_ON_SCENE, timedelta(seconds=arrive_s))
        self.change(dpb.ASSIGNMENT_STATE_CLEARED, timedelta(seconds=clear_s))
        self.change(dpb.ASSIGNMENT_STATE_REPORTED_BACK, timedelta(seconds=report_back_s), outcome=outcome,
                    evidence=evidence)
        return self


def entries(env, **where):
    with env["rt"].engine.connect() as conn:
        q = select(ledger_entries).order_by(ledger_entries.c.seq)
        for k, v in where.items():
            q = q.where(ledger_entries.c[k] == v)
        return conn.execute(q).all()


def rules_of(rows):
    return sorted((r.rule_id, float(r.points)) for r in rows)


def warnings_of(env, **where):
    with env["rt"].engine.connect() as conn:
        q = select(warnings).order_by(warnings.c.raise_time)
        for k, v in where.items():
            q = q.where(warnings.c[k] == v)
        return conn.execute(q).all()


def outbox_types(env, subject_prefix: str):
    t = env["rt"].tables.outbox
    with env["rt"].engine.connect() as conn:
        return [r.type for r in conn.execute(select(t.c.type).where(t.c.subject.like(subject_prefix + "%"))
                                             .order_by(t.c.sequence))]


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as err:
        call()
    return err.value.code()


def violations(call) -> list[str]:
    with pytest.raises(grpc.RpcError) as err:
        call()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
    return support.field_violations(err.value)


def period(start: datetime, days: int = 1):
    return dict(start_time=ts(start), end_time=ts(start + timedelta(days=days)))


# -- the ledger ------------------------------------------------------------------------------

def test_a_handled_case_scores_quantity_and_efficiency_with_explanations(env):
    grid = grid_with_target(180)
    t0 = datetime(2028, 1, 10, 9, tzinfo=UTC)
    case = Case(env, station=grid.station_id, grid=grid.grid_id, start=t0).run(
        accept_s=30, arrive_s=150, clear_s=1200, report_back_s=1200 + 18 * 60, outcome=dpb.OUTCOME_CRIMINAL_CASE,
        evidence=2)
    officer = case.officer_ids[0]
    rows = entries(env, officer_id=officer)
    assert rules_of(rows) == [("EFF-ACCEPT-FAST", 0.5), ("EFF-ARRIVE-ON-TARGET", 1.0),
                              ("EFF-REPORT-BACK-ON-TIME", 1.0), ("QTY-ACCEPT", 1.0), ("QTY-CASE-OPENED", 2.0),
                              ("QTY-REPORT-BACK", 1.0)]
    assert {r.rule_set_version for r in rows} == {1}
    assert all(r.station_id == grid.station_id for r in rows)
    on_time = next(r for r in rows if r.rule_id == "EFF-REPORT-BACK-ON-TIME")
    assert on_time.explanation == f"{case.name}按时回告（用时18分钟），+1分"
    assert on_time.subject == case.assignment.name and on_time.event_type == "dispatch.AssignmentChanged"
    arrive = next(r for r in rows if r.rule_id == "EFF-ARRIVE-ON-TARGET")
    assert "150秒到场" in arrive.explanation and "180秒时限" in arrive.explanation
    assert arrive.occur_time == t0 + timedelta(seconds=150)
    # Outcomes are shown by their Chinese labels, never by their codes.
    opened = next(r for r in rows if r.rule_id == "QTY-CASE-OPENED")
    assert opened.explanation == f"{case.name}处警后立案（刑事立案），+2分"
    reported = next(r for r in rows if r.rule_id == "QTY-REPORT-BACK")
    assert reported.explanation == f"{case.name}完成回告（处置结果：刑事立案），+1分"
    assert outbox_types(env, "ledgerEntries/").count("scoring.LedgerEntryRecorded") >= 6

    score = env["stub"].GetOfficerScore(pb.GetOfficerScoreRequest(
        name=f"officers/{officer}/score", **period(datetime(2028, 1, 10, tzinfo=UTC))), metadata=COMMANDER)
    dims = {d.dimension: (d.points, d.entries) for d in score.dimensions}
    assert dims == {pb.DIMENSION_QUANTITY: (4.0, 3), pb.DIMENSION_EFFICIENCY: (2.5, 3), pb.DIMENSION_QUALITY: (0, 0)}
    assert score.total == 6.5 and score.display_name == "张警官" and score.station_id == grid.station_id


def test_late_arrival_and_late_report_back_lose_points(env):
    grid = grid_with_target(60)
    case = Case(env, station=grid.station_id, grid=grid.grid_id, start=datetime(2028, 1, 11, 9, tzinfo=UTC)).run(
        accept_s=200, arrive_s=400, clear_s=1800, report_back_s=1800 + 50 * 60)
    rows = entries(env, officer_id=case.officer_ids[0])
    assert rules_of(rows) == [("EFF-ARRIVE-LATE", -1.0), ("EFF-REPORT-BACK-LATE", -2.0), ("QTY-ACCEPT", 1.0),
                              ("QTY-REPORT-BACK", 1.0)]
    late = next(r for r in rows if r.rule_id == "EFF-REPORT-BACK-LATE")
    assert late.explanation.startswith(f"{case.name}超时回告（用时50分钟") and late.explanation.endswith("-2分")


def test_outcome_contradicting_type_and_case_without_evidence_warn(env):
    t0 = datetime(2028, 1, 12, 9, tzinfo=UTC)
    fight = Case(env, station="S03", incident_type="FIGHT", start=t0).run(outcome=dpb.OUTCOME_NO_ISSUE_FOUND)
    officer = fight.officer_ids[0]
    assert ("QUA-OUTCOME-CONTRADICTS", -2.0) in rules_of(entries(env, officer_id=officer))
    [w] = warnings_of(env, officer_id=officer)
    assert (w.kind, w.case_name, w.status, w.station_id) == ("OUTCOME_CONTRADICTS_TYPE", fight.name, "OPEN", "S03")
    # Written for people: the type and the outcome by their Chinese labels, never their codes.
    assert "警情类型为打架斗殴，回告结果为现场无警情" in w.detail and "矛盾" in w.detail
    assert "FIGHT" not in w.detail and "NO_ISSUE_FOUND" not in w.detail

    theft = Case(env, station="S03", incident_type="THEFT", start=t0).run(
        outcome=dpb.OUTCOME_ADMINISTRATIVE_CASE, evidence=0)
    [w] = warnings_of(env, officer_id=theft.officer_ids[0])
    assert w.kind == "MISSING_EVIDENCE" and "以行政案件结案回告但未上传任何证据" in w.detail
    assert "scoring.WarningRaised" in outbox_types(env, f"warnings/{w.id}")


def test_the_ledger_refuses_updates_and_deletes(env):
    case = Case(env, station="S04", start=datetime(2028, 1, 13, 9, tzinfo=UTC))
    case.change(dpb.ASSIGNMENT_STATE_ACCEPTED, timedelta(seconds=20))
    [row, _] = entries(env, officer_id=case.officer_ids[0])
    for statement in (f"UPDATE scoring.ledger_entries SET points = 99 WHERE id = '{row.id}'",
                      f"DELETE FROM scoring.ledger_entries WHERE id = '{row.id}'",
                      "TRUNCATE scoring.ledger_entries"):
        with pytest.raises(DBAPIError) as err, env["rt"].engine.begin() as conn:
            conn.execute(text(statement))
        assert isinstance(err.value.orig, psycopg.errors.RestrictViolation), statement
        assert "append-only" in str(err.value.orig)
    assert float(entries(env, id=row.id)[0].points) == 1.0


# -- exactly once ----------------------------------------------------------------------------

def test_replaying_the_same_events_gives_no_double_points(env):
    case = Case(env, station="S05", start=datetime(2028, 1, 14, 9, tzinfo=UTC))
    accepted_id = str(uuid.uuid4())
    assert case.change(dpb.ASSIGNMENT_STATE_ACCEPTED, timedelta(seconds=25), event_id=accepted_id) is True
    case.change(dpb.ASSIGNMENT_STATE_ON_SCENE, timedelta(seconds=100))
    case.change(dpb.ASSIGNMENT_STATE_REPORTED_BACK, timedelta(seconds=1500), outcome=dpb.OUTCOME_MEDIATED)
    before = rules_of(entries(env, officer_id=case.officer_ids[0]))
    assert len(before) == 5

    # The same event again (redelivery after a restart): the inbox skips it.
    assert case.change(dpb.ASSIGNMENT_STATE_ACCEPTED, timedelta(seconds=25), event_id=accepted_id) is False
    # The same state change under a new event id (a publisher that resent it): the fact is kept once.
    assert case.change(dpb.ASSIGNMENT_STATE_REPORTED_BACK, timedelta(seconds=1500)) is True
    assert rules_of(entries(env, officer_id=case.officer_ids[0])) == before
    with env["rt"].engine.connect() as conn:
        inbox = env["rt"].tables.inbox
        assert conn.execute(select(func.count()).select_from(inbox).where(
            inbox.c.event_id == uuid.UUID(accepted_id))).scalar_one() == 1


# -- satisfaction and referral ---------------------------------------------------------------

def test_citizen_ratings_score_the_officers_who_handled_the_case_once(env):
    t0 = datetime(2028, 1, 15, 9, tzinfo=UTC)
    case = Case(env, station="S06", start=t0, officers=[("P7000001", "李警官"), ("P7000002", "王警官")]).run()
    rated = dpb.DispatchCase(name=case.name, report=case.report, station_id="S06",
                             satisfaction=common_pb2.SATISFACTION_SATISFIED, update_time=ts(t0 + timedelta(hours=3)))
    assert deliver(env, event("dispatch.CaseUpdated", dpb.CaseUpdated(dispatch_case=rated, action="RATED"),
                              case.name, t0 + timedelta(hours=3)))
    # A later update of the same case carries the rating along: it does not score again.
    deliver(env, event("dispatch.CaseUpdated", dpb.CaseUpdated(dispatch_case=rated, action="CLOSED"),
                       case.name, t0 + timedelta(hours=4)))
    report = ipb.Report(name=case.report, satisfaction=common_pb2.SATISFACTION_UNSATISFIED,
                        update_time=ts(t0 + timedelta(hours=5)))
    deliver(env, event("intake.ReportUpdated", ipb.ReportUpdated(report=report, action="RATED"), case.report,
                       t0 + timedelta(hours=5)))
    for officer in ("P7000001", "P7000002"):
        quality = [(r.rule_id, float(r.points)) for r in entries(env, officer_id=officer, dimension="QUALITY")]
        assert sorted(quality) == [("QUA-CASE-SATISFIED", 1.0), ("QUA-REPORT-UNSATISFIED", -1.0)], officer
    satisfied = entries(env, officer_id="P7000001", rule_id="QUA-CASE-SATISFIED")[0]
    assert satisfied.explanation == f"{case.name}群众回访满意，+1分"


def test_a_rating_that_overtakes_the_case_scores_once_the_officers_report_back(env):
    t0 = datetime(2028, 1, 17, 9, tzinfo=UTC)
    report_name = f"reports/{uuid.uuid4().hex[:12]}"
    rating = ipb.ReportUpdated(report=ipb.Report(name=report_name, satisfaction=common_pb2.SATISFACTION_SATISFIED,
                                                 update_time=ts(t0 + timedelta(hours=2))), action="RATED")
    assert deliver(env, event("intake.ReportUpdated", rating, report_name, t0 + timedelta(hours=2)))
    case = Case(env, station="S06", start=t0, officers=[("P7000011", "冯警官"), ("P7000012", "陈警官")])
    case.report = report_name
    deliver(env, event("dispatch.CaseCreated", dpb.CaseCreated(dispatch_case=dpb.DispatchCase(
        name=case.name, report=report_name, station_id="S06", incident_type="FIGHT")), case.name, t0))
    case.run()
    case.change(dpb.ASSIGNMENT_STATE_REPORTED_BACK, timedelta(hours=1))  # a resent report-back adds nothing
    for officer in ("P7000011", "P7000012"):
        assert rules_of(entries(env, officer_id=officer, dimension="QUALITY")) == [("QUA-REPORT-SATISFIED", 0.5)]
    assert entries(env, officer_id="P7000011", dimension="QUALITY")[0].occur_time == t0 + timedelta(hours=2)


def test_police_preliminary_handling_of_a_work_order_scores_the_station(env):
    t0 = datetime(2028, 1, 16, 9, tzinfo=UTC)
    wo = rpb.WorkOrder(name=f"workOrders/{uuid.uuid4().hex[:10]}", matter_code="NOISE",
                       status=rpb.WORK_ORDER_STATUS_PRELIMINARY_POLICE, preliminary_station="stations/S07",
                       update_time=ts(t0))
    deliver(env, event("referral.WorkOrderUpdated", rpb.WorkOrderUpdated(work_order=wo, action="PRELIMINARY"),
                       wo.name, t0))
    deliver(env, event("referral.WorkOrderUpdated", rpb.WorkOrderUpdated(work_order=wo, action="ASSIGNED"),
                       wo.name, t0 + timedelta(minutes=5)))
    [row] = entries(env, subject=wo.name)
    assert (row.rule_id, float(row.points), row.station_id, row.officer_id) == ("QTY-PRELIMINARY", 1.0, "S07", "")
    assert row.explanation == f"12345工单{wo.name}由派出所先期处置，+1分"


# -- reviews -------------------------------------------------------------------------------------

def review_request(case_name, **kw):
    review = pb.Review(case_name=case_name, evidence=kw.pop("evidence", pb.EVIDENCE_VERDICT_COMPLETE),
                       procedure=kw.pop("procedure", pb.PROCEDURE_VERDICT_CORRECT),
                       classification=kw.pop("classification", pb.CLASSIFICATION_VERDICT_CORRECT), **kw)
    return pb.CreateReviewRequest(request_id=uuid.uuid4().hex, review=review)


def test_legal_officer_review_scores_quality_and_warns(env):
    stub = env["stub"]
    env["clock"].t = datetime(2028, 2, 20, 10, tzinfo=UTC)
    case = Case(env, station="S08", start=datetime(2028, 2, 20, 8, tzinfo=UTC)).run()
    officer = case.officer_ids[0]
    legal = caller(["legal_officer"], sub="L-1", station="S08")

    req = review_request(case.name, evidence=pb.EVIDENCE_VERDICT_MISSING, missing_evidence=["现场照片", "询问笔录"],
                         procedure=pb.PROCEDURE_VERDICT_FLAWED, procedure_flaws=["未告知权利义务"],
                         classification=pb.CLASSIFICATION_VERDICT_WRONG, corrected_incident_type="ASSAULT")
    review = stub.CreateReview(req, metadata=legal)
    assert review.name.startswith("reviews/") and review.officer_ids == [officer] and review.station_id == "S08"
    assert review.review_stamp.actor == "L-1" and len(review.ledger_entries) == 3
    rows = entries(env, subject=review.name)
    assert rules_of(rows) == [("QUA-CLASSIFICATION-WRONG", -2.0), ("QUA-EVIDENCE-MISSING", -3.0),
                              ("QUA-PROCEDURE-FLAWED", -3.0)]
    missing = next(r for r in rows if r.rule_id == "QUA-EVIDENCE-MISSING")
    assert missing.explanation == f"{case.name}经法制审核证据缺失（现场照片、询问笔录），-3分"
    assert "scoring.ReviewCreated" in outbox_types(env, review.name)

    kinds = {w.kind: w for w in warnings_of(env, officer_id=officer)}
    assert set(kinds) == {"MISSING_EVIDENCE", "QUALITY_FALLING"}
    assert "现场照片、询问笔录" in kinds["MISSING_EVIDENCE"].detail
    assert "下降8分" in kinds["QUALITY_FALLING"].detail

    # A retry with the same request id changes nothing; other content under it is refused.
    assert stub.CreateReview(req, metadata=legal) == review
    assert len(entries(env, subject=review.name)) == 3
    changed = pb.CreateReviewRequest(request_id=req.request_id, review=review_request(case.name).review)
    assert code_of(lambda: stub.CreateReview(changed, metadata=legal)) == grpc.StatusCode.ALREADY_EXISTS

    # Evidence added and found complete: the missing-evidence warning is rectified.
    env["clock"].t += timedelta(days=2)
    stub.CreateReview(review_request(case.name), metadata=legal)
    [w] = warnings_of(env, officer_id=officer, kind="MISSING_EVIDENCE")
    assert w.status == "RECTIFIED" and w.rectify_time == env["clock"].t
    listed = stub.ListReviews(pb.ListReviewsRequest(case_name=case.name), metadata=legal)
    assert len(listed.reviews) == 2 and listed.reviews[1].name == review.name
    assert stub.GetReview(pb.GetReviewRequest(name=review.name), metadata=caller(["officer"], sub=officer)) == review
    assert code_of(lambda: stub.GetReview(pb.GetReviewRequest(name=review.name),
                                          metadata=caller(["officer"], sub="P-other"))) == \
        grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: stub.GetReview(pb.GetReviewRequest(name="reviews/nope"), metadata=legal)) == \
        grpc.StatusCode.NOT_FOUND


def test_reviews_refuse_bad_input_unknown_cases_and_other_roles(env):
    stub = env["stub"]
    case = Case(env, station="S09", start=datetime(2028, 2, 21, 8, tzinfo=UTC))
    legal = caller(["legal_officer"], sub="L-2", station="S09")
    bad = pb.CreateReviewRequest(review=pb.Review(case_name="reports/x", evidence=pb.EVIDENCE_VERDICT_MISSING,
                                                  procedure=pb.PROCEDURE_VERDICT_FLAWED))
    assert set(violations(lambda: stub.CreateReview(bad, metadata=legal))) == {
        "request_id", "review.case_name", "review.classification", "review.missing_evidence",
        "review.procedure_flaws"}
    assert code_of(lambda: stub.CreateReview(review_request("cases/nope"), metadata=legal)) == \
        grpc.StatusCode.NOT_FOUND
    # Nobody has reported back on the case yet, and no officer is named.
    assert code_of(lambda: stub.CreateReview(review_request(case.name), metadata=legal)) == \
        grpc.StatusCode.FAILED_PRECONDITION
    for who in (caller(["officer"], sub="P1"), caller(["dispatcher"], sub="d"),
                caller(["station_chief"], sub="c", station="S09")):
        assert code_of(lambda: stub.CreateReview(review_request(case.name), metadata=who)) == \
            grpc.StatusCode.PERMISSION_DENIED
    other_station = caller(["legal_officer"], sub="L-3", station="S01")
    case.run()
    assert code_of(lambda: stub.CreateReview(review_request(case.name), metadata=other_station)) == \
        grpc.StatusCode.PERMISSION_DENIED


# -- corrections ------------------------------------------------------------------------------------

def test_a_correction_reverses_an_entry_with_who_and_why(env):
    stub = env["stub"]
    env["clock"].t = datetime(2028, 3, 2, tzinfo=UTC)
    grid = grid_with_target(60)
    case = Case(env, station=grid.station_id, grid=grid.grid_id, start=datetime(2028, 2, 22, 8, tzinfo=UTC)).run(
        arrive_s=400)
    officer = case.officer_ids[0]
    late = entries(env, officer_id=officer, rule_id="EFF-ARRIVE-LATE")[0]
    req = pb.ReverseLedgerEntryRequest(request_id=uuid.uuid4().hex, name=f"ledgerEntries/{late.id}",
                                       reason="道路施工封闭，经核实绕行合理", corrected_points=0.5)
    out = stub.ReverseLedgerEntry(req, metadata=COMMANDER)
    assert out.reversal.points == 1.0 and out.reversal.reverses == f"ledgerEntries/{late.id}"
    assert out.reversal.correction.actor == "cmd-1" and out.reversal.correction.reason == req.reason
    assert out.replacement.points == 0.5 and out.replacement.rule_id == "" and out.replacement.rule_set_version == 0
    assert "道路施工" in out.reversal.explanation
    assert stub.ReverseLedgerEntry(req, metadata=COMMANDER) == out, "a retry returns the first answer"

    original = stub.GetLedgerEntry(pb.GetLedgerEntryRequest(name=f"ledgerEntries/{late.id}"), metadata=COMMANDER)
    assert original.points == -1.0 and original.reversed_by == out.reversal.name
    score = stub.GetOfficerScore(pb.GetOfficerScoreRequest(
        name=f"officers/{officer}/score", **period(datetime(2028, 2, 22, tzinfo=UTC))), metadata=COMMANDER)
    eff = next(d for d in score.dimensions if d.dimension == pb.DIMENSION_EFFICIENCY)
    assert eff.points == 0.5 + 1 + 0.5 and eff.entries == 5  # fast acceptance, on-time report-back, corrected arrival

    again = pb.ReverseLedgerEntryRequest(request_id=uuid.uuid4().hex, name=f"ledgerEntries/{late.id}", reason="再次")
    assert code_of(lambda: stub.ReverseLedgerEntry(again, metadata=COMMANDER)) == grpc.StatusCode.FAILED_PRECONDITION
    of_reversal = pb.ReverseLedgerEntryRequest(request_id=uuid.uuid4().hex, name=out.reversal.name, reason="x")
    assert code_of(lambda: stub.ReverseLedgerEntry(of_reversal, metadata=COMMANDER)) == \
        grpc.StatusCode.FAILED_PRECONDITION
    unknown = pb.ReverseLedgerEntryRequest(request_id=uuid.uuid4().hex, name="ledgerEntries/nope", reason="x")
    assert code_of(lambda: stub.ReverseLedgerEntry(unknown, metadata=COMMANDER)) == grpc.StatusCode.NOT_FOUND
    assert set(violations(lambda: stub.ReverseLedgerEntry(pb.ReverseLedgerEntryRequest(name="x"),
                                                          metadata=COMMANDER))) == {"request_id", "name", "reason"}
    assert code_of(lambda: stub.ReverseLedgerEntry(unknown, metadata=caller(["officer"], sub=officer))) == \
        grpc.StatusCode.PERMISSION_DENIED
    accepted = entries(env, officer_id=officer, rule_id="QTY-ACCEPT")[0]
    elsewhere = pb.ReverseLedgerEntryRequest(request_id=uuid.uuid4().hex, name=f"ledgerEntries/{accepted.id}",
                                             reason="另一派出所无权更正")
    for who in (caller(["legal_officer"], sub="L-9", station="S02"),
                caller(["station_chief"], sub="c02", station="S02")):
        assert code_of(lambda: stub.ReverseLedgerEntry(elsewhere, metadata=who)) == grpc.StatusCode.PERMISSION_DENIED
    assert grid.station_id == "S01"


# -- overdue report-back -------------------------------------------------------------------------------

def test_sweeper_warns_on_overdue_report_back_and_rectifies_when_filed(env):
    t0 = datetime(2029, 6, 1, 9, tzinfo=UTC)
    case = Case(env, station="S10", start=t0, officers=[("P7100001", "赵警官"), ("P7100002", "钱警官")])
    case.change(dpb.ASSIGNMENT_STATE_ACCEPTED, timedelta(seconds=30))
    case.change(dpb.ASSIGNMENT_STATE_ON_SCENE, timedelta(minutes=4))
    case.change(dpb.ASSIGNMENT_STATE_CLEARED, timedelta(minutes=40))
    due = t0 + timedelta(minutes=70)

    assert [w for w in sweep(env, due - timedelta(minutes=1)) if w.case_name == case.name] == []
    raised = [w for w in sweep(env, due + timedelta(minutes=5)) if w.case_name == case.name]
    assert sorted(w.officer_id for w in raised) == ["P7100001", "P7100002"]
    assert all(w.kind == "OVERDUE_REPORT_BACK" and "超过回告时限5分钟" in w.detail for w in raised)
    assert [w for w in sweep(env, due + timedelta(hours=2)) if w.case_name == case.name] == [], "warns once"
    assert outbox_types(env, f"warnings/{raised[0].id}") == ["scoring.WarningRaised"]

    env["clock"].t = due + timedelta(hours=3)
    case.change(dpb.ASSIGNMENT_STATE_REPORTED_BACK, timedelta(hours=4), outcome=dpb.OUTCOME_MEDIATED)
    statuses = {w.officer_id: (w.status, w.rectify_time) for w in warnings_of(env, case_name=case.name)}
    assert statuses == {o: ("RECTIFIED", env["clock"].t) for o in ("P7100001", "P7100002")}
    assert outbox_types(env, f"warnings/{raised[0].id}") == ["scoring.WarningRaised", "scoring.WarningUpdated"]

    mine = caller(["officer"], sub="P7100001")
    listed = env["stub"].ListWarnings(pb.ListWarningsRequest(case_name=case.name), metadata=mine)
    assert [(w.officer_id, w.kind, w.status) for w in listed.warnings] == [
        ("P7100001", pb.WARNING_KIND_OVERDUE_REPORT_BACK, pb.WARNING_STATUS_RECTIFIED)]
    one = env["stub"].GetWarning(pb.GetWarningRequest(name=listed.warnings[0].name), metadata=mine)
    assert [(e.action, e.stamp.actor) for e in one.timeline] == [("RAISED", "scoring"), ("RECTIFIED", "scoring")]
    assert one.timeline[1].detail.endswith("已完成回告")
    other = next(w for w in raised if w.officer_id == "P7100002")
    assert code_of(lambda: env["stub"].GetWarning(pb.GetWarningRequest(name=f"warnings/{other.id}"),
                                                  metadata=mine)) == grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: env["stub"].GetWarning(pb.GetWarningRequest(name="warnings/nope"),
                                                  metadata=COMMANDER)) == grpc.StatusCode.NOT_FOUND


def test_an_accepted_job_never_cleared_is_overdue_four_hours_after_acceptance(env):
    t0 = datetime(2029, 6, 2, 9, tzinfo=UTC)
    case = Case(env, station="S10", start=t0)
    case.change(dpb.ASSIGNMENT_STATE_ACCEPTED, timedelta(seconds=30))
    early = sweep(env, t0 + timedelta(hours=4))
    late = sweep(env, t0 + timedelta(hours=4, minutes=1))
    assert [w for w in early if w.case_name == case.name] == []
    assert [w.officer_id for w in late if w.case_name == case.name] == case.officer_ids


# -- rules as data, versions, recomputation --------------------------------------------------------------

def test_a_new_rule_version_scores_new_events_and_recomputes_old_ones(env):
    stub = env["stub"]
    env["clock"].t = datetime(2030, 12, 20, tzinfo=UTC)
    v1 = stub.GetRuleSet(pb.GetRuleSetRequest(name="ruleSets/1"), metadata=COMMANDER)
    assert v1.published and len(v1.rules) == 20
    assert {r.dimension for r in v1.rules} == {pb.DIMENSION_QUANTITY, pb.DIMENSION_QUALITY, pb.DIMENSION_EFFICIENCY}

    grid = grid_with_target(300)
    officers = [("P7200001", "孙警官")]
    # December 2030 under version 1: two handled cases.
    for day in (5, 6):
        Case(env, station=grid.station_id, grid=grid.grid_id, officers=officers,
             start=datetime(2030, 12, day, 9, tzinfo=UTC)).run(report_back_s=1200 + 25 * 60)

    rules = list(v1.rules)
    by_id = {r.rule_id: r for r in rules}
    by_id["EFF-REPORT-BACK-ON-TIME"].points = 3
    by_id["EFF-REPORT-BACK-ON-TIME"].condition = (
        'assignment.state == "ASSIGNMENT_STATE_REPORTED_BACK" && derived.report_back_seconds <= 1200')
    by_id["EFF-REPORT-BACK-LATE"].condition = (
        'assignment.state == "ASSIGNMENT_STATE_REPORTED_BACK" && derived.report_back_seconds > 1200')
    by_id["QTY-ACCEPT"].monthly_cap = 1
    new = pb.RuleSet(description="第2版：回告时限收紧为20分钟", rules=rules,
                     effective_time=ts(datetime(2031, 1, 1, tzinfo=CST_MIDNIGHT)))
    bad = pb.RuleSet(rules=[pb.ScoringRule(rule_id="x", condition="derived.a ==", points=0)])
    fields = violations(lambda: stub.CreateRuleSet(pb.CreateRuleSetRequest(request_id="r-bad", rule_set=bad),
                                                   metadata=COMMANDER))
    assert {"rule_set.effective_time", "rule_set.rules[0].rule_id", "rule_set.rules[0].condition",
            "rule_set.rules[0].points", "rule_set.rules[0].event_type"} <= set(fields)
    assert code_of(lambda: stub.CreateRuleSet(pb.CreateRuleSetRequest(request_id="r-x", rule_set=new),
                                              metadata=caller(["station_chief"], sub="c", station="S01"))) == \
        grpc.StatusCode.PERMISSION_DENIED
    v2 = stub.CreateRuleSet(pb.CreateRuleSetRequest(request_id=uuid.uuid4().hex, rule_set=new), metadata=COMMANDER)
    assert v2.version == 2 and not v2.published and v2.name == "ruleSets/2"

    published = stub.PublishRuleSet(pb.PublishRuleSetRequest(request_id=uuid.uuid4().hex, name=v2.name),
                                    metadata=COMMANDER)
    assert published.published and published.publish_stamp.actor == "cmd-1"
    again = pb.PublishRuleSetRequest(request_id=uuid.uuid4().hex, name=v2.name)
    assert code_of(lambda: stub.PublishRuleSet(again, metadata=COMMANDER)) == grpc.StatusCode.FAILED_PRECONDITION
    past = stub.CreateRuleSet(pb.CreateRuleSetRequest(request_id=uuid.uuid4().hex, rule_set=pb.RuleSet(
        rules=rules, effective_time=ts(datetime(2030, 1, 1, tzinfo=UTC)))), metadata=COMMANDER)
    assert code_of(lambda: stub.PublishRuleSet(pb.PublishRuleSetRequest(request_id=uuid.uuid4().hex,
                                                                        name=past.name), metadata=COMMANDER)) == \
        grpc.StatusCode.FAILED_PRECONDITION

    # January 2031 under version 2: the same handling now reports back late, and acceptance is capped.
    for day in (5, 6):
        Case(env, station=grid.station_id, grid=grid.grid_id, officers=officers,
             start=datetime(2031, 1, day, 9, tzinfo=UTC)).run(report_back_s=1200 + 25 * 60)
    dec = entries(env, officer_id="P7200001")
    assert {r.rule_set_version for r in dec if r.occur_time < datetime(2030, 12, 31, 16, tzinfo=UTC)} == {1}
    jan = [r for r in dec if r.occur_time >= datetime(2030, 12, 31, 16, tzinfo=UTC)]
    assert {r.rule_set_version for r in jan} == {2}
    assert sorted(r.rule_id for r in jan if r.rule_id.startswith(("EFF-REPORT", "QTY-ACCEPT"))) == [
        "EFF-REPORT-BACK-LATE", "EFF-REPORT-BACK-LATE", "QTY-ACCEPT"]

    december = dict(start_time=ts(datetime(2030, 12, 1, tzinfo=UTC)), end_time=ts(datetime(2030, 12, 31, tzinfo=UTC)))
    name = "officers/P7200001/score"
    same = stub.RecomputeScore(pb.RecomputeScoreRequest(name=name, rule_set="ruleSets/1", **december),
                               metadata=COMMANDER)
    assert same.recomputed.total == same.recorded.total == 2 * (1 + 0.5 + 1 + 1 + 1)
    what_if = stub.RecomputeScore(pb.RecomputeScoreRequest(name=name, rule_set="ruleSets/2", **december),
                                  metadata=COMMANDER)
    assert what_if.recorded.total == same.recorded.total, "recomputation writes nothing"
    assert what_if.recomputed.rule_set_version == 2
    # Version 2: one capped acceptance (1), two fast acceptances (1), two arrivals (2), two report-backs (2),
    # two late report-backs (-4).
    assert what_if.recomputed.total == 1 + 1 + 2 + 2 - 4
    assert {r.reason_code: r.points for r in what_if.reasons}["REPORT_BACK_LATE"] == -4
    assert rules_of(entries(env, officer_id="P7200001")) == rules_of(dec), "the ledger is untouched"
    assert code_of(lambda: stub.RecomputeScore(pb.RecomputeScoreRequest(name=name, rule_set="ruleSets/99"),
                                               metadata=COMMANDER)) == grpc.StatusCode.NOT_FOUND


CST_MIDNIGHT = timezone(timedelta(hours=8))


# -- scores, rankings, access ---------------------------------------------------------------------------

def test_rankings_explanations_trends_and_who_may_see_them(env):
    stub = env["stub"]
    start = datetime(2029, 9, 3, tzinfo=CST_MIDNIGHT)  # a Monday
    good, poor, other = ("P7300001", "周警官"), ("P7300002", "吴警官"), ("P7300003", "郑警官")
    grid = next(g for g in city.grids() if g.station_id == "S11" and g.arrival_target_s >= 180)
    for week in range(2):
        t = start + timedelta(days=7 * week, hours=9)
        Case(env, station="S11", grid=grid.grid_id, officers=[good], start=t).run(
            outcome=dpb.OUTCOME_CRIMINAL_CASE, evidence=1)
        Case(env, station="S11", grid=grid.grid_id, officers=[poor], start=t).run(
            arrive_s=900, report_back_s=1200 + 45 * 60)
    Case(env, station="S12", officers=[other], start=start + timedelta(hours=10)).run()
    two_weeks = dict(start_time=ts(start), end_time=ts(start + timedelta(days=14)))

    ranked = stub.ListRankings(pb.ListRankingsRequest(scope=pb.RANKING_SCOPE_OFFICERS, station_id="S11",
                                                      **two_weeks), metadata=COMMANDER).rankings
    assert [(r.rank, r.subject) for r in ranked] == [(1, "officers/P7300001"), (2, "officers/P7300002")]
    assert ranked[0].display_name == "周警官" and ranked[0].points == 2 * 6.5
    assert ranked[1].points == 2 * (1 + 0.5 - 1 + 1 - 2)
    by_eff = stub.ListRankings(pb.ListRankingsRequest(scope=pb.RANKING_SCOPE_OFFICERS, station_id="S11",
                                                      dimension=pb.DIMENSION_EFFICIENCY, **two_weeks),
                               metadata=COMMANDER).rankings
    assert [r.points for r in by_eff] == [2 * 2.5, 2 * -2.5]
    stations = stub.ListRankings(pb.ListRankingsRequest(scope=pb.RANKING_SCOPE_STATIONS, **two_weeks),
                                 metadata=COMMANDER).rankings
    s11 = next(r for r in stations if r.subject == "stations/S11")
    assert s11.points == (2 * 6.5 + 2 * -0.5) / 2
    paged = stub.ListRankings(pb.ListRankingsRequest(scope=pb.RANKING_SCOPE_OFFICERS, station_id="S11", page_size=1,
                                                     **two_weeks), metadata=COMMANDER)
    assert len(paged.rankings) == 1 and paged.next_page_token

    station_score = stub.GetStationScore(pb.GetStationScoreRequest(
        name="stations/S11/score", trend_granularity=pb.GRANULARITY_WEEK, **two_weeks), metadata=COMMANDER)
    assert station_score.total == 2 * 6.5 + 2 * -0.5 and station_score.officer_count == 2
    assert station_score.mean_per_officer == 6.0
    assert [p.total for p in station_score.trend] == [6.0, 6.0]

    explained = stub.ExplainScore(pb.ExplainScoreRequest(name="officers/P7300002/score", page_size=3, **two_weeks),
                                  metadata=COMMANDER)
    assert explained.score.total == -1.0
    assert sum(r.points for r in explained.reasons) == explained.score.total
    late = next(r for r in explained.reasons if r.reason_code == "REPORT_BACK_LATE")
    assert (late.entries, late.points, late.description) == (2, -4.0, "超过时限回告扣2分")
    assert len(explained.ledger_entries) == 3 and explained.next_page_token
    rest = stub.ExplainScore(pb.ExplainScoreRequest(name="officers/P7300002/score", page_size=50,
                                                    page_token=explained.next_page_token, **two_weeks),
                             metadata=COMMANDER)
    assert len(explained.ledger_entries) + len(rest.ledger_entries) == 10
    previous = stub.GetOfficerScore(pb.GetOfficerScoreRequest(
        name="officers/P7300001/score", start_time=ts(start + timedelta(days=7)),
        end_time=ts(start + timedelta(days=14))), metadata=COMMANDER)
    assert previous.total == 6.5 and previous.previous_total == 6.5

    # Who may see what.
    own = caller(["officer"], sub="P7300001")
    assert stub.GetOfficerScore(pb.GetOfficerScoreRequest(name="officers/P7300001/score", **two_weeks),
                                metadata=own).total == 13.0
    for call in (
        lambda: stub.GetOfficerScore(pb.GetOfficerScoreRequest(name="officers/P7300002/score"), metadata=own),
        lambda: stub.GetStationScore(pb.GetStationScoreRequest(name="stations/S11/score"), metadata=own),
        lambda: stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(officer_id="P7300002"), metadata=own),
        lambda: stub.ListRankings(pb.ListRankingsRequest(scope=pb.RANKING_SCOPE_OFFICERS), metadata=own),
        lambda: stub.GetOfficerScore(pb.GetOfficerScoreRequest(name="officers/P7300001/score"),
                                     metadata=caller(["dispatcher"], sub="d1", station="S11")),
        lambda: stub.GetOfficerScore(pb.GetOfficerScoreRequest(name="officers/P7300003/score"),
                                     metadata=caller(["station_chief"], sub="c11", station="S11")),
        lambda: stub.GetStationScore(pb.GetStationScoreRequest(name="stations/S12/score"),
                                     metadata=caller(["station_chief"], sub="c11", station="S11")),
    ):
        assert code_of(call) == grpc.StatusCode.PERMISSION_DENIED
    mine = stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(**{"occur_time_start": ts(start)}), metadata=own)
    assert mine.ledger_entries and {e.officer_id for e in mine.ledger_entries} == {"P7300001"}
    chief = caller(["station_chief"], sub="c11", station="S11")
    chief_view = stub.ListRankings(pb.ListRankingsRequest(scope=pb.RANKING_SCOPE_OFFICERS, **two_weeks),
                                   metadata=chief).rankings
    assert [r.subject for r in chief_view] == ["officers/P7300001", "officers/P7300002"]
    assert stub.GetOfficerScore(pb.GetOfficerScoreRequest(name="officers/P7300002/score", **two_weeks),
                                metadata=chief).total == -1.0

    assert code_of(lambda: stub.GetOfficerScore(pb.GetOfficerScoreRequest(name="officers/NOBODY/score"),
                                                metadata=COMMANDER)) == grpc.StatusCode.NOT_FOUND
    assert code_of(lambda: stub.GetStationScore(pb.GetStationScoreRequest(name="stations/S99/score"),
                                                metadata=COMMANDER)) == grpc.StatusCode.NOT_FOUND
    assert violations(lambda: stub.GetOfficerScore(pb.GetOfficerScoreRequest(name="people/x"),
                                                   metadata=COMMANDER)) == ["name"]
    assert set(violations(lambda: stub.ListRankings(pb.ListRankingsRequest(
        page_token="forged", start_time=ts(start), end_time=ts(start - timedelta(days=1))),
        metadata=COMMANDER))) == {"scope", "page_token", "end_time"}


def test_warning_rate_per_station_over_time(env):
    stub = env["stub"]
    start = datetime(2029, 10, 1, tzinfo=CST_MIDNIGHT)  # a Monday
    # Week 1: four cases, two of them warned; week 2: four cases, one warned.
    for week, bad in ((0, 2), (1, 1)):
        for i in range(4):
            outcome = dpb.OUTCOME_NO_ISSUE_FOUND if i < bad else dpb.OUTCOME_MEDIATED
            env["clock"].t = start + timedelta(days=7 * week + i, hours=10)
            Case(env, station="S13", incident_type="FIGHT",
                 start=start + timedelta(days=7 * week + i, hours=9)).run(outcome=outcome)
    stats = stub.GetWarningStatistics(pb.GetWarningStatisticsRequest(
        station_id="S13", start_time=ts(start), end_time=ts(start + timedelta(days=14)),
        granularity=pb.GRANULARITY_WEEK), metadata=caller(["station_chief"], sub="c13", station="S13"))
    [s13] = stats.stations
    assert (s13.warnings, s13.cases, s13.warning_rate) == (3, 8, 0.375)
    assert [(p.warnings, p.cases, p.warning_rate) for p in s13.points] == [(2, 4, 0.5), (1, 4, 0.25)]
    assert s13.rate_change == -0.5
    assert [(k.kind, k.count) for k in s13.points[0].by_kind] == [(pb.WARNING_KIND_OUTCOME_CONTRADICTS_TYPE, 2)]
    assert code_of(lambda: stub.GetWarningStatistics(pb.GetWarningStatisticsRequest(station_id="S01"),
                                                     metadata=caller(["station_chief"], sub="c13", station="S13"))) == \
        grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: stub.GetWarningStatistics(pb.GetWarningStatisticsRequest(),
                                                     metadata=caller(["officer"], sub="P1"))) == \
        grpc.StatusCode.PERMISSION_DENIED


def test_ledger_pages_newest_first_and_each_entry_is_scoped(env):
    stub = env["stub"]
    case = Case(env, station="S14", start=datetime(2029, 11, 5, 9, tzinfo=UTC)).run(
        outcome=dpb.OUTCOME_CRIMINAL_CASE)
    officer = case.officer_ids[0]
    seen, token = [], ""
    while True:
        page = stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(officer_id=officer, page_size=2, page_token=token),
                                      metadata=COMMANDER)
        assert len(page.ledger_entries) <= 2
        seen += list(page.ledger_entries)
        token = page.next_page_token
        if not token:
            break
    assert len(seen) == 6 and len({e.name for e in seen}) == 6
    times = [e.occur_time.ToDatetime() for e in seen]
    assert times == sorted(times, reverse=True)
    efficiency = stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(
        officer_id=officer, dimension=pb.DIMENSION_EFFICIENCY, reason_code="REPORT_BACK_ON_TIME"), metadata=COMMANDER)
    assert [e.rule_id for e in efficiency.ledger_entries] == ["EFF-REPORT-BACK-ON-TIME"]

    name = seen[0].name
    assert stub.GetLedgerEntry(pb.GetLedgerEntryRequest(name=name),
                               metadata=caller(["officer"], sub=officer)).name == name
    assert stub.GetLedgerEntry(pb.GetLedgerEntryRequest(name=name),
                               metadata=caller(["station_chief"], sub="c14", station="S14")).officer_id == officer
    for who in (caller(["officer"], sub="P-other"), caller(["station_chief"], sub="c01", station="S01"),
                caller(["call_taker"], sub="t")):
        assert code_of(lambda: stub.GetLedgerEntry(pb.GetLedgerEntryRequest(name=name), metadata=who)) == \
            grpc.StatusCode.PERMISSION_DENIED
    assert code_of(lambda: stub.GetLedgerEntry(pb.GetLedgerEntryRequest(name="ledgerEntries/nope"),
                                               metadata=COMMANDER)) == grpc.StatusCode.NOT_FOUND
    assert violations(lambda: stub.GetLedgerEntry(pb.GetLedgerEntryRequest(name="entries/1"),
                                                  metadata=COMMANDER)) == ["name"]
    assert violations(lambda: stub.ListLedgerEntries(pb.ListLedgerEntriesRequest(page_size=-1, page_token="x"),
                                                     metadata=COMMANDER)) == ["page_size", "page_token"]

    first = stub.ListRuleSets(pb.ListRuleSetsRequest(page_size=1), metadata=caller(["officer"], sub=officer))
    assert len(first.rule_sets) == 1 and first.next_page_token
    published = stub.ListRuleSets(pb.ListRuleSetsRequest(published_only=True, page_size=100), metadata=COMMANDER)
    assert all(rs.published for rs in published.rule_sets) and published.rule_sets[-1].name == "ruleSets/1"
    assert code_of(lambda: stub.GetRuleSet(pb.GetRuleSetRequest(name="ruleSets/999"), metadata=COMMANDER)) == \
        grpc.StatusCode.NOT_FOUND
    assert violations(lambda: stub.GetRuleSet(pb.GetRuleSetRequest(name="ruleSets/v1"), metadata=COMMANDER)) == \
        ["name"]
