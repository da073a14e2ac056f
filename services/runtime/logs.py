"""JSON logs, one object a line, carrying the current trace id.

`RedactingFilter` keeps personal data and statement parameters out of every
record: mainland mobile numbers are masked (138****1234) and SQLAlchemy's
`[parameters: ...]` dumps are dropped, in the message and in the exception text.
"""
from __future__ import annotations

import json
import logging
import re
import sys
from datetime import datetime, timezone

from opentelemetry import trace

_RESERVED = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


# A mainland mobile number (optionally +86) not embedded in a longer run of digits.
_PHONE = re.compile(r"(?<!\d)((?:\+?86)?1[3-9]\d)(\d{4})(\d{4})(?!\d)")
# SQLAlchemy's parameter dump, to the end of the bracket or the line.
_SQL_PARAMS = re.compile(r"\[parameters: [^\n]*?\](?=\s*(?:\n|\(Background|$))|\[parameters: [^\n]*")
# Literal values in the DETAIL line Postgres adds, e.g. "Key (phone)=(13812345678) already exists."
_PG_DETAIL = re.compile(r"(DETAIL:\s+Key \([^)]*\)=)\([^\n]*?\)")


def redact(text: str) -> str:
    """The text with mobile numbers masked and statement parameters removed."""
    if not text:
        return text
    text = _SQL_PARAMS.sub("[parameters: redacted]", text)
    text = _PG_DETAIL.sub(r"\1(redacted)", text)
    return _PHONE.sub(lambda m: f"{m.group(1)}****{m.group(3)}", text)


class RedactingFilter(logging.Filter):
    """Redacts every record in place: its message, arguments and exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is left to the formatter
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and record.exc_info[0] is not None:
            # Formatted once, redacted, and cached where Formatter.format looks for it.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RESERVED and not key.startswith("_") and isinstance(value, str):
                setattr(record, key, redact(value))
        return True


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            doc["trace_id"] = format(ctx.trace_id, "032x")
            doc["span_id"] = format(ctx.span_id, "016x")
        for key, value in vars(record).items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            doc["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exception"] = record.exc_text
        return json.dumps(doc, ensure_ascii=False)


def setup_logging(service: str, level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.getLogger("sqlalchemy").setLevel("WARNING")


def mask_phone(phone: str) -> str:
    """Personal data in logs and lists: keep the first 3 and last 4 digits."""
    if len(phone) < 8:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


def mask_name(name: str) -> str:
    if not name:
        return ""
    return name[0] + "*" * (len(name) - 1)
