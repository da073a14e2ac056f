"""PreviewReport: a report still being taken, classified and checked for the incidents it repeats
as the call-taker types (接警台), against a real Postgres over a real gRPC socket. Nothing is
recorded: no report, no event."""
from __future__ import annotations

from datetime import timedelta

import grpc
from sqlalchemy import func, select

from smart110.intake.v1 import intake_service_pb2 as pb
from services.intake.store import reports as reports_table
from tests.integration.intake_support import (
    CALL_TAKER, HANKOU, caller, error_of, intake, metadata_for, report, served, submit, time_slot,
)

__all__ = ["intake", "served"]  # the fixtures
NEAR = (HANKOU[0] + 0.001, HANKOU[1])


def preview(stub, r: pb.Report, md=CALL_TAKER) -> pb.ReportPreview:
    return stub.PreviewReport(pb.PreviewReportRequest(report=r), metadata=md)


def counts(rt) -> tuple[int, int]:
    """(reports, outbox events) stored now."""
    with rt.engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(reports_table)).scalar_one()
        events = conn.execute(select(func.count()).select_from(rt.tables.outbox)).scalar_one()
    return stored, events


def test_a_report_being_taken_is_classified_and_located_without_being_filed(intake):
    rt, stub = intake
    before = counts(rt)
    fight = preview(stub, report("小区门口有两个人打架，有人受伤流血了", point=HANKOU))
    assert fight.classification.category == pb.CATEGORY_POLICE
    assert fight.classification.incident_type in ("FIGHT", "ASSAULT")
    assert 1 <= fight.classification.priority <= 2
    assert fight.classification.reason and 0 < fight.classification.confidence <= 1
    assert fight.station_id and fight.grid_id.startswith(fight.station_id)
    assert (fight.point.longitude, fight.point.latitude) == HANKOU
    lost = preview(stub, report("我的身份证丢了，去哪里补办", point=None))
    assert lost.classification.category != pb.CATEGORY_POLICE and not lost.station_id
    assert counts(rt) == before


def test_the_classification_follows_the_words_as_they_are_typed(intake):
    _, stub = intake
    words = "我家孩子放学路上被人绑架了"
    partial = preview(stub, report(words[:4], point=HANKOU))
    whole = preview(stub, report(words, point=HANKOU))
    assert whole.classification.category == pb.CATEGORY_POLICE
    assert whole.classification.priority == 1
    assert "绑架" in whole.classification.reason
    assert (partial.classification.incident_type, partial.classification.priority) != (
        whole.classification.incident_type, whole.classification.priority)


def test_an_open_incident_it_repeats_is_a_candidate_and_filing_merges_into_it(intake):
    _, stub = intake
    t = time_slot()
    first = submit(stub, report("小区门口有两个人打架，其中一人拿着棍子", point=HANKOU, at=t))
    far = submit(stub, report("小区门口有两个人打架", point=(HANKOU[0] + 0.02, HANKOU[1]), at=t))
    taking = report("楼下好多人在打架，有人头被打破了", point=NEAR, at=t + timedelta(minutes=6))
    seen = preview(stub, taking)
    [candidate] = [c for c in seen.duplicate_candidates]
    assert candidate.report == first.name and candidate.master
    assert candidate.description == first.description and candidate.station_id == first.station_id
    assert 50 < candidate.distance_m < 150 and "相距" in candidate.reason
    assert far.name not in [c.report for c in seen.duplicate_candidates]
    # Filed, it is merged into the candidate the preview named as master.
    filed = submit(stub, taking)
    assert filed.merged_into == candidate.report


def test_a_different_kind_of_matter_at_the_same_place_is_no_candidate(intake):
    _, stub = intake
    t = time_slot()
    submit(stub, report("小区门口有两个人打架", point=HANKOU, at=t))
    seen = preview(stub, report("我家着火了，浓烟很大", point=NEAR, at=t + timedelta(minutes=3)))
    assert list(seen.duplicate_candidates) == []


def test_candidates_of_another_station_are_not_shown_to_a_station_call_taker(intake):
    _, stub = intake
    t = time_slot()
    first = submit(stub, report("小区门口有两个人打架，其中一人拿着棍子", point=HANKOU, at=t))
    taking = report("楼下好多人在打架", point=NEAR, at=t + timedelta(minutes=4))
    own = metadata_for(["call_taker"], station=first.station_id)
    other_station = "S02" if first.station_id != "S02" else "S01"
    other = metadata_for(["call_taker"], station=other_station)
    assert [c.report for c in preview(stub, taking, own).duplicate_candidates] == [first.name]
    assert list(preview(stub, taking, other).duplicate_candidates) == []


def test_bad_fields_are_named_and_only_call_takers_preview(intake):
    _, stub = intake
    code, fields, _ = error_of(lambda: preview(stub, report("有人打架", phone="110")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["report.caller.phone_number"]
    bad_point = report("有人打架", point=(200.0, 30.0))
    code, fields, _ = error_of(lambda: preview(stub, bad_point))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and fields == ["report.location.point.longitude"]
    code, fields, _ = error_of(lambda: stub.PreviewReport(pb.PreviewReportRequest(), metadata=CALL_TAKER))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "report" in fields
    # Nothing typed yet but the channel: no place, no candidates, still an answer.
    empty = preview(stub, pb.Report(channel=pb.CHANNEL_PHONE, caller=pb.Caller(phone_number=caller())))
    assert not empty.station_id and list(empty.duplicate_candidates) == []
    code, _, _ = error_of(lambda: preview(stub, report("有人打架"), metadata_for(["officer"], station="S01")))
    assert code == grpc.StatusCode.PERMISSION_DENIED
