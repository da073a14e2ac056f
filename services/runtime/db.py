"""Database access: engine with a connection pool, and the
per-service role and schema set-up.

Each service connects as its own role whose search_path is its own schema;
the role owns that schema and has rights on nothing else.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import bindparam, column, create_engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.engine import Connection, Engine, make_url

from . import txguard

_IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def sqlalchemy_url(url: str) -> str:
    """Accepts postgres://, postgresql:// or postgresql+psycopg:// and returns the psycopg 3 form."""
    u = make_url(url)
    return u.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """The plain libpq form, for psycopg connections outside SQLAlchemy (LISTEN)."""
    u = make_url(url)
    return u.set(drivername="postgresql").render_as_string(hide_password=False)


def make_engine(url: str, *, pool_size: int = 10, application_name: str = "smart110") -> Engine:
    """The pooled engine; its transactions are tracked by `txguard` (no outbound call inside one)."""
    return txguard.track(create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={"application_name": application_name},
        # Statement parameters carry personal data; never in exceptions or logs.
        hide_parameters=True,
    ))


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction whose statements all see one snapshot of the database.

    Under the default READ COMMITTED each statement sees what was committed
    when it started, so a resource read in several queries (a case row, its
    timeline, its side records) can mix states from before and after another
    transaction's commit. REPEATABLE READ takes one snapshot for the whole
    transaction; read-only, it never fails with a serialization error.
    """
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        with conn.begin():
            yield conn


def service_role_url(admin_url: str, role: str, password: str) -> str:
    """The URL a service uses: the admin URL with the service's own role."""
    u = make_url(admin_url).set(username=role, password=password)
    return u.render_as_string(hide_password=False)


def ensure_service_database(admin_url: str, service: str, password: str, *, reset_password: bool = False) -> str:
    """Creates (or updates) the service's role and schema. Returns the service URL.

    The role owns its schema and nothing else; it cannot create objects in
    `public` and has no grants on the other services' schemas. An existing
    role keeps its password unless `reset_password` (key rotation).
    """
    if not _IDENT.match(service):
        raise ValueError(f"bad service name {service!r}")
    role = f"{service}_svc"
    engine = create_engine(sqlalchemy_url(admin_url), isolation_level="AUTOCOMMIT", hide_parameters=True)
    try:
        with engine.connect() as conn:
            # Serialise concurrent set-ups (several migration jobs at once).
            conn.execute(text("SELECT pg_advisory_lock(110110)"))
            try:
                exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
                pw = password.replace("'", "''")
                if not exists:
                    conn.execute(text(f"CREATE ROLE {role} LOGIN PASSWORD '{pw}' NOSUPERUSER NOCREATEDB NOCREATEROLE"))
                elif reset_password:
                    conn.execute(text(f"ALTER ROLE {role} PASSWORD '{pw}'"))
                conn.execute(text(f"CREATE SCHEMA IF NOT EXISTS {service} AUTHORIZATION {role}"))
                conn.execute(text(f"ALTER SCHEMA {service} OWNER TO {role}"))
                conn.execute(text(f"REVOKE ALL ON SCHEMA public FROM {role}"))
                conn.execute(text(f"ALTER ROLE {role} SET search_path = {service}"))
                db = conn.execute(text("SELECT current_database()")).scalar()
                conn.execute(text(f'REVOKE CREATE, TEMPORARY ON DATABASE "{db}" FROM {role}'))
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(110110)"))
    finally:
        engine.dispose()
    return service_role_url(admin_url, role, password)


def compiled_once(stmt) -> TextClause:
    """`stmt` compiled for PostgreSQL once, as SQL text with the same typed parameters and result columns.

    SQLAlchemy caches what it compiles, but not PostgreSQL's INSERT … ON CONFLICT (`postgresql.insert`
    has no cache key): it compiles such a statement again on every execution. The statements a service
    runs for every event are compiled once this way instead: its parameters are those of each execution,
    and the values written into `stmt` (a status compared with, say) stay as they were.
    """
    compiled = stmt.compile(dialect=postgresql.dialect(paramstyle="named"))
    binds = {name: b for b, name in compiled.bind_names.items()}  # as named in the SQL
    computed = sorted(name for name, b in binds.items() if b.callable is not None)
    if computed:
        raise ValueError(f"compiled_once cannot keep values computed at execution: {', '.join(computed)}")
    # A cast written after a parameter (`:ids::UUID[]`) reads as one to text(): set apart by a space.
    sql = re.sub(r"(?<![:\w]):(\w+)::", r":\1 ::", str(compiled))
    clause = text(sql).bindparams(*(
        bindparam(name, b.value, type_=b.type) if b.value is not None else bindparam(name, type_=b.type)
        for name, b in binds.items()))
    returned = [column(c.key, c.type) for c in getattr(stmt, "exported_columns", ())]
    return clause.columns(*returned) if returned else clause


@lru_cache(maxsize=256)
def insert_once(table, columns: tuple[str, ...], conflict: tuple[str, ...] | None = (),
                returning: str | None = None, update: tuple[str, ...] = ()) -> TextClause:
    """INSERT INTO `table` (`columns`) VALUES (:column, …) ON CONFLICT [(`conflict`)] DO NOTHING
    (or, with `update`, DO UPDATE SET each of those columns to the row's new value) [RETURNING
    `returning`], compiled once (`compiled_once`), to run with each row's values as its parameters.
    `conflict`: the unique columns a conflict is looked for on, () for any, None for a plain INSERT.
    For the inserts a service makes for every report or event."""
    stmt = postgresql.insert(table).values({c: bindparam(c, type_=table.c[c].type) for c in columns})
    if update:
        stmt = stmt.on_conflict_do_update(index_elements=list(conflict), set_={c: stmt.excluded[c] for c in update})
    elif conflict is not None:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(conflict) or None)
    if returning is not None:
        stmt = stmt.returning(table.c[returning])
    return compiled_once(stmt)
