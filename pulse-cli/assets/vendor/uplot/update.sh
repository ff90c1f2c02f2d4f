#!/usr/bin/env bash
# Re-vendors uPlot (MIT) from the npm registry into this folder:
#   pulse-cli/assets/vendor/uplot/update.sh [VERSION]   # default: latest
# Then rebuild pulse (the files are embedded with include_str!), run the
# browser test (it refreshes docs/dashboard.png) and commit this folder.
set -euo pipefail

version=${1:-latest}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "uplot@$version" >/dev/null && tar xzf uplot-*.tgz)
cp "$work/package/dist/uPlot.iife.min.js" "$work/package/dist/uPlot.min.css" \
  "$work/package/LICENSE" "$here/"
node -p "require('$work/package/package.json').version" >"$here/VERSION"
echo "vendored uPlot $(cat "$here/VERSION") into $here"
