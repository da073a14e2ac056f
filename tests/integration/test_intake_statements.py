"""How many SQL statements intake runs per report and per event it follows (the hot paths under load).

Statements are counted on the service's engine (`before_cursor_execute`) within the one transaction
of the call or the event: a ReportIncident (a new incident, a duplicate merged into its master, a
consultation answered at once) and the dispatch and referral events intake's consumers apply
(CaseCreated, an assignment accepted, a work order created). Counts, not timings: a change that adds
a round trip to these paths shows here. An `executemany` counts once per parameter set, as the
server runs it.
"""
from __future__ import annotations

import threading
import uuid
from contextlib import contextmanager
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from smart110.dispatch.v1 import dispatch_service_pb2 as dispatch_pb
from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2 as referral_pb
from services.intake.store import reports
from services.runtime.timeutil import to_pb
from tests.integration.intake_support import (
    CALL_TAKER, HANKOU, WUCHANG, actions, caller, events_about, intake, report, served, submit, time_slot,
)

__all__ = ["intake", "served"]  # the fixtures

# The most statements each path may run (one transaction each). A ReportIncident: the idempotency
# claim, the caller's recent invalid calls, the duplicate search's lock and candidates, the report
# (row, timeline, consultation, handling) in one INSERT, the response kept, the event; a duplicate
# also reads its master (without its history), writes what changed of it in the same INSERT, and
# announces both.
# An event followed: the inbox, the parked-event check, the report read (without its history, by
# its case for an assignment), its writes in one statement, the event it publishes, the cursor.
MAX_STATEMENTS = {
    "ReportIncident": 7,  # 10 when each table's write and each timeline entry ran on its own
    "ReportIncident (duplicate merged)": 9,  # 19, the master read whole in five statements
    "ReportIncident (consultation answered)": 5,  # 10
    "dispatch.CaseCreated": 6,  # 12, the report read whole in five statements
    "dispatch.AssignmentChanged (accepted)": 6,  # 12
    "referral.WorkOrderCreated": 6,  # 12
}


class Statements:
    """The statements each transaction on an engine ran: [(statement, parameter sets)] per transaction."""

    def __init__(self):
        self._open: dict[int, list[tuple[str, int]]] = {}
        self.done: list[list[tuple[str, int]]] = []
        self._lock = threading.Lock()

    def begin(self, conn) -> None:
        with self._lock:
            self._open[id(conn)] = []

    def end(self, conn) -> None:
        with self._lock:
            ran = self._open.pop(id(conn), None)
            if ran is not None:
                self.done.append(ran)

    def executed(self, conn, cursor, statement, parameters, context, executemany) -> None:
        with self._lock:
            ran = self._open.get(id(conn))
            if ran is not None:
                ran.append((statement, len(parameters) if executemany else 1))

    def one(self, marker: str) -> list[tuple[str, int]]:
        """The one finished transaction that ran a statement containing `marker`."""
        found = [t for t in self.done if any(marker in s for s, _ in t)]
        assert len(found) == 1, f"{len(found)} transactions ran {marker!r}"
        return found[0]


@contextmanager
def counting(engine):
    s = Statements()
    hooks = (("begin", s.begin), ("commit", s.end), ("rollback", s.end), ("before_cursor_execute", s.executed))
    for name, fn in hooks:
        event.listen(engine, name, fn)
    try:
        yield s
    finally:
        for name, fn in hooks:
            event.remove(engine, name, fn)


def count(ran: list[tuple[str, int]]) -> int:
    return sum(n for _, n in ran)


def within(what: str, ran: list[tuple[str, int]]) -> None:
    n = count(ran)
    print(f"\n{what}: {n} statements")
    for statement, times in ran:
        print(f"  {times} x {' '.join(statement.split())[:150]}")
    assert n <= MAX_STATEMENTS[what], (f"{what} ran {n} statements, more than {MAX_STATEMENTS[what]}:\n"
                                       + "\n".join(f"{t} x {s[:200]}" for s, t in ran))


def report_incident(rt, stub, r: pb.Report) -> tuple[pb.Report, list[tuple[str, int]]]:
    with counting(rt.engine) as s:
        created = submit(stub, r)
    return created, s.one("idempotency_keys")


def deliver(served, source: str, kind: str, subject: str, payload) -> list[tuple[str, int]]:
    with counting(served.rt.engine) as s:
        assert served.deliver(source, kind, subject, payload)
    return s.one("inbox")


@pytest.fixture(autouse=True)
def _warm(intake):
    """One report first, so the paths measured run on warm caches and compiled statements."""
    _, stub = intake
    submit(stub, report("有人在小区门口打架", point=HANKOU, at=time_slot()))


def test_statements_per_report_incident(intake):
    rt, stub = intake
    t = time_slot()
    first, ran = report_incident(rt, stub, report("有人在地铁站持刀抢劫，抢了一个手机往东跑了", point=HANKOU, at=t))
    assert first.status == pb.REPORT_STATUS_CLASSIFIED and actions(first) == ["REPORTED", "ROUTED", "CLASSIFIED"]
    within("ReportIncident", ran)
    with rt.engine.connect() as conn:  # located by its point: no address match, SQL NULL (not JSON null)
        assert conn.execute(select(reports.c.address_match.is_(None)).where(
            reports.c.id == first.name.split("/")[1])).scalar_one()

    # A witness nearby minutes later: merged into the first report, which links it.
    repeat, ran = report_incident(rt, stub, report("地铁站有人持刀抢劫", point=HANKOU, at=t + timedelta(minutes=3)))
    assert repeat.status == pb.REPORT_STATUS_MERGED and repeat.merged_into == first.name
    within("ReportIncident (duplicate merged)", ran)
    assert [type(e).__name__ for _, e in events_about(rt, first.name)] == ["IncidentReported", "ReportUpdated"]
    master = stub.GetReport(pb.GetReportRequest(name=first.name), metadata=CALL_TAKER)
    assert actions(master) == ["REPORTED", "ROUTED", "CLASSIFIED", "DUPLICATE_LINKED"]
    assert list(master.duplicates) == [repeat.name]

    consult, ran = report_incident(rt, stub, report("想问一下怎么开无犯罪记录证明", point=WUCHANG, at=t + timedelta(minutes=5),
                                                     phone=caller()))
    assert consult.status == pb.REPORT_STATUS_ANSWERED and consult.consultation.answered_at_once
    within("ReportIncident (consultation answered)", ran)


def test_statements_per_followed_event(served, intake):
    rt, stub = intake
    t = time_slot()
    r = submit(stub, report("有人在地铁站持刀抢劫", point=HANKOU, at=t))
    # A report with a long history: what the events below cost does not depend on it.
    for i in range(5):
        submit(stub, report("地铁站有人持刀抢劫", point=HANKOU, at=t + timedelta(minutes=1 + i)))
    case = dispatch_pb.DispatchCase(name=f"cases/{uuid.uuid4().hex[:12]}", report=r.name,
                                    status=dispatch_pb.CASE_STATUS_PENDING)
    ran = deliver(served, "dispatch", "dispatch.CaseCreated", case.name, dispatch_pb.CaseCreated(dispatch_case=case))
    within("dispatch.CaseCreated", ran)
    accepted = dispatch_pb.Assignment(name=f"{case.name}/assignments/a1", unit="units/U-S01-001",
                                      state=dispatch_pb.ASSIGNMENT_STATE_ACCEPTED,
                                      accept_time=to_pb(t + timedelta(seconds=25)))
    ran = deliver(served, "dispatch", "dispatch.AssignmentChanged", accepted.name,
                  dispatch_pb.AssignmentChanged(assignment=accepted, case_name=case.name))
    within("dispatch.AssignmentChanged (accepted)", ran)
    after = stub.GetReport(pb.GetReportRequest(name=r.name), metadata=CALL_TAKER)
    assert after.status == pb.REPORT_STATUS_DISPATCHED and after.dispatch_case == case.name
    assert actions(after)[-2:] == ["CASE_OPENED", "HANDED_OFF"] and len(after.duplicates) == 5

    water = submit(stub, report("小区停水两天了，物业也不管，请帮忙协调自来水公司", point=WUCHANG, at=t))
    order = referral_pb.WorkOrder(name=f"workOrders/{uuid.uuid4().hex[:10]}", report=water.name,
                                  source=referral_pb.WORK_ORDER_SOURCE_REPORT_110,
                                  status=referral_pb.WORK_ORDER_STATUS_ASSIGNED)
    ran = deliver(served, "referral", "referral.WorkOrderCreated", order.name,
                  referral_pb.WorkOrderCreated(work_order=order))
    within("referral.WorkOrderCreated", ran)
    referred = stub.GetReport(pb.GetReportRequest(name=water.name), metadata=CALL_TAKER)
    assert referred.status == pb.REPORT_STATUS_REFERRED and referred.work_order == order.name
