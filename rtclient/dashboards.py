"""The PromQL queries of rtstack's Grafana dashboards (``roles/monitoring/files/grafana/dashboards``),
ready to run against Prometheus without Grafana.

A dashboard's panels query Prometheus through Grafana, which replaces the dashboard variables
(``$host``, ``$__rate_interval``) before it sends the query. :func:`panel_queries` lists every
panel's queries (row panels included, collapsed or not) and :func:`instant_expr` makes one of them
a plain PromQL instant query the way Grafana would. Example::

    for path in dashboard_paths():
        for query in panel_queries(path):            # PanelQuery(dashboard, panel, ref_id, expr)
            promql = instant_expr(query.expr, host_regex="mol-.*", rate_interval="1m")
            # GET <prometheus>/api/v1/query?query=<promql>: every panel's query returns a sample
            # on a deployed stack (roles/monitoring/README.md, "Dashboards").

:func:`metric_names` tells which metrics a query reads (the unit tests check them against the
monitoring contract).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: The repository root.
ROOT = Path(__file__).resolve().parents[1]
#: Where the dashboard JSON files are (one ``rtstack-<name>.json`` per dashboard).
DASHBOARD_DIR = ROOT / "roles" / "monitoring" / "files" / "grafana" / "dashboards"

# A Grafana variable in an expression: ${name}, ${name:format}, $name or [[name]].
_VARIABLE = re.compile(r"\$\{(?P<braced>\w+)(?::[\w-]+)?\}|\$(?P<plain>\w+)|\[\[(?P<old>\w+)(?::[\w-]+)?\]\]")
# A Prometheus duration: 30s, 1m, 1h30m, 500ms.
_DURATION = re.compile(r"(?:\d+(?:ms|s|m|h|d|w|y))+")
# PromQL's keywords and aggregation modifiers: identifiers that are not metric names.
_KEYWORDS = frozenset({
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
    "offset", "atan2", "inf", "nan",
})


class DashboardError(ValueError):
    """A dashboard file is not a Grafana dashboard this module reads: not a JSON object with a
    ``uid`` and a ``panels`` list, or a panel's target without a PromQL ``expr`` (the message
    names the file, the panel and the target)."""


@dataclass(frozen=True)
class PanelQuery:
    """One query of a dashboard panel.

    Attributes:
        dashboard: the dashboard's ``uid``, e.g. ``"rtstack-centrifugo"``.
        panel: the panel's title; ref_id: the target's ``refId`` (``"A"``, ``"B"``, ...).
        expr: the PromQL expression as written in the dashboard, Grafana variables and all.
    """

    dashboard: str
    panel: str
    ref_id: str
    expr: str


def dashboard_paths(directory: Path | str = DASHBOARD_DIR) -> list[Path]:
    """The dashboard JSON files of ``directory`` (default :data:`DASHBOARD_DIR`), sorted by name;
    empty when it has none."""
    return sorted(Path(directory).glob("*.json"))


def load_dashboard(path: Path | str) -> dict[str, Any]:
    """The dashboard document of the JSON file ``path``.

    Raises:
        OSError: the file cannot be read.
        DashboardError: not JSON, or not an object with a non-empty string ``uid`` and a ``panels`` list.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DashboardError(f"dashboard {path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DashboardError(f"dashboard {path}: not a JSON object")
    if not isinstance(data.get("uid"), str) or not data["uid"]:
        raise DashboardError(f"dashboard {path}: no uid")
    if not isinstance(data.get("panels"), list):
        raise DashboardError(f"dashboard {path}: no panels list")
    return data


def iter_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel of a ``panels`` list, depth first: a row panel, then the panels it holds
    (a collapsed row keeps its panels in its own ``panels``)."""
    out: list[dict[str, Any]] = []
    for panel in panels:
        out.append(panel)
        out.extend(iter_panels(panel.get("panels") or []))
    return out


def panel_queries(path: Path | str) -> list[PanelQuery]:
    """Every query of every panel of the dashboard file ``path``, in panel order, then target order.

    Row panels are looked into; panels without ``targets`` (rows, text) give none. Hidden targets
    (``"hide": true``) are left out: Grafana does not run them.

    Raises:
        OSError: the file cannot be read.
        DashboardError: see :func:`load_dashboard`; also a target without a non-empty string ``expr``
            or ``refId``.
    """
    path = Path(path)
    data = load_dashboard(path)
    out: list[PanelQuery] = []
    for panel in iter_panels(data["panels"]):
        title = panel.get("title") or f"panel {panel.get('id')}"
        for target in panel.get("targets") or []:
            if target.get("hide"):
                continue
            ref_id, expr = target.get("refId"), target.get("expr")
            if not isinstance(ref_id, str) or not ref_id:
                raise DashboardError(f"dashboard {path}: panel {title!r}: a target has no refId")
            if not isinstance(expr, str) or not expr.strip():
                raise DashboardError(f"dashboard {path}: panel {title!r}: target {ref_id} has no expr")
            out.append(PanelQuery(data["uid"], title, ref_id, expr))
    return out


def _promql_string(value: str) -> str:
    """``value`` escaped for the inside of a double-quoted PromQL string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


def instant_expr(expr: str, host_regex: str = ".+", rate_interval: str = "1m",
                 interval: str | None = None) -> str:
    """``expr`` with Grafana's variables replaced, to run as a Prometheus instant query.

    Args:
        expr: a panel's PromQL, e.g. ``'sum(rate(x{host=~"$host"}[$__rate_interval]))'``.
        host_regex: the value of ``$host`` / ``${host}`` (a RE2 regex: the dashboards use it as
            ``host=~"$host"``), escaped for a double-quoted PromQL string; ``".+"`` is every host,
            Grafana's "All".
        rate_interval: the value of ``$__rate_interval``, a Prometheus duration such as ``"1m"``: at
            least 4 scrape intervals, as Grafana picks it (the stack scrapes every 15 s).
        interval: the value of ``$__interval`` (default: ``rate_interval``).

    Returns:
        The expression without any ``$`` variable, e.g.
        ``'sum(rate(x{host=~".+"}[1m]))'``.

    Raises:
        ValueError: ``rate_interval`` or ``interval`` is not a Prometheus duration, or ``expr`` uses
            a variable other than ``host``, ``__rate_interval`` and ``__interval`` (the message
            names it).
    """
    interval = rate_interval if interval is None else interval
    for name, value in (("rate_interval", rate_interval), ("interval", interval)):
        if not _DURATION.fullmatch(value):
            raise ValueError(f"{name} {value!r} is not a Prometheus duration (e.g. 1m, 30s)")
    values = {"host": _promql_string(host_regex), "__rate_interval": rate_interval, "__interval": interval}

    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain") or match.group("old")
        if name not in values:
            raise ValueError(f"unknown Grafana variable {match.group(0)!r} in {expr!r} "
                             f"(known: {', '.join(sorted(values))})")
        return values[name]

    return _VARIABLE.sub(replace, expr)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects, e.g. ``{"up", "redis_up"}``.

    A light tokenizer, enough for the dashboards' queries: string literals, label matchers
    (``{...}``), ranges (``[...]``), grouping label lists (``by (...)``, ``on(...)``, ...),
    function calls, keywords and numbers are not metric names. ``{__name__="..."}`` selectors are
    not looked into.
    """
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', '""', expr)
    text = re.sub(r"\{[^{}]*\}", " ", text)
    text = re.sub(r"\[[^\[\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?", text):
        name, call = match.group(1), match.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names
