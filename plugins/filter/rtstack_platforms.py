"""The platforms the roles support (Ansible filter plugins; pure functions, unit-tested in
tests/test_plugins.py):

* ``rtstack_unsupported_platform(hostvars[host], host)``: why a host's operating system is not supported, or ``""``.

Each role's ``meta/main.yml`` lists the same platforms; its release-specific values are in
``vars/<distribution>-<major>.yml`` (README, "Supported platforms").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: (distribution, major version) -> release code name, as Ansible's facts name them.
SUPPORTED_PLATFORMS = {("Debian", "12"): "bookworm", ("Debian", "13"): "trixie"}


def supported_names() -> str:
    """The supported platforms as prose: ``"Debian 12 (bookworm) and Debian 13 (trixie)"``."""
    names = [f"{dist} {major} ({code})" for (dist, major), code in SUPPORTED_PLATFORMS.items()]
    return ", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0]


def unsupported_platform(variables: Mapping[str, Any], host: str) -> str:
    """Why ``host`` cannot run the roles, from its gathered facts; ``""`` when it can.

    Args:
        variables: the host's variables (``hostvars[host]``): its facts ``ansible_distribution``,
            ``ansible_distribution_major_version``, ``ansible_distribution_version`` and
            ``ansible_distribution_release`` (as variables, so that extra vars can stand in for them in the
            bad-input tests).
        host: its inventory name, for the message.

    Returns:
        A message naming the host, what it runs and what is supported, or ``""``.
    """
    facts = {key: variables.get(f"ansible_{key}", "") for key in
             ("distribution", "distribution_major_version", "distribution_version", "distribution_release")}
    dist = str(facts["distribution"])
    major = str(facts["distribution_major_version"])
    if (dist, major) in SUPPORTED_PLATFORMS:
        return ""
    running = " ".join(part for part in (dist, str(facts["distribution_version"]) or major) if part)
    release = facts["distribution_release"]
    return (f"{host} runs {running or 'an unknown system'}{f' ({release})' if release else ''}: the roles support "
            f"{supported_names()} only. Provision it with one of those, or leave it out of the inventory.")


class FilterModule:
    """The platform filters."""

    def filters(self) -> dict[str, Any]:  # noqa: D102
        return {"rtstack_unsupported_platform": unsupported_platform}
