"""Render the Envoy bootstrap configuration of the Smart110 API gateway.

The configuration is derived from the compiled protobuf descriptor set, so
every RPC of every ``smart110.<svc>.v1`` service is routed without anyone
having to list it by hand:

* REST/JSON requests are transcoded to gRPC (``google.api.http`` bindings);
* gRPC and gRPC-Web clients can call the same methods directly;
* each method gets one route, matched on its gRPC path, to the cluster
  named ``<svc>``;
* JWTs are verified at the edge and the claims forwarded to the services
  in the ``x-jwt-payload`` header (base64url-encoded JSON); a client-sent
  ``x-jwt-payload`` is dropped before verification (services believe that
  header, and treat a call without it as an in-cluster call);
* public faces (``PUBLIC_FACES``, e.g. Open311 GeoReport v2 under
  ``/open311/``) need no JWT: their REST prefix is open, and their methods'
  routes always carry a fixed anonymous identity in ``x-jwt-payload``;
* runtime services (package ``smart110.common.v1``, e.g. FeedAdminService)
  are served by every service for itself, so one gRPC path leads to several
  clusters: a gRPC call names its service in the ``smart110-service``
  header, a REST call in its path (``SHARED_REST_PREFIXES``, e.g.
  ``/v1/feedConsumers/dispatch/...``), and each (method, service) pair gets
  its own route;
* the gateway answers a few GETs itself, open to anyone since they hold no
  data: ``/openapi.json`` (gateway/openapi.py) and, given the swagger-ui-dist
  package (``--docs-dir``), Swagger UI at ``/docs`` with its two assets;
* given the built web front-end (``--web-dir``, Vite's output: ``make setup`` builds web/ into
  build/web/), the gateway serves it too, open to anyone (static files, no data): ``/`` is its
  ``index.html`` and every other file is answered at its own path (``/assets/<name>-<hash>.js``);
  the pages call the API with the user's JWT, like any other client;
* Envoy's own error replies are JSON: ``{"code": <grpc code>, "message": ...}``;
* plain HTTP faces (``HTTP_FACES``, e.g. Open311 GeoReport v2 in XML and JSON
  under ``/open311/v2/``, served by the referral service itself on its own
  port) are routed by prefix to their cluster, untranscoded, when their
  upstream is given (``--http-upstream open311=HOST:PORT``);
* query parameters no field takes are ignored on REST routes
  (``ignore_unknown_query_parameters``): cache busters and clients' own
  parameters do not turn a call into a 400.

Usage::

    python -m gateway.render --descriptor build/descriptors.pb --out .run/envoy.json \\
        --listen-port 8080 --admin-port 9901 \\
        --upstream intake=127.0.0.1:50051 --upstream dispatch=127.0.0.1:50052 ...
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import ipaddress
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from google.api import annotations_pb2
from google.protobuf import descriptor_pb2

from gateway import openapi

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_JWKS = REPO_ROOT / "gateway" / "dev-keys" / "jwks.json"

PACKAGE_RE = re.compile(r"^smart110\.([a-z][a-z0-9_]*)\.v1$")

JWT_PROVIDER = "smart110"
JWT_ISSUER = "smart110-dev"
JWT_AUDIENCES = ["smart110"]
JWT_PAYLOAD_HEADER = "x-jwt-payload"
# The province's identity provider (OpenID Connect), when configured: its tokens are accepted beside
# the development issuer's, its keys fetched from its jwks_uri and cached.
OIDC_PROVIDER = "oidc"
OIDC_JWKS_CLUSTER = "oidc_jwks"
OIDC_DEFAULT_CLIENT_ID = "smart110-web"
OIDC_DEFAULT_SCOPE = "openid profile"
OIDC_JWKS_CACHE_SECONDS = 300
# Where Debian's and Ubuntu's (the Envoy image's) CA bundle is: the IdP's certificate is verified.
DEFAULT_CA_FILE = "/etc/ssl/certs/ca-certificates.crt"

HEALTH_PATH = "/healthz"
# The OpenAPI 3 document of every REST route, generated from the same descriptor set (gateway/openapi.py).
OPENAPI_PATH = "/openapi.json"
# Swagger UI over that document, for people: the page and the two assets it loads, read by Envoy
# from the swagger-ui-dist package (web/package-lock.json; `make setup` installs it).
DOCS_PATH = "/docs"
DEFAULT_DOCS_DIR = REPO_ROOT / "web" / "node_modules" / "swagger-ui-dist"
DOCS_ASSETS = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8"}
# The built web front-end (web/, Vite): index.html at "/" and every other file at its own path.
DEFAULT_WEB_DIR = REPO_ROOT / "build" / "web"
WEB_INDEX = "index.html"
# Content types of the files a Vite build writes, by suffix; a file of any other kind is refused.
WEB_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
    ".txt": "text/plain; charset=utf-8",
}
# Vite names the files under assets/ by their content: the same path never changes.
WEB_HASHED_DIR = "assets"
# The front-end's runtime settings (how to sign in), answered by the gateway beside the build's files.
WEB_CONFIG_PATH = "/config.json"
# The largest body Envoy answers itself (the OpenAPI document, Swagger UI's bundle).
MAX_DIRECT_RESPONSE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class IdentityProvider:
    """An OpenID Connect identity provider whose access tokens the gateway accepts (beside the
    development issuer's) and through which the web front-end signs people in (authorization code
    flow with PKCE). Its tokens must carry the same claims as the development tokens (gateway/README.md,
    "Signing in through the identity provider")."""

    issuer: str  # the `iss` of its tokens, also where its discovery document is
    jwks_uri: str  # its discovery document's jwks_uri
    audiences: tuple[str, ...] = tuple(JWT_AUDIENCES)
    client_id: str = OIDC_DEFAULT_CLIENT_ID  # the web front-end's client registered with it
    scope: str = OIDC_DEFAULT_SCOPE
    ca_file: str = DEFAULT_CA_FILE  # for an https jwks_uri

    def __post_init__(self) -> None:
        for name in ("issuer", "jwks_uri"):
            url = urlsplit(getattr(self, name))
            if url.scheme not in ("http", "https") or not url.hostname:
                raise GatewayConfigError(f"identity provider {name} must be an http(s) URL, got {getattr(self, name)!r}")
        if not self.audiences or not self.client_id:
            raise GatewayConfigError("identity provider needs an audience and a client id")

    @property
    def jwks_host_port(self) -> tuple[str, int, bool]:
        url = urlsplit(self.jwks_uri)
        tls = url.scheme == "https"
        return url.hostname or "", url.port or (443 if tls else 80), tls

    def web_settings(self) -> dict:
        """What the web front-end needs to sign in (oidc-client-ts settings)."""
        return {"authority": self.issuer, "clientId": self.client_id, "scope": self.scope}


def oidc_from_env(env: dict[str, str] | None = None) -> IdentityProvider | None:
    """The identity provider of OIDC_ISSUER, OIDC_JWKS_URI, OIDC_AUDIENCE (comma-separated),
    OIDC_CLIENT_ID, OIDC_SCOPE; None without OIDC_ISSUER."""
    env = os.environ if env is None else env
    issuer = env.get("OIDC_ISSUER", "").strip()
    if not issuer:
        return None
    jwks_uri = env.get("OIDC_JWKS_URI", "").strip()
    if not jwks_uri:
        raise GatewayConfigError("OIDC_ISSUER is set but OIDC_JWKS_URI is not (the jwks_uri of the issuer's "
                                 "/.well-known/openid-configuration)")
    audiences = tuple(a.strip() for a in env.get("OIDC_AUDIENCE", "").split(",") if a.strip()) or tuple(JWT_AUDIENCES)
    return IdentityProvider(issuer=issuer, jwks_uri=jwks_uri, audiences=audiences,
                            client_id=env.get("OIDC_CLIENT_ID", "").strip() or OIDC_DEFAULT_CLIENT_ID,
                            scope=env.get("OIDC_SCOPE", "").strip() or OIDC_DEFAULT_SCOPE,
                            ca_file=env.get("OIDC_CA_FILE", "").strip() or DEFAULT_CA_FILE)


def _oidc_cluster(idp: IdentityProvider) -> dict:
    """The cluster Envoy fetches the identity provider's JWKS through (HTTP/1.1, TLS for https,
    the certificate checked against the CA bundle and the host name)."""
    host, port, tls = idp.jwks_host_port
    cluster = _cluster(OIDC_JWKS_CLUSTER, host, port, health_services=None)
    del cluster["typed_extension_protocol_options"]  # HTTP/1.1
    if tls:
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": host,
                "common_tls_context": {"validation_context": {
                    "trusted_ca": {"filename": idp.ca_file},
                    "match_typed_subject_alt_names": [
                        {"san_type": "DNS", "matcher": {"exact": host}}],
                }},
            },
        }
    return cluster


def _oidc_provider(idp: IdentityProvider) -> dict:
    return {
        "issuer": idp.issuer,
        "audiences": list(idp.audiences),
        "remote_jwks": {
            "http_uri": {"uri": idp.jwks_uri, "cluster": OIDC_JWKS_CLUSTER, "timeout": "5s"},
            "cache_duration": f"{OIDC_JWKS_CACHE_SECONDS}s",
            # Fetched when the gateway starts (not by the first request), again when the cache
            # expires, and every few seconds while the identity provider cannot be reached.
            "async_fetch": {"fast_listener": True, "failed_refetch_duration": "3s"},
            "retry_policy": {"num_retries": 3,
                             "retry_back_off": {"base_interval": "0.5s", "max_interval": "3s"}},
        },
        "forward": True,
        "forward_payload_header": JWT_PAYLOAD_HEADER,
    }


@dataclass(frozen=True)
class PublicFace:
    """A service that the public calls without a JWT, as a fixed identity."""

    service: str  # fully qualified service name
    rest_prefix: str  # REST paths of its http bindings, matched before transcoding
    claims: dict  # the identity its calls carry

    @property
    def payload(self) -> str:
        """The claims as the gateway forwards verified ones: unpadded base64url JSON."""
        raw = json.dumps(self.claims, separators=(",", ":"), sort_keys=True).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# Open311 GeoReport v2 clients send no Authorization header; they act as
# `open311-public`, never as an in-cluster `service` caller.
PUBLIC_FACES = (
    PublicFace(
        service="smart110.referral.v1.Open311Service",
        rest_prefix="/open311/",
        claims={"sub": "open311-public", "roles": ["open311_client"]},
    ),
)


@dataclass(frozen=True)
class HttpFace:
    """A plain HTTP app a service serves beside its gRPC server, routed by path prefix, not transcoded."""

    name: str  # its upstream's name (--http-upstream NAME=HOST:PORT)
    prefix: str  # the paths it serves
    cluster: str


# Open311 GeoReport v2 in XML and JSON, with GeoReport's errors and status codes
# (services/referral12345/open311/http.py). Without its upstream, the
# Open311Service bindings are transcoded (JSON only).
HTTP_FACES = (HttpFace(name="open311", prefix="/open311/v2/", cluster="referral-open311"),)
# Runtime services every smart110 service serves for itself (their package).
SHARED_PACKAGE = "smart110.common.v1"
# The header a gRPC call of a runtime service names its target service in.
SHARED_SERVICE_HEADER = "smart110-service"
# The REST prefix of each runtime service with http bindings; the path segment
# after it is the target service ("/v1/feedConsumers/dispatch/parkedEvents").
SHARED_REST_PREFIXES = {"smart110.common.v1.FeedAdminService": "/v1/feedConsumers/"}
# Set by the transcoder on a transcoded request: the REST path it came with.
ORIGINAL_PATH_HEADER = "x-envoy-original-path"
UNARY_TIMEOUT = "15s"
UNARY_RETRY = {"retry_on": "cancelled,refused-stream", "num_retries": 2,
               "retry_back_off": {"base_interval": "0.1s", "max_interval": "1s"}}
# Request headers (the URL included) above this are refused with 431. Every service takes twice as
# much metadata (services/runtime/server.py MAX_METADATA_BYTES): a transcoded request carries its
# path and its token twice.
MAX_REQUEST_HEADERS_KB = 60
# A REST body through the transcoder, in bytes: 5 MB of evidence is 6.7 MB of base64 in JSON.
MAX_REST_BODY_BYTES = 8 * 1024 * 1024
# Deliberately not defined as a cluster; see _routes().
UNKNOWN_ROUTE_CLUSTER = "no_such_method"
HEALTH_CHECK_INTERVAL = "2s"
HEALTH_CHECK_TIMEOUT = "1s"

CORS_ALLOW_METHODS = "GET, POST, PATCH, DELETE, OPTIONS"
# traceparent/tracestate let a browser join its spans to the services' traces (W3C Trace Context).
CORS_ALLOW_HEADERS = ("authorization, content-type, x-grpc-web, x-user-agent, grpc-timeout, "
                      "traceparent, tracestate, x-request-id")
# grpc-status-details-bin carries google.rpc details (field violations, ErrorInfo with the trace id).
CORS_EXPOSE_HEADERS = "grpc-status, grpc-message, grpc-status-details-bin, x-request-id"

# HTTP status of an Envoy local reply -> gRPC status code put in the JSON body.
# The mapping follows google.rpc.Code's documented HTTP equivalents.
LOCAL_REPLY_GRPC_CODES: dict[int, int] = {
    400: 3,  # INVALID_ARGUMENT
    401: 16,  # UNAUTHENTICATED
    403: 7,  # PERMISSION_DENIED
    404: 5,  # NOT_FOUND
    405: 12,  # UNIMPLEMENTED
    408: 4,  # DEADLINE_EXCEEDED
    409: 10,  # ABORTED
    413: 8,  # RESOURCE_EXHAUSTED
    415: 3,  # INVALID_ARGUMENT
    429: 8,  # RESOURCE_EXHAUSTED
    431: 8,  # RESOURCE_EXHAUSTED
    499: 1,  # CANCELLED
    500: 13,  # INTERNAL
    501: 12,  # UNIMPLEMENTED
    502: 14,  # UNAVAILABLE
    503: 14,  # UNAVAILABLE
    504: 4,  # DEADLINE_EXCEEDED
}
LOCAL_REPLY_DEFAULT_GRPC_CODE = 2  # UNKNOWN


@dataclass(frozen=True)
class Method:
    """One RPC of a smart110 service."""

    svc: str  # upstream cluster name, e.g. "intake"
    service: str  # fully qualified service, e.g. "smart110.intake.v1.IntakeService"
    name: str  # method name, e.g. "ReportIncident"
    streaming: bool  # client- or server-streaming
    http_paths: tuple[str, ...] = ()  # REST path templates of its google.api.http bindings
    shared: bool = False  # a runtime service every smart110 service serves (svc is "")

    @property
    def grpc_path(self) -> str:
        return f"/{self.service}/{self.name}"


class GatewayConfigError(ValueError):
    """The descriptor set and the given upstreams do not fit together."""


def _http_paths(method: descriptor_pb2.MethodDescriptorProto) -> tuple[str, ...]:
    if not method.options.HasExtension(annotations_pb2.http):
        return ()
    paths = []
    http = method.options.Extensions[annotations_pb2.http]
    for rule in [http, *http.additional_bindings]:
        pattern = rule.WhichOneof("pattern")
        if pattern == "custom":
            paths.append(rule.custom.path)
        elif pattern:
            paths.append(getattr(rule, pattern))
    return tuple(paths)


def check_public_faces(methods: list[Method]) -> None:
    """An open REST prefix may only lead to its public face's methods.

    Any other method reached there would run without a JWT and without the
    face's identity, i.e. as an in-cluster `service` caller.
    """
    for m in methods:
        for face in PUBLIC_FACES:
            # A leading variable segment ("/{name=**}") could match the prefix too.
            strays = [
                p for p in m.http_paths
                if (p.startswith(face.rest_prefix) or p.startswith("/{")) and m.service != face.service
            ]
            if strays:
                raise GatewayConfigError(
                    f"{m.grpc_path} binds {', '.join(strays)} under the public prefix {face.rest_prefix} "
                    f"of {face.service}"
                )


_TEMPLATE_VARIABLE = re.compile(r"\{[^=}]+=([^}]*)\}|\{[^}]+\}")


def _literal_shape(template: str) -> str:
    """"/v1/{parent=feedConsumers/*}/parkedEvents" -> "/v1/feedConsumers/*/parkedEvents"."""
    return _TEMPLATE_VARIABLE.sub(lambda m: m.group(1) if m.group(1) is not None else "*", template)


def check_shared_services(methods: list[Method]) -> None:
    """A runtime service's REST paths must name the target service right after its prefix."""
    for m in methods:
        if not m.shared or not m.http_paths:
            continue
        prefix = SHARED_REST_PREFIXES.get(m.service)
        if prefix is None:
            raise GatewayConfigError(
                f"{m.grpc_path} has REST bindings but {m.service} has no REST prefix in SHARED_REST_PREFIXES, "
                "so the gateway cannot tell which service a REST call is for")
        strays = [p for p in m.http_paths if not _literal_shape(p).startswith(prefix + "*/")]
        if strays:
            raise GatewayConfigError(
                f"{m.grpc_path} binds {', '.join(strays)}: a REST path of {m.service} must start with "
                f"{prefix}{{service}}/")


def load_methods(descriptor_path: str | os.PathLike[str]) -> list[Method]:
    """Return every method of every ``smart110.<svc>.v1`` service in the set (runtime services of
    ``smart110.common.v1`` marked shared)."""
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(Path(descriptor_path).read_bytes())
    methods: list[Method] = []
    for file in fds.file:
        match = PACKAGE_RE.match(file.package)
        if not match:
            continue
        shared = file.package == SHARED_PACKAGE
        svc = "" if shared else match.group(1)
        for service in file.service:
            full_name = f"{file.package}.{service.name}"
            for method in service.method:
                methods.append(
                    Method(
                        svc=svc,
                        service=full_name,
                        name=method.name,
                        streaming=method.server_streaming or method.client_streaming,
                        http_paths=_http_paths(method),
                        shared=shared,
                    )
                )
    return sorted(methods, key=lambda m: m.grpc_path)


def _socket_address(host: str, port: int) -> dict:
    return {"socket_address": {"address": host, "port_value": int(port)}}


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _http2_options() -> dict:
    return {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}},
        }
    }


def _cluster(name: str, host: str, port: int, health_services: list[str] | None) -> dict:
    cluster: dict = {
        "name": name,
        "type": "STATIC" if _is_ip(host) else "STRICT_DNS",
        "connect_timeout": "2s",
        "lb_policy": "ROUND_ROBIN",
        "typed_extension_protocol_options": _http2_options(),
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}],
        },
    }
    if not _is_ip(host):
        cluster["dns_lookup_family"] = "V4_PREFERRED"
    if health_services:
        # One active gRPC health check per service name: a host is healthy
        # only while every service it hosts reports SERVING.
        cluster["health_checks"] = [
            {
                # Envoy requires a name once a cluster has several checks.
                "name": service,
                "timeout": HEALTH_CHECK_TIMEOUT,
                "interval": HEALTH_CHECK_INTERVAL,
                "no_traffic_interval": HEALTH_CHECK_INTERVAL,
                "unhealthy_interval": HEALTH_CHECK_INTERVAL,
                "healthy_threshold": 1,
                "unhealthy_threshold": 2,
                "grpc_health_check": {"service_name": service},
            }
            for service in health_services
        ]
    return cluster


def _local_reply_config() -> dict:
    """JSON bodies for every reply Envoy generates itself.

    Replies that come from an upstream gRPC service are not local replies and
    are left alone (the transcoder turns their status into JSON already).
    Requests made with gRPC keep Envoy's standard trailers-only reply.
    """
    # A request is answered in JSON unless its client speaks gRPC.  Transcoded
    # requests already carry content-type application/grpc when the
    # transcoder rejects their body, so they are recognised by the
    # x-envoy-original-method header the transcoder adds.
    not_grpc = {
        "or_filter": {
            "filters": [
                {
                    "header_filter": {
                        "header": {
                            "name": "content-type",
                            "string_match": {"prefix": "application/grpc"},
                            "invert_match": True,
                            "treat_missing_header_as_empty": True,
                        }
                    }
                },
                {"header_filter": {"header": {"name": "x-envoy-original-method", "present_match": True}}},
            ]
        }
    }

    def fmt(code: int) -> dict:
        return {
            "json_format": {"code": code, "message": "%LOCAL_REPLY_BODY%"},
            "content_type": "application/json",
        }

    def status(op: str, value: int) -> dict:
        return {
            "status_code_filter": {
                "comparison": {
                    "op": op,
                    "value": {"default_value": value, "runtime_key": f"smart110.local_reply.{op.lower()}_{value}"},
                }
            }
        }

    def all_of(*filters: dict) -> dict:
        return {"and_filter": {"filters": list(filters)}}

    healthz = {"header_filter": {"header": {"name": ":path", "string_match": {"exact": HEALTH_PATH}}}}
    mappers = [
        # The health_check filter answers with an empty body; say what it means.
        {
            "filter": all_of(healthz, status("EQ", 200)),
            "body": {"inline_string": "all services are serving"},
            "body_format_override": fmt(0),
        },
        {
            "filter": all_of(healthz, status("EQ", 503)),
            "body": {"inline_string": "one or more services are not serving"},
            "body_format_override": fmt(14),
        },
    ]
    for http_status, code in LOCAL_REPLY_GRPC_CODES.items():
        mappers.append({"filter": all_of(status("EQ", http_status), not_grpc), "body_format_override": fmt(code)})
    # Any other error reply Envoy generates.
    mappers.append(
        {"filter": all_of(status("GE", 400), not_grpc), "body_format_override": fmt(LOCAL_REPLY_DEFAULT_GRPC_CODE)}
    )
    return {"mappers": mappers}


def _cors_policy(origins: list[str]) -> dict:
    matchers = []
    for origin in origins:
        if origin == "*":
            matchers.append({"safe_regex": {"regex": ".*"}})
        else:
            matchers.append({"exact": origin})
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
        "allow_origin_string_match": matchers,
        "allow_methods": CORS_ALLOW_METHODS,
        "allow_headers": CORS_ALLOW_HEADERS,
        "expose_headers": CORS_EXPOSE_HEADERS,
        "max_age": "600",
    }


def _action(m: Method, cluster: str) -> dict:
    action: dict = {"cluster": cluster}
    if m.streaming:
        # Feeds stay open as long as the client wants them.
        action["timeout"] = "0s"
        action["idle_timeout"] = "0s"
    else:
        action["timeout"] = UNARY_TIMEOUT
        # A call a draining service never ran: refused by its transport, or cancelled by gRPC as the
        # server shut down before a handler took it. Tried again on another replica (or the same
        # one restarted); every mutating call carries its request_id, so a repeat changes nothing.
        action["retry_policy"] = UNARY_RETRY
    return action


def _shared_routes(m: Method, clusters: list[str]) -> list[dict]:
    """A runtime service's method: one route per service, chosen by the REST path or the header."""
    routes = []
    prefix = SHARED_REST_PREFIXES.get(m.service)
    for svc in clusters:
        matchers = []
        if prefix is not None and m.http_paths:
            # First: a transcoded call goes where its REST path says, whatever headers it brought.
            matchers.append(("rest", {"name": ORIGINAL_PATH_HEADER, "string_match": {"prefix": f"{prefix}{svc}/"}}))
        matchers.append(("grpc", {"name": SHARED_SERVICE_HEADER, "string_match": {"exact": svc}}))
        for kind, header in matchers:
            routes.append({
                "name": f"{m.grpc_path} {svc} {kind}",
                "match": {"path": m.grpc_path, "headers": [header]},
                "route": _action(m, svc),
                "decorator": {"operation": f"{m.grpc_path.lstrip('/')} {svc}", "propagate": False},
            })
    return routes


def _openapi_route(document: str) -> dict:
    """GET /openapi.json: the document itself, answered by Envoy (no credential needed: it describes
    the API, it holds no data)."""
    return _answered_route("openapi", OPENAPI_PATH, {"inline_string": document}, "application/json", "no-cache")


@dataclass(frozen=True)
class Docs:
    """Swagger UI's assets: where they are now (read to check and fingerprint them) and where Envoy
    reads them (the same place, or where a pod mounts them)."""

    local_dir: Path
    envoy_dir: str

    def asset_paths(self) -> dict[str, str]:
        """Each asset's path as the page names it: the content's digest in the query, so a browser may
        keep an asset for good and fetches it again only once a new release changes it."""
        paths = {}
        for name in DOCS_ASSETS:
            path = self.local_dir / name
            if not path.is_file():
                raise GatewayConfigError(f"{path} missing: run `make setup` (Swagger UI for {DOCS_PATH}, "
                                         f"web/package-lock.json)")
            body = path.read_bytes()
            if len(body) > MAX_DIRECT_RESPONSE_BYTES:
                raise GatewayConfigError(f"{path}: {len(body)} bytes, over the {MAX_DIRECT_RESPONSE_BYTES} "
                                         f"the gateway answers itself")
            paths[name] = f"{DOCS_PATH}/{name}?v={hashlib.sha256(body).hexdigest()[:16]}"
        return paths


def docs_page(asset_paths: dict[str, str]) -> str:
    """The /docs page: Swagger UI over the gateway's own OpenAPI document."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Smart110 API</title>
<link rel="stylesheet" href="{asset_paths['swagger-ui.css']}">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{asset_paths['swagger-ui-bundle.js']}"></script>
<script>
window.ui = SwaggerUIBundle({{url: "{OPENAPI_PATH}", dom_id: "#swagger-ui", deepLinking: true}});
</script>
</body>
</html>
"""


def _answered_route(name: str, path: str, body: dict, content_type: str, cache: str) -> dict:
    """A GET the gateway answers itself (no service is asked, no credential needed)."""
    return {
        "name": name,
        "match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "GET"}}]},
        "direct_response": {"status": 200, "body": body},
        "response_headers_to_add": [
            {"header": {"key": key, "value": value}, "append_action": "OVERWRITE_IF_EXISTS_OR_ADD"}
            for key, value in (("content-type", content_type), ("cache-control", cache),
                               ("x-content-type-options", "nosniff"))],
        # Not a REST binding: the transcoder leaves it to this route.
        "typed_per_filter_config": {"envoy.filters.http.grpc_json_transcoder": {
            "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}},
    }


def _docs_routes(docs: Docs) -> list[dict]:
    """GET /docs and its assets, from the files (Envoy reads them when it loads the config)."""
    asset_paths = docs.asset_paths()
    routes = [_answered_route("docs", DOCS_PATH, {"inline_string": docs_page(asset_paths)},
                              "text/html; charset=utf-8", "no-cache")]
    for name, content_type in DOCS_ASSETS.items():
        routes.append(_answered_route(f"docs-{name}", f"{DOCS_PATH}/{name}",
                                      {"filename": f"{docs.envoy_dir.rstrip('/')}/{name}"}, content_type,
                                      # The page names it by its digest: the same path never changes.
                                      "public, max-age=31536000, immutable"))
    return routes


def docs_paths() -> list[str]:
    """The paths /docs answers, open to anyone as /openapi.json is."""
    return [DOCS_PATH, *(f"{DOCS_PATH}/{name}" for name in DOCS_ASSETS)]


@dataclass(frozen=True)
class Web:
    """The built web front-end: where it is now (listed and checked at render time) and where Envoy
    reads it (the same place, or where a pod mounts it)."""

    local_dir: Path
    envoy_dir: str

    def files(self) -> list[tuple[str, str, str]]:
        """(URL path, file as Envoy reads it, content type) of every file of the build, sorted."""
        index = self.local_dir / WEB_INDEX
        if not index.is_file():
            raise GatewayConfigError(f"{index} missing: run `make setup` (the web front-end, web/)")
        files = []
        for path in sorted(p for p in self.local_dir.rglob("*") if p.is_file()):
            relative = path.relative_to(self.local_dir).as_posix()
            if relative.startswith("."):
                continue  # the build's own stamp
            if f"/{relative}" == WEB_CONFIG_PATH:
                raise GatewayConfigError(f"{path}: the gateway answers {WEB_CONFIG_PATH} itself (the sign-in "
                                         "settings); the build must not carry one")
            content_type = WEB_CONTENT_TYPES.get(path.suffix.lower())
            if content_type is None:
                raise GatewayConfigError(f"{path}: no content type known for {path.suffix or 'a file without a suffix'} "
                                         f"(gateway/render.py WEB_CONTENT_TYPES)")
            size = path.stat().st_size
            if size > MAX_DIRECT_RESPONSE_BYTES:
                raise GatewayConfigError(f"{path}: {size} bytes, over the {MAX_DIRECT_RESPONSE_BYTES} "
                                         f"the gateway answers itself")
            files.append((f"/{relative}", f"{self.envoy_dir.rstrip('/')}/{relative}", content_type))
        return files

    def paths(self) -> list[str]:
        """The paths the front-end answers, open to anyone: "/", its settings and each file's."""
        return ["/", WEB_CONFIG_PATH, *(url for url, _, _ in self.files())]


def web_config(oidc: IdentityProvider | None) -> dict:
    """The front-end's runtime settings (/config.json): the identity provider to sign in through, or
    none (development tokens only)."""
    return {"oidc": oidc.web_settings() if oidc is not None else None}


def _web_routes(web: Web, oidc: IdentityProvider | None = None) -> list[dict]:
    """GET / (index.html) and every file of the build at its path, read by Envoy from the files, and
    the sign-in settings at /config.json."""
    routes = [_answered_route("web config", WEB_CONFIG_PATH, {"inline_string": json.dumps(
        web_config(oidc), separators=(",", ":"))}, "application/json", "no-cache")]
    for url, filename, content_type in web.files():
        hashed = url.startswith(f"/{WEB_HASHED_DIR}/")
        # The page itself is asked again each time (it names the current release's assets); the
        # assets are named by their content.
        cache = "public, max-age=31536000, immutable" if hashed else "no-cache"
        if url == f"/{WEB_INDEX}":
            routes.append(_answered_route("web /", "/", {"filename": filename}, content_type, cache))
        routes.append(_answered_route(f"web {url}", url, {"filename": filename}, content_type, cache))
    return routes


def _http_face_route(face: HttpFace) -> dict:
    return {
        "name": face.cluster,
        "match": {"prefix": face.prefix},
        "route": {"cluster": face.cluster, "timeout": UNARY_TIMEOUT},
        "decorator": {"operation": face.cluster, "propagate": False},
        # Its paths are the app's own: the transcoder (and its reject_unknown_method) stays out.
        "typed_per_filter_config": {
            "envoy.filters.http.grpc_json_transcoder": {
                "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",
                "disabled": True,
            }
        },
    }


def _routes(methods: list[Method], clusters: list[str] | None = None,
            http_faces: list[HttpFace] | None = None, openapi: str | None = None,
            docs: Docs | None = None, web: Web | None = None,
            oidc: IdentityProvider | None = None) -> list[dict]:
    public = {face.service: face for face in PUBLIC_FACES}
    clusters = clusters if clusters is not None else sorted({m.svc for m in methods if not m.shared})
    routes = [_openapi_route(openapi)] if openapi is not None else []
    routes += _docs_routes(docs) if docs is not None else []
    routes += _web_routes(web, oidc) if web is not None else []
    routes += [_http_face_route(face) for face in http_faces or ()]
    for m in methods:
        if m.shared:
            routes.extend(_shared_routes(m, clusters))
            continue
        route = {
            "name": m.grpc_path,
            "match": {"path": m.grpc_path},
            "route": _action(m, m.svc),
            # Span name of the request in traces.
            "decorator": {"operation": m.grpc_path.lstrip("/"), "propagate": False},
        }
        face = public.get(m.service)
        if face is not None:
            # Whatever the caller sent or the JWT said, a public face's
            # method runs as the face's fixed identity.
            route["request_headers_to_add"] = [
                {
                    "header": {"key": JWT_PAYLOAD_HEADER, "value": face.payload},
                    "append_action": "OVERWRITE_IF_EXISTS_OR_ADD",
                }
            ]
        routes.append(route)
    # Catch-all.  CORS and the transcoder look REST requests up against this
    # route before the transcoder rewrites them to gRPC paths (the CORS filter
    # only acts on a request whose route forwards to a cluster), and the
    # transcoder rejects unknown REST paths itself.  A request that reaches
    # the router here is a gRPC call of an unknown method: its cluster does
    # not exist, so Envoy answers 404 (gRPC clients see UNIMPLEMENTED).
    routes.append(
        {
            "name": "unknown",
            "match": {"prefix": "/"},
            "route": {"cluster": UNKNOWN_ROUTE_CLUSTER, "cluster_not_found_response_code": "NOT_FOUND"},
        }
    )
    return routes


def _http_filters(
    descriptor_path: str, services: list[str], clusters: list[str], jwks: str, open_prefixes: list[str],
    open_paths: list[str] | None = None, oidc: IdentityProvider | None = None,
) -> list[dict]:
    providers = {
        JWT_PROVIDER: {
            "issuer": JWT_ISSUER,
            "audiences": JWT_AUDIENCES,
            "local_jwks": {"inline_string": jwks},
            "forward": True,
            "forward_payload_header": JWT_PAYLOAD_HEADER,
        }
    }
    requires: dict = {"provider_name": JWT_PROVIDER}
    if oidc is not None:
        providers[OIDC_PROVIDER] = _oidc_provider(oidc)
        # Either issuer's token will do; a token of any other issuer is refused (401).
        requires = {"requires_any": {"requirements": [{"provider_name": JWT_PROVIDER},
                                                      {"provider_name": OIDC_PROVIDER}]}}
    return [
        # A client-sent x-jwt-payload goes first.  jwt_authn replaces it once
        # it has verified a token, but on a path whose rule needs none it
        # would pass through untouched (a service would believe it), and
        # route-level header removal runs in the router, after jwt_authn,
        # so it would drop the verified payload as well.
        {
            "name": "envoy.filters.http.header_mutation",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.header_mutation.v3.HeaderMutation",
                "mutations": {"request_mutations": [{"remove": JWT_PAYLOAD_HEADER}]},
            },
        },
        {
            "name": "envoy.filters.http.cors",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"},
        },
        {
            "name": "envoy.filters.http.health_check",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.health_check.v3.HealthCheck",
                "pass_through_mode": False,
                "headers": [{"name": ":path", "string_match": {"exact": HEALTH_PATH}}],
                # 200 only while every service cluster is fully healthy.
                "cluster_min_healthy_percentages": {name: {"value": 100.0} for name in clusters},
            },
        },
        {
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": providers,
                # Matched on the incoming path (before transcoding).  /healthz
                # is answered by the health_check filter before this one; the
                # rule here keeps it open if that filter is ever reordered.
                # Public faces' REST prefixes are open too (their routes set
                # the identity).
                "rules": [
                    {"match": {"path": HEALTH_PATH}},
                    {"match": {"path": OPENAPI_PATH}},
                    *({"match": {"path": path}} for path in open_paths or ()),
                    *({"match": {"prefix": prefix}} for prefix in open_prefixes),
                    {"match": {"prefix": "/"}, "requires": requires},
                ],
                "bypass_cors_preflight": True,
            },
        },
        {
            "name": "envoy.filters.http.grpc_web",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"},
        },
        {
            "name": "envoy.filters.http.grpc_json_transcoder",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder",
                "proto_descriptor": descriptor_path,
                "services": services,
                "auto_mapping": False,
                "convert_grpc_status": True,
                "print_options": {
                    "add_whitespace": False,
                    "always_print_primitive_fields": True,
                    "always_print_enums_as_ints": False,
                    "preserve_proto_field_names": False,
                },
                # A query parameter no field takes (a cache buster, a client's own) is
                # ignored rather than refused with 400.
                "ignore_unknown_query_parameters": True,
                "request_validation_options": {
                    "reject_unknown_method": True,
                },
                # The largest REST body either way: an evidence photo (5 MB, dispatch's UploadEvidence)
                # as base64 JSON going in, and as itself coming out (DownloadEvidence).
                "max_request_body_size": MAX_REST_BODY_BYTES,
                "max_response_body_size": MAX_REST_BODY_BYTES,
            },
        },
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        },
    ]



# The access log: JSON, one object a line.  The path is logged WITHOUT its
# query string (Envoy's default format logs the full path, and queries carry
# phone numbers, names and tokens); no header that can carry a credential.
ACCESS_LOG_FORMAT: dict[str, str] = {
    "start_time": "%START_TIME%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "response_code": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS(NUMBER)%",
    "response_flags": "%RESPONSE_FLAGS%",
    "bytes_received": "%BYTES_RECEIVED%",
    "bytes_sent": "%BYTES_SENT%",
    "duration_ms": "%DURATION%",
    "upstream_service_time": "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%",
    "upstream_cluster": "%UPSTREAM_CLUSTER%",
    "upstream_host": "%UPSTREAM_HOST%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "trace_id": "%TRACE_ID%",
    "user_agent": "%REQ(USER-AGENT)%",
}

def render(
    descriptor_path: str,
    upstreams: dict[str, tuple[str, int]],
    *,
    listen_port: int,
    admin_port: int,
    jwks_path: str,
    otlp: tuple[str, int] | None = None,
    cors_origins: list[str] | None = None,
    admin_host: str = "127.0.0.1",
    descriptor_path_in_config: str | None = None,
    http_upstreams: dict[str, tuple[str, int]] | None = None,
    stats_port: int | None = None,
    docs_dir: str | None = None,
    docs_dir_in_config: str | None = None,
    web_dir: str | None = None,
    web_dir_in_config: str | None = None,
    oidc: IdentityProvider | None = None,
    trace_sampling: float = 100.0,
) -> dict:
    """Return the Envoy bootstrap configuration as a JSON-serialisable dict.

    ``upstreams`` maps a service short name (``intake``, ``dispatch``, ...)
    to the host and port of its gRPC server.  Every service in a package
    ``smart110.<svc>.v1`` must have an entry, otherwise GatewayConfigError is
    raised.  ``otlp`` is the host and port of an OTLP/gRPC collector; when
    given, Envoy starts a span per request and propagates W3C trace context;
    ``trace_sampling`` is the percentage of requests whose traces are recorded
    (the services follow the gateway's decision with a parent-based sampler).
    ``admin_host`` is where the admin interface (``/ready``, stats) listens;
    ``descriptor_path_in_config`` is where Envoy will find the descriptor set
    when that differs from where it is read now (a mounted ConfigMap).
    ``http_upstreams`` maps an HTTP face's name (``HTTP_FACES``, e.g.
    ``open311``) to the host and port of its app; a face without one is not
    routed.
    ``stats_port``, when given, is a listener that answers only
    ``/stats/prometheus`` (proxied to the admin interface), so a scraper can
    read Envoy's metrics without reaching the admin port's other endpoints.
    ``docs_dir``, when given, is the swagger-ui-dist package whose assets the gateway serves with
    Swagger UI at ``/docs`` (open to anyone, like ``/openapi.json``); ``docs_dir_in_config`` is where
    Envoy will find them when that differs (a pod's volume).
    ``web_dir``, when given, is the built web front-end (Vite's output, build/web/) the gateway serves
    at ``/`` (open to anyone: static files); ``web_dir_in_config`` is where Envoy will find it when
    that differs; with it the gateway answers ``/config.json``, the front-end's sign-in settings.
    ``oidc``, when given, is the identity provider whose tokens the gateway accepts besides the
    development issuer's (keys from its ``jwks_uri``, cached), and through which the front-end signs
    people in.
    """
    descriptor_abs = os.path.abspath(descriptor_path)
    methods = load_methods(descriptor_abs)
    if not methods:
        raise GatewayConfigError(f"{descriptor_path}: no smart110.<svc>.v1 service found")
    check_public_faces(methods)
    check_shared_services(methods)
    http_upstreams = http_upstreams or {}
    unknown_faces = sorted(set(http_upstreams) - {face.name for face in HTTP_FACES})
    if unknown_faces:
        raise GatewayConfigError(f"no such HTTP face: {', '.join(unknown_faces)} "
                                 f"(known: {', '.join(face.name for face in HTTP_FACES)})")
    http_faces = [face for face in HTTP_FACES if face.name in http_upstreams]

    missing = sorted({m.svc for m in methods if not m.shared} - set(upstreams))
    if missing:
        detail = ", ".join(
            f"{svc} ({', '.join(sorted({m.service for m in methods if m.svc == svc}))})" for svc in missing
        )
        raise GatewayConfigError(f"no upstream given for smart110 service(s): {detail}")

    services_by_svc: dict[str, list[str]] = {}
    for m in methods:
        if m.shared:
            continue  # every service serves it; health is checked on the services' own names
        names = services_by_svc.setdefault(m.svc, [])
        if m.service not in names:
            names.append(m.service)
    all_services = sorted({m.service for m in methods})

    jwks = Path(jwks_path).read_text()
    keys = json.loads(jwks).get("keys")
    if not keys:
        raise GatewayConfigError(f"{jwks_path}: JWKS without keys")

    open_prefixes = sorted({face.rest_prefix for face in PUBLIC_FACES if face.service in all_services})
    docs = None
    if docs_dir is not None:
        docs = Docs(local_dir=Path(docs_dir).resolve(),
                    envoy_dir=docs_dir_in_config or str(Path(docs_dir).resolve()))
    web = None
    if web_dir is not None:
        web = Web(local_dir=Path(web_dir).resolve(), envoy_dir=web_dir_in_config or str(Path(web_dir).resolve()))
    filters = _http_filters(
        descriptor_path_in_config or descriptor_abs, all_services, sorted(services_by_svc), jwks, open_prefixes,
        open_paths=(docs_paths() if docs is not None else []) + (web.paths() if web is not None else []),
        oidc=oidc,
    )

    hcm: dict = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        # Server-streaming feeds must not be cut by Envoy.
        "stream_idle_timeout": "0s",
        "request_timeout": "0s",
        "use_remote_address": True,
        "max_request_headers_kb": MAX_REQUEST_HEADERS_KB,
        # Paths are normalised before any filter matches them, so that
        # "/open311/../x" cannot pass the open-prefix rule of jwt_authn.
        "normalize_path": True,
        "merge_slashes": True,
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
                    "log_format": {
                        "json_format": ACCESS_LOG_FORMAT,
                        # The extension that provides %REQ_WITHOUT_QUERY(...)%.
                        "formatters": [
                            {
                                "name": "envoy.formatter.req_without_query",
                                "typed_config": {
                                    "@type": "type.googleapis.com/"
                                    "envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery"
                                },
                            }
                        ],
                    },
                },
            }
        ],
        "route_config": {
            "name": "smart110",
            # Room for the OpenAPI document and Swagger UI's bundle, answered by the gateway itself.
            "max_direct_response_body_size_bytes": MAX_DIRECT_RESPONSE_BYTES,
            # The catch-all route names a cluster that does not exist.
            "validate_clusters": False,
            "virtual_hosts": [
                {
                    "name": "smart110",
                    "domains": ["*"],
                    "routes": _routes(methods, sorted(services_by_svc), http_faces, openapi=json.dumps(
                        openapi.build(descriptor_abs), ensure_ascii=False, separators=(",", ":")), docs=docs, web=web,
                        oidc=oidc),
                    "typed_per_filter_config": {
                        "envoy.filters.http.cors": _cors_policy(cors_origins or ["*"]),
                    },
                }
            ],
        },
        "http_filters": filters,
        "local_reply_config": _local_reply_config(),
    }

    clusters = [
        _cluster(svc, *upstreams[svc], health_services=services_by_svc[svc]) for svc in sorted(services_by_svc)
    ]
    for face in http_faces:
        cluster = _cluster(face.cluster, *http_upstreams[face.name], health_services=None)
        del cluster["typed_extension_protocol_options"]  # HTTP/1.1
        clusters.append(cluster)
    if oidc is not None:
        clusters.append(_oidc_cluster(oidc))

    if otlp is not None:
        if not 0 <= trace_sampling <= 100:
            raise GatewayConfigError(f"trace sampling must be a percentage from 0 to 100, not {trace_sampling}")
        hcm["tracing"] = {
            "random_sampling": {"value": trace_sampling},
            "provider": {
                "name": "envoy.tracers.opentelemetry",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                    "grpc_service": {"envoy_grpc": {"cluster_name": "otel_collector"}, "timeout": "1s"},
                    "service_name": "smart110-gateway",
                },
            }
        }
        clusters.append(_cluster("otel_collector", otlp[0], otlp[1], health_services=None))

    listeners: list[dict] = []
    if stats_port is not None:
        listeners.append(_stats_listener(stats_port))
        admin_cluster = _cluster("envoy_admin", "127.0.0.1", admin_port, health_services=None)
        del admin_cluster["typed_extension_protocol_options"]  # the admin interface speaks HTTP/1.1
        clusters.append(admin_cluster)

    return {
        "node": {"id": "smart110-gateway", "cluster": "smart110-gateway"},
        "admin": {"address": _socket_address(admin_host, admin_port)},
        "static_resources": {
            "listeners": [
                {
                    "name": "ingress",
                    "address": _socket_address("0.0.0.0", listen_port),
                    # Drained on shutdown too, not only on listener updates: the
                    # pod's preStop calls /drain_listeners?graceful and Envoy runs
                    # with --drain-time-s / --drain-strategy gradual (see
                    # k8s/base/gateway/deployment.yaml), so open connections are
                    # told to go away before the process stops.
                    "drain_type": "DEFAULT",
                    "filter_chains": [
                        {
                            "filters": [
                                {"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}
                            ]
                        }
                    ],
                }
            ] + listeners,
            "clusters": clusters,
        },
    }


def _stats_listener(port: int) -> dict:
    """A listener serving only Envoy's Prometheus stats (GET /stats/prometheus, from the admin
    interface on loopback); any other path is 404, so /quitquitquit and the like stay unreachable."""
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "stats",
        "codec_type": "AUTO",
        "route_config": {
            "name": "stats",
            "virtual_hosts": [{
                "name": "stats",
                "domains": ["*"],
                "routes": [
                    {"match": {"path": "/stats/prometheus", "headers": [
                        {"name": ":method", "string_match": {"exact": "GET"}}]},
                     "route": {"cluster": "envoy_admin", "timeout": "5s"}},
                    {"match": {"prefix": "/"}, "direct_response": {"status": 404}},
                ],
            }],
        },
        "http_filters": [{
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }],
    }
    return {
        "name": "stats",
        "address": _socket_address("0.0.0.0", port),
        # Not drained with the ingress listener: metrics stay readable while the pod drains.
        "drain_type": "MODIFY_ONLY",
        "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                        "typed_config": hcm}]}],
    }


def _host_port(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


def _upstream(value: str) -> tuple[str, tuple[str, int]]:
    name, sep, address = value.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT, got {value!r}")
    return name, _host_port(address)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render the Smart110 Envoy gateway configuration (JSON).")
    parser.add_argument("--descriptor", required=True, help="FileDescriptorSet built with --include_imports")
    parser.add_argument("--out", required=True, help="where to write the JSON config ('-' for stdout)")
    parser.add_argument("--listen-port", type=int, default=8080)
    parser.add_argument("--admin-port", type=int, default=9901)
    parser.add_argument(
        "--upstream",
        type=_upstream,
        action="append",
        default=[],
        metavar="SVC=HOST:PORT",
        help="gRPC server of a service, e.g. intake=127.0.0.1:50051 (repeat for each)",
    )
    parser.add_argument(
        "--jwks",
        default=os.environ.get("JWT_JWKS_PATH") or str(DEFAULT_JWKS),
        help="public JWKS file (default: JWT_JWKS_PATH or the development keys)",
    )
    parser.add_argument(
        "--http-upstream",
        type=_upstream,
        action="append",
        default=[],
        metavar="FACE=HOST:PORT",
        help="app of an HTTP face, e.g. open311=127.0.0.1:8053 (Open311 GeoReport v2 in XML and JSON)",
    )
    parser.add_argument(
        "--docs-dir", default=None, metavar="DIR",
        help=f"swagger-ui-dist package to serve Swagger UI from at {DOCS_PATH} (e.g. {DEFAULT_DOCS_DIR.relative_to(REPO_ROOT)})",
    )
    parser.add_argument(
        "--web-dir", default=None, metavar="DIR",
        help=f"built web front-end to serve at / (e.g. {DEFAULT_WEB_DIR.relative_to(REPO_ROOT)}, from `make setup`)",
    )
    # The identity provider: each option defaults to its environment variable (oidc_from_env).
    for option, variable, meaning in (
        ("--oidc-issuer", "OIDC_ISSUER", "issuer of the identity provider (OpenID Connect) whose tokens are "
                                         "accepted too, and through which the web front-end signs in"),
        ("--oidc-jwks-uri", "OIDC_JWKS_URI", "its jwks_uri"),
        ("--oidc-audience", "OIDC_AUDIENCE", f"audiences its tokens carry, comma-separated ({JWT_AUDIENCES[0]})"),
        ("--oidc-client-id", "OIDC_CLIENT_ID", f"the web front-end's client id there ({OIDC_DEFAULT_CLIENT_ID})"),
        ("--oidc-scope", "OIDC_SCOPE", f"scopes the front-end asks for ({OIDC_DEFAULT_SCOPE!r})"),
        ("--oidc-ca-file", "OIDC_CA_FILE", f"CA bundle for an https jwks_uri ({DEFAULT_CA_FILE})"),
    ):
        parser.add_argument(option, dest=variable, default=os.environ.get(variable, ""), metavar="VALUE",
                            help=f"{meaning} (default: {variable})")
    parser.add_argument("--otlp", type=_host_port, default=None, metavar="HOST:PORT", help="OTLP/gRPC collector")
    parser.add_argument("--trace-sampling", type=float, default=float(os.environ.get("GATEWAY_TRACE_SAMPLING", 100)),
                        metavar="PERCENT", help="percentage of requests traced (default: GATEWAY_TRACE_SAMPLING or 100)")
    parser.add_argument(
        "--cors-origin", action="append", default=None, help="allowed CORS origin (repeat; default '*')"
    )
    args = parser.parse_args(argv)

    try:
        oidc = oidc_from_env({name: value for name, value in vars(args).items() if name.startswith("OIDC_")})
        config = render(
            args.descriptor,
            dict(args.upstream),
            listen_port=args.listen_port,
            admin_port=args.admin_port,
            jwks_path=args.jwks,
            otlp=args.otlp,
            trace_sampling=args.trace_sampling,
            cors_origins=args.cors_origin,
            http_upstreams=dict(args.http_upstream),
            docs_dir=args.docs_dir,
            web_dir=args.web_dir,
            oidc=oidc,
        )
    except GatewayConfigError as exc:
        print(f"gateway.render: {exc}", file=sys.stderr)
        return 2

    text = json.dumps(config, indent=2) + "\n"
    if args.out == "-":
        sys.stdout.write(text)
    else:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
