"""The generic check every request passes before its handler runs.

`request_violations` walks a protobuf message through its descriptors and names each field a handler
should never have to think about: strings with a NUL byte (Postgres refuses them), enum numbers the
enum does not define (proto3 enums are open and keep unknown numbers), floating-point values that
are not finite or absurdly large, and times the suite cannot hold: a `google.protobuf.Timestamp`
that is not a valid one (nanos outside 0..999,999,999), or outside `TIMESTAMP_RANGE` (the zero
instant 1970-01-01T00:00:00Z is how the suite reads "not given", and date arithmetic near year 9999
overflows), and a `google.protobuf.Duration` that is not a valid one or longer than
`MAX_DURATION_SECONDS`. `check_request` raises `InvalidArgument` with those field paths, e.g.
`report.description` or `points[2].lat`.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from .errors import InvalidArgument

# Past 2**53 (about 9e15) a double no longer holds every whole number, and no quantity of the suite
# comes near it; larger values only overflow the exact decimals (points) and columns they end in.
MAX_ABS_FLOAT = 1e15
# Times a request may carry: after the zero instant (which means "not given") and before year 3000.
TIMESTAMP_RANGE = (datetime(1970, 1, 1, tzinfo=timezone.utc), datetime(3000, 1, 1, tzinfo=timezone.utc))
# Durations a request may carry, either way: 100 years.
MAX_DURATION_SECONDS = 100 * 366 * 24 * 3600
# The request fields that page a query rather than choose it; a page token stays valid across them.
PAGING_FIELDS = ("page_token", "page_size")

_FLOATS = (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
_EPOCH_SECONDS = (int(TIMESTAMP_RANGE[0].timestamp()), int(TIMESTAMP_RANGE[1].timestamp()))
_NANOS = 1_000_000_000


def _timestamp(value, path: str, out: list[tuple[str, str]]) -> None:
    low, high = _EPOCH_SECONDS
    if not 0 <= value.nanos < _NANOS:
        out.append((path, "is not a valid timestamp: nanos must be 0 to 999999999"))
    elif not (low, 0) < (value.seconds, value.nanos) < (high, 0):
        out.append((path, "is out of range: a time after 1970-01-01T00:00:00Z and before 3000-01-01T00:00:00Z"))


def _duration(value, path: str, out: list[tuple[str, str]]) -> None:
    if not -_NANOS < value.nanos < _NANOS or (value.seconds > 0 > value.nanos) or (value.seconds < 0 < value.nanos):
        out.append((path, "is not a valid duration: nanos must be -999999999 to 999999999, with the sign of seconds"))
    elif abs(value.seconds) > MAX_DURATION_SECONDS:
        out.append((path, "is out of range: at most 100 years either way"))


# Well-known messages checked as one value, not field by field.
_WELL_KNOWN = {"google.protobuf.Timestamp": _timestamp, "google.protobuf.Duration": _duration}


def _message(value, path: str, out: list[tuple[str, str]]) -> None:
    check = _WELL_KNOWN.get(value.DESCRIPTOR.full_name)
    if check is not None:
        check(value, path, out)
    else:
        _walk(value, path + ".", out)


def _scalar(field: FieldDescriptor, value, path: str, out: list[tuple[str, str]]) -> None:
    if field.type == FieldDescriptor.TYPE_STRING:
        if "\x00" in value:
            out.append((path, "must not contain a NUL character"))
    elif field.type == FieldDescriptor.TYPE_ENUM:
        if field.enum_type.values_by_number.get(value) is None:
            out.append((path, f"{value} is not a value of {field.enum_type.name}"))
    elif field.type in _FLOATS:
        if not math.isfinite(value):
            out.append((path, "must be a finite number"))
        elif abs(value) > MAX_ABS_FLOAT:
            out.append((path, "is out of range"))


def _repeated(field: FieldDescriptor) -> bool:
    # protobuf 6 has `is_repeated`; older releases only `label`.
    flag = getattr(field, "is_repeated", None)
    return flag if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _walk(message: Message, prefix: str, out: list[tuple[str, str]]) -> None:
    for field, value in message.ListFields():
        path = prefix + field.name
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value_field = field.message_type.fields_by_name["value"]
            key_field = field.message_type.fields_by_name["key"]
            for key, item in value.items():
                item_path = f"{path}[{key!r}]"
                _scalar(key_field, key, item_path, out)
                if value_field.message_type is not None:
                    _message(item, item_path, out)
                else:
                    _scalar(value_field, item, item_path, out)
        elif _repeated(field):
            for i, item in enumerate(value):
                if field.message_type is not None:
                    _message(item, f"{path}[{i}]", out)
                else:
                    _scalar(field, item, f"{path}[{i}]", out)
        elif field.message_type is not None:
            _message(value, path, out)
        else:
            _scalar(field, value, path, out)


def request_violations(message: Message) -> list[tuple[str, str]]:
    """Every NUL-bearing string, undefined enum number, non-finite or absurd float and invalid or
    out-of-range timestamp or duration in `message`."""
    out: list[tuple[str, str]] = []
    if isinstance(message, Message):
        _walk(message, "", out)
    return out


def check_request(message) -> None:
    """INVALID_ARGUMENT naming each field `request_violations` finds; anything not a message passes."""
    if isinstance(message, Message):
        found = request_violations(message)
        if found:
            raise InvalidArgument(found)


def query_key(method: str, message) -> str:
    """The query a request pages: its RPC and its fields other than the paging ones."""
    if not isinstance(message, Message):
        return method
    fields = message.DESCRIPTOR.fields_by_name
    if not any(name in fields for name in PAGING_FIELDS):
        return method
    filters = type(message)()
    filters.CopyFrom(message)
    for name in PAGING_FIELDS:
        if name in fields:
            filters.ClearField(name)
    return method + "\x00" + filters.SerializeToString(deterministic=True).hex()
