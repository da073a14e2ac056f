"""Timestamps between protobuf and Python."""
from __future__ import annotations

from datetime import datetime, timezone

from google.protobuf import timestamp_pb2


def now() -> datetime:
    return datetime.now(timezone.utc)


def to_pb(value: datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value)
    return ts


def from_pb(ts: timestamp_pb2.Timestamp) -> datetime | None:
    if ts is None or (ts.seconds == 0 and ts.nanos == 0):
        return None
    return ts.ToDatetime(tzinfo=timezone.utc)
