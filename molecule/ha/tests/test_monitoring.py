"""Monitoring of the scaled-out stack: the jobs the default scenario lacks (PostgreSQL, the sentinels, two
Django hosts, three Centrifugo nodes) are scraped and up, the PostgreSQL exporter logs in as its pg_monitor
role, the sentinels report their quorum, and the Redis dashboard's Sentinel panels have data."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from rtclient import dashboards, prometheus  # noqa: E402


def test_every_target_is_up_including_postgresql_and_the_sentinels(manifest):
    prom = manifest["monitoring"]["servers"][0]["prometheus_url"]
    found = prometheus.wait_for(lambda: (t := prometheus.targets(prom)) and all(x.health == "up" for x in t) and t, 90)
    jobs = {t.job for t in found}
    assert {"postgresql", "redis_sentinel", "redis", "centrifugo", "django"} <= jobs
    assert len([t for t in found if t.job == "redis_sentinel"]) == len(manifest.redis.sentinels)
    assert len([t for t in found if t.job == "centrifugo"]) == len(manifest.centrifugo)
    assert set(prometheus.values(prom, "pg_up").values()) == {1.0}
    assert set(prometheus.values(prom, "redis_sentinel_master_ckquorum_status").values()) == {1.0}
    assert set(prometheus.values(prom, "redis_up").values()) == {1.0}


def test_the_exporter_role_reads_statistics_only(manifest):
    """The PostgreSQL exporter's role: a login in pg_monitor only, no superuser, no other membership."""
    from rtclient.hosts import exec_in

    host = manifest.postgresql[0].host
    sql = ("SELECT r.rolsuper, r.rolcreaterole, r.rolcreatedb, array(SELECT b.rolname FROM pg_auth_members m "
           "JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid) FROM pg_roles r WHERE r.rolname = 'prometheus'")
    out = exec_in(host, ["runuser", "-u", "postgres", "--", "psql", "-p", str(manifest.postgresql[0].port),
                         "-XAtc", sql]).stdout.strip()
    assert out == "f|f|f|{pg_monitor}", out


#: The fallback of the dashboards' panels that may have no series (a standalone Redis has no sentinel).
FALLBACK = " or on() vector(0)"


def test_the_redis_dashboard_has_data_from_the_sentinels(manifest):
    """Every panel of the Redis dashboard has data, the Sentinel panels without their ``or on() vector(0)``
    fallback: here the series themselves must exist."""
    prom = manifest["monitoring"]["servers"][0]["prometheus_url"]
    path = next(p for p in dashboards.dashboard_paths() if p.name == "rtstack-redis.json")
    # (A count of links that are down stays empty while all are up: its fallback stays.)
    queries = [q.expr.replace(FALLBACK, "") if "sentinel" in q.expr and "== 0" not in q.expr else q.expr
               for q in dashboards.panel_queries(path)]
    assert any("sentinel" in q for q in queries)
    empty = [q for q in queries if not prometheus.query(prom, dashboards.instant_expr(q))]
    assert not empty, empty
