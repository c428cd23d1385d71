"""Benchmark output: the summary with the issue's targets, a Markdown table, the JSON document
and a PNG chart (latency percentiles and fan-out per server CPU-second, both paths)."""
from __future__ import annotations

import json
from pathlib import Path

#: Targets (measured and reported, never asserted): name -> (description, check on the document).
TARGETS = {
    "fanout_per_cpu_centrifugo": "fan-out through Centrifugo >= 20k deliveries per server CPU-second",
    "fanout_ratio": "Centrifugo fan-out per CPU-second >= 8x Channels' in the same run",
    "django_p99": "Django -> 1000th subscriber p99 <= 25 ms at 1 msg/s (Centrifugo path)",
    "idle_memory": "idle memory <= 30 KB per connection (nginx + Centrifugo, above their idle RSS)",
    "burst_jwt": "burst >= 2000 connections/s with 0 errors (JWT path)",
    "warm_converge": "warm converge <= 0.15 s per task-host",
}


def _get(doc: dict, *keys, default=None):
    for key in keys:
        if not isinstance(doc, dict) or key not in doc:
            return default
        doc = doc[key]
    return doc


def summary(doc: dict) -> dict:
    """Key figures, ``fanout_ratio_centrifugo_vs_channels``, and each target as met / missed /
    not measured."""
    c, ch = _get(doc, "paths", "centrifugo", default={}), _get(doc, "paths", "channels", default={})
    c_fan = _get(c, "fanout", "deliveries_per_server_cpu_second")
    ch_fan = _get(ch, "fanout", "deliveries_per_server_cpu_second")
    ratio = round(c_fan / ch_fan, 2) if c_fan and ch_fan else None
    django_p99 = _get(c, "django_latency", "last_subscriber_ms", "p99")
    memory = [m["bytes_per_connection_above_idle"] for m in _get(c, "idle_memory", default=[])
              if m.get("bytes_per_connection_above_idle") is not None]
    jwt = next((b for b in _get(c, "burst", default=[]) if b.get("auth") == "jwt"), None)
    warm = _get(doc, "deployment", "strategies", "default", "warm", "s_per_task_host")
    values = {
        "fanout_per_cpu_centrifugo": (c_fan, c_fan is not None and c_fan >= 20000),
        "fanout_ratio": (ratio, ratio is not None and ratio >= 8),
        "django_p99": (django_p99, django_p99 is not None and django_p99 <= 25),
        "idle_memory": (round(max(memory) / 1024, 1) if memory else None,
                        bool(memory) and max(memory) <= 30 * 1024),
        "burst_jwt": (jwt and jwt.get("connections_per_second"),
                      bool(jwt) and jwt["connections_per_second"] >= 2000 and jwt["error_count"] == 0),
        "warm_converge": (warm, warm is not None and warm <= 0.15),
    }
    targets = {name: {"target": TARGETS[name], "value": value,
                      "status": "not measured" if value is None else ("met" if ok else "missed")}
               for name, (value, ok) in values.items()}
    return {"fanout_ratio_centrifugo_vs_channels": ratio, "targets": targets}


def _fmt(value, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        value = f"{value:.3f}" if abs(value) < 1 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    elif isinstance(value, int):
        value = f"{value:,}"
    return f"{value}{unit}"


def markdown(doc: dict) -> str:
    """The results as Markdown: both paths side by side, then the targets."""
    c, ch = _get(doc, "paths", "centrifugo", default={}), _get(doc, "paths", "channels", default={})
    rows = [("Fan-out deliveries/s", "fanout", "deliveries_per_second", ""),
            ("Fan-out deliveries per server CPU-second", "fanout", "deliveries_per_server_cpu_second", ""),
            ("Fan-out server CPU-seconds", "fanout", "server_cpu_seconds", " s"),
            ("Fan-out latency p50", "fanout", ("latency_ms", "p50"), " ms"),
            ("Fan-out latency p99", "fanout", ("latency_ms", "p99"), " ms"),
            ("Fan-out lost deliveries", "fanout", "lost", ""),
            ("Django -> last subscriber p50", "django_latency", ("last_subscriber_ms", "p50"), " ms"),
            ("Django -> last subscriber p99", "django_latency", ("last_subscriber_ms", "p99"), " ms"),
            ("Django -> first subscriber p99", "django_latency", ("first_subscriber_ms", "p99"), " ms"),
            ("Fan-out load-client CPU-seconds", "fanout", "client_cpu_seconds", " s")]
    m = doc.get("machine", {})
    params = doc.get("parameters", {})
    lines = [f"# Benchmark {doc.get('started', '')}", "",
             f"Machine: {m.get('cpus')} CPUs ({m.get('cpu_model')}), {m.get('memory_gib')} GiB; "
             f"servers and load clients on the same CPUs. Versions: "
             + "; ".join(f"{v}" for v in doc.get("versions", {}).values()), "",
             f"Parameters: {params.get('subscribers')} subscribers, {params.get('messages')} messages of "
             f"{params.get('size')} bytes at {params.get('rate')}/s; Django latency {params.get('django_messages')} "
             f"messages at 1/s; burst {params.get('burst')} clients.", "",
             "| measure | Centrifugo path | Channels path |", "|---|---|---|"]
    for label, section, key, unit in rows:
        keys = key if isinstance(key, tuple) else (key,)
        lines.append(f"| {label} | {_fmt(_get(c, section, *keys), unit)} | {_fmt(_get(ch, section, *keys), unit)} |")
    cm, chm = _get(c, "idle_memory", default=[]), _get(ch, "idle_memory", default=[])
    for i in range(max(len(cm), len(chm))):
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
        lines.append(f"| Idle memory per connection (RSS, nginx + server) | {mem(cm)} | {mem(chm)} |")
    bursts = {("centrifugo", b["auth"]): b for b in _get(c, "burst", default=[])}
    bursts.update({("channels", b["auth"]): b for b in _get(ch, "burst", default=[])})
    for (path, auth), b in bursts.items():
        cell = (f"{_fmt(b['connections_per_second'])} conn/s, handshake p50 {_fmt(b['handshake_ms']['p50'])} ms / "
                f"p99 {_fmt(b['handshake_ms']['p99'])} ms, {b['error_count']} errors of {_fmt(b['clients'])}; "
                f"{_fmt(b.get('connections_per_server_cpu_second'))} conn per server CPU-second, load client "
                f"{_fmt(b.get('client_cpu_seconds'))} CPU-s")
        lines.append(f"| Burst ({auth}) | {cell if path == 'centrifugo' else '–'} | {cell if path == 'channels' else '–'} |")
    mx = doc.get("max_connections")
    if mx:
        nginx = mx["limits"]["nginx"]
        lines.append(f"| Max concurrent connections, no errors (steps of {_fmt(mx.get('step'))}) | "
                     f"{_fmt(mx['max_without_errors'])} (cap {_fmt(mx['cap'])}; nginx "
                     f"{nginx.get('worker_connections')} worker_connections, worker_rlimit_nofile "
                     f"{nginx.get('worker_rlimit_nofile')}; open files by process "
                     f"{mx['limits'].get('open_files_soft_hard_by_process')}; controller hard limit "
                     f"{mx['limits']['controller_nofile_soft_hard'][1]}) | not measured |")
    s = doc.get("summary", {})
    lines += ["", f"`fanout_ratio_centrifugo_vs_channels`: **{_fmt(s.get('fanout_ratio_centrifugo_vs_channels'))}**", ""]
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
    lines += ["## Targets", "", "| target | value | status |", "|---|---|---|"]
    for t in s.get("targets", {}).values():
        lines.append(f"| {t['target']} | {_fmt(t['value'])} | {t['status']} |")
    return "\n".join(lines) + "\n"


def chart(doc: dict, path: Path) -> None:
    """PNG: fan-out latency p50/p99 and Django -> last subscriber p50/p99 per path (left), fan-out
    deliveries per server CPU-second per path (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = [p for p in ("centrifugo", "channels") if p in doc.get("paths", {})]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    labels = ["fan-out p50", "fan-out p99", "Django p50", "Django p99"]
    width = 0.8 / max(1, len(paths))
    for i, p in enumerate(paths):
        d = doc["paths"][p]
        values = [_get(d, "fanout", "latency_ms", "p50"), _get(d, "fanout", "latency_ms", "p99"),
                  _get(d, "django_latency", "last_subscriber_ms", "p50"),
                  _get(d, "django_latency", "last_subscriber_ms", "p99")]
        left.bar([x + i * width for x in range(len(labels))], [v or 0 for v in values], width, label=p)
    left.set_xticks([x + width * (len(paths) - 1) / 2 for x in range(len(labels))], labels)
    left.set_ylabel("milliseconds (log)")
    left.set_yscale("log")
    left.set_title("Latency")
    left.legend()
    fan = [_get(doc, "paths", p, "fanout", "deliveries_per_server_cpu_second") or 0 for p in paths]
    right.bar(paths, fan, color=["tab:blue", "tab:orange"][: len(paths)])
    right.set_ylabel("deliveries per server CPU-second")
    right.set_title("Fan-out efficiency")
    for x, v in enumerate(fan):
        right.annotate(f"{v:,.0f}", (x, v), ha="center", va="bottom")
    fig.suptitle(f"rtstack benchmark {doc.get('started', '')}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
