"""The benchmark's arithmetic and report: percentiles, payload size, the Centrifugo/Channels
ratio and the targets' verdicts, on a hand-made result document (no stack needed)."""

from __future__ import annotations

import json

from bench import load, report


def test_percentile_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert load.percentile(values, 50) == 50.0
    assert load.percentile(values, 99) == 99.0
    assert load.percentile([], 50) is None


def test_payload_is_the_requested_size():
    data = load.payload(7, size=100)
    assert data["seq"] == 7
    assert len(json.dumps(data, separators=(",", ":"))) == 100


def test_receipts_read_the_load_generators_tally_with_numbered_messages():
    # bench/loadgen/receipts.go reports JSON, whose object keys are strings (its own tests: go test).
    receipts = load.Receipts.from_report({"latencies": [0.5, 0.25], "count_by_seq": {"3": 2},
                                          "first_by_seq": {"3": 10.25}, "last_by_seq": {"3": 10.5},
                                          "ts_by_seq": {"3": 10.0}, "last_receipt": 10.5})
    assert receipts.delivered == 2
    assert receipts.count_by_seq == {3: 2}
    assert receipts.last_by_seq[3] - receipts.first_ts(3) == 0.5
    assert load.Receipts.from_report({"latencies": [], "last_receipt": 0}).last_receipt is None


def document(centrifugo_fanout, channels_fanout, warm=0.1):
    def path(fanout):
        return {"fanout": {"deliveries_per_server_cpu_second": fanout, "latency_ms": {"p50": 1, "p99": 2},
                           "server_cpu_seconds": 5.0, "client_cpu_seconds": 2.0},
                "django_latency": {"last_subscriber_ms": {"p50": 5, "p99": 20}, "subscribers": 1000,
                                   "server_cpu_seconds": 2.0, "client_cpu_seconds": 1.0},
                "idle_memory": [{"connections": 1000, "bytes_per_connection": 40000,
                                 "bytes_per_connection_above_idle": 20000,
                                 "above_idle_per_connection_by_process": {"nginx": 12000, "centrifugo": 8000}}],
                "burst": [{"auth": "jwt", "clients": 5000, "connections_per_second": 2500, "error_count": 0,
                           "connections_per_server_cpu_second": 900, "server_cpu_seconds": 5.6,
                           "client_cpu_seconds": 3.0, "handshake_ms": {"p50": 10, "p99": 50}}]}
    return {"paths": {"centrifugo": path(centrifugo_fanout), "channels": path(channels_fanout)},
            "deployment": {"strategies": {"default": {"warm": {"s_per_task_host": warm}}}}}


def test_summary_ratio_and_targets():
    summary = report.summary(document(40000, 4000))
    assert summary["fanout_ratio_centrifugo_vs_channels"] == 10.0
    statuses = {name: t["status"] for name, t in summary["targets"].items()}
    assert statuses == {name: "met" for name in report.TARGETS}


def test_summary_reports_missed_and_not_measured():
    doc = document(10000, 4000, warm=0.3)
    doc["paths"]["centrifugo"]["burst"][0]["error_count"] = 3
    del doc["paths"]["channels"]
    statuses = {name: t["status"] for name, t in report.summary(doc)["targets"].items()}
    assert statuses["fanout_per_cpu_centrifugo"] == "missed"
    assert statuses["fanout_ratio"] == "not measured"
    assert statuses["burst_jwt"] == "missed"
    assert statuses["warm_converge"] == "missed"


def test_a_figure_whose_load_client_spent_more_cpu_than_the_servers_is_never_met():
    """The performance issue's rule: client CPU above server CPU flags the figure client-bound (in the JSON and
    the table), and a figure without the client's CPU is not counted as met either."""
    doc = document(40000, 4000)
    doc["paths"]["centrifugo"]["fanout"]["client_cpu_seconds"] = 9.98  # the 2026 baseline: 9.98 against 5.49
    doc["paths"]["centrifugo"]["fanout"]["server_cpu_seconds"] = 5.49
    del doc["paths"]["centrifugo"]["django_latency"]["client_cpu_seconds"]
    doc["paths"]["centrifugo"]["burst"][0]["clients"] = 2000
    targets = report.summary(doc)["targets"]
    assert targets["fanout_per_cpu_centrifugo"]["status"] == "client-bound"
    assert targets["fanout_per_cpu_centrifugo"]["client_bound"] is True
    assert targets["fanout_ratio"]["status"] == "client-bound"  # either path's client makes the ratio unsound
    assert targets["django_p99"]["status"] == "client CPU not measured"
    assert targets["django_p99"]["client_bound"] is None
    assert targets["burst_jwt"]["status"] == "missed"  # 900 per server CPU-second, but at 2000 clients, not 5000
    doc["paths"]["centrifugo"]["django_latency"]["client_cpu_seconds"] = 1.0
    doc["paths"]["centrifugo"]["django_latency"]["subscribers"] = 200  # a small run: 20 ms, but not of 1000
    assert report.summary(doc)["targets"]["django_p99"]["status"] == "missed"
    del doc["paths"]["centrifugo"]["django_latency"]["client_cpu_seconds"]
    assert targets["burst_jwt"]["client_bound"] is False
    assert targets["idle_memory"]["status"] == "met" and targets["idle_memory"]["client_bound"] is None
    # The step with the most connections counts (the goal is stated at 5k), not the worst one.
    doc["paths"]["centrifugo"]["idle_memory"].insert(0, {"connections": 5000, "bytes_per_connection_above_idle": 50000,
                                                         "above_idle_per_connection_by_process": {}})
    assert report.summary(doc)["targets"]["idle_memory"]["status"] == "missed"
    doc["summary"] = report.summary(doc)
    table = report.markdown(doc)
    assert "| fan-out through Centrifugo >= 25k deliveries per server CPU-second | 40,000 | yes | client-bound |" in table


def test_report_files(tmp_path):
    doc = document(40000, 4000)
    doc["started"] = "2026-01-01T00:00:00Z"
    doc["summary"] = report.summary(doc)
    written = report.write(doc, tmp_path)
    assert {p.suffix for p in written} == {".json", ".md", ".png"}
    assert "fanout_ratio_centrifugo_vs_channels" in (tmp_path / "latest.md").read_text()
    assert json.loads((tmp_path / "latest.json").read_text())["summary"]["fanout_ratio_centrifugo_vs_channels"] == 10.0


def test_every_measurement_reports_its_cpu_figures_the_same_way():
    """bench.stack.Sample.cpu_figures: what fan-out, the burst and Django's latency report for client_bound."""
    from bench.stack import Sample

    before = Sample({"nginx": 1.0, "centrifugo": 2.0}, {})
    after = Sample({"nginx": 1.5, "centrifugo": 4.25}, {})
    figures = after.cpu_figures(before, ("nginx", "centrifugo"), {"loadgen": 3.0, "python": 0.14159})
    assert figures == {"server_cpu_seconds": 2.75, "server_cpu_seconds_by_process": {"nginx": 0.5, "centrifugo": 2.25},
                       "client_cpu_seconds": 3.142, "client_cpu_seconds_by_process": {"loadgen": 3.0, "python": 0.142}}
    assert report.client_bound(figures) is True


def test_capacity_model_sizes_each_tier_from_the_measured_unit_costs():
    """bench.capacity: deliveries = connections x rate; hosts from CPU or memory, whichever binds."""
    from bench import capacity

    figures = capacity.Figures(centrifugo_deliveries_per_cpu_second=30_000, nginx_deliveries_per_cpu_second=40_000,
                               centrifugo_bytes_per_connection=50_000, nginx_bytes_per_connection=40_000)
    small = capacity.size(figures, 10_000, 1)
    assert (small.deliveries_per_second, small.publications_per_second) == (10_000, 10)
    assert (small.centrifugo_hosts, small.nginx_hosts, small.redis_shards) == (2, 1, 1)  # at least 2 Centrifugo
    big = capacity.size(figures, 1_000_000, 100, host_cores=8, host_memory_gib=16)
    # 100M deliveries/s at 30k per core = 3333 cores, 4.8 usable per host -> 695 hosts; CPU binds, not memory
    assert big.centrifugo_hosts == 695 and big.centrifugo_cores == 3333.3
    # 100k publications/s, each to Redis once and to all 695 nodes: 69.6M PUB/SUB msg/s over 390k per shard
    assert big.redis_shards == 179
    memory_bound = capacity.size(figures, 1_000_000, 1, host_cores=64, host_memory_gib=16)
    assert memory_bound.centrifugo_hosts == 5  # 46.6 GiB at 9.6 GiB usable per host
    assert "| 1,000,000 | 100 |" in capacity.table(figures)
    doc = {"paths": {"centrifugo": {
        "fanout": {"deliveries": 90_000, "server_cpu_seconds_by_process": {"centrifugo": 3.0, "nginx": 2.0}},
        "idle_memory": [{"connections": 5000, "above_idle_per_connection_by_process": {"centrifugo": 50, "nginx": 40}},
                        {"connections": 1000, "above_idle_per_connection_by_process": {"centrifugo": 99, "nginx": 99}}]}}}
    assert capacity.Figures.from_results(doc) == capacity.Figures(30_000, 45_000, 50, 40)


def test_capacity_model_counts_what_idle_connections_cost_in_cpu():
    from bench import capacity

    figures = capacity.Figures(30_000, 40_000, 50_000, 40_000, centrifugo_idle_cpu_per_connection=2e-5,
                               nginx_idle_cpu_per_connection=1.5e-5)
    sizing = capacity.size(figures, 10_000, 1)  # Centrifugo: 10k deliveries/s at 30k per core = 0.33, plus 10k idle x 2e-5 = 0.2; nginx 0.25 + 0.15
    assert (sizing.centrifugo_cores, sizing.nginx_cores) == (0.5, 0.4)


def test_setups_side_by_side_ratio_against_the_best_channels_setup_and_least_memory():
    doc = document(40000, 4000)
    l4, pubsub = json.loads(json.dumps(doc["paths"]["centrifugo"])), json.loads(json.dumps(doc["paths"]["channels"]))
    l4["fanout"]["deliveries_per_server_cpu_second"] = 60000
    l4["idle_memory"][0]["bytes_per_connection_above_idle"] = 10240
    pubsub["fanout"]["deliveries_per_server_cpu_second"] = 8000
    doc["paths"] = {"centrifugo": doc["paths"]["centrifugo"], "centrifugo_l4": l4,
                    "channels": doc["paths"]["channels"], "channels_pubsub": pubsub}
    summary = report.summary(doc)
    assert summary["best_channels_setup"] == "channels_pubsub"
    assert summary["fanout_ratio_centrifugo_vs_channels"] == 5.0  # the l7 setup against the best Channels one
    assert summary["fanout_per_cpu_by_setup"]["centrifugo_l4"] == 60000
    assert summary["targets"]["idle_memory"]["value"] == 10.0
    assert summary["targets"]["idle_memory"]["setup"] == "centrifugo_l4"
    doc["summary"] = summary
    table = report.markdown(doc)
    assert "| measure | centrifugo | centrifugo_l4 | channels | channels_pubsub |" in table
    assert "| 10.0 (centrifugo_l4) | – | met |" in table


def test_warm_converge_is_the_fastest_strategy_that_changed_nothing():
    doc = document(40000, 4000, warm=0.25)
    doc["deployment"]["strategies"]["mitogen"] = {"warm": {"s_per_task_host": 0.12, "idempotent": True}}
    doc["deployment"]["strategies"]["faster"] = {"warm": {"s_per_task_host": 0.05, "idempotent": False}}
    doc["deployment"]["strategies"]["broken"] = {"unsupported": "mitogen is not installed"}
    summary = report.summary(doc)
    target = summary["targets"]["warm_converge"]
    assert (target["value"], target["status"], target["setup"]) == (0.12, "met", "mitogen strategy")
    assert summary["warm_s_per_task_host_by_strategy"] == {"default": 0.25, "mitogen": 0.12}
    assert "| 0.120 (mitogen strategy) |" in report.markdown({**doc, "summary": summary})
