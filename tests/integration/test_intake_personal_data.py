"""Intake's events carry no caller contact, and a service reads it through GetCallerContact, each
read recorded (个人信息查看留痕): against a real Postgres over intake's own gRPC port, reading the
events as they are stored in the outbox."""
from __future__ import annotations

import grpc
from google.protobuf import field_mask_pb2

from smart110.intake.v1 import intake_service_pb2 as pb
from services.intake import queries
from services.runtime.policy import ALL_ROLES, SERVICE
from tests import support
from tests.integration.intake_support import (
    CALL_TAKER, HANKOU, WUCHANG, caller, error_of, events_about, intake, metadata_for, report, rid, served, submit,
    time_slot,
)

__all__ = ["intake", "served"]  # the fixtures
NAME = "欧阳秀英"
DISPATCH = support.caller(["service"], sub="dispatch")
REFERRAL = support.caller(["service"], sub="referral")
EXPERT = metadata_for(["expert"], "expert-pd", "专家周敏")


def filed(stub, description: str, *, point=HANKOU, name: str = NAME) -> tuple[pb.Report, str]:
    """A report filed by a caller with a phone number and a name; (report, phone)."""
    phone = caller()
    r = report(description, point=point, at=time_slot(), phone=phone)
    r.caller.name = name
    return submit(stub, r), phone


def contact(stub, name: str, purpose=pb.CALLER_CONTACT_PURPOSE_WORK_ORDER, md=REFERRAL, reference: str = ""):
    return stub.GetCallerContact(pb.GetCallerContactRequest(name=name, purpose=purpose, reference=reference),
                                 metadata=md, timeout=10)


def views_of(rt, report_name: str) -> list[dict]:
    with rt.engine.connect() as conn:
        return queries.personal_data_views(conn, report_name.split("/")[1])


def test_no_event_of_a_report_carries_the_callers_phone_number_or_name(intake):
    rt, stub = intake
    fight, phone = filed(stub, "小区门口有两个人打架，其中一人拿着棍子")
    repeat, repeat_phone = filed(stub, "刚才报的打架，现在还在打", name="司马相如")
    stub.AnswerReport(pb.AnswerReportRequest(request_id=rid(), name=fight.name), metadata=CALL_TAKER)
    stub.UpdateReport(pb.UpdateReportRequest(
        request_id=rid(), report=pb.Report(name=fight.name, classification=pb.Classification(priority=3)),
        update_mask=field_mask_pb2.FieldMask(paths=["classification.priority"]), reason="已无人持械，降级"),
        metadata=CALL_TAKER)
    stub.MergeReport(pb.MergeReportRequest(request_id=rid(), name=repeat.name, master=fight.name,
                                           reason="同一起打架"), metadata=CALL_TAKER)
    stub.RateReport(pb.RateReportRequest(request_id=rid(), name=fight.name, satisfaction=1, comment="很快"),
                    metadata=CALL_TAKER)
    # A consultation an expert claims.
    question, _ = filed(stub, "请问公积金贷款买二手房，公积金中心需要派出所开什么证明？", point=WUCHANG)
    assert question.consultation.status == pb.CONSULTATION_STATUS_QUEUED
    stub.ClaimConsultation(pb.ClaimConsultationRequest(request_id=rid(), name=question.consultation.name),
                           metadata=EXPERT)

    secrets = {phone, repeat_phone, phone[-8:], NAME, "司马相如"}
    seen = []
    for r in (fight, repeat, question):
        for event_type, payload in events_about(rt, r.name):
            seen.append((r.name, event_type, getattr(payload, "action", "")))
            raw = payload.SerializeToString()
            assert not [s for s in secrets if s.encode() in raw], f"{event_type} of {r.name} carries personal data"
            assert not payload.report.HasField("caller"), event_type
            assert not [f for f in getattr(payload, "changed_fields", []) if f.startswith("caller")]
    actions = {a for _, _, a in seen}
    assert {"ANSWERED", "CORRECTED", "MERGED", "DUPLICATE_LINKED", "RATED", "CONSULTATION_CLAIMED"} <= actions
    rated = [p for t, p in events_about(rt, fight.name) if getattr(p, "action", "") == "RATED"]
    assert {"satisfaction", "satisfaction_comment"} <= set(rated[-1].changed_fields), "what changed is still said"
    # What a person with the right sees is unchanged: the call-taker's GetReport has the caller.
    whole = stub.GetReport(pb.GetReportRequest(name=fight.name), metadata=CALL_TAKER)
    assert (whole.caller.phone_number, whole.caller.name) == (phone, NAME)


def test_a_service_reads_the_callers_contact_and_every_read_is_recorded_with_its_purpose(intake):
    rt, stub = intake
    r, phone = filed(stub, "楼下井盖丢了，很危险")
    got = contact(stub, r.name)
    assert (got.report, got.caller.phone_number, got.caller.name) == (r.name, phone, NAME)
    reference = "cases/c-1/stopPayments/sp-1"
    contact(stub, r.name, pb.CALLER_CONTACT_PURPOSE_STOP_PAYMENT, DISPATCH, reference=reference)
    reads = [(v["actor"], v["roles"], v["method"], v["purpose"], v["reference"], v["fields"])
             for v in views_of(rt, r.name) if v["method"] == "GetCallerContact"]
    assert reads == [
        ("service:referral", ["service"], "GetCallerContact", "WORK_ORDER", "", ["caller.phone_number", "caller.name"]),
        ("service:dispatch", ["service"], "GetCallerContact", "STOP_PAYMENT", reference,
         ["caller.phone_number", "caller.name"]),
    ]
    # A service's GetReport shows the caller masked, as a list does: the contact is read on the record.
    masked = stub.GetReport(pb.GetReportRequest(name=r.name), metadata=DISPATCH)
    assert "*" in masked.caller.phone_number and masked.caller.phone_number != phone
    assert [v["method"] for v in views_of(rt, r.name)].count("GetReport") == 0


def test_a_report_without_a_caller_answers_empty_and_records_no_view(intake):
    rt, stub = intake
    r = report("一键报警：岗亭有人求助", at=time_slot(), channel=pb.CHANNEL_KIOSK)
    r.ClearField("caller")
    kiosk = submit(stub, r)
    got = contact(stub, kiosk.name, pb.CALLER_CONTACT_PURPOSE_STOP_PAYMENT, DISPATCH)
    assert not got.caller.phone_number and not got.caller.name
    assert views_of(rt, kiosk.name) == [], "nothing personal was seen"


def test_contact_requests_are_checked_field_by_field(intake):
    _, stub = intake
    code, fields, _ = error_of(lambda: stub.GetCallerContact(
        pb.GetCallerContactRequest(name="cases/x", reference="长" * 201), metadata=DISPATCH, timeout=10))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and set(fields) == {"name", "purpose", "reference"}
    code, _, _ = error_of(lambda: stub.GetCallerContact(pb.GetCallerContactRequest(
        name="reports/nope", purpose=pb.CALLER_CONTACT_PURPOSE_WORK_ORDER), metadata=DISPATCH, timeout=10))
    assert code == grpc.StatusCode.NOT_FOUND


def test_no_person_reads_a_callers_contact_and_a_refused_read_is_not_recorded(intake):
    rt, stub = intake
    r, _phone = filed(stub, "有人在小区里乱扔垃圾")
    for role in sorted(ALL_ROLES - {SERVICE}):
        md = metadata_for([role], station="S01" if role in ("officer", "station_chief", "legal_officer") else "")
        code, _, reason = error_of(lambda: contact(stub, r.name, md=md))
        assert (code, reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED"), role
    assert not [v for v in views_of(rt, r.name) if v["method"] == "GetCallerContact"]
