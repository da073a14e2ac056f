"""OpenAPI 3 for front-end teams, generated from the descriptor set the gateway transcodes with
(build/descriptors.pb, built from protos/): every REST binding (google.api.http) of every
smart110 service, never written by hand and never stale.

- Paths: a template such as ``/v1/{name=cases/*/assignments/*}:accept`` becomes
  ``/v1/cases/{case}/assignments/{assignment}:accept`` with one path parameter per ``*``;
  the transcoder joins them back into ``name``.
- Requests: ``body: "*"`` is the request message without its path fields; other fields of a
  GET or DELETE are query parameters (nested messages with dotted names, as the transcoder
  reads them). Fields marked REQUIRED (google.api.field_behavior) are required; OUTPUT_ONLY
  ones are read-only.
- Responses: the response message as JSON (proto3 JSON mapping: lowerCamelCase names, 64-bit
  integers as strings, enums as their names, timestamps as RFC 3339); a google.api.HttpBody
  response is the body as sent (CAP XML, Open311 XML or JSON); a server stream is marked
  ``x-grpc-streaming`` and arrives as a JSON array that grows as messages come. Every operation
  may answer the error model, google.rpc.Status.
- Security: a bearer JWT, except on the public Open311 face.

    python -m gateway.openapi build/descriptors.pb > build/openapi.json
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from google.api import annotations_pb2, field_behavior_pb2
from google.protobuf import descriptor_pb2

F = descriptor_pb2.FieldDescriptorProto
PACKAGE_RE = re.compile(r"^smart110\.[a-z][a-z0-9_]*\.v1$")
PUBLIC_SERVICES = {"smart110.referral.v1.Open311Service"}
STATUS_SCHEMA = "google.rpc.Status"
HTTP_BODY = ".google.api.HttpBody"
PARAM = re.compile(r"\{([A-Za-z0-9_.]+)(?:=([^}]+))?\}")

_SCALARS = {
    F.TYPE_DOUBLE: {"type": "number", "format": "double"},
    F.TYPE_FLOAT: {"type": "number", "format": "float"},
    F.TYPE_INT64: {"type": "string", "format": "int64"},
    F.TYPE_UINT64: {"type": "string", "format": "uint64"},
    F.TYPE_SINT64: {"type": "string", "format": "int64"},
    F.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    F.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    F.TYPE_INT32: {"type": "integer", "format": "int32"},
    F.TYPE_SINT32: {"type": "integer", "format": "int32"},
    F.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    F.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0},
    F.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0},
    F.TYPE_BOOL: {"type": "boolean"},
    F.TYPE_STRING: {"type": "string"},
    F.TYPE_BYTES: {"type": "string", "format": "byte"},
}
# Well-known types in their proto3 JSON form.
_WELL_KNOWN = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$", "example": "30s"},
    ".google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated lowerCamelCase field paths."},
    ".google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    ".google.protobuf.Value": {},
    ".google.protobuf.ListValue": {"type": "array", "items": {}},
    ".google.protobuf.Empty": {"type": "object"},
    ".google.protobuf.Any": {"type": "object", "properties": {"@type": {"type": "string"}},
                             "additionalProperties": True},
    ".google.protobuf.StringValue": {"type": "string", "nullable": True},
    ".google.protobuf.BoolValue": {"type": "boolean", "nullable": True},
    ".google.protobuf.Int32Value": {"type": "integer", "format": "int32", "nullable": True},
    ".google.protobuf.Int64Value": {"type": "string", "format": "int64", "nullable": True},
    ".google.protobuf.DoubleValue": {"type": "number", "format": "double", "nullable": True},
    ".google.protobuf.FloatValue": {"type": "number", "format": "float", "nullable": True},
}


class _Index:
    """Messages, enums and their comments of a descriptor set, by full name (".pkg.Name")."""

    def __init__(self, fds: descriptor_pb2.FileDescriptorSet):
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.comments: dict[tuple, str] = {}
        for file in fds.file:
            docs = {tuple(loc.path): (loc.leading_comments or loc.trailing_comments).strip()
                    for loc in file.source_code_info.location if loc.leading_comments or loc.trailing_comments}
            prefix = f".{file.package}" if file.package else ""
            for i, m in enumerate(file.message_type):
                self._message(prefix, m, (4, i), docs, file.name)
            for i, e in enumerate(file.enum_type):
                self.enums[f"{prefix}.{e.name}"] = e
                self.comments[("enum", f"{prefix}.{e.name}")] = docs.get((5, i), "")
            for si, s in enumerate(file.service):
                self.comments[("service", f"{file.package}.{s.name}")] = docs.get((6, si), "")
                for mi, m in enumerate(s.method):
                    self.comments[("method", f"{file.package}.{s.name}", m.name)] = docs.get((6, si, 2, mi), "")

    def _message(self, prefix: str, m, path: tuple, docs: dict, file: str) -> None:
        name = f"{prefix}.{m.name}"
        self.messages[name] = m
        self.comments[("message", name)] = docs.get(path, "")
        for fi, f in enumerate(m.field):
            self.comments[("field", name, f.name)] = docs.get((*path, 2, fi), "")
        for ni, nested in enumerate(m.nested_type):
            self._message(name, nested, (*path, 3, ni), docs, file)
        for ei, e in enumerate(m.enum_type):
            self.enums[f"{name}.{e.name}"] = e
            self.comments[("enum", f"{name}.{e.name}")] = docs.get((*path, 4, ei), "")


def _behaviors(field: descriptor_pb2.FieldDescriptorProto) -> set[int]:
    return set(field.options.Extensions[field_behavior_pb2.field_behavior])


def _ref(type_name: str) -> dict:
    return {"$ref": f"#/components/schemas/{type_name.lstrip('.')}"}


class _Builder:
    def __init__(self, index: _Index):
        self.index = index
        self.schemas: dict[str, dict] = {}

    # -- schemas ---------------------------------------------------------------------------------
    def field_schema(self, field: descriptor_pb2.FieldDescriptorProto) -> dict:
        if field.type == F.TYPE_MESSAGE:
            entry = self.index.messages.get(field.type_name)
            if entry is not None and entry.options.map_entry:
                value = next(f for f in entry.field if f.name == "value")
                return {"type": "object", "additionalProperties": self.single(value)}
        single = self.single(field)
        return {"type": "array", "items": single} if field.label == F.LABEL_REPEATED else single

    def single(self, field: descriptor_pb2.FieldDescriptorProto) -> dict:
        if field.type == F.TYPE_MESSAGE:
            if field.type_name in _WELL_KNOWN:
                return dict(_WELL_KNOWN[field.type_name])
            self.message(field.type_name)
            return _ref(field.type_name)
        if field.type == F.TYPE_ENUM:
            self.enum(field.type_name)
            return _ref(field.type_name)
        return dict(_SCALARS[field.type])

    def enum(self, name: str) -> None:
        key = name.lstrip(".")
        if key in self.schemas:
            return
        e = self.index.enums[name]
        self.schemas[key] = {"type": "string", "enum": [v.name for v in e.value],
                             "description": self.index.comments.get(("enum", name), "")}

    def message(self, name: str) -> None:
        key = name.lstrip(".")
        if key in self.schemas:
            return
        self.schemas[key] = {}  # reserved first: messages may refer to themselves
        self.schemas[key] = self.object_of(name)

    def object_of(self, name: str, *, leave_out: set[str] = frozenset()) -> dict:
        m = self.index.messages[name]
        properties, required = {}, []
        for f in m.field:
            if f.name in leave_out:
                continue
            schema = self.field_schema(f)
            doc = self.index.comments.get(("field", name, f.name), "")
            behaviors = _behaviors(f)
            if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                schema = {"allOf": [schema], "readOnly": True} if "$ref" in schema else {**schema, "readOnly": True}
            if doc:
                schema = {"allOf": [schema], "description": doc} if "$ref" in schema else {**schema, "description": doc}
            properties[f.json_name] = schema
            if field_behavior_pb2.REQUIRED in behaviors:
                required.append(f.json_name)
        out = {"type": "object", "properties": properties}
        if required:
            out["required"] = required
        doc = self.index.comments.get(("message", name), "")
        if doc:
            out["description"] = doc
        return out

    # -- parameters --------------------------------------------------------------------------------
    def query_parameters(self, name: str, prefix: str = "", leave_out: set[str] = frozenset(),
                         depth: int = 0) -> list[dict]:
        """A GET's fields as query parameters, nested messages with dotted names (up to 3 deep)."""
        out = []
        for f in self.index.messages[name].field:
            if f.name in leave_out:
                continue
            key = f"{prefix}{f.json_name}"
            if f.type == F.TYPE_MESSAGE and f.type_name not in _WELL_KNOWN:
                if depth < 3 and f.label != F.LABEL_REPEATED and f.type_name in self.index.messages \
                        and not self.index.messages[f.type_name].options.map_entry:
                    out += self.query_parameters(f.type_name, f"{key}.", depth=depth + 1)
                continue
            schema = self.field_schema(f)
            param = {"name": key, "in": "query", "schema": schema}
            if f.label == F.LABEL_REPEATED:
                param.update(style="form", explode=True)
            doc = self.index.comments.get(("field", name, f.name), "")
            if doc:
                param["description"] = doc
            if field_behavior_pb2.REQUIRED in _behaviors(f) and not prefix:
                param["required"] = True
            out.append(param)
        return out


def _singular(collection: str) -> str:
    if collection.endswith("ies"):
        return collection[:-3] + "y"
    return collection[:-1] if collection.endswith("s") and len(collection) > 1 else collection


def openapi_path(template: str) -> tuple[str, list[tuple[str, str]], set[str]]:
    """(OpenAPI path, [(parameter, description)], the request's top-level fields bound in the path)."""
    params: list[tuple[str, str]] = []
    bound: set[str] = set()

    def expand(match: re.Match) -> str:
        field, pattern = match.group(1), match.group(2)
        bound.add(field.split(".")[0])
        if not pattern:
            params.append((field.replace(".", "_"), f"The request's `{field}`."))
            return "{" + field.replace(".", "_") + "}"
        parts, previous = [], field
        for segment in pattern.split("/"):
            if segment in ("*", "**"):
                pname = _singular(previous) if previous != field else field
                while pname in {p for p, _ in params}:
                    pname += "_"
                params.append((pname, f"One segment of the request's `{field}` ({pattern})."))
                parts.append("{" + pname + "}")
            else:
                parts.append(segment)
                previous = segment
        return "/".join(parts)

    return PARAM.sub(expand, template), params, bound


def build(descriptor_path: str | Path, *, title: str = "Smart110", version: str = "v1") -> dict:
    """The OpenAPI 3.0 document of every REST binding in the descriptor set."""
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(Path(descriptor_path).read_bytes())
    index = _Index(fds)
    b = _Builder(index)
    paths: dict[str, dict] = {}
    tags = []
    for file in fds.file:
        if not PACKAGE_RE.match(file.package):
            continue
        for service in file.service:
            full = f"{file.package}.{service.name}"
            bindings = [(m, n, r) for m in service.method if m.options.HasExtension(annotations_pb2.http)
                        for n, r in enumerate(_rules(m.options.Extensions[annotations_pb2.http]))]
            if not bindings:
                continue
            tags.append({"name": full, "description": _first_paragraph(index.comments.get(("service", full), ""))})
            for method, n, (verb, template, body) in bindings:
                path, params, bound = openapi_path(template)
                op_id = f"{service.name}_{method.name}" + (f"_{n + 1}" if n else "")  # additional bindings
                op = {"operationId": op_id, "tags": [full],
                      "summary": _first_line(index.comments.get(("method", full, method.name), "")),
                      "description": index.comments.get(("method", full, method.name), ""),
                      "parameters": [{"name": p, "in": "path", "required": True, "schema": {"type": "string"},
                                      "description": d} for p, d in params],
                      "responses": {"200": _response(b, method), "default": _error()}}
                if full in PUBLIC_SERVICES:
                    op["security"] = []
                if body == "*":
                    op["requestBody"] = {"required": True, "content": {"application/json": {
                        "schema": b.object_of(method.input_type, leave_out=bound)}}}
                elif body:
                    field = next(f for f in index.messages[method.input_type].field if f.name == body)
                    op["requestBody"] = {"required": True,
                                         "content": {"application/json": {"schema": b.field_schema(field)}}}
                else:
                    op["parameters"] += b.query_parameters(method.input_type, leave_out=bound)
                if method.server_streaming:
                    op["x-grpc-streaming"] = True
                paths.setdefault(path, {})[verb] = op
    b.schemas[STATUS_SCHEMA] = {
        "type": "object", "description": "The error model: a gRPC status code, an English message and details "
                                         "(google.rpc.BadRequest field violations, ErrorInfo with the reason and "
                                         "the trace id, ...).",
        "properties": {"code": {"type": "integer", "format": "int32"}, "message": {"type": "string"},
                       "details": {"type": "array", "items": {"type": "object", "properties": {
                           "@type": {"type": "string"}}, "additionalProperties": True}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": title, "version": version,
                 "description": "Generated from protos/ (google.api.http bindings) by gateway/openapi.py; "
                                "served by the gateway at /openapi.json."},
        "servers": [{"url": "/"}],
        "tags": tags,
        "paths": dict(sorted(paths.items())),
        "components": {"schemas": dict(sorted(b.schemas.items())),
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}},
        "security": [{"bearerAuth": []}],
    }


def _rules(http) -> list[tuple[str, str, str]]:
    out = []
    for rule in [http, *http.additional_bindings]:
        pattern = rule.WhichOneof("pattern")
        if pattern == "custom":
            out.append((rule.custom.kind.lower(), rule.custom.path, rule.body))
        elif pattern:
            out.append((pattern, getattr(rule, pattern), rule.body))
    return out


def _response(b: _Builder, method) -> dict:
    if method.output_type == HTTP_BODY:
        return {"description": "The body as sent (its content type says what it is: CAP XML, GeoReport XML or "
                               "JSON, ...).", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}}
    b.message(method.output_type)
    schema = _ref(method.output_type)
    if method.server_streaming:
        return {"description": "A stream: a JSON array that grows as messages arrive (the connection stays open).",
                "content": {"application/json": {"schema": {"type": "array", "items": schema}}}}
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _error() -> dict:
    return {"description": "An error: 400 INVALID_ARGUMENT (naming the fields), 401, 403, 404, 409, 412 "
                           "FAILED_PRECONDITION, 429, 500 (with a trace id), 503.",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{STATUS_SCHEMA}"}}}}


def _first_line(text: str) -> str:
    return text.strip().split("\n", 1)[0].strip() if text else ""


def _first_paragraph(text: str) -> str:
    return " ".join(text.strip().split("\n\n", 1)[0].split()) if text else ""


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gateway.openapi DESCRIPTOR_SET > openapi.json", file=sys.stderr)
        return 2
    json.dump(build(args[0]), sys.stdout, ensure_ascii=False, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
