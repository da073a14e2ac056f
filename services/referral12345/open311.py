"""Open311Service: the GeoReport v2 face of the 12345 line (public: a client authenticates with its
api_key inside the request), over the same work orders as the ReferralService.

Errors carry GeoReport errors (`extra_details()`, see services.runtime.status) besides the usual details.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from urllib.parse import parse_qs

from google.api import httpbody_pb2

from smart110.referral.v1 import referral_service_pb2 as pb
from smart110.referral.v1 import referral_service_pb2_grpc as pb_grpc

from services.runtime import auth
from services.runtime.app import Runtime
from services.runtime.db import read_snapshot
from services.runtime.errors import InvalidArgument, NotFound, PermissionDenied
from services.runtime.timeutil import from_pb
from services.runtime.validation import Violations

from . import handlers, mapping, queries
from .api import check_phone, check_point
from .domain import open311_statuses

GEOREPORT_KEYS = ("service_code", "lat", "long", "address_string", "address_id", "email", "device_id",
                  "account_id", "first_name", "last_name", "phone", "description", "media_url", "api_key",
                  "jurisdiction_id")
MAX_OPEN311_RESULTS = 1000


class GeoReportInvalid(InvalidArgument):
    """Bad GeoReport input; each violation also as a GeoReport error (code 400)."""

    def extra_details(self) -> list:
        return [pb.GeoReportError(code=400, description=f"{f}: {d}") for f, d in self.violations]


class GeoReportForbidden(PermissionDenied):
    """An api_key that is not one of the issued keys."""

    def extra_details(self) -> list:
        return [pb.GeoReportError(code=403, description=self.message)]


class GeoReportNotFound(NotFound):
    def extra_details(self) -> list:
        return [pb.GeoReportError(code=404, description=self.message)]


def raise_georeport(v: Violations) -> None:
    if v.items:
        raise GeoReportInvalid(v.items)


def parse_georeport_body(body: httpbody_pb2.HttpBody, v: Violations) -> dict:
    """The keys of a GeoReport POST, form-encoded or JSON."""
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
        return {k: str(val) for k, val in data.items() if k in GEOREPORT_KEYS and val is not None}
    return {k: vals[0] for k, vals in parse_qs(raw, keep_blank_values=False).items() if k in GEOREPORT_KEYS}


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

    def _check_api_key(self, key: str) -> None:
        """GeoReport: a POST carries the app's api_key. Checked before anything else is looked at."""
        if not key:
            raise GeoReportInvalid([("api_key", "is required: the key issued to your application")])
        given = key.encode()
        # Compare with every key, so the time taken does not tell which one was close.
        if not any([hmac.compare_digest(given, k) for k in self.api_keys]):
            raise GeoReportForbidden("api_key is not valid for this endpoint", reason="API_KEY_INVALID")

    def _check_jurisdiction(self, value: str, v: Violations) -> None:
        if self.jurisdiction_id and value:
            v.check(value == self.jurisdiction_id, "jurisdiction_id",
                    f"this endpoint serves only {self.jurisdiction_id!r}")

    def _labels(self) -> dict[str, str]:
        with read_snapshot(self.rt.engine) as conn:
            return queries.matter_labels(conn)

    def ListServices(self, request: pb.ListServicesRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        self._check_jurisdiction(request.jurisdiction_id, v)
        raise_georeport(v)
        with read_snapshot(self.rt.engine) as conn:
            services = queries.open311_services(conn)
        return mapping.georeport_body([mapping.open311_service_to_pb(s) for s in services])

    def CreateServiceRequest(self, request: pb.CreateServiceRequestRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        if request.api_key.strip():
            # A key outside the body is checked before the body is even parsed.
            self._check_api_key(request.api_key.strip())
        typed = {k: getattr(request, k) for k in GEOREPORT_KEYS if getattr(request, k)}
        if request.HasField("raw_body") and request.raw_body.data:
            v.check(not (set(typed) - {"jurisdiction_id", "api_key"}), "raw_body",
                    "must not be combined with the typed GeoReport fields")
            given = parse_georeport_body(request.raw_body, v)
        else:
            given = {k: str(val) for k, val in typed.items()}
        self._check_api_key(given.get("api_key", "").strip() or request.api_key.strip())
        self._check_jurisdiction(given.get("jurisdiction_id", request.jurisdiction_id), v)
        labels = self._labels()
        code = given.get("service_code", "").strip()
        if v.require(code, "service_code", "is required: a service_code from services.json"):
            v.check(code in labels, "service_code", "is not a service_code from services.json")
        lat = lon = None
        if "lat" in given or "long" in given:
            try:
                lat, lon = float(given.get("lat", "")), float(given.get("long", ""))
                check_point(lon, lat, "location", v)
            except ValueError:
                v.add("lat", "lat and long must both be decimal degrees")
        address = given.get("address_string", "").strip()
        v.check(lat is not None or bool(address) or bool(given.get("address_id")), "lat",
                "a location is required: lat and long, address_string or address_id")
        description = given.get("description", "").strip()
        v.require(description, "description", "is required: what the problem is")
        v.check(len(description) <= 4000, "description", "must be at most 4000 characters")
        phone = given.get("phone", "").strip().replace(" ", "")
        check_phone(phone, "phone", v)
        if request.request_id:
            v.request_id(request.request_id)
        raise_georeport(v)
        keyed = pb.CreateServiceRequestRequest()
        keyed.CopyFrom(request)
        if not keyed.request_id:
            # GeoReport clients send no idempotency key: the content is the key.
            digest = hashlib.sha256(json.dumps(sorted(given.items()), ensure_ascii=False).encode()).hexdigest()
            keyed.request_id = f"open311-{digest[:40]}"
        name = " ".join(x for x in (given.get("last_name", ""), given.get("first_name", "")) if x).strip()
        media = given.get("media_url", "").strip()
        fields = dict(
            source="OPEN311", matter_code=code, description=description, urgency=4, lon=lon, lat=lat,
            address_text=address or given.get("address_id", ""), citizen_phone=phone, citizen_name=name,
            hotline_ticket_id=given.get("device_id", ""),
            attachments=[dict(kind="IMAGE", content_type="", size_bytes=0, sha256="", storage_uri=media)]
            if media else [],
        )
        place = handlers.locate(self.rt.context, lon, lat)
        account_id = given.get("account_id", "")
        return self.rt.idempotent_work(
            "CreateServiceRequest", keyed, httpbody_pb2.HttpBody,
            lambda uow: handlers.create_work_order(uow, fields=fields, place=place), actor=auth.current(),
            respond=lambda order: mapping.receipt_body(order, labels.get(order.matter_code, ""), account_id))

    def ListServiceRequests(self, request: pb.ListServiceRequestsRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        self._check_jurisdiction(request.jurisdiction_id, v)
        ids = [i.strip() for i in request.service_request_id.split(",") if i.strip()]
        codes = [c.strip() for c in request.service_code.split(",") if c.strip()]
        statuses = [s.strip() for s in request.status.split(",") if s.strip()]
        v.check(all(s in ("open", "closed") for s in statuses), "status", "must be open, closed or both")
        end = (from_pb(request.end_date) if request.HasField("end_date") else None) or self.rt.clock()
        start = (from_pb(request.start_date) if request.HasField("start_date") else None) or end - timedelta(days=90)
        v.check(start < end, "start_date", "must be before end_date")
        raise_georeport(v)
        if ids:
            filters = dict(ids=ids)
        else:
            filters = dict(matter_codes=codes, statuses=open311_statuses(statuses), start=start, end=end)
        with read_snapshot(self.rt.engine) as conn:
            orders = queries.work_orders_list(conn, filters=filters, limit=MAX_OPEN311_RESULTS)
        labels = self._labels()
        return mapping.georeport_body([mapping.service_request_to_pb(o, labels.get(o.matter_code, ""))
                                       for o in orders])

    def GetServiceRequest(self, request: pb.GetServiceRequestRequest, context) -> httpbody_pb2.HttpBody:
        v = Violations()
        self._check_jurisdiction(request.jurisdiction_id, v)
        raw = request.service_request_id.strip()
        v.require(raw, "service_request_id")
        raise_georeport(v)
        order_id = raw.removesuffix(".json")
        if "." in order_id or "/" in order_id:
            raise GeoReportNotFound(f"requests/{raw}")
        with read_snapshot(self.rt.engine) as conn:
            order = queries.work_order(conn, order_id)
        if order is None:
            raise GeoReportNotFound(f"requests/{raw}")
        labels = self._labels()
        return mapping.georeport_body([mapping.service_request_to_pb(order, labels.get(order.matter_code, ""))])
