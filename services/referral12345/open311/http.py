"""The Open311 GeoReport v2 HTTP face, to the letter of the specification: every endpoint in XML and
JSON (`.xml`/`.json`), GeoReport's error list with its status codes, form-encoded and multipart POSTs.

It runs in the referral service's process (Starlette served by uvicorn on OPEN311_HTTP_PORT) and the
gateway routes /open311/v2/ to it: Envoy's gRPC-JSON transcoder answers JSON only, and its errors are
google.rpc.Status objects, not GeoReport's list. The app calls the Open311Service servicer in-process
as the public identity `open311-public`; the gRPC Open311Service stays as it was.

Endpoints (`{fmt}` is xml or json):
  GET  discovery.{fmt}                  service discovery
  GET  services.{fmt}                   service list
  GET  services/{service_code}.{fmt}    service definition
  GET  requests.{fmt}                   service requests (page/page_size as well)
  POST requests.{fmt}                   create a service request (api_key required)
  GET  requests/{id}.{fmt}              one service request
  GET  tokens/{token}.{fmt}             service_request_id from a token
  GET  servicerequestupdates.{fmt}      updates to service requests (start_date/end_date, page/page_size)
  POST servicerequestupdates.{fmt}      a citizen's update to a request (FixMyStreet's extension; api_key required)
Query parameters GeoReport does not define (cache busters, a client's own) are ignored.
"""
from __future__ import annotations

import json
import logging
import socket
import threading
from typing import Callable
from xml.sax.saxutils import escape

import uvicorn
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.runtime import auth
from services.runtime.errors import DomainError
from services.runtime.status import transient_reason
from services.runtime.validation import Violations

from . import (
    GEOREPORT_KEYS, OPEN311_CLIENT, UPDATE_KEYS, add_field, json_fields, GeoReportForbidden, GeoReportInvalid, GeoReportNotFound, Open311Servicer,
    parse_paging, parse_w3c, raise_georeport,
)

log = logging.getLogger("smart110.referral.open311")

PREFIX = "/open311/v2"
CONTENT_TYPES = {"json": "application/json; charset=utf-8", "xml": "text/xml; charset=utf-8"}
# The largest POST body read (a GeoReport POST is a few fields; media travel as a URL).
MAX_BODY_BYTES = 64 * 1024
# XML: the element of each item in a list, by the list's own element.
XML_ITEMS = {"services": "service", "service_requests": "request", "errors": "error",
             "service_request_updates": "request_update", "attributes": "attribute", "values": "value",
             "endpoints": "endpoint", "formats": "format"}
# HTTP status of a domain error other than GeoReport's own, by its gRPC code.
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "PERMISSION_DENIED": 403,
               "UNAUTHENTICATED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
               "RESOURCE_EXHAUSTED": 429, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 503}


# -- rendering -----------------------------------------------------------------------------

def _xml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return escape(str(value))


def _xml_element(tag: str, value) -> str:
    if isinstance(value, list):
        item = XML_ITEMS.get(tag, "item")
        inner = "".join(_xml_element(item, v) for v in value)
    elif isinstance(value, dict):
        inner = "".join(_xml_element(k, v) for k, v in value.items())
    else:
        inner = _xml_value(value)
    return f"<{tag}>{inner}</{tag}>" if inner else f"<{tag}/>"


def to_xml(root: str, data) -> bytes:
    """GeoReport XML: a list under its root element (`services` -> `service`...), an object as its root."""
    return ('<?xml version="1.0" encoding="utf-8"?>' + _xml_element(root, data)).encode("utf-8")


def render(fmt: str, root: str, data, status: int = 200) -> Response:
    if fmt == "xml":
        body = to_xml(root, data)
    else:
        body = json.dumps(data, ensure_ascii=False).encode("utf-8")
    return Response(body, status_code=status, media_type=CONTENT_TYPES[fmt])


def errors(fmt: str, status: int, items: list[tuple[int, str]]) -> Response:
    """GeoReport's error list: [{"code": 400, "description": "..."}] / <errors><error>…</error></errors>."""
    return render(fmt, "errors", [{"code": code, "description": d} for code, d in items], status)


def _fmt_of(path: str) -> str:
    """The format a path asks for; JSON when it names none (unknown paths answer in it too)."""
    return "xml" if path.endswith(".xml") else "json"


def error_response(exc: Exception, fmt: str) -> Response:
    if isinstance(exc, GeoReportInvalid):
        return errors(fmt, 400, [(400, f"{f}: {d}" if f else d) for f, d in exc.violations])
    if isinstance(exc, GeoReportForbidden):
        return errors(fmt, 403, [(403, exc.message)])
    if isinstance(exc, GeoReportNotFound):
        return errors(fmt, 404, [(404, exc.message)])
    if isinstance(exc, DomainError):
        status = HTTP_STATUS.get(exc.code, 400)
        violations = getattr(exc, "violations", None)
        items = [(status, f"{f}: {d}" if f else d) for f, d in violations] if violations else [(status, exc.message)]
        return errors(fmt, status, items)
    reason = transient_reason(exc)
    if reason is not None:
        log.warning("transient fault in the Open311 face: %s", reason)
        return errors(fmt, 503, [(503, "the service is briefly unavailable; try again shortly")])
    log.exception("unexpected error in the Open311 face")
    return errors(fmt, 500, [(500, "internal error")])


# -- the app -----------------------------------------------------------------------------------

def _query(request: Request, name: str) -> str:
    return request.query_params.get(name, "")


def _as_public(fn: Callable, *args, **kwargs):
    """Runs a servicer call as the public Open311 identity, as the gRPC face's calls run."""
    token = auth.set_current(OPEN311_CLIENT)
    try:
        return fn(*args, **kwargs)
    finally:
        auth.reset(token)


async def _post_fields(request: Request, v: Violations, keys: tuple[str, ...] = GEOREPORT_KEYS,
                       attributes: bool = True) -> dict:
    """The GeoReport keys of a POST body (`keys`, and with `attributes` every `attribute[code]` as a
    list of its values): form-encoded, multipart or JSON. A file part is refused (in `v`): there is
    no media storage here, a picture is sent as media_url (a link to it)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise GeoReportInvalid([("", f"the request body must be at most {MAX_BODY_BYTES // 1024} KiB: "
                                         "send media_url, a link to the picture, rather than the file")])
    if content_type == "application/json":
        raw = await request.body()
        try:
            data = json.loads(raw or b"{}")
            if not isinstance(data, dict):
                raise ValueError
        except (ValueError, RecursionError):
            raise GeoReportInvalid([("body", "is not a JSON object")]) from None
        return json_fields(data, keys, attributes)
    if content_type in ("application/x-www-form-urlencoded", "multipart/form-data", ""):
        if not content_type:
            return {}
        try:
            form = await request.form(max_files=4, max_fields=100, max_part_size=MAX_BODY_BYTES)
        except Exception as exc:  # noqa: BLE001 - whatever the parser says of a broken body, it is the caller's
            detail = getattr(exc, "detail", "") or "a malformed body"
            raise GeoReportInvalid([("body", f"is not a readable form: {detail}")]) from None
        try:
            out: dict = {}
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    v.add(key, "file uploads are not accepted: this endpoint stores no media; "
                               "send media_url, a link to the picture")
                else:
                    add_field(out, key, value, keys, attributes)
            return out
        finally:
            await form.close()
    raise GeoReportInvalid([("Content-Type", "must be application/x-www-form-urlencoded, multipart/form-data "
                                             "or application/json")])


def _guard(request: Request, extra: dict[str, str] | None = None) -> None:
    """What no handler should see: a NUL character (Postgres refuses it) in a parameter or field."""
    v = Violations()
    fields = [(k, x) for k, value in (extra or {}).items() for x in (value if isinstance(value, list) else [value])]
    for key, value in [*request.query_params.multi_items(), *request.path_params.items(), *fields]:
        if "\x00" in key or "\x00" in str(value):
            v.add(key.replace("\x00", "\\0"), "must not contain a NUL character")
    raise_georeport(v)


def create_app(servicer: Open311Servicer, base_url: str = "") -> Starlette:
    """The Open311 app over `servicer`. `base_url` is the endpoint's public URL for discovery
    (OPEN311_BASE_URL); by default it is taken from the request (the gateway's address)."""

    def endpoint(root: str, work: Callable[[Request, str], Callable[[], object]] | None = None, *,
                 post: Callable | None = None):
        async def handle(request: Request) -> Response:
            fmt = request.path_params.get("fmt", "")
            if fmt not in CONTENT_TYPES:
                return errors("json", 404, [(404, f"{request.url.path}: the format must be .json or .xml")])
            try:
                _guard(request)
                if request.method == "POST" and post is not None:
                    call = await post(request)
                else:
                    call = work(request, fmt)
                data = await run_in_threadpool(_as_public, call)
            except Exception as exc:  # rendered as GeoReport errors; unexpected ones logged
                return error_response(exc, fmt)
            return render(fmt, root, data)
        return handle

    def discovery(request: Request, fmt: str):
        url = base_url or f"{request.headers.get('x-forwarded-proto', request.url.scheme)}://" \
                          f"{request.headers.get('host', request.url.netloc)}{PREFIX}"
        return lambda: servicer.discovery(url)

    def services(request: Request, fmt: str):
        return lambda: servicer.services(_query(request, "jurisdiction_id"))

    def definition(request: Request, fmt: str):
        return lambda: servicer.service_definition(request.path_params["code"], _query(request, "jurisdiction_id"))

    def paged(request: Request, v: Violations) -> tuple[int, int]:
        return parse_paging(_query(request, "page"), _query(request, "page_size"), v)

    def list_requests(request: Request, fmt: str):
        v = Violations()
        start = parse_w3c(_query(request, "start_date"), "start_date", v)
        end = parse_w3c(_query(request, "end_date"), "end_date", v)
        limit, offset = paged(request, v)
        return lambda: servicer.requests(
            jurisdiction_id=_query(request, "jurisdiction_id"), service_request_id=_query(request, "service_request_id"),
            service_code=_query(request, "service_code"), status=_query(request, "status"), start=start, end=end,
            limit=limit, offset=offset, v=v)

    async def posted(request: Request, keys: tuple[str, ...], attributes: bool) -> tuple[dict, str]:
        """A POST's fields and the api_key beside them (a query parameter). The key is judged before
        the body is read; a body that cannot be read is said after a missing key (403)."""
        outside = _query(request, "api_key").strip()
        if outside:
            servicer.check_api_key(outside)
        v = Violations()
        try:
            given = await _post_fields(request, v, keys, attributes)
        except GeoReportInvalid:
            if not outside:
                servicer.check_api_key("")  # no key at all: that is said first (403)
            raise
        if v.items:
            servicer.check_api_key(given.get("api_key", "") or outside)
            raise_georeport(v)
        _guard(request, given)
        return given, outside

    async def create_request(request: Request):
        given, outside = await posted(request, GEOREPORT_KEYS, True)
        return lambda: servicer.create(given, api_key=outside, jurisdiction_id=_query(request, "jurisdiction_id"))

    async def post_update(request: Request):
        given, outside = await posted(request, UPDATE_KEYS, False)
        return lambda: servicer.post_update(given, api_key=outside, jurisdiction_id=_query(request, "jurisdiction_id"))

    def one_request(request: Request, fmt: str):
        return lambda: servicer.request(request.path_params["id"], _query(request, "jurisdiction_id"))

    def token(request: Request, fmt: str):
        return lambda: servicer.token(request.path_params["token"], _query(request, "jurisdiction_id"))

    def updates(request: Request, fmt: str):
        v = Violations()
        start = parse_w3c(_query(request, "start_date"), "start_date", v)
        end = parse_w3c(_query(request, "end_date"), "end_date", v)
        limit, offset = paged(request, v)
        return lambda: servicer.updates(jurisdiction_id=_query(request, "jurisdiction_id"), start=start, end=end,
                                        limit=limit, offset=offset, v=v)

    async def not_found(request: Request, exc: HTTPException) -> Response:
        fmt = _fmt_of(request.url.path)
        if exc.status_code == 405:
            return errors(fmt, 405, [(405, f"{request.method} is not allowed on {request.url.path}")])
        if exc.status_code == 404:
            return errors(fmt, 404, [(404, f"{request.url.path}: no such Open311 endpoint")])
        return errors(fmt, exc.status_code, [(exc.status_code, str(exc.detail))])

    routes = [
        Route(PREFIX + "/discovery.{fmt}", endpoint("discovery", discovery), methods=["GET"]),
        Route(PREFIX + "/services.{fmt}", endpoint("services", services), methods=["GET"]),
        Route(PREFIX + "/services/{code}.{fmt}", endpoint("service_definition", definition), methods=["GET"]),
        Route(PREFIX + "/requests.{fmt}", endpoint("service_requests", list_requests, post=create_request),
              methods=["GET", "POST"]),
        Route(PREFIX + "/requests/{id}.{fmt}", endpoint("service_requests", one_request), methods=["GET"]),
        Route(PREFIX + "/tokens/{token}.{fmt}", endpoint("service_requests", token), methods=["GET"]),
        Route(PREFIX + "/servicerequestupdates.{fmt}", endpoint("service_request_updates", updates, post=post_update),
              methods=["GET", "POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={HTTPException: not_found})


class Open311HttpServer:
    """Serves the app on `host:port` in a thread, as one of the service's workers (start()/stop())."""

    def __init__(self, app, host: str, port: int):
        self.host, self.port = host, port
        self._config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False,
                                      lifespan="off", server_header=False, proxy_headers=False)
        self._server = uvicorn.Server(self._config)
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def start(self) -> None:
        # Bound here, before start() returns: a request the gateway sends at once waits in the backlog.
        sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            raise SystemExit(f"cannot serve Open311 on {self.host}:{self.port} (OPEN311_HTTP_PORT): {exc}") from exc
        sock.listen(128)
        self.port = sock.getsockname()[1]
        self._socket = sock
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="open311-http", daemon=True)
        self._thread.start()
        log.info("Open311 GeoReport v2 on http://%s:%d%s/", self.host, self.port, PREFIX)

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
