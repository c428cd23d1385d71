"""Benchmark of the deployment itself: a cold ``site.yml`` on fresh hosts and a warm re-run.

For each strategy (``default``: ansible-core's linear strategy with the connection and pipelining
of ansible.cfg; ``mitogen``: mitogen's ``mitogen_linear`` strategy) the local test hosts are
removed and recreated with ``playbooks/local_hosts.yml`` (not timed as part of the deployment),
then ``playbooks/site.yml`` runs twice:

- cold: on the freshly created hosts, everything gets installed and configured;
- warm: the same playbook again, which must change nothing (``changed=0`` on every host).

Each run reports its wall time in seconds, the number of task-host executions from the PLAY RECAP
(sum over hosts of ok + failed + skipped + rescued + ignored; ``ok`` already includes ``changed``,
``unreachable`` is not counted), seconds per task-host, the 10 slowest tasks of the
``ansible.posix.profile_tasks`` callback and the changed count of each host.

Mitogen and the Docker connection: mitogen only accelerates the connection types it re-implements
and it recognises them by their short names (``docker`` becomes ``mitogen_docker``). The
inventory's ``community.docker.docker`` is not one of them: under ``mitogen_linear`` it keeps
running through the community.docker plugin, i.e. linear plus mitogen's overhead. The mitogen
strategy therefore adds a small inventory overlay that sets ``ansible_connection: docker`` for
the inventory hosts (``mitogen_docker``: ``docker exec`` of a mitogen bootstrap, then one
persistent Python interpreter per host); delegated ``localhost`` tasks keep their ``local``
connection. Before timing, a probe (``mitogen_get_stack``) checks that the hosts really are
reached through mitogen; if mitogen cannot be imported, refuses the ansible-core version, fails
the probe or a run, or deploys differently than the default strategy (per-host PLAY RECAP of the
cold and warm runs), the strategy is reported as ``{"unsupported": "<reason>"}``.

The strategies run with ``default`` last, so the stack is left deployed by the default strategy,
whose warm run is the final ``changed=0`` check.

Usage::

    python -m bench.deploy [--strategies default,mitogen] [--json out.json] [--log-dir DIR] [--warm-only]

``--warm-only`` times the warm run alone on the hosts as they are (a deployed stack), for the loop of
making converges faster.

Progress lines go to stderr, the results (JSON) to stdout and, with ``--json``, to a file. Every
subprocess has a timeout (seconds, see ``TIMEOUTS``); the full output of every ansible run is kept
in the log directory, whose path is in the results. The output's parsing and the report are in
bench.deploy_report.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rtclient.playbook import MITOGEN_ENV

from .deploy_report import check_mitogen, report, summarize

ROOT = Path(__file__).resolve().parents[1]
INVENTORY = "inventories/local/hosts.yml"
SITE = "playbooks/site.yml"
LOCAL_HOSTS = "playbooks/local_hosts.yml"
CONNECTION = "community.docker.docker"
STRATEGIES = ("default", "mitogen")
#: Timeouts of the subprocesses, seconds.
TIMEOUTS = {
    "hosts": 300,  # remove or create the local test hosts
    "cold": 1500,  # site.yml on fresh hosts
    "warm": 900,  # site.yml again
    "probe": 120,  # ansible ad-hoc probe of mitogen
    "version": 60,  # ansible --version
}
#: Inventory overlay of the mitogen strategy: the short connection name mitogen redirects.
MITOGEN_OVERLAY = "---\nall:\n  vars:\n    ansible_connection: docker\n"

def progress(message: str) -> None:
    """One progress line on stderr (stdout carries the results)."""
    print(f"[bench.deploy {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def base_env() -> dict[str, str]:
    """Environment of every ansible subprocess: the project's venv first on PATH, the Docker
    socket, ansible.cfg, profile_tasks enabled, no colours (the output gets parsed)."""
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env.setdefault("DOCKER_HOST", "unix:///var/run/docker.sock")
    env["ANSIBLE_CONFIG"] = str(ROOT / "ansible.cfg")
    env["ANSIBLE_CALLBACKS_ENABLED"] = "ansible.posix.profile_tasks"
    env["PROFILE_TASKS_TASK_OUTPUT_LIMIT"] = "all"
    env["PROFILE_TASKS_SORT_ORDER"] = "descending"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["PYTHONUNBUFFERED"] = "1"
    for name in ("ANSIBLE_STRATEGY", "ANSIBLE_STRATEGY_PLUGINS"):
        env.pop(name, None)
    return env


def run(argv: list[str], *, env: dict[str, str], timeout: float, log: Path,
        label: str) -> tuple[int | None, float, str]:
    """Run ``argv`` in the repository with stdout to ``log`` and stderr to ``log`` + ``.err``.

    Returns (exit code, or None when killed at ``timeout`` seconds; wall seconds; stdout text).
    While it runs, a progress line every 30 s counts the ``TASK [`` lines seen so far. On timeout
    the subprocess' own process group is killed.
    """
    err = log.with_suffix(log.suffix + ".err")
    start = time.monotonic()
    with open(log, "wb") as out, open(err, "wb") as errf:
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=errf,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        code: int | None = None
        next_note = start + 30
        while True:
            try:
                code = proc.wait(timeout=1)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if now - start > timeout:
                    progress(f"{label}: timeout after {timeout:.0f} s, killing pid {proc.pid}")
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait()
                    code = None
                    break
                if now >= next_note:
                    tasks = log.read_text(errors="replace").count("\nTASK [")
                    progress(f"{label}: {now - start:.0f} s, {tasks} tasks started")
                    next_note += 30
    wall = time.monotonic() - start
    return code, wall, log.read_text(errors="replace")


def other_containers() -> int | None:
    """How many running containers are not inventory hosts (e.g. another scenario's), which
    share the controller's CPUs with the run; None when docker cannot tell."""
    try:
        names = subprocess.run(["docker", "ps", "--format", "{{.Names}}"], capture_output=True,
                               text=True, timeout=30, env=base_env()).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return sum(1 for name in names if not name.startswith("rt-"))


def recreate_hosts(env: dict[str, str], logs: Path, label: str) -> float:
    """Remove and recreate the local test hosts (local_hosts.yml, default strategy).
    Returns the seconds it took; raises RuntimeError when either step fails."""
    start = time.monotonic()
    for state in ("absent", "started"):
        progress(f"{label}: local hosts -> {state}")
        argv = ["ansible-playbook", "-i", INVENTORY, LOCAL_HOSTS, "-e", f"local_hosts_state={state}"]
        code, wall, _ = run(argv, env=env, timeout=TIMEOUTS["hosts"],
                            log=logs / f"{label}-hosts-{state}.log", label=f"{label} hosts {state}")
        if code != 0:
            raise RuntimeError(f"local_hosts.yml state={state} failed (exit {code}), "
                               f"see {logs / f'{label}-hosts-{state}.log'}")
    return time.monotonic() - start


def mitogen_env(env: dict[str, str]) -> tuple[dict[str, str] | None, str]:
    """The environment of the mitogen strategy (rtclient.playbook.MITOGEN_ENV, the one place that says how a
    run goes under mitogen) and mitogen's version, or (None, reason) when mitogen is not installed."""
    try:
        from importlib.metadata import PackageNotFoundError, version

        mitogen_version = version("mitogen")
    except PackageNotFoundError as exc:
        return None, f"mitogen is not installed ({exc}); pip install mitogen"
    return {**env, **MITOGEN_ENV}, mitogen_version


def probe_mitogen(env: dict[str, str], inventories: list[str], logs: Path) -> str | None:
    """Check that every inventory host is reached through mitogen's docker transport
    (``mitogen_get_stack`` reports the connection stack; it is skipped on a non-mitogen
    connection). Returns None when it is, else the reason."""
    argv = ["ansible", *inventories, "all", "-m", "mitogen_get_stack"]
    log = logs / "mitogen-probe.log"
    code, _, output = run(argv, env=env, timeout=TIMEOUTS["probe"], log=log, label="mitogen probe")
    err = log.with_suffix(".log.err").read_text(errors="replace")
    if code != 0:
        tail = " | ".join((err + output).strip().splitlines()[-3:])
        return f"mitogen probe failed (exit {code}): {tail}"
    hosts = re.findall(r"^(\S+) \| (\w+)", output, re.M)
    skipped = [h for h, state in hosts if state == "SKIPPED"]
    via_docker = re.findall(r"""["']?method["']?: ["']?docker\b""", output)
    if not hosts or skipped or len(via_docker) < len(hosts):
        return f"hosts not reached through mitogen_docker (skipped: {skipped or 'n/a'})"
    return None


def measure_strategy(strategy: str, logs: Path, warm_only: bool = False) -> dict:
    """Cold and warm site.yml with one strategy: ``{"cold": {...}, "warm": {...},
    "hosts_recreate_s": s, ...}`` (see ``summarize``), or ``{"unsupported": reason, ...}``
    for a strategy that cannot run here. ``warm_only``: the warm run alone, on the deployed hosts
    (no recreation, no cold run)."""
    env = base_env()
    inventories = ["-i", INVENTORY]
    result: dict = {}
    if strategy == "mitogen":
        menv, info = mitogen_env(env)
        if menv is None:
            return {"unsupported": info}
        env = menv
        result["mitogen_version"] = info
        overlay = logs / "mitogen-overlay.yml"
        overlay.write_text(MITOGEN_OVERLAY)
        inventories += ["-i", str(overlay)]
        result["connection"] = "docker (mitogen_docker), via inventory overlay"
    elif strategy != "default":
        return {"unsupported": f"unknown strategy {strategy!r} (known: {', '.join(STRATEGIES)})"}
    else:
        result["connection"] = CONNECTION

    if not warm_only:
        try:
            result["hosts_recreate_s"] = round(recreate_hosts(base_env(), logs, strategy), 2)
        except RuntimeError as exc:
            result["error"] = str(exc)
            return result

    if strategy == "mitogen":
        reason = probe_mitogen(env, inventories, logs)
        if reason:
            progress(f"mitogen: unsupported: {reason}")
            return {"unsupported": reason, **result}

    for phase in ("warm",) if warm_only else ("cold", "warm"):
        progress(f"{strategy}: {phase} site.yml")
        log = logs / f"{strategy}-{phase}.log"
        context = {"loadavg_1m_before": round(os.getloadavg()[0], 2),
                   "other_containers": other_containers()}
        code, wall, output = run(["ansible-playbook", *inventories, SITE], env=env,
                                 timeout=TIMEOUTS[phase], log=log, label=f"{strategy} {phase}")
        summary = summarize(code, wall, output, log, warm=phase == "warm")
        context["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
        summary["controller"] = context
        result[phase] = summary
        progress(f"{strategy}: {phase}: {summary['wall_s']} s, {summary['task_hosts']} task-hosts, "
                 f"{summary['s_per_task_host']} s/task-host, changed={summary['changed']}"
                 + (f"  ERROR: {summary['error']}" if "error" in summary else "")
                 + (f"  !!! {summary['warning']} !!!" if "warning" in summary else ""))
        if "error" in summary:
            break
    return result


def ansible_core_version(env: dict[str, str]) -> str:
    """ansible-core's version as the venv's ansible-playbook reports it."""
    out = subprocess.run(["ansible-playbook", "--version"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=TIMEOUTS["version"]).stdout
    match = re.search(r"core ([\d.]+\w*)", out)
    return match[1] if match else "unknown"


def pipelining(env: dict[str, str]) -> bool:
    """Whether ansible.cfg turns pipelining on (``ansible-config dump``, ANSIBLE_PIPELINING)."""
    out = subprocess.run(["ansible-config", "dump", "--only-changed"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=TIMEOUTS["version"]).stdout
    return bool(re.search(r"^ANSIBLE_PIPELINING\(.*\) = True", out, re.M))


def measure(strategies: list[str], log_dir: str | Path | None = None, warm_only: bool = False) -> dict:
    """Measure cold and warm deployments for each of ``strategies`` (names from ``STRATEGIES``);
    with ``warm_only``, only the warm run on the hosts as they are (no ``cold`` key).

    This removes and recreates the inventory's rt-* containers once per strategy. Returns::

        {"strategies": {"default": {"cold": RUN, "warm": RUN, "hosts_recreate_s": s,
                                    "connection": str},
                        "mitogen": {... same, "mitogen_version": str}
                                   | {"unsupported": "reason", ["attempt": {...}]}},
         "ansible_core": "2.19.14", "connection": "community.docker.docker",
         "pipelining": true, "log_dir": path, "total_s": s}

    where RUN is ``{"ok", "returncode", "wall_s", "task_hosts", "s_per_task_host", "changed":
    {host: n}, "changed_total", "slowest_tasks": [{"task", "seconds"}], "recap", "log"}`` (plus
    ``"idempotent"`` and, when not, ``"warning"`` on warm runs; ``"error"`` on failed runs;
    ``"controller": {"loadavg_1m_before", "loadavg_1m_after", "other_containers"}``, the
    controller's load around the run, since the hosts are containers on its CPUs).
    All times are seconds. ``default`` runs last so the stack is left deployed by it.
    """
    logs = Path(log_dir) if log_dir else Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    logs.mkdir(parents=True, exist_ok=True)
    env = base_env()
    start = time.monotonic()
    out: dict = {
        "strategies": {},
        "ansible_core": ansible_core_version(env),
        "connection": CONNECTION,
        "pipelining": pipelining(env),
        "log_dir": str(logs),
    }
    progress(f"logs in {logs}")
    order = sorted(strategies, key=lambda s: s == "default")  # default last
    results = {}
    for strategy in order:
        results[strategy] = measure_strategy(strategy, logs, warm_only)
    check_mitogen(results)
    out["strategies"] = {s: results[s] for s in strategies}
    out["total_s"] = round(time.monotonic() - start, 1)
    return out


def main(argv: list[str] | None = None) -> int:
    """CLI: results as JSON on stdout (and in ``--json``), a summary table on stderr.
    Exit 0 when every supported strategy deployed and its warm run changed nothing, else 1."""
    parser = argparse.ArgumentParser(prog="python -m bench.deploy", description=__doc__.split("\n")[0])
    parser.add_argument("--strategies", default=",".join(STRATEGIES),
                        help="comma-separated: default, mitogen (default: both)")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE")
    parser.add_argument("--log-dir", metavar="DIR", help="keep the ansible output here "
                        "(default: a new /tmp/bench-deploy-* directory)")
    parser.add_argument("--warm-only", action="store_true",
                        help="only the warm run, on the hosts as they are deployed (no recreation, no cold run)")
    args = parser.parse_args(argv)
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    result = measure(strategies, args.log_dir, args.warm_only)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(report(result), file=sys.stderr)
    healthy = all("unsupported" in s or ((args.warm_only or s.get("cold", {}).get("ok")) and s.get("warm", {}).get("ok")
                                         and s["warm"].get("idempotent"))
                  for s in result["strategies"].values())
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
