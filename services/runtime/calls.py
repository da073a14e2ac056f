"""Calls to another Smart110 service, answered in the domain's terms.

A client (a service's `clients.py`) wraps each outbound RPC in `call`: the callee's NOT_FOUND is
None; its refusal of the request itself (INVALID_ARGUMENT, FAILED_PRECONDITION, ALREADY_EXISTS) is
`FailedPrecondition` (`<CALLEE>_REFUSED`), which no retry changes; anything else (the callee away,
slow, restarting, or refusing our credential until it is fixed) is `Unavailable`
(`<CALLEE>_UNAVAILABLE`): an RPC answers it as UNAVAILABLE, and a feed consumer's prepare step that
raises it waits and retries the event, never parks it (services.runtime.consumer).
"""
from __future__ import annotations

from typing import Callable, TypeVar

import grpc

from .errors import FailedPrecondition, Unavailable

T = TypeVar("T")
REFUSED = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.FAILED_PRECONDITION,
                     grpc.StatusCode.ALREADY_EXISTS})


def call(callee: str, what: str, fn: Callable[[], T]) -> T | None:
    """`fn()`, the RPC to `callee` (e.g. "intake"); `what` says what it does ("locate the point")."""
    try:
        return fn()
    except grpc.RpcError as exc:
        code = exc.code()
        if code == grpc.StatusCode.NOT_FOUND:
            return None
        if code in REFUSED:
            raise FailedPrecondition(f"{callee} refused to {what}: {exc.details()}",
                                     reason=f"{callee.upper()}_REFUSED") from exc
        name = code.name if code is not None else "UNKNOWN"
        raise Unavailable(f"{callee} could not {what} ({name}); retry later",
                          reason=f"{callee.upper()}_UNAVAILABLE") from exc
