"""Scoring tables, in the `scoring` schema: for now only the runtime's."""
from __future__ import annotations

from sqlalchemy import MetaData

from services.runtime.app import RuntimeTables

SCHEMA = "scoring"
metadata = MetaData(schema=SCHEMA)
runtime_tables = RuntimeTables.add_to(metadata)

TABLES = runtime_tables.names
