"""Benchmark output: the summary with the issue's targets, a Markdown table, the JSON document
and a PNG chart (latency, fan-out per server CPU-second, memory per connection by process, server and
load-client CPU), every setup of the run side by side."""
from __future__ import annotations

import json
from pathlib import Path

#: Targets (measured and reported, never asserted): name -> description (the performance issue's goals).
TARGETS = {
    "idle_memory": "idle memory <= 40 KB per connection (nginx + Centrifugo, above their idle RSS)",
    "fanout_per_cpu_centrifugo": "fan-out through Centrifugo >= 25k deliveries per server CPU-second",
    "fanout_ratio": "Centrifugo fan-out per server CPU-second >= 8x Channels' in the same run",
    "burst_jwt": "JWT connect+subscribe >= 800 per server CPU-second at 5000 clients",
    "django_p99": "Django -> last of 1000 subscribers p99 <= 50 ms at 1 msg/s (Centrifugo path)",
    "warm_converge": "warm converge <= 0.15 s per task-host (the fastest strategy whose warm run changed nothing)",
}
#: Clients of the burst the ``burst_jwt`` target is about, and subscribers of the ``django_p99`` one.
BURST_CLIENTS = 5000
DJANGO_SUBSCRIBERS = 1000


def _get(doc: dict, *keys, default=None):
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return default
        doc = doc[key]
    return doc


def client_bound(*measurements: dict | None) -> bool | None:
    """Whether the load client was the bottleneck of any of ``measurements`` (result sections such as
    ``paths.centrifugo.fanout``): its ``client_cpu_seconds`` above its ``server_cpu_seconds`` (CPU-seconds of
    the load client's processes and of the servers', over the same run). None when a measurement is missing
    or lacks either figure: then nobody knows, and a target that depends on it is not counted as met."""
    flags = []
    for measurement in measurements:
        client = _get(measurement, "client_cpu_seconds")
        server = _get(measurement, "server_cpu_seconds")
        if client is None or server is None:
            return None
        flags.append(client > server)
    return any(flags) if flags else None


def _status(value, ok: bool, bound: bool | None, needs_cpu: bool) -> str:
    if value is None:
        return "not measured"
    if needs_cpu and bound:
        return "client-bound"
    if needs_cpu and bound is None:
        return "client CPU not measured"
    return "met" if ok else "missed"


def _backend(path: str) -> str:
    """A setup's backend (bench.stack.SETUPS names start with it: ``centrifugo_l4`` -> ``centrifugo``)."""
    return path.split("_", 1)[0]


def _largest_idle_step(path_doc: dict) -> dict | None:
    """The idle-memory step with the most connections (the goal is stated at 5k): per-connection overheads fixed
    per process weigh less there."""
    return max((m for m in _get(path_doc, "idle_memory", default=[]) if m.get("bytes_per_connection_above_idle") is not None),
               key=lambda m: m.get("connections", 0), default=None)


def summary(doc: dict) -> dict:
    """Key figures and each target of :data:`TARGETS` as ``{"target", "value", "status", "client_bound"[,
    "setup"]}``.

    Key figures: ``fanout_per_cpu_by_setup`` (setup -> deliveries per server CPU-second),
    ``fanout_ratio_centrifugo_vs_channels`` (the ``centrifugo`` setup, l7, against the best Channels setup of the
    run, named ``best_channels_setup``), ``idle_kb_by_setup`` (KB per connection above idle at the largest step).
    The fan-out, burst and Django targets are the l7 ``centrifugo`` setup's; the idle-memory one the Centrifugo
    setup with the least memory (its name in ``setup``), the warm converge one the fastest deployment strategy
    whose warm run changed nothing (``setup``: "<name> strategy"; every strategy's figure in
    ``warm_s_per_task_host_by_strategy``). Status: met, missed, not measured, or, for a figure
    measured with a load client (fan-out, burst, Django latency), "client-bound" when that client spent more
    CPU than the servers (:func:`client_bound`) and "client CPU not measured" when the run did not record it:
    neither is ever counted as met."""
    paths = doc.get("paths", {})
    c = paths.get("centrifugo", {})
    fan = {p: _get(d, "fanout", "deliveries_per_server_cpu_second") for p, d in paths.items()}
    channels = [p for p in paths if _backend(p) == "channels" and fan.get(p)]
    best_channels = max(channels, key=lambda p: fan[p], default=None)
    c_fan = fan.get("centrifugo")
    ratio = round(c_fan / fan[best_channels], 2) if c_fan and best_channels else None
    django_p99 = _get(c, "django_latency", "last_subscriber_ms", "p99")
    idle = {p: _largest_idle_step(d) for p, d in paths.items()}
    idle_kb = {p: round(m["bytes_per_connection_above_idle"] / 1024, 1) for p, m in idle.items() if m}
    centrifugo_idle = [p for p in idle_kb if _backend(p) == "centrifugo"]
    memory_setup = min(centrifugo_idle, key=lambda p: idle_kb[p], default=None)
    memory = idle_kb.get(memory_setup) if memory_setup else None
    jwt = max((b for b in _get(c, "burst", default=[]) if b.get("auth") == "jwt"),
              key=lambda b: b.get("clients", 0), default=None)
    jwt_rate = jwt and jwt.get("connections_per_server_cpu_second")
    warm_by_strategy = {name: runs["warm"]["s_per_task_host"]
                        for name, runs in (_get(doc, "deployment", "strategies", default={}) or {}).items()
                        if _get(runs, "warm", "s_per_task_host") is not None
                        and _get(runs, "warm", "idempotent", default=True)}
    warm_strategy = min(warm_by_strategy, key=warm_by_strategy.get, default=None)
    warm = warm_by_strategy.get(warm_strategy)
    # name -> (value, ok, client_bound, needs_cpu)
    values = {
        "idle_memory": (memory, memory is not None and memory <= 40, None, False),
        "fanout_per_cpu_centrifugo": (c_fan, c_fan is not None and c_fan >= 25000,
                                      client_bound(_get(c, "fanout")), True),
        "fanout_ratio": (ratio, ratio is not None and ratio >= 8,
                         client_bound(_get(c, "fanout"), _get(paths.get(best_channels), "fanout")), True),
        "burst_jwt": (jwt_rate, bool(jwt) and jwt_rate is not None and jwt_rate >= 800
                      and jwt.get("clients", 0) >= BURST_CLIENTS and jwt["error_count"] == 0, client_bound(jwt), True),
        "django_p99": (django_p99, django_p99 is not None and django_p99 <= 50
                       and (_get(c, "django_latency", "subscribers") or 0) >= DJANGO_SUBSCRIBERS,
                       client_bound(_get(c, "django_latency")), True),
        "warm_converge": (warm, warm is not None and warm <= 0.15, None, False),
    }
    targets = {name: {"target": TARGETS[name], "value": value, "status": _status(value, ok, bound, needs_cpu),
                      "client_bound": bound}
               for name, (value, ok, bound, needs_cpu) in values.items()}
    if memory_setup:
        targets["idle_memory"]["setup"] = memory_setup
    if warm_strategy:
        targets["warm_converge"]["setup"] = f"{warm_strategy} strategy"
    return {"fanout_per_cpu_by_setup": {p: v for p, v in fan.items() if v is not None},
            "warm_s_per_task_host_by_strategy": warm_by_strategy,
            "fanout_ratio_centrifugo_vs_channels": ratio, "best_channels_setup": best_channels,
            "idle_kb_by_setup": idle_kb, "targets": targets}


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value = f"{value:.3f}" if abs(value) < 1 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def markdown(doc: dict) -> str:
    """The results as Markdown: every setup side by side (a column each), then the targets."""
    paths = doc.get("paths", {})
    names = list(paths)
    rows = [("Fan-out deliveries/s", "fanout", "deliveries_per_second", ""),
            ("Fan-out deliveries per server CPU-second", "fanout", "deliveries_per_server_cpu_second", ""),
            ("Fan-out server CPU-seconds", "fanout", "server_cpu_seconds", " s"),
            ("Fan-out latency p50", "fanout", ("latency_ms", "p50"), " ms"),
            ("Fan-out latency p99", "fanout", ("latency_ms", "p99"), " ms"),
            ("Fan-out lost deliveries", "fanout", "lost", ""),
            ("Django -> last subscriber p50", "django_latency", ("last_subscriber_ms", "p50"), " ms"),
            ("Django -> last subscriber p99", "django_latency", ("last_subscriber_ms", "p99"), " ms"),
            ("Django -> first subscriber p99", "django_latency", ("first_subscriber_ms", "p99"), " ms"),
            ("Fan-out load-client CPU-seconds", "fanout", "client_cpu_seconds", " s"),
            ("Django latency server CPU-seconds (with gunicorn)", "django_latency", "server_cpu_seconds", " s"),
            ("Django latency load-client CPU-seconds", "django_latency", "client_cpu_seconds", " s")]
    m = doc.get("machine", {})
    params = doc.get("parameters", {})
    lines = [f"# Benchmark {doc.get('started', '')}", "",
             f"Machine: {m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('memory_gib')} GiB; "
             f"servers and load clients on the same CPUs. Versions: "
             + "; ".join(f"{v}" for v in doc.get("versions", {}).values()), "",
             f"Parameters: {params.get('subscribers')} subscribers, {params.get('messages')} messages of "
             f"{params.get('size')} bytes at {params.get('rate')}/s; Django latency {params.get('django_messages')} "
             f"messages at 1/s; burst {params.get('burst')} clients.", "",
             "Setups (bench.stack.SETUPS): " + "; ".join(
                 f"{name}: {', '.join(f'{k} {v}' for k, v in setup.items() if k != 'converge_seconds')}"
                 for name, setup in doc.get("setups", {}).items()), "",
             "| measure | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for label, section, key, unit in rows:
        keys = key if isinstance(key, tuple) else (key,)
        lines.append(f"| {label} | " + " | ".join(_fmt(_get(paths[n], section, *keys), unit) for n in names) + " |")
    steps = max((len(_get(paths[n], "idle_memory", default=[])) for n in names), default=0)
    for i in range(steps):
        def mem(entries):
            if len(entries) <= i:
                return "–"
            e = entries[i]
            parts = ", ".join(f"{r} {_fmt(v / 1024)}" for r, v in e["above_idle_per_connection_by_process"].items())
            cell = (f"{_fmt(e['bytes_per_connection_above_idle'] / 1024)} KB above idle ({parts}) at "
                    f"{_fmt(e['connections'])} connections")
            if e.get("centrifugo_go_inuse_per_connection") is not None:
                cell += f"; Go heap+stacks in use {_fmt(e['centrifugo_go_inuse_per_connection'] / 1024)} KB"
            return cell
        lines.append("| Idle memory per connection (RSS, nginx + server) | "
                     + " | ".join(mem(_get(paths[n], "idle_memory", default=[])) for n in names) + " |")
    auths = list(dict.fromkeys(b["auth"] for n in names for b in _get(paths[n], "burst", default=[])))
    for auth in auths:
        cells = []
        for n in names:
            b = next((b for b in _get(paths[n], "burst", default=[]) if b["auth"] == auth), None)
            cells.append("–" if b is None else (
                f"{_fmt(b['connections_per_second'])} conn/s, handshake p50 {_fmt(b['handshake_ms']['p50'])} ms / "
                f"p99 {_fmt(b['handshake_ms']['p99'])} ms, {b['error_count']} errors of {_fmt(b['clients'])}; "
                f"{_fmt(b.get('connections_per_server_cpu_second'))} conn per server CPU-second, load client "
                f"{_fmt(b.get('client_cpu_seconds'))} CPU-s"))
        lines.append(f"| Burst ({auth}) | " + " | ".join(cells) + " |")
    mx = doc.get("max_connections")
    if mx:
        nginx = mx["limits"]["nginx"]
        lines.append(f"| Max concurrent connections, no errors (steps of {_fmt(mx.get('step'))}) | "
                     f"{_fmt(mx['max_without_errors'])} (cap {_fmt(mx['cap'])}; nginx "
                     f"{nginx.get('worker_connections')} worker_connections, worker_rlimit_nofile "
                     f"{nginx.get('worker_rlimit_nofile')}; open files by process "
                     f"{mx['limits'].get('open_files_soft_hard_by_process')}; controller hard limit "
                     f"{mx['limits']['controller_nofile_soft_hard'][1]}) |" + " |" * (len(names) - 1))
    s = doc.get("summary", {})
    lines += ["", f"`fanout_ratio_centrifugo_vs_channels` (centrifugo, l7, against the best Channels setup, "
              f"{s.get('best_channels_setup')}): **{_fmt(s.get('fanout_ratio_centrifugo_vs_channels'))}**", ""]
    dep = doc.get("deployment")
    if dep:
        lines += ["## Deployment (site.yml)", "", "| strategy | run | wall s | task-hosts | s per task-host | changed |",
                  "|---|---|---|---|---|---|"]
        for name, runs in dep.get("strategies", {}).items():
            if "unsupported" in runs:
                lines.append(f"| {name} | – | unsupported: {runs['unsupported']} | | | |")
                continue
            for run in ("cold", "warm"):
                r = runs.get(run, {})
                lines.append(f"| {name} | {run} | {_fmt(r.get('wall_s'))} | {_fmt(r.get('task_hosts'))} | "
                             f"{_fmt(r.get('s_per_task_host'))} | {_fmt(r.get('changed_total'))} |")
        lines.append("")
    lines += ["## Targets", "", "A figure measured with a load client that spent more CPU than the servers is "
              "client-bound: it measures the client, and is never counted as met.", "",
              "| target | value | client-bound | status |", "|---|---|---|---|"]
    for t in s.get("targets", {}).values():
        bound = {True: "yes", False: "no", None: "–"}[t.get("client_bound")]
        setup = f" ({t['setup']})" if t.get("setup") else ""
        lines.append(f"| {t['target']} | {_fmt(t['value'])}{setup} | {bound} | {t['status']} |")
    return "\n".join(lines) + "\n"


def chart(doc: dict, path: Path) -> None:
    """PNG of every setup side by side, four panels: latency (fan-out and Django -> last subscriber, p50/p99);
    fan-out deliveries per server CPU-second; idle memory per connection above idle by process, stacked, at each
    setup's largest step; the fan-out's CPU-seconds of the servers (by process, stacked) beside the load
    client's."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = list(doc.get("paths", {}))
    fig, ((lat, fan_ax), (mem_ax, cpu_ax)) = plt.subplots(2, 2, figsize=(13, 8.5))
    labels = ["fan-out p50", "fan-out p99", "Django p50", "Django p99"]
    width = 0.8 / max(1, len(paths))
    for i, p in enumerate(paths):
        d = doc["paths"][p]
        values = [_get(d, "fanout", "latency_ms", "p50"), _get(d, "fanout", "latency_ms", "p99"),
                  _get(d, "django_latency", "last_subscriber_ms", "p50"),
                  _get(d, "django_latency", "last_subscriber_ms", "p99")]
        lat.bar([x + i * width for x in range(len(labels))], [v or 0 for v in values], width, label=p)
    lat.set_xticks([x + width * (len(paths) - 1) / 2 for x in range(len(labels))], labels)
    lat.set_ylabel("milliseconds (log)")
    lat.set_yscale("log")
    lat.set_title("Latency")
    lat.legend(fontsize=8)
    fan = [_get(doc, "paths", p, "fanout", "deliveries_per_server_cpu_second") or 0 for p in paths]
    fan_ax.bar(paths, fan, color=[f"C{i}" for i in range(len(paths))])
    fan_ax.set_ylabel("deliveries per server CPU-second")
    fan_ax.set_title("Fan-out per server CPU-second")
    for x, v in enumerate(fan):
        fan_ax.annotate(f"{v:,.0f}", (x, v), ha="center", va="bottom")

    def stacked(ax, by_path: dict[str, dict[str, float]], offset: float = 0.0, bar_width: float = 0.6) -> None:
        roles = list(dict.fromkeys(r for parts in by_path.values() for r in parts))
        bottoms = [0.0] * len(paths)
        for role in roles:
            heights = [by_path.get(p, {}).get(role, 0.0) for p in paths]
            ax.bar([x + offset for x in range(len(paths))], heights, bar_width, bottom=bottoms, label=role)
            bottoms = [b + h for b, h in zip(bottoms, heights)]

    memory = {}
    for p in paths:
        step = _largest_idle_step(doc["paths"][p])
        if step:
            memory[p] = {r: v / 1024 for r, v in step.get("above_idle_per_connection_by_process", {}).items()}
    stacked(mem_ax, memory)
    mem_ax.set_xticks(range(len(paths)), paths)
    mem_ax.set_ylabel("KB per connection above idle")
    mem_ax.set_title("Idle memory per connection, by process (largest step)")
    mem_ax.legend(fontsize=8)
    servers = {p: _get(doc, "paths", p, "fanout", "server_cpu_seconds_by_process", default={}) or {} for p in paths}
    stacked(cpu_ax, servers, -0.2, 0.4)
    client = [_get(doc, "paths", p, "fanout", "client_cpu_seconds") or 0 for p in paths]
    cpu_ax.bar([x + 0.2 for x in range(len(paths))], client, 0.4, color="grey", label="load client")
    cpu_ax.set_xticks(range(len(paths)), paths)
    cpu_ax.set_ylabel("CPU-seconds during the fan-out")
    cpu_ax.set_title("Server CPU (by process) and load-client CPU")
    cpu_ax.legend(fontsize=8)
    fig.suptitle(f"rtstack benchmark {doc.get('started', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write(doc: dict, out: Path) -> list[Path]:
    """Write ``<out>/bench-<timestamp>.{json,md,png}`` and the same as ``latest.*``."""
    out.mkdir(parents=True, exist_ok=True)
    stamp = doc.get("started", "run").replace(":", "").replace("-", "")
    written = []
    for name in (f"bench-{stamp}", "latest"):
        (out / f"{name}.json").write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n")
        (out / f"{name}.md").write_text(markdown(doc))
        chart(doc, out / f"{name}.png")
        written += [out / f"{name}.json", out / f"{name}.md", out / f"{name}.png"]
    return written
