"""The warehouse's background work: the partition maintenance job and retention.

Every PARTITION_SECONDS it makes sure the fact table has this month's partition and the next
MONTHS_AHEAD (domain), moving any rows of those months out of the default partition. Several replicas
may run it: the lock on the parent table makes them take turns, and a month created already is left.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import logging
import os
from pathlib import Path

from services.runtime.app import Runtime
from services.runtime.config import env_int, env_str
from services.runtime.errors import FailedPrecondition

from . import domain, handlers, parquet, store

log = logging.getLogger("smart110.warehouse.workers")

PARTITION_SECONDS = 6 * 3600.0
# Retention (留存): month partitions older than WAREHOUSE_RETENTION_MONTHS are written to
# WAREHOUSE_ARCHIVE_DIR as Parquet files (the fact table's columns, zstd-compressed) and dropped; the
# rollups keep counting them, so the big screen's history and trends are unchanged. Months archived
# before Parquet are gzip'd CSV files (a header line, the fact table's columns); reattach reads both.
RETENTION_MONTHS = 36
ARCHIVE_DIR = "build/warehouse-archive"
CHUNK = 1 << 20


def maintain_partitions(rt: Runtime) -> list[str]:
    """One round at the runtime's clock (tests call it); returns the partitions created."""
    with rt.transaction() as uow:
        return handlers.prepare_partitions(uow)


# -- retention and archive -------------------------------------------------------------------------

def archive_partitions(rt: Runtime, *, keep_months: int, directory: Path, say=log.info) -> list[str]:
    """Archives the month partitions older than `keep_months`: each is written to `directory` as
    report_facts_YYYYMM.parquet, read back and counted, then detached and dropped, in one transaction
    per partition (a failure leaves it attached). Returns the partitions archived."""
    directory.mkdir(parents=True, exist_ok=True)
    with rt.transaction() as uow:
        attached = uow.repos.archive.attached()
    due = domain.partitions_to_archive(attached, rt.clock(), keep_months)
    schema = store.parquet_schema(store.report_facts)
    done = []
    for p in due:
        path = directory / f"{p.name}.parquet"
        part = path.with_suffix(".parquet.part")
        with rt.transaction() as uow:
            if not uow.repos.archive.lock():
                say(f"archive: another replica is archiving; {p.name} is left for it")
                break
            with part.open("wb") as out:
                written = parquet.write(out, schema, uow.repos.archive.rows(p, parquet.ROW_GROUP))
            rows = uow.repos.archive.count(p)
            read_back = parquet.count_rows(part)
            if not written == read_back == rows:
                part.unlink()
                raise RuntimeError(f"archive of {p.name}: {rows} rows in the partition, {written} written, "
                                   f"{read_back} read back")
            digest = _file_digest(part, open)
            os.replace(part, path)
            uow.repos.archive.drop(p, path=str(path), rows=rows, sha256=digest, at=rt.clock())
        say(f"archive: {p.name} ({rows:,} rows) -> {path}")
        done.append(p.name)
    return done


def reattach_partition(rt: Runtime, month: str, *, say=log.info) -> int:
    """Attaches an archived month (YYYY-MM) again from its file, checked against the recorded digest
    and row count; returns how many rows came back. A Parquet file's digest is of the file; a gzip'd
    CSV's (archived before Parquet) of its uncompressed text."""
    p = domain.partition_of_month(month)
    with rt.transaction() as uow:
        [record] = uow.repos.archive.archived(p.name) or [None]
        if record is None or record.reattach_time is not None:
            raise FailedPrecondition(f"{p.name} is not archived", reason="NOT_ARCHIVED")
        path = Path(record.path)
        legacy = path.name.endswith(".csv.gz")
        # The file is checked whole before any of it is loaded: a changed file never reaches COPY.
        if _file_digest(path, gzip.open if legacy else open) != record.sha256:
            raise RuntimeError(f"{path} does not match the archive's digest: it changed since it was written")
        if legacy:
            with gzip.open(path, "rb") as f:
                rows = uow.repos.archive.restore(p, rt.clock(), csv_chunks=iter(lambda: f.read(CHUNK), b""))
        else:
            columns = [c.name for c in store.report_facts.columns]
            rows = uow.repos.archive.restore(p, rt.clock(), row_groups=parquet.read_rows(path, columns))
        if rows != record.rows:
            raise RuntimeError(f"{path} holds {rows} rows, the archive recorded {record.rows}")
    say(f"reattach: {p.name} ({rows:,} rows) <- {path}")
    return rows


def _file_digest(path: Path, opener) -> str:
    digest = hashlib.sha256()
    with opener(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def archive_round(rt: Runtime) -> list[str]:
    """The periodic retention job (WAREHOUSE_RETENTION_MONTHS, WAREHOUSE_ARCHIVE_DIR)."""
    return archive_partitions(rt, keep_months=env_int("WAREHOUSE_RETENTION_MONTHS", RETENTION_MONTHS),
                              directory=Path(env_str("WAREHOUSE_ARCHIVE_DIR", ARCHIVE_DIR)))


# -- the commands (python -m services.warehouse archive|reattach) -----------------------------------

def archive_command(rt: Runtime, args: list[str]) -> None:
    """`archive [--keep-months N] [--dir DIR]`: archives the months older than the retention now (what
    the daily job does)."""
    p = argparse.ArgumentParser(prog="python -m services.warehouse archive",
                                description="Archives the fact table's month partitions older than the retention.")
    p.add_argument("--keep-months", type=int, default=env_int("WAREHOUSE_RETENTION_MONTHS", RETENTION_MONTHS))
    p.add_argument("--dir", default=env_str("WAREHOUSE_ARCHIVE_DIR", ARCHIVE_DIR))
    a = p.parse_args(args)
    if a.keep_months < 0:
        p.error("--keep-months must not be negative")
    done = archive_partitions(rt, keep_months=a.keep_months, directory=Path(a.dir),
                              say=lambda line: print(line, flush=True))
    print(f"archived {len(done)} partition(s)" + (": " + ", ".join(done) if done else ""), flush=True)


def reattach_command(rt: Runtime, args: list[str]) -> None:
    """`reattach YYYY-MM`: attaches an archived month again from its file."""
    p = argparse.ArgumentParser(prog="python -m services.warehouse reattach",
                                description="Attaches an archived month of the fact table again from its file.")
    p.add_argument("month", help="the month, YYYY-MM")
    a = p.parse_args(args)
    try:
        reattach_partition(rt, a.month, say=lambda line: print(line, flush=True))
    except ValueError:
        p.error(f"month must be YYYY-MM, not {a.month!r}")
    except FailedPrecondition as exc:
        raise SystemExit(f"reattach: {exc.message}") from None
