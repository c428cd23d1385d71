"""chat.metrics: one scrape sums the samples of each server's processes (prometheus_client's
multiprocess files, one directory per server, labelled with it), and serves them over HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request

from chat.metrics import HostCollector, registry
from prometheus_client import generate_latest

COUNT = """
from prometheus_client import Counter
Counter("rtstack_test_requests", "test", ["kind"]).labels(kind="{label}").inc({n})
"""


def _process(directory, label: str, n: int) -> None:
    """One separate process writing its counter to ``directory`` (as a gunicorn worker or daphne does)."""
    directory.mkdir(exist_ok=True)
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    subprocess.run([sys.executable, "-c", COUNT.format(label=label, n=n)], env=env, check=True)


def test_one_scrape_sums_every_process_of_every_server(tmp_path):
    _process(tmp_path / "gunicorn", "wsgi", 2)
    _process(tmp_path / "gunicorn", "wsgi", 3)  # a second worker
    _process(tmp_path / "daphne-8101", "asgi", 5)
    assert len(HostCollector(str(tmp_path)).files()) == 3
    text = generate_latest(registry(str(tmp_path))).decode()
    # Each server's processes summed, each server its own series (its counters reset on their own).
    assert 'rtstack_test_requests_total{kind="wsgi",server="gunicorn"} 5.0' in text
    assert 'rtstack_test_requests_total{kind="asgi",server="daphne-8101"} 5.0' in text
    assert text.count("# TYPE rtstack_test_requests_total counter") == 1


def test_an_empty_root_scrapes_empty(tmp_path):
    assert generate_latest(registry(str(tmp_path))) == b""


def test_the_exporter_serves_them_over_http(tmp_path):
    _process(tmp_path / "gunicorn", "wsgi", 7)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "chat.metrics", "--address", "127.0.0.1", "--port", str(port),
                             "--root", str(tmp_path)])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert 'rtstack_test_requests_total{kind="wsgi",server="gunicorn"} 7.0' in body
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0
