#!/usr/bin/env bash
# Build the artifacts the django and nginx roles ship to hosts, once, on the controller:
#   build/wheelhouse-cpXY.tar.gz  the app wheel and every pinned dependency as wheels for CPython X.Y
#                       (manylinux x86_64), one per Python of the supported releases (3.11: Debian 12,
#                       3.13: Debian 13); each host gets the one of its Python (roles/django), and installs
#                       with `pip --no-index` (no PyPI needed there)
#   build/static.tar.gz the app's collected static files (with centrifuge-js from the npm registry),
#                       served by nginx from disk
#   build/SHA256SUMS    checksums of all of the above
# Rebuilt only when app/ changed since the last build.
#
# Usage: scripts/build-artifacts.sh [PYTHON]   (PYTHON: a controller interpreter with pip; default python3)
#        RTSTACK_PYTHON_VERSIONS="3.11 3.13" (default): the hosts' Python versions to build wheelhouses for.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
py=${1:-python3}
versions=${RTSTACK_PYTHON_VERSIONS:-3.11 3.13}
build="$top/build"
stamp="$build/.app-stamp"
# Files of app/ that go into the artifacts (not node_modules, vendored output or caches).
state=$(cd "$top/app" && find . -path ./node_modules -prune -o -path ./chat/static/chat/vendor -prune \
          -o -name __pycache__ -prune -o -name '*.egg-info' -prune -o -name build -prune \
          -o -type f -print | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-32)
state="$state-$(echo "$versions" | tr ' ' '-')"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$state" ] && [ -f "$build/SHA256SUMS" ]; then
  echo "build-artifacts: up to date ($state)"
  exit 0
fi

rm -rf "$build"/wheelhouse* "$build/static" "$build/static.tar.gz" "$build/app-build" "$build/app-wheel"
mkdir -p "$build/app-wheel"

echo "build-artifacts: centrifuge-js from the npm registry"
"$top/app/build_static.sh" >/dev/null

echo "build-artifacts: app wheel"
cp -r "$top/app" "$build/app-build"
rm -rf "$build/app-build/node_modules"
SOURCE_DATE_EPOCH=946684800 "$py" -m pip wheel --quiet --no-deps --wheel-dir "$build/app-wheel" "$build/app-build"
rm -rf "$build/app-build"

for version in $versions; do
  tag=cp${version/./}
  echo "build-artifacts: dependency wheels for CPython $version manylinux x86_64"
  mkdir -p "$build/wheelhouse-$tag/wheelhouse"
  cp "$build"/app-wheel/*.whl "$build/wheelhouse-$tag/wheelhouse/"
  "$py" -m pip download --quiet --only-binary=:all: --no-deps \
    --python-version "$version" --implementation cp --abi "$tag" \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform linux_x86_64 --platform any \
    --dest "$build/wheelhouse-$tag/wheelhouse" -r "$top/app/requirements.txt"
done
controller_tag=$("$py" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
[ -d "$build/wheelhouse-$controller_tag" ] || {
  echo "build-artifacts: collectstatic needs the wheelhouse of the controller's Python ($controller_tag): add its version to RTSTACK_PYTHON_VERSIONS" >&2
  exit 1
}

echo "build-artifacts: collectstatic"
venv="$build/.collect-venv"
rm -rf "$venv"
"$py" -m venv "$venv"
"$venv/bin/pip" install --quiet --no-index --find-links "$build/wheelhouse-$controller_tag/wheelhouse" -r "$top/app/requirements.txt" rtstack-chat
DJANGO_DEBUG=0 DJANGO_SECRET_KEY=collectstatic-only DATABASE_URL=sqlite:///:memory: \
  DJANGO_STATIC_ROOT="$build/static" "$venv/bin/chatsite-manage" collectstatic --noinput >/dev/null
rm -rf "$venv"
# Reproducible tarballs (sorted names, fixed times and owners): the roles copy each as one file and
# unpack it only when its checksum changed.
# Each wheelhouse tarball holds one directory, wheelhouse/, whatever its Python.
pack() { tar -C "$1" --sort=name --mtime='2000-01-01 00:00Z' --owner=0 --group=0 --numeric-owner \
           -cf - "$2" | gzip -n > "$3"; }
pack "$build" static "$build/static.tar.gz"
for dir in "$build"/wheelhouse-cp*/; do
  pack "$dir" wheelhouse "${dir%/}.tar.gz"
done
rm -rf "$build/static" "$build/app-wheel"

(cd "$build" && sha256sum wheelhouse-cp*/wheelhouse/* wheelhouse-cp*.tar.gz static.tar.gz > SHA256SUMS)
echo "$state" > "$stamp"
for dir in "$build"/wheelhouse-cp*/; do
  echo "build-artifacts: $(basename "$dir"): $(ls "$dir/wheelhouse" | wc -l) wheels"
done
echo "build-artifacts: static.tar.gz; checksums in build/SHA256SUMS"
