"""The scaled-out scenario's verify tests use the default scenario's fixtures (manifest, hosts by
inventory group, addresses, site URL, logins, clients): loaded from there rather than copied."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "rtstack_default_conftest", Path(__file__).resolve().parents[2] / "default" / "tests" / "conftest.py")
_default = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_default)

manifest = _default.manifest
groups = _default.groups
host_by_name = _default.host_by_name
hosts = _default.hosts
tier_units = _default.tier_units
address = _default.address
site_url = _default.site_url
site_http_url = _default.site_http_url
ca_file = _default.ca_file
ws_url = _default.ws_url
credentials = _default.credentials
login = _default.login
client_factory = _default.client_factory
post_message = _default.post_message
join_room = _default.join_room
