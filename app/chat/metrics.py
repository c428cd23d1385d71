"""The Django host's metrics exporter: every gunicorn worker's and daphne process's django-prometheus
metrics, summed into one scrape (``python -m chat.metrics``, the ``chat-metrics`` unit of roles/django).

gunicorn runs several workers and daphne several processes; each writes its samples to files in its own
``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode), one directory per server under a
common root (``/run/chat-metrics/gunicorn``, ``/run/chat-metrics/daphne-<port>``; systemd's
RuntimeDirectory empties each when its server restarts). This exporter merges the files of every
directory, so a scrape reports the whole host, not the one process that happened to answer it.

Source: https://prometheus.github.io/client_python/multiprocess/
"""

from __future__ import annotations

import argparse
import glob
import os
import signal
import threading
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector


class HostCollector:
    """A prometheus_client collector of every multiprocess directory under one root.

    Args:
        root: directory whose subdirectories are the servers' ``PROMETHEUS_MULTIPROC_DIR`` (one level).
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def files(self) -> list[str]:
        """The sample files (``*.db``) of every server directory under the root, sorted."""
        return sorted(glob.glob(os.path.join(self.root, "*", "*.db")))

    def collect(self) -> Iterable[Metric]:
        """The metrics of all the files, summed across processes as MultiProcessCollector does
        (counters and histograms add up; gauges follow their multiprocess_mode)."""
        return MultiProcessCollector.merge(self.files(), accumulate=True)


def registry(root: str) -> CollectorRegistry:
    """A registry holding only a :class:`HostCollector` of ``root`` (no metrics of this process)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(HostCollector(root))
    return reg


def main(argv: list[str] | None = None) -> None:
    """Serve ``/metrics`` on ``--address``:``--port`` until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--address", required=True, help="address to listen on (the host's private address)")
    parser.add_argument("--port", type=int, required=True, help="TCP port")
    parser.add_argument("--root", default="/run/chat-metrics", help="parent of the servers' multiprocess directories")
    args = parser.parse_args(argv)
    start_http_server(args.port, addr=args.address, registry=registry(args.root))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    main()
