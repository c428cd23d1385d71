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


#: The label that tells the servers of a host apart: the name of each one's directory (``gunicorn``,
#: ``daphne-8101``). Each server's counters restart from zero when that server restarts (its directory is
#: emptied); summed over servers, one restart would look like a partial drop, which Prometheus reads as a
#: reset of the whole sum. Per server, each series resets on its own, as counters should.
SERVER_LABEL = "server"


class HostCollector:
    """A prometheus_client collector of every multiprocess directory under one root: each directory's
    processes summed (MultiProcessCollector's merge), its samples labelled with ``server`` = the directory's
    name.

    Args:
        root: directory whose subdirectories are the servers' ``PROMETHEUS_MULTIPROC_DIR`` (one level).
    """

    def __init__(self, root: str) -> None:
        self.root = root

    def files(self) -> list[str]:
        """The sample files (``*.db``) of every server directory under the root, sorted."""
        return sorted(glob.glob(os.path.join(self.root, "*", "*.db")))

    def collect(self) -> Iterable[Metric]:
        """Every server's metrics: counters and histograms added up over its processes, gauges following their
        multiprocess_mode; one family per metric name, with each server's samples. A directory that vanishes
        during the read (its server restarting) is left out of this scrape."""
        families: dict[str, Metric] = {}
        for directory in sorted(glob.glob(os.path.join(self.root, "*", ""))):
            server = os.path.basename(os.path.dirname(directory))
            try:
                merged = MultiProcessCollector.merge(glob.glob(os.path.join(directory, "*.db")), accumulate=True)
            except FileNotFoundError:
                continue
            for metric in merged:
                family = families.setdefault(metric.name, Metric(metric.name, metric.documentation, metric.type))
                for sample in metric.samples:
                    family.samples.append(sample._replace(labels={**sample.labels, SERVER_LABEL: server}))
        return list(families.values())


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
