"""The Envoy config rendered from a descriptor set routes every RPC."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.render import GatewayConfigError, IdentityProvider, load_methods, main, oidc_from_env, render

REPO_ROOT = Path(__file__).resolve().parents[2]
JWKS = REPO_ROOT / "gateway" / "dev-keys" / "jwks.json"
ENVOY = Path(sys.executable).parent / "envoy"

TEST_PROTO = """
syntax = "proto3";
package smart110.intake.v1;
import "google/api/annotations.proto";

service IntakeService {
  rpc ReportIncident(ReportIncidentRequest) returns (Incident) {
    option (google.api.http) = {post: "/v1/incidents" body: "*"};
  }
  rpc GetIncident(GetIncidentRequest) returns (Incident) {
    option (google.api.http) = {get: "/v1/incidents/{incident_id}"};
  }
  rpc WatchIncidents(WatchIncidentsRequest) returns (stream Incident) {
    option (google.api.http) = {get: "/v1/incidents:watch"};
  }
}
message ReportIncidentRequest { string caller_name = 1; }
message GetIncidentRequest { string incident_id = 1; }
message WatchIncidentsRequest { string station = 1; }
message Incident { string incident_id = 1; }
"""

SECOND_PROTO = """
syntax = "proto3";
package smart110.dispatch.v1;
service DispatchService {
  rpc Assign(AssignRequest) returns (AssignResponse);
}
message AssignRequest { string incident_id = 1; }
message AssignResponse {}
"""

# Not a smart110 package: must be ignored.
FOREIGN_PROTO = """
syntax = "proto3";
package acme.other.v1;
service OtherService { rpc Ping(PingRequest) returns (PingRequest); }
message PingRequest {}
"""


def _include_dirs() -> list[str]:
    import google.api
    import grpc_tools

    google_protos = os.path.dirname(os.path.dirname(google.api.__path__[0]))
    wkt_protos = os.path.join(grpc_tools.__path__[0], "_proto")
    return [google_protos, wkt_protos]


def _build_descriptor_set(tmp: Path, protos: dict[str, str]) -> Path:
    for rel, text in protos.items():
        path = tmp / "protos" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    out = tmp / "descriptors.pb"
    cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp / 'protos'}"]
    cmd += [f"-I{d}" for d in _include_dirs()]
    cmd += ["--include_imports", "--include_source_info", f"--descriptor_set_out={out}"]
    cmd += sorted(protos) + ["google/rpc/error_details.proto"]
    subprocess.run(cmd, check=True, cwd=tmp / "protos")
    return out


@pytest.fixture(scope="module")
def descriptor(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("desc")
    return _build_descriptor_set(
        tmp,
        {
            "smart110/intake/v1/intake.proto": TEST_PROTO,
            "smart110/dispatch/v1/dispatch.proto": SECOND_PROTO,
            "acme/other/v1/other.proto": FOREIGN_PROTO,
        },
    )


UPSTREAMS = {"intake": ("127.0.0.1", 50051), "dispatch": ("dispatch.smart110.svc", 50052)}


@pytest.fixture(scope="module")
def config(descriptor) -> dict:
    return render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS))


def _hcm(config: dict) -> dict:
    listener = config["static_resources"]["listeners"][0]
    return listener["filter_chains"][0]["filters"][0]["typed_config"]


def _routes(config: dict) -> list[dict]:
    return _hcm(config)["route_config"]["virtual_hosts"][0]["routes"]


def _route_for(config: dict, grpc_path: str) -> dict:
    matches = [r for r in _routes(config) if r["match"].get("path") == grpc_path]
    assert len(matches) == 1, f"expected exactly one route for {grpc_path}, got {matches}"
    return matches[0]


def _filter(config: dict, name: str) -> dict:
    for f in _hcm(config)["http_filters"]:
        if f["name"] == name:
            return f["typed_config"]
    raise AssertionError(f"filter {name} missing")


def test_descriptor_methods_are_found(descriptor):
    paths = {m.grpc_path for m in load_methods(descriptor)}
    assert paths == {
        "/smart110.intake.v1.IntakeService/ReportIncident",
        "/smart110.intake.v1.IntakeService/GetIncident",
        "/smart110.intake.v1.IntakeService/WatchIncidents",
        "/smart110.dispatch.v1.DispatchService/Assign",
    }


def test_every_method_routes_to_its_cluster(config):
    expected = {
        "/smart110.intake.v1.IntakeService/ReportIncident": "intake",
        "/smart110.intake.v1.IntakeService/GetIncident": "intake",
        "/smart110.intake.v1.IntakeService/WatchIncidents": "intake",
        "/smart110.dispatch.v1.DispatchService/Assign": "dispatch",
    }
    for path, cluster in expected.items():
        assert _route_for(config, path)["route"]["cluster"] == cluster
    routed = {r["match"]["path"] for r in _routes(config) if "path" in r["match"] and "route" in r}
    assert routed == set(expected), "foreign or unknown services must not be routed"
    answered = {r["match"]["path"]: r for r in _routes(config) if "direct_response" in r}
    assert set(answered) == {"/openapi.json"}, "the gateway answers only its OpenAPI document itself"
    assert json.loads(answered["/openapi.json"]["direct_response"]["body"]["inline_string"])["openapi"] == "3.0.3"
    # The only other route is the catch-all, last, to a cluster that does not exist.
    others = [r for r in _routes(config) if "path" not in r["match"]]
    assert others == [_routes(config)[-1]]
    cluster_names = {c["name"] for c in config["static_resources"]["clusters"]}
    assert others[0]["route"]["cluster"] not in cluster_names
    assert cluster_names == {"intake", "dispatch"}


def test_timeouts_streaming_disabled_unary_bounded(config):
    stream = _route_for(config, "/smart110.intake.v1.IntakeService/WatchIncidents")["route"]
    assert stream["timeout"] == "0s"
    assert stream["idle_timeout"] == "0s"
    unary = _route_for(config, "/smart110.intake.v1.IntakeService/ReportIncident")["route"]
    assert unary["timeout"] == "15s"
    assert "idle_timeout" not in unary
    hcm = _hcm(config)
    assert hcm["stream_idle_timeout"] == "0s"
    assert hcm["request_timeout"] == "0s"


def test_filter_chain_order_and_transcoder(config, descriptor):
    names = [f["name"] for f in _hcm(config)["http_filters"]]
    assert names == [
        "envoy.filters.http.header_mutation",
        "envoy.filters.http.cors",
        "envoy.filters.http.health_check",
        "envoy.filters.http.jwt_authn",
        "envoy.filters.http.grpc_web",
        "envoy.filters.http.grpc_json_transcoder",
        "envoy.filters.http.router",
    ]
    transcoder = _filter(config, "envoy.filters.http.grpc_json_transcoder")
    assert transcoder["proto_descriptor"] == str(descriptor.resolve())
    assert sorted(transcoder["services"]) == [
        "smart110.dispatch.v1.DispatchService",
        "smart110.intake.v1.IntakeService",
    ]
    assert transcoder["convert_grpc_status"] is True
    assert transcoder["request_validation_options"]["reject_unknown_method"] is True


def test_clusters_are_http2_with_grpc_health_checks(config):
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    intake = clusters["intake"]
    assert intake["type"] == "STATIC"
    assert clusters["dispatch"]["type"] == "STRICT_DNS"
    opts = intake["typed_extension_protocol_options"]["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
    assert "http2_protocol_options" in opts["explicit_http_config"]
    assert [hc["grpc_health_check"]["service_name"] for hc in intake["health_checks"]] == [
        "smart110.intake.v1.IntakeService"
    ]
    health = _filter(config, "envoy.filters.http.health_check")
    assert health["pass_through_mode"] is False
    assert health["cluster_min_healthy_percentages"] == {"intake": {"value": 100.0}, "dispatch": {"value": 100.0}}


def test_jwt_provider_uses_jwks_file(config):
    jwt = _filter(config, "envoy.filters.http.jwt_authn")
    provider = jwt["providers"]["smart110"]
    assert provider["issuer"] == "smart110-dev"
    assert provider["audiences"] == ["smart110"]
    assert provider["forward_payload_header"] == "x-jwt-payload"
    assert json.loads(provider["local_jwks"]["inline_string"]) == json.loads(JWKS.read_text())
    rules = jwt["rules"]
    assert rules[0] == {"match": {"path": "/healthz"}}  # open
    assert rules[-1]["requires"] == {"provider_name": "smart110"}


def test_tracing_only_when_otlp_given(config, descriptor):
    assert "tracing" not in _hcm(config)
    traced = render(
        str(descriptor),
        UPSTREAMS,
        listen_port=18080,
        admin_port=19901,
        jwks_path=str(JWKS),
        otlp=("127.0.0.1", 4317),
        cors_origins=["http://localhost:5173"],
    )
    provider = _hcm(traced)["tracing"]["provider"]
    assert provider["name"] == "envoy.tracers.opentelemetry"
    assert provider["typed_config"]["service_name"] == "smart110-gateway"
    assert "otel_collector" in {c["name"] for c in traced["static_resources"]["clusters"]}
    cors = _hcm(traced)["route_config"]["virtual_hosts"][0]["typed_per_filter_config"]["envoy.filters.http.cors"]
    assert cors["allow_origin_string_match"] == [{"exact": "http://localhost:5173"}]


def test_the_traced_share_of_requests_is_the_one_asked_for(descriptor):
    def tracing(**kw):
        return _hcm(render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
                           otlp=("127.0.0.1", 4317), **kw))["tracing"]

    assert tracing()["random_sampling"] == {"value": 100.0}
    assert tracing(trace_sampling=10)["random_sampling"] == {"value": 10}
    with pytest.raises(GatewayConfigError, match="percentage"):
        tracing(trace_sampling=250)


def test_service_without_upstream_is_an_error(descriptor):
    with pytest.raises(GatewayConfigError, match=r"dispatch.*smart110\.dispatch\.v1\.DispatchService"):
        render(
            str(descriptor),
            {"intake": ("127.0.0.1", 50051)},
            listen_port=18080,
            admin_port=19901,
            jwks_path=str(JWKS),
        )


def test_cli_writes_json_and_fails_on_missing_upstream(descriptor, tmp_path):
    out = tmp_path / "envoy.json"
    base = [sys.executable, "-m", "gateway.render", "--descriptor", str(descriptor), "--out", str(out)]
    ok = subprocess.run(
        base + ["--upstream", "intake=127.0.0.1:50051", "--upstream", "dispatch=127.0.0.1:50052"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0, ok.stderr
    assert _route_for(json.loads(out.read_text()), "/smart110.dispatch.v1.DispatchService/Assign")
    bad = subprocess.run(
        base + ["--upstream", "intake=127.0.0.1:50051"], cwd=REPO_ROOT, capture_output=True, text=True
    )
    assert bad.returncode != 0
    assert "dispatch" in bad.stderr


@pytest.mark.skipif(not ENVOY.exists(), reason=f"envoy binary not found at {ENVOY}")
@pytest.mark.parametrize("otlp, stats_port", [(None, None), (("127.0.0.1", 4317), None), (None, 19902)],
                         ids=["plain", "tracing", "stats"])
def test_envoy_accepts_rendered_config(descriptor, tmp_path, otlp, stats_port):
    config = render(
        str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS), otlp=otlp,
        stats_port=stats_port,
    )
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not ENVOY.exists(), reason=f"envoy binary not found at {ENVOY}")
def test_envoy_rejects_broken_config(descriptor, tmp_path):
    """Guards the validation test above: validate mode must be able to fail."""
    config = render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS))
    _filter(config, "envoy.filters.http.grpc_json_transcoder")["services"].append("smart110.nope.v1.Missing")
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(config))
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0


# -- public faces (Open311 GeoReport v2) ----------------------------------------------

OPEN311_PROTO = """
syntax = "proto3";
package smart110.referral.v1;
import "google/api/annotations.proto";

service ReferralService {
  rpc GetWorkOrder(GetWorkOrderRequest) returns (WorkOrder) {
    option (google.api.http) = {get: "/v1/{name=workOrders/*}"};
  }
}
service Open311Service {
  rpc ListServices(ListServicesRequest) returns (WorkOrder) {
    option (google.api.http) = {get: "/open311/v2/services.json"};
  }
  rpc CreateServiceRequest(ListServicesRequest) returns (WorkOrder) {
    option (google.api.http) = {post: "/open311/v2/requests.json" body: "*"};
  }
}
message GetWorkOrderRequest { string name = 1; }
message ListServicesRequest { string jurisdiction_id = 1; }
message WorkOrder { string name = 1; }
"""

# Another service binding a path under the open prefix.
STRAY_PROTO = OPEN311_PROTO.replace('get: "/v1/{name=workOrders/*}"', 'get: "/open311/v2/{name=workOrders/*}"')

OPEN311_UPSTREAMS = {**UPSTREAMS, "referral": ("127.0.0.1", 50053)}
OPEN311_PATHS = (
    "/smart110.referral.v1.Open311Service/CreateServiceRequest",
    "/smart110.referral.v1.Open311Service/ListServices",
)


@pytest.fixture(scope="module")
def open311_descriptor(tmp_path_factory) -> Path:
    return _build_descriptor_set(
        tmp_path_factory.mktemp("open311"),
        {"smart110/intake/v1/intake.proto": TEST_PROTO, "smart110/referral/v1/referral.proto": OPEN311_PROTO},
    )


@pytest.fixture(scope="module")
def open311_config(open311_descriptor) -> dict:
    return render(str(open311_descriptor), OPEN311_UPSTREAMS, listen_port=18080, admin_port=19901,
                  jwks_path=str(JWKS))


def test_client_sent_jwt_payload_is_dropped_before_jwt_authn(config, open311_config):
    for cfg in (config, open311_config):
        names = [f["name"] for f in _hcm(cfg)["http_filters"]]
        assert names.index("envoy.filters.http.header_mutation") < names.index("envoy.filters.http.jwt_authn")
        mutation = _filter(cfg, "envoy.filters.http.header_mutation")
        assert mutation["mutations"]["request_mutations"] == [{"remove": "x-jwt-payload"}]
        assert _hcm(cfg)["normalize_path"] is True and _hcm(cfg)["merge_slashes"] is True


def test_open311_prefix_needs_no_jwt_and_everything_else_does(config, open311_config):
    rules = _filter(open311_config, "envoy.filters.http.jwt_authn")["rules"]
    assert rules == [
        {"match": {"path": "/healthz"}},
        {"match": {"path": "/openapi.json"}},
        {"match": {"prefix": "/open311/"}},
        {"match": {"prefix": "/"}, "requires": {"provider_name": "smart110"}},
    ]
    # Without the Open311 service in the set, the prefix is not opened.
    assert {"match": {"prefix": "/open311/"}} not in _filter(config, "envoy.filters.http.jwt_authn")["rules"]


def test_open311_methods_always_run_as_the_anonymous_client(open311_config):
    for path in OPEN311_PATHS:
        [header] = _route_for(open311_config, path)["request_headers_to_add"]
        assert header["append_action"] == "OVERWRITE_IF_EXISTS_OR_ADD"
        assert header["header"]["key"] == "x-jwt-payload"
        raw = header["header"]["value"]
        claims = json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
        assert claims == {"sub": "open311-public", "roles": ["open311_client"]}
    for path in ("/smart110.referral.v1.ReferralService/GetWorkOrder", "/smart110.intake.v1.IntakeService/GetIncident"):
        assert "request_headers_to_add" not in _route_for(open311_config, path)


def test_other_service_under_the_open_prefix_is_refused(tmp_path):
    descriptor = _build_descriptor_set(tmp_path, {"smart110/referral/v1/referral.proto": STRAY_PROTO})
    with pytest.raises(GatewayConfigError, match="GetWorkOrder.*public prefix /open311/"):
        render(str(descriptor), OPEN311_UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS))


@pytest.mark.skipif(not ENVOY.exists(), reason=f"envoy binary not found at {ENVOY}")
def test_envoy_accepts_open311_config(open311_config, tmp_path):
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(open311_config))
    result = subprocess.run(
        [str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def _access_log_formats(config):
    """Every (listener, format dict or text) of the stdout access loggers in the config."""
    for listener in config["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for flt in chain["filters"]:
                for logger in flt["typed_config"].get("access_log", []):
                    fmt = logger["typed_config"].get("log_format")
                    yield listener["name"], fmt


def test_access_log_never_logs_the_query_string(config):
    formats = list(_access_log_formats(config))
    # An access logger without log_format uses Envoy's default, which logs the full path.
    assert formats and all(fmt is not None for _, fmt in formats)
    for _, fmt in formats:
        fields = fmt.get("json_format") or {"text": fmt.get("text_format_source", {}).get("inline_string", "")}
        for key, value in fields.items():
            for full in ("%REQ(:PATH)%", "%REQ(PATH)%", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
                         "%REQ(X-ENVOY-ORIGINAL-PATH)%", "%PATH%", "%REQ(:path)%"):
                assert full.lower() not in value.lower(), f"{key} logs the full path with query: {value}"
            if "PATH" in value.upper() and "%REQ" in value.upper():
                assert "REQ_WITHOUT_QUERY" in value.upper() or "WQ" in value.upper(), key
    assert any("REQ_WITHOUT_QUERY" in v for _, fmt in formats for v in fmt["json_format"].values())


def test_listener_drains_on_shutdown(config):
    (listener,) = config["static_resources"]["listeners"]
    assert listener.get("drain_type", "DEFAULT") == "DEFAULT"


# -- runtime services every service serves (smart110.common.v1) ------------------------

SHARED_PROTO = """
syntax = "proto3";
package smart110.common.v1;
import "google/api/annotations.proto";

service FeedAdminService {
  rpc ListParkedEvents(ListParkedEventsRequest) returns (ListParkedEventsResponse) {
    option (google.api.http) = {get: "/v1/{parent=feedConsumers/*}/parkedEvents"};
  }
  rpc DiscardParkedEvent(DiscardParkedEventRequest) returns (ListParkedEventsResponse) {
    option (google.api.http) = {post: "/v1/{name=feedConsumers/*/parkedEvents/*}:discard" body: "*"};
  }
}
message ListParkedEventsRequest { string parent = 1; }
message DiscardParkedEventRequest { string name = 1; }
message ListParkedEventsResponse { string next_page_token = 1; }
"""
SHARED_PATH = "/smart110.common.v1.FeedAdminService/ListParkedEvents"


@pytest.fixture(scope="module")
def shared_config(tmp_path_factory) -> dict:
    descriptor = _build_descriptor_set(
        tmp_path_factory.mktemp("shared"),
        {"smart110/intake/v1/intake.proto": TEST_PROTO, "smart110/dispatch/v1/dispatch.proto": SECOND_PROTO,
         "smart110/common/v1/feed_admin.proto": SHARED_PROTO},
    )
    return render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS))


def test_a_runtime_service_routes_to_the_service_its_path_or_header_names(shared_config):
    routes = [r for r in _routes(shared_config) if r["match"].get("path") == SHARED_PATH]
    by_target = {}
    for r in routes:
        [header] = r["match"]["headers"]
        by_target.setdefault(r["route"]["cluster"], []).append((header["name"], header["string_match"]))
    assert by_target == {
        "dispatch": [("x-envoy-original-path", {"prefix": "/v1/feedConsumers/dispatch/"}),
                     ("smart110-service", {"exact": "dispatch"})],
        "intake": [("x-envoy-original-path", {"prefix": "/v1/feedConsumers/intake/"}),
                   ("smart110-service", {"exact": "intake"})],
    }
    # No "common" upstream is needed or made, and health is checked on the services' own names.
    clusters = {c["name"]: c for c in shared_config["static_resources"]["clusters"]}
    assert set(clusters) == {"intake", "dispatch"}
    checked = {h["grpc_health_check"]["service_name"] for c in clusters.values() for h in c["health_checks"]}
    assert "smart110.common.v1.FeedAdminService" not in checked
    assert "smart110.common.v1.FeedAdminService" in _filter(
        shared_config, "envoy.filters.http.grpc_json_transcoder")["services"]
    # Every one of these routes comes before the catch-all.
    assert _routes(shared_config)[-1]["name"] == "unknown"


def test_a_runtime_service_rest_path_must_name_the_service_after_its_prefix(tmp_path):
    stray = SHARED_PROTO.replace("/v1/{parent=feedConsumers/*}/parkedEvents", "/v1/parkedEvents")
    descriptor = _build_descriptor_set(tmp_path, {"smart110/intake/v1/intake.proto": TEST_PROTO,
                                                  "smart110/common/v1/feed_admin.proto": stray})
    with pytest.raises(GatewayConfigError, match="ListParkedEvents binds /v1/parkedEvents"):
        render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS))


@pytest.mark.skipif(not ENVOY.exists(), reason=f"envoy binary not found at {ENVOY}")
def test_envoy_accepts_runtime_service_routes(shared_config, tmp_path):
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(shared_config))
    result = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_services_take_the_metadata_of_the_longest_request_the_gateway_passes(config):
    # A transcoded request carries its path and its token twice: a service that took less would
    # answer a long URL with a reset stream (503) instead of its own answer.
    from gateway.render import MAX_REQUEST_HEADERS_KB
    from services.runtime.server import MAX_METADATA_BYTES

    assert _hcm(config)["max_request_headers_kb"] == MAX_REQUEST_HEADERS_KB
    assert MAX_METADATA_BYTES >= 2 * MAX_REQUEST_HEADERS_KB * 1024 + 8 * 1024


def test_unknown_query_parameters_are_ignored_on_rest_routes(config):
    transcoder = _filter(config, "envoy.filters.http.grpc_json_transcoder")
    assert transcoder["ignore_unknown_query_parameters"] is True
    assert "reject_unknown_query_parameters" not in transcoder["request_validation_options"]


def test_the_open311_http_face_is_routed_untranscoded_to_its_own_http1_cluster(open311_descriptor, open311_config):
    config = render(str(open311_descriptor), OPEN311_UPSTREAMS, listen_port=18080, admin_port=19901,
                    jwks_path=str(JWKS), http_upstreams={"open311": ("127.0.0.1", 8053)})
    routes = [r for r in _hcm(config)["route_config"]["virtual_hosts"][0]["routes"] if "direct_response" not in r]
    first = routes[0]  # before every transcoded route (the gateway's own OpenAPI document aside)
    assert first["match"] == {"prefix": "/open311/v2/"} and first["route"]["cluster"] == "referral-open311"
    assert first["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True
    assert "request_headers_to_add" not in first, "the app runs as open311-public itself"
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    face = clusters["referral-open311"]
    assert "typed_extension_protocol_options" not in face and "health_checks" not in face
    assert face["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"] == {
        "socket_address": {"address": "127.0.0.1", "port_value": 8053}}
    # The gateway's health does not wait for it, and without its upstream nothing changes.
    health = _filter(config, "envoy.filters.http.health_check")["cluster_min_healthy_percentages"]
    assert "referral-open311" not in health
    assert all(r.get("route", {}).get("cluster") != "referral-open311"
               for r in _hcm(open311_config)["route_config"]["virtual_hosts"][0]["routes"])
    with pytest.raises(GatewayConfigError, match="no such HTTP face: nope"):
        render(str(open311_descriptor), OPEN311_UPSTREAMS, listen_port=18080, admin_port=19901,
               jwks_path=str(JWKS), http_upstreams={"nope": ("127.0.0.1", 1)})


def test_a_stats_listener_serves_only_prometheus_stats_from_the_admin_interface(config, descriptor):
    assert [li["name"] for li in config["static_resources"]["listeners"]] == ["ingress"]
    with_stats = render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
                        stats_port=19902)
    stats = next(li for li in with_stats["static_resources"]["listeners"] if li["name"] == "stats")
    assert stats["address"]["socket_address"]["port_value"] == 19902
    hcm = stats["filter_chains"][0]["filters"][0]["typed_config"]
    routes = hcm["route_config"]["virtual_hosts"][0]["routes"]
    assert routes[0]["match"]["path"] == "/stats/prometheus" and routes[0]["route"]["cluster"] == "envoy_admin"
    assert routes[1] == {"match": {"prefix": "/"}, "direct_response": {"status": 404}}
    admin = next(c for c in with_stats["static_resources"]["clusters"] if c["name"] == "envoy_admin")
    endpoint = admin["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"]
    assert endpoint == {"address": "127.0.0.1", "port_value": 19901} and "typed_extension_protocol_options" not in admin


def _swagger_dist(path: Path, bundle: bytes = b"window.SwaggerUIBundle = function () {};\n") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "swagger-ui-bundle.js").write_bytes(bundle)
    (path / "swagger-ui.css").write_text(".swagger-ui { color: #3b4151; }\n")
    return path


def _answered(config: dict) -> dict[str, dict]:
    return {r["match"]["path"]: r for r in _routes(config) if "direct_response" in r}


def _headers(route: dict) -> dict[str, str]:
    return {h["header"]["key"]: h["header"]["value"] for h in route["response_headers_to_add"]}


def test_docs_are_swagger_ui_over_the_openapi_document_answered_by_the_gateway(descriptor, tmp_path):
    dist = _swagger_dist(tmp_path / "swagger-ui-dist")
    cfg = render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
                 docs_dir=str(dist), docs_dir_in_config="/etc/envoy/docs")
    answered = _answered(cfg)
    assert set(answered) == {"/openapi.json", "/docs", "/docs/swagger-ui-bundle.js", "/docs/swagger-ui.css"}
    for route in answered.values():
        assert route["match"]["headers"] == [{"name": ":method", "string_match": {"exact": "GET"}}]
        assert route["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]["disabled"] is True
    # Envoy reads the assets from where the pod mounts them; the page is inline.
    assert answered["/docs/swagger-ui-bundle.js"]["direct_response"]["body"] == {
        "filename": "/etc/envoy/docs/swagger-ui-bundle.js"}
    assert answered["/docs/swagger-ui.css"]["direct_response"]["body"] == {"filename": "/etc/envoy/docs/swagger-ui.css"}
    assert _headers(answered["/docs"])["content-type"] == "text/html; charset=utf-8"
    assert _headers(answered["/docs/swagger-ui-bundle.js"])["content-type"].startswith("text/javascript")
    assert _headers(answered["/docs/swagger-ui.css"])["content-type"].startswith("text/css")
    page = answered["/docs"]["direct_response"]["body"]["inline_string"]
    assert 'url: "/openapi.json"' in page
    # The page names each asset by its content, so a browser keeps it until a release changes it.
    first = re.search(r'src="(/docs/swagger-ui-bundle\.js\?v=[0-9a-f]+)"', page).group(1)
    assert "immutable" in _headers(answered["/docs/swagger-ui-bundle.js"])["cache-control"]
    _swagger_dist(dist, bundle=b"window.SwaggerUIBundle = function () { return 2; };\n")
    again = render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
                   docs_dir=str(dist))
    page = _answered(again)["/docs"]["direct_response"]["body"]["inline_string"]
    assert first not in page and re.search(r'src="/docs/swagger-ui-bundle\.js\?v=[0-9a-f]+"', page)
    assert 'href="/docs/swagger-ui.css?v=' in page
    # Open to anyone, path by path: nothing else under /docs/ escapes the JWT.
    rules = _filter(cfg, "envoy.filters.http.jwt_authn")["rules"]
    open_paths = [r["match"] for r in rules if "requires" not in r]
    assert open_paths == [{"path": "/healthz"}, {"path": "/openapi.json"}, {"path": "/docs"},
                          {"path": "/docs/swagger-ui-bundle.js"}, {"path": "/docs/swagger-ui.css"}]
    assert _hcm(cfg)["route_config"]["max_direct_response_body_size_bytes"] >= 4 * 1024 * 1024
    # Without the package, no /docs route and no open path for it.
    assert "/docs" not in _answered(render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901,
                                           jwks_path=str(JWKS)))


def test_docs_without_the_installed_package_or_with_an_oversized_asset_are_refused(descriptor, tmp_path):
    with pytest.raises(GatewayConfigError, match="make setup"):
        render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
               docs_dir=str(tmp_path / "not-installed"))
    dist = _swagger_dist(tmp_path / "big", bundle=b"x" * (4 * 1024 * 1024 + 1))
    with pytest.raises(GatewayConfigError, match="swagger-ui-bundle.js"):
        render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
               docs_dir=str(dist))


@pytest.mark.skipif(not ENVOY.exists(), reason=f"envoy binary not found at {ENVOY}")
def test_envoy_loads_the_docs_assets_and_refuses_a_config_whose_assets_are_gone(descriptor, tmp_path):
    dist = _swagger_dist(tmp_path / "swagger-ui-dist")
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901,
                                      jwks_path=str(JWKS), docs_dir=str(dist))))
    validate = [str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "warn"]
    result = subprocess.run(validate, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    (dist / "swagger-ui.css").unlink()
    result = subprocess.run(validate, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "swagger-ui.css" in result.stdout + result.stderr


def _web_build(path: Path, bundle: bytes = b"console.log('big screen');\n") -> Path:
    """A Vite build as `make web` writes it: index.html, content-hashed files under assets/, a stamp."""
    (path / "assets").mkdir(parents=True, exist_ok=True)
    (path / "index.html").write_text('<!doctype html><script type="module" src="/assets/index-Ab12.js"></script>\n')
    (path / "assets" / "index-Ab12.js").write_bytes(bundle)
    (path / "assets" / "index-Cd34.css").write_text(".screen { display: grid; }\n")
    (path / "assets" / "maplibre-gl-worker-Ef56.mjs").write_text("self.onmessage = () => {};\n")
    (path / ".built").write_text("")
    return path


def test_the_built_front_end_is_answered_at_the_root_and_its_files_at_their_paths(descriptor, tmp_path):
    web = _web_build(tmp_path / "web")
    cfg = render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
                 web_dir=str(web), web_dir_in_config="/etc/envoy/web")
    answered = _answered(cfg)
    files = {"/", "/index.html", "/assets/index-Ab12.js", "/assets/index-Cd34.css",
             "/assets/maplibre-gl-worker-Ef56.mjs"}
    # The build's files and nothing else (not its stamp); Envoy reads them where the pod mounts them.
    assert set(answered) == {"/openapi.json", "/config.json"} | files
    assert answered["/"]["direct_response"]["body"] == {"filename": "/etc/envoy/web/index.html"}
    assert answered["/assets/index-Ab12.js"]["direct_response"]["body"] == {
        "filename": "/etc/envoy/web/assets/index-Ab12.js"}
    for path in files:
        assert answered[path]["match"]["headers"] == [{"name": ":method", "string_match": {"exact": "GET"}}]
        assert answered[path]["typed_per_filter_config"]["envoy.filters.http.grpc_json_transcoder"]["disabled"]
    types = {path: _headers(answered[path])["content-type"] for path in files}
    assert types["/"] == types["/index.html"] == "text/html; charset=utf-8"
    assert types["/assets/index-Ab12.js"].startswith("text/javascript")
    assert types["/assets/maplibre-gl-worker-Ef56.mjs"].startswith("text/javascript")
    assert types["/assets/index-Cd34.css"].startswith("text/css")
    # The page is asked for again each time; the assets, named by their content, are kept.
    assert _headers(answered["/"])["cache-control"] == "no-cache"
    assert "immutable" in _headers(answered["/assets/index-Ab12.js"])["cache-control"]
    # Open to anyone, path by path: the root and each file, nothing under a prefix.
    rules = _filter(cfg, "envoy.filters.http.jwt_authn")["rules"]
    open_paths = [r["match"] for r in rules if "requires" not in r]
    assert open_paths == [{"path": "/healthz"}, {"path": "/openapi.json"}, {"path": "/"}, {"path": "/config.json"},
                          {"path": "/assets/index-Ab12.js"},
                          {"path": "/assets/index-Cd34.css"}, {"path": "/assets/maplibre-gl-worker-Ef56.mjs"},
                          {"path": "/index.html"}]
    assert all("prefix" not in r["match"] or r["match"]["prefix"] in ("/", "/open311/") for r in rules)
    # A new build's files replace the old ones.
    (web / "assets" / "index-Ab12.js").unlink()
    (web / "assets" / "index-Zz99.js").write_text("console.log(2);\n")
    again = _answered(render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
                             web_dir=str(web)))
    assert "/assets/index-Zz99.js" in again and "/assets/index-Ab12.js" not in again
    # Without a build, no route at the root and no open path for it.
    plain = render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS))
    assert "/" not in _answered(plain)
    assert {"path": "/"} not in [r["match"] for r in _filter(plain, "envoy.filters.http.jwt_authn")["rules"]]


def test_a_front_end_not_built_or_with_files_the_gateway_cannot_answer_is_refused(descriptor, tmp_path):
    with pytest.raises(GatewayConfigError, match="make setup"):
        render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
               web_dir=str(tmp_path / "not-built"))
    big = _web_build(tmp_path / "big", bundle=b"x" * (4 * 1024 * 1024 + 1))
    with pytest.raises(GatewayConfigError, match="index-Ab12.js"):
        render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
               web_dir=str(big))
    odd = _web_build(tmp_path / "odd")
    (odd / "assets" / "data.bin").write_bytes(b"\0")
    with pytest.raises(GatewayConfigError, match="content type"):
        render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
               web_dir=str(odd))


@pytest.mark.skipif(not ENVOY.exists(), reason=f"envoy binary not found at {ENVOY}")
def test_envoy_loads_the_front_end_with_the_docs(descriptor, tmp_path):
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901,
                                      jwks_path=str(JWKS), docs_dir=str(_swagger_dist(tmp_path / "docs")),
                                      web_dir=str(_web_build(tmp_path / "web")))))
    result = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "warn"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


# -- the province's identity provider (OpenID Connect) -----------------------------------------

IDP = IdentityProvider(issuer="https://idp.example.gov.cn/realms/police",
                       jwks_uri="https://idp.example.gov.cn/realms/police/protocol/openid-connect/certs",
                       client_id="smart110-big-screen")


def test_tokens_of_the_identity_provider_are_accepted_beside_the_development_issuers(descriptor, tmp_path):
    cfg = render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
                 web_dir=str(_web_build(tmp_path / "web")), oidc=IDP)
    jwt = _filter(cfg, "envoy.filters.http.jwt_authn")
    assert set(jwt["providers"]) == {"smart110", "oidc"}
    oidc = jwt["providers"]["oidc"]
    assert oidc["issuer"] == IDP.issuer and oidc["audiences"] == ["smart110"]
    assert oidc["forward_payload_header"] == "x-jwt-payload" and oidc["forward"] is True
    remote = oidc["remote_jwks"]
    assert remote["http_uri"]["uri"] == IDP.jwks_uri and remote["http_uri"]["cluster"] == "oidc_jwks"
    assert remote["cache_duration"] == "300s" and "async_fetch" in remote
    # Either issuer's token, and nothing else, opens the API.
    assert jwt["rules"][-1] == {"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
        {"provider_name": "smart110"}, {"provider_name": "oidc"}]}}}
    # The keys come over TLS from the provider's host, its certificate checked.
    cluster = next(c for c in cfg["static_resources"]["clusters"] if c["name"] == "oidc_jwks")
    endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]
    assert endpoint["socket_address"] == {"address": "idp.example.gov.cn", "port_value": 443}
    assert cluster["type"] == "STRICT_DNS" and "typed_extension_protocol_options" not in cluster
    tls = cluster["transport_socket"]["typed_config"]
    assert tls["sni"] == "idp.example.gov.cn"
    validation = tls["common_tls_context"]["validation_context"]
    assert validation["trusted_ca"] == {"filename": "/etc/ssl/certs/ca-certificates.crt"}
    assert validation["match_typed_subject_alt_names"] == [
        {"san_type": "DNS", "matcher": {"exact": "idp.example.gov.cn"}}]
    # The front-end learns where to sign in from /config.json, open to anyone.
    settings = _answered(cfg)["/config.json"]
    assert json.loads(settings["direct_response"]["body"]["inline_string"]) == {"oidc": {
        "authority": IDP.issuer, "clientId": "smart110-big-screen", "scope": "openid profile"}}
    assert _headers(settings)["content-type"] == "application/json"
    assert {"path": "/config.json"} in [r["match"] for r in jwt["rules"] if "requires" not in r]


def test_without_an_identity_provider_only_development_tokens_and_the_front_end_says_so(descriptor, tmp_path):
    cfg = render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
                 web_dir=str(_web_build(tmp_path / "web")))
    assert set(_filter(cfg, "envoy.filters.http.jwt_authn")["providers"]) == {"smart110"}
    assert "oidc_jwks" not in [c["name"] for c in cfg["static_resources"]["clusters"]]
    body = _answered(cfg)["/config.json"]["direct_response"]["body"]["inline_string"]
    assert json.loads(body) == {"oidc": None}


def test_identity_provider_settings_from_the_environment(descriptor, tmp_path):
    assert oidc_from_env({}) is None
    with pytest.raises(GatewayConfigError, match="OIDC_JWKS_URI"):
        oidc_from_env({"OIDC_ISSUER": "https://idp.example"})
    with pytest.raises(GatewayConfigError, match="http"):
        oidc_from_env({"OIDC_ISSUER": "idp.example", "OIDC_JWKS_URI": "https://idp.example/jwks"})
    idp = oidc_from_env({"OIDC_ISSUER": "http://127.0.0.1:8090", "OIDC_JWKS_URI": "http://127.0.0.1:8090/jwks",
                         "OIDC_AUDIENCE": "smart110, smart110-web", "OIDC_CLIENT_ID": "wall"})
    assert idp.audiences == ("smart110", "smart110-web") and idp.client_id == "wall"
    assert idp.jwks_host_port == ("127.0.0.1", 8090, False)
    # The command line takes the same settings (options or environment).
    web = _web_build(tmp_path / "web")
    out = tmp_path / "envoy.json"
    code = main(["--descriptor", str(descriptor), "--out", str(out), "--upstream", "intake=127.0.0.1:1",
                 "--upstream", "dispatch=127.0.0.1:2", "--web-dir", str(web),
                 "--oidc-issuer", "http://127.0.0.1:8090", "--oidc-jwks-uri", "http://127.0.0.1:8090/jwks"])
    assert code == 0
    cfg = json.loads(out.read_text())
    cluster = next(c for c in cfg["static_resources"]["clusters"] if c["name"] == "oidc_jwks")
    assert "transport_socket" not in cluster  # plain http: the stand-in of `make run`
    assert main(["--descriptor", str(descriptor), "--out", str(out), "--upstream", "intake=127.0.0.1:1",
                 "--upstream", "dispatch=127.0.0.1:2", "--oidc-issuer", "http://127.0.0.1:8090"]) == 2


def test_a_build_carrying_its_own_settings_file_is_refused(descriptor, tmp_path):
    web = _web_build(tmp_path / "web")
    (web / "config.json").write_text("{}")
    with pytest.raises(GatewayConfigError, match="config.json"):
        render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS),
               web_dir=str(web))


@pytest.mark.skipif(not ENVOY.exists(), reason=f"envoy binary not found at {ENVOY}")
def test_envoy_accepts_the_identity_provider(descriptor, tmp_path):
    path = tmp_path / "envoy.json"
    path.write_text(json.dumps(render(str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901,
                                      jwks_path=str(JWKS), web_dir=str(_web_build(tmp_path / "web")), oidc=IDP)))
    result = subprocess.run([str(ENVOY), "--mode", "validate", "-c", str(path), "--log-level", "error"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_unary_calls_a_draining_service_never_ran_are_tried_again_and_streams_are_not(config):
    routes = [r for r in _hcm(config)["route_config"]["virtual_hosts"][0]["routes"]
              if r.get("match", {}).get("path", "").startswith("/smart110.")]
    unary = [r for r in routes if r["match"]["path"].endswith("/ReportIncident")]
    streams = [r for r in routes if r["match"]["path"].endswith("/WatchIncidents")]
    assert unary and streams
    for r in unary:
        assert set(r["route"]["retry_policy"]["retry_on"].split(",")) == {"cancelled", "refused-stream"}
    for r in streams:
        assert "retry_policy" not in r["route"]
