"""The monitoring objects (k8s/components/monitoring) as `make k8s-check` checks them: alert rules
parsed with promql-parser over metrics that exist, the Grafana dashboard, the scrape
configuration; and each check shown to fail on a broken input."""
from __future__ import annotations

import copy
import json

import pytest
import yaml

from tools import k8s_check

SERVICES = ("intake", "dispatch", "referral", "alerts", "scoring", "warehouse")
SERVER_FAULTS = {"INTERNAL", "UNKNOWN", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS"}


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return k8s_check.render_all()


@pytest.fixture(scope="module")
def known() -> dict[str, set[str]]:
    return k8s_check.exported_metrics()


def _of(objects, kind):
    return [o for o in objects if o.get("kind") == kind]


def _rule(objects, alert):
    return next(r for pr in _of(objects, "PrometheusRule") for g in pr["spec"]["groups"] for r in g["rules"]
                if r.get("alert") == alert)


def _dashboard(objects) -> tuple[dict, dict]:
    cm = next(o for o in _of(objects, "ConfigMap") if "grafana_dashboard" in o["metadata"].get("labels", {}))
    return cm, json.loads(cm["data"]["smart110.json"])


@pytest.mark.parametrize("overlay", k8s_check.OVERLAYS)
def test_monitoring_objects_pass_every_check(rendered, overlay):
    assert k8s_check.monitoring_problems(rendered[overlay]) == []


def test_the_readme_table_is_shipped_as_rules(rendered):
    alerts = {r["alert"] for pr in _of(rendered["prod"], "PrometheusRule") for g in pr["spec"]["groups"]
              for r in g["rules"]}
    assert {"Smart110ServiceDown", "Smart110HighRpcErrorRate", "Smart110FeedLag", "Smart110FeedEventsParked",
            "Smart110OutboxBacklog", "Smart110OversizedEvent", "Smart110AnswerSLABreach",
            "Smart110DispatchSLABreach", "Smart110PodRestarts", "Smart110DatabaseDown", "Smart110CallsShed",
            "Smart110WorkOrdersOverdue", "Smart110Gateway5xx", "Smart110GatewayUpstream5xx"} <= alerts
    # Every alert has its runbook section, and every section heading an alert has is linked.
    sections = k8s_check.runbook_sections()
    assert {a.lower() for a in alerts} <= sections


def test_the_error_rate_counts_only_server_faults_and_leaves_cancelled_streams_out(rendered):
    import promql_parser

    expr = _rule(rendered["prod"], "Smart110HighRpcErrorRate")["expr"]
    matchers = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector) and node.name == "smart110_rpc_requests_total":
            matchers.append({(m.name, str(m.op), m.value) for m in node.matchers.matchers})
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    errors = [m for m in matchers if any(op.endswith(".Re") for _n, op, _v in m)]
    totals = [m for m in matchers if m not in errors]
    assert errors and all({v for n, op, v in m if n == "code"} == {"|".join(
        ["INTERNAL", "UNKNOWN", "UNAVAILABLE", "DEADLINE_EXCEEDED", "DATA_LOSS"])} for m in errors)
    assert set(next(v for n, _op, v in errors[0] if n == "code").split("|")) == SERVER_FAULTS
    assert totals and all(("code", "MatchOp.NotEqual", "CANCELLED") in m for m in totals)


def test_the_dashboard_keeps_streams_apart_and_splits_sla_by_priority_and_channel(rendered):
    _cm, dash = _dashboard(rendered["prod"])
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    rpc = [e for e in exprs if "smart110_rpc_requests_total" in e or "smart110_rpc_duration_seconds" in e]
    assert rpc and all("grpc_type" in e for e in rpc)
    sla = [e for e in exprs if "smart110_sla_seconds" in e]
    assert any("by (le, priority)" in e for e in sla) and any("by (le, channel)" in e for e in sla)
    for family in ("smart110_feed_lag_seconds", "smart110_feed_stream_backlog", "smart110_rpc_shed_total",
                   "smart110_work_orders_overdue", "smart110_work_orders_due_soon", "envoy_http_downstream_rq_xx"):
        assert any(family in e for e in exprs), family


def test_every_service_and_the_gateway_are_scraped(rendered):
    objects = rendered["prod"]
    monitored = {m["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]
                 for m in _of(objects, "ServiceMonitor")}
    assert monitored == set(SERVICES)
    [gateway] = _of(objects, "PodMonitor")
    assert gateway["spec"]["podMetricsEndpoints"][0]["path"] == "/stats/prometheus"
    # The stats listener answers only /stats/prometheus, proxied to the admin interface on loopback.
    config = json.loads((k8s_check.GATEWAY_GENERATED / "envoy.json").read_text())
    [stats] = [li for li in config["static_resources"]["listeners"] if li["name"] == "stats"]
    assert stats["address"]["socket_address"]["port_value"] == k8s_check.GATEWAY_STATS_PORT
    routes = stats["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"][0]["routes"]
    assert routes[0]["match"]["path"] == "/stats/prometheus" and routes[-1]["direct_response"]["status"] == 404
    # The monitoring namespace may reach the stats port, nothing else new.
    policy = next(p for p in _of(objects, "NetworkPolicy") if p["metadata"]["name"] == "gateway")
    assert [p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"]] == ["http", "stats"]


# -- each check fails on a broken input -------------------------------------------------------

def test_a_broken_expression_is_caught(known):
    problems = k8s_check.expression_problems("sum by (service (rate(smart110_rpc_requests_total[5m]))", "r", known)
    assert len(problems) == 1 and "PromQL does not parse" in problems[0]
    assert "does not parse" in k8s_check.expression_problems("rate(smart110_rpc_shed_total[5m]) > ", "r", known)[0]
    assert "does not parse" in k8s_check.expression_problems("no_such_function(up)", "r", known)[0]


def test_an_unknown_metric_or_label_is_caught(known):
    [problem] = k8s_check.expression_problems("rate(smart110_rpc_requests_totl[5m]) > 0", "r", known)
    assert "unknown metric smart110_rpc_requests_totl" in problem
    [problem] = k8s_check.expression_problems('smart110_feed_lag_seconds{stage="answer"} > 1', "r", known)
    assert "smart110_feed_lag_seconds has no label stage" in problem
    assert k8s_check.expression_problems('envoy_cluster_upstream_rq_xxx > 1', "r", known)
    # What the runtime defines, with the labels it gives them, and target labels, pass.
    assert k8s_check.expression_problems(
        'histogram_quantile(0.9, sum by (le) (rate(smart110_sla_seconds_bucket{stage="answer", priority="1", '
        'channel="PHONE", namespace="smart110"}[5m]))) > 3', "r", known) == []
    assert k8s_check.expression_problems("smart110_work_orders_overdue{department=\"D01\"} > 0", "r", known) == []


def test_broken_rules_are_caught(rendered):
    objects = copy.deepcopy(rendered["prod"])
    pr = _of(objects, "PrometheusRule")[0]
    rules = {r["alert"]: r for g in pr["spec"]["groups"] for r in g["rules"]}
    rules["Smart110FeedLag"]["expr"] = "max by (service, source) (smart110_feed_lag_second) > 60"
    del rules["Smart110OutboxBacklog"]["for"]
    rules["Smart110CallsShed"]["labels"]["severity"] = "page-me"
    rules["Smart110FeedEventsParked"]["annotations"]["summary"] = "events parked"
    rules["Smart110AnswerSLABreach"]["annotations"]["runbook_url"] = k8s_check.RUNBOOK_URL + "#no-such-section"
    rules["Smart110DatabaseDown"]["annotations"]["runbook_url"] = "https://wiki.example/db"
    rules["Smart110Gateway5xx"]["expr"] = "sum(rate(envoy_http_downstream_rq_xx[5m]) > 0.05"
    problems = "\n".join(k8s_check.rule_problems(objects))
    for expected in ("Smart110FeedLag: unknown metric smart110_feed_lag_second",
                     "Smart110OutboxBacklog: no valid for: duration",
                     "Smart110CallsShed: severity label not one of",
                     "Smart110FeedEventsParked: summary must be in Chinese and English",
                     "Smart110AnswerSLABreach: runbook_url names #no-such-section",
                     "Smart110DatabaseDown: runbook_url 'https://wiki.example/db' is not",
                     "Smart110Gateway5xx: PromQL does not parse"):
        assert expected in problems
    assert k8s_check.rule_problems([o for o in objects if o["kind"] != "PrometheusRule"]) == [
        "no PrometheusRule rendered"]
    pr["spec"]["groups"][0]["rules"].append(copy.deepcopy(pr["spec"]["groups"][0]["rules"][0]))
    assert "alert defined twice" in "\n".join(k8s_check.rule_problems(objects))


def test_a_broken_dashboard_is_caught(rendered):
    objects = copy.deepcopy(rendered["prod"])
    cm, dash = _dashboard(objects)
    cm["data"]["smart110.json"] = cm["data"]["smart110.json"][:-10]
    assert "not JSON" in k8s_check.dashboard_problems(objects)[0]

    broken = copy.deepcopy(dash)
    del broken["uid"]
    broken["panels"][1]["gridPos"]["w"] = 30
    del broken["panels"][2]["targets"]
    cm["data"]["smart110.json"] = json.dumps(broken)
    problems = "\n".join(k8s_check.dashboard_problems(objects))
    assert "'uid' is a required property" in problems
    assert "/panels/1/gridPos/w" in problems and "/panels/2: 'targets' is a required property" in problems

    broken = copy.deepcopy(dash)
    panel = next(p for p in broken["panels"] if p["type"] != "row")
    panel["targets"][0]["expr"] = 'sum(rate(smart110_rpc_requests_total{service=~"$svc"}[$__rate_interval]))'
    other = next(p for p in broken["panels"] if p["type"] != "row" and p is not panel)
    other["targets"][0]["expr"] = "max(smart110_work_order_overdue)"
    broken["panels"][-1]["id"] = broken["panels"][0]["id"]
    cm["data"]["smart110.json"] = json.dumps(broken)
    problems = "\n".join(k8s_check.dashboard_problems(objects))
    assert "variable $svc is not defined" in problems
    assert "unknown metric smart110_work_order_overdue" in problems
    assert "panel ids are not unique" in problems
    unlabelled = [o for o in objects if o is not cm]
    assert k8s_check.dashboard_problems(unlabelled) == ["no ConfigMap labelled grafana_dashboard rendered"]


def test_broken_monitors_are_caught(rendered):
    objects = copy.deepcopy(rendered["prod"])
    monitors = {m["metadata"]["name"]: m for m in objects if m["kind"] in ("ServiceMonitor", "PodMonitor")}
    monitors["intake"]["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] = "intake-svc"
    monitors["dispatch"]["spec"]["endpoints"][0]["port"] = "prometheus"
    monitors["gateway"]["spec"]["podMetricsEndpoints"][0]["port"] = "admin-stats"
    problems = "\n".join(k8s_check.monitor_problems(objects))
    assert "ServiceMonitor/intake: selector" in problems and "matches no Service" in problems
    assert "ServiceMonitor/dispatch: port 'prometheus' is no named port of the selected Service" in problems
    assert "PodMonitor/gateway: port 'admin-stats' is no named port of the selected pod" in problems
    assert "ServiceMonitor/referral" not in problems


def test_metric_names_come_from_the_runtime(known):
    for name in ("smart110_rpc_requests_total", "smart110_rpc_duration_seconds_bucket", "smart110_rpc_shed_total",
                 "smart110_feed_lag_seconds", "smart110_sla_seconds_bucket", "smart110_work_orders_overdue"):
        assert name in known, name
    assert known["smart110_sla_seconds_bucket"] >= {"service", "stage", "priority", "channel", "le"}
    assert known["smart110_work_orders_overdue"] == {"service", "department"}
    assert "smart110_rpc_requests" not in known


def test_the_rules_file_is_plain_yaml_with_one_object():
    path = k8s_check.K8S / "components" / "monitoring" / "prometheusrule.yaml"
    [doc] = list(yaml.safe_load_all(path.read_text()))
    assert doc["apiVersion"] == "monitoring.coreos.com/v1" and doc["kind"] == "PrometheusRule"


def test_a_scrape_the_network_policies_block_is_caught(rendered):
    objects = copy.deepcopy(rendered["prod"])
    assert k8s_check.scrape_policy_problems(objects) == []
    gateway = next(p for p in _of(objects, "NetworkPolicy") if p["metadata"]["name"] == "gateway")
    gateway["spec"]["ingress"] = gateway["spec"]["ingress"][:1]
    scoring = next(p for p in _of(objects, "NetworkPolicy") if p["metadata"]["name"] == "scoring")
    for rule in scoring["spec"]["ingress"]:
        rule["ports"] = [p for p in rule["ports"] if p["port"] != "metrics"] or [{"port": "grpc"}]
    assert sorted(k8s_check.scrape_policy_problems(objects)) == [
        "PodMonitor/gateway: no NetworkPolicy lets the monitoring namespace reach port 'stats' of pods gateway",
        "ServiceMonitor/scoring: no NetworkPolicy lets the monitoring namespace reach port 'metrics' of pods scoring"]
    # Without NetworkPolicies nothing is blocked.
    assert k8s_check.scrape_policy_problems([o for o in objects if o["kind"] != "NetworkPolicy"]) == []
