"""The Open311 GeoReport v2 face over gRPC against a real Postgres (the gateway's HTTP face is in e2e)."""
from __future__ import annotations

import json
from urllib.parse import urlencode

import grpc
import pytest
from google.api import httpbody_pb2

from smart110.common.v1 import common_pb2
from smart110.referral.v1 import referral_service_pb2 as pb
from grpc_status import rpc_status

from tests import support
from tests.integration.referral_support import (
    HANYANG_S15, OPEN311_API_KEY, phone, resolve_as_department, rid, serving_suite, ticket,
)

GEOREPORT_FIELDS = {"service_request_id", "status", "status_notes", "service_name", "service_code", "description",
                    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime",
                    "expected_datetime", "address", "address_id", "zipcode", "lat", "long", "media_url"}


@pytest.fixture(scope="module")
def suite(admin_url):
    with serving_suite(admin_url) as s:
        yield s


def body(resp: httpbody_pb2.HttpBody) -> list[dict]:
    assert resp.content_type == "application/json; charset=utf-8"
    return json.loads(resp.data.decode("utf-8"))


def post_form(suite, fields: dict, api_key: str | None = OPEN311_API_KEY) -> list[dict]:
    if api_key is not None:
        fields = {**fields, "api_key": api_key}
    raw = httpbody_pb2.HttpBody(content_type="application/x-www-form-urlencoded",
                                data=urlencode(fields).encode("utf-8"))
    return body(suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(raw_body=raw), timeout=10))


def test_a_form_encoded_post_files_a_routed_work_order_once(suite):
    lon, lat = HANYANG_S15
    fields = {"service_code": "STREET_LIGHT", "lat": str(lat), "long": str(lon),
              "address_string": "汉阳区月湖街道琴台路口", "description": "琴台路口三盏路灯不亮，晚上过马路很危险",
              "first_name": "小明", "last_name": "何", "phone": phone(), "device_id": "dev-" + rid()[:8],
              "media_url": "https://img.example.cn/311/light.jpg"}
    [receipt] = post_form(suite, fields)
    request_id = receipt["service_request_id"]
    assert request_id and "办理时限" in receipt["service_notice"]
    [again] = post_form(suite, fields)
    assert again["service_request_id"] == request_id, "a retried POST files nothing new"

    order = suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=f"workOrders/{request_id}"), timeout=10)
    assert order.source == pb.WORK_ORDER_SOURCE_OPEN311
    assert order.citizen.name == "何 小明"
    assert order.assignments[0].department_display_name == "江城市市政园林局"

    [one] = body(suite.open311.GetServiceRequest(pb.GetServiceRequestRequest(
        service_request_id=f"{request_id}.json"), timeout=10))
    assert GEOREPORT_FIELDS - {"expected_datetime"} <= set(one)
    assert one["service_request_id"] == request_id and one["status"] == "open"
    assert one["service_code"] == "STREET_LIGHT" and one["service_name"] == "路灯损坏"
    assert one["agency_responsible"] == "江城市市政园林局"
    assert one["address"] == "汉阳区月湖街道琴台路口"
    assert one["lat"] == pytest.approx(lat) and one["long"] == pytest.approx(lon)
    assert one["media_url"] == "https://img.example.cn/311/light.jpg"
    assert one["expected_datetime"] > one["requested_datetime"]

    # Closed once the department fixed it and the citizen was satisfied.
    name = f"workOrders/{request_id}"
    resolve_as_department(suite, name, "D04", "已更换三盏路灯灯头，恢复照明")
    suite.referral.ReviewWorkOrder(pb.ReviewWorkOrderRequest(
        request_id=rid(), name=name, satisfaction=common_pb2.SATISFACTION_SATISFIED), timeout=10)
    [closed] = body(suite.open311.GetServiceRequest(pb.GetServiceRequestRequest(service_request_id=request_id),
                                                    timeout=10))
    assert closed["status"] == "closed" and closed["status_notes"] == "已更换三盏路灯灯头，恢复照明"

    listed = body(suite.open311.ListServiceRequests(pb.ListServiceRequestsRequest(
        service_code="STREET_LIGHT,MANHOLE_COVER", status="closed"), timeout=10))
    assert request_id in [x["service_request_id"] for x in listed]
    assert all(x["status"] == "closed" and x["service_code"] in ("STREET_LIGHT", "MANHOLE_COVER") for x in listed)
    still_open = body(suite.open311.ListServiceRequests(pb.ListServiceRequestsRequest(
        service_code="STREET_LIGHT", status="open"), timeout=10))
    assert request_id not in [x["service_request_id"] for x in still_open]
    by_id = body(suite.open311.ListServiceRequests(pb.ListServiceRequestsRequest(
        service_request_id=request_id), timeout=10))
    assert [x["service_request_id"] for x in by_id] == [request_id]


def test_a_json_post_and_typed_grpc_fields_work_too(suite):
    lon, lat = HANYANG_S15
    raw = httpbody_pb2.HttpBody(content_type="application/json", data=json.dumps({
        "service_code": "MANHOLE_COVER", "lat": lat, "long": lon, "description": "人行道上井盖缺失，已有行人差点踩空",
        "api_key": OPEN311_API_KEY, "attribute[cover_state]": "missing"},
        ensure_ascii=False).encode())
    [receipt] = body(suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(raw_body=raw), timeout=10))
    assert receipt["service_request_id"]
    [typed] = body(suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(
        request_id=rid(), service_code="GARBAGE", address_string="汉阳区四新大道88号", description="垃圾桶满了没人清运",
        api_key="other-app-key"),
        timeout=10))
    order = suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=f"workOrders/{typed['service_request_id']}"),
                                        timeout=10)
    assert order.address_text == "汉阳区四新大道88号" and order.matter_code == "GARBAGE"
    kept = suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=f"workOrders/{receipt['service_request_id']}"),
                                       timeout=10)
    assert [(a.code, a.value_text) for a in kept.service_attributes] == [("cover_state", "缺失")]

    # Typed: the attributes map; a required one missing is INVALID_ARGUMENT with its GeoReport error.
    [road] = body(suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(
        request_id=rid(), service_code="ROAD_DAMAGE", lat=lat, long=lon, description="路面塌陷一个坑",
        api_key=OPEN311_API_KEY, attributes={"damage_size": "large", "depth_cm": "30"}), timeout=10))
    road_order = suite.referral.GetWorkOrder(pb.GetWorkOrderRequest(name=f"workOrders/{road['service_request_id']}"),
                                             timeout=10)
    assert [(a.code, a.value) for a in road_order.service_attributes] == [("damage_size", "large"), ("depth_cm", "30")]
    with pytest.raises(grpc.RpcError) as missing:
        suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(
            request_id=rid(), service_code="ROAD_DAMAGE", lat=lat, long=lon, description="路面塌陷一个坑",
            api_key=OPEN311_API_KEY, attributes={"depth_cm": "30"}), timeout=10)
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert georeport_errors(missing.value) == [
        {"code": 400, "description": "attribute[damage_size]: is required: 破损面积"}]


def test_bad_posts_and_unknown_requests(suite):
    with pytest.raises(grpc.RpcError) as unknown:
        post_form(suite, {"service_code": "NO_SUCH_SERVICE", "phone": "12"})
    assert unknown.value.code() == grpc.StatusCode.NOT_FOUND, "GeoReport: an unknown service_code is 404"
    assert georeport_errors(unknown.value) == [{"code": 404, "description": "service_code 'NO_SUCH_SERVICE' does not exist"}]
    with pytest.raises(grpc.RpcError) as err:
        post_form(suite, {"phone": "12"})
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(support.field_violations(err.value)) == {"service_code", "lat", "description", "phone"}
    with pytest.raises(grpc.RpcError) as both:
        suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(
            service_code="GARBAGE", api_key=OPEN311_API_KEY,
            raw_body=httpbody_pb2.HttpBody(content_type="application/json", data=b"{}")),
            timeout=10)
    assert "raw_body" in support.field_violations(both.value)
    for missing in ("20260101-000000000000.json", "abc.xml"):
        with pytest.raises(grpc.RpcError) as nf:
            suite.open311.GetServiceRequest(pb.GetServiceRequestRequest(service_request_id=missing), timeout=10)
        assert nf.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as status:
        suite.open311.ListServiceRequests(pb.ListServiceRequestsRequest(status="pending"), timeout=10)
    assert support.field_violations(status.value) == ["status"]


def georeport_errors(err: grpc.RpcError) -> list[dict]:
    out = []
    for detail in rpc_status.from_call(err).details:
        if detail.Is(pb.GeoReportError.DESCRIPTOR):
            e = pb.GeoReportError()
            detail.Unpack(e)
            out.append({"code": e.code, "description": e.description})
    return out


def test_a_post_needs_an_issued_api_key_before_anything_else_is_looked_at(suite):
    lon, lat = HANYANG_S15
    fields = {"service_code": "STREET_LIGHT", "lat": str(lat), "long": str(lon), "description": "路灯不亮"}
    with pytest.raises(grpc.RpcError) as missing:
        post_form(suite, {**fields, "service_code": "NO_SUCH_SERVICE"}, api_key=None)
    assert missing.value.code() == grpc.StatusCode.PERMISSION_DENIED, "GeoReport: no api_key is 403"
    assert georeport_errors(missing.value) == [
        {"code": 403, "description": "api_key: is required: the key issued to your application"}], \
        "nothing else is judged without a key"
    for wrong in ("not-a-key", OPEN311_API_KEY + "x", OPEN311_API_KEY[:-1], "other-app-key,"):
        with pytest.raises(grpc.RpcError) as refused:
            post_form(suite, fields, api_key=wrong)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, wrong
        assert georeport_errors(refused.value) == [{"code": 403, "description": "api_key is not valid for this endpoint"}]
    with pytest.raises(grpc.RpcError) as typed:
        suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(
            request_id=rid(), service_code="GARBAGE", address_string="汉阳区四新大道88号", description="垃圾没人清运",
            api_key="guess"), timeout=10)
    assert typed.value.code() == grpc.StatusCode.PERMISSION_DENIED
    # The key may also come beside the body (a query parameter through the gateway).
    raw = httpbody_pb2.HttpBody(content_type="application/x-www-form-urlencoded", data=urlencode(fields).encode())
    [receipt] = body(suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(
        raw_body=raw, api_key=OPEN311_API_KEY), timeout=10))
    assert receipt["service_request_id"]
    with pytest.raises(grpc.RpcError) as bad:
        post_form(suite, {"service_code": "NO_SUCH_SERVICE", "lat": str(lat), "long": str(lon), "description": "x"})
    assert georeport_errors(bad.value) == [{"code": 404, "description": "service_code 'NO_SUCH_SERVICE' does not exist"}]


def test_public_reads_show_no_personal_data(suite):
    name, number = "欧阳娜娜", phone()
    text = f"{name}反映：武昌区中华路28号3栋楼下井盖缺失，回电{number}"
    order = suite.referral.CreateWorkOrder(pb.CreateWorkOrderRequest(request_id=rid(), work_order=ticket(
        text, "MANHOLE_COVER", caller_phone=number, name=name)), metadata=support.caller(["hotline_agent"], sub="agent-31"),
        timeout=10)
    order_id = order.name.removeprefix("workOrders/")
    [one] = body(suite.open311.GetServiceRequest(pb.GetServiceRequestRequest(service_request_id=order_id),
                                                 timeout=10))
    [listed] = body(suite.open311.ListServiceRequests(pb.ListServiceRequestsRequest(service_request_id=order_id),
                                                      timeout=10))
    for public in (one, listed):
        flat = json.dumps(public, ensure_ascii=False)
        assert name not in flat and number not in flat and "28号" not in flat
        assert not {"email", "phone", "first_name", "last_name", "account_id"} & set(public)
        assert "井盖缺失" in public["description"] and "[电话]" in public["description"]
        # A 12345 caller did not publish the place: about 100 m.
        assert public["lat"] == round(order.location.point.latitude, 3)
        assert public["long"] == round(order.location.point.longitude, 3)

    lon, lat = HANYANG_S15
    poster = phone()
    [receipt] = post_form(suite, {"service_code": "STREET_LIGHT", "lat": str(lat), "long": str(lon),
                                  "first_name": "伟", "last_name": "司马", "phone": poster,
                                  "email": "sima@example.cn", "description": "司马伟发现琴台路口路灯不亮"})
    [mine] = body(suite.open311.GetServiceRequest(pb.GetServiceRequestRequest(
        service_request_id=receipt["service_request_id"]), timeout=10))
    flat = json.dumps(mine, ensure_ascii=False)
    assert "司马" not in flat and poster not in flat and "sima@" not in flat
    assert mine["description"] == "某市民发现琴台路口路灯不亮"
    assert mine["lat"] == pytest.approx(lat), "an Open311 poster published the place"


def test_a_deeply_nested_json_body_is_invalid_argument_not_internal(suite):
    deep = httpbody_pb2.HttpBody(content_type="application/json", data=b'{"a":' + b"[" * 200_000 + b"]" * 200_000 + b"}")
    with pytest.raises(grpc.RpcError) as missing:
        suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(raw_body=deep), timeout=10)
    assert missing.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert georeport_errors(missing.value)[0]["description"].startswith("api_key: is required")
    with pytest.raises(grpc.RpcError) as keyed:
        suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(raw_body=deep, api_key=OPEN311_API_KEY),
                                           timeout=10)
    assert keyed.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "raw_body" in support.field_violations(keyed.value)


def multipart(fields: dict, files: dict | None = None, boundary: str = "smart110-boundary") -> httpbody_pb2.HttpBody:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
             for k, v in fields.items()]
    for name, data in (files or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="x.jpg"\r\n'
                     f'Content-Type: image/jpeg\r\n\r\n'.encode() + data + b"\r\n")
    return httpbody_pb2.HttpBody(content_type=f"multipart/form-data; boundary={boundary}",
                                 data=b"".join(parts) + f"--{boundary}--\r\n".encode())


def test_a_multipart_post_is_read_and_a_file_part_refused_politely(suite):
    lon, lat = HANYANG_S15
    fields = {"api_key": OPEN311_API_KEY, "service_code": "STREET_LIGHT", "lat": str(lat), "long": str(lon),
              "description": f"琴台大道路灯整排不亮 {rid()[:6]}", "media_url": "https://img.example.cn/311/m.jpg"}
    [receipt] = body(suite.open311.CreateServiceRequest(
        pb.CreateServiceRequestRequest(raw_body=multipart(fields)), timeout=10))
    [one] = body(suite.open311.GetServiceRequest(pb.GetServiceRequestRequest(
        service_request_id=receipt["service_request_id"]), timeout=10))
    assert one["media_url"] == "https://img.example.cn/311/m.jpg"
    assert "token" not in receipt, "no empty token: the receipt has the service_request_id"
    with pytest.raises(grpc.RpcError) as refused:
        suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(
            raw_body=multipart(fields, files={"media": b"\xff\xd8\xff\xe0jpeg"})), timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [error] = georeport_errors(refused.value)
    assert error["code"] == 400 and error["description"].startswith("media: file uploads are not accepted")
    with pytest.raises(grpc.RpcError) as broken:
        suite.open311.CreateServiceRequest(pb.CreateServiceRequestRequest(
            api_key=OPEN311_API_KEY, raw_body=httpbody_pb2.HttpBody(content_type="multipart/form-data",
                                                                    data=b"--x\r\n")), timeout=10)
    assert broken.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "raw_body" in support.field_violations(broken.value)
