"""Hostile requests for every REST binding and every gRPC method, generated from the descriptor set.

The bindings and methods are read from `build/descriptors.pb` (what the gateway is configured
from), so a new RPC or binding is fuzzed without anyone listing it. For a REST binding the
strategies fill its path template, its query parameters and its JSON body from the request
message's fields with values of the wrong type, out of range or malformed (invalid UTF-8
percent escapes, NUL, very long and unusual unicode strings, NaN/Infinity/1e308, huge integers,
deeply nested arrays, unknown fields, objects where a scalar belongs, undefined enum names and
numbers, garbage page tokens). For a gRPC method they make request bytes: junk, a valid message
mutated, hand-built wire data (wrong wire types, truncated varints, lengths past the end,
nested-message bombs, invalid UTF-8 in string fields).

`send_rest` and `call_grpc` send one request and return an `Outcome`; `Outcome.server_error` says
whether it is a server-side failure (HTTP >= 500, no answer, a 429 from gRPC's own metadata limit;
gRPC INTERNAL, UNKNOWN, DATA_LOSS, UNIMPLEMENTED, a unary call past its deadline, an answer too large
for a client's trailers) and `Outcome.reproduction` how to send it again.
"""
from __future__ import annotations

import base64
import functools
import http.client
import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import grpc
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.rpc import status_pb2
from hypothesis import strategies as st

from gateway.render import PACKAGE_RE as PACKAGE
from tools.devstack import SERVICES as SUITE_SERVICES
from tools.token import mint, mint_service

ROOT = Path(__file__).resolve().parent.parent
DESCRIPTORS = ROOT / "build" / "descriptors.pb"

# The roles a privileged caller holds: every human role the services check for.
PRIVILEGED_ROLES = ["supervisor", "commander", "dispatcher", "call_taker", "hotline_agent", "station_chief",
                    "legal_officer", "expert", "officer", "district_commander", "department", "sre"]

# gRPC codes that mean the server failed, not that the request was refused.
SERVER_ERROR_CODES = frozenset({grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS,
                                grpc.StatusCode.UNIMPLEMENTED})
TRACE_ID = re.compile(r"\b[0-9a-f]{32}\b")


# -- what there is to fuzz ----------------------------------------------------------------


def load_pool(path: Path = DESCRIPTORS) -> descriptor_pool.DescriptorPool:
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(path.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for file in fds.file:
        pool.Add(file)
    return pool


def _suite_files(path: Path = DESCRIPTORS):
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(path.read_bytes())
    return [f for f in fds.file if PACKAGE.match(f.package)]


@dataclass(frozen=True)
class Binding:
    """One `google.api.http` rule of one RPC."""

    verb: str  # GET, POST, PATCH, DELETE, or a custom verb
    template: str  # e.g. /v1/{name=reports/*}:answer
    body: str  # "", "*" or a field name
    method: str  # full method name, e.g. smart110.intake.v1.IntakeService.AnswerReport
    streaming: bool

    @property
    def id(self) -> str:
        return f"{self.verb} {self.template}"


@dataclass(frozen=True)
class Rpc:
    """One method of one service of the suite, and the service (devstack name) that serves it."""

    svc: str
    method: str  # full method name
    client_streaming: bool
    server_streaming: bool

    @property
    def path(self) -> str:
        service, _, name = self.method.rpartition(".")
        return f"/{service}/{name}"


def rest_bindings(path: Path = DESCRIPTORS) -> list[Binding]:
    """Every google.api.http rule (additional bindings too) of every smart110.<svc>.v1 service."""
    out = []
    for file in _suite_files(path):
        for service in file.service:
            for m in service.method:
                if not m.options.HasExtension(annotations_pb2.http):
                    continue
                http = m.options.Extensions[annotations_pb2.http]
                for rule in [http, *http.additional_bindings]:
                    pattern = rule.WhichOneof("pattern")
                    if pattern == "custom":
                        verb, template = rule.custom.kind.upper(), rule.custom.path
                    elif pattern:
                        verb, template = pattern.upper(), getattr(rule, pattern)
                    else:
                        continue
                    out.append(Binding(verb, template, rule.body, f"{file.package}.{service.name}.{m.name}",
                                       m.server_streaming or m.client_streaming))
    return sorted(out, key=lambda b: (b.template, b.verb))


def grpc_methods(path: Path = DESCRIPTORS) -> list[Rpc]:
    """Every method of every smart110.<svc>.v1 service, with the service that serves it."""
    out = []
    for file in _suite_files(path):
        svc = PACKAGE.match(file.package).group(1)
        # The runtime's own services (smart110.common.v1, e.g. FeedAdminService) are served by every service.
        servers = sorted(SUITE_SERVICES) if svc == "common" else [svc]
        for service in file.service:
            for m in service.method:
                out += [Rpc(server, f"{file.package}.{service.name}.{m.name}", m.client_streaming,
                            m.server_streaming) for server in servers]
    return sorted(out, key=lambda r: (r.method, r.svc))


# -- JSON with what json.dumps cannot say ----------------------------------------------------


@dataclass(frozen=True)
class Raw:
    """JSON text (or bytes that are not JSON at all) put into a document as is."""

    text: bytes


def dump(value) -> bytes:
    """JSON bytes of `value`; `Raw` parts verbatim, non-finite floats as NaN/Infinity tokens."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return b"{" + b",".join(dump(str(k)) + b":" + dump(v) for k, v in value.items()) + b"}"
    if isinstance(value, (list, tuple)):
        return b"[" + b",".join(dump(v) for v in value) + b"]"
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


def weighted(*options):
    """`st.one_of` with weights: (weight, strategy) pairs (one_of takes each distinct strategy once)."""
    slots = [i for i, (weight, _) in enumerate(options) for _ in range(weight)]
    return st.sampled_from(slots).flatmap(lambda i: options[i][1])


# -- leaf values -------------------------------------------------------------------------------

UNICODE = ["报警", "江城市武昌区首义路1号", "🚓🚨", "\u202eevil", "e\u0301\u0301\u0301", "\ufeff", "\u0000",
           "a\u0000b", "\u200b", "𠀀𪚥", "Ω≈ç√", "' OR 1=1 --", "%s%n", "${jndi:x}", "../../etc/passwd", "<script>",
           "\\", "\"", "\r\n", " ", ""]
INTS = [0, -1, 1, 2**31 - 1, 2**31, -2**31 - 1, 2**32, 2**53 + 1, 2**63 - 1, 2**63, -2**63 - 1, 2**64, 10**30,
        -10**30]
TIMESTAMPS = ["2026-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z",
              "2026-02-30T25:61:61Z", "2026-01-01T00:00:00.1234567891Z", "2026-01-01T00:00:00+25:00",
              "2026-01-01", "now", "-infinity", "", "0", "10000-01-01T00:00:00Z"]
DURATIONS = ["1s", "1.5s", "-1s", "0s", "315576000001s", "-315576000001s", "1e9s", "abc", "s", "1", ""]
TOKENS = ["", "x", "%%%.%%%", "eyJvZmZzZXQiOi01fQ", "eyJvZmZzZXQiOi01fQ.AAAA", "a.b.c", "=" * 50,
          base64.urlsafe_b64encode(json.dumps({"offset": 10**30}).encode()).decode(),
          base64.urlsafe_b64encode(json.dumps({"t": "x", "id": None}).encode()).decode() + ".x"]

hostile_text = weighted(
    (3, st.text(max_size=40)),
    (2, st.sampled_from(UNICODE)),
    (1, st.integers(200, 20_000).map(lambda n: "长" * n)),
    (1, st.from_regex(r"[A-Za-z]{1,8}s?/[A-Za-z0-9]{0,12}", fullmatch=True)),  # resource-name shaped
    (2, st.from_regex(r"[A-Za-z0-9._:-]{1,24}", fullmatch=True)),  # a plausible id (request ids among them)
)
# A JSON string that is not valid UTF-8/UTF-16: a lone surrogate escape, raw bytes, an invalid escape.
broken_json_string = st.sampled_from([Raw(b'"\\ud800"'), Raw(b'"\\udfff\\ud800"'), Raw(b'"\xff\xfe"'),
                                      Raw(b'"a\xc0\xafb"'), Raw(b'"\\x41"'), Raw(b'"\\u00"'), Raw(b'"\\u0000"')])
huge_number = st.sampled_from([Raw(b"1e309"), Raw(b"-1e309"), Raw(b"1e-400"), Raw(b"-0"), Raw(b"1E400"),
                               Raw(b"123456789012345678901234567890123456789"), Raw(b"0.1e1"), Raw(b"01"),
                               Raw(b"1.0"), Raw(b"+1"), Raw(b".5")])


def deep_array(depth: int) -> Raw:
    return Raw(b"[" * depth + b"]" * depth)


wrong_type = st.one_of(
    st.none(), st.just({}), st.just([]), st.booleans(), st.just({"a": [1, {"b": None}]}),
    st.integers(2, 3000).map(deep_array), st.floats(allow_nan=True, allow_infinity=True), huge_number,
    st.sampled_from(INTS), st.sampled_from(UNICODE),
)


def _number_strategy(field: FieldDescriptor, strict: bool):
    floats = field.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT)
    edges = st.sampled_from(INTS)
    if strict:
        # Numbers the JSON parser takes for this field: extreme, negative, or (for floats) not finite.
        if floats:
            return st.one_of(edges.map(float), st.floats(allow_nan=False, allow_infinity=False),
                             st.sampled_from(["NaN", "Infinity", "-Infinity", 1e308, -1e308, 5e-324, -0.0]))
        return st.one_of(st.integers(-1000, 1000), st.sampled_from([-1, 0, 2**31 - 1, -2**31, 10**9]),
                         st.sampled_from([-1, 2**31 - 1]).map(str))
    return st.one_of(
        edges,
        st.floats(allow_nan=floats, allow_infinity=floats),
        st.sampled_from(["NaN", "Infinity", "-Infinity", "1e308", "1e309", "0x10", "1_000", "", " 1", "-0",
                         "9" * 40, "1.5"]),
        huge_number,
    )


def _enum_strategy(field: FieldDescriptor, strict: bool):
    enum = field.enum_type
    names = [v.name for v in enum.values]
    numbers = [v.number for v in enum.values]
    undefined = st.sampled_from([max(numbers) + 1, -1, 99999, 2**31 - 1, -2**31])
    if strict:
        return st.one_of(st.sampled_from(names), st.sampled_from(numbers), undefined)
    return st.one_of(
        st.sampled_from(names).map(str.lower),
        st.sampled_from(names).map(lambda n: n + "_BOGUS"),
        undefined,
        st.sampled_from([2**31, 2**40, str(max(numbers) + 1), "-1", "1.5", "", enum.name]),
    )


def _scalar_strategy(field: FieldDescriptor, strict: bool = False):
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return hostile_text if strict else st.one_of(hostile_text, broken_json_string)
    if t == FieldDescriptor.TYPE_BYTES:
        good = st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode())
        return good if strict else st.one_of(good, st.sampled_from(["!!!", "a", "=", "@@@@"]), hostile_text)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans() if strict else st.sampled_from(["true", "maybe", 1, 0, "1", "TRUE"])
    if t == FieldDescriptor.TYPE_ENUM:
        return _enum_strategy(field, strict)
    return _number_strategy(field, strict)


def _repeated(field: FieldDescriptor) -> bool:
    flag = getattr(field, "is_repeated", None)
    return flag if flag is not None else field.label == FieldDescriptor.LABEL_REPEATED


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


WKT_STRICT = {
    "google.protobuf.Timestamp": st.sampled_from(TIMESTAMPS[:4] + ["2026-01-01T00:00:00.999999999Z",
                                                                    "2026-06-30T23:59:60Z"]),
    "google.protobuf.Duration": st.sampled_from(["1s", "1.5s", "-1s", "0s", "315576000000s", "-315576000000s",
                                                 "0.000000001s"]),
    "google.protobuf.FieldMask": st.sampled_from(["", "a.b,c", "nonexistent", "report.classification.incidentType",
                                                  "name", "displayName", "a" * 300]),
    "google.protobuf.Any": st.just({"@type": "type.googleapis.com/google.protobuf.Empty"}),
}
WKT = {
    "google.protobuf.Timestamp": st.one_of(st.sampled_from(TIMESTAMPS), hostile_text),
    "google.protobuf.Duration": st.one_of(st.sampled_from(DURATIONS), hostile_text),
    "google.protobuf.FieldMask": st.one_of(st.sampled_from([",", "*", "report..x", "Report.Name"]), hostile_text),
    "google.protobuf.Any": st.one_of(
        st.fixed_dictionaries({"@type": st.sampled_from(["type.googleapis.com/nope", "x", ""])}),
        st.just({"value": "AAAA"})),
}


@functools.lru_cache(maxsize=None)  # built once: composite strategies are slow to make
def json_for_message(desc: Descriptor, depth: int = 0, strict: bool = False):
    """A JSON object for `desc`: some of its fields with hostile values.

    `strict` keeps every value of its field's JSON type (so the gateway's parser takes the body and
    the service sees it); otherwise values are also of the wrong type, and unknown keys appear.
    """
    if desc.full_name in WKT:
        return WKT_STRICT[desc.full_name] if strict else st.one_of(WKT[desc.full_name], wrong_type)
    if depth > 3 or not desc.fields:
        return st.just({}) if strict else st.one_of(st.just({}), wrong_type)
    fields = list(desc.fields)

    @st.composite
    def build(draw):
        chosen = draw(st.lists(st.sampled_from(fields), max_size=min(len(fields), 6), unique_by=lambda f: f.name))
        doc = {}
        for f in chosen:
            name = f.json_name if draw(st.integers(0, 4)) else f.name
            doc[name] = draw(json_for_field(f, depth + 1, strict))
        if not strict and draw(st.integers(0, 9)) == 0:
            doc[draw(st.sampled_from(["bogusField", "__proto__", "@type", "", "name\u0000"]))] = draw(wrong_type)
        return doc

    return st.one_of(build(), wrong_type) if depth and not strict else build()


@functools.lru_cache(maxsize=None)
def json_for_field(field: FieldDescriptor, depth: int, strict: bool = False):
    if _is_map(field):
        value_field = field.message_type.fields_by_name["value"]
        items = st.dictionaries(hostile_text, json_for_field(value_field, depth + 1, strict), max_size=4)
        return items if strict else st.one_of(items, wrong_type)
    if field.message_type:
        element = json_for_message(field.message_type, depth, strict)
    else:
        element = _scalar_strategy(field, strict)
    if _repeated(field):
        return st.lists(element, max_size=5) if strict else st.one_of(st.lists(element, max_size=5), element,
                                                                       wrong_type)
    return element if strict else weighted((2, element), (1, wrong_type))


# -- REST requests -----------------------------------------------------------------------------

def _known_ids() -> list[str]:
    """Ids of the sample city's records, which every stack has: a request about one gets past lookups."""
    import sampledata as sd

    units = sd.units()[:3]
    return ([s.station_id for s in sd.stations()[:3]] + [u.unit_id for u in units]
            + [o.officer_id for u in units for o in u.officers[:1]] + [g.grid_id for g in sd.grids()[:2]]
            + [d.dept_id for d in sd.departments()[:3]])


KNOWN_IDS = _known_ids()
TEMPLATE_VAR = re.compile(r"\{([a-z_][a-z0-9_.]*)(?:=([^}]*))?\}")


def pct(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


segment = st.one_of(
    st.text(min_size=1, max_size=20).map(pct),
    st.binary(min_size=1, max_size=12).map(lambda b: "".join(f"%{x:02X}" for x in b)),  # invalid UTF-8 escapes
    st.sampled_from(["%00", "a%00b", "%FF", "%C0%AF", "%ED%A0%80", "%F4%90%80%80", "..", ".", "%2F", "%2e%2e",
                     "@", "x@1", "x@-1", "x@99999999999999999999", ":x", "*", "%25", "%", "%zz", "~", "%20"]),
    st.sampled_from([256, 1024, 8192, 20_000]).map(lambda n: "x" * n),
    st.sampled_from(UNICODE[:-1]).map(pct),
    st.from_regex(r"[A-Z]{1,3}[0-9]{1,6}", fullmatch=True),
    st.sampled_from(["1", "0", "-1"]),
    st.sampled_from(KNOWN_IDS),
)


@functools.lru_cache(maxsize=None)
def _pattern_value(pattern: str):
    """A value for a path variable: its pattern with each * filled, or something else entirely."""
    parts = (pattern or "*").split("/")

    @st.composite
    def fill(draw):
        out = []
        for p in parts:
            if p == "*":
                out.append(draw(segment))
            elif p == "**":
                out.append("/".join(draw(st.lists(segment, min_size=1, max_size=3))))
            else:
                out.append(p)
        return "/".join(out)

    return weighted((9, fill()), (1, segment))


def _leaf_paths(desc: Descriptor, prefix: str = "", depth: int = 0):
    """(query parameter name, field) for every leaf field reachable as a query parameter."""
    for f in desc.fields:
        name = prefix + (f.json_name if depth % 2 == 0 else f.name)
        if f.message_type is not None and f.message_type.full_name not in WKT and not _is_map(f):
            if depth < 2 and not _repeated(f):
                yield from _leaf_paths(f.message_type, name + ".", depth + 1)
        else:
            yield name, f


def _query_value(field: FieldDescriptor):
    if field.message_type is not None:
        if field.message_type.full_name in WKT:
            return st.one_of(WKT_STRICT[field.message_type.full_name], WKT[field.message_type.full_name]) \
                .filter(lambda v: isinstance(v, str))
        return hostile_text
    if field.name == "page_token":
        return st.one_of(st.sampled_from(TOKENS), hostile_text)
    values = weighted((2, _scalar_strategy(field, strict=True)), (1, _scalar_strategy(field)))
    return values.map(lambda v: v.text.decode("utf-8", "replace") if isinstance(v, Raw) else v)


def _q(value) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    if isinstance(value, float):
        value = repr(value)
    return pct(str(value))


@dataclass
class RestRequest:
    verb: str
    path: str  # with the query string, percent-encoded
    body: bytes | None
    content_type: str | None
    token: str  # "privileged", "none" or "garbage"

    def reproduction(self, base: str) -> str:
        headers = ""
        if self.token == "privileged":
            headers += " -H \"Authorization: Bearer $TOKEN\""
        elif self.token == "garbage":
            headers += " -H 'Authorization: Bearer garbage'"
        if self.content_type:
            headers += f" -H 'Content-Type: {self.content_type}'"
        body = ""
        if self.body is not None:
            body = " --data-binary " + _shell_bytes(self.body[:600])
            if len(self.body) > 600:
                body += f"...({len(self.body)} bytes)"
        path = self.path if len(self.path) <= 600 else self.path[:600] + f"...({len(self.path)} chars)"
        return f"curl -X {self.verb} '{base}{path}'{headers}{body}"


def _shell_bytes(data: bytes) -> str:
    """`data` as a bash $'...' word: printable ASCII as is, every other byte as \\xNN."""
    return "$'" + "".join(chr(b) if 32 <= b < 127 and b not in b"'\\" else f"\\x{b:02x}" for b in data) + "'"


def _fields_bound_in_path(template: str) -> set[str]:
    return {m.group(1) for m in TEMPLATE_VAR.finditer(template)}


def rest_requests(binding: Binding, pool: descriptor_pool.DescriptorPool):
    """A strategy of hostile `RestRequest`s for one binding."""
    method: MethodDescriptor = pool.FindMethodByName(binding.method)
    request_desc = method.input_type
    in_path = _fields_bound_in_path(binding.template)
    query_fields = [(name, f) for name, f in _leaf_paths(request_desc)
                    if name.split(".")[0] not in {p.split(".")[0] for p in in_path}]
    body_field = request_desc.fields_by_name.get(binding.body) if binding.body not in ("", "*") else None

    @st.composite
    def build(draw):
        path = binding.template
        for m in reversed(list(TEMPLATE_VAR.finditer(binding.template))):
            path = path[:m.start()] + draw(_pattern_value(m.group(2) or "*")) + path[m.end():]
        params = []
        if binding.body != "*" and query_fields:
            for name, f in draw(st.lists(st.sampled_from(query_fields), max_size=4)):
                values = draw(st.lists(_query_value(f), min_size=1, max_size=2)) if _repeated(f) else \
                    [draw(_query_value(f))]
                params += [(name, v) for v in values]
        if draw(st.integers(0, 14)) == 0:
            params.append((draw(st.sampled_from(["bogus", "page_size", "%FF", "a%00", "pageSize.x", ""])),
                           draw(st.sampled_from(["1", "%FF", "", "-1"]))))
        query = "&".join(f"{pct(k) if '%' not in k else k}={_q(v)}" for k, v in params)
        if draw(st.integers(0, 19)) == 0:
            query = draw(st.sampled_from(["%", "a=%zz", "=&=&", "a=b=c", "&&&", "pageSize=%FF%FE", "x" * 5000]))
        body, content_type = None, None
        if binding.body == "*":
            body, content_type = draw(_json_body(request_desc))
        elif body_field is not None:
            body, content_type = draw(_field_body(body_field))
        token = draw(st.sampled_from(["privileged"] * 8 + ["none", "garbage"]))
        return RestRequest(binding.verb, path + ("?" + query if query else ""), body, content_type, token)

    return build()


def _json_body(desc: Descriptor):
    typed = json_for_message(desc, strict=True).map(lambda doc: (dump(doc), "application/json"))
    document = json_for_message(desc).map(lambda doc: (dump(doc), "application/json"))
    broken = st.sampled_from([b"", b"{", b"{}}", b"[]", b"null", b"\"x\"", b"{\"a\":}", b"\xef\xbb\xbf{}",
                              b"{\"requestId\": \"\xff\"}", b"{\"a\":1,\"a\":2}", b"1e999", b"\x00"])
    return weighted(
        (4, typed), (3, document),
        (1, st.tuples(broken, st.sampled_from(["application/json", "text/plain", "application/xml", ""]))),
        (1, st.tuples(st.binary(max_size=64), st.just("application/octet-stream"))),
        (1, st.integers(100, 5000).map(lambda n: (b"[" * n + b"]" * n, "application/json"))))


def _field_body(field: FieldDescriptor):
    if field.message_type is not None and field.message_type.full_name == "google.api.HttpBody":
        form = st.lists(st.tuples(st.sampled_from(["api_key", "service_code", "lat", "long", "description",
                                                   "address_string", "email", "media_url", "jurisdiction_id",
                                                   "%FF", "", "a%00"]),
                                  st.one_of(st.sampled_from(["smart110-open311-dev", "NaN", "1e309", "-91", "%FF",
                                                             "%00", "", "%"]), hostile_text.map(pct))),
                        max_size=6).map(lambda kv: "&".join(f"{k}={v}" for k, v in kv).encode())
        return st.one_of(
            st.tuples(form, st.just("application/x-www-form-urlencoded")),
            st.tuples(json_for_message(field.containing_type, strict=True).map(dump), st.just("application/json")),
            st.tuples(st.binary(max_size=64), st.sampled_from(["application/json", "text/plain",
                                                               "application/x-www-form-urlencoded", ""])),
        )
    return st.one_of(json_for_field(field, 1, strict=True), json_for_field(field, 1)) \
        .map(lambda doc: (dump(doc), "application/json"))


@dataclass
class Outcome:
    status: int | str  # HTTP status, a gRPC code name, or "no answer"
    body: str
    server_error: bool
    reproduction: str
    trace_id: str = ""

    def describe(self) -> str:
        trace = f" (trace id {self.trace_id})" if self.trace_id else " (no trace id)"
        return f"{self.status}{trace if self.server_error else ''}: {self.body[:300]!r}\n    {self.reproduction}"


def trace_id_in(body: str) -> str:
    """The trace id an error quotes: ErrorInfo metadata `trace_id`, else a 32-hex id in the text."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        for detail in doc.get("details") or []:
            if isinstance(detail, dict) and (detail.get("metadata") or {}).get("trace_id"):
                return detail["metadata"]["trace_id"]
    found = TRACE_ID.search(body)
    return found.group(0) if found else ""


def send_rest(host: str, port: int, request: RestRequest, token: str, *, timeout: float = 20.0,
              stream_timeout: float = 0.3, streaming: bool = False) -> Outcome:
    """Sends `request` on a connection of its own; for a streaming binding only the status is read."""
    base = f"http://{host}:{port}"
    headers = {}
    if request.token == "privileged":
        headers["Authorization"] = f"Bearer {token}"
    elif request.token == "garbage":
        headers["Authorization"] = "Bearer garbage"
    if request.content_type is not None:
        headers["Content-Type"] = request.content_type
    conn = http.client.HTTPConnection(host, port, timeout=stream_timeout if streaming else timeout)
    try:
        conn.request(request.verb, request.path, body=request.body, headers=headers)
        resp = conn.getresponse()
        if streaming and resp.status == 200:
            body = ""  # a feed that started; it runs until the caller leaves
        else:
            body = resp.read().decode("utf-8", "replace")
        status = resp.status
    except socket.timeout:
        if streaming:
            # A stream that has not sent its first message yet: open, not failed.
            return Outcome("stream open", "", False, request.reproduction(base))
        return Outcome("no answer", "", True, request.reproduction(base))
    except (ConnectionError, http.client.HTTPException) as exc:
        return Outcome("connection failed", repr(exc), True, request.reproduction(base))
    finally:
        conn.close()
    # A 429 from gRPC's own metadata limit: the service never saw the request.
    failed = status >= 500 or (status == 429 and "metadata size" in body)
    return Outcome(status, body, failed, request.reproduction(base), trace_id_in(body) if failed else "")


# -- gRPC request bytes ----------------------------------------------------------------------------


def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint((number << 3) | wire)


def _wire_type(field: FieldDescriptor) -> int:
    t = field.type
    if t in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE):
        return 2
    if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64):
        return 1
    if t in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32):
        return 5
    return 0


def _message_class(desc: Descriptor):
    return message_factory.GetMessageClass(desc)


@functools.lru_cache(maxsize=None)
def proto_message(desc: Descriptor, depth: int = 0):
    """A strategy of valid messages of `desc` holding hostile values (the guard's cases among them)."""
    cls = _message_class(desc)
    fields = [f for f in desc.fields if not (f.message_type is not None and depth > 2)]

    def value(f: FieldDescriptor):
        t = f.type
        if t == FieldDescriptor.TYPE_STRING:
            return hostile_text
        if t == FieldDescriptor.TYPE_BYTES:
            return st.binary(max_size=20)
        if t == FieldDescriptor.TYPE_BOOL:
            return st.booleans()
        if t == FieldDescriptor.TYPE_ENUM:
            return st.one_of(st.sampled_from([v.number for v in f.enum_type.values]),
                             st.sampled_from([-1, 99999, 2**31 - 1]))
        if t in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return st.floats(width=64 if t == FieldDescriptor.TYPE_DOUBLE else 32)
        if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
            return st.integers(-2**31, 2**31 - 1)
        if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
            return st.integers(0, 2**32 - 1)
        if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
            return st.integers(0, 2**64 - 1)
        return st.integers(-2**63, 2**63 - 1)

    @st.composite
    def build(draw):
        msg = cls()
        if not fields:
            return msg
        for f in draw(st.lists(st.sampled_from(fields), max_size=5, unique_by=lambda f: f.name)):
            try:
                if _is_map(f):
                    vf = f.message_type.fields_by_name["value"]
                    if vf.message_type is not None:
                        continue
                    getattr(msg, f.name)[draw(hostile_text)] = draw(value(vf))
                elif f.message_type is not None:
                    sub = draw(proto_message(f.message_type, depth + 1))
                    if _repeated(f):
                        getattr(msg, f.name).append(sub)
                    else:
                        getattr(msg, f.name).CopyFrom(sub)
                elif _repeated(f):
                    getattr(msg, f.name).extend(draw(st.lists(value(f), max_size=3)))
                else:
                    setattr(msg, f.name, draw(value(f)))
            except (TypeError, ValueError):
                pass  # a value this field cannot hold (e.g. a float for a float32 overflowing)
        return msg

    return build()


def _field_numbers(desc: Descriptor) -> list[int]:
    return [f.number for f in desc.fields] or [1]


def _bomb(desc: Descriptor, depth: int) -> bytes:
    """`depth` levels of a message field nested in itself (or field 1 where none recurses)."""
    path = []
    current = desc
    for _ in range(8):  # find a chain of message fields, then repeat its first link
        f = next((f for f in current.fields if f.message_type is not None), None)
        if f is None:
            break
        path.append(f.number)
        current = f.message_type
    number = path[0] if path else 1
    inner = b""
    for _ in range(depth):
        inner = tag(number, 2) + varint(len(inner)) + inner
    return inner


def grpc_payloads(desc: Descriptor):
    """A strategy of request bytes for a method whose request message is `desc`."""
    numbers = _field_numbers(desc)
    string_fields = [f.number for f in desc.fields if f.type == FieldDescriptor.TYPE_STRING]
    typed = {f.number: _wire_type(f) for f in desc.fields}

    valid = proto_message(desc).map(lambda m: m.SerializeToString())

    @st.composite
    def mutated(draw):
        data = bytearray(draw(valid))
        for _ in range(draw(st.integers(1, 4))):
            op = draw(st.integers(0, 3))
            if op == 0 and data:
                i = draw(st.integers(0, len(data) - 1))
                data[i] = draw(st.integers(0, 255))
            elif op == 1 and data:
                del data[draw(st.integers(0, len(data) - 1)):]
            elif op == 2:
                i = draw(st.integers(0, len(data)))
                data[i:i] = draw(st.binary(min_size=1, max_size=6))
            else:
                data += draw(st.binary(max_size=8))
        return bytes(data)

    @st.composite
    def crafted(draw):
        out = b""
        for _ in range(draw(st.integers(1, 4))):
            number = draw(st.one_of(st.sampled_from(numbers), st.sampled_from([0, 2**29 - 1, 19000, 15, 16])))
            kind = draw(st.integers(0, 9))
            if kind == 0:  # a wrong wire type for the field
                wire = draw(st.sampled_from([w for w in (0, 1, 2, 5) if w != typed.get(number)]))
                out += tag(number, wire) + {0: varint(draw(st.integers(0, 2**64 - 1))), 1: b"\x01" * 8,
                                            2: b"\x02ab", 5: b"\x01" * 4}[wire]
            elif kind == 1:  # a truncated or overlong varint
                out += tag(number, 0) + draw(st.sampled_from([b"\x80", b"\xff" * 10, b"\xff" * 11 + b"\x01",
                                                              b"\x80\x80\x80"]))
            elif kind == 2:  # a length past the end
                out += tag(number, 2) + varint(draw(st.sampled_from([5, 2**31, 2**32 + 3]))) + b"ab"
            elif kind == 3:  # groups, unmatched or of an invalid wire type
                out += tag(number, draw(st.sampled_from([3, 4, 6, 7]))) + draw(st.binary(max_size=4))
            elif kind == 4 and string_fields:  # invalid UTF-8 in a string field
                bad = draw(st.sampled_from([b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"a\x00\xfe"]))
                out += tag(draw(st.sampled_from(string_fields)), 2) + varint(len(bad)) + bad
            elif kind == 5:  # a nested-message bomb
                out += _bomb(desc, draw(st.sampled_from([64, 101, 200, 1000, 5000])))
            elif kind == 6:  # a valid field with a huge number / a packed run of junk
                out += tag(number, 2) + varint(8) + b"\xff" * 8
            else:
                out += tag(number, typed.get(number, 0))
                out += draw(st.binary(max_size=12))
        return out

    return weighted((5, valid), (1, mutated()), (2, crafted()), (1, st.binary(max_size=80)))


def jwt_payload(claims) -> str:
    raw = claims if isinstance(claims, bytes) else json.dumps(claims).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


# An in-cluster caller presents a service credential; a privileged user a signed token; the rest
# are hostile identities (a forged payload header, malformed bearer tokens).
_in_cluster = st.just((("authorization", f"Bearer {mint_service('fuzz')}"),))
_privileged = st.just((("authorization", "Bearer " + mint(roles=PRIVILEGED_ROLES, station="S01", sub="fuzz")),))
_junk = ["!!!", "", jwt_payload(b"not json"), jwt_payload([1, 2]), jwt_payload("x"),
         jwt_payload({"roles": 5}), jwt_payload({"roles": {"a": 1}, "sub": ["x"]}),
         jwt_payload({"roles": [None, 1, ["x"]]}), jwt_payload(b"\xff\xfe"), "a" * 5,
         "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."]
call_metadata = weighted(
    (3, _in_cluster), (3, _privileged),
    (1, st.sampled_from(_junk).map(lambda v: (("x-jwt-payload", v),))),
    (1, st.sampled_from(_junk).map(lambda v: (("authorization", f"Bearer {v}"),))),
)


def call_grpc(channel: grpc.Channel, rpc: Rpc, payloads: list[bytes], metadata, *, address: str,
              timeout: float = 10.0, stream_timeout: float = 0.5) -> Outcome:
    """Calls `rpc` with raw request bytes; a stream is read for at most one message."""
    shown = [p if len(p) <= 300 else p[:300] + b"...(%d bytes)" % len(p) for p in payloads]
    kind = ("stream" if rpc.client_streaming else "unary") + "_" + ("stream" if rpc.server_streaming else "unary")
    argument = f"iter({shown!r})" if rpc.client_streaming else repr(shown[0])
    repro = f"grpc.insecure_channel({address!r}).{kind}({rpc.path!r})({argument}, metadata={tuple(metadata)!r})"
    try:
        if rpc.client_streaming and rpc.server_streaming:
            call = channel.stream_stream(rpc.path)(iter(payloads), timeout=stream_timeout, metadata=metadata)
            _first(call)
        elif rpc.client_streaming:
            channel.stream_unary(rpc.path)(iter(payloads), timeout=stream_timeout * 3, metadata=metadata)
        elif rpc.server_streaming:
            call = channel.unary_stream(rpc.path)(payloads[0], timeout=stream_timeout, metadata=metadata)
            _first(call)
        else:
            channel.unary_unary(rpc.path)(payloads[0], timeout=timeout, metadata=metadata)
    except grpc.RpcError as err:
        code = err.code()
        details = err.details() or ""
        failed = code in SERVER_ERROR_CODES
        if code == grpc.StatusCode.DEADLINE_EXCEEDED and not (rpc.server_streaming or rpc.client_streaming):
            failed = True  # a unary call that did not answer in time
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and "metadata size" in details:
            failed = True  # the answer did not fit in the trailers a client takes
        trace = ""
        if failed:
            trace = _grpc_trace_id(err) or trace_id_in(details)
        return Outcome(code.name, details, failed, repro, trace)
    return Outcome("OK", "", False, repro)


def _first(call) -> None:
    try:
        next(call)
    except StopIteration:
        pass
    finally:
        call.cancel()


def _grpc_trace_id(err: grpc.RpcError) -> str:
    for key, value in err.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            from google.rpc import error_details_pb2

            for detail in status.details:
                info = error_details_pb2.ErrorInfo()
                if detail.Unpack(info) and info.metadata.get("trace_id"):
                    return info.metadata["trace_id"]
    return ""


@dataclass
class Findings:
    """Failures collected over a run, reported together."""

    outcomes: list[Outcome] = field(default_factory=list)
    sent: int = 0

    def add(self, outcome: Outcome) -> None:
        self.sent += 1
        if outcome.server_error:
            self.outcomes.append(outcome)

    def classes(self) -> dict[str, int]:
        """Failures by status and the start of their answer (trace ids left out)."""
        counts: dict[str, int] = {}
        for o in self.outcomes:
            key = f"{o.status} {TRACE_ID.sub('<trace id>', o.body)[:100]!r}"
            counts[key] = counts.get(key, 0) + 1
        return counts

    def report(self, what: str, limit: int = 40) -> str:
        lines = [f"{len(self.outcomes)} of {self.sent} requests to {what} failed on the server side:"]
        lines += [f"  {n} x {key}" for key, n in sorted(self.classes().items(), key=lambda kv: -kv[1])]
        roles = ",".join(PRIVILEGED_ROLES)
        lines.append(f"reproductions (TOKEN=$(python -m tools.token --role {roles} --station S01)):")
        lines += ["  " + o.describe() for o in self.outcomes[:limit]]
        if len(self.outcomes) > limit:
            lines.append(f"  ... and {len(self.outcomes) - limit} more")
        return "\n".join(lines)
