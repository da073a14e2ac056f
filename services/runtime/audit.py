"""The audit trail (全程留痕): who changed what, when and why, kept per resource.

A service keeps one timeline table per kind of resource it owns (a report's,
a case's, a work order's); this module gives them one shape, one repository
and one mapping to the `AuditStamp`-carrying timeline messages of the protos.
The entry type itself is pure and lives in `services.runtime.model`.
"""
from __future__ import annotations

from sqlalchemy import (
    BigInteger, Column, DateTime, ForeignKey, Identity, MetaData, String, Table, Text, bindparam, insert, select,
)
from sqlalchemy.dialects.postgresql import ARRAY

from smart110.common.v1 import common_pb2

from .db import compiled_once
from .model import TimelineEntry
from .timeutil import to_pb


def timeline_table(metadata: MetaData, name: str, subject_column: str, subject_key: str) -> Table:
    """A timeline table whose rows belong to `subject_key` (e.g. "reports.id") through `subject_column`."""
    return Table(
        name, metadata,
        Column("seq", BigInteger, Identity(always=True), primary_key=True),
        Column(subject_column, String(40), ForeignKey(f"{metadata.schema}.{subject_key}"), nullable=False,
               index=True),
        Column("action", String(40), nullable=False),
        Column("actor", Text, nullable=False),
        Column("roles", ARRAY(Text), nullable=False, server_default="{}"),
        Column("time", DateTime(timezone=True), nullable=False),
        Column("detail", Text, nullable=False, server_default=""),
        Column("reason", Text, nullable=False, server_default=""),
    )


# Entries one statement adds at most with a statement kept for reuse (a change appends a few).
_KEPT_STATEMENTS = 16
# Rows of one INSERT at most (7 parameters each, far below the protocol's 65535).
_MAX_ROWS = 1000
_FIELDS = ("action", "actor", "roles", "time", "detail", "reason")


class Timeline:
    """Appends to and reads one timeline table; entries are never changed.

    Entries are only ever appended: a change adds its new entries without reading the old ones
    (one multi-row INSERT, `insert_statement` and `insert_params`, which a repository may also run
    as part of a larger statement)."""

    def __init__(self, table: Table, subject_column: str):
        self.table = table
        self.subject = table.c[subject_column]
        self._inserts: dict[tuple[int, str], object] = {}
        self._compiled: dict[int, object] = {}
        self._of = (select(table).where(self.subject == bindparam("subject", type_=self.subject.type))
                    .order_by(table.c.seq))

    def insert_statement(self, n: int, *, prefix: str = ""):
        """INSERT of `n` entries of one subject in one statement, in order (their `seq` ascending);
        its parameters come from `insert_params` (with the same `prefix`, which keeps them apart from
        those of other statements it is combined with)."""
        stmt = self._inserts.get((n, prefix))
        if stmt is None:
            cols = self.table.c
            subject = bindparam(f"{prefix}subject", type_=self.subject.type)
            stmt = insert(self.table).values([
                {self.subject.name: subject,
                 **{f: bindparam(f"{prefix}e{i}_{f}", type_=cols[f].type) for f in _FIELDS}}
                for i in range(n)
            ])
            if n <= _KEPT_STATEMENTS:
                self._inserts[(n, prefix)] = stmt
        return stmt

    @staticmethod
    def insert_params(subject_id: str, entries: list[TimelineEntry], prefix: str = "") -> dict:
        params = {f"{prefix}subject": subject_id}
        for i, e in enumerate(entries):
            p = f"{prefix}e{i}_"
            params.update({p + "action": e.action, p + "actor": e.actor, p + "roles": e.roles, p + "time": e.time,
                           p + "detail": e.detail, p + "reason": e.reason})
        return params

    def add(self, conn, subject_id: str, entries: list[TimelineEntry]) -> None:
        for start in range(0, len(entries), _MAX_ROWS):
            chunk = entries[start:start + _MAX_ROWS]
            conn.execute(self._compiled_insert(len(chunk)), self.insert_params(subject_id, chunk))

    def _compiled_insert(self, n: int):
        """`insert_statement(n)` compiled once: SQLAlchemy does not cache a multi-row INSERT, so it
        would be compiled again for every entry a case or an alert gains."""
        stmt = self._compiled.get(n)
        if stmt is None:
            stmt = compiled_once(self.insert_statement(n))
            if n <= _KEPT_STATEMENTS:
                self._compiled[n] = stmt
        return stmt

    def of(self, conn, subject_id: str) -> list[TimelineEntry]:
        rows = conn.execute(self._of, {"subject": subject_id})
        return [TimelineEntry(r.action, r.actor, list(r.roles), r.time, r.detail, r.reason) for r in rows]

    def of_many(self, conn, subject_ids: list[str]) -> dict[str, list[TimelineEntry]]:
        """The timelines of several subjects in one query (a page of a list): {subject id: entries}."""
        found: dict[str, list[TimelineEntry]] = {i: [] for i in subject_ids}
        if subject_ids:
            for r in conn.execute(select(self.table).where(self.subject.in_(list(subject_ids)))
                                  .order_by(self.table.c.seq)):
                found[r._mapping[self.subject.name]].append(TimelineEntry(r.action, r.actor, list(r.roles), r.time, r.detail,
                                                                 r.reason))
        return found


def timeline_to_pb(entries: list[TimelineEntry], field) -> None:
    """Fills a repeated timeline field of any message whose entries have action, detail and stamp."""
    for e in entries:
        field.add(action=e.action, detail=e.detail,
                  stamp=common_pb2.AuditStamp(actor=e.actor, roles=e.roles, time=to_pb(e.time), reason=e.reason))
