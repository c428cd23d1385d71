"""Prometheus's HTTP API and the test stacks' alert sink, as the verify tests and the failure drills read
them (roles/monitoring/README.md).

Source: https://prometheus.io/docs/prometheus/latest/querying/api/ (``/api/v1/query``, ``/api/v1/targets``)
and https://prometheus.io/docs/alerting/latest/configuration/#webhook_config (the sink's payloads).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests


class PrometheusError(RuntimeError):
    """Prometheus answered an error, or not JSON."""


def _get(base_url: str, path: str, params: dict[str, str] | None = None, timeout: float = 10) -> Any:
    response = requests.get(f"{base_url.rstrip('/')}{path}", params=params, timeout=timeout)
    try:
        body = response.json()
    except ValueError as exc:
        raise PrometheusError(f"{path}: HTTP {response.status_code}, not JSON: {response.text[:200]}") from exc
    if body.get("status") != "success":
        raise PrometheusError(f"{path} {params or ''}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def query(base_url: str, expr: str, timeout: float = 10) -> list[dict[str, Any]]:
    """An instant query.

    Args:
        base_url: Prometheus's URL (``http://address:port``, the topology's ``prometheus_url``).
        expr: a PromQL expression.
        timeout: seconds for the HTTP request.

    Returns:
        The result vector: ``[{"metric": {label: value}, "value": [unix seconds, "value"]}]`` (a scalar or
        string result comes back as one item with an empty ``metric``).

    Raises:
        PrometheusError: a bad expression or an error answer. requests' exceptions on a connection failure.
    """
    data = _get(base_url, "/api/v1/query", {"query": expr}, timeout)
    if data["resultType"] in ("scalar", "string"):
        return [{"metric": {}, "value": data["result"]}]
    return data["result"]


def values(base_url: str, expr: str) -> dict[tuple[tuple[str, str], ...], float]:
    """:func:`query` as ``{sorted label items (without ``__name__``): float value}``."""
    return {tuple(sorted((k, v) for k, v in item["metric"].items() if k != "__name__")): float(item["value"][1])
            for item in query(base_url, expr)}


def firing(base_url: str, alertname: str, labels: dict[str, str] | None = None) -> list[dict[str, str]]:
    """The label sets of the alerts named ``alertname`` that Prometheus has firing now (its ``ALERTS`` series
    with ``alertstate="firing"``), restricted to those carrying every label of ``labels``; empty if none.

    Raises:
        PrometheusError: as :func:`query`.
    """
    matchers = {"alertname": alertname, "alertstate": "firing", **(labels or {})}
    selector = ",".join(f'{key}="{value}"' for key, value in sorted(matchers.items()))
    return [item["metric"] for item in query(base_url, f"ALERTS{{{selector}}}")]

@dataclass(frozen=True)
class Target:
    """An active scrape target: its job, labels (``host``, ``instance``...), health (``up``, ``down`` or
    ``unknown``), last error, and the last scrape's duration in seconds."""

    job: str
    labels: dict[str, str]
    health: str
    last_error: str
    scrape_duration: float


def targets(base_url: str) -> list[Target]:
    """Every active target (``/api/v1/targets?state=active``)."""
    data = _get(base_url, "/api/v1/targets", {"state": "active"})
    return [Target(t["labels"].get("job", ""), t["labels"], t["health"], t.get("lastError", ""),
                   float(t.get("lastScrapeDuration", 0.0))) for t in data["activeTargets"]]


def wait_for(check: Callable[[], Any], timeout: float, interval: float = 2.0) -> Any:
    """Call ``check()`` until it returns something true, at most ``timeout`` seconds; return that value.

    Raises:
        TimeoutError: it never did (the message carries the last value).
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if last:
            return last
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:.0f} s; last: {last!r}")
        time.sleep(interval)


#: Where the test stacks' alert sink appends Alertmanager's webhook calls (molecule/resources/alert_sink.yml).
SINK_FILE = "/var/lib/rtstack-alert-sink/alerts.jsonl"


@dataclass(frozen=True)
class Notification:
    """One alert of one webhook call: when the sink got it and when the alert started firing (unix seconds;
    Alertmanager's ``startsAt``), its status (``firing`` or ``resolved``), name and labels."""

    received: float
    starts_at: float
    status: str
    alertname: str
    labels: dict[str, str]


def _unix(timestamp: str) -> float:
    """RFC 3339 (Alertmanager's, nanoseconds and ``Z``) as unix seconds; 0.0 if absent."""
    if not timestamp:
        return 0.0
    head, _, tail = timestamp.replace("Z", "+00:00").partition(".")
    if tail:  # keep microseconds: fromisoformat takes at most 6 fraction digits on every Python here
        digits = tail[:len(tail) - len(tail.lstrip("0123456789"))]
        zone = tail[len(digits):]
        head = f"{head}.{digits[:6]}{zone}"
    return datetime.fromisoformat(head).timestamp()


def notifications(sink_text: str) -> list[Notification]:
    """The alerts of the sink file's lines (each line ``{"received", "payload"}``), in order. A line that is
    not JSON (the sink still writing it) is skipped."""
    out = []
    for line in sink_text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        for alert in entry["payload"].get("alerts", []):
            labels = alert.get("labels", {})
            out.append(Notification(entry["received"], _unix(alert.get("startsAt", "")), alert.get("status", ""),
                                    labels.get("alertname", ""), labels))
    return out


def sink_notifications(sink_host: str, since: float = 0.0) -> list[Notification]:
    """The alerts the alert sink on test host ``sink_host`` (a container) received at or after ``since`` (unix
    seconds), read with ``docker exec``; none if the sink has received nothing yet."""
    from rtclient.hosts import exec_in

    text = exec_in(sink_host, ["cat", SINK_FILE], check=False).stdout
    return [n for n in notifications(text) if n.received >= since]


def first_notification(sink_host: str, alertname: str, status: str, since: float,
                       labels: dict[str, str] | None = None) -> Notification | None:
    """The first alert named ``alertname`` with ``status`` (``firing``/``resolved``) and every label of
    ``labels`` (e.g. ``{"host": ...}``: a mapping, so that an alert's ``host`` label never collides with the
    sink's host) that started firing at or after ``since`` (unix seconds; Alertmanager re-sends a group's
    alerts that fired earlier), as the sink on ``sink_host`` received it; None if there is none yet."""
    labels = labels or {}
    for n in sink_notifications(sink_host, since):
        if (n.alertname == alertname and n.status == status and n.starts_at >= since
                and all(n.labels.get(k) == v for k, v in labels.items())):
            return n
    return None
