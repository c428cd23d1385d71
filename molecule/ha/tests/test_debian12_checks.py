"""The default scenario's browser, security and firewall checks, run here against the Debian 12 tiers
(nginx, Django, Centrifugo, PostgreSQL; the default scenario runs on Debian 13), so that each release
gets them at least once. Here they also prove Valkey: the Redis ACL checks and Channels' channel layer
and presence (channels_redis through the sentinels) run against the Valkey master.

The tests are the default scenario's own modules, loaded from there rather than copied, less the three that
check Ansible's or the app's own behaviour rather than the hosts' (``RELEASE_INDEPENDENT``: the same on every
release, and the verbose diff one takes two minutes). They run in the first verify only (before the failure
drills): the second verify checks that the cluster is whole again, which these would not prove more of.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

DEFAULT_TESTS = Path(__file__).resolve().parents[2] / "default" / "tests"
#: Tests of the playbooks' output, validate-before-reload and the app's login lockout (django-axes, waiting out
#: its cool-off), not of a host's release: run by the default scenario.
RELEASE_INDEPENDENT = {"test_no_secret_in_verbose_diff_output", "test_failed_config_check_keeps_the_old_config_live",
                       "test_failed_logins_lock_the_username_out_until_the_cool_off"}
#: Written when this module is first collected in a scenario run (molecule's ephemeral directory is
#: the run's own): the second verify finds it and skips the module.
MARKER = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent")) / "debian12-checks.started"

if MARKER.exists():
    pytestmark = pytest.mark.skip(reason="ran in this scenario's first verify")
elif MARKER.parent.is_dir():
    MARKER.touch()

for _name in ("test_browser", "test_security", "test_firewall"):
    _spec = importlib.util.spec_from_file_location(f"rtstack_default_{_name}", DEFAULT_TESTS / f"{_name}.py")
    _module = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    globals().update({key: value for key, value in vars(_module).items()
                      if (key.startswith("test_") and key not in RELEASE_INDEPENDENT) or key == "browser"})
