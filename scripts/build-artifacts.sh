#!/usr/bin/env bash
# Build the artifacts the django and nginx roles ship to hosts, once, on the controller:
#   build/wheelhouse.tar.gz the app wheel and every pinned dependency as wheels for the hosts' CPython 3.11
#                       (manylinux x86_64); hosts install with `pip --no-index` (no PyPI needed there)
#   build/static.tar.gz the app's collected static files (with centrifuge-js from the npm registry),
#                       served by nginx from disk
#   build/SHA256SUMS    checksums of all of the above
# Rebuilt only when app/ changed since the last build.
#
# Usage: scripts/build-artifacts.sh [PYTHON]   (PYTHON: a controller interpreter with pip; default python3)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-python3}
build="$top/build"
stamp="$build/.app-stamp"
# Files of app/ that go into the artifacts (not node_modules, vendored output or caches).
state=$(cd "$top/app" && find . -path ./node_modules -prune -o -path ./chat/static/chat/vendor -prune \
          -o -name __pycache__ -prune -o -name '*.egg-info' -prune -o -name build -prune \
          -o -type f -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-32)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$state" ] && [ -f "$build/SHA256SUMS" ]; then
  echo "build-artifacts: up to date ($state)"
  exit 0
fi

rm -rf "$build/wheelhouse" "$build/wheelhouse.tar.gz" "$build/static" "$build/static.tar.gz" "$build/app-build"
mkdir -p "$build/wheelhouse"

echo "build-artifacts: centrifuge-js from the npm registry"
"$top/app/build_static.sh" >/dev/null

echo "build-artifacts: app wheel"
cp -r "$top/app" "$build/app-build"
rm -rf "$build/app-build/node_modules"
SOURCE_DATE_EPOCH=946684800 "$py" -m pip wheel --quiet --no-deps --wheel-dir "$build/wheelhouse" "$build/app-build"
rm -rf "$build/app-build"

echo "build-artifacts: dependency wheels for CPython 3.11 manylinux x86_64"
"$py" -m pip download --quiet --only-binary=:all: --no-deps \
  --python-version 3.11 --implementation cp --abi cp311 \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform linux_x86_64 --platform any \
  --dest "$build/wheelhouse" -r "$top/app/requirements.txt"

echo "build-artifacts: collectstatic"
venv="$build/.collect-venv"
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install --quiet --no-index --find-links "$build/wheelhouse" -r "$top/app/requirements.txt" rtstack-chat
DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:///:memory: \
  DJANGO_STATIC_ROOT="$build/static" "$venv/bin/chatsite-manage" collectstatic --noinput >/dev/null
rm -rf "$venv"
# Reproducible tarballs (sorted names, fixed times and owners): the roles copy each as one file and
# unpack it only when its checksum changed.
for dir in static wheelhouse; do
  tar -C "$build" --sort=name --mtime='2000-01-01 00:00Z' --owner=0 --group=0 --numeric-owner \
    -cf - "$dir" | gzip -n > "$build/$dir.tar.gz"
done
rm -rf "$build/static"

(cd "$build" && sha256sum wheelhouse/* wheelhouse.tar.gz static.tar.gz > SHA256SUMS)
echo "$state" > "$stamp"
echo "build-artifacts: $(ls "$build/wheelhouse" | wc -l) wheels, static.tar.gz; checksums in build/SHA256SUMS"
