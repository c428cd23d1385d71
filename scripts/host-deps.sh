#!/usr/bin/env bash
# Debian packages the controller needs: the Docker engine (docker.io), debootstrap for the test-host
# image, Chromium for the browser test, rsync. Installs only what is missing.
set -euo pipefail
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
[ -x /usr/bin/chromium ] || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "host-deps: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || {
  echo "host-deps: no Go toolchain (need Go >= 1.26 for centrifugo_install_method=source)" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "host-deps: no npm (needed to bundle centrifuge-js)" >&2; exit 1; }
scripts/docker-engine.sh
