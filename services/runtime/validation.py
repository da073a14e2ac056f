"""Input checks that collect every bad field before answering INVALID_ARGUMENT."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import Any, Callable

from .errors import InvalidArgument
from .model import Box

log = logging.getLogger("smart110.validation")

REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
MAX_PAGE_SIZE = 500
# A map view larger than this is a mistake, not a map (the province is ~5° across).
MAX_SPAN_DEGREES = 10.0
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

# -- page tokens -------------------------------------------------------------------
#
# A page token is base64url(JSON position) + "." + base64url(HMAC-SHA256 tag). The tag covers the
# position and the query the token pages (the RPC and its filters, see `query_scope`), with a
# per-deployment secret (PAGE_TOKEN_SECRET), so a client can neither forge a position nor carry a
# token over to another query.

_DEV_SECRET = "smart110-dev-page-token-secret"
_TAG_BYTES = 16
_query: ContextVar[str] = ContextVar("smart110_page_query", default="")
_secret_cache: dict[str, bytes] = {}
_INVALID_TOKEN = "is not a token returned by a previous page of this query"


def _secret() -> bytes:
    """PAGE_TOKEN_SECRET, or a fixed development default (with a warning) so replicas still agree."""
    raw = os.environ.get("PAGE_TOKEN_SECRET", "")
    if raw not in _secret_cache:
        if not raw:
            log.warning("PAGE_TOKEN_SECRET is not set: page tokens are signed with the development default")
        _secret_cache[raw] = (raw or _DEV_SECRET).encode()
    return _secret_cache[raw]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _canonical_query(query) -> str:
    if query is None:
        return _query.get()
    if isinstance(query, str):
        return query
    return json.dumps(query, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)


def _tag(payload: str, query: str) -> bytes:
    return hmac.new(_secret(), payload.encode() + b"\x00" + query.encode(), hashlib.sha256).digest()[:_TAG_BYTES]


@contextmanager
def query_scope(query: str):
    """Binds the page tokens made and read inside to `query` (the server interceptor passes the RPC and
    its request without the paging fields)."""
    reset = _query.set(query)
    try:
        yield
    finally:
        _query.reset(reset)


def encode_page_token(position: dict, query=None) -> str:
    """A signed token for `position`, bound to `query` (a string or a dict of the filters; by default
    the query of the current RPC)."""
    payload = _b64(json.dumps(position, separators=(",", ":")).encode())
    return payload + "." + _b64(_tag(payload, _canonical_query(query)))


def _timestamp(value) -> bool:
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value)
        return True
    except ValueError:
        return False


def _non_negative_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


# What each key of a position holds; a key not listed holds a str or an int.
_KEY_CHECKS: dict[str, Callable[[Any], bool]] = {
    "t": _timestamp,
    "offset": _non_negative_int,
    "o": _non_negative_int,
    "v": _non_negative_int,
}


def _plain(value) -> bool:
    return isinstance(value, (str, int)) and not isinstance(value, bool)


def decode_page_token(token: str, v: Violations, keys: tuple[str, ...], field: str = "page_token",
                      query=None) -> dict | None:
    """The position a page token holds; a violation when it is not one of ours, for this query, with
    `keys` of the expected types (timestamps that parse, non-negative offsets)."""
    if not token:
        return None
    try:
        payload, _, tag = token.partition(".")
        if not payload or not tag or not hmac.compare_digest(_unb64(tag), _tag(payload, _canonical_query(query))):
            raise ValueError
        value = json.loads(_unb64(payload))
        if not isinstance(value, dict) or any(not _KEY_CHECKS.get(k, _plain)(value.get(k)) for k in keys):
            raise ValueError
        return value
    except (ValueError, TypeError, UnicodeError):  # binascii.Error is a ValueError
        v.add(field, _INVALID_TOKEN)
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
    except (KeyError, ValueError, TypeError):
        v.add(field, _INVALID_TOKEN)
        return None


def check_box(bounds, v: Violations, field: str = "bounds") -> Box | None:
    """A validated map view (a `smart110.common.v1.BoundingBox`), recording violations for missing
    corners, bad coordinates, inverted corners or a span no map shows."""
    ok = True
    for corner in ("south_west", "north_east"):
        if not bounds.HasField(corner):
            v.add(f"{field}.{corner}", "is required")
            ok = False
            continue
        p = getattr(bounds, corner)
        ok &= v.check(-180 <= p.longitude <= 180, f"{field}.{corner}.longitude", "must be -180 to 180")
        ok &= v.check(-90 <= p.latitude <= 90, f"{field}.{corner}.latitude", "must be -90 to 90")
    if not ok:
        return None
    box = Box(bounds.south_west.longitude, bounds.south_west.latitude,
              bounds.north_east.longitude, bounds.north_east.latitude)
    ok &= v.check(box.west < box.east, f"{field}.north_east.longitude", "must be east of south_west.longitude")
    ok &= v.check(box.south < box.north, f"{field}.north_east.latitude", "must be north of south_west.latitude")
    if ok:
        ok &= v.check(box.east - box.west <= MAX_SPAN_DEGREES and box.north - box.south <= MAX_SPAN_DEGREES,
                      field, f"must span at most {MAX_SPAN_DEGREES:g} degrees each way")
    return box if ok else None
