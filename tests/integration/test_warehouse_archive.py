"""The warehouse's retention (留存): month partitions older than the retention are written to gzip'd
CSV files and dropped, the rollups keep counting them, a late event for an archived report changes
nothing, and an archived month is attached again from its file, checked against its digest."""
from __future__ import annotations

import csv
import gzip
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import text

from smart110.intake.v1 import intake_service_pb2 as ipb
from services.runtime.errors import FailedPrecondition
from services.warehouse import workers
from services.warehouse.__main__ import SPEC
from tests import support
from tests.integration.test_warehouse import S01, S02, deliver, event, report_pb, reported

UTC = timezone.utc
T0 = datetime(2028, 3, 10, 2, 0, tzinfo=UTC)
OLD = datetime(2027, 1, 12, 3, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def env(admin_url):
    clock = support.Clock(datetime(2026, 12, 15, tzinfo=UTC))
    with support.serving(SPEC, admin_url, clock=clock, seed=False) as served:
        workers.maintain_partitions(served.rt)  # December 2026 to March 2027
        clock.set(T0)
        workers.maintain_partitions(served.rt)
        yield dict(rt=served.rt, served=served, clock=clock)


def scalar(env, sql: str, **params):
    with env["rt"].engine.connect() as conn:
        return conn.execute(text(sql), params).scalar()


def rollup_totals(env) -> tuple:
    return tuple(scalar(env, f"SELECT coalesce(sum(reports), 0) FROM warehouse.{t}")
                 for t in ("rollup_hourly", "rollup_daily", "rollup_daily_cells", "rollup_monthly_cells"))


def partitions(env) -> set[str]:
    with env["rt"].engine.connect() as conn:
        return set(conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'warehouse.report_facts'::regclass")).scalars())


def test_old_months_are_archived_and_attached_again(env, tmp_path):
    old = [report_pb(f"reports/{uuid.uuid4().hex[:10]}", station, OLD) for station in (S01, S02)]
    for r in old:
        reported(env, r)
    recent = report_pb(f"reports/{uuid.uuid4().hex[:10]}", S01, T0)
    reported(env, recent)
    assert "report_facts_202701" in partitions(env)
    before = rollup_totals(env)
    assert before[0] == 3

    done = workers.archive_partitions(env["rt"], keep_months=12, directory=tmp_path)
    # Months wholly before March 2027 (twelve months before March 2028) go; March 2027 on stays.
    assert done == ["report_facts_202612", "report_facts_202701", "report_facts_202702"]
    assert not {"report_facts_202612", "report_facts_202701", "report_facts_202702"} & partitions(env)
    assert {"report_facts_202703", "report_facts_202803"} <= partitions(env)
    assert rollup_totals(env) == before, "the rollups keep counting archived months"
    assert scalar(env, "SELECT count(*) FROM warehouse.report_facts") == 1
    with gzip.open(tmp_path / "report_facts_202701.csv.gz", "rt", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["report"] for r in rows) == sorted(r.name for r in old)
    assert {r["station_id"] for r in rows} == {"S01", "S02"}
    assert scalar(env, "SELECT rows FROM warehouse.archived_partitions WHERE name = 'report_facts_202701'") == 2
    # Nothing more is due; a second round does nothing.
    assert workers.archive_partitions(env["rt"], keep_months=12, directory=tmp_path) == []

    # A late update of an archived report is counted already: nothing is written again.
    late = old[0]
    late.classification.incident_type = "ASSAULT"
    assert deliver(env, event("intake", "intake.ReportUpdated", late.name,
                              ipb.ReportUpdated(report=late, action="RECLASSIFIED"), T0))
    assert scalar(env, "SELECT count(*) FROM warehouse.report_facts WHERE report = :r", r=late.name) == 0
    assert rollup_totals(env) == before

    # Attached again from its file: the rows and their keys are back, and the month is live again.
    assert workers.reattach_partition(env["rt"], "2027-01") == 2
    assert "report_facts_202701" in partitions(env)
    assert scalar(env, "SELECT count(*) FROM warehouse.report_facts WHERE receive_time < '2027-02-01'") == 2
    assert scalar(env, "SELECT count(*) FROM warehouse.report_keys WHERE report = :r", r=late.name) == 1
    assert scalar(env, "SELECT reattach_time IS NOT NULL FROM warehouse.archived_partitions "
                       "WHERE name = 'report_facts_202701'")
    assert rollup_totals(env) == before
    with pytest.raises(FailedPrecondition):
        workers.reattach_partition(env["rt"], "2027-01")
    with pytest.raises(FailedPrecondition):
        workers.reattach_partition(env["rt"], "2025-05")

    # A file changed since it was written is refused, and the month stays archived.
    tampered = tmp_path / "report_facts_202612.csv.gz"
    with gzip.open(tampered, "ab") as f:
        f.write(b"\n")
    with pytest.raises(RuntimeError, match="digest"):
        workers.reattach_partition(env["rt"], "2026-12")
    assert "report_facts_202612" not in partitions(env)
