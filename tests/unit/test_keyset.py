"""The one keyset-pagination helper: the predicate, the order and the extra row."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, MetaData, String, Table, select
from sqlalchemy.dialects import postgresql

from services.runtime.keyset import after_key

t = Table("things", MetaData(), Column("id", String), Column("create_time", DateTime(timezone=True)))


def sql(q) -> str:
    return str(q.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


def test_first_page_is_ordered_newest_first_with_one_extra_row():
    text = sql(after_key(select(t), t.c.create_time, t.c.id, None, 10))
    assert "WHERE" not in text
    assert "ORDER BY things.create_time DESC, things.id DESC" in text and "LIMIT 11" in text


def test_next_page_starts_strictly_after_the_last_row():
    at = datetime(2026, 12, 3, 8, 0, tzinfo=timezone.utc)
    text = sql(after_key(select(t), t.c.create_time, t.c.id, (at, "r9"), 5))
    assert "things.create_time < '2026-12-03 08:00:00+00:00'" in text
    assert "things.create_time = '2026-12-03 08:00:00+00:00' AND things.id < 'r9'" in text
    assert "LIMIT 6" in text


def test_ascending_order_pages_forward():
    text = sql(after_key(select(t), t.c.create_time, t.c.id, (datetime(2026, 1, 1, tzinfo=timezone.utc), "a"), 3,
                         descending=False))
    assert "things.create_time > " in text and "things.id > 'a'" in text
    assert "ORDER BY things.create_time ASC, things.id ASC" in text
