"""The node-down alert end to end, on the converged default scenario (its side_effect step): stop one
Centrifugo instance and CentrifugoInstanceDown reaches the webhook sink (Alertmanager's receiver in the
local inventory) within 90 s; start it and the resolution reaches the sink too. The measured times are
printed for the closing note.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from rtclient import prometheus  # noqa: E402
from rtclient.hosts import exec_in  # noqa: E402
from rtclient.manifest import load_manifest  # noqa: E402

MANIFEST = load_manifest()
#: The issue's bound: from the stop to the notification at the receiver.
FIRE_WITHIN = 90


def test_a_stopped_centrifugo_instance_fires_its_alert_and_resolves_it():
    server = MANIFEST["monitoring"]["servers"][0]
    victim = MANIFEST.centrifugo[-1]
    # A clean start: the instance's target is up, so a firing notification can only come from this stop.
    prometheus.wait_for(lambda: prometheus.values(
        server["prometheus_url"], f'up{{job="centrifugo",node="{victim.name}"}} == 1'), 60)

    def notified(status: str, since: float):
        return prometheus.first_notification(server["host"], "CentrifugoInstanceDown", status, since,
                                           {"node": victim.name})
    stopped, stopped_wall = time.monotonic(), time.time()
    exec_in(victim.host, ["systemctl", "stop", victim.unit])
    try:
        prometheus.wait_for(lambda: notified("firing", stopped_wall), FIRE_WITHIN, 1)
        fired = time.monotonic() - stopped
    finally:
        started_wall = time.time()
        exec_in(victim.host, ["systemctl", "start", victim.unit])
    # The resolution of the alert that fired after the stop (its startsAt is that firing's).
    resolution = prometheus.wait_for(lambda: notified("resolved", stopped_wall), 90, 1)
    resolved = resolution.received - started_wall
    print(f"\nCentrifugoInstanceDown: at the sink {fired:.1f} s after the stop; resolved {resolved:.1f} s after the start")
    prometheus.wait_for(lambda: prometheus.values(
        server["prometheus_url"], f"min(centrifugo_node_num_nodes) == {len(MANIFEST.centrifugo)}"), 60)
