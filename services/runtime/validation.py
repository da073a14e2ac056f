"""Input checks that collect every bad field before answering INVALID_ARGUMENT."""
from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from typing import Any, Callable

from .errors import InvalidArgument

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
MAX_PAGE_SIZE = 500
DEFAULT_PAGE_SIZE = 50


class Violations:
    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field: str, description: str) -> None:
        self.items.append((field, description))

    def check(self, ok: bool, field: str, description: str) -> bool:
        if not ok:
            self.add(field, description)
        return ok

    def require(self, value, field: str, description: str = "is required") -> bool:
        return self.check(bool(value), field, description)

    def request_id(self, value: str, field: str = "request_id") -> None:
        if self.require(value, field, "is required: a client-chosen id that makes retries safe"):
            self.check(bool(REQUEST_ID.match(value)), field, "must be 1-128 characters of letters, digits, . _ : -")

    def page_size(self, value: int, field: str = "page_size") -> int:
        self.check(value >= 0, field, "must not be negative")
        return min(value or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE) if value >= 0 else DEFAULT_PAGE_SIZE

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def resource_id(name: str, collection: str, v: Violations, field: str = "name") -> str:
    """'reports/abc' -> 'abc', recording a violation for anything else."""
    prefix = collection + "/"
    if not name:
        v.add(field, f"is required, as {collection}/{{id}}")
        return ""
    if not name.startswith(prefix) or "/" in name[len(prefix):] or len(name) == len(prefix):
        v.add(field, f"must look like {collection}/{{id}}")
        return ""
    return name[len(prefix):]



def name_id(name: str, collection: str, *, request_id: str | None = None) -> str:
    """The id in a request's resource name, for an RPC whose only input is that name (and, for a
    mutation, its request_id); INVALID_ARGUMENT naming the fields otherwise."""
    v = Violations()
    if request_id is not None:
        v.request_id(request_id)
    found = resource_id(name, collection, v)
    v.raise_if_any()
    return found

def encode_page_token(position: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_page_token(token: str, v: Violations, keys: tuple[str, ...], field: str = "page_token") -> dict | None:
    """The position a page token holds; a violation when it is not one of ours with `keys`."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(value, dict) or any(not isinstance(value.get(k), (str, int)) for k in keys):
            raise ValueError
        return value
    except ValueError:
        v.add(field, "is not a token returned by a previous page")
        return None


def paginate(rows: list, size: int, position: Callable[[Any], dict]) -> tuple[list, str]:
    """Rows read with a limit of size + 1: the page, and the token of the next page ("" at the end)."""
    page = rows[:size]
    return page, encode_page_token(position(page[-1])) if len(rows) > size else ""


def time_keyset(token: dict | None, v: Violations, field: str = "page_token") -> tuple[datetime, str] | None:
    """(time, id) of the last item of the previous page, from a token with keys "t" and "id"."""
    if not token:
        return None
    try:
        return datetime.fromisoformat(str(token["t"])), str(token["id"])
    except (KeyError, ValueError):
        v.add(field, "is not a token returned by a previous page")
        return None
