"""Helpers the integration tests share: databases of their own, callers' identities, error details."""
from __future__ import annotations

import base64
import json

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from services.runtime.db import sqlalchemy_url


def own_database(admin_url: str, name: str) -> str:
    """An admin URL of a new, empty database `name` on the same server (an older one is dropped first).

    Tests that run a service in-process use one: the whole suite, when the
    same session also runs it, works in the server's main database, and its
    consumers and sweepers would otherwise act on these tests' rows.
    """
    engine = create_engine(sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, name: str) -> None:
    engine = create_engine(sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        engine.dispose()


def caller(roles: list[str], *, station: str = "", sub: str = "tester", name: str = "") -> tuple:
    """Call metadata as the gateway forwards a verified token's claims (`x-jwt-payload`)."""
    claims: dict = {"sub": sub, "roles": list(roles)}
    if station:
        claims["station"] = station
    if name:
        claims["name"] = name
    raw = base64.urlsafe_b64encode(json.dumps(claims, ensure_ascii=False).encode()).decode().rstrip("=")
    return (("x-jwt-payload", raw),)


def _details(err: grpc.RpcError, kind):
    status = rpc_status.from_call(err)
    assert status is not None, "the error carries a google.rpc.Status"
    for detail in status.details:
        if detail.Is(kind.DESCRIPTOR):
            message = kind()
            detail.Unpack(message)
            yield message


def violation_pairs(err: grpc.RpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of an error's google.rpc.BadRequest."""
    return [(v.field, v.description) for bad in _details(err, error_details_pb2.BadRequest)
            for v in bad.field_violations]


def field_violations(err: grpc.RpcError) -> list[str]:
    """The fields an error's google.rpc.BadRequest names."""
    return [field for field, _ in violation_pairs(err)]


def error_reason(err: grpc.RpcError) -> str:
    """The reason of an error's google.rpc.ErrorInfo, "" without one."""
    return next((info.reason for info in _details(err, error_details_pb2.ErrorInfo)), "")
