"""The runtime's tables as every service's migrations create them: frozen DDL, one function per revision.

Every service's schema holds the same runtime tables (outbox, idempotency
keys, feed cursors, inbox, retention marks, dead letters), so each revision
that creates or changes them calls one function here instead of repeating its
DDL five times. These functions are history: never edit one once released; a
later change to a runtime table is a new function called by a new revision
of every service.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def runtime_tables_0001(schema: str) -> None:
    """The first release: outbox, idempotency keys, feed cursors and inbox."""
    op.create_table('feed_cursors',
    sa.Column('source', sa.String(length=60), nullable=False),
    sa.Column('last_sequence', sa.BigInteger(), nullable=False),
    sa.Column('update_time', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('source'),
    schema=schema
    )
    op.create_table('idempotency_keys',
    sa.Column('method', sa.String(length=200), nullable=False),
    sa.Column('request_id', sa.String(length=200), nullable=False),
    sa.Column('request_hash', sa.String(length=64), nullable=False),
    sa.Column('response', sa.LargeBinary(), nullable=True),
    sa.Column('create_time', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('method', 'request_id'),
    schema=schema
    )
    op.create_index('idempotency_keys_create_time', 'idempotency_keys', ['create_time'], unique=False, schema=schema)
    op.create_table('inbox',
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('source', sa.String(length=60), nullable=False),
    sa.Column('sequence', sa.BigInteger(), nullable=False),
    sa.Column('type', sa.String(length=120), nullable=False),
    sa.Column('process_time', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('event_id'),
    schema=schema
    )
    op.create_table('outbox',
    sa.Column('sequence', sa.BigInteger(), sa.Identity(always=True), nullable=False),
    sa.Column('event_id', sa.UUID(), nullable=False),
    sa.Column('type', sa.String(length=120), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('payload_type', sa.String(length=200), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('trace_context', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('occur_time', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('sequence'),
    sa.UniqueConstraint('event_id'),
    schema=schema
    )


def retention_0002(schema: str) -> None:
    """retention_marks (how far the outbox was pruned) and an index on the inbox's process time."""
    op.create_table(
        "retention_marks",
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("name"),
        schema=schema,
    )
    op.create_index("inbox_process_time", "inbox", ["process_time"], unique=False, schema=schema)



def retention_0002_down(schema: str) -> None:
    op.drop_index("inbox_process_time", table_name="inbox", schema=schema)
    op.drop_table("retention_marks", schema=schema)


def dead_letters_0003() -> None:
    """dead_letters: events the feed consumers parked (in the schema on the search path)."""
    op.create_table(
        "dead_letters",
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("source", sa.String(60), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(120), nullable=False),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="parked"),
        sa.Column("park_time", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("now()")),
        sa.Column("resolve_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolve_reason", sa.Text(), nullable=True),
        sa.Column("resolved_by", sa.String(120), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name="dead_letters_pkey"),
    )
    op.create_index("dead_letters_source_subject_idx", "dead_letters", ["source", "subject", "status", "sequence"])



def dead_letters_0003_down() -> None:
    op.drop_index("dead_letters_source_subject_idx", table_name="dead_letters")
    op.drop_table("dead_letters")


def feed_readers_0004(schema: str) -> None:
    """feed_readers (how far each consuming service has read this service's feed) and
    dead_letters.resolved_roles (the roles of the operator who replayed or discarded a parked event)."""
    op.create_table(
        "feed_readers",
        sa.Column("consumer", sa.String(length=60), nullable=False),
        sa.Column("last_after_sequence", sa.BigInteger(), nullable=False),
        sa.Column("seen_time", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("consumer", name="feed_readers_pkey"),
        schema=schema,
    )
    op.add_column("dead_letters", sa.Column("resolved_roles", postgresql.ARRAY(sa.Text()), nullable=True),
                  schema=schema)


def feed_readers_0004_down(schema: str) -> None:
    op.drop_column("dead_letters", "resolved_roles", schema=schema)
    op.drop_table("feed_readers", schema=schema)


# -- append-only audit trails (全程留痕) ------------------------------------------------------

def append_only_0005(*tables: str) -> None:
    """The database refuses UPDATE, DELETE and TRUNCATE on these tables (timelines and histories):
    what was recorded stays recorded, whatever the code above it does."""
    op.execute(
        "CREATE OR REPLACE FUNCTION audit_trail_append_only() RETURNS trigger LANGUAGE plpgsql AS $$\n"
        "BEGIN\n"
        "  RAISE EXCEPTION '% is an append-only audit trail: % refused', TG_TABLE_NAME, TG_OP\n"
        "    USING ERRCODE = 'restrict_violation';\n"
        "END $$")
    for table in tables:
        # Per statement: refused even when no row matches, so nobody learns what would have changed.
        op.execute(f"CREATE TRIGGER {table}_no_update_or_delete BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION audit_trail_append_only()")


def append_only_0005_down(*tables: str, drop_function: bool = True) -> None:
    """`drop_function=False` when earlier revisions' tables keep using the trigger function."""
    for table in tables:
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table}")
        op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update_or_delete ON {table}")
    if drop_function:
        op.execute("DROP FUNCTION IF EXISTS audit_trail_append_only()")
