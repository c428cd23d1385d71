"""The deployment benchmark's report (bench.deploy runs the playbooks): the figures of one
``ansible-playbook`` run parsed from its output (PLAY RECAP, ``ansible.posix.profile_tasks``
summary), the mitogen strategy's verdict against the default strategy, and a text table.
All times are seconds."""
from __future__ import annotations

import re
from pathlib import Path

from rtclient.playbook import parse_recap

#: How many of profile_tasks' slowest tasks each run reports.
SLOWEST = 10

# profile_tasks summary: "role : task name ------------------------------------------- 12.34s"
_PROFILE_LINE = re.compile(r"^(?P<task>.*\S) -+ *(?P<secs>\d+(?:\.\d+)?)s$")
_PROFILE_RULE = re.compile(r"^=+$")


def task_hosts(recap: dict[str, dict[str, int]]) -> int:
    """Task-host executions: sum over hosts of ok + failed + skipped + rescued + ignored."""
    keys = ("ok", "failed", "skipped", "rescued", "ignored")
    return sum(counts.get(k, 0) for counts in recap.values() for k in keys)


def parse_profile(output: str, limit: int = SLOWEST) -> list[dict]:
    """The ``limit`` slowest tasks of the profile_tasks summary (after the PLAY RECAP):
    ``[{"task": "role : name", "seconds": s}, ...]``, slowest first."""
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("PLAY RECAP")]
    tasks = []
    in_summary = False
    for line in lines[starts[-1] + 1 if starts else 0:]:
        if _PROFILE_RULE.match(line.strip()):
            in_summary = True
            continue
        if in_summary:
            match = _PROFILE_LINE.match(line.rstrip())
            if match:
                tasks.append({"task": match["task"], "seconds": float(match["secs"])})
    tasks.sort(key=lambda t: t["seconds"], reverse=True)
    return tasks[:limit]


def summarize(code: int | None, wall: float, output: str, log: Path, *, warm: bool) -> dict:
    """Figures of one site.yml run (times in seconds):

    ``{"ok": bool, "returncode": int | None, "wall_s": s, "task_hosts": n,
    "s_per_task_host": s, "changed": {host: n}, "changed_total": n,
    "slowest_tasks": [{"task", "seconds"}], "recap": {host: {...}}, "log": path}`` (the
    caller adds ``"controller"``),
    plus ``"error"`` when the run failed and, for a warm run that changed something,
    ``"warning"`` (loud, upper case) and ``"idempotent": False``.
    """
    recap = parse_recap(output)
    count = task_hosts(recap)
    changed = {host: c.get("changed", 0) for host, c in recap.items()}
    failed = {host: c.get("failed", 0) + c.get("unreachable", 0) for host, c in recap.items()}
    result = {
        "ok": code == 0 and bool(recap) and not any(failed.values()),
        "returncode": code,
        "wall_s": round(wall, 2),
        "task_hosts": count,
        "s_per_task_host": round(wall / count, 4) if count else None,
        "changed": changed,
        "changed_total": sum(changed.values()),
        "slowest_tasks": parse_profile(output),
        "recap": recap,
        "log": str(log),
    }
    if code is None:
        result["error"] = "timed out"
    elif code != 0 or not recap or any(failed.values()):
        result["error"] = (f"ansible-playbook exit {code}; failed/unreachable per host: {failed}"
                           if recap else f"ansible-playbook exit {code}, no PLAY RECAP")
    if warm:
        result["idempotent"] = result["changed_total"] == 0 and bool(recap) and code == 0
        if not result["idempotent"]:
            hosts = ", ".join(f"{h}: changed={n}" for h, n in changed.items() if n) or "no recap"
            result["warning"] = f"WARM RUN IS NOT IDEMPOTENT: {hosts}"
    return result


def recap_diff(a: dict, b: dict) -> list[str]:
    """Hosts whose PLAY RECAP counts differ between two runs, as 'host: a != b' strings."""
    hosts = sorted(set(a) | set(b))
    return [f"{h}: {a.get(h)} != {b.get(h)}" for h in hosts if a.get(h) != b.get(h)]


def check_mitogen(results: dict) -> None:
    """Turn the mitogen result into ``{"unsupported": reason, "attempt": {...}}`` when its runs
    failed, its warm run changed something, or its per-host recaps differ from the default
    strategy's (same playbook, same fresh hosts: the counts must be equal)."""
    mito = results.get("mitogen")
    if not mito or "unsupported" in mito:
        return
    reason = None
    if "error" in mito:
        reason = f"hosts could not be recreated: {mito['error']}"
    for phase in ("cold", "warm") if "cold" in mito or "hosts_recreate_s" in mito else ("warm",):
        run_ = mito.get(phase)
        if reason:
            break
        if run_ is None:
            reason = f"no {phase} run"
        elif "error" in run_:
            reason = f"{phase} site.yml failed: {run_['error']} (log {run_['log']})"
        elif run_.get("warning"):
            reason = f"{phase} run: {run_['warning']}"
        else:
            default = results.get("default", {}).get(phase)
            if default and "error" not in default:
                diff = recap_diff(default["recap"], run_["recap"])
                if diff:
                    reason = f"{phase} PLAY RECAP differs from the default strategy: {'; '.join(diff)}"
    if reason:
        results["mitogen"] = {"unsupported": reason, "attempt": mito}


def report(result: dict) -> str:
    """A short human-readable table of ``measure``'s result."""
    lines = [f"ansible-core {result['ansible_core']}, connection {result['connection']}, "
             f"pipelining {result['pipelining']}"]
    for name, strat in result["strategies"].items():
        if "unsupported" in strat:
            lines.append(f"{name}: unsupported: {strat['unsupported']}")
            continue
        for phase in ("cold", "warm"):
            r = strat.get(phase)
            if not r:
                lines.append(f"{name} {phase}: not run ({strat.get('error', '')})")
                continue
            lines.append(f"{name} {phase}: {r['wall_s']} s, {r['task_hosts']} task-hosts, "
                         f"{r['s_per_task_host']} s/task-host, changed {r['changed']}"
                         + (f"  ERROR {r['error']}" if "error" in r else "")
                         + (f"  !!! {r['warning']} !!!" if "warning" in r else ""))
            for t in r["slowest_tasks"]:
                lines.append(f"    {t['seconds']:8.2f} s  {t['task']}")
    return "\n".join(lines)
