"""The Envoy config rendered from a descriptor set routes every RPC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.render import GatewayConfigError, load_methods, render

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
    routed = {r["match"]["path"] for r in _routes(config) if "path" in r["match"]}
    assert routed == set(expected), "foreign or unknown services must not be routed"
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
@pytest.mark.parametrize("otlp", [None, ("127.0.0.1", 4317)], ids=["plain", "tracing"])
def test_envoy_accepts_rendered_config(descriptor, tmp_path, otlp):
    config = render(
        str(descriptor), UPSTREAMS, listen_port=18080, admin_port=19901, jwks_path=str(JWKS), otlp=otlp
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
