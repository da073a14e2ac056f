"""The gateway serves the OpenAPI document of its REST routes at /openapi.json, to anyone (it holds no
data), generated from the same descriptor set it transcodes with; a documented route answers as
documented."""
from __future__ import annotations

import json
from pathlib import Path

import httpx
import jsonschema

from gateway import openapi
from tools.token import mint

ROOT = Path(__file__).resolve().parents[2]
META = ROOT / "build/schemas/openapi_spec_validator/resources/schemas/v3.0/schema.json"


def test_the_gateway_serves_the_generated_document_and_its_routes_answer_as_documented(stack):
    served = httpx.get(f"{stack.gateway_url}/openapi.json", timeout=20)
    assert served.status_code == 200 and served.headers["content-type"].startswith("application/json")
    doc = served.json()
    jsonschema.Draft4Validator(json.loads(META.read_text())).validate(doc)
    assert doc == openapi.build(ROOT / "build" / "descriptors.pb"), "never stale: the build's own document"
    # A documented list route answers with the documented shape.
    op = doc["paths"]["/v1/stations"]["get"]
    schema_name = op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    listed = httpx.get(f"{stack.gateway_url}/v1/stations", timeout=20,
                       headers={"Authorization": f"Bearer {mint(roles=['dispatcher'], sub='e2e-openapi')}"})
    assert listed.status_code == 200
    assert set(listed.json()) <= set(doc["components"]["schemas"][schema_name]["properties"])
    # The document is a read, not a route to a service: anything else on its path is refused.
    assert httpx.post(f"{stack.gateway_url}/openapi.json", timeout=20).status_code in (401, 404, 405)
