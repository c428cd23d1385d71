"""Docker-side helpers: the test hosts are containers of this machine (molecule's docker driver,
``make up``'s local hosts). Topology (addresses, ports) comes from :mod:`rtclient.manifest`, not
from here."""

from __future__ import annotations

import subprocess
from functools import lru_cache
from typing import Any


def docker(*args: str, timeout: float = 60.0) -> str:
    """Run the Docker CLI (``docker <args>``) and return its stdout.

    Raises:
        subprocess.CalledProcessError: non-zero exit; subprocess.TimeoutExpired: after
        ``timeout`` seconds.
    """
    return subprocess.run(["docker", *args], check=True, capture_output=True, text=True,
                          timeout=timeout).stdout


def exec_in(host: str, argv: list[str], timeout: float = 60.0, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess:
    """``docker exec [-i] <host> <argv...>``: run a command in a test host (``input``: its standard
    input); stdout and stderr as text.

    Raises:
        subprocess.CalledProcessError: the command failed and ``check`` is set;
        subprocess.TimeoutExpired: after ``timeout`` seconds.
    """
    interactive = ["-i"] if input is not None else []
    return subprocess.run(["docker", "exec", *interactive, host, *argv], check=check, capture_output=True,
                          text=True, timeout=timeout, input=input)


@lru_cache(maxsize=1)
def docker_client() -> Any:
    """The Docker SDK client of the environment (DOCKER_HOST), as molecule's driver uses it."""
    import docker as docker_sdk

    return docker_sdk.from_env()


def container(host: str) -> Any:
    """The Docker SDK container of test host ``host``.

    Raises:
        docker.errors.NotFound: no such container (the stack is not up).
    """
    return docker_client().containers.get(host)


def network_gateway(host: str) -> str:
    """The gateway address of the (first) Docker network of ``host``: the address this machine
    has on that network, as the host sees it."""
    networks = container(host).attrs["NetworkSettings"]["Networks"]
    return next(iter(networks.values()))["Gateway"]
