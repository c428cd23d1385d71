"""The benchmark's load generator: ``build/loadgen`` (Go, source in bench/loadgen/, built by
``make loadgen`` from pinned module versions checked against go.sum), driven from Python.

One Go process holds every client connection of a run: Centrifugo clients are centrifuge-go
(JSON protocol; the official Go SDK), Channels clients gorilla/websocket connections to the app's
consumer. It decodes each delivery and keeps the tally (bench.load.Receipts) so that a benchmark's
figures describe the servers: the Python clients of rtclient spent more CPU than the servers
they measured (the performance issue's "client-bound" figures). Python keeps the orchestration,
the publishers and the report.

Protocol: one JSON command per line on the process's stdin, one JSON reply per line on its
stdout (bench/loadgen/main.go lists them).
"""
from __future__ import annotations

import asyncio
import json
import resource
from dataclasses import dataclass, field
from pathlib import Path

from .load import Receipts
from .stack import ROOT

#: Where ``make loadgen`` writes the binary.
BINARY = ROOT / "build" / "loadgen"


@dataclass
class Opened:
    """Connections opened by one ``open`` command (a group, closed together).

    Attributes:
        group: the load generator's id of these connections.
        count: how many opened.
        handshakes: seconds per opened connection: connect + subscribe (Centrifugo) or connect +
            the consumer's history frame (Channels).
        errors: connections that failed, by kind (``timeout``, ``deadline``, ``status 429``...).
        seconds: wall time of the whole command.
    """

    group: int
    count: int
    handshakes: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


class LoadGenerator:
    """The running ``build/loadgen`` process (``async with LoadGenerator() as gen:``).

    Raises:
        FileNotFoundError: no binary (run ``make loadgen``; ``make bench`` builds it).
        RuntimeError: a command the process refused (its message), or the process ended.
    """

    def __init__(self, binary: Path = BINARY) -> None:
        self.binary = binary
        self.process: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> "LoadGenerator":
        if not self.binary.exists():
            raise FileNotFoundError(f"{self.binary} is missing: run `make loadgen`")
        # One descriptor per client connection: the process inherits this process's limit, raised to the hard one.
        resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
        self.process = await asyncio.create_subprocess_exec(
            str(self.binary), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=256 * 2 ** 20)  # a tally of 100k deliveries is a few MB on one line
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self.process is None:
            return
        self.process.stdin.close()  # the process closes every connection, then exits
        try:
            await asyncio.wait_for(self.process.wait(), 60)
        except asyncio.TimeoutError:
            self.process.kill()
            await self.process.wait()

    async def call(self, cmd: str, **fields: object) -> dict:
        """Send one command and return its reply (raises RuntimeError, see the class)."""
        async with self._lock:
            self.process.stdin.write(json.dumps({"cmd": cmd, **fields}).encode() + b"\n")
            await self.process.stdin.drain()
            line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"loadgen ended (exit {await self.process.wait()}) during {cmd!r}")
        reply = json.loads(line)
        if isinstance(reply, dict) and "error" in reply:
            raise RuntimeError(f"loadgen {cmd}: {reply['error']}")
        return reply

    async def open(self, spec: dict, count: int, concurrency: int = 200, deadline: float = 120.0) -> Opened:
        """Open ``count`` connections described by ``spec`` (bench.context.BenchContext.spec), at
        most ``concurrency`` handshakes in flight, none started after ``deadline`` seconds."""
        reply = await self.call("open", spec=spec, count=count, concurrency=concurrency, deadline=deadline)
        return Opened(reply["group"], reply["opened"], reply["handshakes"], reply["errors"], reply["seconds"])

    async def close(self, opened: Opened | None = None) -> int:
        """Close the connections of ``opened`` (every connection when None); returns how many."""
        return (await self.call("close", group=opened.group if opened else -1))["closed"]

    async def delivered(self) -> int:
        """Deliveries recorded so far (since the last reset)."""
        return (await self.call("delivered"))["delivered"]

    async def receipts(self, reset: bool = False) -> Receipts:
        """The tally of every delivery since the last reset; ``reset`` starts a new one."""
        return Receipts.from_report(await self.call("receipts", reset=reset))

    async def drain(self, expected: int, timeout: float) -> int:
        """Wait until ``expected`` deliveries were recorded, or ``timeout`` seconds passed;
        returns the count."""
        loop = asyncio.get_running_loop()
        stop_at = loop.time() + timeout
        while (count := await self.delivered()) < expected and loop.time() < stop_at:
            await asyncio.sleep(0.1)
        return count

    async def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) the load client used so far, by process: ``loadgen`` (the Go
        process, every connection) and ``python`` (this process: it publishes, posts and orchestrates)."""
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {"loadgen": (await self.call("cpu"))["cpu_seconds"], "python": usage.ru_utime + usage.ru_stime}

    async def cpu_since(self, before: dict[str, float]) -> dict[str, float]:
        """CPU seconds by process since ``before`` (an earlier :meth:`cpu`)."""
        now = await self.cpu()
        return {name: now[name] - before[name] for name in now}
