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


def recreate(host: str, image: str, timeout: float = 120.0) -> str:
    """Replace test host ``host``'s container with a new one from ``image`` (a new OS image, e.g.
    ``rtstack/debian13-systemd:latest``), as an ops team reinstalls a server: same name and hostname,
    same network, private address and aliases, same capabilities, security options, cgroup namespace,
    binds, tmpfs mounts, labels and command; nothing of the old root file system is kept, and no
    published port (the hosts that publish ports, nginx and monitoring, are not recreated by the tests).

    The private address is kept with ``docker run --ip``, which needs a network with a configured subnet
    (molecule/ha's ``docker_networks`` ``ipam_config``).

    Args:
        host: container name (the inventory host name).
        image: the new image, present on this machine.
        timeout: seconds each Docker call may take.

    Returns:
        The new container's id.

    Raises:
        subprocess.CalledProcessError: a Docker call failed (the old container may be gone by then);
        docker.errors.NotFound: no such container.
    """
    attrs = container(host).attrs
    config, host_config = attrs["Config"], attrs["HostConfig"]
    (network, settings), = attrs["NetworkSettings"]["Networks"].items()
    argv = ["run", "--detach", "--name", host, "--hostname", config["Hostname"], "--network", network,
            "--ip", settings["IPAddress"], "--cgroupns", host_config.get("CgroupnsMode") or "private"]
    for alias in settings.get("Aliases") or []:
        if alias not in (host, attrs["Id"][:12]):
            argv += ["--network-alias", alias]
    for cap in host_config.get("CapAdd") or []:
        argv += ["--cap-add", cap]
    for option in host_config.get("SecurityOpt") or []:
        argv += ["--security-opt", option]
    for bind in host_config.get("Binds") or []:
        argv += ["--volume", bind]
    for path, options in (host_config.get("Tmpfs") or {}).items():
        argv += ["--tmpfs", f"{path}:{options}" if options else path]
    for key, value in (config.get("Labels") or {}).items():
        argv += ["--label", f"{key}={value}"]
    docker("rm", "--force", host, timeout=timeout)
    return docker(*argv, image, *(config.get("Cmd") or []), timeout=timeout).strip()
