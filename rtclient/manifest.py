"""The stack manifest: where every part of a deployed stack listens, as ``playbooks/site.yml``
rendered it (``build/<stack name>/stack.json``, schema 1).

Tests, drills and the benchmark read addresses and ports from here instead of re-deriving them
from the inventory, the role defaults or the hosts. Example::

    manifest = load_manifest()                      # RTSTACK_MANIFEST, else build/<name>/stack.json
    for node in manifest.centrifugo:                # every present instance, host then port order
        print(node.name, node.client_url, node.api_url)
    manifest.hosts_in("django")                     # ["mol-django-1"]
    manifest.address("mol-django-1")                # "172.20.0.5"
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The repository root (``build/`` is below it).
ROOT = Path(__file__).resolve().parents[1]
#: The manifest schema this module reads.
SCHEMA = 1
#: Stack name when RTSTACK_STACK_NAME is not set (``make up``'s inventories/local).
DEFAULT_STACK_NAME = "local"


class ManifestError(ValueError):
    """The manifest file exists but is not a schema-1 stack manifest (message names the key)."""


@dataclass(frozen=True)
class Host:
    """One inventory host: its name, private address and inventory groups."""

    name: str
    address: str
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Endpoint:
    """A TCP service of one host (a Redis server or sentinel, PostgreSQL): ``address:port``."""

    host: str
    address: str
    port: int


@dataclass(frozen=True)
class CentrifugoInstance:
    """One Centrifugo node (``centrifugo@<port>.service``) of a host.

    Attributes:
        host: inventory host name; address: its private address.
        name: the node name (``<host>``, or ``<host>-<port>`` on a host with several instances).
        port: client port (WebSocket); internal_port: API, health and metrics port.
        unit: the systemd unit, e.g. ``"centrifugo@8000.service"``.
        client_url: ``ws://<address>:<port>/connection/websocket``.
        base_url: ``http://<address>:<port>``, the node's own client port (every transport's
            ``/connection/<name>`` and ``/emulation`` are under it).
        api_url: ``http://<address>:<internal_port>/api`` (server HTTP API,
            https://centrifugal.dev/docs/server/server_api).
        health_url, metrics_url: ``/health`` and ``/metrics`` (Prometheus) on the internal port.
    """

    host: str
    address: str
    name: str
    port: int
    internal_port: int
    unit: str
    client_url: str
    base_url: str
    api_url: str
    health_url: str
    metrics_url: str


@dataclass(frozen=True)
class DjangoEndpoint:
    """A Django process of a host: gunicorn (``url`` is ``http://``) or daphne (``ws://``)."""

    host: str
    address: str
    port: int
    url: str


@dataclass(frozen=True)
class Nginx:
    """An nginx host: its private address, its plain-HTTP and TLS listen ports, the l4 listener's port
    (``l4_port``, None unless ``centrifugo_mode`` is ``l4``), and the private server Centrifugo's proxy calls
    reach Django through (``proxy_url``: ``http://<address>:<internal_port>/centrifugo``)."""

    host: str
    address: str
    http_port: int
    https_port: int
    internal_port: int
    l4_port: int | None
    proxy_url: str


@dataclass(frozen=True)
class Redis:
    """The Redis tier: servers (the master first is not guaranteed), sentinels (empty unless
    ``redis_mode`` is ``sentinel``), the master name the sentinels monitor, the flavor (``redis`` or
    ``valkey``) the servers and the sentinels run, and what Debian's packages of each name (``names``:
    ``{"server": {...}, "sentinel": {...}}``, the topology's ``redis_flavor_names``: ``cli``, ``service``,
    ``sentinel_service``, ``user``, ``conf``, ``log``, ``sentinel_log``, ...)."""

    servers: tuple[Endpoint, ...]
    sentinels: tuple[Endpoint, ...]
    sentinel_master_name: str
    flavor: str
    sentinel_flavor: str
    names: dict[str, dict[str, str]]

    @property
    def files(self) -> dict[str, str]:
        """The names the tests use: ``cli``, ``server_unit``, ``server_conf`` and ``user`` (the servers'),
        ``sentinel_unit`` and ``sentinel_log`` (the sentinels')."""
        server, sentinel = self.names["server"], self.names["sentinel"]
        return {"cli": server["cli"], "server_unit": server["service"], "server_conf": server["conf"],
                "user": server["user"], "sentinel_unit": sentinel["sentinel_service"],
                "sentinel_log": sentinel["sentinel_log"]}


@dataclass(frozen=True)
class Manifest:
    """A parsed stack manifest (see :func:`load_manifest`). ``manifest["key"]`` reads the raw
    JSON document; the attributes are its typed view."""

    path: Path
    name: str
    topology_sha256: str
    site_url: str
    site_http_url: str
    public_origins: tuple[str, ...]
    realtime_backend: str
    centrifugo_client_auth: str
    redis_mode: str
    hosts: dict[str, Host]
    redis: Redis
    postgresql: tuple[Endpoint, ...]
    centrifugo: tuple[CentrifugoInstance, ...]
    gunicorn: tuple[DjangoEndpoint, ...]
    daphne: tuple[DjangoEndpoint, ...]
    nginx: tuple[Nginx, ...]
    versions: dict[str, str]
    centrifugo_mode: str
    centrifugo_websocket_urls: tuple[str, ...]
    channel_layer: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @property
    def centrifugo_websocket_url(self) -> str:
        """Where clients open Centrifugo's WebSocket from outside, for the site's first public origin:
        ``wss://<site>/connection/websocket`` through nginx's HTTP proxy (``centrifugo_mode`` l7), or
        ``wss://<site host name>:<l4 public port>/connection/websocket`` through its stream passthrough (l4,
        Centrifugo terminating TLS). Empty when the manifest names no public origin."""
        return self.centrifugo_websocket_urls[0] if self.centrifugo_websocket_urls else ""

    def __getitem__(self, key: str) -> Any:
        """The raw document's value for ``key``; KeyError when absent."""
        return self.raw[key]

    def hosts_in(self, group: str) -> list[str]:
        """Names of the hosts in inventory ``group``, in manifest order (empty if none)."""
        return [host.name for host in self.hosts.values() if group in host.groups]

    def groups(self) -> dict[str, list[str]]:
        """Inventory group -> host names, for every group some host is in."""
        out: dict[str, list[str]] = {}
        for host in self.hosts.values():
            for group in host.groups:
                out.setdefault(group, []).append(host.name)
        return out

    def address(self, host: str) -> str:
        """The private address of ``host``.

        Raises:
            KeyError: ``host`` is not in the manifest (the message lists the known hosts).
        """
        try:
            return self.hosts[host].address
        except KeyError:
            raise KeyError(f"host {host!r} is not in the manifest {self.path} "
                           f"(hosts: {', '.join(self.hosts)})") from None

    def centrifugo_on(self, host: str) -> list[CentrifugoInstance]:
        """The Centrifugo instances of ``host``, by port (empty if it runs none)."""
        return [node for node in self.centrifugo if node.host == host]

    def gunicorn_on(self, host: str) -> list[DjangoEndpoint]:
        """The gunicorn endpoint(s) of ``host`` (empty if it runs none)."""
        return [item for item in self.gunicorn if item.host == host]

    def daphne_on(self, host: str) -> list[DjangoEndpoint]:
        """The daphne processes of ``host``, by port (empty if it runs none)."""
        return [item for item in self.daphne if item.host == host]

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | str = "<memory>") -> "Manifest":
        """Parse a schema-1 manifest document.

        Raises:
            ManifestError: wrong schema, a missing key or a value of the wrong shape (the message
                names the path and the key).
        """
        path = Path(path)
        where = f"stack manifest {path}"
        if not isinstance(data, dict):
            raise ManifestError(f"{where}: not a JSON object")
        if data.get("schema") != SCHEMA:
            raise ManifestError(f"{where}: schema {data.get('schema')!r}, this client reads schema {SCHEMA}")

        def get(container: dict, key: str, context: str = "") -> Any:
            if key not in container:
                raise ManifestError(f"{where}: missing key {context}{key!r}")
            return container[key]

        def items(container: dict, key: str, context: str = "") -> list[dict]:
            value = get(container, key, context)
            if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
                raise ManifestError(f"{where}: {context}{key!r} must be a list of objects")
            return value

        def build(kind, entries: list[dict], context: str, ints: tuple[str, ...] = ()) -> tuple:
            out = []
            for index, entry in enumerate(entries):
                ctx = f"{context}[{index}]."
                values = {name: get(entry, name, ctx) for name in kind.__dataclass_fields__}
                try:
                    values.update({name: int(values[name]) for name in ints})
                except (TypeError, ValueError):
                    raise ManifestError(f"{where}: {ctx}{ints} must be integers") from None
                out.append(kind(**values))
            return tuple(out)

        hosts_raw = get(data, "hosts")
        if not isinstance(hosts_raw, dict):
            raise ManifestError(f"{where}: 'hosts' must be an object")
        hosts = {name: Host(name, get(entry, "address", f"hosts.{name}."),
                            tuple(get(entry, "groups", f"hosts.{name}.")))
                 for name, entry in hosts_raw.items()}
        redis_raw = get(data, "redis")
        django_raw = get(data, "django")
        return cls(
            path=path,
            name=get(data, "name"),
            topology_sha256=get(data, "topology_sha256"),
            site_url=str(get(data, "site_url")).rstrip("/"),
            site_http_url=str(get(data, "site_http_url") or "").rstrip("/"),
            public_origins=tuple(get(data, "public_origins")),
            realtime_backend=get(data, "realtime_backend"),
            centrifugo_client_auth=get(data, "centrifugo_client_auth"),
            redis_mode=get(data, "redis_mode"),
            hosts=hosts,
            redis=Redis(build(Endpoint, items(redis_raw, "servers", "redis."), "redis.servers", ("port",)),
                        build(Endpoint, items(redis_raw, "sentinels", "redis."), "redis.sentinels", ("port",)),
                        get(redis_raw, "sentinel_master_name", "redis."), get(redis_raw, "flavor", "redis."),
                        get(redis_raw, "sentinel_flavor", "redis."), dict(get(redis_raw, "names", "redis."))),
            postgresql=build(Endpoint, items(data, "postgresql"), "postgresql", ("port",)),
            centrifugo=build(CentrifugoInstance, items(data, "centrifugo"), "centrifugo",
                             ("port", "internal_port")),
            gunicorn=build(DjangoEndpoint, items(django_raw, "gunicorn", "django."), "django.gunicorn", ("port",)),
            daphne=build(DjangoEndpoint, items(django_raw, "daphne", "django."), "django.daphne", ("port",)),
            nginx=build(Nginx, items(data, "nginx"), "nginx", ("http_port", "https_port", "internal_port")),
            versions=dict(get(data, "versions")),
            centrifugo_mode=get(get(data, "centrifugo_public"), "mode", "centrifugo_public."),
            centrifugo_websocket_urls=tuple(get(get(data, "centrifugo_public"), "websocket_urls", "centrifugo_public.")),
            channel_layer=get(django_raw, "channel_layer", "django."),
            raw=data,
        )


def manifest_path(path: str | os.PathLike | None = None) -> Path:
    """Where the manifest is read from: ``path``, else env ``RTSTACK_MANIFEST``, else
    ``<repo>/build/<env RTSTACK_STACK_NAME or "local">/stack.json``."""
    if path:
        return Path(path)
    if os.environ.get("RTSTACK_MANIFEST"):
        return Path(os.environ["RTSTACK_MANIFEST"])
    return ROOT / "build" / (os.environ.get("RTSTACK_STACK_NAME") or DEFAULT_STACK_NAME) / "stack.json"


def load_manifest(path: str | os.PathLike | None = None) -> Manifest:
    """Read and parse the stack manifest (location: see :func:`manifest_path`).

    Raises:
        FileNotFoundError: no manifest there; the message names the path and says to run
            ``playbooks/site.yml``, which renders it.
        ManifestError: the file is not valid JSON or not a schema-1 manifest.
    """
    where = manifest_path(path)
    try:
        text = where.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"stack manifest {where} not found: run playbooks/site.yml "
                                "(it renders the manifest), or point RTSTACK_MANIFEST / "
                                "RTSTACK_STACK_NAME at the stack's manifest") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError(f"stack manifest {where}: not JSON ({exc})") from None
    return Manifest.from_dict(data, where)
