"""Fixtures of the failure drills: the stack manifest (build/<stack>/stack.json; the scenario sets
RTSTACK_STACK_NAME=molecule-ha), its Centrifugo nodes, one event loop and one load shared by every
drill in order, and the figures: written to build/ha-drills.json when the session ends, and appended
as one run to molecule/ha/results/latest.json (a list of runs) when RTSTACK_DRILL_RESULTS=1."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))

from rtclient import auth  # noqa: E402
from rtclient.centrifugo import websocket_url  # noqa: E402
from rtclient.manifest import CentrifugoInstance, Manifest, load_manifest  # noqa: E402

from .load import Load  # noqa: E402

FIGURES = ROOT / "build" / "ha-drills.json"
RESULTS = ROOT / "molecule" / "ha" / "results" / "latest.json"


@pytest.fixture(scope="session")
def manifest() -> Manifest:
    return load_manifest()


@pytest.fixture(scope="session")
def site_url(manifest) -> str:
    """The site's origin through nginx's published port: the manifest's, else RTSTACK_SITE_URL."""
    url = manifest.site_url or os.environ.get("RTSTACK_SITE_URL", "")
    assert url, f"no site_url in {manifest.path} and RTSTACK_SITE_URL is not set"
    return url.rstrip("/")


@pytest.fixture(scope="session")
def nodes(manifest) -> list[CentrifugoInstance]:
    """Every Centrifugo instance (host, name, unit, api_url, health_url, ...)."""
    assert manifest.centrifugo, f"no Centrifugo instance in {manifest.path}"
    return list(manifest.centrifugo)


@pytest.fixture
def api_key() -> str:
    """Centrifugo's HTTP API key, read for each drill: the secret rotation drill replaces it."""
    return auth.read_credential("centrifugo_http_api_key")


@pytest.fixture(scope="session")
def figures():
    results: dict = {}
    yield results
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    if os.environ.get("RTSTACK_DRILL_RESULTS") == "1":
        runs = json.loads(RESULTS.read_text()) if RESULTS.exists() else []
        runs.append({"finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "drills": results})
        RESULTS.write_text(json.dumps(runs, indent=2, sort_keys=True) + "\n")
    print("\nHA drill figures:\n" + json.dumps(results, indent=2, sort_keys=True))


@pytest.fixture(scope="session")
def loop():
    the_loop = asyncio.new_event_loop()
    yield the_loop
    the_loop.close()


@pytest.fixture(scope="session")
def load(loop, site_url):
    ca_file = auth.ca_file()
    session = auth.django_login(site_url, "alice", auth.read_credential("user_alice"), verify=ca_file)
    # The cookies follow Set-Cookie, as a browser's: the secret rotation drill cycles the session's key.
    the_load = Load(websocket_url(site_url), site_url, ca_file, auth.SessionCookies(session.cookies),
                    session.cookies.get("csrftoken", ""))
    loop.run_until_complete(the_load.connect())
    yield the_load
    loop.run_until_complete(the_load.close())
    loop.run_until_complete(asyncio.sleep(1.0))  # let the clients' closing tasks finish
