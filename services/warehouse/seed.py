"""The warehouse's sample data and bulk load: a generated history of reports (domain/history.py).

`python -m services.warehouse load --reports N --years Y [--seed S] [--batch-size B] [--resume LOAD_ID]`
loads N reports over the Y years up to today with COPY, one batch per transaction with the load's cursor,
printing progress and rate; an interrupted load resumes where it stopped (`--resume`, or the same command
again: an unfinished load with the same size, years and seed is picked up). The rollups are built after the
last batch, set-based, in one transaction. `seed` (run by `make run`) loads WAREHOUSE_HISTORY_REPORTS
(default 50,000) over WAREHOUSE_HISTORY_YEARS (default 2) once.
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone

from services.runtime import db
from services.runtime.app import Runtime
from services.runtime.config import env_int, env_str

from . import domain
from .domain import history
from .store import LoadRepository, PartitionRepository

DEFAULT_BATCH = 50_000


@dataclass(frozen=True)
class LoadSummary:
    load_id: int
    rows: int
    seconds: float
    rows_per_second: float
    rollup_seconds: float
    resumed_from_batch: int


def load(engine, *, reports: int, years: int, seed: int = 110, batch_size: int = DEFAULT_BATCH,
         end: datetime | None = None, resume: int | None = None, out=print) -> LoadSummary:
    """Loads a generated history (see the module's doc); returns what it did."""
    with engine.begin() as conn:
        runs = LoadRepository(conn)
        run = runs.get(resume) if resume else runs.latest_unfinished()
        if resume and run is None:
            raise SystemExit(f"no load {resume}")
        if run is not None and not resume and (run.reports, run.years, run.seed) != (reports, years, seed):
            run = None
        if run is None:
            end = end or datetime.now(timezone.utc)
            load_id = runs.start(reports=reports, years=years, seed=seed, end_time=end, batch_size=batch_size)
            run = runs.get(load_id)
        first, last = history.months_spanned(run.end_time, run.years)
        PartitionRepository(conn).ensure(domain.partitions_between(first, last))
    sizes = history.batches(run.reports, run.batch_size)
    start_batch = run.batches_done
    if start_batch:
        out(f"load {run.load_id}: resuming at batch {start_batch + 1} of {len(sizes)}")
    else:
        out(f"load {run.load_id}: {run.reports:,} reports over {run.years} years in {len(sizes)} batches")
    t0 = time.monotonic()
    done = 0

    def generate(b: int) -> bytes:
        return history.batch_lines(load_id=run.load_id, seed=run.seed, batch=b, rows=sizes[b], end=run.end_time,
                                   years=run.years)

    # The next batch is generated while the database takes this one (COPY waits on the socket, not the GIL).
    with ThreadPoolExecutor(max_workers=1) as pool:
        upcoming = pool.submit(generate, start_batch) if start_batch < len(sizes) else None
        for b in range(start_batch, len(sizes)):
            lines = upcoming.result()
            upcoming = pool.submit(generate, b + 1) if b + 1 < len(sizes) else None
            with engine.begin() as conn:
                LoadRepository(conn).copy_batch(run.load_id, b, sizes[b], lines)
            done += sizes[b]
            elapsed = time.monotonic() - t0
            loaded = sum(sizes[: b + 1])
            out(f"  batch {b + 1}/{len(sizes)}: {loaded:,}/{run.reports:,} rows "
                f"({100 * loaded / run.reports:.0f}%), {history.rate(done, elapsed):,.0f} rows/s")
    seconds = time.monotonic() - t0
    t1 = time.monotonic()
    with engine.begin() as conn:
        runs = LoadRepository(conn)
        if runs.get(run.load_id).state != "ROLLED_UP":
            runs.build_rollups(run.load_id)
    with engine.connect() as conn:
        LoadRepository(conn).analyze()
        conn.commit()
    rollup_seconds = time.monotonic() - t1
    out(f"load {run.load_id}: {done:,} rows in {seconds:.1f}s ({history.rate(done, seconds):,.0f} rows/s), "
        f"rollups in {rollup_seconds:.1f}s")
    return LoadSummary(run.load_id, done, seconds, history.rate(done, seconds), rollup_seconds, start_batch)


def load_command(args: list[str]) -> None:
    """`python -m services.warehouse load ...` (DATABASE_URL: the warehouse's database)."""
    p = argparse.ArgumentParser(prog="python -m services.warehouse load",
                                description="Loads a generated history of reports into the warehouse.")
    p.add_argument("--reports", type=int, default=1_000_000)
    p.add_argument("--years", type=int, default=3)
    p.add_argument("--seed", type=int, default=110)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    p.add_argument("--resume", type=int, default=None, help="the load id to continue")
    a = p.parse_args(args)
    if a.reports <= 0 or a.years <= 0 or a.batch_size <= 0:
        p.error("--reports, --years and --batch-size must be positive")
    url = env_str("DATABASE_URL")
    if not url:
        raise SystemExit("configuration error: DATABASE_URL is required")
    engine = db.make_engine(url, pool_size=2, application_name="warehouse-load")
    try:
        load(engine, reports=a.reports, years=a.years, seed=a.seed, batch_size=a.batch_size, resume=a.resume,
             out=lambda line: print(line, flush=True))
    finally:
        engine.dispose()


def seed(rt: Runtime) -> None:
    """The sample history, once (a finished load is kept; an unfinished one resumes)."""
    reports = env_int("WAREHOUSE_HISTORY_REPORTS", 50_000)
    years = env_int("WAREHOUSE_HISTORY_YEARS", 2)
    with rt.engine.connect() as conn:
        runs = LoadRepository(conn)
        finished = runs.latest_unfinished() is None and runs.any_finished()
    if reports <= 0 or finished:
        return
    load(rt.engine, reports=reports, years=years, out=lambda line: print(line, file=sys.stderr, flush=True))
