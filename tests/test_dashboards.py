"""The Grafana dashboards (roles/monitoring/files/grafana) and rtclient.dashboards, without Grafana or
Prometheus: every dashboard is provisioning-ready JSON whose panels all query the `${datasource}`
variable, every query reads only metrics the stack's scrape jobs export (METRICS: the monitoring
contract, roles/monitoring/README.md "Scrape jobs", each name checked in its exporter's source) from
the job that exports them, filtered by `$host`; the helpers turn each query into a plain instant
query. Running every query against a real Prometheus is the integration test's part."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from rtclient import dashboards as dash
from rtclient.dashboards import (
    DashboardError,
    PanelQuery,
    dashboard_paths,
    instant_expr,
    metric_names,
    panel_queries,
)

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "roles/monitoring/files/grafana"
PROVIDER = GRAFANA / "provisioning/dashboards/rtstack.yml"
EXPECTED = {"rtstack-centrifugo", "rtstack-redis", "rtstack-django"}
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}

# Metric name -> (scrape jobs exporting it, counter?). Counters must be read through rate().
# Centrifugo v6.9.6 (centrifugo internal/metrics/metrics.go, centrifuge metrics.go; its Go client
# appends no _total), prometheus-redis-exporter 1.45/1.69 (exporter/exporter.go, sentinels.go),
# django-prometheus 2.x (middleware.py, db/metrics.py; prometheus_client appends _total to counters).
_ANY = frozenset({"prometheus", "alertmanager", "node", "centrifugo", "redis", "redis_sentinel", "postgresql",
                  "nginx", "nginx_log", "django", "blackbox_https", "blackbox_websocket", "blackbox_django"})
_C, _R, _RS, _D = {"centrifugo"}, {"redis"}, {"redis_sentinel"}, {"django"}
METRICS: dict[str, tuple[frozenset[str] | set[str], bool]] = {
    "up": (_ANY, False),
    "probe_success": ({"blackbox_https", "blackbox_websocket", "blackbox_django"}, False),
    # Centrifugo (centrifuge's node/broker metrics and Centrifugo's own proxy/API metrics).
    "centrifugo_node_num_nodes": (_C, False),
    "centrifugo_node_num_clients": (_C, False),
    "centrifugo_node_num_users": (_C, False),
    "centrifugo_node_num_subscriptions": (_C, False),
    "centrifugo_node_num_channels": (_C, False),
    "centrifugo_node_messages_sent_count": (_C, True),
    "centrifugo_node_messages_received_count": (_C, True),
    "centrifugo_node_pub_sub_lag_seconds_bucket": (_C, True),
    "centrifugo_broker_redis_pub_sub_errors": (_C, True),
    "centrifugo_proxy_duration_seconds_histogram_bucket": (_C, True),
    "centrifugo_proxy_errors": (_C, True),
    "centrifugo_api_command_duration_seconds_histogram_count": (_C, True),
    "centrifugo_api_command_errors_total": (_C, True),
    "process_open_fds": (_C, False),
    "process_max_fds": (_C, False),
    "process_resident_memory_bytes": (_C, False),
    "go_memstats_heap_inuse_bytes": (_C, False),
    # prometheus-redis-exporter on the Redis servers and on the Sentinels.
    "redis_up": (_R | _RS, False),
    "redis_instance_info": (_R | _RS, False),
    "redis_connected_slaves": (_R, False),
    "redis_master_link_up": (_R, False),
    "redis_connected_clients": (_R | _RS, False),
    "redis_memory_used_bytes": (_R | _RS, False),
    "redis_commands_processed_total": (_R | _RS, True),
    "redis_pubsub_channels": (_R, False),
    "redis_sentinel_masters": (_RS, False),
    "redis_sentinel_master_status": (_RS, False),
    "redis_sentinel_master_sentinels": (_RS, False),
    "redis_sentinel_master_ok_sentinels": (_RS, False),
    "redis_sentinel_master_slaves": (_RS, False),
    "redis_sentinel_master_ok_slaves": (_RS, False),
    # django-prometheus.
    "django_http_requests_total_by_method_total": (_D, True),
    "django_http_responses_total_by_status_total": (_D, True),
    "django_http_requests_latency_seconds_by_view_method_bucket": (_D, True),
    "django_db_execute_total": (_D, True),
    "django_db_errors_total": (_D, True),
    "django_db_query_duration_seconds_bucket": (_D, True),
    "django_db_new_connections_total": (_D, True),
    "django_db_new_connection_errors_total": (_D, True),
}

SELECTOR = re.compile(r"(?<![\w:])([A-Za-z_:][\w:]*)\{([^{}]*)\}")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def load(path: Path) -> dict:
    return json.loads(path.read_text())


ALL_PATHS = dashboard_paths()
ALL_QUERIES = [q for path in ALL_PATHS for q in panel_queries(path)]


def query_id(query: PanelQuery) -> str:
    return f"{query.dashboard}/{query.panel}/{query.ref_id}"


def test_the_three_dashboards_are_there():
    assert {path.stem for path in ALL_PATHS} == EXPECTED
    assert all(path.parent == dash.DASHBOARD_DIR for path in ALL_PATHS)


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: p.stem)
def test_dashboard_document(path):
    data = load(path)
    assert data["uid"] == path.stem and data["title"].startswith("rtstack / ")
    assert data["id"] is None and data["schemaVersion"] == 39
    assert isinstance(data["panels"], list) and data["panels"]
    assert "rtstack" in data["tags"]
    variables = {v["name"]: v for v in data["templating"]["list"]}
    assert set(variables) <= {"datasource", "host"}
    ds = variables["datasource"]
    assert ds["type"] == "datasource" and ds["query"] == "prometheus"
    if "host" in variables:
        host = variables["host"]
        assert host["type"] == "query" and host["multi"] and host["includeAll"]
        assert host["datasource"] == DATASOURCE
        query = host["query"]["query"] if isinstance(host["query"], dict) else host["query"]
        assert re.fullmatch(r'label_values\(up\{job=~?"[\w|]+"\}, host\)', query)


@pytest.mark.parametrize("path", ALL_PATHS, ids=lambda p: p.stem)
def test_panels(path):
    panels = dash.iter_panels(load(path)["panels"])
    graphs = [p for p in panels if p["type"] != "row"]
    assert 6 <= len(graphs) <= 10
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in panels:
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"} and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24
        if panel["type"] == "row":
            assert panel.get("datasource", DATASOURCE) == DATASOURCE
            continue
        assert panel["type"] in {"timeseries", "stat"}
        assert panel["title"] and panel["description"]
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, (panel["title"], target["refId"])
            assert isinstance(target["expr"], str) and target["expr"].strip()


def test_every_datasource_reference_is_the_variable():
    def walk(node, where):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "datasource":
                    assert value == DATASOURCE, f"{where}: {value!r}"
                walk(value, where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    for path in ALL_PATHS:
        data = load(path)
        walk(data["panels"], path.stem)
        for variable in data["templating"]["list"]:
            if variable["type"] != "datasource":
                walk(variable, f"{path.stem} variable {variable['name']}")


@pytest.mark.parametrize("query", ALL_QUERIES, ids=query_id)
def test_query_reads_only_contract_metrics_from_their_jobs(query):
    names = metric_names(query.expr)
    assert names, "a query selects at least one metric"
    unknown = names - set(METRICS)
    assert not unknown, f"not in the monitoring contract (typo?): {sorted(unknown)}"
    selectors = SELECTOR.findall(query.expr)
    assert {name for name, _ in selectors} == names, "every metric is selected with label matchers"
    for name, matchers in selectors:
        labels = {label: (op, value) for label, op, value in MATCHER.findall(matchers)}
        assert labels.get("host") == ("=~", "$host"), f"{name}: filter by host=~\"$host\""
        assert "job" in labels and labels["job"][0] in {"=", "=~"}, f"{name}: select the scrape job"
        jobs = set(labels["job"][1].split("|"))
        assert jobs <= METRICS[name][0], f"{name} is not exported by job(s) {sorted(jobs)}"


@pytest.mark.parametrize("query", ALL_QUERIES, ids=query_id)
def test_counters_through_rate_and_histograms_through_quantile(query):
    for name in metric_names(query.expr):
        if METRICS[name][1]:
            assert re.search(rf"\brate\(\s*{name}\{{[^}}]*\}}\[\$__rate_interval\]\)", query.expr), \
                f"counter {name} must be read as rate({name}{{...}}[$__rate_interval])"
        if name.endswith("_bucket"):
            assert re.search(r"histogram_quantile\(0\.\d+, sum by \(le\b", query.expr), \
                f"{name}: histogram_quantile(q, sum by (le, ...) (rate(...)))"
    assert "centrifugo_proxy_duration_seconds{" not in query.expr, "the summary is deprecated"


@pytest.mark.parametrize("query", ALL_QUERIES, ids=query_id)
def test_only_known_grafana_variables(query):
    used = set(re.findall(r"\$\{?(\w+)", query.expr))
    assert used <= {"host", "__rate_interval"}
    expr = instant_expr(query.expr, host_regex="mol-.*", rate_interval="1m")
    assert "$" not in expr and '"mol-.*"' in expr
    if "rate(" in query.expr:
        assert "[1m]" in expr
    assert "$" not in instant_expr(query.expr)


def test_vector_fallbacks_keep_their_labels():
    # `x or vector(0)` would add an unlabelled 0 beside a `sum by` result: `or on() vector(0)` adds
    # it only when the left side is empty.
    for query in ALL_QUERIES:
        if "vector(0)" in query.expr:
            assert query.expr.endswith(" or on() vector(0)") or "or on() vector(0))" in query.expr, query_id(query)


def test_provider_file():
    doc = yaml.safe_load(PROVIDER.read_text())
    assert doc["apiVersion"] == 1
    (provider,) = doc["providers"]
    assert provider["type"] == "file" and provider["folder"] == "rtstack"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards/rtstack"


# rtclient.dashboards on its own.

def write(tmp_path: Path, data) -> Path:
    path = tmp_path / "board.json"
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_panel_queries_look_into_rows(tmp_path):
    board = {"uid": "b", "panels": [
        {"type": "row", "title": "open", "panels": []},
        {"type": "stat", "title": "one", "targets": [{"refId": "A", "expr": "up"},
                                                      {"refId": "B", "expr": "down", "hide": True}]},
        {"type": "row", "title": "closed", "collapsed": True, "panels": [
            {"type": "timeseries", "title": "two",
             "targets": [{"refId": "A", "expr": "x"}, {"refId": "B", "expr": "y"}]},
        ]},
        {"type": "text", "title": "note"},
    ]}
    assert panel_queries(write(tmp_path, board)) == [
        PanelQuery("b", "one", "A", "up"), PanelQuery("b", "two", "A", "x"), PanelQuery("b", "two", "B", "y")]


@pytest.mark.parametrize("content, message", [
    ("{not json", "not JSON"),
    ([], "not a JSON object"),
    ({"panels": []}, "no uid"),
    ({"uid": "b"}, "no panels"),
    ({"uid": "b", "panels": [{"title": "p", "targets": [{"refId": "A", "expr": " "}]}]}, "'p': target A has no expr"),
    ({"uid": "b", "panels": [{"title": "p", "targets": [{"expr": "up"}]}]}, "no refId"),
])
def test_panel_queries_errors(tmp_path, content, message):
    with pytest.raises(DashboardError, match=re.escape(message)):
        panel_queries(write(tmp_path, content))


def test_panel_queries_missing_file(tmp_path):
    with pytest.raises(OSError):
        panel_queries(tmp_path / "absent.json")


def test_instant_expr():
    expr = 'sum by (le) (rate(x_bucket{job="j",host=~"$host"}[$__rate_interval])) / y{host=~"${host}"}'
    assert instant_expr(expr) == 'sum by (le) (rate(x_bucket{job="j",host=~".+"}[1m])) / y{host=~".+"}'
    assert instant_expr(expr, host_regex="mol-ha-.*", rate_interval="2m") == \
        'sum by (le) (rate(x_bucket{job="j",host=~"mol-ha-.*"}[2m])) / y{host=~"mol-ha-.*"}'
    # The regex lands in a double-quoted PromQL string: backslashes and quotes are escaped.
    assert instant_expr('up{host=~"$host"}', host_regex=r'a\.b"') == r'up{host=~"a\\.b\""}'
    assert instant_expr("rate(x[$__interval]) + rate(x[${__rate_interval}]) + [[host]]",
                        rate_interval="1m30s", interval="30s") == "rate(x[30s]) + rate(x[1m30s]) + .+"
    assert instant_expr('up{host=~"${host:regex}"}', host_regex="h") == 'up{host=~"h"}'


@pytest.mark.parametrize("kwargs, message", [
    ({"expr": 'up{x="$nope"}'}, "unknown Grafana variable '$nope'"),
    ({"expr": "rate(x[$__range])"}, "'$__range'"),
    ({"expr": "up", "rate_interval": "1 minute"}, "rate_interval '1 minute'"),
    ({"expr": "up", "interval": "5"}, "interval '5'"),
])
def test_instant_expr_errors(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        instant_expr(**kwargs)


def test_metric_names():
    assert metric_names('sum by (le, node) (rate(a_bucket{job="c",host=~"$host"}[$__rate_interval]))') == {"a_bucket"}
    assert metric_names('histogram_quantile(0.99, b) or on() vector(0)') == {"b"}
    assert metric_names('count(c{x="or by(y)"} == 0) / ignoring(i) group_left(role) d * 1e3') == {"c", "d"}
    assert metric_names("max without (instance) (up offset 5m) and bool e") == {"up", "e"}
