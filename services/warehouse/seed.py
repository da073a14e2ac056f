"""The warehouse's sample data and bulk load: a generated history of reports (domain/history.py).

`python -m services.warehouse load --reports N --years Y [--seed S] [--batch-size B] [--resume LOAD_ID]`
(or `load --from-csv FILE [--batch-size B] [--max-bad N]`: another 110 system's history, `import_csv`)
loads N reports over the Y years up to today with COPY, one batch per transaction with the load's cursor,
printing progress and rate; an interrupted load resumes where it stopped (`--resume`, or the same command
again: an unfinished load with the same size, years and seed is picked up). The rollups are built after the
last batch, set-based, in one transaction. `seed` (run by `make run`) loads WAREHOUSE_HISTORY_REPORTS
(default 50,000) over WAREHOUSE_HISTORY_YEARS (default 2) once.
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from services.runtime import db
from services.runtime.app import Runtime
from services.runtime.config import env_int, env_str

from . import domain
from .domain import exchange, history
from .store import FACT_COLUMNS, ROLLUPS, LoadRepository, PartitionRepository

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
    rollup_seconds = _roll_up(engine, run.load_id, out)
    out(f"load {run.load_id}: {done:,} rows in {seconds:.1f}s ({history.rate(done, seconds):,.0f} rows/s), "
        f"rollups in {rollup_seconds:.1f}s")
    return LoadSummary(run.load_id, done, seconds, history.rate(done, seconds), rollup_seconds, start_batch)


def _roll_up(engine, load_id: int, out: Callable[[str], None]) -> float:
    """Builds the load's rollups once (set-based, one transaction) and analyses them, saying as each
    rollup is built; the seconds taken."""
    t1 = time.monotonic()
    names = [t.name for t in ROLLUPS.values()]
    with engine.begin() as conn:
        runs = LoadRepository(conn)
        if runs.get(load_id).state != "ROLLED_UP":
            out(f"load {load_id}: building {len(names)} rollups")
            made: list[str] = []

            def built(table: str) -> None:
                made.append(table)
                out(f"  rollup {len(made)}/{len(names)}: {table} ({time.monotonic() - t1:.1f}s)")

            runs.build_rollups(load_id, built)
    with engine.connect() as conn:
        LoadRepository(conn).analyze()
        conn.commit()
    return time.monotonic() - t1


# -- importing another 110 system's history (domain/exchange.py's CSV layout) ------------------------

@dataclass(frozen=True)
class ImportSummary:
    load_id: int
    lines: int  # data lines in the file
    rows: int  # loaded in this run
    skipped: list  # exchange.BadRow of this run's batches (the first MAX_BAD_KEPT)
    skipped_count: int
    resumed_from_batch: int
    seconds: float
    rows_per_second: float


MAX_BAD_KEPT = 1000


def _file_digest_and_lines(path: Path) -> tuple[str, int, list[str]]:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        problems = exchange.header_problems(header)
        if problems:
            raise SystemExit(f"{path}: " + "; ".join(problems))
        lines = sum(1 for _ in reader)
    return digest.hexdigest(), lines, [h.strip() for h in header]


def import_csv(engine, path: Path | str, *, batch_size: int = DEFAULT_BATCH, max_bad: int | None = None,
               out=print) -> ImportSummary:
    """Imports a CSV file in the exchange layout through the bulk load's path: `batch_size` data lines a
    batch, each checked line by line (a bad line is reported with its line number and skipped), the good
    ones written with COPY in one transaction with the load's cursor; the rollups built after the last.
    The same file again (same SHA-256) resumes an unfinished import. More than `max_bad` bad lines in all
    stop it (the batch that crossed the limit is not written): a file mostly refused is of another layout.
    A file without the required columns is refused before anything is written."""
    path = Path(path)
    sha, lines, header = _file_digest_and_lines(path)
    with engine.begin() as conn:
        runs = LoadRepository(conn)
        run = runs.unfinished_import(sha)
        if run is None:
            load_id = runs.start(reports=lines, years=0, seed=0, end_time=datetime.now(timezone.utc),
                                 batch_size=batch_size, source=str(path), source_sha256=sha)
            run = runs.get(load_id)
    sizes = history.batches(lines, run.batch_size) if lines else []
    start_batch = run.batches_done
    skipped_before = run.rows_skipped
    if start_batch:
        out(f"import {run.load_id}: {path}: resuming at batch {start_batch + 1} of {len(sizes)}")
    else:
        out(f"import {run.load_id}: {path}: {lines:,} lines in {len(sizes)} batches")
    t0 = time.monotonic()
    done, bad_count, kept = 0, 0, []
    with path.open(encoding="utf-8-sig", newline="") as f:
        reader = csv.reader(f)
        next(reader)
        for b, size in enumerate(sizes):
            block = []
            for _ in range(size):
                r = next(reader)
                block.append((reader.line_num, r))
            if b < start_batch:
                continue
            good, bad = [], []
            for line, r in block:
                parsed = (exchange.parse_row(line, dict(zip(header, r))) if len(r) == len(header) else
                          exchange.BadRow(line, (("line", f"has {len(r)} fields, the header {len(header)}"),)))
                (bad if isinstance(parsed, exchange.BadRow) else good).append(parsed)
            for row in bad:
                out(f"  skipped {row}")
            bad_count += len(bad)
            kept += bad[: max(0, MAX_BAD_KEPT - len(kept))]
            if max_bad is not None and skipped_before + bad_count > max_bad:
                raise SystemExit(f"import {run.load_id}: more than {max_bad} bad lines; stopped before batch "
                                 f"{b + 1} (batches before it are in; fix the file and import it as a new one)")
            body = "".join(exchange.copy_line(fact, FACT_COLUMNS, run.load_id) for fact in good).encode()
            with engine.begin() as conn:
                if good:
                    times = [fact.receive_time for fact in good]
                    PartitionRepository(conn).ensure(domain.partitions_between(min(times), max(times)))
                LoadRepository(conn).copy_batch(run.load_id, b, len(good), body, skipped=len(bad))
            done += len(good)
            loaded = sum(sizes[: b + 1])
            out(f"  batch {b + 1}/{len(sizes)}: {loaded:,}/{lines:,} lines ({100 * loaded / lines:.0f}%), "
                f"{len(bad)} skipped, {history.rate(done, time.monotonic() - t0):,.0f} rows/s")
    seconds = time.monotonic() - t0
    rollup_seconds = _roll_up(engine, run.load_id, out)
    out(f"import {run.load_id}: {done:,} rows in {seconds:.1f}s ({history.rate(done, seconds):,.0f} rows/s), "
        f"{bad_count:,} lines skipped, rollups in {rollup_seconds:.1f}s")
    return ImportSummary(run.load_id, lines, done, kept, bad_count, start_batch, seconds,
                         history.rate(done, seconds))


def load_command(args: list[str]) -> None:
    """`python -m services.warehouse load ...` (DATABASE_URL: the warehouse's database)."""
    p = argparse.ArgumentParser(prog="python -m services.warehouse load",
                                description="Loads a generated history of reports into the warehouse, or "
                                            "imports another 110 system's history from a CSV file.")
    p.add_argument("--reports", type=int, default=1_000_000)
    p.add_argument("--years", type=int, default=3)
    p.add_argument("--seed", type=int, default=110)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    p.add_argument("--resume", type=int, default=None, help="the load id to continue")
    p.add_argument("--from-csv", metavar="FILE", default=None,
                   help="import FILE (the exchange layout, README) instead of generating; the same file again resumes")
    p.add_argument("--max-bad", type=int, default=None, help="stop an import after more than N bad lines")
    a = p.parse_args(args)
    if a.from_csv and not Path(a.from_csv).is_file():
        p.error(f"--from-csv: no file {a.from_csv}")
    if a.reports <= 0 or a.years <= 0 or a.batch_size <= 0:
        p.error("--reports, --years and --batch-size must be positive")
    url = env_str("DATABASE_URL")
    if not url:
        raise SystemExit("configuration error: DATABASE_URL is required")
    engine = db.make_engine(url, pool_size=2, application_name="warehouse-load")
    try:
        say = lambda line: print(line, flush=True)  # noqa: E731
        if a.from_csv:
            import_csv(engine, a.from_csv, batch_size=a.batch_size, max_bad=a.max_bad, out=say)
        else:
            load(engine, reports=a.reports, years=a.years, seed=a.seed, batch_size=a.batch_size, resume=a.resume,
                 out=say)
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
