"""Real clients of a deployed rtstack, shared by the molecule verify tests, the HA drills and the
benchmark (``python -m bench``). One job per module:

- :mod:`rtclient.manifest`: the stack manifest (``build/<stack>/stack.json``, rendered by
  ``playbooks/site.yml``): hosts, addresses and ports of every tier;
- :mod:`rtclient.auth`: Django login, session cookies, generated credentials, JWTs;
- :mod:`rtclient.centrifugo`: one Centrifugo WebSocket client (centrifuge-python);
- :mod:`rtclient.channels`: one Django Channels WebSocket client (websockets);
- :mod:`rtclient.publish`: publishers (Centrifugo's server API through ``cent``, channels_redis, and
  chat messages posted through Django's messages view);
- :mod:`rtclient.history`: the gap fill, a room's messages after an id from Django's database;
- :mod:`rtclient.hosts`: Docker-side helpers (exec in a test-host container);
- :mod:`rtclient.tls`: the TLS context of a ``wss://`` client;
- :mod:`rtclient.node`: centrifuge-js under Node (every transport);
- :mod:`rtclient.prometheus`: Prometheus's HTTP API (queries, targets) and the test stacks' alert sink;
- :mod:`rtclient.dashboards`: the Grafana dashboards' panel queries, as plain Prometheus queries.

Nothing here is a stand-in: the session cookie comes from Django's real login form, and every
WebSocket goes to a real Centrifugo node or daphne process (directly or through nginx).
"""
