"""The warehouse's retention (留存): month partitions older than the retention are written to Parquet
files and dropped, the rollups keep counting them, a late event for an archived report changes
nothing, and an archived month is attached again from its file, checked against its digest, with
every row as it was; a month archived before Parquet (gzip'd CSV) is attached again too."""
from __future__ import annotations

import gzip
import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import pyarrow.parquet as pq
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


def month_rows(env, start: str, end: str) -> list[tuple]:
    """Every column of the fact rows received in [start, end)."""
    with env["rt"].engine.connect() as conn:
        return sorted(map(tuple, conn.execute(text(
            "SELECT * FROM warehouse.report_facts WHERE receive_time >= :a AND receive_time < :b"),
            {"a": start, "b": end})))


def test_old_months_are_archived_and_attached_again(env, tmp_path):
    old = [report_pb(f"reports/{uuid.uuid4().hex[:10]}", station, OLD, answer_time=OLD + timedelta(seconds=2),
                     hand_off_time=OLD + timedelta(seconds=40)) for station in (S01, S02)]
    old[1].location.Clear()  # an unlocated report: no coordinates, no cells
    old[1].classification.priority = 0
    for r in old:
        reported(env, r)
    recent = report_pb(f"reports/{uuid.uuid4().hex[:10]}", S01, T0)
    reported(env, recent)
    assert "report_facts_202701" in partitions(env)
    before = rollup_totals(env)
    assert before[0] == 3
    january = month_rows(env, "2027-01-01", "2027-02-01")
    assert len(january) == 2 and any(r[10] is None for r in january)  # one row without coordinates

    done = workers.archive_partitions(env["rt"], keep_months=12, directory=tmp_path)
    # Months wholly before March 2027 (twelve months before March 2028) go; March 2027 on stays.
    assert done == ["report_facts_202612", "report_facts_202701", "report_facts_202702"]
    assert not {"report_facts_202612", "report_facts_202701", "report_facts_202702"} & partitions(env)
    assert {"report_facts_202703", "report_facts_202803"} <= partitions(env)
    assert rollup_totals(env) == before, "the rollups keep counting archived months"
    assert scalar(env, "SELECT count(*) FROM warehouse.report_facts") == 1
    rows = pq.read_table(tmp_path / "report_facts_202701.parquet").to_pylist()
    assert sorted(r["report"] for r in rows) == sorted(r.name for r in old)
    assert {r["receive_time"] for r in rows} == {OLD}
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
    assert month_rows(env, "2027-01-01", "2027-02-01") == january, "every row and column as it was"
    assert scalar(env, "SELECT count(*) FROM warehouse.report_keys WHERE report = :r", r=late.name) == 1
    assert scalar(env, "SELECT reattach_time IS NOT NULL FROM warehouse.archived_partitions "
                       "WHERE name = 'report_facts_202701'")
    assert rollup_totals(env) == before
    with pytest.raises(FailedPrecondition):
        workers.reattach_partition(env["rt"], "2027-01")
    with pytest.raises(FailedPrecondition):
        workers.reattach_partition(env["rt"], "2025-05")

    # A file changed since it was written is refused, and the month stays archived.
    tampered = tmp_path / "report_facts_202612.parquet"
    with tampered.open("ab") as f:
        f.write(b"\0")
    with pytest.raises(RuntimeError, match="digest"):
        workers.reattach_partition(env["rt"], "2026-12")
    assert "report_facts_202612" not in partitions(env)


def test_a_month_archived_as_gzip_csv_before_parquet_is_attached_again(env, tmp_path):
    """Archives written before Parquet are gzip'd CSV (COPY's CSV with a header, the digest of the
    uncompressed text): such a month is attached again with every row."""
    march = [report_pb(f"reports/{uuid.uuid4().hex[:10]}", S01, datetime(2027, 3, 5, 1, m, tzinfo=UTC),
                       answer_time=datetime(2027, 3, 5, 1, m, 3, tzinfo=UTC)) for m in range(3)]
    march[2].classification.incident_type = "THEFT"
    for r in march:
        reported(env, r)
    rows = month_rows(env, "2027-03-01", "2027-04-01")
    assert len(rows) == 3
    legacy = tmp_path / "report_facts_202703.csv.gz"
    with env["rt"].engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        with raw.cursor() as cur, gzip.open(legacy, "wb") as out:
            with cur.copy("COPY (SELECT * FROM warehouse.report_facts_202703 ORDER BY receive_time, report) "
                          "TO STDOUT WITH (FORMAT csv, HEADER)") as copy:
                text_bytes = b"".join(bytes(d) for d in copy)
            out.write(text_bytes)
    before = rollup_totals(env)

    # (January 2027, attached again by the test before, is due again too.)
    assert "report_facts_202703" in workers.archive_partitions(env["rt"], keep_months=11, directory=tmp_path)
    assert "report_facts_202703" not in partitions(env)
    # The month as it would have been archived before: the CSV file and its digest on record.
    (tmp_path / "report_facts_202703.parquet").unlink()
    with env["rt"].engine.begin() as conn:
        conn.execute(text("UPDATE warehouse.archived_partitions SET path = :p, sha256 = :d "
                          "WHERE name = 'report_facts_202703'"),
                     {"p": str(legacy), "d": hashlib.sha256(text_bytes).hexdigest()})

    assert workers.reattach_partition(env["rt"], "2027-03") == 3
    assert month_rows(env, "2027-03-01", "2027-04-01") == rows
    assert rollup_totals(env) == before
