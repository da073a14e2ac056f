"""Alembic migrations per service, version table inside the service's schema."""
from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import MetaData, create_engine, text

from .db import sqlalchemy_url

log = logging.getLogger("smart110.migrate")


def alembic_config(migrations_dir: Path, database_url: str, schema: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(database_url).replace("%", "%%"))
    cfg.attributes["schema"] = schema
    return cfg


def upgrade(migrations_dir: Path, database_url: str, schema: str, revision: str = "head") -> None:
    log.info("migrating schema %s to %s", schema, revision)
    command.upgrade(alembic_config(migrations_dir, database_url, schema), revision)


def run_env() -> None:
    """Body of every service's migrations/env.py (online mode only)."""
    from alembic import context

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


def create_tables(metadata: MetaData, names: list[str]) -> None:
    """For a first migration: create the named tables of a service's metadata."""
    from alembic import op

    metadata.create_all(bind=op.get_bind(), tables=[metadata.tables[f"{metadata.schema}.{n}"] for n in names])
