"""Unit tests of the stack topology and the other filters (plugins/filter/rtstack_topology.py and
rtstack_tiers.py), on plain dicts shaped like Ansible's hostvars and groups: no inventory, no hosts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_plugin(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "plugins" / "filter" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


rtstack = load_plugin("rtstack_topology")
tiers = load_plugin("rtstack_tiers")
listeners = load_plugin("rtstack_listeners")
TopologyError = rtstack.TopologyError
#: What the group_vars chain refuses: an inventory that cannot be wired, or two services on one listener.
Unwirable = (TopologyError, listeners.ListenerClash)


def wired(hostvars, groups):
    """The topology as playbooks/group_vars/all/topology.yml computes it: listeners checked."""
    return listeners.checked(rtstack.topology(hostvars, groups))


def facts(address: str) -> dict:
    return {"ansible_facts": {"default_ipv4": {"address": address}}}


def inventory(**overrides):
    """A five-host stack like inventories/local: host -> vars, and groups."""
    hostvars = {
        "r1": facts("10.0.0.1"),
        "c1": facts("10.0.0.2"),
        "c2": facts("10.0.0.3"),
        "d1": facts("10.0.0.4"),
        "n1": facts("10.0.0.5"),
    }
    for host in hostvars:
        hostvars[host].update({"realtime_backend": "both", "stack_public_origins": ["https://chat.example.com"]})
    for host, values in overrides.items():
        hostvars[host].update(values)
    groups = {"all": list(hostvars), "redis": ["r1"], "centrifugo": ["c1", "c2"], "django": ["d1"], "nginx": ["n1"],
              "ungrouped": []}
    return hostvars, groups


def test_defaults_come_from_the_owner_roles():
    defaults = rtstack.role_defaults()
    django = yaml.safe_load((ROOT / "roles/django/defaults/main.yml").read_text())
    assert defaults["django_port"] == django["django_port"] == 8001
    assert defaults["centrifugo_port"] == 8000 and defaults["redis_port"] == 6379


def test_topology_of_the_default_stack():
    topo = rtstack.topology(*inventory())
    assert topo["hosts"]["c2"] == {"address": "10.0.0.3", "groups": ["centrifugo"]}
    assert [(i["host"], i["name"], i["port"], i["internal_port"]) for i in topo["centrifugo"]] == [
        ("c1", "c1", 8000, 9000), ("c2", "c2", 8000, 9000)]
    assert topo["centrifugo"][1]["api_url"] == "http://10.0.0.3:9000/api"
    assert [i["proxy_url"] for i in topo["centrifugo"]] == ["http://10.0.0.5:8090/centrifugo"] * 2
    assert topo["centrifugo"][0]["client_url"] == "ws://10.0.0.2:8000/connection/websocket"
    assert topo["centrifugo"][0]["base_url"] == "http://10.0.0.2:8000"
    assert topo["centrifugo_transports"] == {
        "bidirectional": ["websocket", "http_stream", "sse"], "unidirectional": [], "emulation": True,
        "connection_prefix": "/connection", "emulation_path": "/emulation"}
    assert topo["personal_namespace"] == "personal"
    assert topo["django"]["gunicorn"] == [{"host": "d1", "address": "10.0.0.4", "port": 8001, "url": "http://10.0.0.4:8001"}]
    assert [d["port"] for d in topo["django"]["daphne"]] == [8101, 8102]
    assert topo["redis"]["servers"] == [{"host": "r1", "address": "10.0.0.1", "port": 6379, "endpoint": "10.0.0.1:6379"}]
    assert topo["redis"]["sentinels"] == [] and topo["postgresql"] == []
    assert topo["nginx"] == [{"host": "n1", "address": "10.0.0.5", "http_port": 80, "https_port": 443,
                              "internal_port": 8090, "l4_port": None, "proxy_url": "http://10.0.0.5:8090/centrifugo"}]
    assert topo["outbox"] == {"enabled": False, "table": "chat_outbox", "notify_channel": "centrifugo_outbox",
                              "partitions": 4}
    assert topo["site_url"] == "https://chat.example.com"
    assert topo["versions"]["centrifugo"] == rtstack.role_defaults()["centrifugo_version"]


def test_transports_and_personal_namespace_are_stack_choices():
    everyone = {"stack_centrifugo_transports": ["websocket"], "stack_centrifugo_uni_transports": ["uni_sse"],
                "stack_personal_namespace": "me"}
    topo = rtstack.topology(*inventory(**{h: everyone for h in ("r1", "c1", "c2", "d1", "n1")}))
    assert topo["centrifugo_transports"]["bidirectional"] == ["websocket"]
    assert topo["centrifugo_transports"]["unidirectional"] == ["uni_sse"]
    assert topo["centrifugo_transports"]["emulation"] is False
    assert topo["personal_namespace"] == "me"


@pytest.mark.parametrize("variable,value,message", [
    ("stack_centrifugo_transports", [], "at least one of websocket"),
    ("stack_centrifugo_transports", "websocket", "must be a list"),
    ("stack_centrifugo_transports", ["websocket", "sockjs"], "each once"),
    ("stack_centrifugo_transports", ["sse", "sse"], "each once"),
    ("stack_centrifugo_uni_transports", ["sse"], "uni_sse, uni_http_stream"),
    ("stack_personal_namespace", "rooms", "not 'rooms'"),
    ("stack_personal_namespace", "a:b", "namespace name"),
])
def test_bad_transports_and_namespaces_name_the_variable(variable, value, message):
    hostvars, groups = inventory(**{h: {variable: value} for h in ("r1", "c1", "c2", "d1", "n1")})
    with pytest.raises(rtstack.TopologyError, match=variable) as error:
        rtstack.topology(hostvars, groups)
    assert message in str(error.value)


def test_a_hosts_own_ports_are_followed():
    topo = rtstack.topology(*inventory(
        d1={"django_port": "8005", "django_daphne_ports": [8111, 8112]},
        c2={"centrifugo_instances": [{"port": 8020, "internal_port": 9020}]},
        r1={"rtstack_private_address": "192.0.2.7"}))
    assert topo["django"]["gunicorn"][0]["port"] == 8005
    assert [d["url"] for d in topo["django"]["daphne"]] == ["ws://10.0.0.4:8111", "ws://10.0.0.4:8112"]
    assert topo["centrifugo"][1]["port"] == 8020 and topo["centrifugo"][1]["health_url"] == "http://10.0.0.3:9020/health"
    assert topo["redis"]["servers"][0]["address"] == "192.0.2.7"


def test_channels_off_means_no_daphne():
    hostvars, groups = inventory()
    for values in hostvars.values():
        values["realtime_backend"] = "centrifugo"
    assert rtstack.topology(hostvars, groups)["django"]["daphne"] == []


def test_several_instances_get_port_suffixed_names_and_absent_ones_stay_listed():
    topo = rtstack.topology(*inventory(c1={"centrifugo_instances": [
        {"port": 8000, "internal_port": 9000}, {"port": 8010, "internal_port": 9010, "state": "absent"}]}))
    names = [(i["name"], i["state"], i["unit"]) for i in topo["centrifugo"] if i["host"] == "c1"]
    assert names == [("c1-8000", "present", "centrifugo@8000.service"), ("c1-8010", "absent", "centrifugo@8010.service")]


def sentinel_inventory():
    """Three Redis servers and three sentinels on hosts that are not Redis servers."""
    hostvars, groups = inventory()
    for name, address in (("r2", "10.0.0.6"), ("r3", "10.0.0.7"), ("s1", "10.0.0.8")):
        hostvars[name] = facts(address)
    for values in hostvars.values():
        values.update({"redis_mode": "sentinel", "realtime_backend": "both"})
    groups.update(redis=["r1", "r2", "r3"], redis_sentinel=["s1", "d1", "n1"], all=list(hostvars))
    return hostvars, groups


def test_sentinel_mode_lists_the_sentinels_of_their_own_group():
    topo = rtstack.topology(*sentinel_inventory())
    assert [s["host"] for s in topo["redis"]["sentinels"]] == ["s1", "d1", "n1"]
    assert topo["redis"]["sentinels"][0] == {"host": "s1", "address": "10.0.0.8", "port": 26379,
                                             "endpoint": "10.0.0.8:26379"}
    assert topo["hosts"]["d1"]["groups"] == ["redis_sentinel", "django"]


def test_firewall_rules_in_sentinel_mode():
    topo = rtstack.topology(*sentinel_inventory())
    server = tiers.firewall_rules(topo, "r2")
    assert server[0]["ports"] == [6379]
    assert {"10.0.0.1", "10.0.0.7", "10.0.0.8", "10.0.0.4", "10.0.0.5"} <= set(server[0]["sources"])
    sentinel = [r for r in tiers.firewall_rules(topo, "s1") if r["ports"] == [26379]]
    assert sentinel and {"10.0.0.1", "10.0.0.2", "10.0.0.4", "10.0.0.5"} <= set(sentinel[0]["sources"])


def test_a_host_without_an_address_is_named_with_the_variable():
    hostvars, groups = inventory()
    hostvars["c2"] = {"realtime_backend": "both"}  # no facts, no rtstack_private_address
    with pytest.raises(TopologyError, match=r"c2: no private address\. Set rtstack_private_address for c2"):
        rtstack.topology(hostvars, groups)


def test_a_malformed_address_is_refused():
    with pytest.raises(TopologyError, match=r"c1: rtstack_private_address must be an IP address \(got 'centrifugo-1'\)"):
        rtstack.topology(*inventory(c1={"rtstack_private_address": "centrifugo-1"}))


def test_two_services_on_one_address_and_port_are_refused():
    with pytest.raises(listeners.ListenerClash, match=r"Two services would listen on 10\.0\.0\.2:8000: .* of c1 and .* of c2"):
        wired(*inventory(c2={"rtstack_private_address": "10.0.0.2"}))
    with pytest.raises(listeners.ListenerClash, match=r"10\.0\.0\.4:8001: django_port of d1 and django_daphne_ports of d1"):
        wired(*inventory(d1={"django_daphne_ports": [8001, 8102]}))
    topo = rtstack.topology(*inventory())
    assert wired(*inventory()) == topo
    assert ["10.0.0.5", 443, "n1", "nginx_tls_listen_port"] in listeners.FilterModule().filters()["rtstack_listeners"](topo)


def test_duplicate_instance_ports_on_a_host_are_refused():
    with pytest.raises(TopologyError, match=r"c1: centrifugo_instances uses port\(s\) \[8000\] twice"):
        rtstack.topology(*inventory(c1={"centrifugo_instances": [
            {"port": 8000, "internal_port": 9000}, {"port": 8000, "internal_port": 9010}]}))


@pytest.mark.parametrize("value", [0, 70000, "http", None])
def test_a_port_that_is_not_a_tcp_port_names_the_host_and_variable(value):
    with pytest.raises(TopologyError, match=r"d1: django_port must be a TCP port"):
        rtstack.topology(*inventory(d1={"django_port": value}))


def test_an_instance_without_ports_is_refused():
    with pytest.raises(TopologyError, match=r"c1: each item of centrifugo_instances needs port and internal_port"):
        rtstack.centrifugo_instances([{"port": 8000}], "c1", host="c1")


def test_the_hash_is_stable_and_follows_the_topology():
    a = rtstack.topology(*inventory())
    b = rtstack.topology(*inventory())
    c = rtstack.topology(*inventory(d1={"django_port": 8005}))
    assert rtstack.topology_sha256(a) == rtstack.topology_sha256(b) != rtstack.topology_sha256(c)
    assert len(rtstack.topology_sha256(a)) == 64


def test_firewall_rules_follow_the_topology():
    topo = rtstack.topology(*inventory(d1={"django_port": 8005},
                                       c2={"centrifugo_instances": [{"port": 8020, "internal_port": 9020}]}))
    centrifugo = tiers.firewall_rules(topo, "c2")
    assert centrifugo[0]["ports"] == [8020] and centrifugo[0]["sources"] == ["10.0.0.5"]
    assert centrifugo[1]["ports"] == [9020] and centrifugo[1]["sources"] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    django = tiers.firewall_rules(topo, "d1")
    # Centrifugo's proxy calls come through nginx's private server, never straight.
    assert django[0]["ports"] == [8005] and django[0]["sources"] == ["10.0.0.5"]
    assert django[1]["ports"] == [8101, 8102] and django[1]["sources"] == ["10.0.0.5"]
    assert tiers.firewall_rules(topo, "n1") == [
        {"comment": "nginx: the public site", "ports": [80, 443], "sources": None},
        {"comment": "nginx: Centrifugo's proxy calls to Django (the private server)", "ports": [8090],
         "sources": ["10.0.0.2", "10.0.0.3"]}]
    redis = tiers.firewall_rules(topo, "r1")
    assert redis == [{"comment": "Redis: the app tiers", "ports": [6379], "sources": ["10.0.0.2", "10.0.0.3", "10.0.0.4"]}]


def ok(address):
    return ["OK", address, "6379"]


@pytest.mark.parametrize("answers,expected", [
    # the sentinels' majority wins over a stale ROLE and the initial master
    ([{"address": "a", "sentinel": ok("10.0.0.2"), "role": ["OK", "master", "1", "x"]},
      {"address": "b", "sentinel": ok("10.0.0.2"), "role": []},
      {"address": "c", "sentinel": ok("10.0.0.1"), "role": []}], "10.0.0.2"),
    # no sentinel answers: the one server that says master
    ([{"address": "10.0.0.3", "sentinel": [], "role": ["OK", "master", "10", "r"]},
      {"address": "10.0.0.1", "sentinel": ["NOAUTH"], "role": ["OK", "slave", "10.0.0.3"]}], "10.0.0.3"),
    # nothing answers (first deployment): the initial master
    ([{"address": "10.0.0.3", "sentinel": [], "role": []}], "10.0.0.9"),
    # two masters and no sentinel: the initial master, never a guess
    ([{"address": "10.0.0.3", "sentinel": [], "role": ["OK", "master", "1", "x"]},
      {"address": "10.0.0.4", "sentinel": [], "role": ["OK", "master", "1", "x"]}], "10.0.0.9"),
    # a garbled sentinel answer is ignored
    ([{"address": "10.0.0.3", "sentinel": ["OK", "(nil)", ""], "role": []}], "10.0.0.9"),
])
def test_redis_current_master(answers, expected):
    assert tiers.redis_current_master(answers, "10.0.0.9") == expected


def test_redis_answers_read_registered_queries():
    topo = rtstack.topology(*inventory())
    hostvars = {"r1": {"_redis_sentinel_query": {"stdout_lines": ok("10.0.0.1")}}}
    assert tiers.redis_answers(hostvars, ["r1"], topo) == [
        {"address": "10.0.0.1", "sentinel": ok("10.0.0.1"), "role": []}]


def test_unaddressed_hosts():
    hostvars, _ = inventory(c1={"ansible_facts": {}})
    assert rtstack.unaddressed(hostvars, ["c1", "c2"]) == ["c1"]


def test_warn_unreachable_names_the_hosts_that_did_not_answer():
    results = [{"item": "c1", "ping": "pong"}, {"item": "r1", "unreachable": True},
               {"item": "d1", "failed": False, "rc": 1, "msg": "Module result deserialization failed"}]
    assert tiers.warn_unreachable(results) == ["r1", "d1"]
    assert tiers.warn_unreachable("{{ not rendered }}") == []


def test_outbox_follows_postgresql_and_its_consumer_may_reach_it():
    hostvars, groups = inventory()
    hostvars["p1"] = facts("10.0.0.6")
    hostvars["p1"].update({"realtime_backend": "both", "stack_public_origins": ["https://chat.example.com"]})
    groups["postgresql"] = ["p1"]
    topo = rtstack.topology(hostvars, groups)
    assert topo["outbox"]["enabled"] is True
    assert topo["postgresql"][0]["outbox_user"] == "centrifugo_outbox"
    (rule,) = tiers.firewall_rules(topo, "p1")
    assert rule["ports"] == [5432] and rule["sources"] == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    for host in hostvars:
        hostvars[host]["stack_outbox"] = False
    topo = rtstack.topology(hostvars, groups)
    assert topo["outbox"]["enabled"] is False
    assert tiers.firewall_rules(topo, "p1")[0]["sources"] == ["10.0.0.4"]
    for host in hostvars:
        hostvars[host]["stack_outbox_partitions"] = 0
    with pytest.raises(TopologyError, match="stack_outbox_partitions"):
        rtstack.topology(hostvars, groups)


def test_outbox_table_is_the_apps():
    models = (ROOT / "app/chat/models.py").read_text()
    assert f'OUTBOX_TABLE = "{rtstack.OUTBOX_TABLE}"' in models


def test_proxies_spread_over_nginx_hosts_else_call_gunicorn_straight():
    hostvars, groups = inventory()
    hostvars["n2"] = dict(facts("10.0.0.6"), realtime_backend="both", stack_public_origins=["https://chat.example.com"])
    groups["nginx"] = ["n1", "n2"]
    topo = rtstack.topology(hostvars, groups)
    assert [i["proxy_url"] for i in topo["centrifugo"]] == ["http://10.0.0.5:8090/centrifugo",
                                                            "http://10.0.0.6:8090/centrifugo"]
    groups["nginx"] = []
    topo = rtstack.topology(hostvars, groups)
    assert {i["proxy_url"] for i in topo["centrifugo"]} == {"http://10.0.0.4:8001/centrifugo"}


monitoring_filters = load_plugin("rtstack_monitoring")


def monitored(**overrides):
    """The five-host stack with monitoring on, Prometheus on r1."""
    hostvars, groups = inventory(**overrides)
    for host in hostvars:
        hostvars[host]["monitoring_enabled"] = True
    groups["monitoring"] = ["r1"]
    return hostvars, groups


def test_monitoring_is_off_by_default_and_lists_nothing():
    topo = rtstack.topology(*inventory())
    assert topo["monitoring"] == {"enabled": False, "servers": [], "exporters": []}
    assert not [r for r in tiers.firewall_rules(topo, "r1") if "Prometheus" in r["comment"] or "exporter" in r["comment"]]


def test_monitoring_without_a_monitoring_host_names_the_variable():
    hostvars, groups = inventory()
    for host in hostvars:
        hostvars[host]["monitoring_enabled"] = True
    with pytest.raises(TopologyError, match="monitoring_enabled is true but the inventory's monitoring group has no host"):
        rtstack.topology(hostvars, groups)


def test_monitoring_lists_every_exporter_from_the_owner_roles_ports():
    topo = rtstack.topology(*monitored(d1={"django_metrics_port": 9900}))
    assert topo["monitoring"]["servers"] == [{
        "host": "r1", "address": "10.0.0.1", "prometheus_port": 9090, "alertmanager_port": 9093, "blackbox_port": 9115,
        "prometheus_url": "http://10.0.0.1:9090", "alertmanager_url": "http://10.0.0.1:9093"}]
    jobs = sorted((e["job"], e["host"], e["endpoint"]) for e in topo["monitoring"]["exporters"])
    assert jobs == sorted([
        ("node", "c1", "10.0.0.2:9100"), ("node", "c2", "10.0.0.3:9100"), ("node", "d1", "10.0.0.4:9100"),
        ("node", "n1", "10.0.0.5:9100"), ("node", "r1", "10.0.0.1:9100"), ("redis", "r1", "10.0.0.1:9121"),
        ("nginx", "n1", "10.0.0.5:9113"), ("nginx_log", "n1", "10.0.0.5:3903"), ("django", "d1", "10.0.0.4:9900")])


def test_an_exporter_port_taken_by_another_service_is_refused():
    with pytest.raises(listeners.ListenerClash, match="django_metrics_port"):
        wired(*monitored(d1={"django_metrics_port": 8001}))


def test_firewall_opens_exporters_to_the_monitoring_hosts_only():
    topo = rtstack.topology(*monitored())
    django = {r["comment"]: r for r in tiers.firewall_rules(topo, "d1")}
    assert django["exporters: scraped by Prometheus"] == {
        "comment": "exporters: scraped by Prometheus", "ports": [9100, 9808], "sources": ["10.0.0.1"]}
    assert django["gunicorn and daphne: Prometheus's liveness probes (blackbox)"]["ports"] == [8001, 8101, 8102]
    centrifugo = tiers.firewall_rules(topo, "c1")
    assert "10.0.0.1" in centrifugo[1]["sources"]  # /metrics on the internal port
    server = {r["comment"]: r for r in tiers.firewall_rules(topo, "r1")}
    assert server["Prometheus and Alertmanager: the monitoring hosts"] == {
        "comment": "Prometheus and Alertmanager: the monitoring hosts", "ports": [9090, 9093], "sources": ["10.0.0.1"]}


def test_scrape_configs_follow_the_topology():
    topo = rtstack.topology(*monitored(c2={"centrifugo_instances": [{"port": 8020, "internal_port": 9020},
                                                                   {"port": 8030, "internal_port": 9030,
                                                                    "state": "absent"}]}))
    jobs = {job["job_name"]: job for job in monitoring_filters.scrape_configs(topo, "r1", "/accounts/login/")}
    assert list(jobs) == ["prometheus", "alertmanager", "centrifugo", "node", "redis", "nginx", "nginx_log", "django",
                          "blackbox_https", "blackbox_websocket", "blackbox_django"]
    assert [(c["targets"], c["labels"]) for c in jobs["centrifugo"]["static_configs"]] == [
        (["10.0.0.2:9000"], {"host": "c1", "node": "c1"}), (["10.0.0.3:9020"], {"host": "c2", "node": "c2-8020"})]
    assert jobs["blackbox_https"]["params"] == {"module": ["site_https"]}
    assert jobs["blackbox_https"]["static_configs"][0]["targets"] == ["https://10.0.0.5:443/accounts/login/"]
    assert jobs["blackbox_websocket"]["static_configs"][0]["targets"] == ["10.0.0.5:443"]
    assert jobs["blackbox_websocket"]["relabel_configs"][-1] == {"target_label": "__address__",
                                                                 "replacement": "127.0.0.1:9115"}
    assert [(c["targets"][0], c["labels"]["server"]) for c in jobs["blackbox_django"]["static_configs"]] == [
        ("http://10.0.0.4:8001/healthz", "gunicorn"), ("http://10.0.0.4:8101/healthz", "daphne"),
        ("http://10.0.0.4:8102/healthz", "daphne")]
    with pytest.raises(ValueError, match="not in the monitoring group"):
        monitoring_filters.scrape_configs(topo, "c1")


def test_exporter_is_the_hosts_listener_of_its_job():
    topo = rtstack.topology(*monitored())
    assert monitoring_filters.exporter(topo, "d1", "django") == {
        "job": "django", "host": "d1", "address": "10.0.0.4", "port": 9808, "endpoint": "10.0.0.4:9808",
        "variable": "django_metrics_port"}
    assert monitoring_filters.exporter(topo, "r1", ["redis", "redis_sentinel"])["job"] == "redis"
    assert monitoring_filters.exporter(topo, "c1", "django") == {}
    assert monitoring_filters.exporter(rtstack.topology(*inventory()), "d1", "node") == {}


def test_channels_only_stack_has_no_websocket_probe():
    topo = rtstack.topology(*monitored(**{h: {"realtime_backend": "channels"} for h in ("r1", "c1", "c2", "d1", "n1")}))
    assert "blackbox_websocket" not in {job["job_name"] for job in monitoring_filters.scrape_configs(topo, "r1")}


def test_blackbox_site_comes_from_the_first_public_origin():
    topo = rtstack.topology(*monitored(**{h: {"stack_public_origins": ["https://chat.example.com:8443"]}
                                          for h in ("r1", "c1", "c2", "d1", "n1")}))
    assert monitoring_filters.blackbox_site(topo) == {
        "server_name": "chat.example.com", "host_header": "chat.example.com:8443", "origin": "https://chat.example.com:8443"}
    assert monitoring_filters.blackbox_site({"site_url": ""}) == {"server_name": "", "host_header": "", "origin": ""}


platforms = load_plugin("rtstack_platforms")


@pytest.mark.parametrize("major,release", [("12", "bookworm"), ("13", "trixie")])
def test_debian_12_and_13_are_supported(major, release):
    facts = {"ansible_distribution": "Debian", "ansible_distribution_major_version": major,
             "ansible_distribution_release": release}
    assert platforms.unsupported_platform(facts, "h1") == ""


@pytest.mark.parametrize("facts,running", [
    ({"ansible_distribution": "Debian", "ansible_distribution_major_version": "11",
      "ansible_distribution_version": "11.11", "ansible_distribution_release": "bullseye"},
     "h1 runs Debian 11.11 (bullseye)"),
    ({"ansible_distribution": "Ubuntu", "ansible_distribution_major_version": "24",
      "ansible_distribution_version": "24.04", "ansible_distribution_release": "noble"}, "h1 runs Ubuntu 24.04 (noble)"),
    ({}, "h1 runs an unknown system"),
])
def test_other_platforms_are_refused_naming_the_host_and_its_system(facts, running):
    message = platforms.unsupported_platform(facts, "h1")
    assert message.startswith(running + ": the roles support Debian 12 (bookworm) and Debian 13 (trixie) only.")


def test_redis_flavor_is_stack_wide_and_checked():
    assert rtstack.topology(*inventory())["redis"]["flavor"] == "redis"
    valkey = rtstack.topology(*inventory(**{h: {"redis_server_flavor": "valkey"} for h in ("r1", "c1", "c2", "d1", "n1")}))
    assert valkey["redis"]["flavor"] == "valkey"
    with pytest.raises(TopologyError, match="redis_server_flavor must be redis or valkey"):
        rtstack.topology(*inventory(**{h: {"redis_server_flavor": "keydb"} for h in ("r1", "c1", "c2", "d1", "n1")}))


def _everywhere(**values):
    return {h: dict(values) for h in ("r1", "c1", "c2", "d1", "n1")}


def test_the_sentinels_run_the_server_flavor_unless_told_otherwise():
    valkey = rtstack.topology(*inventory(**_everywhere(redis_server_flavor="valkey")))["redis"]
    assert valkey["sentinel_flavor"] == "valkey"
    assert valkey["names"]["sentinel"]["sentinel_service"] == "valkey-sentinel"
    # Valkey servers on Debian 13 watched by Debian 12's redis-sentinel (the ha scenario's mix).
    mixed = rtstack.topology(*inventory(**_everywhere(redis_server_flavor="valkey",
                                                      redis_sentinel_flavor="redis")))["redis"]
    assert (mixed["flavor"], mixed["sentinel_flavor"]) == ("valkey", "redis")
    assert mixed["names"]["server"]["conf"] == "/etc/valkey/valkey.conf"
    assert mixed["names"]["server"]["cli"] == "valkey-cli"
    assert mixed["names"]["sentinel"]["sentinel_log"] == "/var/log/redis/redis-sentinel.log"
    assert mixed["names"]["sentinel"]["user"] == "redis"
    with pytest.raises(TopologyError, match="redis_sentinel_flavor must be redis or valkey"):
        rtstack.topology(*inventory(**_everywhere(redis_sentinel_flavor="keydb")))


def test_redis_flavor_names_follow_debians_packages():
    names = rtstack.redis_flavor_names("redis")
    assert (names["package"], names["sentinel_package"], names["pidfile"], names["sentinel_pidfile"]) == (
        "redis-server", "redis-sentinel", "/run/redis/redis-server.pid", "/run/sentinel/redis-sentinel.pid")
    assert rtstack.redis_flavor_names("valkey")["log"] == "/var/log/valkey/valkey-server.log"


def test_realtime_origins_are_each_public_origin_and_its_websocket_form():
    topo = {"public_origins": ["https://chat.example.org", "https://127.0.0.1:8443/", "http://plain.test"]}
    assert tiers.realtime_origins(topo) == ["https://chat.example.org", "wss://chat.example.org",
                                             "https://127.0.0.1:8443", "wss://127.0.0.1:8443",
                                             "http://plain.test", "ws://plain.test"]
    assert tiers.realtime_origins({"public_origins": []}) == []
    assert tiers.realtime_origins(rtstack.topology(*inventory())) == ["https://chat.example.com", "wss://chat.example.com"]


def test_login_limit_exemptions_are_stack_wide_networks():
    assert rtstack.topology(*inventory())["login_limit_exempt"] == []
    exempt = {h: {"stack_login_limit_exempt": ["192.0.2.7", "10.0.0.0/8"]} for h in ("r1", "c1", "c2", "d1", "n1")}
    assert rtstack.topology(*inventory(**exempt))["login_limit_exempt"] == ["192.0.2.7", "10.0.0.0/8"]
    bad = {h: {"stack_login_limit_exempt": ["office"]} for h in ("r1", "c1", "c2", "d1", "n1")}
    with pytest.raises(TopologyError, match="stack_login_limit_exempt: 'office' is not an IP address or network"):
        rtstack.topology(*inventory(**bad))


def l4_inventory(**nginx):
    everyone = {h: {"nginx_centrifugo_mode": "l4"} for h in ("r1", "c1", "c2", "d1", "n1")}
    everyone["n1"].update(nginx)
    return inventory(**everyone)


def test_l4_mode_moves_the_websocket_to_its_own_port_and_centrifugo_to_tls():
    topo = rtstack.topology(*l4_inventory(nginx_centrifugo_l4_public_port=18444))
    assert topo["centrifugo_mode"] == "l4"
    assert topo["nginx"][0]["l4_port"] == 8443
    assert topo["centrifugo_public"] == {
        "mode": "l4", "websocket_port": 18444, "websocket_urls": ["wss://chat.example.com:18444/connection/websocket"],
        "websocket_origins": ["https://chat.example.com:18444", "wss://chat.example.com:18444"]}
    assert topo["centrifugo"][0]["client_url"] == "wss://10.0.0.2:8000/connection/websocket"
    assert topo["centrifugo"][0]["base_url"] == "https://10.0.0.2:8000"
    # The CSP's connect-src covers the second origin; the firewall opens the listener to everyone.
    assert tiers.realtime_origins(topo)[-2:] == ["https://chat.example.com:18444", "wss://chat.example.com:18444"]
    public = next(r for r in tiers.firewall_rules(topo, "n1") if r["comment"].startswith("nginx: the public site"))
    assert public["ports"] == [80, 443, 8443] and public["sources"] is None
    l7 = rtstack.topology(*inventory())
    assert l7["centrifugo_mode"] == "l7" and l7["nginx"][0]["l4_port"] is None
    assert l7["centrifugo_public"]["websocket_urls"] == ["wss://chat.example.com/connection/websocket"]
    assert l7["centrifugo_public"]["websocket_origins"] == []


def test_l4_mode_keeps_the_page_host_name_and_probes_the_listener():
    hostvars, groups = l4_inventory()
    for host in hostvars:
        hostvars[host]["stack_public_origins"] = ["https://127.0.0.1:8443", "https://[::1]:8443", "https://chat.test"]
        hostvars[host]["nginx_centrifugo_l4_public_port"] = 9443
    urls = rtstack.topology(hostvars, groups)["centrifugo_public"]["websocket_urls"]
    assert urls == ["wss://127.0.0.1:9443/connection/websocket", "wss://[::1]:9443/connection/websocket",
                    "wss://chat.test:9443/connection/websocket"]
    topo = rtstack.topology(*monitored(**{h: {"nginx_centrifugo_mode": "l4"} for h in ("r1", "c1", "c2", "d1", "n1")}))
    jobs = {job["job_name"]: job for job in monitoring_filters.scrape_configs(topo, "r1")}
    assert [(c["targets"], c["labels"]) for c in jobs["blackbox_websocket"]["static_configs"]] == [
        (["10.0.0.5:443"], {"host": "n1"}), (["10.0.0.5:8443"], {"host": "n1", "listener": "l4"})]


@pytest.mark.parametrize("overrides, message", [
    ({"n1": {"nginx_centrifugo_mode": "l3"}}, "nginx_centrifugo_mode must be one of l7, l4 \\(got 'l3'\\)"),
    ({"n1": {"nginx_centrifugo_mode": "l4", "nginx_tls_enabled": False}}, "n1: nginx_centrifugo_mode l4 needs nginx_tls_enabled"),
    ({"n1": {"nginx_centrifugo_mode": "l4", "nginx_centrifugo_l4_port": 443}},
     "Two services would listen on 10.0.0.5:443: nginx_tls_listen_port of n1 and nginx_centrifugo_l4_port of n1"),
])
def test_l4_mode_refuses_what_cannot_be_wired(overrides, message):
    with pytest.raises(Unwirable, match=message):
        wired(*inventory(**overrides))


def test_l4_mode_is_one_for_every_nginx_host():
    hostvars, groups = inventory()
    hostvars["n2"] = dict(facts("10.0.0.6"), realtime_backend="both", stack_public_origins=["https://chat.example.com"],
                          nginx_centrifugo_mode="l4")
    groups["nginx"].append("n2")
    with pytest.raises(TopologyError, match="must be the same on every nginx host"):
        rtstack.topology(hostvars, groups)


def test_channel_layer_is_one_for_every_django_host():
    assert rtstack.topology(*inventory())["django"]["channel_layer"] == "redis"
    assert rtstack.topology(*inventory(d1={"django_channel_layer": "redis_pubsub"}))["django"]["channel_layer"] == \
        "redis_pubsub"
    with pytest.raises(TopologyError, match="django_channel_layer must be one of redis, redis_pubsub"):
        rtstack.topology(*inventory(d1={"django_channel_layer": "kafka"}))
