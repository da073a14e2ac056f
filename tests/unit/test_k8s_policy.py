"""Policy checks on the rendered Kubernetes manifests (k8s/ overlays).

The overlays are rendered with the same code as `make k8s-check`
(tools/k8s_check.py).  Each check is a plain function returning a list of
complaints, so the last test can feed it a deliberately broken manifest.
"""
from __future__ import annotations

import copy
import importlib
import re

import pytest

from tools import k8s_check

SERVICES = ("intake", "dispatch", "referral", "alerts", "scoring", "warehouse")
WORKLOADS = SERVICES + ("gateway",)
REQUIRED_KINDS = ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ServiceAccount")


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return k8s_check.render_all()


def _name(obj: dict) -> str:
    return obj.get("metadata", {}).get("name", "")


def _of(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o.get("kind") == kind]


def _matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def deployment_problems(objects: list[dict]) -> list[str]:
    problems = []
    for dep in _of(objects, "Deployment"):
        pod = dep["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext", {})
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            where = f"Deployment/{_name(dep)} container {c['name']}"
            sc = c.get("securityContext", {})
            init = c in pod.get("initContainers", [])
            if not init:
                for probe in ("readinessProbe", "livenessProbe"):
                    if not c.get(probe):
                        problems.append(f"{where}: no {probe}")
            res = c.get("resources", {})
            for part in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    if r not in res.get(part, {}):
                        problems.append(f"{where}: no {r} {part[:-1]}")
            if not (sc.get("runAsNonRoot") or pod_sc.get("runAsNonRoot")):
                problems.append(f"{where}: runAsNonRoot not set")
            if not sc.get("readOnlyRootFilesystem"):
                problems.append(f"{where}: root filesystem not read-only")
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                problems.append(f"{where}: capabilities not dropped (drop: [ALL])")
            if sc.get("allowPrivilegeEscalation", True):
                problems.append(f"{where}: allowPrivilegeEscalation not false")
    return problems


def pdb_problems(objects: list[dict]) -> list[str]:
    pdbs = [p["spec"].get("selector", {}).get("matchLabels", {}) for p in _of(objects, "PodDisruptionBudget")]
    return [
        f"Deployment/{_name(dep)}: no PodDisruptionBudget selects its pods"
        for dep in _of(objects, "Deployment")
        if not any(_matches(sel, dep["spec"]["template"]["metadata"].get("labels", {})) for sel in pdbs)
    ]


def service_problems(objects: list[dict]) -> list[str]:
    templates = [o["spec"]["template"]["metadata"].get("labels", {})
                 for o in objects if o.get("kind") in ("Deployment", "StatefulSet")]
    problems = []
    for svc in _of(objects, "Service"):
        if not any(_matches(svc["spec"].get("selector", {}), labels) for labels in templates):
            problems.append(f"Service/{_name(svc)}: selector {svc['spec'].get('selector')} matches no pod template")
        if _name(svc) in SERVICES and "grpc" not in [p.get("name") for p in svc["spec"].get("ports", [])]:
            problems.append(f"Service/{_name(svc)}: no port named grpc")
    return problems


def completeness_problems(objects: list[dict]) -> list[str]:
    present = {(o.get("kind"), _name(o)) for o in objects}
    problems = [f"{name}: no {kind}" for name in WORKLOADS for kind in REQUIRED_KINDS if (kind, name) not in present]
    problems += [f"{name}: no migration Job" for name in SERVICES if ("Job", f"{name}-migrate") not in present]
    return problems


def hpa_problems(objects: list[dict]) -> list[str]:
    deployments = {_name(d) for d in _of(objects, "Deployment")}
    return [f"HorizontalPodAutoscaler/{_name(h)}: targets missing Deployment {h['spec']['scaleTargetRef']['name']}"
            for h in _of(objects, "HorizontalPodAutoscaler")
            if h["spec"]["scaleTargetRef"]["name"] not in deployments]


def database_problems(objects: list[dict], overlay: str) -> list[str]:
    """Structural checks of the database objects (CRDs get no schema validation)."""
    if overlay == "dev":
        sts = [o for o in _of(objects, "StatefulSet") if _name(o) == "postgres"]
        return [] if sts and sts[0]["spec"]["replicas"] == 1 else ["dev: no single-instance postgres StatefulSet"]
    problems = []
    clusters = [o for o in objects if o.get("kind") == "Cluster" and o.get("apiVersion") == "postgresql.cnpg.io/v1"]
    if len(clusters) != 1:
        return [f"{overlay}: expected one CloudNativePG Cluster, found {len(clusters)}"]
    spec = clusters[0].get("spec", {})
    if not isinstance(spec.get("instances"), int) or spec["instances"] < 2:
        problems.append(f"{overlay}: Cluster needs at least 2 instances")
    if not spec.get("storage", {}).get("size"):
        problems.append(f"{overlay}: Cluster without storage size")
    if not spec.get("backup", {}).get("barmanObjectStore", {}).get("destinationPath"):
        problems.append(f"{overlay}: Cluster without a backup destination")
    if spec.get("inheritedMetadata", {}).get("labels", {}).get("smart110.io/role") != "database":
        problems.append(f"{overlay}: Cluster pods not labelled smart110.io/role=database (network policy)")
    backups = [o for o in objects if o.get("kind") == "ScheduledBackup"]
    if not any(b.get("spec", {}).get("cluster", {}).get("name") == _name(clusters[0]) for b in backups):
        problems.append(f"{overlay}: no ScheduledBackup for the Cluster")
    return problems


def all_problems(objects: list[dict]) -> list[str]:
    return (deployment_problems(objects) + pdb_problems(objects) + service_problems(objects)
            + completeness_problems(objects) + hpa_problems(objects))


@pytest.mark.parametrize("overlay", k8s_check.OVERLAYS)
def test_overlay_meets_policy(rendered, overlay):
    assert all_problems(rendered[overlay]) == []


@pytest.mark.parametrize("overlay", k8s_check.OVERLAYS)
def test_database(rendered, overlay):
    assert database_problems(rendered[overlay], overlay) == []


@pytest.mark.parametrize("overlay", k8s_check.OVERLAYS)
def test_services_use_native_grpc_probes_and_drain(rendered, overlay):
    for dep in _of(rendered[overlay], "Deployment"):
        if _name(dep) not in SERVICES:
            continue
        pod = dep["spec"]["template"]["spec"]
        main = pod["containers"][0]
        port = next(p["containerPort"] for p in main["ports"] if p["name"] == "grpc")
        assert main["readinessProbe"]["grpc"]["port"] == port
        assert main["livenessProbe"]["grpc"]["port"] == port
        assert pod.get("topologySpreadConstraints"), _name(dep)
        assert any(c["name"] == "migrate" for c in pod.get("initContainers", [])), _name(dep)
        config = next(o for o in rendered[overlay]
                      if o["kind"] == "ConfigMap" and _name(o).startswith("smart110-config"))
        grace = float(config["data"]["SHUTDOWN_GRACE_SECONDS"])
        pre_stop = main["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] > grace + pre_stop, _name(dep)


@pytest.mark.parametrize("overlay", k8s_check.OVERLAYS)
def test_schema_validation(rendered, overlay):
    errors, skipped, checked = k8s_check.validate(rendered[overlay])
    assert errors == []
    assert checked > 0
    # CloudNativePG here; the monitoring objects by tests/unit/test_k8s_monitoring.py.
    assert all("postgresql.cnpg.io" in s or "monitoring.coreos.com" in s for s in skipped)


def test_gateway_config_points_at_cluster_services():
    import json

    config = json.loads((k8s_check.render_gateway() / "envoy.json").read_text())
    text = json.dumps(config)
    for svc in SERVICES:
        assert f"{svc}.smart110.svc.cluster.local" in text
    assert k8s_check.DESCRIPTOR_MOUNT in text
    assert "otel-collector" in text


@pytest.mark.parametrize("overlay", k8s_check.OVERLAYS)
def test_the_gateway_pod_serves_the_built_front_end_it_was_rendered_for(rendered, overlay):
    """The gateway serves the web front-end in the cluster as it does locally: the routes name the
    build's files under the volume the init container `web` fills from the image, after checking
    them against the digests the config was rendered with."""
    import hashlib
    import json

    from gateway.render import DEFAULT_WEB_DIR

    objects = rendered[overlay]
    dep = next(o for o in objects if o["kind"] == "Deployment" and _name(o) == "gateway")
    pod = dep["spec"]["template"]["spec"]
    init = next(c for c in pod["initContainers"] if c["name"] == "web")
    assert init["image"].split(":")[0].endswith("smart110")
    script = " ".join(init["command"])
    assert "sha256sum -c" in script and script.index("sha256sum") < script.index("cp -R")
    assert "/app/web/app" in script  # where the Dockerfile puts build/web/
    assert "COPY build/web/ web/app/" in (k8s_check.ROOT / "Dockerfile").read_text()
    mounts = {m["name"]: m["mountPath"] for m in init["volumeMounts"]}
    envoy = next(c for c in pod["containers"] if c["name"] == "envoy")
    assert {m["name"]: m["mountPath"] for m in envoy["volumeMounts"]}["web"] == k8s_check.WEB_MOUNT
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["web"] and mounts["web"] == "/web"
    manifest = next(o for o in objects if o["kind"] == "ConfigMap"
                    and _name(o) == volumes["web-manifest"]["configMap"]["name"])
    # Every file a route names, with the digest of the local build, nothing else.
    config = json.loads((k8s_check.GATEWAY_GENERATED / "envoy.json").read_text())
    named = {r["direct_response"]["body"]["filename"]
             for vh in config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]
             ["typed_config"]["route_config"]["virtual_hosts"] for r in vh["routes"]
             if "filename" in r.get("direct_response", {}).get("body", {})
             and r["direct_response"]["body"]["filename"].startswith(k8s_check.WEB_MOUNT + "/")}
    digests = dict(reversed(line.split("  ", 1)) for line in manifest["data"]["web.sha256"].splitlines())
    assert {f"{k8s_check.WEB_MOUNT}/{path}" for path in digests} == named
    assert f"{k8s_check.WEB_MOUNT}/index.html" in named
    for path, digest in digests.items():
        assert hashlib.sha256((DEFAULT_WEB_DIR / path).read_bytes()).hexdigest() == digest


def test_broken_manifests_are_caught(rendered):
    objects = copy.deepcopy(rendered["dev"])
    dep = next(o for o in objects if o["kind"] == "Deployment" and _name(o) == "intake")
    main = dep["spec"]["template"]["spec"]["containers"][0]
    del main["readinessProbe"]
    del main["resources"]["limits"]
    main["securityContext"]["runAsNonRoot"] = False
    dep["spec"]["template"]["spec"]["securityContext"].pop("runAsNonRoot")
    main["securityContext"]["readOnlyRootFilesystem"] = False
    main["securityContext"]["capabilities"]["drop"] = []
    svc = next(o for o in objects if o["kind"] == "Service" and _name(o) == "dispatch")
    svc["spec"]["selector"] = {"app.kubernetes.io/name": "dispatcher"}
    svc["spec"]["ports"][0]["name"] = "rpc"
    objects = [o for o in objects
               if not (o["kind"] == "PodDisruptionBudget" and _name(o) == "alerts")
               and not (o["kind"] == "HorizontalPodAutoscaler" and _name(o) == "scoring")]

    problems = "\n".join(all_problems(objects))
    for expected in ("Deployment/intake container intake: no readinessProbe",
                     "Deployment/intake container intake: no cpu limit",
                     "Deployment/intake container intake: runAsNonRoot not set",
                     "Deployment/intake container intake: root filesystem not read-only",
                     "Deployment/intake container intake: capabilities not dropped",
                     "Deployment/alerts: no PodDisruptionBudget",
                     "Service/dispatch: selector",
                     "Service/dispatch: no port named grpc",
                     "scoring: no HorizontalPodAutoscaler"):
        assert expected in problems
    missing = [o for o in objects if not (o["kind"] == "Deployment" and _name(o) == "referral")]
    assert "referral: no Deployment" in "\n".join(all_problems(missing))
    assert database_problems([], "prod") == ["prod: expected one CloudNativePG Cluster, found 0"]
    broken = copy.deepcopy(objects)
    bad = next(o for o in broken if o["kind"] == "Service")
    bad["spec"]["bogusField"] = 1
    assert k8s_check.validate([bad])[0]


# Which other services each service calls, read from its code: feeds it
# consumes (its EVENT_HANDLERS) and channels it opens
# (`rt.channel("dispatch")`). A NetworkPolicy must let exactly these callers
# (plus the gateway) reach a service: a missing edge breaks the service in a
# cluster, an extra one is access nobody needs.
_CALL = re.compile(r"""\.channel\(\s*["']([a-z0-9]+)["']""")
PACKAGES = {"intake": "intake", "dispatch": "dispatch", "referral": "referral12345", "alerts": "alerts",
            "scoring": "scoring", "warehouse": "warehouse"}


def call_edges() -> set[tuple[str, str]]:
    """Who calls whom: the feeds each service's EVENT_HANDLERS consume, and its outbound channels."""
    edges = set()
    for caller, package in PACKAGES.items():
        spec = importlib.import_module(f"services.{package}.__main__").SPEC
        edges |= {(caller, source) for source in spec.event_handlers if source != caller}
        for path in (k8s_check.ROOT / "services" / package).rglob("*.py"):
            for callee in _CALL.findall(path.read_text(encoding="utf-8")):
                if callee != caller:
                    edges.add((caller, callee))
    return edges


def allowed_callers(objects: list[dict], service: str) -> set[str]:
    policy = next((p for p in _of(objects, "NetworkPolicy") if _name(p) == service), None)
    if policy is None:
        return set()
    callers = set()
    for rule in policy["spec"].get("ingress", []):
        if {"port": "grpc"} not in rule.get("ports", []):
            continue
        for peer in rule.get("from", []):
            name = peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name")
            if name:
                callers.add(name)
    return callers


def network_problems(objects: list[dict], edges: set[tuple[str, str]]) -> list[str]:
    problems = []
    for service in SERVICES:
        needed = {caller for caller, callee in edges if callee == service} | {"gateway"}
        allowed = allowed_callers(objects, service)
        problems += [f"NetworkPolicy/{service}: {c} calls {service} but may not reach it"
                     for c in sorted(needed - allowed)]
        problems += [f"NetworkPolicy/{service}: lets {c} in, which never calls it" for c in sorted(allowed - needed)]
    return problems


def test_call_edges_are_read_from_the_code():
    edges = call_edges()
    # The report flow: dispatch, referral, alerts and scoring follow intake's feed.
    assert {("dispatch", "intake"), ("referral", "intake"), ("alerts", "intake")} <= edges
    assert all(callee in SERVICES or callee == "antifraud" for _, callee in edges), edges


@pytest.mark.parametrize("overlay", k8s_check.OVERLAYS)
def test_network_policies_match_the_call_edges(rendered, overlay):
    edges = {(a, b) for a, b in call_edges() if b in SERVICES}
    assert network_problems(rendered[overlay], edges) == []
    # ...and the check fails when an edge is missing or superfluous.
    assert network_problems(rendered[overlay], edges | {("scoring", "alerts")}) == [
        "NetworkPolicy/alerts: scoring calls alerts but may not reach it"]
    some = sorted(edges)[0]
    assert network_problems(rendered[overlay], edges - {some}) == [
        f"NetworkPolicy/{some[1]}: lets {some[0]} in, which never calls it"]


@pytest.mark.parametrize("overlay", k8s_check.OVERLAYS)
def test_every_service_verifies_callers_and_presents_its_own_credential(rendered, overlay):
    services = [d for d in _of(rendered[overlay], "Deployment") if _name(d) in SERVICES]
    assert services
    for dep in services:
        pod = dep["spec"]["template"]["spec"]
        main = pod["containers"][0]
        env = {e["name"]: e.get("value") for e in main.get("env", [])}
        mounts = {m["mountPath"]: m["name"] for m in main.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        for var in ("JWT_JWKS_PATH", "SERVICE_JWKS_PATH", "SERVICE_TOKEN_FILE"):
            path = env.get(var)
            assert path, f"{_name(dep)}: {var} not set"
            mount = max((m for m in mounts if path.startswith(m + "/")), key=len, default=None)
            assert mount, f"{_name(dep)}: {var}={path} is on no mounted volume"
        token_volume = volumes[mounts[max((m for m in mounts if env["SERVICE_TOKEN_FILE"].startswith(m + "/")),
                                          key=len)]]
        sources = token_volume["projected"]["sources"]
        sa = next(s["serviceAccountToken"] for s in sources if "serviceAccountToken" in s)
        assert sa["audience"] == "smart110" and sa["expirationSeconds"] <= 3600, _name(dep)
