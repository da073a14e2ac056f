"""The OpenAPI 3 document generated from the protos (gateway/openapi.py): valid against the OpenAPI
3.0 meta-schema, every REST binding of the contracts in it, path templates turned into declared
parameters, required and read-only fields from google.api.field_behavior, streams and raw bodies
marked, the error model and bearer auth."""
from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from gateway import openapi
from gateway.render import load_methods

ROOT = Path(__file__).resolve().parents[2]
DESCRIPTORS = ROOT / "build" / "descriptors.pb"
META = ROOT / "build/schemas/openapi_spec_validator/resources/schemas/v3.0/schema.json"
VERBS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def doc() -> dict:
    return openapi.build(DESCRIPTORS)


def operations(doc):
    for path, item in doc["paths"].items():
        for verb, op in item.items():
            if verb in VERBS:
                yield path, verb, op


def test_the_document_is_valid_openapi_3(doc):
    jsonschema.Draft4Validator(json.loads(META.read_text())).validate(doc)
    assert doc["openapi"].startswith("3.0")


def test_every_rest_binding_of_the_contracts_is_in_it(doc):
    bound = {p for m in load_methods(DESCRIPTORS) for p in m.http_paths}
    assert len(bound) >= 100
    assert {openapi.openapi_path(p)[0] for p in bound} == set(doc["paths"])
    ids = [op["operationId"] for _p, _v, op in operations(doc)]
    assert len(ids) == len(set(ids)), "operation ids are unique"


def test_path_templates_become_declared_parameters(doc):
    for path, _verb, op in operations(doc):
        declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
        assert set(re.findall(r"\{([^}]+)\}", path)) == declared, path
    assert "/v1/cases/{case}/assignments/{assignment}:accept" in doc["paths"]
    assert "/v1/cases/{case}/accessGrants" in doc["paths"]


def test_every_ref_resolves(doc):
    text = json.dumps(doc)
    refs = set(re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', text))
    assert refs and refs <= set(doc["components"]["schemas"])


def test_required_and_read_only_fields_follow_field_behavior(doc):
    body = doc["paths"]["/v1/cases/{case}/accessGrants"]["post"]["requestBody"]["content"]["application/json"]
    schema = body["schema"]
    assert {"scope", "stationIds", "reason"} <= set(schema["required"])
    assert "parent" not in schema["properties"], "a path field is not repeated in the body"
    grant = doc["components"]["schemas"]["smart110.dispatch.v1.AccessGrant"]["properties"]
    assert grant["name"]["readOnly"] is True and "readOnly" not in grant["reason"]
    listing = {p["name"] for p in doc["paths"]["/v1/cases"]["get"]["parameters"]}
    assert {"pageSize", "pageToken", "stationId", "report"} <= listing
    assert doc["components"]["schemas"]["smart110.dispatch.v1.CaseStatus"]["enum"][0] == "CASE_STATUS_UNSPECIFIED"


def test_streams_raw_bodies_errors_and_auth_are_described(doc):
    watch = doc["paths"]["/v1/cases:watch"]["get"]
    assert watch["x-grpc-streaming"] is True
    assert watch["responses"]["200"]["content"]["application/json"]["schema"]["type"] == "array"
    cap = doc["paths"]["/v1/alerts/{alert}:exportCap"]["get"]["responses"]["200"]["content"]
    assert "*/*" in cap
    for _path, _verb, op in operations(doc):
        assert op["responses"]["default"]["content"]["application/json"]["schema"]["$ref"].endswith("google.rpc.Status")
    assert doc["security"] == [{"bearerAuth": []}]
    open311 = [op for path, _v, op in operations(doc) if path.startswith("/open311/")]
    assert open311 and all(op["security"] == [] for op in open311), "the public face needs no token"
