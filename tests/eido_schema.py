"""The published NENA EIDO JSON schema (vendored in services/dispatch/eido/schema, see its NOTICE.md),
as the tests check documents against it: `check_document(doc)` (valid, every key declared, every
reference resolved within the document), `VALIDATOR`, `undeclared`."""
from __future__ import annotations

from datetime import datetime
from functools import lru_cache

import yaml
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource
from referencing.jsonschema import DRAFT4

from tests.conftest import ROOT

SCHEMA_DIR = ROOT / "services/dispatch/eido/schema"
# The vendored files stand where they stand in NENA's repository, under Schema/.
BASE = "https://eido-json.nena.invalid/Schema/"
DOCUMENT = BASE + "openapi.yaml#/components/schemas/EmergencyIncidentDataObjectType"


@lru_cache(maxsize=None)
def _schema_file(relative: str):
    path = SCHEMA_DIR / relative
    if not path.is_file():
        raise NoSuchResource(ref=relative)
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _retrieve(uri: str) -> Resource:
    """Only the vendored files: a reference to any other is an error, never a download."""
    if not uri.startswith(BASE):
        raise NoSuchResource(ref=uri)
    return Resource.from_contents(_schema_file(uri.removeprefix(BASE)), default_specification=DRAFT4)


REGISTRY = Registry(retrieve=_retrieve)
# OpenAPI 3.0 schema objects are JSON Schema draft 4/5 with extensions.
VALIDATOR = Draft4Validator({"$ref": DOCUMENT}, registry=REGISTRY, format_checker=Draft4Validator.FORMAT_CHECKER)


def _resolve(schema: dict, resolver):
    while isinstance(schema, dict) and "$ref" in schema:
        found = resolver.lookup(schema["$ref"])
        schema, resolver = found.contents, found.resolver
    return schema, resolver


def _properties(schema: dict, resolver) -> dict:
    schema, resolver = _resolve(schema, resolver)
    found = {k: (v, resolver) for k, v in schema.get("properties", {}).items()}
    for part in schema.get("allOf", []):
        found.update(_properties(part, resolver))
    return found


def undeclared(instance, schema=None, resolver=None, path: str = "$") -> list[str]:
    """Paths of keys the schema does not declare. The published schema allows any key (no
    additionalProperties), so a misspelt one would validate; this finds it."""
    if schema is None:
        schema, resolver = {"$ref": DOCUMENT}, REGISTRY.resolver()
    schema, resolver = _resolve(schema, resolver)
    out: list[str] = []
    if isinstance(instance, dict):
        props = _properties(schema, resolver)
        for key, value in instance.items():
            if key not in props:
                out.append(f"{path}.{key}")
            else:
                out += undeclared(value, props[key][0], props[key][1], f"{path}.{key}")
    elif isinstance(instance, list) and "items" in schema:
        for i, value in enumerate(instance):
            out += undeclared(value, schema["items"], resolver, f"{path}[{i}]")
    return out


def check_document(doc: dict) -> None:
    """Valid against the EIDO schema, every key declared, every time RFC 3339, every reference to a
    component of the document (agencies and components alike), every $id once."""
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in VALIDATOR.iter_errors(doc)]
    assert not errors, errors
    assert undeclared(doc) == []
    ids: list[str] = []
    refs: list[str] = []

    def walk(node, key=""):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "$id":
                    ids.append(v)
                elif k == "$ref":
                    refs.append(v)
                elif k in ("lastUpdateTimeStamp", "callStartTimestamp"):
                    assert datetime.fromisoformat(v.replace("Z", "+00:00")).tzinfo is not None, v
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)

    walk(doc)
    # The document and its incident component name the incident differently; every other id once.
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    assert set(refs) <= set(ids), set(refs) - set(ids)
