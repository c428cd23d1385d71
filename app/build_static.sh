#!/usr/bin/env bash
# Vendor centrifuge-js into the Django static tree (run before building the wheel or
# collectstatic). Installs exactly what package-lock.json pins, without install scripts,
# then copies the self-contained browser bundle (defines globalThis.Centrifuge) and
# writes its sha256 next to it.
set -euo pipefail

cd "$(dirname "$0")"

npm ci --ignore-scripts --no-audit --no-fund

src=node_modules/centrifuge/dist/centrifuge.js
dest_dir=chat/static/chat/vendor
version=$(node -p 'require("./node_modules/centrifuge/package.json").version')

mkdir -p "$dest_dir"
cp "$src" "$dest_dir/centrifuge.js"
(cd "$dest_dir" && sha256sum centrifuge.js > centrifuge.js.sha256)
echo "vendored centrifuge $version -> $dest_dir/centrifuge.js ($(cut -d' ' -f1 "$dest_dir/centrifuge.js.sha256"))"
