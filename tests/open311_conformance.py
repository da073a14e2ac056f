"""GeoReport v2 shapes, written from the specification (wiki.open311.org/GeoReport_v2 and the service
request updates extension FixMyStreet polls), to check the Open311 face against: JSON schemas with
their `uri` and `date-time` formats enforced, and XML checks on documents parsed with lxml."""
from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

import jsonschema
from lxml import etree

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("uri", raises=ValueError)
def _uri(value) -> bool:
    if not isinstance(value, str):
        return True
    parts = urlsplit(value)
    return bool(parts.scheme and (parts.netloc or parts.path)) and " " not in value


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value) -> bool:
    """W3C/RFC 3339: a date, "T", a time and a zone."""
    if not isinstance(value, str):
        return True
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return "T" in value and when.tzinfo is not None


def _object(required: list[str], properties: dict) -> dict:
    return {"type": "object", "required": required, "properties": properties}


STR, NUM, BOOL = {"type": "string"}, {"type": "number"}, {"type": "boolean"}
URI = {"type": "string", "format": "uri"}
DATE = {"type": "string", "format": "date-time"}

SERVICE = _object(["service_code", "service_name", "metadata", "type"], {
    "service_code": {"type": "string", "minLength": 1}, "service_name": STR, "description": STR,
    "metadata": BOOL, "type": {"enum": ["realtime", "batch", "blackbox"]}, "keywords": STR, "group": STR})
SERVICE_DEFINITION = _object(["service_code", "attributes"], {
    "service_code": STR,
    "attributes": {"type": "array", "items": _object(
        ["variable", "code", "datatype", "required", "order", "description"],
        {"variable": BOOL, "code": STR, "datatype": {"enum": ["string", "number", "datetime", "text",
                                                              "singlevaluelist", "multivaluelist"]},
         "required": BOOL, "datatype_description": STR, "order": {"type": "integer"}, "description": STR,
         "values": {"type": "array", "items": _object(["key", "name"], {"key": STR, "name": STR})}})}})
SERVICE_REQUEST = _object(["service_request_id", "status", "service_code", "requested_datetime"], {
    "service_request_id": {"type": "string", "minLength": 1}, "status": {"enum": ["open", "closed"]},
    "status_notes": STR, "service_name": STR, "service_code": STR, "description": STR,
    "agency_responsible": STR, "service_notice": STR, "requested_datetime": DATE, "updated_datetime": DATE,
    "expected_datetime": DATE, "address": STR, "address_id": STR, "zipcode": STR, "lat": NUM, "long": NUM,
    "media_url": URI})
RECEIPT = {"anyOf": [_object(["service_request_id"], {}), _object(["token"], {})], **_object([], {
    "service_request_id": {"type": "string", "minLength": 1}, "token": {"type": "string", "minLength": 1},
    "service_notice": STR, "account_id": STR})}
TOKEN = _object(["token", "service_request_id"], {"token": STR, "service_request_id": STR})
UPDATE = _object(["update_id", "service_request_id", "status", "updated_datetime", "description"], {
    "update_id": {"type": "string", "minLength": 1}, "service_request_id": STR,
    "status": {"enum": ["OPEN", "CLOSED", "FIXED", "IN_PROGRESS", "ACTION_SCHEDULED", "INVESTIGATING",
                        "DUPLICATE", "NOT_COUNCILS_RESPONSIBILITY", "NO_FURTHER_ACTION", "INTERNAL_REFERRAL"]},
    "updated_datetime": DATE, "description": STR, "media_url": URI})
# The answer to POST servicerequestupdates (FixMyStreet reads update_id, else a token).
UPDATE_RECEIPT = {"anyOf": [_object(["update_id"], {}), _object(["token"], {})], **_object([], {
    "update_id": {"type": "string", "minLength": 1}, "token": {"type": "string", "minLength": 1}})}
DISCOVERY = _object(["changeset", "contact", "key_service", "endpoints"], {
    "changeset": DATE, "contact": STR, "key_service": STR,
    "endpoints": {"type": "array", "minItems": 1, "items": _object(
        ["specification", "url", "changeset", "type", "formats"],
        {"specification": URI, "url": URI, "changeset": DATE, "type": {"enum": ["production", "test"]},
         "formats": {"type": "array", "items": {"enum": ["text/xml", "application/json"]}}})}})
ERROR = _object(["code", "description"], {"code": {"type": "integer"}, "description": {"type": "string",
                                                                                      "minLength": 1}})


def array_of(item: dict, min_items: int = 0) -> dict:
    return {"type": "array", "items": item, "minItems": min_items}


def check(instance, schema: dict) -> None:
    jsonschema.validate(instance, schema, format_checker=FORMATS)


# -- XML -------------------------------------------------------------------------------------

def parse_xml(body: bytes) -> etree._Element:
    root = etree.fromstring(body)
    assert body.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    return root


def xml_items(body: bytes, root: str, item: str) -> list[dict]:
    """A GeoReport XML list as dicts of its items' child elements' text."""
    doc = parse_xml(body)
    assert doc.tag == root, doc.tag
    out = []
    for child in doc:
        assert child.tag == item, child.tag
        out.append({field.tag: field.text or "" for field in child})
    return out


def xml_errors(body: bytes) -> list[dict]:
    return [{"code": int(e["code"]), "description": e["description"]} for e in xml_items(body, "errors", "error")]
