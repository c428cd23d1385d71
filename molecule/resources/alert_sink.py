"""The test stacks' Alertmanager receiver: a webhook sink that appends every notification it receives
(Alertmanager's webhook JSON, one object per line) to a file the tests read.

Usage: python3 alert_sink.py ADDRESS PORT FILE   (standard library only: runs on a bare test host)
Source of the payload's shape: https://prometheus.io/docs/alerting/latest/configuration/#webhook_config
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def serve(address: str, port: int, path: str) -> None:
    """Serve until killed: POST (any path) appends ``{"received": unix seconds, "payload": body}`` to ``path``
    and answers 200; anything else answers 405. A body that is not JSON answers 400 and is not kept."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload = json.loads(body)
            except ValueError:
                self.send_error(400, "not JSON")
                return
            with open(path, "a", encoding="utf-8") as out:
                out.write(json.dumps({"received": time.time(), "payload": payload}) + "\n")
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer((address, port), Handler).serve_forever()


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), sys.argv[3])
