#!/usr/bin/env bash
# Make sure a Docker engine answers on /var/run/docker.sock.
# Installs Debian's docker.io when no dockerd is present and starts the daemon in the background
# when none is running (the machines this project is tested on boot without one).
set -euo pipefail

SOCK=/var/run/docker.sock
DOCKER=/usr/bin/docker
LOG=${DOCKERD_LOG:-/var/log/dockerd.log}

if [ -S "$SOCK" ] && "$DOCKER" version >/dev/null 2>&1; then
  exit 0
fi

if ! command -v dockerd >/dev/null 2>&1; then
  echo "docker-engine: installing Debian's docker.io" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

if ! pgrep -x dockerd >/dev/null 2>&1; then
  echo "docker-engine: starting dockerd (log: $LOG)" >&2
  nohup dockerd >"$LOG" 2>&1 &
fi

for _ in $(seq 1 60); do
  if [ -S "$SOCK" ] && "$DOCKER" version >/dev/null 2>&1; then
    exit 0
  fi
  sleep 1
done
echo "docker-engine: dockerd did not answer on $SOCK within 60 s; see $LOG" >&2
exit 1
