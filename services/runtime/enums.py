"""Proto enums <-> the plain names the domain uses ("PHONE" for CHANNEL_PHONE)."""
from __future__ import annotations


def enum_name(enum, value: int, prefix: str) -> str:
    """CHANNEL_PHONE -> "PHONE"; the _UNSPECIFIED zero value -> ""."""
    name = enum.Name(value)
    return "" if name.endswith("_UNSPECIFIED") else name[len(prefix):]


def enum_value(enum, name: str, prefix: str) -> int:
    """"PHONE" -> CHANNEL_PHONE; "" -> 0."""
    return enum.Value(prefix + name) if name else 0
