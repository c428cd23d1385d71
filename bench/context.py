"""What every measurement of a benchmark run shares: the stack (from its manifest), the load generator,
the logged-in session and its cookie, JWTs, the rooms, what each path's connections are and its
publisher."""
from __future__ import annotations

import argparse
from rtclient import auth
from rtclient.publish import CentrifugoPublisher, ChannelsPublisher, Publisher

from .load import Target
from .loadgen import LoadGenerator
from .stack import Stack, backend


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of every command that drives the deployed stack (python -m bench, bench.knobs,
    bench.capacity --check): where the stack is, who logs in, and the load generator's protocol."""
    parser.add_argument("--manifest", default=None,
                        help="the stack manifest (default: RTSTACK_MANIFEST, else "
                             "build/<RTSTACK_STACK_NAME or local>/stack.json)")
    parser.add_argument("--credentials-dir", default=None,
                        help="the inventory's generated secrets (default: RTSTACK_CREDENTIALS_DIR, else "
                             "inventories/local/credentials)")
    parser.add_argument("--user", default="alice")
    parser.add_argument("--room", default="bench")
    parser.add_argument("--client-protocol", default="protobuf", choices=("json", "protobuf"),
                        help="Centrifugo client protocol of the load generator (bench/README.md: why protobuf)")


def add_load_arguments(parser: argparse.ArgumentParser, idle_connections: str, burst: int) -> None:
    """The options of the measurements python -m bench and bench.knobs share (fan-out, idle memory, burst),
    with the two defaults that differ between them."""
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--messages", type=int, default=100, help="fan-out messages per path")
    parser.add_argument("--rate", type=float, default=10.0, help="fan-out messages per second")
    parser.add_argument("--size", type=int, default=100, help="payload bytes")
    parser.add_argument("--drain-timeout", type=float, default=60.0, help="seconds to wait for deliveries")
    parser.add_argument("--burst", type=int, default=burst)
    parser.add_argument("--idle-connections", default=idle_connections,
                        type=lambda v: [int(x) for x in v.split(",")], help="idle memory at these counts")
    parser.add_argument("--burst-concurrency", type=int, default=500)
    parser.add_argument("--burst-rooms", type=int, default=100,
                        help="rooms the burst and max-connections clients are spread over")
    parser.add_argument("--deadline", type=float, default=180.0, help="seconds to open a batch of connections")


class BenchContext:
    """One benchmark run against a deployed stack.

    Args:
        args: the parsed command line (``python -m bench --help``).
        stack: the stack (bench.stack.Stack.discover).
        loadgen: the running load generator, which holds every client connection of the run.

    Logs ``args.user`` in through Django's login form and joins ``args.room`` (the join view
    creates public rooms). Raises rtclient.auth.LoginError or requests errors when the site
    refuses or does not answer.
    """

    def __init__(self, args: argparse.Namespace, stack: Stack, loadgen: LoadGenerator) -> None:
        self.args, self.stack, self.loadgen = args, stack, loadgen
        manifest = stack.manifest
        self.site_url = stack.site_url
        session = auth.django_login(self.site_url, args.user, stack.credential(f"user_{args.user}"),
                                    verify=self.target.ca_file)
        self.session = session
        self.join_rooms([args.room])
        self.cookie = auth.cookie_header(session)
        self.channel = f"rooms:{args.room}"
        self.rooms: list[str] = [args.room]
        # Every node's server API, the first one first (CentrifugoPublisher falls over to the next).
        self.api_urls = [node.api_url for node in manifest.centrifugo]
        self.api_key = stack.credential("centrifugo_http_api_key")
        # Standalone Redis (make up's inventory): its first server. A sentinel deployment would
        # need the current master instead.
        redis = manifest.redis.servers[0]
        self.redis_url = (f"redis://django:{stack.credential('redis_django_password')}"
                          f"@{redis.address}:{redis.port}/0")

    def token(self, path: str = auth.CONNECTION_TOKEN_PATH, **params: str) -> str:
        """A JWT from one of Django's token views (rtclient.auth.fetch_token; raises TokenError)."""
        return auth.fetch_token(self.session, self.site_url, path, **params)

    def spread_rooms(self) -> list[str]:
        """The ``--burst-rooms`` rooms burst clients are spread over (created through the join
        view), kept as ``self.rooms``. One room for thousands of clients would measure the rooms
        namespace's join/leave pushes (each subscribe is pushed to every subscriber already there:
        quadratic), not connection handling; a chat spreads its users over rooms."""
        names = [f"{self.args.room}-{k}" for k in range(self.args.burst_rooms)]
        self.join_rooms(names)
        self.rooms = names
        return names

    def join_rooms(self, names: list[str]) -> None:
        """Join each room as ``args.user``: a room exists once someone joined it (the join view creates
        public rooms). Raises requests.HTTPError when the site refuses."""
        for name in names:
            self.session.get(f"{self.site_url}/rooms/join/", params={"name": name},
                             timeout=10).raise_for_status()

    @property
    def target(self) -> Target:
        """What the clients connect to, from the stack's manifest as it is now (Stack.select reads it again)."""
        nginx = self.stack.manifest.nginx[0]
        return Target(f"{nginx.address}:{nginx.https_port}", self.site_url,
                      str(self.stack.credentials_dir / "tls" / "ca.crt"), self.args.room,
                      centrifugo=f"{nginx.address}:{nginx.l4_port}" if nginx.l4_port else "")

    def spec(self, path: str, auth_kind: str = "cookie", rooms: list[str] | None = None) -> dict:
        """What the load generator opens (bench/loadgen/conns.go ``spec``): connections of ``path``
        (a setup of bench.stack.SETUPS: its backend, ``centrifugo`` or ``channels``) authenticated by ``auth_kind`` (``cookie``, or ``jwt``: a
        connection token, and on Centrifugo a subscription token per room, so that neither the
        connect nor the subscribe proxy is called), connection i in room ``rooms[i % len(rooms)]``
        (default: the benchmark room). Raises rtclient.auth.TokenError when Django refuses a token."""
        rooms = rooms or [self.args.room]
        path = backend(path)
        token = self.token(auth.CONNECTION_TOKEN_PATH) if auth_kind == "jwt" else ""
        spec = {"path": path, "origin": self.target.origin, "ca_file": self.target.ca_file, "rooms": rooms,
                "token": token, "cookie": "" if token else self.cookie, "timeout": 60.0}
        if path == "centrifugo":
            sub_tokens = [self.token(auth.SUBSCRIPTION_TOKEN_PATH, channel=f"rooms:{r}") for r in rooms] if token else []
            return {**spec, "url": self.target.centrifugo_url, "channel": "rooms:%s", "sub_tokens": sub_tokens,
                    "protocol": self.args.client_protocol}
        return {**spec, "url": self.target.channels_url}

    def publisher(self, path: str) -> Publisher:
        """The publisher of ``path`` (a setup of bench.stack.SETUPS): Centrifugo's server API, or channels_redis
        ``group_send`` on the layer the stack runs."""
        if backend(path) == "centrifugo":
            return CentrifugoPublisher(self.api_urls, self.api_key, self.channel)
        return ChannelsPublisher(self.redis_url, f"chat_room.{self.args.room}", self.stack.manifest.channel_layer)
