#!/usr/bin/env bash
# Build a test-host image (Debian 12 or 13 with systemd as PID 1) from Debian's packages with debootstrap.
# No container registry is reachable from the machines this project is tested on, so the base image is
# made locally and imported. The image is rebuilt only when this script or its package list changes.
#
# Usage: scripts/build-image.sh [RELEASE [TAG]]
#   RELEASE: trixie (Debian 13, the default; or $RTSTACK_DEBIAN_RELEASE) or bookworm (Debian 12)
#   TAG:     default rtstack/debian12-systemd:latest or rtstack/debian13-systemd:latest
set -euo pipefail

SUITE=${1:-${RTSTACK_DEBIAN_RELEASE:-trixie}}
case "$SUITE" in
  bookworm) MAJOR=12 ;;
  trixie) MAJOR=13 ;;
  *) echo "build-image: release $SUITE is not supported: bookworm (Debian 12) or trixie (Debian 13)" >&2; exit 2 ;;
esac
TAG=${2:-rtstack/debian$MAJOR-systemd:latest}
DOCKER=/usr/bin/docker
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What a freshly provisioned Debian server has before Ansible runs: systemd, Python for Ansible's modules,
# python3-apt for ansible.builtin.apt, sudo and the basic network tools.
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,ca-certificates,iproute2,procps
RECIPE=$( (sha256sum "$0"; echo "$SUITE") | sha256sum | cut -c1-16)

if [ "$("$DOCKER" image inspect -f '{{ index .Config.Labels "rtstack.recipe" }}' "$TAG" 2>/dev/null)" = "$RECIPE" ]; then
  echo "build-image: $TAG is up to date (recipe $RECIPE)"
  exit 0
fi

if ! command -v debootstrap >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq debootstrap >/dev/null
fi

ROOTFS=$(mktemp -d /tmp/rtstack-rootfs.XXXXXX)
trap 'rm -rf "$ROOTFS"' EXIT
echo "build-image: debootstrap $SUITE (Debian $MAJOR) into $ROOTFS"
debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$ROOTFS" "$MIRROR" >/tmp/rtstack-debootstrap.log 2>&1 || {
  tail -n 30 /tmp/rtstack-debootstrap.log >&2
  exit 1
}

# Units that make no sense in a container, and apt settings for a small, quiet image.
chroot "$ROOTFS" /usr/bin/env SUITE="$SUITE" /bin/sh -eu <<'CHROOT'
rm -f /etc/apt/sources.list.d/*.sources
printf 'deb http://deb.debian.org/debian %s main\ndeb http://deb.debian.org/debian %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
  "$SUITE" "$SUITE" "$SUITE" > /etc/apt/sources.list
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > /etc/apt/apt.conf.d/99norecommends
for unit in getty.target systemd-udevd.service systemd-udev-trigger.service systemd-remount-fs.service \
            sys-kernel-debug.mount sys-kernel-tracing.mount systemd-modules-load.service \
            systemd-firstboot.service console-getty.service; do
  ln -sf /dev/null "/etc/systemd/system/$unit"
done
systemctl set-default multi-user.target
# Package lists stay in the image, as on a freshly installed server.
apt-get update -qq
apt-get clean
rm -f /var/log/*.log
: > /etc/machine-id
CHROOT

echo "build-image: importing as $TAG"
tar -C "$ROOTFS" -c . | "$DOCKER" import \
  -c 'CMD ["/sbin/init"]' -c 'ENV container=docker' -c 'ENV LANG=C.UTF-8' \
  -c "LABEL rtstack.recipe=$RECIPE" - "$TAG" >/dev/null
echo "build-image: built $TAG"
