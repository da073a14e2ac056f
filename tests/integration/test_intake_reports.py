"""Intake against a real Postgres over a real gRPC channel: validation, location through the
gazetteer, classification of the sample reports, corrections, lists, search and events."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import grpc
import pytest
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

import sampledata as sd
from sampledata import gazetteer as sample_gazetteer
from smart110.common.v1 import common_pb2, events_pb2
from smart110.intake.v1 import intake_service_pb2 as pb
from smart110.intake.v1 import intake_service_pb2_grpc as pb_grpc
from tests import support
from tests.integration.intake_support import served

__all__ = ["served"]  # the fixture


def as_user(*roles: str, sub: str = "p-call-taker-01") -> tuple:
    return support.caller(list(roles), station="S01", sub=sub, name="接警员甲")


CALL_TAKER = as_user("call_taker")
DISPATCHER = as_user("dispatcher", sub="p-dispatcher-01")


@pytest.fixture(scope="module")
def stub(served):
    from services.intake.__main__ import SPEC

    SPEC.seed(served.rt)  # idempotent
    return pb_grpc.IntakeServiceStub(served.channel)


def unique_phone() -> str:
    return "139" + f"{uuid.uuid4().int % 10**8:08d}"


class Slots:
    """Receive times an hour apart before the service's clock: separate incidents are never merged as repeats."""

    def __init__(self):
        self.next = support.START - timedelta(days=60, minutes=uuid.uuid4().int % 600)

    def __call__(self) -> timestamp_pb2.Timestamp:
        self.next += timedelta(minutes=61)
        return ts(self.next)


slot = Slots()


def ts(dt: datetime) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromDatetime(dt)
    return t


def report_from_sample(r: dict, **over) -> pb.Report:
    msg = pb.Report(channel=pb.Channel.Value("CHANNEL_" + r["channel"]),
                    caller=pb.Caller(phone_number=r["caller_phone"], name=r["caller_name"] or ""),
                    address_text=r["address"], description=r["description"], receive_time=slot())
    if r["location"]:
        msg.location.CopyFrom(common_pb2.Location(point=common_pb2.GeoPoint(**r["location"]), accuracy_m=20,
                                                  source=common_pb2.LOCATION_SOURCE_GNSS))
    for k, v in over.items():
        setattr(msg, k, v)
    return msg


def submit(stub, report: pb.Report, request_id: str | None = None, metadata=CALL_TAKER) -> pb.Report:
    return stub.ReportIncident(pb.ReportIncidentRequest(request_id=request_id or uuid.uuid4().hex, report=report),
                               metadata=metadata, timeout=10)


def fight(**over) -> pb.Report:
    r = pb.Report(channel=pb.CHANNEL_PHONE, caller=pb.Caller(phone_number=unique_phone(), name="王建国"),
                  location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=sd.stations()[0].hq[0],
                                                                          latitude=sd.stations()[0].hq[1]),
                                               accuracy_m=15, source=common_pb2.LOCATION_SOURCE_GNSS),
                  description="小区门口有两个人打架，其中一人拿着棍子", receive_time=slot())
    for k, v in over.items():
        if isinstance(v, (common_pb2.Location, pb.Caller, timestamp_pb2.Timestamp)):
            getattr(r, k).CopyFrom(v)
        elif isinstance(v, list):
            getattr(r, k).extend(v)
        else:
            setattr(r, k, v)
    return r


def bad_fields(err: grpc.RpcError) -> set[str]:
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
    bad = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad) for d in rpc_status.from_call(err).details)
    return {v.field for v in bad.field_violations}


def events_about(stub, name: str, types=()) -> list[events_pb2.Event]:
    stream = stub.StreamEvents(events_pb2.StreamEventsRequest(types=list(types), stop_at_end=True), timeout=10)
    return [e for e in stream if e.subject == name]


# -- every channel, every sample report ----------------------------------------------

# The neighbours' fight that began with noise, which the classifier reads as noise (known; the
# unit test of the samples marks it).
READ_OTHERWISE = {"R018": ("POLICE", "NOISE")}


def test_every_sample_report_is_recorded_located_and_classified_as_expected(stub):
    for r in sd.sample_reports():
        got = submit(stub, report_from_sample(r))
        c = got.classification
        expected = READ_OTHERWISE.get(r["report_id"], (r["expected_category"], r["expected_incident_type"]))
        assert (pb.Category.Name(c.category), c.incident_type) == ("CATEGORY_" + expected[0], expected[1]), (
            r["report_id"], c.reason)
        assert c.reason and c.rule_ids and 1 <= c.priority <= 4
        if r["location"]:
            assert got.station_id == r["expected_station_id"], r["report_id"]
        elif r["address"]:
            # Address-only reports go through the gazetteer: located when confident, with the confidence shown.
            m = got.address_match
            assert m.address.station_id == r["expected_station_id"], r["report_id"]
            if m.method == pb.ADDRESS_MATCH_METHOD_FUZZY_TEXT:
                assert got.station_id == r["expected_station_id"]
                assert got.location.source == common_pb2.LOCATION_SOURCE_GAZETTEER
                assert 0 < m.confidence < 1
            else:
                # Not one address, but the street office area (街道) named lies in one station.
                assert m.method == pb.ADDRESS_MATCH_METHOD_STREET, r["report_id"]
                assert got.station_id == r["expected_station_id"] and not got.HasField("location")
                assert "待接警员确认具体位置" in " ".join(e.detail for e in got.timeline)
        actions = [e.action for e in got.timeline]
        assert actions[0] == "REPORTED" and "CLASSIFIED" in actions
        expected_status = {"INVALID": {"REPORT_STATUS_CLOSED"},
                           # Answered at once from the knowledge base, or waiting for an expert.
                           "CONSULTATION": {"REPORT_STATUS_ANSWERED", "REPORT_STATUS_CLASSIFIED"}}.get(
            r["expected_category"], {"REPORT_STATUS_CLASSIFIED"})
        assert pb.ReportStatus.Name(got.status) in expected_status, r["report_id"]


def test_silent_alarm_is_flagged_text_only_and_urgent(stub):
    r = next(x for x in sd.sample_reports() if x["channel"] == "SILENT_ALARM")
    got = submit(stub, report_from_sample(r))
    assert got.silent and not got.voice_callback_allowed
    assert got.classification.priority == 1 and "禁止语音回拨" in got.classification.reason
    assert any(e.action == "FLAGGED" and "无声报警" in e.detail for e in got.timeline)
    phone = submit(stub, fight())
    assert not phone.silent and phone.voice_callback_allowed
    with pytest.raises(grpc.RpcError) as err:
        submit(stub, fight(channel=pb.CHANNEL_SILENT_ALARM, attachments=[common_pb2.Attachment(
            kind=common_pb2.ATTACHMENT_KIND_VOICE, content_type="audio/amr", size_bytes=2000, sha256="a" * 64,
            storage_uri="s3://evidence/v.amr")]))
    assert bad_fields(err.value) == {"report.attachments[0].kind"}


def test_bad_input_is_refused_naming_every_field(stub):
    with pytest.raises(grpc.RpcError) as err:
        submit(stub, pb.Report(channel=pb.CHANNEL_UNSPECIFIED, caller=pb.Caller(phone_number="12345"), description="",
                               location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=200, latitude=30),
                                                            accuracy_m=-5), language="chinese"))
    assert bad_fields(err.value) == {
        "report.channel", "report.caller.phone_number", "report.location.point.longitude",
        "report.location.accuracy_m", "report.description", "report.language"}
    with pytest.raises(grpc.RpcError) as err:
        submit(stub, fight(channel=99))
    assert bad_fields(err.value) == {"report.channel"}
    with pytest.raises(grpc.RpcError) as err:
        submit(stub, fight(caller=pb.Caller(phone_number="110"), description="打" * 2001, address_code="123",
                           attachments=[common_pb2.Attachment(kind=common_pb2.ATTACHMENT_KIND_DOCUMENT,
                                                              content_type="application/pdf", size_bytes=10,
                                                              sha256="a" * 64, storage_uri="s3://b/x.pdf")]))
    assert bad_fields(err.value) == {"report.caller.phone_number", "report.description", "report.address_code",
                                     "report.attachments[0].kind"}
    with pytest.raises(grpc.RpcError) as err:
        submit(stub, fight(attachments=[common_pb2.Attachment(
            kind=common_pb2.ATTACHMENT_KIND_IMAGE, content_type="image/jpeg", size_bytes=30 * 1024 * 1024,
            sha256="XYZ", storage_uri="ftp://host/x.jpg")]))
    assert bad_fields(err.value) == {"report.attachments[0].size_bytes", "report.attachments[0].sha256",
                                     "report.attachments[0].storage_uri"}


def test_a_report_with_only_a_photo_and_a_landline_is_accepted_with_default_language(stub):
    got = submit(stub, fight(description="", caller=pb.Caller(phone_number="027-85551234"), attachments=[
        common_pb2.Attachment(kind=common_pb2.ATTACHMENT_KIND_IMAGE, content_type="image/jpeg", size_bytes=204800,
                              sha256="ab" * 32, storage_uri="s3://evidence/2026/11/a.jpg")]))
    assert got.language == "zh-CN" and len(got.attachments) == 1
    # No words: a call without a description is a silent call (无声报警) for the call-taker to confirm.
    assert got.classification.incident_type == "SILENT_ALARM" and got.needs_confirmation
    assert "待接警员确认" in got.classification.reason


def test_address_code_locates_exactly(stub):
    a = sample_gazetteer.addresses()[777]
    got = submit(stub, pb.Report(channel=pb.CHANNEL_KIOSK, address_code=a.code, description="这里有人打架",
                                 receive_time=slot()))
    m = got.address_match
    assert (m.method, m.confidence, m.address.address_code) == (pb.ADDRESS_MATCH_METHOD_EXACT_CODE, 1.0, a.code)
    assert (got.station_id, got.grid_id) == (a.station_id, a.grid_id)
    assert (got.location.point.longitude, got.location.point.latitude) == (a.lon, a.lat)
    assert any(e.action == "GEOCODED" and a.code in e.detail for e in got.timeline)


def test_search_addresses_by_text_and_by_code(stub):
    a = next(x for x in sample_gazetteer.addresses() if x.building.endswith("栋"))
    res = stub.SearchAddresses(pb.SearchAddressesRequest(query=f"{a.road}{a.house_number}{a.building}",
                                                         page_size=5), timeout=5).results
    assert res[0].address.address_code == a.code and res[0].method == pb.ADDRESS_MATCH_METHOD_FUZZY_TEXT
    assert [r.score for r in res] == sorted((r.score for r in res), reverse=True)
    res = stub.SearchAddresses(pb.SearchAddressesRequest(query=a.code), timeout=5).results
    assert [(r.address.address_code, r.score) for r in res] == [(a.code, 1.0)]
    assert res[0].address.full_address == a.full_address and res[0].address.station_id == a.station_id
    with pytest.raises(grpc.RpcError) as err:
        stub.SearchAddresses(pb.SearchAddressesRequest(query=" ", page_size=99), timeout=5)
    assert bad_fields(err.value) == {"query", "page_size"}


# -- classification rules that need the database or the clock -----------------------------

def test_repeated_invalid_calls_from_one_number_become_harassment(stub, served):
    phone = unique_phone()
    start = served.clock() - timedelta(minutes=30)
    categories = []
    for i, text in enumerate(["打错了", "哈哈开玩笑的", "骗你的，试试110", "喂？喂？"]):
        got = submit(stub, pb.Report(channel=pb.CHANNEL_PHONE, caller=pb.Caller(phone_number=phone),
                                     description=text, address_text="江岸区大智路",
                                     receive_time=ts(start + timedelta(minutes=i))))
        categories.append((got.classification.incident_type, got.classification.category))
    assert categories[-1] == ("HARASSING_CALL", pb.CATEGORY_INVALID)
    last = got.classification
    assert "repeat-invalid-caller" in last.rule_ids and "3次无效报警" in last.reason
    # Another number is not affected.
    other = submit(stub, pb.Report(channel=pb.CHANNEL_PHONE, caller=pb.Caller(phone_number=unique_phone()),
                                   description="喂？喂？", address_text="江岸区大智路", receive_time=slot()))
    assert other.classification.category == pb.CATEGORY_POLICE


def test_noise_at_night_is_a_police_matter_with_a_higher_priority(stub):
    night = datetime(2026, 11, 20, 15, 30, tzinfo=timezone.utc)  # 23:30 in 江城
    got = submit(stub, fight(description="楼下烧烤摊有人划拳喧哗，噪音很大", receive_time=ts(night)))
    c = got.classification
    assert (c.category, c.incident_type, c.priority) == (pb.CATEGORY_POLICE, "NOISE", 3)
    assert "time-night-noise" in c.rule_ids
    day = submit(stub, fight(description="楼下烧烤摊有人划拳喧哗，噪音很大", receive_time=ts(night - timedelta(hours=10))))
    assert day.classification.priority == 4


# -- corrections --------------------------------------------------------------

def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def test_call_taker_corrects_the_classification_kept_in_the_timeline_and_announced(stub):
    got = submit(stub, fight(description="买菜的跟摊主吵起来了，谁也不让谁"))
    assert got.classification.incident_type == "DISPUTE"
    req = pb.UpdateReportRequest(
        request_id=uuid.uuid4().hex,
        report=pb.Report(name=got.name, classification=pb.Classification(
            category=pb.CATEGORY_POLICE, incident_type="DOMESTIC_VIOLENCE", priority=2)),
        update_mask=mask("classification.incident_type", "classification.priority"),
        reason="回拨核实为夫妻间家暴")
    fixed = stub.UpdateReport(req, metadata=CALL_TAKER, timeout=10)
    c = fixed.classification
    assert (c.incident_type, c.priority, c.corrected) == ("DOMESTIC_VIOLENCE", 2, True)
    assert "接警员更正" in c.reason and "回拨核实为夫妻间家暴" in c.reason
    entry = fixed.timeline[-1]
    assert entry.action == "CORRECTED" and entry.stamp.actor == "p-call-taker-01"
    assert entry.stamp.reason == "回拨核实为夫妻间家暴" and "call_taker" in entry.stamp.roles
    assert "纠纷（DISPUTE） → 家庭暴力（DOMESTIC_VIOLENCE）" in entry.detail and "3级 → 2级" in entry.detail
    # The same request again changes nothing.
    again = stub.UpdateReport(req, metadata=CALL_TAKER, timeout=10)
    assert len(again.timeline) == len(fixed.timeline)
    read = stub.GetReport(pb.GetReportRequest(name=got.name), metadata=CALL_TAKER, timeout=5)
    assert [e.action for e in read.timeline].count("CORRECTED") == 1
    updates = events_about(stub, got.name, ["intake.ReportUpdated"])
    assert len(updates) == 1
    payload = pb.ReportUpdated()
    updates[0].payload.Unpack(payload)
    assert payload.action == "CORRECTED" and payload.report.classification.incident_type == "DOMESTIC_VIOLENCE"


def test_correcting_category_and_location_reroutes_the_report(stub):
    got = submit(stub, fight(description="打错了不好意思"))
    assert got.classification.category == pb.CATEGORY_INVALID and got.status == pb.REPORT_STATUS_CLOSED
    target = sd.stations()[10]
    fixed = stub.UpdateReport(pb.UpdateReportRequest(
        request_id=uuid.uuid4().hex,
        report=pb.Report(name=got.name, classification=pb.Classification(
            category=pb.CATEGORY_POLICE, incident_type="FIGHT", priority=2),
            location=common_pb2.Location(point=common_pb2.GeoPoint(longitude=target.hq[0], latitude=target.hq[1]))),
        update_mask=mask("classification", "location"), reason="回拨确认有人斗殴，位置按地图选点"),
        metadata=CALL_TAKER, timeout=10)
    assert fixed.status == pb.REPORT_STATUS_CLASSIFIED and fixed.station_id == target.station_id
    assert fixed.location.source == common_pb2.LOCATION_SOURCE_CALL_TAKER
    assert [e.action for e in fixed.timeline][-2:] == ["CORRECTED", "ROUTED"]


def test_correcting_the_address_of_an_address_only_report_geocodes_it_again(stub):
    a, b = sample_gazetteer.addresses()[10], sample_gazetteer.addresses()[-10]
    got = submit(stub, pb.Report(channel=pb.CHANNEL_WECHAT, address_code=a.code, description="门口有人打架",
                                 receive_time=slot()))
    assert got.station_id == a.station_id
    fixed = stub.UpdateReport(pb.UpdateReportRequest(
        request_id=uuid.uuid4().hex, report=pb.Report(name=got.name, address_code=b.code),
        update_mask=mask("address_code"), reason="报警人更正地址"), metadata=CALL_TAKER, timeout=10)
    assert fixed.address_match.address.address_code == b.code and fixed.station_id == b.station_id


def test_illegal_corrections(stub):
    got = submit(stub, fight())

    def update(report, paths, reason="核实", metadata=CALL_TAKER):
        return stub.UpdateReport(pb.UpdateReportRequest(request_id=uuid.uuid4().hex, report=report,
                                                        update_mask=mask(*paths), reason=reason),
                                 metadata=metadata, timeout=10)

    with pytest.raises(grpc.RpcError) as err:
        update(pb.Report(name=got.name), ["description", "classification.priority", "station_id"], reason="")
    assert bad_fields(err.value) == {"update_mask.paths[0]", "update_mask.paths[2]", "reason",
                                     "report.classification.priority"}
    assert "'description' cannot be corrected" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        update(pb.Report(name=got.name, classification=pb.Classification(incident_type="WATER_OUTAGE")),
               ["classification.incident_type"])
    assert bad_fields(err.value) == {"report.classification.incident_type"}
    with pytest.raises(grpc.RpcError) as err:
        update(pb.Report(name=got.name, classification=pb.Classification(incident_type="NO_SUCH_TYPE")),
               ["classification.incident_type"])
    assert bad_fields(err.value) == {"report.classification.incident_type"}
    with pytest.raises(grpc.RpcError) as err:
        update(pb.Report(name=got.name), ["location"])
    assert bad_fields(err.value) == {"report.location.point"}
    with pytest.raises(grpc.RpcError) as err:
        update(pb.Report(name=got.name), [])
    assert bad_fields(err.value) >= {"update_mask"}
    with pytest.raises(grpc.RpcError) as err:
        update(pb.Report(name="reports/20260101-000000000000", classification=pb.Classification(priority=1)),
               ["classification.priority"])
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:
        update(pb.Report(name=got.name, classification=pb.Classification(priority=1)), ["classification.priority"],
               metadata=DISPATCHER)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def test_a_merged_duplicate_is_corrected_through_its_master(stub):
    at = slot()
    phone = pb.Caller(phone_number=unique_phone())
    master = submit(stub, fight(caller=phone, receive_time=at))
    again = at.ToDatetime(tzinfo=timezone.utc) + timedelta(minutes=5)
    duplicate = submit(stub, fight(caller=phone, description="刚才报的打架，警察怎么还没到", receive_time=ts(again)))
    assert duplicate.status == pb.REPORT_STATUS_MERGED and duplicate.merged_into == master.name
    with pytest.raises(grpc.RpcError) as err:
        stub.UpdateReport(pb.UpdateReportRequest(
            request_id=uuid.uuid4().hex, report=pb.Report(name=duplicate.name, classification=pb.Classification(
                priority=1)), update_mask=mask("classification.priority"), reason="升级"),
            metadata=CALL_TAKER, timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and master.name.split("/")[1] in err.value.details()


# -- lists and search ---------------------------------------------------------

def test_list_filters_pagination_masking_and_text_search(stub):
    tag = uuid.uuid4().hex[:8]
    names, times = [], []
    for i in range(7):
        channel = pb.CHANNEL_PHONE if i % 2 == 0 else pb.CHANNEL_WECHAT
        at = slot()
        times.append(at.ToDatetime(tzinfo=timezone.utc))
        got = submit(stub, fight(channel=channel, description=f"{tag} 第{i}起：广场上有人打架", receive_time=at))
        assert got.status == pb.REPORT_STATUS_CLASSIFIED
        names.append(got.name)
    names.reverse()  # newest first
    first = stub.ListReports(pb.ListReportsRequest(query=tag, page_size=3), metadata=CALL_TAKER, timeout=5)
    second = stub.ListReports(pb.ListReportsRequest(query=tag, page_size=3, page_token=first.next_page_token),
                              metadata=CALL_TAKER, timeout=5)
    third = stub.ListReports(pb.ListReportsRequest(query=tag, page_size=3, page_token=second.next_page_token),
                             metadata=CALL_TAKER, timeout=5)
    assert [r.name for r in [*first.reports, *second.reports, *third.reports]] == names
    assert third.next_page_token == ""
    assert all("*" in r.caller.phone_number and "*" in r.caller.name for r in first.reports)
    station = sd.stations()[0].station_id
    wechat = stub.ListReports(pb.ListReportsRequest(query=f"{tag} 广场", channel=pb.CHANNEL_WECHAT,
                                                    category=pb.CATEGORY_POLICE, incident_type="FIGHT", priority=2,
                                                    station_id=station, status=pb.REPORT_STATUS_CLASSIFIED),
                              metadata=CALL_TAKER, timeout=5).reports
    assert [r.name for r in wechat] == [n for j, n in enumerate(names) if j % 2 == 1]
    window = stub.ListReports(pb.ListReportsRequest(query=tag, receive_time_start=ts(times[2]),
                                                    receive_time_end=ts(times[4])),
                              metadata=CALL_TAKER, timeout=5).reports
    assert len(window) == 2
    assert stub.ListReports(pb.ListReportsRequest(query=tag, priority=1), metadata=CALL_TAKER,
                            timeout=5).reports == []
    # Wildcards in the query are plain characters.
    assert stub.ListReports(pb.ListReportsRequest(query=f"{tag}%"), metadata=CALL_TAKER, timeout=5).reports == []


def test_list_refuses_bad_filters(stub):
    with pytest.raises(grpc.RpcError) as err:
        stub.ListReports(pb.ListReportsRequest(priority=7, incident_type="NOPE", page_token="garbage",
                                               receive_time_start=ts(datetime(2026, 2, 1, tzinfo=timezone.utc)),
                                               receive_time_end=ts(datetime(2026, 1, 1, tzinfo=timezone.utc))),
                         metadata=CALL_TAKER, timeout=5)
    assert bad_fields(err.value) == {"priority", "incident_type", "page_token", "receive_time_end"}
    # A channel number the contract does not define is refused before the handler runs.
    with pytest.raises(grpc.RpcError) as err:
        stub.ListReports(pb.ListReportsRequest(channel=77), metadata=CALL_TAKER, timeout=5)
    assert bad_fields(err.value) == {"channel"}


def test_reported_event_carries_the_classification(stub):
    got = submit(stub, fight(description="有人持刀抢劫"))
    events = events_about(stub, got.name, ["intake.IncidentReported"])
    assert len(events) == 1
    payload = pb.IncidentReported()
    events[0].payload.Unpack(payload)
    c = payload.report.classification
    assert (c.incident_type, c.priority) == ("ROBBERY", 1) and c.reason
