"""Open311Service: the GeoReport v2 face of the 12345 line (public: a client authenticates with its
api_key inside the request), over the same work orders as the ReferralService.

The servicer answers in GeoReport records (plain dicts with GeoReport's keys): its gRPC methods
render them as JSON in an HttpBody, and the HTTP face (`http`) renders them as JSON or XML
with GeoReport's status codes. Errors carry GeoReport errors (`extra_details()`, see
services.runtime.status) besides the usual details.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import json
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs

from google.api import httpbody_pb2
from google.protobuf import json_format
from python_multipart import parse_form
from python_multipart.exceptions import FormParserError

from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime.app import Runtime
from services.runtime.auth import AuthContext
from services.runtime.db import read_snapshot
from services.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from services.runtime.request_guard import TIMESTAMP_RANGE
from services.runtime.timeutil import from_pb
from services.runtime.validation import Violations

from .. import handlers, mapping, queries
from ..api import check_phone, check_point
from ..domain import CHINA, CitizenUpdate, open311_statuses
from . import catalogue

GEOREPORT_KEYS = ("service_code", "lat", "long", "address_string", "address_id", "email", "device_id",
                  "account_id", "first_name", "last_name", "phone", "description", "media_url", "api_key",
                  "jurisdiction_id")
# An attribute of a service definition in a POST: `attribute[code]`, `attribute[code][]` for one of
# several values of a multivaluelist (or the key repeated).
ATTRIBUTE_KEY = re.compile(r"^attribute\[([A-Za-z0-9_.\-]{1,40})\](\[\])?$")
# At most this many attribute values in one POST.
MAX_ATTRIBUTE_VALUES = 50
# Without page_size, a list holds at most this many; page_size may not ask for more.
MAX_OPEN311_RESULTS = 1000
MAX_PAGE = 100_000
# The identity every Open311 call runs as (services.runtime.app ServiceSpec.public).
OPEN311_CLIENT = AuthContext(subject="open311-public", roles=frozenset({"open311_client"}))
GEOREPORT_CONTENT_TYPE = "application/json; charset=utf-8"
# GeoReport fields typed as a date-time or a URI: left out when there is no value, never "".
DATE_FIELDS = frozenset({"requested_datetime", "updated_datetime", "expected_datetime"})
URI_FIELDS = frozenset({"media_url"})
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
# When this face last changed (discovery's `changeset`).
CHANGESET = "2026-12-04T00:00:00+08:00"
DISCOVERY_CONTACT = "江城市12345政务服务便民热线：电话12345"
DISCOVERY_KEY_SERVICE = "提交诉求需使用12345热线管理办公室签发的 api_key，请致电12345申请"

# The service request updates feed (servicerequestupdates): the timeline entries a citizen's app
# wants to hear of -> (status, what happened). Status values are the extended ones FixMyStreet reads.
UPDATE_STATUS: dict[str, tuple[str, str]] = {
    "ASSIGNED": ("ACTION_SCHEDULED", "已派单至承办单位"),
    "PRELIMINARY_POLICE": ("INTERNAL_REFERRAL", "责任单位待定，由属地派出所先期处置"),
    "ACCEPTED": ("ACTION_SCHEDULED", "承办单位已签收"),
    "REJECTED": ("INVESTIGATING", "承办单位退回，12345正在重新派单"),
    "STARTED": ("IN_PROGRESS", "承办单位正在办理"),
    "RESOLVED": ("FIXED", "承办单位已办结"),
    "REOPENED": ("OPEN", "市民不满意，已重新办理"),
    "OVERTURNED": ("OPEN", "经督导复核，作为正常诉求重新受理"),
    "CLOSED": ("CLOSED", "已办结归档"),
    "CLOSED_UNREASONABLE": ("NO_FURTHER_ACTION", "属不合理不合规诉求，已规范答复"),
    "TRANSFERRED_TO_110": ("INTERNAL_REFERRAL", "已转110处置"),
}


# A citizen's update in the feed has the status its order had when it arrived, by order status.
ORDER_STATUS_UPDATE = {
    "RECEIVED": "OPEN", "ASSIGNED": "ACTION_SCHEDULED", "ACCEPTED": "ACTION_SCHEDULED", "IN_PROGRESS": "IN_PROGRESS",
    "RESOLVED": "FIXED", "CLOSED": "CLOSED", "REJECTED": "INVESTIGATING", "REOPENED": "OPEN",
    "PRELIMINARY_POLICE": "INTERNAL_REFERRAL", "TRANSFERRED_TO_110": "INTERNAL_REFERRAL",
}
# POST servicerequestupdates (FixMyStreet's Open311 update extension): the keys read. `update_id` is
# the client's own id of the update (older FixMyStreet releases send it as `update_id_ext`).
UPDATE_KEYS = ("service_request_id", "update_id", "update_id_ext", "updated_datetime", "status", "description",
               "email", "first_name", "last_name", "phone", "media_url", "api_key", "jurisdiction_id")
# The statuses a client may send: GeoReport's OPEN/CLOSED and FixMyStreet's extended ones.
UPDATE_STATUSES = ("OPEN", "CLOSED", "FIXED", "IN_PROGRESS", "ACTION_SCHEDULED", "INVESTIGATING", "DUPLICATE",
                   "NOT_COUNCILS_RESPONSIBILITY", "NO_FURTHER_ACTION", "INTERNAL_REFERRAL", "REOPEN")
CLIENT_UPDATE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


class GeoReportInvalid(InvalidArgument):
    """Bad GeoReport input; each violation also as a GeoReport error (code 400)."""

    def extra_details(self) -> list:
        return [pb.GeoReportError(code=400, description=f"{f}: {d}") for f, d in self.violations]


class GeoReportForbidden(PermissionDenied):
    """No api_key, or one that is not one of the issued keys (GeoReport: 403)."""

    def extra_details(self) -> list:
        return [pb.GeoReportError(code=403, description=self.message)]


class GeoReportNotFound(NotFound):
    """An unknown service code, request or token (GeoReport: 404)."""

    def extra_details(self) -> list:
        return [pb.GeoReportError(code=404, description=self.message)]


def raise_georeport(v: Violations) -> None:
    if v.items:
        raise GeoReportInvalid(v.items)


def add_field(out: dict, key: str, value: str, keys: tuple[str, ...] = GEOREPORT_KEYS,
              attributes: bool = True) -> None:
    """Keeps one field of a POST: the first value of one of `keys`; with `attributes` (POST requests),
    every value of an attribute, as a list under `attribute[code]`. Empty values and other keys are
    left out."""
    if value == "":
        return
    found = ATTRIBUTE_KEY.match(key) if attributes else None
    if found:
        values = out.setdefault(f"attribute[{found.group(1)}]", [])
        if sum(len(x) for x in out.values() if isinstance(x, list)) < MAX_ATTRIBUTE_VALUES:
            values.append(value)
    elif key in keys and key not in out:
        out[key] = value


def json_fields(data: dict, keys: tuple[str, ...] = GEOREPORT_KEYS, attributes: bool = True) -> dict:
    """The fields of a JSON POST: the same keys as a form's; attributes also as
    {"attribute": {"code": value or [values]}}."""
    out: dict = {}
    for key, value in data.items():
        if key == "attribute" and isinstance(value, dict) and attributes:
            for code, inner in value.items():
                for item in inner if isinstance(inner, list) else [inner]:
                    if item is not None:
                        add_field(out, f"attribute[{code}]", str(item), keys, attributes)
        elif isinstance(value, list) and attributes and ATTRIBUTE_KEY.match(key):
            for item in value:
                if item is not None:
                    add_field(out, key, str(item), keys, attributes)
        elif value is not None:
            add_field(out, key, str(value), keys, attributes)
    return out


def attribute_values(given: dict) -> dict[str, list[str]]:
    """`attribute[code]` -> its values, by code."""
    return {k[len("attribute["):-1]: v for k, v in given.items() if k.startswith("attribute[") and isinstance(v, list)}


def parse_multipart(body: httpbody_pb2.HttpBody, v: Violations) -> dict:
    """The keys of a multipart/form-data POST. A file part is refused: there is no media storage
    here, a picture is sent as media_url (a link to it)."""
    fields: dict = {}
    files: list[str] = []

    def on_field(f) -> None:
        name = (f.field_name or b"").decode("utf-8", errors="replace")
        add_field(fields, name, (f.value or b"").decode("utf-8", errors="replace"))

    def on_file(f) -> None:
        files.append((f.field_name or b"").decode("utf-8", errors="replace") or "file")
        f.close()

    headers = {"Content-Type": body.content_type.encode("latin-1", errors="replace"),
               "Content-Length": str(len(body.data)).encode()}
    try:
        parse_form(headers, io.BytesIO(body.data), on_field, on_file)
    except (FormParserError, ValueError):
        v.add("raw_body", "is not a readable multipart/form-data body")
        return {}
    for name in files:
        v.add(name, "file uploads are not accepted: this endpoint stores no media; "
                    "send media_url, a link to the picture")
    return fields


def parse_georeport_body(body: httpbody_pb2.HttpBody, v: Violations) -> dict:
    """The keys of a GeoReport POST, form-encoded, multipart or JSON."""
    if body.content_type.split(";")[0].strip().lower() == "multipart/form-data":
        return parse_multipart(body, v)
    raw = body.data.decode("utf-8", errors="replace")
    if "json" in body.content_type:
        try:
            data = json.loads(raw or "{}")
            if not isinstance(data, dict):
                raise ValueError
        except (ValueError, RecursionError):
            # RecursionError: a body nested too deeply for the parser.
            v.add("raw_body", "is not a JSON object")
            return {}
        return json_fields(data)
    out: dict = {}
    for k, vals in parse_qs(raw, keep_blank_values=False).items():
        for val in vals:
            add_field(out, k, val)
    return out


def w3c(value: str) -> str:
    """An RFC 3339 time as GeoReport shows it: to the second, in China time ("2026-12-04T09:30:00+08:00")."""
    when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return when.astimezone(CHINA).isoformat(timespec="seconds")


def record(message) -> dict:
    """A GeoReport record from one of the GeoReport messages: its proto field names, every field that
    has a value (strings too when empty, `metadata: false`), but no empty date or URI, dates in W3C
    form, and no coordinates for a request without a place."""
    out = json_format.MessageToDict(message, preserving_proto_field_name=True,
                                    always_print_fields_with_no_presence=True)
    for key in list(out):
        if key in URI_FIELDS and not out[key]:
            del out[key]
        elif key in DATE_FIELDS:
            out[key] = w3c(out[key])
    if "lat" in out and "long" in out and not out["lat"] and not out["long"]:
        del out["lat"], out["long"]
    return out


def json_body(data) -> httpbody_pb2.HttpBody:
    return httpbody_pb2.HttpBody(content_type=GEOREPORT_CONTENT_TYPE,
                                 data=json.dumps(data, ensure_ascii=False).encode("utf-8"))


def parse_w3c(value: str, field: str, v: Violations) -> datetime | None:
    """A start_date/end_date query parameter ("2026-01-01T00:00:00Z"); None when not given."""
    value = value.strip()
    if not value:
        return None
    try:
        # A "+" left unencoded in a query string arrives as a space.
        when = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError:
        v.add(field, "must be a W3C date-time, e.g. 2026-01-01T00:00:00Z")
        return None
    when = when if when.tzinfo else when.replace(tzinfo=CHINA)
    low, high = TIMESTAMP_RANGE
    if not low < when < high:
        v.add(field, "must be after 1970 and before 3000")
        return None
    return when


def parse_paging(page: str, page_size: str, v: Violations) -> tuple[int, int]:
    """GeoReport's page/page_size extension -> (limit, offset). Without them: the first 1000."""
    out = []
    for field, raw, default in (("page", page, 1), ("page_size", page_size, MAX_OPEN311_RESULTS)):
        raw = raw.strip()
        if not raw:
            out.append(default)
            continue
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_PAGE:
            v.add(field, f"must be a whole number from 1 to {MAX_PAGE}")
            out.append(default)
            continue
        out.append(int(raw))
    number, size = out
    if size > MAX_OPEN311_RESULTS:
        v.add("page_size", f"must be at most {MAX_OPEN311_RESULTS}")
        size = MAX_OPEN311_RESULTS
    return size, (number - 1) * size


class Open311Servicer(pb_grpc.Open311ServiceServicer):
    """The GeoReport v2 face of the 12345 line.

    `jurisdiction_id` is the one this endpoint serves (OPEN311_JURISDICTION_ID);
    when it is empty, requests may name any jurisdiction or none.
    """

    def __init__(self, rt: Runtime, jurisdiction_id: str = "", api_keys: list[str] | tuple[str, ...] = ()):
        self.rt = rt
        self.jurisdiction_id = jurisdiction_id
        # The keys issued to apps (OPEN311_API_KEYS); none configured means no POST is accepted.
        self.api_keys = tuple(k.encode() for k in api_keys if k)

    # -- checks ----------------------------------------------------------------------

    def check_api_key(self, key: str) -> None:
        """GeoReport: a POST carries the app's api_key (403 without it). Checked before anything else."""
        key = key.strip()
        if not key:
            raise GeoReportForbidden("api_key: is required: the key issued to your application",
                                     reason="API_KEY_MISSING")
        given = key.encode()
        # Compare with every key, so the time taken does not tell which one was close.
        if not any([hmac.compare_digest(given, k) for k in self.api_keys]):
            raise GeoReportForbidden("api_key is not valid for this endpoint", reason="API_KEY_INVALID")

    def check_jurisdiction(self, value: str, v: Violations) -> None:
        """GeoReport: a jurisdiction_id this endpoint does not serve is 404. `v` is for what a caller
        found wrong besides."""
        value = value.strip()
        if self.jurisdiction_id and value and value != self.jurisdiction_id:
            raise GeoReportNotFound(f"jurisdiction_id {value!r}",
                                    f"jurisdiction_id {value!r} was not found: this endpoint serves only "
                                    f"{self.jurisdiction_id!r}")

    def _jurisdiction_only(self, jurisdiction_id: str) -> None:
        v = Violations()
        self.check_jurisdiction(jurisdiction_id, v)
        raise_georeport(v)

    def _labels(self) -> dict[str, str]:
        with read_snapshot(self.rt.engine) as conn:
            return queries.matter_labels(conn)

    # -- GeoReport records ---------------------------------------------------------------

    def services(self, jurisdiction_id: str = "") -> list[dict]:
        """GET Service List."""
        self._jurisdiction_only(jurisdiction_id)
        with read_snapshot(self.rt.engine) as conn:
            services = queries.open311_services(conn)
        out = []
        for s in services:
            item = record(mapping.open311_service_to_pb(s))
            # The departments that handle it go into the description; group is the category.
            item.update(catalogue.describe(s.code, s.name, s.group))
            item["metadata"] = bool(catalogue.attributes_of(s.code))
            out.append(item)
        return out

    def service_definition(self, service_code: str, jurisdiction_id: str = "") -> dict:
        """GET Service Definition: the service's attributes (catalogue.ATTRIBUTES); none for a service
        whose `metadata` is false."""
        self._jurisdiction_only(jurisdiction_id)
        code = service_code.strip()
        if code not in self._labels():
            raise GeoReportNotFound(f"service_code {code!r}")
        return {"service_code": code, "attributes": catalogue.definition(code)}

    def create(self, given: dict[str, str], *, api_key: str = "", request_id: str = "",
               jurisdiction_id: str = "") -> list[dict]:
        """POST Service Request: `given` holds the GeoReport keys as sent (strings). `api_key` and
        `jurisdiction_id` may come beside them (a query parameter); the body's win."""
        self.check_api_key(given.get("api_key", "").strip() or api_key)
        v = Violations()
        self.check_jurisdiction(given.get("jurisdiction_id", "") or jurisdiction_id, v)
        labels = self._labels()
        code = given.get("service_code", "").strip()
        if code and code not in labels:
            raise GeoReportNotFound(f"service_code {code!r}")
        v.require(code, "service_code", "is required: a service_code from services.json")
        lat = lon = None
        if given.get("lat", "").strip() or given.get("long", "").strip():
            try:
                lat, lon = float(given.get("lat", "")), float(given.get("long", ""))
                check_point(lon, lat, "location", v)
            except ValueError:
                v.add("lat", "lat and long must both be decimal degrees")
        address = given.get("address_string", "").strip()
        v.check(lat is not None or bool(address) or bool(given.get("address_id", "").strip()), "lat",
                "a location is required: lat and long, address_string or address_id")
        description = given.get("description", "").strip()
        v.require(description, "description", "is required: what the problem is")
        v.check(len(description) <= 4000, "description", "must be at most 4000 characters")
        phone = given.get("phone", "").strip().replace(" ", "")
        check_phone(phone, "phone", v)
        media = given.get("media_url", "").strip()
        if media:
            v.check(media.startswith(("http://", "https://")) and len(media) <= 2000, "media_url",
                    "must be an http(s) URL of at most 2000 characters")
        attributes = catalogue.check_attributes(code, attribute_values(given), v) if code else []
        if request_id:
            v.request_id(request_id)
        raise_georeport(v)
        if not request_id:
            # GeoReport clients send no idempotency key: the content is the key.
            digest = hashlib.sha256(json.dumps(sorted(given.items()), ensure_ascii=False).encode()).hexdigest()
            request_id = f"open311-{digest[:40]}"
        # What the idempotency record fingerprints: the same request_id with other content is refused.
        keyed = pb.CreateServiceRequestRequest(request_id=request_id, raw_body=httpbody_pb2.HttpBody(
            content_type="application/json", data=json.dumps(sorted(given.items()), ensure_ascii=False).encode()))
        name = " ".join(x for x in (given.get("last_name", ""), given.get("first_name", "")) if x).strip()
        fields = dict(
            source="OPEN311", matter_code=code, description=description, urgency=4, lon=lon, lat=lat,
            address_text=address or given.get("address_id", ""), citizen_phone=phone, citizen_name=name,
            hotline_ticket_id=given.get("device_id", ""),
            attachments=[dict(kind="IMAGE", content_type="", size_bytes=0, sha256="", storage_uri=media)]
            if media else [],
            service_attributes=attributes,
        )
        place = handlers.locate(self.rt.context, lon, lat)
        account_id = given.get("account_id", "")
        # The cached answer is the first one's JSON: a retried POST gets it again.
        body = self.rt.idempotent_work(
            "CreateServiceRequest", keyed, httpbody_pb2.HttpBody,
            lambda uow: handlers.create_work_order(uow, fields=fields, place=place),
            actor=OPEN311_CLIENT,
            respond=lambda order: json_body([self._receipt(order, labels, account_id)]))
        return json.loads(body.data)

    @staticmethod
    def _receipt(order, labels: dict[str, str], account_id: str) -> dict:
        """The receipt of a POST: the request is recorded at once, so it has its id and no token."""
        sr = mapping.service_request_to_pb(order, labels.get(order.matter_code, ""))
        out = {"service_request_id": order.id, "service_notice": sr.service_notice}
        if account_id:
            out["account_id"] = account_id
        return out

    def requests(self, *, jurisdiction_id: str = "", service_request_id: str = "", service_code: str = "",
                 status: str = "", start: datetime | None = None, end: datetime | None = None,
                 limit: int = MAX_OPEN311_RESULTS, offset: int = 0, v: Violations | None = None) -> list[dict]:
        """GET Service Requests, newest first; `v` holds problems the caller found in its parameters."""
        v = v or Violations()
        self.check_jurisdiction(jurisdiction_id, v)
        ids = [i.strip() for i in service_request_id.split(",") if i.strip()]
        codes = [c.strip() for c in service_code.split(",") if c.strip()]
        statuses = [s.strip() for s in status.split(",") if s.strip()]
        v.check(all(s in ("open", "closed") for s in statuses), "status", "must be open, closed or both")
        end = end or self.rt.clock()
        start = start or end - timedelta(days=90)
        v.check(start < end, "start_date", "must be before end_date")
        raise_georeport(v)
        if ids:
            filters = dict(ids=ids)
        else:
            filters = dict(matter_codes=codes, statuses=open311_statuses(statuses), start=start, end=end)
        with read_snapshot(self.rt.engine) as conn:
            orders = queries.work_orders_at(conn, filters=filters, limit=limit, offset=offset)
        labels = self._labels()
        return [record(mapping.service_request_to_pb(o, labels.get(o.matter_code, ""))) for o in orders]

    def request(self, service_request_id: str, jurisdiction_id: str = "") -> list[dict]:
        """GET Service Request: a list of one."""
        self._jurisdiction_only(jurisdiction_id)
        order_id = service_request_id.strip()
        order = None
        if order_id and "/" not in order_id and "." not in order_id:
            with read_snapshot(self.rt.engine) as conn:
                order = queries.work_order(conn, order_id)
        if order is None:
            raise GeoReportNotFound(f"requests/{order_id}")
        labels = self._labels()
        return [record(mapping.service_request_to_pb(order, labels.get(order.matter_code, "")))]

    def token(self, token: str, jurisdiction_id: str = "") -> list[dict]:
        """GET service_request_id from a token. Requests are recorded at once and their receipts carry
        the service_request_id, never a token; a service request id stands for its own token."""
        self._jurisdiction_only(jurisdiction_id)
        tok = token.strip()
        found = None
        if tok and "/" not in tok and "." not in tok:
            with read_snapshot(self.rt.engine) as conn:
                found = queries.work_order(conn, tok)
        if found is None:
            raise GeoReportNotFound(f"tokens/{tok}")
        return [{"token": tok, "service_request_id": found.id}]

    def updates(self, *, jurisdiction_id: str = "", start: datetime | None = None, end: datetime | None = None,
                limit: int = MAX_OPEN311_RESULTS, offset: int = 0, v: Violations | None = None) -> list[dict]:
        """GET Service Request Updates (the feed FixMyStreet polls): what happened to requests in
        [start_date, end_date), oldest first, from the work orders' timelines. Default: the last day."""
        v = v or Violations()
        self.check_jurisdiction(jurisdiction_id, v)
        end = end or self.rt.clock()
        start = start or end - timedelta(days=1)
        v.check(start < end, "start_date", "must be before end_date")
        raise_georeport(v)
        with read_snapshot(self.rt.engine) as conn:
            found = queries.order_updates(conn, actions=set(UPDATE_STATUS) | {"CITIZEN_UPDATE"}, start=start,
                                          end=end, limit=limit, offset=offset)
        out = []
        for u in found:
            media = ""
            if u.action == "CITIZEN_UPDATE":
                # A citizen's own update: the words as the departments read them, anonymised; the
                # status the order had then.
                status = ORDER_STATUS_UPDATE.get(u.order_status, "OPEN")
                description, media = mapping.public_text(u.detail, u.citizen_name), u.media_url
            else:
                status, said = UPDATE_STATUS[u.action]
                description = said
                if u.action == "RESOLVED":
                    # "{department}办结：{feedback}": the feedback is told to the citizen anyway.
                    description = mapping.public_text(u.detail, u.citizen_name) or said
            item = {"update_id": f"{u.work_order_id}-{u.seq}", "service_request_id": u.work_order_id,
                    "status": status, "updated_datetime": u.time.astimezone(CHINA).isoformat(timespec="seconds"),
                    "description": description}
            if media:
                item["media_url"] = media
            out.append(item)
        return out

    def post_update(self, given: dict[str, str], *, api_key: str = "", jurisdiction_id: str = "") -> list[dict]:
        """POST Service Request Update (FixMyStreet's extension): a citizen's update to a request, on
        the order's timeline. Answers the receipt, [{"update_id": ours}]; ours is the id the updates
        feed gives the entry. The client's `update_id` counts once per app: the same again with the
        same content gets the same receipt, with other content a 409."""
        key = given.get("api_key", "").strip() or api_key
        self.check_api_key(key)
        v = Violations()
        self.check_jurisdiction(given.get("jurisdiction_id", "") or jurisdiction_id, v)
        order_id = given.get("service_request_id", "").strip()
        if v.require(order_id, "service_request_id", "is required: the service_request_id of the request"):
            with read_snapshot(self.rt.engine) as conn:
                found = "/" not in order_id and queries.work_order_exists(conn, order_id)
            if not found:
                raise GeoReportNotFound(f"service_request_id {order_id!r}")
        client_id = (given.get("update_id", "") or given.get("update_id_ext", "")).strip()
        if v.require(client_id, "update_id", "is required: your own id of this update"):
            v.check(bool(CLIENT_UPDATE_ID.match(client_id)), "update_id",
                    "must be 1-100 characters of letters, digits, . _ : -")
        when = parse_w3c(given.get("updated_datetime", ""), "updated_datetime", v)
        v.check(when is not None or bool(given.get("updated_datetime", "").strip()), "updated_datetime",
                "is required: when the update was made, W3C, e.g. 2026-01-01T08:00:00+08:00")
        status = given.get("status", "").strip().upper()
        if v.require(status, "status", "is required: OPEN or CLOSED"):
            v.check(status in UPDATE_STATUSES, "status", f"must be one of {', '.join(UPDATE_STATUSES)}")
        description = given.get("description", "").strip()
        v.require(description, "description", "is required: what the citizen adds")
        v.check(len(description) <= 4000, "description", "must be at most 4000 characters")
        email = given.get("email", "").strip()
        if email:
            v.check(len(email) <= 254 and bool(EMAIL.match(email)), "email", "must be an e-mail address")
        for name in ("first_name", "last_name"):
            v.check(len(given.get(name, "")) <= 100, name, "must be at most 100 characters")
        phone = given.get("phone", "").strip().replace(" ", "")
        check_phone(phone, "phone", v)
        media = given.get("media_url", "").strip()
        if media:
            v.check(media.startswith(("http://", "https://")) and len(media) <= 2000, "media_url",
                    "must be an http(s) URL of at most 2000 characters")
        raise_georeport(v)
        content = sorted((k, val) for k, val in given.items() if k not in ("api_key", "jurisdiction_id"))
        update = CitizenUpdate(
            work_order_id=order_id, client=hashlib.sha256(key.strip().encode()).hexdigest()[:16],
            client_update_id=client_id,
            fingerprint=hashlib.sha256(json.dumps(content, ensure_ascii=False).encode()).hexdigest(),
            status=status, description=description, create_time=self.rt.clock(), client_time=when,
            first_name=given.get("first_name", "").strip(), last_name=given.get("last_name", "").strip(),
            email=email, phone=phone, media_url=media)
        with self.rt.transaction(OPEN311_CLIENT) as uow:
            kept, _ = handlers.add_citizen_update(uow, update=update)
        return [{"update_id": kept.update_id}]

    def discovery(self, base_url: str) -> dict:
        """GET Service Discovery: where this endpoint is and what it speaks."""
        return {"changeset": CHANGESET, "contact": DISCOVERY_CONTACT, "key_service": DISCOVERY_KEY_SERVICE,
                "endpoints": [{"specification": SPECIFICATION, "url": base_url, "changeset": CHANGESET,
                               "type": "production", "formats": ["text/xml", "application/json"]}]}

    # -- gRPC methods -------------------------------------------------------------------

    def ListServices(self, request: pb.ListServicesRequest, context) -> httpbody_pb2.HttpBody:
        return json_body(self.services(request.jurisdiction_id))

    def CreateServiceRequest(self, request: pb.CreateServiceRequestRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        if request.api_key.strip():
            # A key outside the body is checked before the body is even parsed.
            self.check_api_key(request.api_key)
        typed = {k: getattr(request, k) for k in GEOREPORT_KEYS if getattr(request, k)}
        if request.HasField("raw_body") and request.raw_body.data:
            v.check(not (set(typed) - {"jurisdiction_id", "api_key"}) and not request.attributes, "raw_body",
                    "must not be combined with the typed GeoReport fields")
            given = parse_georeport_body(request.raw_body, v)
        else:
            given = {k: str(val) for k, val in typed.items()}
            for code, value in sorted(request.attributes.items()):
                add_field(given, f"attribute[{code}]", value)
        self.check_api_key(given.get("api_key", "").strip() or request.api_key)
        raise_georeport(v)
        return json_body(self.create(given, api_key=request.api_key.strip(), request_id=request.request_id,
                                     jurisdiction_id=request.jurisdiction_id))

    def ListServiceRequests(self, request: pb.ListServiceRequestsRequest, context) -> httpbody_pb2.HttpBody:
        start = from_pb(request.start_date) if request.HasField("start_date") else None
        end = from_pb(request.end_date) if request.HasField("end_date") else None
        return json_body(self.requests(jurisdiction_id=request.jurisdiction_id,
                                       service_request_id=request.service_request_id,
                                       service_code=request.service_code, status=request.status,
                                       start=start, end=end))

    def GetServiceRequest(self, request: pb.GetServiceRequestRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        self.check_jurisdiction(request.jurisdiction_id, v)
        raw = request.service_request_id.strip()
        v.require(raw, "service_request_id")
        raise_georeport(v)
        # Through the transcoder the path variable holds "{id}.json".
        return json_body(self.request(raw.removesuffix(".json"), request.jurisdiction_id))
