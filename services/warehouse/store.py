"""Warehouse tables and the repositories of the write side, in the `warehouse` schema.

- `report_facts`: one row per report, declaratively partitioned by month of receive time
  (`report_facts_YYYYMM`, plus `report_facts_default` for a row no partition holds yet), BRIN on
  receive time. Rows are appended by the feeds and the bulk load; the feeds update a live report's
  outcome in place.
- `report_keys`: a live report's receive time (which partition holds it), so an update from another
  feed reaches one partition.
- `pending_outcomes`: what dispatch or referral said of a report intake's feed has not brought yet
  (the feeds are not ordered with each other); applied when the report arrives.
- `rollup_hourly` and `rollup_daily` (hour / city day x station x type, with the KPI counts), `rollup_daily_cells` and
  `rollup_monthly_cells` (day / month x H3 res-8 cell x station x type), `rollup_daily_cell_totals`
  and `rollup_monthly_cell_totals` (the same without the type): kept by INSERT ... ON
  CONFLICT DO UPDATE as facts arrive and change, built set-based after a bulk load.
- `load_runs`: bulk loads, with how many batches each has committed (the resume cursor).
- `archived_partitions`: month partitions of the fact table archived to files and dropped (the
  rollups keep counting them), with the file, its row count and digest, and when they were
  attached again.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime

import pyarrow as pa
from sqlalchemy import (
    BigInteger, Boolean, Column, Date, DateTime, Float, Identity, Index, Integer, MetaData, SmallInteger, String,
    Table, Text, bindparam, func, select, text,
)
from sqlalchemy.dialects.postgresql import insert

from services.runtime.app import RuntimeTables
from services.runtime.db import compiled_once, insert_once

from . import parquet
from .domain import CELL_ROLLUPS, MEASURES, Outcome, Partition, ReportFact, RollupChange, cell_center

SCHEMA = "warehouse"
metadata = MetaData(schema=SCHEMA)
runtime_tables = RuntimeTables.add_to(metadata)

FACT_COLUMNS = (
    "report", "receive_time", "category", "incident_type", "priority", "channel", "station_id", "grid_id",
    "district_id", "longitude", "latitude", "h3_r7", "h3_r8", "h3_r9", "answer_time", "hand_off_time",
    "arrival_time", "close_time", "arrival_target_s", "merged", "referred", "satisfaction", "dispatch_case",
    "work_order", "update_time", "load_id",
)

report_facts = Table(
    "report_facts", metadata,
    Column("report", String(80), nullable=False),
    Column("receive_time", DateTime(timezone=True), nullable=False),
    Column("category", String(20), nullable=False, server_default=""),
    Column("incident_type", String(40), nullable=False, server_default=""),
    Column("priority", SmallInteger, nullable=False, server_default="0"),
    Column("channel", String(30), nullable=False, server_default=""),
    Column("station_id", String(20), nullable=False, server_default=""),
    Column("grid_id", String(30), nullable=False, server_default=""),
    Column("district_id", String(20), nullable=False, server_default=""),
    Column("longitude", Float),
    Column("latitude", Float),
    Column("h3_r7", BigInteger),
    Column("h3_r8", BigInteger),
    Column("h3_r9", BigInteger),
    Column("answer_time", DateTime(timezone=True)),
    Column("hand_off_time", DateTime(timezone=True)),
    Column("arrival_time", DateTime(timezone=True)),
    Column("close_time", DateTime(timezone=True)),
    Column("arrival_target_s", Integer),
    Column("merged", Boolean, nullable=False, server_default="false"),
    Column("referred", Boolean, nullable=False, server_default="false"),
    Column("satisfaction", String(30), nullable=False, server_default=""),
    Column("dispatch_case", String(80), nullable=False, server_default=""),
    Column("work_order", String(80), nullable=False, server_default=""),
    Column("update_time", DateTime(timezone=True)),
    # The bulk load that wrote the row (load_runs.load_id); NULL for rows from the feeds.
    Column("load_id", Integer),
    # Partitioned by RANGE (receive_time), one partition a month (migration 0001, PartitionRepository).
    Index("report_facts_receive_brin", "receive_time", postgresql_using="brin",
          postgresql_with={"pages_per_range": 32}),
    Index("report_facts_live_report", "report", "receive_time", postgresql_where=text("load_id IS NULL")),
)

report_keys = Table(
    "report_keys", metadata,
    Column("report", String(80), primary_key=True),
    Column("receive_time", DateTime(timezone=True), nullable=False),
)

pending_outcomes = Table(
    "pending_outcomes", metadata,
    Column("report", String(80), primary_key=True),
    Column("hand_off_time", DateTime(timezone=True)),
    Column("arrival_time", DateTime(timezone=True)),
    Column("close_time", DateTime(timezone=True)),
    Column("arrival_target_s", Integer),
    Column("referred", Boolean, nullable=False, server_default="false"),
    Column("dispatch_case", String(80), nullable=False, server_default=""),
    Column("work_order", String(80), nullable=False, server_default=""),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
)


def _measure_columns() -> list[Column]:
    return [Column(m, BigInteger, nullable=False, server_default="0") for m in MEASURES]


rollup_hourly = Table(
    "rollup_hourly", metadata,
    Column("hour", DateTime(timezone=True), primary_key=True),
    Column("station_id", String(20), primary_key=True),
    Column("incident_type", String(40), primary_key=True),
    *_measure_columns(),
    Index("rollup_hourly_station_hour", "station_id", "hour"),
)

rollup_daily = Table(
    "rollup_daily", metadata,
    Column("day", Date, primary_key=True),
    Column("station_id", String(20), primary_key=True),
    Column("incident_type", String(40), primary_key=True),
    *_measure_columns(),
    Index("rollup_daily_station_day", "station_id", "day"),
)

rollup_daily_cells = Table(
    "rollup_daily_cells", metadata,
    Column("day", Date, primary_key=True),
    Column("cell", BigInteger, primary_key=True),
    Column("station_id", String(20), primary_key=True),
    Column("incident_type", String(40), primary_key=True),
    Column("longitude", Float, nullable=False),
    Column("latitude", Float, nullable=False),
    Column("reports", BigInteger, nullable=False, server_default="0"),
)

rollup_monthly_cells = Table(
    "rollup_monthly_cells", metadata,
    Column("month", Date, primary_key=True),
    Column("cell", BigInteger, primary_key=True),
    Column("station_id", String(20), primary_key=True),
    Column("incident_type", String(40), primary_key=True),
    Column("longitude", Float, nullable=False),
    Column("latitude", Float, nullable=False),
    Column("reports", BigInteger, nullable=False, server_default="0"),
)

archived_partitions = Table(
    "archived_partitions", metadata,
    Column("name", String(40), primary_key=True),
    Column("start_time", DateTime(timezone=True), nullable=False),
    Column("end_time", DateTime(timezone=True), nullable=False),
    Column("path", Text, nullable=False),
    Column("rows", BigInteger, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("archive_time", DateTime(timezone=True), nullable=False),
    # Attached again (reattach): the rows are back in the fact table; NULL while archived.
    Column("reattach_time", DateTime(timezone=True)),
)

load_runs = Table(
    "load_runs", metadata,
    Column("load_id", Integer, Identity(always=False), primary_key=True),
    Column("reports", BigInteger, nullable=False),
    Column("years", Integer, nullable=False),
    Column("seed", BigInteger, nullable=False),
    Column("end_time", DateTime(timezone=True), nullable=False),
    Column("batch_size", Integer, nullable=False),
    Column("batches_done", Integer, nullable=False, server_default="0"),
    Column("rows_loaded", BigInteger, nullable=False, server_default="0"),
    # A CSV import (load --from-csv): the file and its SHA-256; NULL for a generated history.
    Column("source", Text),
    Column("source_sha256", String(64)),
    # Lines of the file skipped as bad, in the batches committed.
    Column("rows_skipped", BigInteger, nullable=False, server_default="0"),
    # LOADING -> ROLLED_UP
    Column("state", String(20), nullable=False, server_default="LOADING"),
    Column("create_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("update_time", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Every type together, for the heat maps that filter no type: a cell's rows of a day or month are the
# stations it touches, not every type reported there.
rollup_daily_cell_totals = Table(
    "rollup_daily_cell_totals", metadata,
    Column("day", Date, primary_key=True),
    Column("cell", BigInteger, primary_key=True),
    Column("station_id", String(20), primary_key=True),
    Column("longitude", Float, nullable=False),
    Column("latitude", Float, nullable=False),
    Column("reports", BigInteger, nullable=False, server_default="0"),
)

rollup_monthly_cell_totals = Table(
    "rollup_monthly_cell_totals", metadata,
    Column("month", Date, primary_key=True),
    Column("cell", BigInteger, primary_key=True),
    Column("station_id", String(20), primary_key=True),
    Column("longitude", Float, nullable=False),
    Column("latitude", Float, nullable=False),
    Column("reports", BigInteger, nullable=False, server_default="0"),
)

ROLLUPS = {"hourly": rollup_hourly, "daily": rollup_daily, "daily_cells": rollup_daily_cells, "monthly_cells": rollup_monthly_cells,
           "daily_cell_totals": rollup_daily_cell_totals, "monthly_cell_totals": rollup_monthly_cell_totals}
ROLLUP_KEYS = {"hourly": ("hour", "station_id", "incident_type"),
               "daily": ("day", "station_id", "incident_type"),
               "daily_cells": ("day", "cell", "station_id", "incident_type"),
               "monthly_cells": ("month", "cell", "station_id", "incident_type"),
               "daily_cell_totals": ("day", "cell", "station_id"),
               "monthly_cell_totals": ("month", "cell", "station_id")}


def _fact_row(fact: ReportFact) -> dict:
    return {c: getattr(fact, c) for c in FACT_COLUMNS if c != "load_id"}


def _fact_of(row) -> ReportFact:
    m = row._mapping
    return ReportFact(**{c: m[c] for c in FACT_COLUMNS if c != "load_id"})


class FactRepository:
    """Live reports' fact rows, found through report_keys."""

    def __init__(self, conn):
        self.conn = conn

    def lock(self, report: str) -> None:
        """Serialises the feeds' work on one report until the transaction ends (an outcome from
        dispatch and the report from intake may arrive at the same moment)."""
        self.conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:r, 110))"), {"r": report})

    def get(self, report: str) -> ReportFact | None:
        at = self.conn.execute(select(report_keys.c.receive_time).where(report_keys.c.report == report)).scalar()
        if at is None:
            return None
        row = self.conn.execute(select(report_facts).where(
            report_facts.c.report == report, report_facts.c.receive_time == at,
            report_facts.c.load_id.is_(None))).first()
        return _fact_of(row) if row is not None else None

    def add(self, fact: ReportFact) -> None:
        self.conn.execute(insert_once(report_keys, ("report", "receive_time"), None),
                          {"report": fact.report, "receive_time": fact.receive_time})
        row = _fact_row(fact)
        self.conn.execute(insert_once(report_facts, tuple(row), None), row)

    def save(self, fact: ReportFact) -> None:
        row = _fact_row(fact)
        row.pop("report")
        row.pop("receive_time")
        self.conn.execute(report_facts.update().where(
            report_facts.c.report == fact.report, report_facts.c.receive_time == fact.receive_time,
            report_facts.c.load_id.is_(None)).values(**row))


class OutcomeRepository:
    """Outcomes waiting for their report."""

    def __init__(self, conn):
        self.conn = conn

    def take(self, report: str) -> Outcome | None:
        row = self.conn.execute(pending_outcomes.delete().where(pending_outcomes.c.report == report)
                                .returning(*[c for c in pending_outcomes.c if c.name != "create_time"])).first()
        return Outcome(**{k: v for k, v in row._mapping.items()}) if row is not None else None

    def put(self, outcome: Outcome) -> None:
        row = self.conn.execute(select(pending_outcomes).where(pending_outcomes.c.report == outcome.report)
                                .with_for_update()).first()
        if row is not None:
            waiting = Outcome(**{k: v for k, v in row._mapping.items() if k != "create_time"})
            outcome = waiting.merged_with(outcome)
        values = {f: getattr(outcome, f) for f in ("hand_off_time", "arrival_time", "close_time", "arrival_target_s",
                                                   "referred", "dispatch_case", "work_order")}
        self.conn.execute(insert(pending_outcomes).values(report=outcome.report, **values)
                          .on_conflict_do_update(index_elements=["report"], set_=values))


class RollupRepository:
    """The rollups, moved by a fact's changes."""

    def __init__(self, conn):
        self.conn = conn

    def apply(self, changes: list[RollupChange], centers: dict[int, tuple[float, float]]) -> None:
        """Adds each change's delta at its key; `centers` gives the cells' centres (cell rollups)."""
        for ch in changes:
            key = dict(zip(ROLLUP_KEYS[ch.rollup], ch.key))
            if ch.rollup in CELL_ROLLUPS:
                key["longitude"], key["latitude"] = centers[key["cell"]]
            self.conn.execute(_upsert(ch.rollup, tuple(key), tuple(ch.delta)), {**key, **ch.delta})


@functools.lru_cache(maxsize=256)
def _upsert(rollup: str, keys: tuple[str, ...], deltas: tuple[str, ...]):
    """A rollup's add-at-key statement for these columns, compiled once (run on every fact change)."""
    table = ROLLUPS[rollup]
    stmt = insert(table).values({c: bindparam(c, type_=table.c[c].type) for c in (*keys, *deltas)})
    return compiled_once(stmt.on_conflict_do_update(
        index_elements=list(ROLLUP_KEYS[rollup]), set_={k: table.c[k] + stmt.excluded[k] for k in deltas}))


class PartitionRepository:
    """The fact table's month partitions."""

    def __init__(self, conn):
        self.conn = conn

    def existing(self) -> set[str]:
        return set(self.conn.execute(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = p.relnamespace "
            "WHERE n.nspname = :s AND p.relname = 'report_facts'"), {"s": SCHEMA}).scalars())

    def ensure(self, partitions: list[Partition]) -> list[str]:
        """Creates the partitions not there yet; rows of their months waiting in the default partition
        move into them. Returns the names created."""
        have = self.existing()
        created = []
        for p in partitions:
            if p.name in have:
                continue
            bounds = {"a": p.start, "b": p.end}
            # A lock on the parent first: two workers creating the same month wait for each other.
            self.conn.execute(text(f"LOCK TABLE {SCHEMA}.report_facts IN SHARE UPDATE EXCLUSIVE MODE"))
            if p.name in self.existing():
                continue
            self.create(p)
            self.conn.execute(text(
                f"WITH moved AS (DELETE FROM {SCHEMA}.report_facts_default WHERE receive_time >= :a "
                f"AND receive_time < :b RETURNING *) INSERT INTO {SCHEMA}.{p.name} SELECT * FROM moved"), bounds)
            self.attach(p)
            created.append(p.name)
        return created

    def create(self, p: Partition) -> None:
        """The month's table, shaped as the fact table, not yet attached (filled first, then attached)."""
        self.conn.execute(text(
            f"CREATE TABLE {SCHEMA}.{p.name} (LIKE {SCHEMA}.report_facts INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"))

    def attach(self, p: Partition) -> None:
        self.conn.execute(text(
            f"ALTER TABLE {SCHEMA}.report_facts ATTACH PARTITION {SCHEMA}.{p.name} "
            f"FOR VALUES FROM ('{p.start.isoformat()}') TO ('{p.end.isoformat()}')"))


class ArchiveRepository:
    """Month partitions out to archive files and back (retention, `workers.archive_partitions`)."""

    def __init__(self, conn):
        self.conn = conn
        self.partitions = PartitionRepository(conn)

    def attached(self) -> list[str]:
        return sorted(self.partitions.existing() - {"report_facts_default"})

    def lock(self) -> bool:
        """One archiver at a time across replicas, for this transaction; False when another has it."""
        return bool(self.conn.execute(text("SELECT pg_try_advisory_xact_lock(hashtextextended('warehouse-archive', 110))"))
                    .scalar())

    def rows(self, p: Partition, batch: int):
        """The partition's rows (the fact table's columns, in order), `batch` at a time from a
        server-side cursor, in receive-time order."""
        result = self.conn.execute(text(
            f"SELECT {', '.join(c.name for c in report_facts.columns)} FROM {SCHEMA}.{p.name} "
            f"ORDER BY receive_time, report"), execution_options={"stream_results": True, "yield_per": batch})
        for group in result.partitions(batch):
            yield [tuple(r) for r in group]

    def count(self, p: Partition) -> int:
        return self.conn.execute(text(f"SELECT count(*) FROM {SCHEMA}.{p.name}")).scalar()

    def drop(self, p: Partition, *, path: str, rows: int, sha256: str, at: datetime) -> None:
        """Detaches and drops the archived partition, forgets its live reports' keys and records the
        archive (a partition archived before and attached again is recorded anew)."""
        self.conn.execute(text(f"ALTER TABLE {SCHEMA}.report_facts DETACH PARTITION {SCHEMA}.{p.name}"))
        self.conn.execute(text(f"DROP TABLE {SCHEMA}.{p.name}"))
        self.conn.execute(report_keys.delete().where(report_keys.c.receive_time >= p.start,
                                                     report_keys.c.receive_time < p.end))
        row = dict(name=p.name, start_time=p.start, end_time=p.end, path=path, rows=rows, sha256=sha256,
                   archive_time=at, reattach_time=None)
        stmt = insert(archived_partitions).values(**row)
        self.conn.execute(stmt.on_conflict_do_update(index_elements=["name"], set_=row))

    def archived(self, name: str | None = None) -> list:
        q = select(archived_partitions).order_by(archived_partitions.c.start_time)
        if name is not None:
            q = q.where(archived_partitions.c.name == name)
        return list(self.conn.execute(q))

    def archived_horizon(self) -> datetime | None:
        """The end of the latest month archived and not attached again (reports before it are archived)."""
        return self.conn.execute(select(func.max(archived_partitions.c.end_time))
                                 .where(archived_partitions.c.reattach_time.is_(None))).scalar()

    def restore(self, p: Partition, at: datetime, *, csv_chunks=None, row_groups=None) -> int:
        """Creates the partition again from its archive, attaches it, puts back its live reports' keys
        and marks it attached; returns how many rows. The archive is a Parquet file's `row_groups`
        (lists of row tuples in the fact table's column order) or, for a month archived before Parquet,
        a gzip'd CSV's `csv_chunks` (bytes, with a header line)."""
        self.partitions.create(p)
        raw = self.conn.connection.dbapi_connection
        columns = ", ".join(c.name for c in report_facts.columns)
        with raw.cursor() as cur:
            if row_groups is not None:
                with cur.copy(f"COPY {SCHEMA}.{p.name} ({columns}) FROM STDIN") as copy:
                    for group in row_groups:
                        for row in group:
                            copy.write_row(row)
            else:
                with cur.copy(f"COPY {SCHEMA}.{p.name} FROM STDIN WITH (FORMAT csv, HEADER)") as copy:
                    for chunk in csv_chunks:
                        copy.write(chunk)
        self.partitions.attach(p)
        self.conn.execute(text(
            f"INSERT INTO {SCHEMA}.report_keys (report, receive_time) SELECT report, receive_time "
            f"FROM {SCHEMA}.{p.name} WHERE load_id IS NULL ON CONFLICT DO NOTHING"))
        self.conn.execute(archived_partitions.update().where(archived_partitions.c.name == p.name)
                          .values(reattach_time=at))
        return self.count(p)


class Repositories:
    """The warehouse's repositories on one transaction's connection (`uow.repos`)."""

    def __init__(self, conn):
        self.facts = FactRepository(conn)
        self.outcomes = OutcomeRepository(conn)
        self.rollups = RollupRepository(conn)
        self.partitions = PartitionRepository(conn)
        self.archive = ArchiveRepository(conn)


# -- the bulk load ----------------------------------------------------------------------------

class LoadRepository:
    """Bulk loads: their runs, COPY of a batch of facts, the set-based rollups after."""

    def __init__(self, conn):
        self.conn = conn

    def start(self, *, reports: int, years: int, seed: int, end_time: datetime, batch_size: int,
              source: str | None = None, source_sha256: str | None = None) -> int:
        return self.conn.execute(insert(load_runs).values(
            reports=reports, years=years, seed=seed, end_time=end_time, batch_size=batch_size, source=source,
            source_sha256=source_sha256).returning(load_runs.c.load_id)).scalar_one()

    def unfinished_import(self, sha256: str):
        """The latest unfinished import of the file with this digest, if any."""
        return self.conn.execute(select(load_runs).where(load_runs.c.state == "LOADING",
                                                         load_runs.c.source_sha256 == sha256)
                                 .order_by(load_runs.c.load_id.desc()).limit(1)).first()

    def get(self, load_id: int):
        return self.conn.execute(select(load_runs).where(load_runs.c.load_id == load_id)).first()

    def latest_unfinished(self):
        return self.conn.execute(select(load_runs).where(load_runs.c.state == "LOADING",
                                                         load_runs.c.source.is_(None))
                                 .order_by(load_runs.c.load_id.desc()).limit(1)).first()

    def any_finished(self) -> bool:
        return self.conn.execute(select(func.count()).select_from(load_runs)
                                 .where(load_runs.c.state == "ROLLED_UP")).scalar() > 0

    def copy_batch(self, load_id: int, batch: int, rows: int, lines: bytes, skipped: int = 0) -> None:
        """Writes one batch of fact rows (COPY text format, FACT_COLUMNS order) and moves the load's
        cursor past it, in the caller's transaction: a batch is in, with its cursor, or not at all."""
        raw = self.conn.connection.dbapi_connection
        with raw.cursor() as cur:
            with cur.copy(f"COPY {SCHEMA}.report_facts ({', '.join(FACT_COLUMNS)}) FROM STDIN") as copy:
                copy.write(lines)
        self.conn.execute(load_runs.update().where(load_runs.c.load_id == load_id, load_runs.c.batches_done == batch)
                          .values(batches_done=batch + 1, rows_loaded=load_runs.c.rows_loaded + rows,
                                  rows_skipped=load_runs.c.rows_skipped + skipped, update_time=func.now()))

    def build_rollups(self, load_id: int, built: Callable[[str], None] = lambda table: None) -> None:
        """Adds the load's facts to the rollups in six set-based statements, and marks it done;
        `built(table)` after each rollup (a long load's progress)."""
        sums = ", ".join(f"{m} = r.{m} + EXCLUDED.{m}" for m in MEASURES)
        for table, period, bucket in (("rollup_hourly", "hour", "date_trunc('hour', receive_time)"),
                                      ("rollup_daily", "day", "(receive_time AT TIME ZONE 'Asia/Shanghai')::date")):
            self.conn.execute(text(f"""
                INSERT INTO {SCHEMA}.{table} AS r ({period}, station_id, incident_type, {', '.join(MEASURES)})
                SELECT {bucket}, station_id, incident_type, count(*),
                       count(answer_time),
                       count(*) FILTER (WHERE answer_time - receive_time <= interval '3 seconds'),
                       count(hand_off_time),
                       count(*) FILTER (WHERE hand_off_time - coalesce(answer_time, receive_time)
                                        <= interval '30 seconds'),
                       count(arrival_time),
                       count(*) FILTER (WHERE arrival_time - receive_time
                                        <= make_interval(secs => coalesce(arrival_target_s, 300))),
                       count(*) FILTER (WHERE merged),
                       count(*) FILTER (WHERE satisfaction <> ''),
                       count(*) FILTER (WHERE satisfaction IN ('SATISFIED', 'BASICALLY_SATISFIED')),
                       count(*) FILTER (WHERE referred),
                       count(close_time)
                FROM {SCHEMA}.report_facts WHERE load_id = :id
                GROUP BY 1, 2, 3
                ON CONFLICT ({period}, station_id, incident_type) DO UPDATE SET {sums}"""), {"id": load_id})
            built(table)
        centres = {c: cell_center(c) for c in self.conn.execute(text(
            f"SELECT DISTINCT h3_r8 FROM {SCHEMA}.report_facts WHERE load_id = :id AND h3_r8 IS NOT NULL"),
            {"id": load_id}).scalars()}
        cells = list(centres)
        arrays = {"id": load_id, "cells": cells, "lngs": [centres[c][0] for c in cells],
                  "lats": [centres[c][1] for c in cells]}
        day = "(receive_time AT TIME ZONE 'Asia/Shanghai')::date"
        month = "date_trunc('month', receive_time AT TIME ZONE 'Asia/Shanghai')::date"
        for table, period, bucket, typed in (("rollup_daily_cells", "day", day, True),
                                             ("rollup_monthly_cells", "month", month, True),
                                             ("rollup_daily_cell_totals", "day", day, False),
                                             ("rollup_monthly_cell_totals", "month", month, False)):
            kind, g_kind, kind_group, key = (
                (", incident_type", ", g.incident_type", ", 4", f"{period}, cell, station_id, incident_type")
                if typed else ("", "", "", f"{period}, cell, station_id"))
            self.conn.execute(text(f"""
                INSERT INTO {SCHEMA}.{table} AS r ({key}, longitude, latitude, reports)
                SELECT g.b, g.cell, g.station_id{g_kind}, c.lng, c.lat, g.n
                FROM (SELECT {bucket} AS b, h3_r8 AS cell, station_id{kind}, count(*) AS n
                      FROM {SCHEMA}.report_facts WHERE load_id = :id AND h3_r8 IS NOT NULL
                      GROUP BY 1, 2, 3{kind_group}) g
                JOIN unnest(CAST(:cells AS bigint[]), CAST(:lngs AS float8[]), CAST(:lats AS float8[]))
                     AS c(cell, lng, lat) ON c.cell = g.cell
                ON CONFLICT ({key}) DO UPDATE SET reports = r.reports + EXCLUDED.reports
                """), arrays)
            built(table)
        self.conn.execute(load_runs.update().where(load_runs.c.load_id == load_id)
                          .values(state="ROLLED_UP", update_time=func.now()))

    def analyze(self) -> None:
        """Fresh planner statistics of the rollups after a load (autovacuum analyses the partitions)."""
        for name in (t.name for t in ROLLUPS.values()):
            self.conn.execute(text(f"ANALYZE {SCHEMA}.{name}"))

    def sizes(self) -> dict[str, int]:
        """Bytes on disk of the fact table (all partitions, with indexes) and each rollup."""
        out = {"report_facts": int(self.conn.execute(text(
            "SELECT coalesce(sum(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i "
            "WHERE i.inhparent = CAST(:t AS regclass)"), {"t": f"{SCHEMA}.report_facts"}).scalar())}
        for name in (t.name for t in ROLLUPS.values()):
            out[name] = int(self.conn.execute(text("SELECT pg_total_relation_size(CAST(:t AS regclass))"),
                                              {"t": f"{SCHEMA}.{name}"}).scalar())
        return out


def _arrow_type(column) -> pa.DataType:
    t = column.type
    if isinstance(t, DateTime):
        return parquet.UTC_TIME
    if isinstance(t, Boolean):
        return pa.bool_()
    if isinstance(t, Float):
        return pa.float64()
    if isinstance(t, SmallInteger):
        return pa.int16()
    if isinstance(t, BigInteger):
        return pa.int64()
    if isinstance(t, Integer):
        return pa.int32()
    if isinstance(t, (String, Text)):
        return pa.string()
    raise TypeError(f"no Parquet type for column {column.name} ({t})")


def parquet_schema(table: Table) -> pa.Schema:
    """A table's columns as a Parquet schema, in the table's column order (the retention archive's)."""
    return pa.schema([pa.field(c.name, _arrow_type(c), nullable=c.nullable) for c in table.columns])
