"""The deployed stack as the benchmark sees it: addresses and ports (from the stack manifest,
rtclient.manifest), credentials, and the CPU and memory of the server processes, read from the
controller.

The test hosts are containers of this machine, so their processes are this machine's processes:
the Docker API (`docker top`) gives each container's processes with their host PIDs, and
``/proc/<pid>/stat`` and ``/proc/<pid>/status`` give their CPU time and resident memory
(proc(5): utime + stime in clock ticks, VmRSS in kB). Nothing runs inside the hosts to measure.
"""
from __future__ import annotations

import json
import os
import platform
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from rtclient import hosts
from rtclient.auth import read_credential
from rtclient.manifest import Manifest, load_manifest
from rtclient.playbook import run_playbook

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
#: Credentials of ``make up``'s inventory when neither --credentials-dir nor RTSTACK_CREDENTIALS_DIR says.
LOCAL_CREDENTIALS = ROOT / "inventories" / "local" / "credentials"
#: The inventory of `make up`'s stack, which Stack.select converges (unless RTSTACK_INVENTORY names another).
LOCAL_INVENTORY = ROOT / "inventories" / "local" / "hosts.yml"

#: Server processes per role, matched against the command line of each container process.
PROCESS_PATTERNS = {
    "nginx": ("nginx: ",),
    "centrifugo": ("/usr/local/bin/centrifugo",),
    "daphne": ("/bin/daphne",),
    "gunicorn": ("/bin/gunicorn",),
    "redis": ("redis-server", "valkey-server"),
}
#: The setups a run can measure (``--paths``): name -> (its realtime backend, the inventory values that select it).
#: ``centrifugo`` and ``centrifugo_l4`` differ in nginx_centrifugo_mode (HTTP proxying against TCP passthrough with
#: Centrifugo terminating TLS); ``channels`` and ``channels_pubsub`` in django_channel_layer (channels_redis's
#: RedisChannelLayer against RedisPubSubChannelLayer). Stack.select converges the stack to a setup's values.
SETUPS: dict[str, tuple[str, dict[str, str]]] = {
    "centrifugo": ("centrifugo", {"nginx_centrifugo_mode": "l7"}),
    "centrifugo_l4": ("centrifugo", {"nginx_centrifugo_mode": "l4"}),
    "channels": ("channels", {"django_channel_layer": "redis"}),
    "channels_pubsub": ("channels", {"django_channel_layer": "redis_pubsub"}),
}


def backend(path: str) -> str:
    """The realtime backend of a setup of :data:`SETUPS`: ``"centrifugo"`` or ``"channels"``. KeyError otherwise."""
    return SETUPS[path][0]


#: The processes each backend's path is made of (what "server CPU" sums), by setup.
_ROLES = {"centrifugo": ("nginx", "centrifugo", "redis"), "channels": ("nginx", "daphne", "redis")}
PATHS = {name: _ROLES[kind] for name, (kind, _) in SETUPS.items()}

#: Units restarted before a path's measurements, per inventory group (Stack.restart): fresh processes, as Go,
#: Python and nginx keep memory they freed.
_RESTART = {
    "centrifugo": {"nginx": ["nginx"], "centrifugo": ["centrifugo@*"]},  # every Centrifugo instance
    "channels": {"nginx": ["nginx"], "django": ["chat-daphne@*"]},  # every daphne instance
}
RESTART = {name: _RESTART[kind] for name, (kind, _) in SETUPS.items()}
#: The tags of site.yml that apply a setup's values (the tiers that read them; the firewall opens the l4 port).
SETUP_TAGS = "firewall,centrifugo,nginx,django"


@dataclass
class Stack:
    """Where the stack runs, from its manifest.

    Attributes:
        manifest: the stack manifest (hosts, addresses, ports of every tier).
        site_url: the public origin browsers use (``https://127.0.0.1:8443``), sent as ``Origin``.
        credentials_dir: the inventory's generated secrets.
    """

    manifest: Manifest
    site_url: str
    credentials_dir: Path

    @classmethod
    def discover(cls, manifest_path: str | None = None, site_url: str | None = None,
                 credentials_dir: str | None = None) -> "Stack":
        """Read the manifest (``manifest_path``, else RTSTACK_MANIFEST, else
        build/<RTSTACK_STACK_NAME or local>/stack.json); ``site_url`` defaults to the manifest's,
        ``credentials_dir`` to RTSTACK_CREDENTIALS_DIR, else inventories/local/credentials.

        Raises:
            FileNotFoundError: no manifest (run playbooks/site.yml, i.e. ``make up``, first).
        """
        manifest = load_manifest(manifest_path)
        creds = credentials_dir or os.environ.get("RTSTACK_CREDENTIALS_DIR") or LOCAL_CREDENTIALS
        return cls(manifest, (site_url or manifest.site_url).rstrip("/"), Path(creds))

    def settings(self) -> dict[str, str]:
        """The values of :data:`SETUPS` the deployed stack runs, from its manifest."""
        return {"nginx_centrifugo_mode": self.manifest.centrifugo_mode,
                "django_channel_layer": self.manifest.channel_layer}

    def select(self, values: dict[str, str], timeout: float = 900.0) -> float:
        """Converge the stack to ``values`` (a setup's of :data:`SETUPS`; the other settings kept as they are) with
        ``site.yml --tags SETUP_TAGS -e <values>``, unless it runs them already, then read the manifest the run
        rendered. Returns the run's seconds (0 when nothing had to change).

        Raises:
            RuntimeError: the run failed (the message ends with its output's last lines).
        """
        current = self.settings()
        if all(current.get(key) == value for key, value in values.items()):
            return 0.0
        os.environ.setdefault("RTSTACK_INVENTORY", str(LOCAL_INVENTORY))
        run = run_playbook("site.yml", "--tags", SETUP_TAGS, "-e", json.dumps({**current, **values}),
                           timeout=timeout, env={"RTSTACK_BENCH": "1"})
        if run.returncode != 0:
            raise RuntimeError(f"site.yml -e {values} failed (rc {run.returncode}):\n{run.tail()}")
        self.manifest = load_manifest(self.manifest.path)
        return run.seconds

    @property
    def groups(self) -> dict[str, list[str]]:
        """Inventory group -> host (container) names."""
        return self.manifest.groups()

    @property
    def addresses(self) -> dict[str, str]:
        """Host name -> private address on the project's Docker network."""
        return {name: host.address for name, host in self.manifest.hosts.items()}

    def address(self, group: str, index: int = 0) -> str:
        """Private address of the ``index``-th host of ``group``."""
        return self.manifest.address(self.manifest.hosts_in(group)[index])

    def credential(self, name: str) -> str:
        """A generated secret of the inventory (rtclient.auth.read_credential)."""
        return read_credential(name, self.credentials_dir)

    def processes(self) -> list[tuple[int, str]]:
        """``(host pid, command line)`` of every process of every host (one ``docker top`` each)."""
        found = []
        for name in self.addresses:
            top = hosts.container(name).top(ps_args="-eo pid,args")
            found += [(int(pid), args) for pid, args in top["Processes"] or []]
        return found

    def pids(self, role: str, processes: list[tuple[int, str]] | None = None) -> list[int]:
        """Host PIDs of the processes of ``role`` (a key of PROCESS_PATTERNS) on every host, among
        ``processes`` (default: listed now)."""
        patterns = PROCESS_PATTERNS[role]
        return [pid for pid, args in (processes if processes is not None else self.processes())
                if any(p in args for p in patterns)]

    def restart(self, units_by_group: dict[str, list[str]], timeout: float = 60.0) -> None:
        """Restart systemd units on every host of each group (``docker exec ... systemctl
        restart``) and wait until they are active. Raises RuntimeError naming the unit otherwise."""
        for group, units in units_by_group.items():
            for host in self.groups.get(group, []):
                container = hosts.container(host)
                code, out = container.exec_run(["systemctl", "restart", *units])
                if code != 0:
                    raise RuntimeError(f"systemctl restart {units} on {host}: {out.decode(errors='replace')}")
                stop_at = time.monotonic() + timeout
                while container.exec_run(["systemctl", "is-active", "--quiet", *units])[0] != 0:
                    if time.monotonic() > stop_at:
                        raise RuntimeError(f"{units} on {host} not active after {timeout} s")
                    time.sleep(0.5)

    def go_memory(self) -> int:
        """Bytes the Go runtime of every Centrifugo instance has in use (heap + stacks), from its
        Prometheus endpoint (the manifest's ``metrics_url``; ``go_memstats_heap_inuse_bytes`` +
        ``go_memstats_stack_inuse_bytes``): live memory, unlike RSS, which keeps what the
        garbage collector freed but did not return to the kernel."""
        total = 0
        for node in self.manifest.centrifugo:
            with urllib.request.urlopen(node.metrics_url, timeout=10) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith(("go_memstats_heap_inuse_bytes ", "go_memstats_stack_inuse_bytes ")):
                        total += int(float(line.split()[1]))
        return total

    def versions(self) -> dict[str, str]:
        """First output line of each server's version command, run in its host."""
        def run(host: str, *cmd: str) -> str:
            out = hosts.exec_in(host, list(cmd), timeout=30, check=False)
            text = (out.stdout + out.stderr).strip()
            return text.splitlines()[0] if text else ""
        return {
            "centrifugo": run(self.manifest.centrifugo[0].host, "/usr/local/bin/centrifugo", "version"),
            "nginx": run(self.manifest.nginx[0].host, "nginx", "-v"),
            "redis": run(self.manifest.redis.servers[0].host, self.manifest.redis.files["server_unit"], "--version"),
            "daphne": run(self.manifest.hosts_in("django")[0], "/srv/chat/venv/bin/python", "-c",
                          "import daphne, channels, channels_redis, django; print('daphne', daphne.__version__, "
                          "'channels', channels.__version__, 'channels_redis', channels_redis.__version__, "
                          "'django', django.__version__)"),
            "manifest": f"app {self.manifest.versions.get('app', '?')}, "
                        f"centrifugo {self.manifest.versions.get('centrifugo', '?')}",
        }

    def nginx_config(self) -> str:
        """``nginx -T`` of the first nginx host (the whole configuration)."""
        return hosts.exec_in(self.manifest.nginx[0].host, ["nginx", "-T"], timeout=30, check=False).stdout

    def sample(self, roles: tuple[str, ...]) -> "Sample":
        """CPU seconds (user + system, since each process started) and RSS bytes per role."""
        cpu, rss = {}, {}
        processes = self.processes()
        for role in roles:
            cpu[role], rss[role] = 0.0, 0
            for pid in self.pids(role, processes):
                try:
                    stat = Path(f"/proc/{pid}/stat").read_text()
                    status = Path(f"/proc/{pid}/status").read_text()
                except FileNotFoundError:  # exited meanwhile
                    continue
                fields = stat.rsplit(")", 1)[1].split()
                cpu[role] += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime
                for line in status.splitlines():
                    if line.startswith("VmRSS:"):
                        rss[role] += int(line.split()[1]) * 1024
        return Sample(cpu, rss)


@dataclass
class Sample:
    """CPU seconds and RSS bytes per role at one moment."""

    cpu: dict[str, float]
    rss: dict[str, int]

    def cpu_since(self, before: "Sample", roles: tuple[str, ...]) -> float:
        """CPU seconds the ``roles`` used between ``before`` and this sample. A process that
        restarted in between would make this wrong, so a negative delta raises ValueError."""
        delta = sum(self.cpu[r] - before.cpu[r] for r in roles)
        if delta < 0:
            raise ValueError(f"CPU time went backwards for {roles}: a server restarted during the run")
        return delta

    def cpu_figures(self, before: "Sample", roles: tuple[str, ...], client_seconds: dict[str, float]) -> dict:
        """The CPU figures every load measurement reports (bench.report.client_bound compares them):
        ``server_cpu_seconds`` (:meth:`cpu_since`), ``server_cpu_seconds_by_process`` (role -> seconds), the load
        client's ``client_cpu_seconds`` over the same run and ``client_cpu_seconds_by_process`` (``client_seconds``:
        process -> seconds, bench.loadgen.LoadGenerator.cpu_since), each rounded to milliseconds."""
        return {"server_cpu_seconds": round(self.cpu_since(before, roles), 3),
                "server_cpu_seconds_by_process": {r: round(self.cpu[r] - before.cpu[r], 3) for r in roles},
                "client_cpu_seconds": round(sum(client_seconds.values()), 3),
                "client_cpu_seconds_by_process": {k: round(v, 3) for k, v in client_seconds.items()}}


def machine() -> dict:
    """Description of the machine the whole benchmark (servers and clients) runs on."""
    cpu_model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), platform.processor())
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
    import resource

    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "nofile_soft_hard": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "note": "servers (containers) and load clients share these CPUs",
    }
