"""What an event says changed (changes.py), and the outbox's guard on an event's size."""
from __future__ import annotations

import logging

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import MetaData

from smart110.common.v1 import common_pb2
from smart110.intake.v1 import intake_service_pb2 as pb

from services.runtime import metrics
from services.runtime.changes import changed_fields, without
from services.runtime.outbox import MAX_EVENT_BYTES, Outbox, outbox_table


def report(**kw) -> pb.Report:
    r = pb.Report(name="reports/r1", status=pb.REPORT_STATUS_CLASSIFIED, description="有人打架",
                  classification=pb.Classification(category=pb.CATEGORY_POLICE, incident_type="FIGHT", priority=2))
    r.receive_time.FromSeconds(1_700_000_000)
    r.MergeFrom(pb.Report(**kw))
    return r


def test_changed_fields_names_each_changed_leaf_in_field_order():
    before = report()
    after = report(status=pb.REPORT_STATUS_DISPATCHED, dispatch_case="cases/c1")
    after.classification.priority = 1
    after.answer_time.FromSeconds(1_700_000_003)
    assert changed_fields(before, after) == ["classification.priority", "status", "answer_time", "dispatch_case"]
    assert changed_fields(after, after) == []


def test_a_time_a_list_or_a_message_set_on_one_side_is_one_path():
    before, after = report(), report()
    after.receive_time.FromSeconds(1_700_000_001)
    after.location.CopyFrom(common_pb2.Location(point=common_pb2.GeoPoint(longitude=114.3, latitude=30.5)))
    after.classification.rule_ids.append("KW-FIGHT")
    assert changed_fields(before, after) == ["location", "classification.rule_ids", "receive_time"]
    moved = report(location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=114.31, latitude=30.5)))
    assert changed_fields(after, moved) == ["location.point.longitude", "classification.rule_ids", "receive_time"]


def test_changed_fields_refuses_two_kinds_of_message():
    with pytest.raises(TypeError):
        changed_fields(pb.Report(), pb.Caller())


def test_without_clears_the_named_fields_of_a_copy():
    r = report()
    r.timeline.add(action="REPORTED")
    r.duplicates.append("reports/r2")
    bare = without(r, ("timeline", "duplicates"))
    assert not bare.timeline and not bare.duplicates and bare.description == r.description
    assert len(r.timeline) == 1 and list(r.duplicates) == ["reports/r2"], "the original is left alone"


class _Result:
    def scalar_one(self):
        return 7


class FakeConnection:
    """Records what the outbox writes: enough of a connection for `Outbox.publish`."""

    def __init__(self):
        self.statements = []

    def execute(self, statement, params=None):
        self.statements.append(statement)
        return _Result()


def oversized() -> float:
    return REGISTRY.get_sample_value("smart110_outbox_oversized_events_total",
                                     {"service": metrics.service(), "type": "intake.ReportUpdated"}) or 0.0


def test_an_event_above_the_bound_is_published_logged_and_counted(caplog):
    outbox = Outbox(outbox_table(MetaData(schema="intake")), "intake")
    small = pb.ReportUpdated(report=report(), action="ANSWERED")
    big = pb.ReportUpdated(report=report(description="打" * (MAX_EVENT_BYTES // 3 + 1)), action="CORRECTED")
    assert len(small.SerializeToString()) < MAX_EVENT_BYTES < len(big.SerializeToString())
    before = oversized()
    conn = FakeConnection()
    with caplog.at_level(logging.WARNING, logger="smart110.outbox"):
        assert outbox.publish(conn, "intake.ReportUpdated", "reports/r1", small) == 7
        assert not caplog.records and oversized() == before
        assert outbox.publish(conn, "intake.ReportUpdated", "reports/r1", big) == 7
    assert len(conn.statements) == 2, "both events were written (lock, insert and notify in one statement each)"
    assert oversized() == before + 1
    [record] = caplog.records
    assert "intake.ReportUpdated" in record.getMessage() and "reports/r1" in record.getMessage()
    assert str(len(big.SerializeToString())) in record.getMessage()
