"""The official JavaScript SDK (centrifuge-js) as a test and benchmark client: Centrifugo clients
under Node (``rtclient/js/client.mjs``), for the transports the Python client does not speak:
HTTP-streaming and SSE, the bidirectional emulation of https://centrifugal.dev/docs/transports/overview
(commands go as POSTs to ``/emulation``, which any node forwards to the node holding the stream).

- :func:`transports` builds centrifuge-js's transport list for a base URL (the site behind nginx,
  or one node's own client port);
- :class:`NodeClients` runs one Node process with ``count`` clients of one config, and records its
  events (JSON lines) with their receive times.

The npm packages are pinned by ``rtclient/js/package-lock.json`` and installed by ``make node-client``
(:func:`ensure_installed` does the same on first use). Node 20 or newer.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

JS_DIR = Path(__file__).resolve().parent / "js"
SCRIPT = JS_DIR / "client.mjs"

#: Centrifugo v6's bidirectional transports and their paths under the connection prefix
#: (``websocket.handler_prefix``, ``http_stream.handler_prefix``, ``sse.handler_prefix``).
TRANSPORTS = ("websocket", "http_stream", "sse")
CONNECTION_PREFIX = "/connection"
EMULATION_PATH = "/emulation"

Event = dict[str, Any]


class NodeClientError(RuntimeError):
    """The Node client could not start, or an expected event did not come in time (the message
    quotes the last events and stderr)."""


def ensure_installed() -> None:
    """``npm ci`` in rtclient/js when its node_modules is missing or older than the lock file.

    Raises NodeClientError when npm fails (its output is in the message)."""
    marker = JS_DIR / "node_modules" / ".package-lock.json"
    lock = JS_DIR / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    done = subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=JS_DIR,
                          capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise NodeClientError(f"npm ci in {JS_DIR} failed:\n{done.stdout}\n{done.stderr}")


def transports(base_url: str, names: Sequence[str] = TRANSPORTS) -> list[dict[str, str]]:
    """centrifuge-js's transport list for ``base_url`` (``https://site`` through nginx, or
    ``http://address:port``, one node's client port): ``[{"transport": "websocket", "endpoint":
    "wss://site/connection/websocket"}, {"transport": "http_stream", "endpoint":
    "https://site/connection/http_stream"}, ...]`` in the order of ``names``.

    Raises ValueError for a name outside :data:`TRANSPORTS`."""
    base = base_url.rstrip("/")
    out = []
    for name in names:
        if name not in TRANSPORTS:
            raise ValueError(f"unknown transport {name!r} (one of {', '.join(TRANSPORTS)})")
        root = base.replace("http", "ws", 1) if name == "websocket" else base
        out.append({"transport": name, "endpoint": f"{root}{CONNECTION_PREFIX}/{name}"})
    return out


def emulation_url(base_url: str) -> str:
    """``/emulation`` under ``base_url`` (where http_stream and sse clients POST their commands)."""
    return base_url.rstrip("/") + EMULATION_PATH


class NodeClients:
    """``count`` centrifuge-js clients in one Node process (see client.mjs for the events).

    Args:
        transport_list: :func:`transports` output (the SDK falls back in this order until one opened).
        emulation_endpoint: absolute ``/emulation`` URL (:func:`emulation_url`).
        cookie: the ``Cookie`` header (Django session; the connect proxy reads it); origin: the
            ``Origin`` header; token: a connection JWT instead of the cookie.
        channels: client-side subscriptions of every client, e.g. ``["rooms:lobby"]``.
        count: clients in the process; quiet: no publication events (use :meth:`stats`).
        ca_file: the site's CA (``NODE_EXTRA_CA_CERTS``).

    Use as a context manager, or call :meth:`close`. ``events`` holds every event so far, each
    with ``"recv"``: ``time.time()`` when this process read it.
    """

    def __init__(self, transport_list: Sequence[dict[str, str]], emulation_endpoint: str, *,
                 cookie: str | None = None, origin: str | None = None, token: str | None = None,
                 channels: Iterable[str] = (), count: int = 1, quiet: bool = False,
                 ca_file: str | None = None) -> None:
        ensure_installed()
        config = {"transports": list(transport_list), "emulationEndpoint": emulation_endpoint,
                  "cookie": cookie, "origin": origin, "token": token, "channels": list(channels),
                  "count": count, "quiet": quiet}
        env = dict(os.environ)
        if ca_file:
            env["NODE_EXTRA_CA_CERTS"] = ca_file
        self.events: list[Event] = []
        self._lock = threading.Condition()
        self._stats: queue.Queue[Event] = queue.Queue()
        self._process = subprocess.Popen(["node", str(SCRIPT), json.dumps(config)], cwd=JS_DIR, env=env,
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, bufsize=1)
        self._stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            event = json.loads(line)
            event["recv"] = time.time()
            if event["event"] == "stats":
                self._stats.put(event)
                continue
            with self._lock:
                self.events.append(event)
                self._lock.notify_all()

    def _read_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            self._stderr.append(line.rstrip())

    def _describe(self) -> str:
        with self._lock:
            tail = self.events[-8:]
        return f"last events: {tail}; stderr: {self._stderr[-8:]}"

    def wait_for(self, predicate: Callable[[Event], bool], timeout: float, what: str = "an event") -> Event:
        """The first event (past or future) for which ``predicate`` is true.

        Raises NodeClientError after ``timeout`` seconds, or if the process exited."""
        deadline = time.monotonic() + timeout
        with self._lock:
            seen = 0
            while True:
                for event in self.events[seen:]:
                    if predicate(event):
                        return event
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0 or self._process.poll() is not None:
                    raise NodeClientError(f"no {what} within {timeout} s; {self._describe()}")
                self._lock.wait(min(left, 0.5))

    def wait_ready(self, timeout: float = 30.0) -> Event:
        """Every client connected and subscribed to every channel (the ``ready`` event)."""
        return self.wait_for(lambda e: e["event"] == "ready", timeout, "ready event")

    def of(self, kind: str, **match: Any) -> list[Event]:
        """Events of type ``kind`` whose fields equal ``match`` (e.g. ``of("connected", i=0)``)."""
        with self._lock:
            return [e for e in self.events if e["event"] == kind and all(e.get(k) == v for k, v in match.items())]

    def publications(self, channel: str | None = None) -> list[Event]:
        """Publication events, of ``channel`` only when given."""
        return [e for e in self.of("publication") if channel is None or e["channel"] == channel]

    def stats(self, timeout: float = 10.0) -> Event:
        """``{connected, subscribed, publications, reconnects, transports: {name: count}}`` now."""
        self._send({"cmd": "stats"})
        try:
            return self._stats.get(timeout=timeout)
        except queue.Empty:
            raise NodeClientError(f"no stats within {timeout} s; {self._describe()}") from None

    def _send(self, command: dict[str, Any]) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()

    @property
    def pid(self) -> int:
        return self._process.pid

    def close(self, timeout: float = 10.0) -> None:
        """Disconnect every client and wait for the process (killed after ``timeout`` seconds)."""
        if self._process.poll() is None:
            try:
                self._send({"cmd": "close"})
                self._process.wait(timeout=timeout)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self._process.kill()
                self._process.wait()

    def __enter__(self) -> "NodeClients":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
