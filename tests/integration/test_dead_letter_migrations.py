"""Each service's 0002 revision creates the dead-letter table exactly as the runtime declares it."""
from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from services.runtime import migrate
from services.runtime.db import ensure_service_database, sqlalchemy_url
from tests import support

SERVICES = ("intake", "dispatch", "referral12345", "alerts", "scoring")


@pytest.mark.parametrize("package", SERVICES)
def test_upgrade_head_creates_dead_letters_matching_the_table(admin_url, package):
    spec = importlib.import_module(f"services.{package}.__main__").SPEC
    store = importlib.import_module(f"services.{package}.store")
    assert "dead_letters" not in store.TABLES  # 0001 must not create it
    database = f"smart110_dl_{package}"
    url = ensure_service_database(support.own_database(admin_url, database), spec.name, "pw")
    try:
        migrate.upgrade(spec.migrations, url, spec.name)  # 0001 then 0002 on an empty schema
        engine = create_engine(sqlalchemy_url(url))
        try:
            with engine.connect() as conn:
                conn.execute(text(f"SET search_path TO {spec.name}"))
                assert "dead_letters" in inspect(conn).get_table_names(schema=spec.name)
                ctx = MigrationContext.configure(conn, opts={"include_schemas": True, "compare_server_default": True,
                                                              "include_object": _only_dead_letters})
                diffs = compare_metadata(ctx, store.metadata)
        finally:
            engine.dispose()
        assert diffs == []
    finally:
        support.drop_database(admin_url, database)


def _only_dead_letters(obj, name, type_, reflected, compare_to):
    """Compares the dead-letter table only (the other tables are 0001's business)."""
    table = obj if type_ == "table" else getattr(obj, "table", None)
    return table is not None and table.name == "dead_letters"
