"""Apache Parquet files of the warehouse: the export of a slice (ExportReports with
EXPORT_FORMAT_PARQUET) and the retention archive of a month partition (workers).

Both are written a row group at a time from rows the database streams, so a month of millions of
rows is never held whole in memory. The export's columns are the exchange layout's
(domain/exchange.py), typed; the archive's are the fact table's own, so a month read back is the
rows it held.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

CONTENT_TYPE = "application/vnd.apache.parquet"
ROW_GROUP = 64 * 1024
COMPRESSION = "zstd"
UTC_TIME = pa.timestamp("us", tz="UTC")

# The exchange layout's columns, typed (the CSV export writes the same columns as text).
_EXPORT_TYPES = {
    "priority": pa.int16(), "longitude": pa.float64(), "latitude": pa.float64(), "merged": pa.bool_(),
    "referred": pa.bool_(), "receive_time": UTC_TIME, "answer_time": UTC_TIME, "hand_off_time": UTC_TIME,
    "arrival_time": UTC_TIME, "close_time": UTC_TIME,
}


def export_schema(header: tuple[str, ...]) -> pa.Schema:
    return pa.schema([pa.field(c, _EXPORT_TYPES.get(c, pa.string()), nullable=c != "report_id") for c in header])


class _Sink:
    """What ParquetWriter writes to: bytes kept until taken (the export streams them as they come)."""

    def __init__(self, out=None):
        self.out = out
        self.buf = bytearray()
        self.pos = 0
        self.closed = False

    def write(self, data) -> int:
        if self.out is not None:
            self.out.write(data)
        else:
            self.buf += data
        self.pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def take(self) -> bytes:
        data = bytes(self.buf)
        self.buf.clear()
        return data


def _batch(schema: pa.Schema, rows: list) -> pa.RecordBatch:
    columns = list(zip(*rows)) if rows else [()] * len(schema)
    return pa.record_batch([pa.array(col, type=f.type) for col, f in zip(columns, schema)], schema=schema)


def stream(schema: pa.Schema, row_groups: Iterable[list]) -> Iterator[bytes]:
    """A Parquet file of `row_groups` (lists of row tuples in the schema's order), in pieces as each
    row group is written; the pieces joined are the file. An empty slice is a file with no rows."""
    sink = _Sink()
    writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression=COMPRESSION)
    try:
        for rows in row_groups:
            if rows:
                writer.write_batch(_batch(schema, rows))
                if sink.buf:
                    yield sink.take()
    finally:
        writer.close()
    yield sink.take()


def write(out, schema: pa.Schema, row_groups: Iterable[list]) -> int:
    """Writes a Parquet file of `row_groups` to the binary file `out`; returns how many rows."""
    rows = 0
    writer = pq.ParquetWriter(pa.PythonFile(_Sink(out), mode="w"), schema, compression=COMPRESSION)
    try:
        for group in row_groups:
            if group:
                writer.write_batch(_batch(schema, group))
                rows += len(group)
    finally:
        writer.close()
    return rows


def count_rows(path) -> int:
    return pq.ParquetFile(path).metadata.num_rows


def read_rows(path, columns: list[str]) -> Iterator[list[tuple]]:
    """The file's rows as tuples of `columns`, a row group at a time (refused when a column is missing)."""
    f = pq.ParquetFile(path)
    missing = [c for c in columns if c not in f.schema_arrow.names]
    if missing:
        raise ValueError(f"{path} lacks the columns {', '.join(missing)}")
    for i in range(f.num_row_groups):
        group = f.read_row_group(i, columns=columns)
        yield list(zip(*(group.column(c).to_pylist() for c in columns)))
