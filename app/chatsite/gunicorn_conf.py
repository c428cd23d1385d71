"""gunicorn settings module (``gunicorn --config python:chatsite.gunicorn_conf``): the hooks of
prometheus_client's multiprocess mode (https://prometheus.github.io/client_python/multiprocess/).

Only hooks live here; the command line (roles/django's unit) sets everything else.
"""

from __future__ import annotations

import os
from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    """When a worker exits, drop its live gauges' files so its values stop counting (its counters stay:
    a counter must not go down while gunicorn runs)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
