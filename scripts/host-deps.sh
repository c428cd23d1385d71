#!/usr/bin/env bash
# Debian packages the controller needs: the Docker engine (docker.io), debootstrap for the test-host
# image, Chromium for the browser test, rsync, promtool for the alert-rule tests. Installs only what is
# missing.
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
# promtool (tests/test_alert_rules.py): Debian's separate promtool package where it exists (trixie),
# else the prometheus package that carries it (bookworm). The Prometheus server that package brings
# never runs on the controller: a policy-rc.d forbids starting it during the install (an existing
# policy-rc.d, e.g. a container's, is left as it is), and it is disabled (and stopped) afterwards.
if [ ! -x /usr/bin/promtool ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  pkg=prometheus
  if apt-cache policy promtool 2>/dev/null | grep -q '^ *Candidate: [0-9]'; then pkg=promtool; fi
  echo "host-deps: installing $pkg (promtool, for the alert-rule tests)" >&2
  policy=/usr/sbin/policy-rc.d
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# host-deps.sh: no service starts during its apt-get install\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
    apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
    rm -f "$policy"
    trap - EXIT
  else
    apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
  fi
  if [ "$pkg" = prometheus ]; then
    if [ -d /run/systemd/system ]; then
      systemctl disable --now --quiet prometheus
    else
      # No systemd as PID 1 (a container): nothing was started; drop the boot links (sysv and unit).
      if [ -x /etc/init.d/prometheus ]; then update-rc.d prometheus disable >/dev/null 2>&1; fi
      if command -v systemctl >/dev/null 2>&1; then systemctl disable --quiet prometheus 2>/dev/null || true; fi
    fi
  fi
  [ -x /usr/bin/promtool ] || { echo "host-deps: $pkg installed but no /usr/bin/promtool" >&2; exit 1; }
fi
command -v go >/dev/null 2>&1 || [ -x /usr/local/go/bin/go ] || {
  echo "host-deps: no Go toolchain (need Go >= 1.26 for centrifugo_install_method=source)" >&2; exit 1; }
command -v npm >/dev/null 2>&1 || { echo "host-deps: no npm (needed to bundle centrifuge-js)" >&2; exit 1; }
scripts/docker-engine.sh
