"""Run the project's playbooks from tests and drills, and read their PLAY RECAP: one runner for the
day-2 checks, the security tests, the rolling-upgrade drill and the deployment benchmark's report.

The runs use the scenario's own inventory (``MOLECULE_INVENTORY_FILE``, or ``RTSTACK_INVENTORY``)
and, under molecule, its Ansible configuration (``ANSIBLE_CONFIG``, which molecule writes with the
scenario's fact cache); elsewhere the repository's ``ansible.cfg``.
"""
from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# profile_tasks' line under each task banner: "... (0:00:01.234)       0:01:02.345 ****": the time since the run began.
_PROFILE_ELAPSED = re.compile(r"\(\d+:\d\d:\d\d\.\d+\)\s+(?P<h>\d+):(?P<m>\d\d):(?P<s>\d\d\.\d+)")
_PLAY_BANNER = re.compile(r"^PLAY \[(?P<name>.*)\] \*+$")
# "TASK [role : name] ****", "RUNNING HANDLER [role : name] ****"
_TASK_BANNER = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(?P<name>.*)\] \*+$")
# "changed: [host]", "changed: [host -> delegate]", "changed: [host] => (item=...)"
_CHANGED_LINE = re.compile(r"^changed: \[(?P<host>[^\]\s]+)(?: -> [^\]]+)?\]")

#: The callbacks :func:`play_timeline` needs (pass as ``env`` to :func:`run_playbook`).
TIMELINE_ENV = {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer,ansible.posix.profile_tasks"}

#: Ansible settings that run a playbook under mitogen's strategy (README "Tests"; plugins/strategy proxies the
#: installed package's): one persistent Python per host instead of a module upload per task. The hosts must use a
#: connection mitogen knows by its short name (``ansible_connection: docker``); the connection timeout covers
#: mitogen's bootstrap on every host at a run's first task, which takes longer than 10 s on 2 busy cores.
MITOGEN_ENV = {"ANSIBLE_STRATEGY_PLUGINS": str(ROOT / "plugins" / "strategy"), "ANSIBLE_STRATEGY": "mitogen_linear",
               "ANSIBLE_TIMEOUT": "60"}

# "rt-redis-1                 : ok=52   changed=31   unreachable=0    failed=0 ..."
_RECAP_LINE = re.compile(r"^(?P<host>\S+)\s+:\s+(?P<counts>(?:\w+=\d+\s*)+)$")


def parse_recap(output: str) -> dict[str, dict[str, int]]:
    """Per-host counts of the last PLAY RECAP of ansible-playbook's output:
    ``{host: {"ok": n, "changed": n, "unreachable": n, "failed": n, "skipped": n,
    "rescued": n, "ignored": n}}`` (empty when there is no recap)."""
    recap: dict[str, dict[str, int]] = {}
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("PLAY RECAP")]
    if not starts:
        return recap
    for line in lines[starts[-1] + 1:]:
        match = _RECAP_LINE.match(line.strip())
        if not match:
            if recap:
                break
            continue
        recap[match["host"]] = {k: int(v) for k, v in
                                (kv.split("=") for kv in match["counts"].split())}
    return recap


def changed_tasks(output: str) -> dict[str, set[str]]:
    """The tasks and handlers that reported a change, from ansible-playbook's default output:
    ``{"role : task name": {host, ...}}`` (a looped task counts once per host; a delegated task under
    the host it ran for)."""
    changed: dict[str, set[str]] = {}
    task = None
    for line in output.splitlines():
        banner = _TASK_BANNER.match(line)
        if banner:
            task = banner.group("name")
            continue
        match = _CHANGED_LINE.match(line)
        if match and task is not None:
            changed.setdefault(task, set()).add(match.group("host"))
    return changed


def play_timeline(output: str) -> list[tuple[str, float]]:
    """Each play of a run and its duration in seconds, from the output of a run with ``TIMELINE_ENV``
    (ansible.posix.profile_tasks prints the time since the run began under every task banner).

    Returns:
        ``[(play name, seconds)]`` in run order; a play without any task line is left out. The last play
        lasts until the last timestamp of the run.
    """
    starts: list[tuple[str, float]] = []
    play, last = None, 0.0
    for line in output.splitlines():
        banner = _PLAY_BANNER.match(line)
        if banner:
            play = banner.group("name")
            continue
        elapsed = _PROFILE_ELAPSED.search(line)
        if elapsed:
            last = int(elapsed.group("h")) * 3600 + int(elapsed.group("m")) * 60 + float(elapsed.group("s"))
            if play is not None:
                starts.append((play, last))
                play = None
    ends = [start for _, start in starts[1:]] + [last]
    return [(name, round(end - start, 1)) for (name, start), end in zip(starts, ends)]


@dataclass
class PlaybookRun:
    """One finished ansible-playbook run: exit code, wall seconds, output (stdout then stderr),
    and the PLAY RECAP's per-host counts."""

    returncode: int
    seconds: float
    output: str
    recap: dict[str, dict[str, int]]

    def changed(self) -> dict[str, int]:
        """Host -> its ``changed`` count, for the hosts with at least one change."""
        return {host: counts["changed"] for host, counts in self.recap.items() if counts.get("changed")}

    def changed_tasks(self) -> dict[str, set[str]]:
        """Task or handler name -> the hosts on which it reported a change (:func:`changed_tasks`)."""
        return changed_tasks(self.output)

    def tail(self, chars: int = 3000) -> str:
        """The end of the output, for an assertion message."""
        return self.output[-chars:]


def inventory() -> str:
    """The inventory of the stack under test: ``RTSTACK_INVENTORY``, else molecule's."""
    return os.environ.get("RTSTACK_INVENTORY") or os.environ["MOLECULE_INVENTORY_FILE"]


def run_playbook(playbook: str, *args: str, timeout: float = 900.0, env: dict[str, str] | None = None) -> PlaybookRun:
    """Run ``ansible-playbook -i <inventory> playbooks/<playbook> <args>`` in the repository.

    Args:
        playbook: a file name under ``playbooks/`` (``"site.yml"``) or a path.
        args: more arguments (``"--limit", "nginx"``, ``"--check"``, ...).
        timeout: seconds before the run is killed (``subprocess.TimeoutExpired`` is raised).
        env: extra environment variables.

    Returns:
        A :class:`PlaybookRun`; a failed run is returned too (check ``returncode``).
    """
    path = Path(playbook) if "/" in playbook else ROOT / "playbooks" / playbook
    full_env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0",
                "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.timer", **(env or {})}
    full_env.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    start = time.monotonic()
    result = subprocess.run(["ansible-playbook", "-i", inventory(), str(path), *args], cwd=ROOT, env=full_env,
                            capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    return PlaybookRun(result.returncode, time.monotonic() - start, output, parse_recap(result.stdout))
