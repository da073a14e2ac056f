"""A rule version's stored content (rule_versions.spec): the Rule message as JSON with proto field
names, as it has always been written, without what the server sets (name, version, stamps, times).

Protobuf's JSON form, written and read without protobuf: enumerations by their full names
("RULE_KIND_KEYWORD", "ALERT_LEVEL_RED"), a number no name stands for as that number; durations as
seconds with an "s" ("1800s", "1.500s"); fields at their defaults left out. The enumerations'
numbers are their positions in LEVELS, RULE_KINDS and AREA_KINDS, as in the protos.
"""
from __future__ import annotations

import math

from .common import LEVELS
from .rules import AREA_KINDS, RULE_KINDS, KeywordTerm, Rule

# An enumeration's JSON prefix and its names by number (index 0: unspecified).
_KIND = ("RULE_KIND_", ("", *RULE_KINDS))
_LEVEL = ("ALERT_LEVEL_", tuple(LEVELS))
_AREA_KIND = ("AREA_KIND_", ("", *AREA_KINDS))
_LISTS = ("areas", "incident_types", "signal_types")


def rule_spec(rule: Rule) -> dict:
    """The stored form of a rule's content."""
    spec: dict = {}
    _put(spec, "display_name", rule.display_name)
    _put(spec, "kind", _enum_out(rule.kind, _KIND))
    _put(spec, "enabled", bool(rule.enabled))
    _put(spec, "level", _enum_out(rule.level, _LEVEL))
    _put(spec, "description", rule.description)
    _put(spec, "terms", [_term_out(t) for t in rule.terms])
    if rule.window is not None:
        spec["window"] = _duration_out(rule.window)
    _put(spec, "threshold", _double_out(rule.threshold))
    _put(spec, "area_kind", _enum_out(rule.area_kind, _AREA_KIND))
    _put(spec, "h3_resolution", int(rule.h3_resolution))
    for name in _LISTS:
        _put(spec, name, list(getattr(rule, name)))
    _put(spec, "parameters", dict(rule.parameters))
    _put(spec, "suggested_action", rule.suggested_action)
    _put(spec, "recipients", list(rule.recipients))
    if rule.escalate_after is not None:
        spec["escalate_after"] = _duration_out(rule.escalate_after)
    return spec


def rule_from_spec(spec: dict) -> Rule:
    """A rule's content from its stored form; names it does not know are ignored."""
    def get(name: str, default):
        value = spec.get(name)
        return default if value is None else value

    window, escalate_after = spec.get("window"), spec.get("escalate_after")
    return Rule(
        display_name=get("display_name", ""), kind=_enum_in(spec.get("kind"), _KIND),
        enabled=bool(get("enabled", False)), level=_enum_in(spec.get("level"), _LEVEL),
        description=get("description", ""), terms=[_term_in(t) for t in get("terms", [])],
        window=_duration_in(window) if window is not None else None, threshold=_double_in(get("threshold", 0.0)),
        area_kind=_enum_in(spec.get("area_kind"), _AREA_KIND), h3_resolution=int(get("h3_resolution", 0)),
        areas=list(get("areas", [])), incident_types=list(get("incident_types", [])),
        signal_types=list(get("signal_types", [])),
        parameters={str(k): str(v) for k, v in get("parameters", {}).items()},
        suggested_action=get("suggested_action", ""), recipients=list(get("recipients", [])),
        escalate_after=_duration_in(escalate_after) if escalate_after is not None else None,
    )


# -- inside -----------------------------------------------------------------------

def _put(spec: dict, name: str, value) -> None:
    """Sets a field unless it is at its default (left out, as protobuf's JSON form does)."""
    if value not in (None, "", 0, [], {}):
        spec[name] = value


def _term_out(t: KeywordTerm) -> dict:
    out: dict = {}
    _put(out, "term", t.term)
    _put(out, "grade", _enum_out(t.grade, _LEVEL))
    _put(out, "exclusions", list(t.exclusions))
    return out


def _term_in(t: dict) -> KeywordTerm:
    return KeywordTerm(term=t.get("term") or "", grade=_enum_in(t.get("grade"), _LEVEL),
                       exclusions=list(t.get("exclusions") or []))


def _number(name: str) -> bool:
    return name.lstrip("-").isdigit()


def _enum_out(name: str, enum: tuple[str, tuple[str, ...]]) -> str | int | None:
    """A plain name as its full name; digits (a number no name stands for) as the number; "" left out."""
    prefix, _ = enum
    if not name:
        return None
    return int(name) if _number(name) else prefix + name


def _enum_in(value, enum: tuple[str, tuple[str, ...]]) -> str:
    """A full name or a number as the plain name ("" for unspecified); an unnamed number as its digits."""
    prefix, names = enum
    if value is None:
        return ""
    if isinstance(value, int) or (isinstance(value, str) and _number(value)):
        number = int(value)
        return names[number] if 0 <= number < len(names) else str(number)
    if value.endswith("_UNSPECIFIED"):
        return ""
    return value[len(prefix):] if value.startswith(prefix) else value


def _double_out(value: float) -> float | str:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _double_in(value) -> float:
    return float({"NaN": "nan", "Infinity": "inf", "-Infinity": "-inf"}.get(value, value))


def _duration_out(value: float) -> str:
    """Seconds as protobuf writes a Duration: whole seconds, then 3, 6 or 9 digits of the fraction."""
    seconds = int(value)
    nanos = round((value - seconds) * 1e9)
    seconds, nanos = seconds + int(nanos / 1_000_000_000), int(math.fmod(nanos, 1_000_000_000))
    sign = "-" if seconds < 0 or nanos < 0 else ""
    seconds, nanos = abs(seconds), abs(nanos)
    if nanos == 0:
        return f"{sign}{seconds}s"
    if nanos % 1_000_000 == 0:
        return f"{sign}{seconds}.{nanos // 1_000_000:03d}s"
    if nanos % 1_000 == 0:
        return f"{sign}{seconds}.{nanos // 1_000:06d}s"
    return f"{sign}{seconds}.{nanos:09d}s"


def _duration_in(text: str) -> float:
    """A Duration's JSON form as seconds (as protobuf reads it, then counts seconds and nanos)."""
    if not isinstance(text, str) or not text.endswith("s"):
        raise ValueError(f"not a duration: {text!r}")
    whole, _, fraction = text[:-1].partition(".")
    seconds = int(whole)
    nanos = 0
    if fraction:
        nanos = int(round(float(("-0." if text.startswith("-") else "0.") + fraction) * 1e9))
    return seconds + nanos / 1e9
