"""Day 2's playbook runs go through mitogen's strategy (rtclient.playbook.MITOGEN_ENV): the scenario's converge
and idempotence run prove the stack under ansible-core's own ``linear``, and day 2's ten whole-stack and
``--limit`` runs take about half the time under mitogen. What day 2 checks (``--limit``, ``--check --diff``,
``--tags``, a tier playbook alone) is Ansible's own behaviour, the same under either strategy. Except one: with a
host of the stack down, a ``--limit`` run under mitogen ends at the preflight's ping of that host (delegated, with
``ignore_unreachable``, which mitogen's strategy does not honour there: "EOF on stream ... is not running", rc 2),
so that test runs under ``linear``, as an ops engineer converging around a dead host must."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from rtclient.playbook import MITOGEN_ENV  # noqa: E402


def pytest_configure(config) -> None:
    os.environ.update(MITOGEN_ENV)
