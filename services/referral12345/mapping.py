"""Domain <-> protobuf for referral, and the GeoReport v2 JSON bodies."""
from __future__ import annotations

import json

from google.api import httpbody_pb2
from google.protobuf import json_format
from google.protobuf.message import Message

from smart110.referral.v1 import referral_service_pb2 as pb

from .domain import Department, Open311Service

GEOREPORT_CONTENT_TYPE = "application/json; charset=utf-8"


def department_to_pb(d: Department) -> pb.Department:
    return pb.Department(
        name=d.resource_name, department_id=d.dept_id, display_name=d.name, matter_codes=d.matter_codes,
        districts=d.districts, supervisor=pb.DepartmentContact(name=d.supervisor, phone_number=d.phone),
    )


def open311_service_to_pb(s: Open311Service) -> pb.Service:
    return pb.Service(service_code=s.code, service_name=s.name, group=s.group, type="realtime", metadata=False)


def georeport_body(messages: list[Message]) -> httpbody_pb2.HttpBody:
    """A GeoReport JSON array: proto field names as keys, every field present (clients expect `metadata: false`)."""
    items = [
        json_format.MessageToDict(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True)
        for m in messages
    ]
    return httpbody_pb2.HttpBody(
        content_type=GEOREPORT_CONTENT_TYPE, data=json.dumps(items, ensure_ascii=False).encode("utf-8"))
