"""Alembic migrations per service, version table inside the service's schema.

Each service's history starts at a frozen baseline (`0001`, explicit DDL of
the first release) and adds one revision per schema change. A revision never
builds tables from the live models. Rolling updates follow expand/contract
(k8s/README.md): a revision only adds what old pods ignore (tables, nullable
or defaulted columns, indexes built concurrently); dropping or renaming waits
for a later release once no pod reads the old shape.
"""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from .db import sqlalchemy_url

log = logging.getLogger("smart110.migrate")


def alembic_config(migrations_dir: Path, database_url: str, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    cfg.attributes["schema"] = schema
    return cfg


def current_revision(database_url: str, schema: str) -> str | None:
    """The revision a schema is at (None for a schema no migration has touched)."""
    engine = create_engine(sqlalchemy_url(database_url))
    try:
        with engine.connect() as conn:
            exists = conn.execute(text("SELECT to_regclass(:t)"), {"t": f"{schema}.alembic_version"}).scalar()
            if exists is None:
                return None
            return conn.execute(text(f"SELECT version_num FROM {schema}.alembic_version")).scalar()
    finally:
        engine.dispose()


def upgrade(migrations_dir: Path, database_url: str, schema: str, revision: str = "head") -> list[str]:
    """Upgrades a schema in place to `revision`; returns the revisions applied, oldest first (and logs them)."""
    cfg = alembic_config(migrations_dir, database_url, schema)
    scripts = ScriptDirectory.from_config(cfg)
    before = current_revision(database_url, schema)
    target = scripts.get_revision(revision).revision if revision != "head" else scripts.get_current_head()
    pending = [] if before == target else [
        r.revision for r in reversed(list(scripts.iterate_revisions(target, before or "base")))]
    if not pending:
        log.info("schema %s is at %s: nothing to migrate", schema, before)
        return []
    log.info("migrating schema %s from %s to %s: %s", schema, before or "an empty schema", target,
             ", ".join(f"{r} ({scripts.get_revision(r).doc.splitlines()[0]})" for r in pending))
    command.upgrade(cfg, revision)
    return pending


def run_env() -> None:
    """Body of every service's migrations/env.py (online mode only)."""
    cfg = context.config
    schema = cfg.attributes["schema"]
    engine = create_engine(cfg.get_main_option("sqlalchemy.url"), hide_parameters=True)
    with engine.connect() as connection:
        connection.execute(text(f"SET search_path TO {schema}"))
        connection.commit()
        context.configure(
            connection=connection,
            version_table_schema=schema,
            include_schemas=False,
            transaction_per_migration=True,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
