"""The shared audit trail against a real Postgres: append-only, ordered, per subject."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, MetaData, String, Table

from services.runtime.audit import Timeline, TimelineEntry, timeline_table
from services.runtime.db import ensure_service_database, make_engine


def test_timeline_keeps_entries_in_order_per_subject(admin_url):
    engine = make_engine(ensure_service_database(admin_url, "auditcheck", "pw"))
    metadata = MetaData(schema="auditcheck")
    Table("things", metadata, Column("id", String(40), primary_key=True))
    timeline = Timeline(timeline_table(metadata, "thing_timeline", "thing_id", "things.id"), "thing_id")
    metadata.drop_all(engine)
    metadata.create_all(engine)
    t = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    with engine.begin() as conn:
        conn.execute(metadata.tables["auditcheck.things"].insert(), [{"id": "a"}, {"id": "b"}])
        timeline.add(conn, "a", [TimelineEntry("REPORTED", "p1", ["call_taker"], t, "渠道 PHONE"),
                                 TimelineEntry("CORRECTED", "p2", ["dispatcher"], t, "类型改为 FIGHT", "误分类")])
        timeline.add(conn, "b", [TimelineEntry("REPORTED", "p3", [], t)])
        timeline.add(conn, "a", [])
    with engine.connect() as conn:
        a = timeline.of(conn, "a")
        assert [(e.action, e.actor, e.roles, e.reason) for e in a] == [
            ("REPORTED", "p1", ["call_taker"], ""), ("CORRECTED", "p2", ["dispatcher"], "误分类")]
        assert a[0].time == t
        assert [e.action for e in timeline.of(conn, "b")] == ["REPORTED"]
        assert timeline.of(conn, "c") == []
    engine.dispose()
