"""Alerts tables, in the `alerts` schema: for now only the runtime's."""
from __future__ import annotations

from sqlalchemy import MetaData

from services.runtime.app import RuntimeTables

SCHEMA = "alerts"
metadata = MetaData(schema=SCHEMA)
runtime_tables = RuntimeTables.add_to(metadata)

TABLES = runtime_tables.names
