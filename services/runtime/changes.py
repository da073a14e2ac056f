"""What an event says changed.

Events carry what changed, bounded in size (ARCHITECTURE.md, "Events"): the
resource's current state without the lists that grow with its history
(timelines, past assignments, notifications...), the paths of the fields the
change set, and the timeline entries it appended. A consumer that needs the
whole resource reads it through the owner's Get RPC.

Each service strips its resources in one mapping helper (`report_event_pb`,
`case_event_pb`, ...) with `without()`, and compares the stripped resource
before and after the change with `changed_fields()`.
"""
from __future__ import annotations

from collections.abc import Iterable

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# Well-known types compared as one value: a changed time is "answer_time", not "answer_time.seconds".
_ATOMIC = {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask",
           "google.protobuf.Struct", "google.protobuf.Value", "google.protobuf.Any"}


def without(message: Message, fields: Iterable[str]) -> Message:
    """A copy of `message` with the named top-level fields cleared."""
    copy = type(message)()
    copy.CopyFrom(message)
    for name in fields:
        copy.ClearField(name)
    return copy


def changed_fields(before: Message, after: Message) -> list[str]:
    """Paths (proto field names, dotted into nested messages) of the fields whose values differ.

    A repeated or map field, a well-known type, or a message set on one side
    only is one path; a message set on both sides is compared field by field.
    Paths come in field-number order, like a FieldMask a client would send.
    """
    if before.DESCRIPTOR is not after.DESCRIPTOR:
        raise TypeError(f"cannot compare {before.DESCRIPTOR.full_name} with {after.DESCRIPTOR.full_name}")
    return _diff(before, after, "")


def _diff(before: Message, after: Message, prefix: str) -> list[str]:
    paths = []
    for field in sorted(after.DESCRIPTOR.fields, key=lambda f: f.number):
        path = prefix + field.name
        old, new = getattr(before, field.name), getattr(after, field.name)
        if field.is_repeated:
            if _repeated(old) != _repeated(new):
                paths.append(path)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            present = before.HasField(field.name), after.HasField(field.name)
            if present == (False, False):
                continue
            if present != (True, True) or field.message_type.full_name in _ATOMIC:
                if present != (True, True) or old != new:
                    paths.append(path)
            else:
                paths += _diff(old, new, path + ".")
        elif old != new:
            paths.append(path)
    return paths


def _repeated(value) -> list | dict:
    if hasattr(value, "items"):  # a map
        return dict(value.items())
    return list(value)
