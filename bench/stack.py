"""The deployed stack as the benchmark sees it: addresses, credentials, and the CPU and memory
of the server processes, read from the controller.

The test hosts are containers of this machine, so their processes are this machine's processes:
the Docker API (`docker top`) gives each container's processes with their host PIDs, and
``/proc/<pid>/stat`` and ``/proc/<pid>/status`` give their CPU time and resident memory
(proc(5): utime + stime in clock ticks, VmRSS in kB). Nothing runs inside the hosts to measure.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from pathlib import Path

import docker

from tests import rtclient  # the inventory and container lookups the verify tests use

ROOT = Path(__file__).resolve().parents[1]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

#: Server processes per role, matched against the command line of each container process.
PROCESS_PATTERNS = {
    "nginx": ("nginx: ",),
    "centrifugo": ("/usr/local/bin/centrifugo",),
    "daphne": ("/bin/daphne",),
    "gunicorn": ("/bin/gunicorn",),
    "redis": ("redis-server",),
}
#: The processes each realtime path is made of (what "server CPU" sums).
PATHS = {
    "centrifugo": ("nginx", "centrifugo", "redis"),
    "channels": ("nginx", "daphne", "redis"),
}


@dataclass
class Stack:
    """Where the stack of an inventory runs.

    Attributes:
        inventory: path of the Ansible inventory (``inventories/local/hosts.yml``).
        groups: inventory group -> host (container) names.
        addresses: host name -> IP address on the project's Docker network.
        site_url: the public origin browsers use (``https://127.0.0.1:8443``), sent as ``Origin``.
        credentials_dir: the inventory's generated secrets.
    """

    inventory: str
    groups: dict[str, list[str]]
    addresses: dict[str, str]
    site_url: str
    credentials_dir: Path
    _docker: docker.DockerClient = field(default_factory=docker.from_env, repr=False)

    @classmethod
    def discover(cls, inventory: str = "inventories/local/hosts.yml",
                 site_url: str = "https://127.0.0.1:8443",
                 credentials_dir: str | None = None) -> "Stack":
        """Read the inventory's groups and the containers' addresses (tests.rtclient, as the
        verify tests do).

        Raises:
            subprocess.CalledProcessError: ansible-inventory failed.
            docker.errors.NotFound: a host of the inventory is not a running container
                (run ``make up`` first).
        """
        groups = rtclient.ansible_groups(str(ROOT / inventory))
        addresses = {name: rtclient.container_address(name) for hosts in groups.values() for name in hosts}
        creds = Path(credentials_dir) if credentials_dir else ROOT / Path(inventory).parent / "credentials"
        return cls(inventory, groups, addresses, site_url, creds)

    def address(self, group: str, index: int = 0) -> str:
        """IP address of the ``index``-th host of ``group``."""
        return self.addresses[self.groups[group][index]]

    def credential(self, name: str) -> str:
        """A generated secret of the inventory (tests.rtclient.read_credential)."""
        return rtclient.read_credential(name, str(self.credentials_dir))

    def processes(self) -> list[tuple[int, str]]:
        """``(host pid, command line)`` of every process of every host (one ``docker top`` each)."""
        found = []
        for name in self.addresses:
            top = self._docker.containers.get(name).top(ps_args="-eo pid,args")
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
        import time

        for group, units in units_by_group.items():
            for host in self.groups.get(group, []):
                container = self._docker.containers.get(host)
                code, out = container.exec_run(["systemctl", "restart", *units])
                if code != 0:
                    raise RuntimeError(f"systemctl restart {units} on {host}: {out.decode(errors='replace')}")
                stop_at = time.monotonic() + timeout
                while container.exec_run(["systemctl", "is-active", "--quiet", *units])[0] != 0:
                    if time.monotonic() > stop_at:
                        raise RuntimeError(f"{units} on {host} not active after {timeout} s")
                    time.sleep(0.5)

    def go_memory(self, group: str = "centrifugo", port: int = 9000) -> int:
        """Bytes the Go runtime of every node of ``group`` has in use (heap + stacks), from
        Centrifugo's Prometheus endpoint (``go_memstats_heap_inuse_bytes`` +
        ``go_memstats_stack_inuse_bytes``): live memory, unlike RSS, which keeps what the
        garbage collector freed but did not return to the kernel."""
        import urllib.request

        total = 0
        for host in self.groups.get(group, []):
            with urllib.request.urlopen(f"http://{self.addresses[host]}:{port}/metrics", timeout=10) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith(("go_memstats_heap_inuse_bytes ", "go_memstats_stack_inuse_bytes ")):
                        total += int(float(line.split()[1]))
        return total

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
