"""The Prometheus alert rules (roles/monitoring/files/etc/prometheus/rules/rtstack.rules.yml): promtool
accepts them and their unit tests (tests/prometheus/rtstack.rules.test.yml) pass; every alert has a
severity, a summary, a description and a runbook link, a runbook section in roles/monitoring/README.md
(`## Alerts`, one `### AlertName` each) and unit tests where it fires and where it stays silent; the
runbook and the tests name no alert the rules lack."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

TOP = Path(__file__).resolve().parent.parent
RULES = TOP / "roles/monitoring/files/etc/prometheus/rules/rtstack.rules.yml"
RULE_TESTS = TOP / "tests/prometheus/rtstack.rules.test.yml"
README = TOP / "roles/monitoring/README.md"
#: Debian's promtool (package prometheus on bookworm, promtool on trixie), installed by `make deps`.
PROMTOOL = Path("/usr/bin/promtool")
SEVERITIES = {"critical", "warning"}


def promtool() -> str:
    """Path of promtool; fails the test (never skips it) when it is not installed."""
    if PROMTOOL.is_file():
        return str(PROMTOOL)
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(f"promtool not found ({PROMTOOL}): `make deps` (scripts/host-deps.sh) installs it", pytrace=False)
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess:
    """Run promtool with args from the repository's top directory; its output in the failure message."""
    proc = subprocess.run([promtool(), *args], cwd=TOP, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def alert_rules() -> list[dict]:
    """Every alerting rule of the rules file, in file order."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def alert_names() -> set[str]:
    """The names of the alerts of the rules file."""
    return {rule["alert"] for rule in alert_rules()}


def rule_test_cases() -> dict[str, dict[str, int]]:
    """Per alert name of the unit tests: how many cases expect it to fire and how many expect silence."""
    cases: dict[str, dict[str, int]] = {}
    for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for case in group.get("alert_rule_test", []):
            counts = cases.setdefault(case["alertname"], {"firing": 0, "silent": 0})
            counts["firing" if case.get("exp_alerts") else "silent"] += 1
    return cases


def runbook_section(text: str) -> str:
    """The `## Alerts` section of a README (up to the next `## ` heading); fails when there is none."""
    match = re.search(r"^## Alerts[ \t]*\n(.*?)(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    if match is None:
        pytest.fail(f"{README.relative_to(TOP)} has no '## Alerts' section (the alerts' runbook)", pytrace=False)
    return match.group(1)


def runbook_alerts(section: str) -> set[str]:
    """The alert names of the `### AlertName` subsections of the runbook section."""
    return set(re.findall(r"^### +(\S+)[ \t]*$", section, re.MULTILINE))


def test_promtool_check_rules():
    """promtool accepts the rules file."""
    proc = run_promtool("check", "rules", str(RULES.relative_to(TOP)))
    assert "SUCCESS" in proc.stdout


def test_promtool_test_rules():
    """The promtool unit tests of the rules pass."""
    proc = run_promtool("test", "rules", str(RULE_TESTS.relative_to(TOP)))
    assert "SUCCESS" in proc.stdout


def test_rules_file_is_static():
    """The rules file is copied as it is: no Jinja (Prometheus' own {{ }} templates only in annotations)."""
    text = RULES.read_text()
    assert "{%" not in text and "{#" not in text
    for rule in alert_rules():
        assert "{{" not in rule["expr"] and "{{" not in str(rule.get("labels", {})), rule["alert"]


def test_every_alert_has_severity_annotations_and_runbook_link():
    """Unique names; severity critical or warning; summary, description and a runbook link to its README section."""
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "duplicate alert names"
    for rule in rules:
        name = rule["alert"]
        assert rule.get("labels", {}).get("severity") in SEVERITIES, name
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), name
        assert annotations.get("runbook") == f"roles/monitoring/README.md#{name.lower()}", name


def test_every_alert_has_firing_and_silent_unit_tests():
    """Each alert has a unit test case where it fires and one where it stays silent; no case names an unknown alert."""
    names = alert_names()
    cases = rule_test_cases()
    assert set(cases) <= names, f"unit tests of alerts the rules lack: {sorted(set(cases) - names)}"
    missing = sorted(name for name in names if name not in cases)
    assert not missing, f"alerts without unit tests: {missing}"
    one_sided = {name: counts for name, counts in cases.items() if not counts["firing"] or not counts["silent"]}
    assert not one_sided, f"alerts without both a firing and a silent case: {one_sided}"


def test_every_alert_has_a_runbook_section():
    """The README's `## Alerts` section has a `### AlertName` subsection and a summary-table row for each
    alert, and none for an alert the rules lack."""
    assert README.is_file(), f"{README.relative_to(TOP)} is missing"
    section = runbook_section(README.read_text())
    names = alert_names()
    documented = runbook_alerts(section)
    assert not names - documented, f"alerts without a runbook section: {sorted(names - documented)}"
    assert not documented - names, f"runbook sections of alerts the rules lack: {sorted(documented - names)}"
    in_table = set(re.findall(r"^\|\s*\[?`?(\w+)`?\]?(?:\([^)]*\))?\s*\|", section, re.MULTILINE))
    assert not names - in_table, f"alerts missing in the runbook's summary table: {sorted(names - in_table)}"
